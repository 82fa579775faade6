//! [`DmaDisk`]: glommio `DmaFile`s (O_DIRECT through io_uring).
//!
//! Data operations (write, read, fdatasync, fallocate, ftruncate) go through the ring.
//! Directory operations are rare (segment roll and deletion). Remove, rename and removing a
//! directory tree run on glommio's blocking-thread pool (they can wait on the filesystem
//! journal); list and mkdir use the blocking std calls on the shard.
//!
//! On tmpfs glommio silently turns direct I/O off; use a real filesystem for tests.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use super::{Disk, DiskFile, IoBuffer};

/// The real disk. Cheap to clone (no state).
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaDisk;

/// One O_DIRECT file.
pub struct DmaDiskFile {
    file: DmaFile,
    /// The device's logical block size, raised to the filesystem block (see `write_alignment`).
    alignment: usize,
}

/// The alignment writes use: the larger of the device's logical block (what O_DIRECT
/// requires) and the filesystem block (`st_blksize`, at most 4 KiB). ext4 serves a direct
/// write that starts or ends inside a filesystem block under the inode's exclusive lock,
/// zeroing the rest of the block if it is newly allocated, so io_uring's non-blocking
/// attempt fails (EAGAIN) and the write is handed to a kernel worker thread.
fn write_alignment(device: usize, path: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let fs_block = std::fs::metadata(path).map_or(0, |m| m.blksize() as usize);
    if fs_block.is_power_of_two() && fs_block <= 4096 {
        device.max(fs_block)
    } else {
        device
    }
}

impl IoBuffer for DmaBuffer {
    fn as_bytes(&self) -> &[u8] {
        DmaBuffer::as_bytes(self)
    }
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        DmaBuffer::as_bytes_mut(self)
    }
    fn trim_to(&mut self, len: usize) {
        self.trim_to_size(len);
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Run a blocking filesystem call on glommio's blocking-thread pool. Unlinking a large
/// segment (retention) or renaming waits on the filesystem journal, which is busy under
/// load; on the shard's own thread that wait would stall every partition and connection
/// of the shard. (Not timed on its own: max-rate runs were within noise before and after.)
async fn off_shard<F>(f: F) -> io::Result<()>
where
    F: FnOnce() -> io::Result<()> + Send + 'static,
{
    glommio::executor().spawn_blocking(f).await
}

thread_local! {
    static PROBED_DEVICES: std::cell::RefCell<std::collections::HashSet<u64>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// Work around glommio 0.9's iopoll probe: it reads the first file opened on a device, and
/// if that file is empty the read "succeeds" at EOF, so glommio marks the device pollable
/// and every later read fails with EOPNOTSUPP (seen on virtio). Opening a non-empty file
/// first makes the probe see the real answer, which glommio caches per device.
///
/// [`DmaDisk`] does this itself before its first open on a device. Call it before opening
/// any other `DmaFile` (e.g. a benchmark's raw file) on a device in a thread.
pub async fn probe_iopoll_once(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if PROBED_DEVICES.with(|p| p.borrow().contains(&meta.dev())) {
        return Ok(());
    }
    let thread: String = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let probe = dir.join(format!(".iopoll-probe-{}-{thread}", std::process::id()));
    std::fs::write(&probe, [0u8; 4096])?;
    let opened = OpenOptions::new().read(true).dma_open(&probe).await;
    let _ = std::fs::remove_file(&probe);
    opened
        .map_err(io::Error::from)?
        .close()
        .await
        .map_err(io::Error::from)?;
    PROBED_DEVICES.with(|p| p.borrow_mut().insert(meta.dev()));
    Ok(())
}

impl Disk for DmaDisk {
    type File = DmaDiskFile;

    async fn open(&self, path: &Path, create: bool) -> io::Result<DmaDiskFile> {
        if let Some(dir) = path.parent() {
            probe_iopoll_once(dir).await?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await
            .map_err(io::Error::from)?;
        let alignment = write_alignment(file.alignment() as usize, path);
        Ok(DmaDiskFile { file, alignment })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        off_shard(move || std::fs::remove_file(path)).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        off_shard(move || std::fs::rename(from, to)).await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = glommio::io::Directory::open(path)
            .await
            .map_err(io::Error::from)?;
        dir.sync().await.map_err(io::Error::from)?;
        dir.close().await.map_err(io::Error::from)
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            out.push(entry?.path());
        }
        Ok(out)
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        off_shard(move || std::fs::remove_dir_all(path)).await
    }
}

impl DiskFile for DmaDiskFile {
    type Buffer = DmaBuffer;

    fn alignment(&self) -> usize {
        self.alignment
    }

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        self.file.alloc_dma_buffer(len)
    }

    async fn write_at(&self, buf: Rc<DmaBuffer>, pos: u64) -> io::Result<()> {
        let align = self.alignment();
        if !pos.is_multiple_of(align as u64) || !buf.len().is_multiple_of(align) {
            return Err(invalid("unaligned direct-I/O write"));
        }
        let len = buf.len();
        let written = self
            .file
            .write_rc_at(buf, pos)
            .await
            .map_err(io::Error::from)?;
        if written != len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short direct-I/O write",
            ));
        }
        Ok(())
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let read = self.file.read_at(pos, len).await.map_err(io::Error::from)?;
        Ok(read.to_vec())
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(io::Error::from)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(io::Error::from)
    }

    async fn allocate(&self, pos: u64, len: u64) -> io::Result<()> {
        // fallocate(KEEP_SIZE) from 0 to the end reserves the range; existing data is untouched.
        self.file
            .pre_allocate(pos + len, true)
            .await
            .map_err(io::Error::from)
    }

    async fn extend_to(&self, len: u64) -> io::Result<()> {
        if len <= self.size().await? {
            return Ok(());
        }
        self.file
            .pre_allocate(len, false)
            .await
            .map_err(io::Error::from)
    }

    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(io::Error::from)
    }

    async fn close(self) -> io::Result<()> {
        self.file.close().await.map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringmq-dma-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn aligned_write_read_truncate_round_trip() {
        let dir = test_dir("rt");
        let d2 = dir.clone();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let disk = DmaDisk;
                disk.create_dir_all(&d2).await.unwrap();
                let path = d2.join("f");
                let f = disk.open(&path, true).await.unwrap();
                let align = f.alignment();
                assert!(align >= 512 && align.is_power_of_two());
                let mut buf = f.alloc_buffer(align * 2);
                buf.as_bytes_mut()[..5].copy_from_slice(b"hello");
                f.write_at(Rc::new(buf), align as u64).await.unwrap();
                f.fdatasync().await.unwrap();
                assert_eq!(f.size().await.unwrap(), 3 * align as u64);
                let back = f.read_at(align as u64 + 1, 4).await.unwrap();
                assert_eq!(&back, b"ello");
                let unaligned = f.alloc_buffer(align);
                assert!(f.write_at(Rc::new(unaligned), 3).await.is_err());
                f.allocate(0, 1 << 20).await.expect("allocate");
                assert_eq!(
                    f.size().await.unwrap(),
                    3 * align as u64,
                    "allocate keeps size"
                );
                f.extend_to(8 * align as u64).await.expect("extend");
                assert_eq!(f.size().await.unwrap(), 8 * align as u64, "extended");
                f.extend_to(align as u64).await.expect("never shrinks");
                assert_eq!(f.size().await.unwrap(), 8 * align as u64);
                let back = f.read_at(align as u64, 5).await.unwrap();
                assert_eq!(&back, b"hello", "data kept");
                assert_eq!(f.read_at(5 * align as u64, 4).await.unwrap(), [0; 4]);
                f.truncate(10).await.unwrap();
                assert_eq!(f.size().await.unwrap(), 10);
                f.close().await.unwrap();
                let names = disk.list_dir(&d2).await.unwrap();
                assert_eq!(names, vec![path.clone()]);
                disk.rename(&path, &d2.join("g")).await.unwrap();
                disk.sync_dir(&d2).await.unwrap();
                disk.remove(&d2.join("g")).await.unwrap();
                disk.remove_dir_all(&d2).await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(!dir.exists());
    }
}
