//! What a replicated partition needs from its [`PartitionLog`] (the raft log of
//! `replication::StoredLog` is the partition's segment files): appends of raft entries that
//! are stamped already, truncation of a replica's uncommitted suffix, and the raft
//! hard-state file.
//!
//! The hard state (`raft-state`: term, vote, commit index) is framed like every file of ours
//! (magic `RMQR`, 24-byte payload) and replaced atomically; a missing or damaged file reads
//! as `None` (a fresh replica: term 0, no vote).
//!
//! Truncation is rare (a follower that held entries of a deposed leader) and reuses
//! recovery: the log is closed, the segment holding the cut is cut at the batch boundary,
//! later segments and the cut segment's indexes are removed, the checkpoint's recovery point
//! moves to the first segment (so recovery scans the rest and rebuilds the producer state),
//! and the log is opened again. It therefore costs a scan of the log; see `docs/replication.md`.

use bytes::Bytes;

use super::checkpoint::{Checkpoint, Mark, CHECKPOINT_FILE};
use super::format::{frame, read_whole, unframe, write_atomic, Reader};
use super::partition::{Mode, PartitionLog};
use super::producer::{ProducerBatch, SequenceCheck};
use super::segment::segment_paths;
use super::{AppendInfo, StorageError};
use crate::io::{Disk, DiskFile};
use crate::model::{BatchError, BatchHeader, Offset, BATCH_HEADER_BYTES};

/// The hard-state file in the partition's directory.
pub const RAFT_STATE_FILE: &str = "raft-state";
const RAFT_STATE_MAGIC: &[u8; 4] = b"RMQR";

/// A raft group's hard state as stored next to its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

impl RaftState {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(24);
        for v in [self.term, self.vote, self.commit] {
            p.extend_from_slice(&v.to_be_bytes());
        }
        frame(RAFT_STATE_MAGIC, &p)
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let payload = unframe(RAFT_STATE_MAGIC, bytes)?;
        if payload.len() != 24 {
            return None;
        }
        let mut r = Reader::new(payload);
        Some(RaftState {
            term: r.u64()?,
            vote: r.u64()?,
            commit: r.u64()?,
        })
    }
}

impl<D: Disk> PartitionLog<D> {
    /// Append a raft entry's batch, stamped already with its base offset (which must be the
    /// log end) and its partitionLeaderEpoch (the entry's term). It is validated like any
    /// batch and stored byte for byte: no LogAppendTime, and never refused for its producer
    /// sequence (the producer state is still kept), so every replica stores the same bytes.
    pub async fn append_replicated(&self, batch: Bytes) -> Result<AppendInfo, StorageError> {
        let h = BatchHeader::parse(&batch).map_err(StorageError::CorruptBatch)?;
        let total = h.validate().map_err(StorageError::CorruptBatch)?;
        if total != batch.len() {
            let e = BatchError::BadLength(h.batch_length());
            return Err(StorageError::CorruptBatch(e));
        }
        let epoch = h.partition_leader_epoch();
        self.append_as(batch, epoch, Mode::Replicated).await
    }

    /// The idempotent-producer verdict on `batch` against the batches this log holds (a
    /// replicated partition's leader asks before it proposes): `Some(original)` for an exact
    /// retry, `None` to append; an epoch or sequence error otherwise.
    pub fn check_sequence(&self, batch: &[u8]) -> Result<Option<ProducerBatch>, StorageError> {
        let h = BatchHeader::parse(batch).map_err(StorageError::CorruptBatch)?;
        let (pid, epoch) = (h.producer_id(), h.producer_epoch());
        let (first, last) = (h.base_sequence(), h.last_sequence());
        match self.state().producers.check(pid, epoch, first, last)? {
            SequenceCheck::Accept => Ok(None),
            SequenceCheck::Duplicate(original) => Ok(Some(original)),
        }
    }

    /// The raft hard state stored with this log; `None` if never written or unreadable.
    pub async fn read_raft_state(&self) -> Result<Option<RaftState>, StorageError> {
        let path = self.dir().join(RAFT_STATE_FILE);
        let bytes = read_whole(&self.shared.disk, &path)
            .await
            .map_err(|e| StorageError::io("read", &path, e))?;
        Ok(bytes.and_then(|b| RaftState::decode(&b)))
    }

    /// Replace the stored raft hard state durably (temporary file, fdatasync, rename,
    /// directory sync).
    pub async fn write_raft_state(&self, state: RaftState) -> Result<(), StorageError> {
        let path = self.dir().join(RAFT_STATE_FILE);
        write_atomic(&self.shared.disk, &path, &state.encode())
            .await
            .map_err(|e| StorageError::io("write", &path, e))
    }

    /// Drop every batch from `offset` on (`offset` must start a batch, at or after the log
    /// start). This handle is closed; the log comes back reopened (see the module docs). A
    /// refused offset leaves the log open and unchanged.
    pub async fn truncate_to(self, offset: Offset) -> Result<PartitionLog<D>, StorageError> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset == end {
            return Ok(self);
        }
        if offset < start || offset > end {
            let reason = format!("outside the log [{start}, {end}]");
            return Err(StorageError::BadTruncation { offset, reason });
        }
        self.sync_through(end - 1).await?;
        let (base, position) = self.position_of(offset).await?;
        self.close().await?;
        self.cut_files(base, position).await?;
        let disk = self.shared.disk.clone();
        let dir = self.shared.dir.clone();
        let cache = self.shared.cache.clone();
        let config = self.config();
        crate::info!(
            "partition {}: truncated from offset {offset} (log end was {end})",
            dir.display()
        );
        PartitionLog::open(disk, dir, config, cache).await
    }

    /// The segment holding `offset` and the file position of the batch starting there,
    /// walking batch headers from the sparse index entry before it.
    async fn position_of(&self, offset: Offset) -> Result<(Offset, u64), StorageError> {
        let bad = |reason: String| StorageError::BadTruncation { offset, reason };
        let (base, file, size, (mut pos, mut at)) = {
            let st = self.state();
            let seg = st.segments.range(..=offset).next_back().map(|(_, s)| s);
            let seg = seg.ok_or_else(|| bad("before the first segment".into()))?;
            let start = seg.position_for(offset);
            (seg.base_offset, seg.file.clone(), seg.size_bytes, start)
        };
        while at < offset {
            let path = segment_paths(self.dir(), base)[0].clone();
            let head = file
                .read_at(pos, BATCH_HEADER_BYTES)
                .await
                .map_err(|e| StorageError::io("read", &path, e))?;
            let h = BatchHeader::parse(&head).map_err(StorageError::CorruptBatch)?;
            let len = h.total_bytes().map_err(StorageError::CorruptBatch)? as u64;
            if h.base_offset() != at || pos + len > size {
                return Err(bad(format!("no batch at {at} (position {pos})")));
            }
            pos += len;
            at = h.last_offset() + 1;
        }
        if at != offset {
            return Err(bad(format!("inside the batch that ends at {at}")));
        }
        Ok((base, pos))
    }

    /// Cut segment `base` at `position`, remove every later segment and the indexes of the
    /// cut one, and point the checkpoint's recovery point at the first segment. The log is
    /// closed.
    async fn cut_files(&self, base: Offset, position: u64) -> Result<(), StorageError> {
        let disk = &self.shared.disk;
        let dir = self.dir();
        let (later, file, first, log_start) = {
            let st = self.state();
            let later: Vec<Offset> = st.segments.range(base + 1..).map(|(&b, _)| b).collect();
            let first = *st.segments.keys().next().expect("a log has a segment");
            (later, st.segments[&base].file.clone(), first, st.log_start)
        };
        for b in later.into_iter().rev() {
            for path in segment_paths(dir, b) {
                remove_if_present(disk, &path).await?;
            }
        }
        let [log_path, index, time_index] = segment_paths(dir, base);
        file.truncate(position)
            .await
            .map_err(|e| StorageError::io("truncate", &log_path, e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync", &log_path, e))?;
        remove_if_present(disk, &index).await?;
        remove_if_present(disk, &time_index).await?;
        let checkpoint = Checkpoint {
            log_start_offset: log_start,
            recovery_point: Mark {
                segment_base: first,
                position: 0,
                next_offset: first,
            },
            producers: Default::default(),
        };
        let path = dir.join(CHECKPOINT_FILE);
        write_atomic(disk, &path, &checkpoint.encode())
            .await
            .map_err(|e| StorageError::io("write", &path, e))
    }
}

async fn remove_if_present<D: Disk>(disk: &D, path: &std::path::Path) -> Result<(), StorageError> {
    match disk.remove(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;
    use crate::model::{stamp_batch, LeaderEpoch};
    use crate::storage::test_util::{batch, idempotent_batch, run};
    use crate::storage::{BatchCache, LogConfig};
    use std::path::PathBuf;

    fn stamped(mut b: Vec<u8>, base: Offset, epoch: i32) -> Bytes {
        stamp_batch(&mut b, base, LeaderEpoch(epoch));
        Bytes::from(b)
    }

    async fn open(disk: &SimDisk, config: LogConfig) -> PartitionLog<SimDisk> {
        let dir = PathBuf::from("/data/r-0");
        PartitionLog::open(disk.clone(), dir, config, BatchCache::new(1 << 20))
            .await
            .unwrap()
    }

    fn small() -> LogConfig {
        LogConfig {
            segment_bytes: 4 * 1024,
            index_interval_bytes: 512,
            ..LogConfig::default()
        }
    }

    #[test]
    fn replicated_appends_keep_their_stamps_and_skip_sequence_checks() {
        run(|| async {
            let disk = SimDisk::new(3);
            let log = open(&disk, small()).await;
            let b = stamped(batch(2, 30, 5).to_vec(), 0, 7);
            let info = log.append_replicated(b.clone()).await.unwrap();
            assert_eq!((info.base_offset, info.last_offset), (0, 1));
            let misplaced = stamped(batch(1, 30, 5).to_vec(), 5, 7);
            assert!(matches!(
                log.append_replicated(misplaced).await,
                Err(StorageError::Misplaced { log_end: 2, .. })
            ));
            // Sequence 5 first would be out of order for a client; a replica stores it.
            let idem = stamped(idempotent_batch(9, 0, 5, 1).to_vec(), 2, 7);
            log.append_replicated(idem.clone()).await.unwrap();
            let read = log.read(0, 1 << 20).await.unwrap();
            assert_eq!(read.batches, vec![b, idem], "stored byte for byte");
        });
    }

    #[test]
    fn raft_state_round_trips_and_a_damaged_file_reads_as_none() {
        run(|| async {
            let disk = SimDisk::new(4);
            let log = open(&disk, small()).await;
            assert_eq!(log.read_raft_state().await.unwrap(), None);
            let hs = RaftState {
                term: 3,
                vote: 2,
                commit: 17,
            };
            log.write_raft_state(hs).await.unwrap();
            assert_eq!(log.read_raft_state().await.unwrap(), Some(hs));
            let path = PathBuf::from("/data/r-0").join(RAFT_STATE_FILE);
            let mut bytes = disk.file_bytes(&path).unwrap();
            bytes[20] ^= 1;
            disk.set_file_bytes(&path, bytes);
            assert_eq!(log.read_raft_state().await.unwrap(), None);
        });
    }

    #[test]
    fn truncation_drops_the_suffix_across_segments_and_survives_reopen() {
        run(|| async {
            let disk = SimDisk::new(5);
            let mut log = open(&disk, small()).await;
            let mut ends = Vec::new();
            for i in 0..40 {
                let base = log.log_end_offset();
                let b = stamped(batch(3, 100, i).to_vec(), base, 1 + i as i32 / 10);
                ends.push(log.append_replicated(b).await.unwrap().last_offset + 1);
            }
            log.sync_through(log.log_end_offset() - 1).await.unwrap();
            assert!(log.state().segments.len() > 3, "the test spans segments");
            assert!(matches!(
                log.clone().truncate_to(ends[10] + 1).await,
                Err(StorageError::BadTruncation { .. })
            ));
            log = log.truncate_to(ends[12]).await.unwrap();
            assert_eq!(log.log_end_offset(), ends[12]);
            let base = log.log_end_offset();
            let next = stamped(batch(1, 10, 99).to_vec(), base, 9);
            log.append_replicated(next.clone()).await.unwrap();
            log.close().await.unwrap();
            let log = open(&disk, small()).await;
            assert_eq!(log.log_end_offset(), ends[12] + 1);
            let mut at = 0;
            let mut seen = 0;
            while at < log.log_end_offset() {
                let read = log.read(at, 1 << 20).await.unwrap();
                for b in &read.batches {
                    let h = BatchHeader::parse(b).unwrap();
                    assert_eq!(h.base_offset(), at, "dense offsets after the cut");
                    at = h.last_offset() + 1;
                    seen += 1;
                }
            }
            assert_eq!(seen, 14);
            let last = log.read(ends[12], 1 << 20).await.unwrap();
            assert_eq!(last.batches, vec![next]);
        });
    }
}
