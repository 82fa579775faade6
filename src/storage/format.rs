//! Framing of our own files (indexes, checkpoint): magic, version, length, crc32fast; and
//! their atomic replacement through a temporary file and a rename. See the module docs of
//! `storage` for the byte layout.

use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::io::{align_up, Disk, DiskFile, IoBuffer};

/// Current version of every file format of ours.
pub const FORMAT_VERSION: u16 = 1;
const FRAME_HEADER_BYTES: usize = 16;
/// Largest file of ours we agree to read (a 1 GiB segment at 4 KiB intervals: 2 MiB index).
pub const MAX_OWN_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Wrap `payload` in the frame.
pub fn frame(magic: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a framed file, or `None` if anything does not match.
pub fn unframe<'a>(magic: &[u8; 4], bytes: &'a [u8]) -> Option<&'a [u8]> {
    let header = bytes.get(..FRAME_HEADER_BYTES)?;
    let reserved_zero = header[6..8] == [0, 0];
    if &header[0..4] != magic || header[4..6] != FORMAT_VERSION.to_be_bytes() || !reserved_zero {
        return None;
    }
    let len = u32::from_be_bytes(header[8..12].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(header[12..16].try_into().ok()?);
    let payload = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Replace `path` atomically with `contents`: write `path.tmp`, fdatasync, rename, sync dir.
pub async fn write_atomic<D: Disk>(disk: &D, path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(tmp_extension(path));
    let file = disk.open(&tmp, true).await?;
    let result = write_padded(&file, contents).await;
    let closed = file.close().await;
    result?;
    closed?;
    disk.rename(&tmp, path).await?;
    match path.parent() {
        Some(dir) => disk.sync_dir(dir).await,
        None => Ok(()),
    }
}

fn tmp_extension(path: &Path) -> String {
    match path.extension() {
        Some(ext) => format!("{}.tmp", ext.to_string_lossy()),
        None => "tmp".to_string(),
    }
}

async fn write_padded<F: DiskFile>(file: &F, contents: &[u8]) -> io::Result<()> {
    let padded = align_up(contents.len() as u64, file.alignment()) as usize;
    let mut buf = file.alloc_buffer(padded.max(file.alignment()));
    let bytes = buf.as_bytes_mut();
    bytes[..contents.len()].copy_from_slice(contents);
    bytes[contents.len()..].fill(0);
    file.truncate(0).await?;
    file.write_at(Rc::new(buf), 0).await?;
    file.fdatasync().await
}

/// The whole content of a file of ours, or `None` if it does not exist.
pub async fn read_whole<D: Disk>(disk: &D, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match disk.open(path, false).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = file.size().await?;
    let len = (size as usize).min(MAX_OWN_FILE_BYTES);
    let bytes = file.read_at(0, len).await;
    let _ = file.close().await;
    bytes.map(Some)
}

/// Big-endian cursor over a payload; every read is bounds-checked.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.pos.checked_add(N)?;
        let out = self.bytes.get(self.pos..end)?.try_into().ok()?;
        self.pos = end;
        Some(out)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    pub fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
    /// True when every byte was consumed.
    pub fn is_done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;

    #[test]
    fn frame_round_trip_and_damage_is_detected() {
        let framed = frame(b"RMQI", b"payload");
        assert_eq!(unframe(b"RMQI", &framed), Some(&b"payload"[..]));
        assert_eq!(unframe(b"RMQT", &framed), None, "wrong magic");
        let mut padded = framed.clone();
        padded.extend_from_slice(&[0; 100]);
        assert_eq!(
            unframe(b"RMQI", &padded),
            Some(&b"payload"[..]),
            "padding is ignored"
        );
        for i in 0..framed.len() {
            let mut bad = framed.clone();
            bad[i] ^= 0x10;
            assert_eq!(unframe(b"RMQI", &bad), None, "flip at byte {i}");
        }
        assert_eq!(unframe(b"RMQI", &framed[..framed.len() - 1]), None, "cut");
    }

    #[test]
    fn atomic_write_replaces_and_reads_back() {
        let disk = SimDisk::new(3);
        futures_lite::future::block_on(async {
            disk.create_dir_all(Path::new("/p")).await.unwrap();
            let path = Path::new("/p/checkpoint");
            assert!(read_whole(&disk, path).await.unwrap().is_none());
            write_atomic(&disk, path, b"first version").await.unwrap();
            write_atomic(&disk, path, b"second").await.unwrap();
            disk.crash();
            let back = read_whole(&disk, path).await.unwrap().unwrap();
            assert_eq!(&back[..6], b"second");
            assert!(back[6..].iter().all(|b| *b == 0));
            assert_eq!(disk.list_dir(Path::new("/p")).await.unwrap().len(), 1);
        });
    }

    #[test]
    fn reader_is_bounds_checked() {
        let mut r = Reader::new(&[0, 0, 0, 7, 1]);
        assert_eq!(r.u32(), Some(7));
        assert_eq!(r.u32(), None);
        assert_eq!(r.u8(), Some(1));
        assert!(r.is_done());
    }
}
