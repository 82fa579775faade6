//! [`SimDisk`]: an in-memory disk driven by a seed, for randomized crash and fault tests.
//!
//! Model (what a crash may do, and what it may not):
//! - Each file keeps its **durable** bytes (as of its last successful `fdatasync`) and the
//!   list of data operations since (writes and truncations, in order).
//! - [`SimDisk::crash`] keeps a random prefix of those pending operations, **tears** the next
//!   write at a random byte (the bytes before the tear point land, the rest do not), and may
//!   **flip a bit** in the torn part (only in a byte the write was changing). Later pending operations are dropped. Every handle opened
//!   before the crash then fails with `EIO`, as a dead process's would.
//! - Synced bytes are never changed by a crash. Directory operations (create, remove, rename)
//!   are durable at once: a simplification of a journaling filesystem with `sync_dir`.
//! - With [`SimFaults`] set, operations fail at random with `ENOSPC` (writes, allocate) or
//!   `EIO` (open, write, read, fdatasync), and reads may return one flipped bit. A failed write
//!   changes nothing; a failed fdatasync may drop every write since the last good one (as
//!   Linux may after a failed fsync), so callers must write that data again.
//! - Writes must be aligned to [`DiskFile::alignment`] (512 or 4096, picked from the seed), as
//!   O_DIRECT requires; an unaligned write fails with `EINVAL`.
//!
//! Everything random comes from one splitmix64 stream seeded by the caller, so a seed replays.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{Disk, DiskFile, IoBuffer};

/// Deterministic PRNG (splitmix64): small, fast, good enough for test schedules.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, n)`; 0 if `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// True with probability `per_million / 1e6`.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
}

/// Fault rates, each in events per million operations of that kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimFaults {
    /// Writes and allocations failing with ENOSPC.
    pub no_space_per_million: u32,
    /// Opens, writes, reads and syncs failing with EIO.
    pub io_error_per_million: u32,
    /// Reads returning one flipped bit.
    pub read_flip_per_million: u32,
}

/// Operation counters, to check group commit and write sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Successful writes.
    pub writes: u64,
    /// Successful fdatasyncs.
    pub syncs: u64,
    /// Bytes written by successful writes.
    pub bytes_written: u64,
}

#[derive(Debug)]
enum PendingOp {
    Write { pos: u64, data: Vec<u8> },
    Truncate(u64),
}

#[derive(Debug, Default)]
struct FileData {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<PendingOp>,
}

fn apply(bytes: &mut Vec<u8>, op: &PendingOp) {
    match op {
        PendingOp::Write { pos, data } => write_bytes(bytes, *pos as usize, data),
        PendingOp::Truncate(len) => bytes.resize(*len as usize, 0),
    }
}

fn write_bytes(bytes: &mut Vec<u8>, pos: usize, data: &[u8]) {
    if bytes.len() < pos + data.len() {
        bytes.resize(pos + data.len(), 0);
    }
    bytes[pos..pos + data.len()].copy_from_slice(data);
}

struct SimState {
    rng: SimRng,
    alignment: usize,
    generation: u64,
    faults: SimFaults,
    stats: SimStats,
    files: BTreeMap<PathBuf, Rc<RefCell<FileData>>>,
    dirs: BTreeSet<PathBuf>,
}

/// The simulated disk. Clones share the same state.
#[derive(Clone)]
pub struct SimDisk {
    state: Rc<RefCell<SimState>>,
}

/// A handle to a simulated file; dead (EIO) after a crash.
pub struct SimFile {
    disk: SimDisk,
    data: Rc<RefCell<FileData>>,
    generation: u64,
}

/// A plain heap buffer; alignment is checked by position and length only.
pub struct SimBuffer(Vec<u8>);

impl IoBuffer for SimBuffer {
    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn trim_to(&mut self, len: usize) {
        assert!(len <= self.0.len(), "trim_to must shrink");
        self.0.truncate(len);
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

impl SimDisk {
    /// A fresh, empty disk whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = SimRng::new(seed);
        let alignment = if rng.below(2) == 0 { 512 } else { 4096 };
        let state = SimState {
            rng,
            alignment,
            generation: 0,
            faults: SimFaults::default(),
            stats: SimStats::default(),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
        };
        SimDisk {
            state: Rc::new(RefCell::new(state)),
        }
    }

    /// Set the fault rates (all zero: no faults).
    pub fn set_faults(&self, faults: SimFaults) {
        self.state.borrow_mut().faults = faults;
    }

    /// Operation counters so far.
    pub fn stats(&self) -> SimStats {
        self.state.borrow().stats
    }

    /// The alignment every file of this disk reports.
    pub fn alignment(&self) -> usize {
        self.state.borrow().alignment
    }

    /// Simulate power loss: drop unsynced operations (keeping a random prefix, tearing and
    /// perhaps corrupting the next write) and invalidate every open handle.
    pub fn crash(&self) {
        let mut st = self.state.borrow_mut();
        st.generation += 1;
        let files: Vec<_> = st.files.values().cloned().collect();
        for file in files {
            let mut f = file.borrow_mut();
            let mut bytes = std::mem::take(&mut f.durable);
            let pending = std::mem::take(&mut f.pending);
            let keep = st.rng.below(pending.len() as u64 + 1) as usize;
            for op in &pending[..keep] {
                apply(&mut bytes, op);
            }
            if let Some(PendingOp::Write { pos, data }) = pending.get(keep) {
                let tear = st.rng.below(data.len() as u64 + 1) as usize;
                let mut torn = data[..tear].to_vec();
                if tear > 0 && st.rng.below(2) == 0 {
                    // Garble one bit the write was changing: a torn sector holds old or new
                    // bytes, never a corruption of bytes the write left as they were.
                    let bit = st.rng.below(tear as u64 * 8);
                    let at = (bit / 8) as usize;
                    let unchanged = bytes.get(*pos as usize + at) == Some(&torn[at]);
                    if !unchanged {
                        torn[at] ^= 1 << (bit % 8);
                    }
                }
                write_bytes(&mut bytes, *pos as usize, &torn);
            }
            f.current = bytes.clone();
            f.durable = bytes;
        }
    }

    /// The current (not necessarily durable) bytes of a file, for tests that corrupt files.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.borrow();
        st.files.get(path).map(|f| f.borrow().current.clone())
    }

    /// Replace a file's bytes, durably (tests: bit flips and cut-off tails while "stopped").
    pub fn set_file_bytes(&self, path: &Path, bytes: Vec<u8>) {
        let st = self.state.borrow();
        if let Some(f) = st.files.get(path) {
            let mut f = f.borrow_mut();
            f.current = bytes.clone();
            f.durable = bytes;
            f.pending.clear();
        }
    }

    fn fault(&self, no_space: bool) -> Option<io::Error> {
        let mut st = self.state.borrow_mut();
        let faults = st.faults;
        if no_space && st.rng.chance(faults.no_space_per_million) {
            return Some(enospc());
        }
        if st.rng.chance(faults.io_error_per_million) {
            return Some(eio());
        }
        None
    }

    fn parent_exists(&self, path: &Path) -> bool {
        let st = self.state.borrow();
        path.parent()
            .is_none_or(|p| p.as_os_str().is_empty() || st.dirs.contains(p))
    }
}

impl Disk for SimDisk {
    type File = SimFile;

    async fn open(&self, path: &Path, create: bool) -> io::Result<SimFile> {
        if let Some(err) = self.fault(false) {
            return Err(err);
        }
        if !self.parent_exists(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let mut st = self.state.borrow_mut();
        let generation = st.generation;
        let data = match st.files.get(path) {
            Some(data) => data.clone(),
            None if create => {
                let data = Rc::new(RefCell::new(FileData::default()));
                st.files.insert(path.to_path_buf(), data.clone());
                data
            }
            None => return Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        Ok(SimFile {
            disk: self.clone(),
            data,
            generation,
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let removed = self.state.borrow_mut().files.remove(path);
        removed
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.borrow_mut();
        let data = st
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    async fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.borrow_mut();
        for dir in path.ancestors() {
            if !dir.as_os_str().is_empty() {
                st.dirs.insert(dir.to_path_buf());
            }
        }
        Ok(())
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let st = self.state.borrow();
        if !st.dirs.contains(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let files = st.files.keys().filter(|p| p.parent() == Some(path));
        let dirs = st.dirs.iter().filter(|p| p.parent() == Some(path));
        Ok(files.chain(dirs).cloned().collect())
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.borrow_mut();
        st.files.retain(|p, _| !p.starts_with(path));
        st.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }
}

impl SimFile {
    fn check_alive(&self) -> io::Result<()> {
        if self.disk.state.borrow().generation != self.generation {
            return Err(eio());
        }
        Ok(())
    }
}

impl DiskFile for SimFile {
    type Buffer = SimBuffer;

    fn alignment(&self) -> usize {
        self.disk.alignment()
    }

    fn alloc_buffer(&self, len: usize) -> SimBuffer {
        // Garbage, not zeros: callers must not rely on fresh buffers being zeroed.
        SimBuffer(vec![0xa5; len])
    }

    async fn write_at(&self, buf: Rc<SimBuffer>, pos: u64) -> io::Result<()> {
        futures_lite::future::yield_now().await;
        self.check_alive()?;
        let align = self.alignment();
        if !pos.is_multiple_of(align as u64) || !buf.0.len().is_multiple_of(align) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if let Some(err) = self.disk.fault(true) {
            return Err(err);
        }
        let op = PendingOp::Write {
            pos,
            data: buf.0.clone(),
        };
        let mut f = self.data.borrow_mut();
        apply(&mut f.current, &op);
        f.pending.push(op);
        let mut st = self.disk.state.borrow_mut();
        st.stats.writes += 1;
        st.stats.bytes_written += buf.0.len() as u64;
        Ok(())
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        self.check_alive()?;
        if let Some(err) = self.disk.fault(false) {
            return Err(err);
        }
        let f = self.data.borrow();
        let start = (pos as usize).min(f.current.len());
        let end = start.saturating_add(len).min(f.current.len());
        let mut out = f.current[start..end].to_vec();
        let mut st = self.disk.state.borrow_mut();
        let flip_rate = st.faults.read_flip_per_million;
        if !out.is_empty() && st.rng.chance(flip_rate) {
            let bit = st.rng.below(out.len() as u64 * 8);
            out[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        Ok(out)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        futures_lite::future::yield_now().await;
        self.check_alive()?;
        if let Some(err) = self.disk.fault(false) {
            // Like Linux after a failed fsync ("fsyncgate"), the unsynced writes may be gone
            // while a later fsync succeeds: callers must write them again.
            if self.disk.state.borrow_mut().rng.below(2) == 0 {
                let mut f = self.data.borrow_mut();
                f.current = f.durable.clone();
                f.pending.clear();
            }
            return Err(err);
        }
        let mut f = self.data.borrow_mut();
        f.durable = f.current.clone();
        f.pending.clear();
        self.disk.state.borrow_mut().stats.syncs += 1;
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.check_alive()?;
        let op = PendingOp::Truncate(len);
        let mut f = self.data.borrow_mut();
        apply(&mut f.current, &op);
        f.pending.push(op);
        Ok(())
    }

    async fn allocate(&self, _pos: u64, _len: u64) -> io::Result<()> {
        self.check_alive()?;
        match self.disk.fault(true) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    async fn extend_to(&self, len: u64) -> io::Result<()> {
        self.check_alive()?;
        if let Some(err) = self.disk.fault(true) {
            return Err(err);
        }
        let mut f = self.data.borrow_mut();
        if len > f.current.len() as u64 {
            // A size change like any other: lost at a crash unless synced.
            let op = PendingOp::Truncate(len);
            apply(&mut f.current, &op);
            f.pending.push(op);
        }
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        self.check_alive()?;
        Ok(self.data.borrow().current.len() as u64)
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn write(f: &SimFile, pos: u64, fill: u8) {
        let mut buf = f.alloc_buffer(f.alignment());
        buf.as_bytes_mut().fill(fill);
        block_on(f.write_at(Rc::new(buf), pos)).unwrap();
    }

    #[test]
    fn synced_bytes_survive_and_unsynced_may_not() {
        let mut lost_some = false;
        for seed in 0..200 {
            let disk = SimDisk::new(seed);
            block_on(disk.create_dir_all(Path::new("/d"))).unwrap();
            let f = block_on(disk.open(Path::new("/d/f"), true)).unwrap();
            let a = f.alignment() as u64;
            write(&f, 0, 1);
            block_on(f.fdatasync()).unwrap();
            write(&f, a, 2);
            write(&f, 2 * a, 3);
            disk.crash();
            assert!(
                block_on(f.size()).is_err(),
                "old handles die with the crash"
            );
            let bytes = disk.file_bytes(Path::new("/d/f")).unwrap();
            assert!(
                bytes[..a as usize].iter().all(|b| *b == 1),
                "seed {seed}: synced data"
            );
            lost_some |= bytes.len() < 3 * a as usize || bytes[2 * a as usize..].contains(&0);
        }
        assert!(lost_some, "some crash must drop or tear unsynced writes");
    }

    #[test]
    fn faults_fail_operations_and_unaligned_writes_are_refused() {
        let disk = SimDisk::new(7);
        block_on(disk.create_dir_all(Path::new("/d"))).unwrap();
        let f = block_on(disk.open(Path::new("/d/f"), true)).unwrap();
        let buf = f.alloc_buffer(f.alignment());
        assert!(block_on(f.write_at(Rc::new(buf), 3)).is_err());
        disk.set_faults(SimFaults {
            no_space_per_million: 1_000_000,
            ..Default::default()
        });
        let buf = f.alloc_buffer(f.alignment());
        let err = block_on(f.write_at(Rc::new(buf), 0)).unwrap_err();
        assert!(crate::io::is_no_space(&err));
        disk.set_faults(SimFaults::default());
        write(&f, 0, 9);
        assert_eq!(disk.stats().writes, 1);
    }

    #[test]
    fn same_seed_same_crash() {
        let run = |seed| {
            let disk = SimDisk::new(seed);
            block_on(disk.create_dir_all(Path::new("/d"))).unwrap();
            let f = block_on(disk.open(Path::new("/d/f"), true)).unwrap();
            for i in 0..5 {
                write(&f, i * f.alignment() as u64, i as u8 + 1);
            }
            disk.crash();
            disk.file_bytes(Path::new("/d/f")).unwrap()
        };
        assert_eq!(run(11), run(11));
    }
}
