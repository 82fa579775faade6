//! The disk behind a small trait, so the partition log runs unchanged on glommio's direct-I/O
//! files ([`dma::DmaDisk`]) and on a seeded, fault-injecting simulation ([`sim::SimDisk`]).
//!
//! Design:
//! - **Direct I/O rules are part of the contract.** Writes need a position and a length that
//!   are multiples of [`DiskFile::alignment`] (512 on the development VM, 4096 on 4Kn NVMe;
//!   never hard-code it). The simulated disk enforces the same rule with an alignment picked
//!   from the seed, so an unaligned write is a test failure, not a production surprise.
//! - **Writes take an owned buffer from the file itself** ([`DiskFile::alloc_buffer`]): the log
//!   copies each batch once into that buffer and the buffer goes to the kernel as is. The
//!   buffer is shared (`Rc`) so that a failed write can be retried with the same bytes.
//! - **Futures are `!Send`**: every call runs on the executor that owns the partition.
//! - **Errors are `std::io::Error`** with the raw OS code kept (`ENOSPC`, `EIO`), so the
//!   storage layer can tell "disk full" from "disk broken".

pub mod dma;
pub mod sim;

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A buffer a [`DiskFile`] can write without another copy (aligned memory for `O_DIRECT`).
pub trait IoBuffer: 'static {
    /// The addressable bytes (the buffer's current length).
    fn as_bytes(&self) -> &[u8];
    /// The addressable bytes, writable.
    fn as_bytes_mut(&mut self) -> &mut [u8];
    /// Shrink the addressable length to `len` (must be `<=` the current length).
    fn trim_to(&mut self, len: usize);
}

/// A directory tree of files: the filesystem a partition lives in.
///
/// Metadata operations (`remove`, `rename`, directory creation) are made durable by
/// [`Disk::sync_dir`] on the parent directory.
#[allow(async_fn_in_trait)] // glommio futures are !Send by design; callers never need Send.
pub trait Disk: Clone + 'static {
    /// The file handle type.
    type File: DiskFile;
    /// Open a file for reading and writing; create it (empty) if `create` and it is missing.
    async fn open(&self, path: &Path, create: bool) -> io::Result<Self::File>;
    /// Remove a file.
    async fn remove(&self, path: &Path) -> io::Result<()>;
    /// Rename a file, replacing the destination (atomic on POSIX filesystems).
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Make the directory's entries (creations, removals, renames) durable.
    async fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Create a directory and its parents.
    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The paths of the entries of a directory (files only matter to callers), unsorted.
    async fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// Remove a directory and everything below it.
    async fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
}

/// One open file. Writes are positional and aligned; there is no file cursor.
#[allow(async_fn_in_trait)] // see Disk
pub trait DiskFile: 'static {
    /// The buffer type `write_at` takes.
    type Buffer: IoBuffer;
    /// Required alignment of write positions and lengths, and of efficient read positions.
    fn alignment(&self) -> usize;
    /// A buffer of `len` bytes (`len` a multiple of the alignment); contents unspecified.
    fn alloc_buffer(&self, len: usize) -> Self::Buffer;
    /// Write the whole buffer at `pos`. Both `pos` and the buffer length must be aligned.
    /// A short write is reported as an error (`WriteZero`): the caller retries the whole buffer.
    async fn write_at(&self, buf: Rc<Self::Buffer>, pos: u64) -> io::Result<()>;
    /// Read up to `len` bytes at `pos` (any position; aligned is faster). Returns fewer bytes
    /// only at the end of the file.
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Make every completed write durable (data, and the size if it changed).
    async fn fdatasync(&self) -> io::Result<()>;
    /// Set the file size to `len`.
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// Reserve disk space for `[pos, pos + len)` without changing the reported size.
    async fn allocate(&self, pos: u64, len: u64) -> io::Result<()>;
    /// Grow the file to `len` bytes of allocated space that reads as zeros (fallocate mode
    /// 0): later writes below `len` then neither extend the file nor allocate blocks. Never
    /// shrinks the file; data already there is untouched.
    async fn extend_to(&self, len: u64) -> io::Result<()>;
    /// The file size in bytes.
    async fn size(&self) -> io::Result<u64>;
    /// Close the file.
    async fn close(self) -> io::Result<()>;
}

/// `v` rounded up to a multiple of `align` (a power of two).
pub fn align_up(v: u64, align: usize) -> u64 {
    let a = align as u64;
    v.div_ceil(a) * a
}

/// `v` rounded down to a multiple of `align`.
pub fn align_down(v: u64, align: usize) -> u64 {
    let a = align as u64;
    v / a * a
}

/// True if the error means the device is out of space (as opposed to broken).
pub fn is_no_space(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOSPC) || err.kind() == io::ErrorKind::StorageFull
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_up(0, 512), 0);
        assert_eq!(align_up(1, 512), 512);
        assert_eq!(align_up(512, 512), 512);
        assert_eq!(align_down(1023, 512), 512);
        assert_eq!(align_up(4097, 4096), 8192);
    }

    #[test]
    fn enospc_is_recognised() {
        assert!(is_no_space(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!is_no_space(&io::Error::from_raw_os_error(libc::EIO)));
    }
}
