//! [`ReplicaLog`]: what a partition's log must offer to be a Raft log, and [`RaftStore`], the
//! raft-rs `Storage` built on it.
//!
//! The log holds one stamped RecordBatch per raft entry, dense in index from
//! [`ReplicaLog::first_index`] and dense in offset: entry `i` starts at
//! `end_offset(i - 1)`. Reads are synchronous (the partition log serves them from its
//! batch cache near the tail; a miss is answered "unavailable" and read back by the driver
//! for raft's next attempt). Writes are buffered: [`ReplicaLog::append`],
//! [`ReplicaLog::truncate_from`] and [`ReplicaLog::set_hard_state`] are readable at once and
//! durable only once the driver made them so (`MemLog::sync`, `StoredLog`'s persist: not a
//! method of the trait, as the real one is asynchronous); a crash before that may keep any
//! prefix of them.

use super::batch::entry_for_batch;
use crate::model::Offset;
use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use std::fmt;

/// Why a log operation failed.
#[derive(Debug)]
pub enum ReplicaLogError {
    /// The disk failed (KAFKA_STORAGE_ERROR).
    Io(std::io::Error),
    /// An append out of place: entries are dense in index and offset.
    Misplaced { expected: u64, got: u64 },
    /// A truncation at or below the commit index, or below the log start.
    BadTruncate { index: u64, commit: u64 },
    /// A batch the log cannot store (invalid, or its offsets do not follow the log's end).
    BadBatch(String),
}

impl fmt::Display for ReplicaLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaLogError::Io(e) => write!(f, "disk: {e}"),
            ReplicaLogError::Misplaced { expected, got } => {
                write!(f, "append of index {got}, expected {expected}")
            }
            ReplicaLogError::BadTruncate { index, commit } => {
                write!(f, "truncation from {index} with commit index {commit}")
            }
            ReplicaLogError::BadBatch(why) => write!(f, "batch refused: {why}"),
        }
    }
}

impl std::error::Error for ReplicaLogError {}

/// A partition's log seen as a Raft log (see the module docs for the contract).
pub trait ReplicaLog {
    /// Index of the first entry held (1 until the log start moves).
    fn first_index(&self) -> u64;
    /// Index of the last entry (`first_index() - 1` when empty).
    fn last_index(&self) -> u64;
    /// Term of entry `index`, for `first_index() - 1 ..= last_index()` (the entry before the
    /// log start has the term the log start was moved at; 0 for a fresh log).
    fn term(&self, index: u64) -> Option<u64>;
    /// The stamped batch of entry `index` (a cheap clone).
    fn batch(&self, index: u64) -> Option<Bytes>;
    /// The offset after entry `index`, for `first_index() - 1 ..= last_index()` (the log start
    /// offset for `first_index() - 1`).
    fn end_offset(&self, index: u64) -> Option<Offset>;
    /// Append `batch` (stamped: base offset `end_offset(last_index())`, epoch `term`) as entry
    /// `last_index() + 1`.
    fn append(&mut self, term: u64, batch: Bytes) -> Result<(), ReplicaLogError>;
    /// Drop the entries from `index` on (a conflicting suffix from an older leader).
    fn truncate_from(&mut self, index: u64) -> Result<(), ReplicaLogError>;
    /// Raft's term, vote and commit index, as last set (durable after `sync`).
    fn hard_state(&self) -> HardState;
    fn set_hard_state(&mut self, hs: &HardState);
    /// OffsetForLeaderEpoch: the largest epoch `<= epoch` in the log and the offset where it
    /// ends (the first offset of the next higher epoch, or the log end).
    fn epoch_end_offset(&self, epoch: u64) -> Option<(u64, Offset)>;
}

/// raft-rs `Storage` over a [`ReplicaLog`], with the group's voters (the controller's replica
/// set; configuration changes through raft are a later step).
pub struct RaftStore<L: ReplicaLog> {
    pub(super) log: L,
    pub(super) conf: ConfState,
}

impl<L: ReplicaLog> RaftStore<L> {
    pub fn new(log: L, voters: &[u64]) -> Self {
        let conf = ConfState::from((voters.iter().copied(), Vec::new()));
        RaftStore { log, conf }
    }
    pub fn log(&self) -> &L {
        &self.log
    }
}

fn unavailable() -> raft::Error {
    raft::Error::Store(StorageError::Unavailable)
}

impl<L: ReplicaLog> raft::Storage for RaftStore<L> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let mut hs = self.log.hard_state();
        hs.commit = hs.commit.min(self.log.last_index());
        Ok(RaftState::new(hs, self.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.log.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.log.last_index() + 1 || low > high {
            return Err(unavailable());
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity((high - low).min(256) as usize);
        let mut size = 0u64;
        for index in low..high {
            // A miss after some entries sends those; the log reads the rest back meanwhile.
            let Some(batch) = self.log.batch(index) else {
                if out.is_empty() {
                    return Err(unavailable());
                }
                break;
            };
            size += batch.len() as u64;
            if !out.is_empty() && size > max {
                break;
            }
            // The log validated every batch it holds; a failure here is a damaged log.
            out.push(entry_for_batch(index, &batch).map_err(|_| unavailable())?);
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx + 1 < self.log.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.log.term(idx).ok_or_else(unavailable)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.log.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.log.last_index())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The log start never moves yet, so no follower needs one (see docs/replication.md).
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}
