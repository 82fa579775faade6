//! The controller's Raft log and snapshot: an in-memory [`raft::Storage`] backed by two files
//! behind the small [`ControllerFiles`] trait (real files in the data dir, or the simulation's
//! crashing disk), so the same record format and recovery run in tests and in the broker.
//!
//! `controller.log` is a sequence of records `len u32 | crc32 u32 | kind u8 | body`
//! (big-endian; `len` counts kind and body; the CRC covers them): kind 1 is one Raft entry
//! (protobuf `eraftpb::Entry`), kind 2 the hard state (`term u64 | vote u64 | commit u64`).
//! An entry record with index `i` replaces every earlier-read entry at `i` or later (Raft
//! truncation). Loading stops at the first record that is short or fails its CRC (a torn
//! tail: it was never synced, so never acknowledged) and the log is rewritten without it.
//! `controller.snap` is `frame("RMQS", 1, protobuf eraftpb::Snapshot)`; its data is a
//! `metadata.bin` image ([`super::image`]). It is replaced atomically.

use super::codec::{frame, unframe};
use super::MetadataError;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use std::io;
use std::path::PathBuf;

/// Which controller file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Log,
    Snapshot,
}

/// The controller's durable files. `append_log` may be lost until `sync_log` returns;
/// `replace` is atomic and durable when it returns.
pub trait ControllerFiles {
    fn read(&mut self, kind: FileKind) -> io::Result<Option<Vec<u8>>>;
    fn append_log(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync_log(&mut self) -> io::Result<()>;
    fn replace(&mut self, kind: FileKind, bytes: &[u8]) -> io::Result<()>;
}

/// [`ControllerFiles`] as two files in a directory, with blocking I/O (metadata changes are
/// rare: a few per second at most, on the controller's shard only).
pub struct DirFiles {
    dir: PathBuf,
    log: Option<std::fs::File>,
}

impl DirFiles {
    pub fn new(dir: PathBuf) -> Self {
        DirFiles { dir, log: None }
    }
    fn path(&self, kind: FileKind) -> PathBuf {
        self.dir.join(match kind {
            FileKind::Log => "controller.log",
            FileKind::Snapshot => "controller.snap",
        })
    }
}

impl ControllerFiles for DirFiles {
    fn read(&mut self, kind: FileKind) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(kind)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn append_log(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        if self.log.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(FileKind::Log))?;
            self.log = Some(f);
        }
        self.log.as_mut().expect("opened above").write_all(bytes)
    }
    fn sync_log(&mut self) -> io::Result<()> {
        match &self.log {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }
    fn replace(&mut self, kind: FileKind, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let path = self.path(kind);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        if kind == FileKind::Log {
            self.log = None; // reopen the new file on the next append
        }
        Ok(())
    }
}

const ENTRY: u8 = 1;
const HARD_STATE: u8 = 2;
const SNAP_MAGIC: &[u8; 4] = b"RMQS";

fn record(kind: u8, body: &[u8], out: &mut Vec<u8>) {
    let len = 1 + body.len() as u32;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(body);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

fn hard_state_body(hs: &HardState) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..8].copy_from_slice(&hs.term.to_be_bytes());
    b[8..16].copy_from_slice(&hs.vote.to_be_bytes());
    b[16..24].copy_from_slice(&hs.commit.to_be_bytes());
    b
}

/// Append the records for `entries` and `hs` to `out`.
pub(crate) fn encode_records(entries: &[Entry], hs: Option<&HardState>, out: &mut Vec<u8>) {
    for e in entries {
        let body = e.write_to_bytes().unwrap_or_default();
        record(ENTRY, &body, out);
    }
    if let Some(hs) = hs {
        record(HARD_STATE, &hard_state_body(hs), out);
    }
}

/// One parsed record, or `None` at a torn or damaged tail.
fn next_record<'a>(b: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    if b.len() < 9 {
        return None;
    }
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let crc = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if len == 0 || b.len() - 8 < len || crc32fast::hash(&b[8..8 + len]) != crc {
        return None;
    }
    let rec = (b[8], &b[9..8 + len]);
    *b = &b[8 + len..];
    Some(rec)
}

/// The in-memory log the Raft node reads: the latest snapshot, the entries after it, the
/// hard state and the configuration.
#[derive(Default)]
pub struct LogStore {
    pub(crate) hard: HardState,
    pub(crate) conf: ConfState,
    pub(crate) snap: Snapshot,
    /// `entries[i].index == snap index + 1 + i`.
    pub(crate) entries: Vec<Entry>,
}

impl LogStore {
    /// Load the files. A missing snapshot file means "no snapshot yet"; a damaged one is an
    /// error (it was replaced atomically, so damage is not a crash artefact).
    pub fn load(files: &mut dyn ControllerFiles) -> Result<LogStore, MetadataError> {
        let mut s = LogStore::default();
        if let Some(bytes) = files.read(FileKind::Snapshot)? {
            let (_, body) = unframe(SNAP_MAGIC, &bytes)?;
            s.snap = Snapshot::parse_from_bytes(body)
                .map_err(|e| MetadataError::Corrupt(format!("controller snapshot: {e}")))?;
            s.conf = s.snap.get_metadata().get_conf_state().clone();
            s.hard.term = s.snap.get_metadata().term;
            s.hard.commit = s.snap.get_metadata().index;
        }
        let log = files.read(FileKind::Log)?.unwrap_or_default();
        let mut b = &log[..];
        while let Some((kind, body)) = next_record(&mut b) {
            match kind {
                ENTRY => match Entry::parse_from_bytes(body) {
                    Ok(e) => s.push_entry(e),
                    Err(_) => break,
                },
                HARD_STATE if body.len() == 24 => {
                    let word = |i: usize| u64::from_be_bytes(body[i..i + 8].try_into().unwrap());
                    s.hard.term = word(0);
                    s.hard.vote = word(8);
                    s.hard.commit = word(16).max(s.snap_index());
                }
                _ => break,
            }
        }
        s.hard.commit = s.hard.commit.min(s.last());
        Ok(s)
    }

    /// Keep an entry read from the log: older than the snapshot is skipped, otherwise it
    /// replaces everything from its index on.
    fn push_entry(&mut self, e: Entry) {
        let first = self.snap_index() + 1;
        if e.index < first || e.index > self.last() + 1 {
            return;
        }
        self.entries.truncate((e.index - first) as usize);
        self.entries.push(e);
    }

    pub(crate) fn snap_index(&self) -> u64 {
        self.snap.get_metadata().index
    }
    fn last(&self) -> u64 {
        self.snap_index() + self.entries.len() as u64
    }

    /// Append entries from a Ready (truncating a conflicting suffix first).
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        for e in entries {
            self.push_entry(e.clone());
        }
    }

    /// Install `snap` (a newer snapshot from the leader or our own compaction): entries it
    /// covers are dropped.
    pub(crate) fn install(&mut self, snap: Snapshot) {
        let idx = snap.get_metadata().index;
        if idx <= self.last() && self.term_of(idx) == Some(snap.get_metadata().term) {
            let drop = (idx - self.snap_index()) as usize;
            self.entries.drain(..drop.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        self.hard.commit = self.hard.commit.max(idx);
        self.hard.term = self.hard.term.max(snap.get_metadata().term);
        self.snap = snap;
    }

    fn term_of(&self, idx: u64) -> Option<u64> {
        if idx == self.snap_index() {
            return Some(self.snap.get_metadata().term);
        }
        let first = self.snap_index() + 1;
        (idx >= first && idx <= self.last()).then(|| self.entries[(idx - first) as usize].term)
    }

    /// The whole log file for this state (used after a snapshot or a torn tail).
    pub(crate) fn log_file(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_records(&self.entries, Some(&self.hard), &mut out);
        out
    }

    pub(crate) fn snapshot_file(&self) -> Vec<u8> {
        frame(
            SNAP_MAGIC,
            1,
            &self.snap.write_to_bytes().unwrap_or_default(),
        )
    }
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard.clone(), self.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let first = self.snap_index() + 1;
        if low < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut out = self.entries[(low - first) as usize..(high - first) as usize].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.snap_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.snap_index() + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    /// The stored snapshot, unless it is older than `request_index` or does not name `to`
    /// in its ConfState (a learner added after it was taken would refuse it; the controller
    /// takes a fresh one after every membership change, and raft-rs asks again).
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let cs = self.snap.get_metadata().get_conf_state();
        let names = |ids: &[u64]| ids.contains(&to);
        let named = names(&cs.voters)
            || names(&cs.learners)
            || names(&cs.voters_outgoing)
            || names(&cs.learners_next);
        if self.snap_index() < request_index || !named {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snap.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MemFiles(HashMap<FileKind, Vec<u8>>);
    impl ControllerFiles for MemFiles {
        fn read(&mut self, kind: FileKind) -> io::Result<Option<Vec<u8>>> {
            Ok(self.0.get(&kind).cloned())
        }
        fn append_log(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.0
                .entry(FileKind::Log)
                .or_default()
                .extend_from_slice(bytes);
            Ok(())
        }
        fn sync_log(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn replace(&mut self, kind: FileKind, bytes: &[u8]) -> io::Result<()> {
            self.0.insert(kind, bytes.to_vec());
            Ok(())
        }
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8; 3].into(),
            ..Default::default()
        }
    }

    #[test]
    fn log_records_reload_with_truncation_and_torn_tail() {
        let mut files = MemFiles::default();
        let mut bytes = Vec::new();
        let hs = HardState {
            term: 2,
            vote: 1,
            commit: 2,
            ..Default::default()
        };
        encode_records(
            &[entry(1, 1), entry(2, 1), entry(3, 1)],
            Some(&hs),
            &mut bytes,
        );
        encode_records(&[entry(3, 2)], None, &mut bytes); // a new leader overwrote index 3
        let whole = bytes.len();
        encode_records(&[entry(4, 2)], None, &mut bytes);
        for cut in whole..bytes.len() {
            files.replace(FileKind::Log, &bytes[..cut]).unwrap();
            let s = LogStore::load(&mut files).unwrap();
            assert_eq!(
                s.entries
                    .iter()
                    .map(|e| (e.index, e.term))
                    .collect::<Vec<_>>(),
                [(1, 1), (2, 1), (3, 2)]
            );
            assert_eq!((s.hard.term, s.hard.vote, s.hard.commit), (2, 1, 2));
        }
        files.replace(FileKind::Log, &bytes).unwrap();
        assert_eq!(LogStore::load(&mut files).unwrap().entries.len(), 4);
        let mut damaged = bytes.clone();
        damaged[whole + 12] ^= 1;
        files.replace(FileKind::Log, &damaged).unwrap();
        assert_eq!(
            LogStore::load(&mut files).unwrap().entries.len(),
            3,
            "a damaged record ends the log"
        );
    }

    #[test]
    fn snapshot_compacts_and_reloads() {
        let mut files = MemFiles::default();
        let mut s = LogStore::default();
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 2)]);
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 2;
        snap.mut_metadata().term = 1;
        snap.data = b"image".to_vec().into();
        s.install(snap);
        assert_eq!(s.entries.len(), 1, "entries after the snapshot stay");
        files
            .replace(FileKind::Snapshot, &s.snapshot_file())
            .unwrap();
        files.replace(FileKind::Log, &s.log_file()).unwrap();
        let r = LogStore::load(&mut files).unwrap();
        assert_eq!((r.snap_index(), r.last(), r.entries[0].term), (2, 3, 2));
        assert_eq!(&r.snap.data[..], b"image");
        let mut bad = s.snapshot_file();
        let n = bad.len() - 1;
        bad[n] ^= 1;
        files.replace(FileKind::Snapshot, &bad).unwrap();
        assert!(
            LogStore::load(&mut files).is_err(),
            "a damaged snapshot is refused"
        );
    }
}
