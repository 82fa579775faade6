//! [`MemLog`]: a [`ReplicaLog`] in memory over a [`MemDisk`] that loses what was not synced.
//!
//! The "disk" holds one byte file, the batches back to back exactly as a segment file holds
//! them, plus a 3-word hard state (term, vote, commit). Appends and truncations since the last
//! sync are pending operations. [`MemDisk::crash`] is power loss: a random prefix of the
//! pending operations lands, the next write may be torn at a random byte (and a bit in the
//! torn part flipped), the rest is lost, and the pending hard state lands or not. Reopening
//! ([`MemLog::open`]) is recovery: the file is scanned batch by batch (length, CRC, base offset
//! = previous end, epoch not going down); the first batch that fails ends the log and the file
//! is cut there. The entry index is the batch's ordinal, its term its `partitionLeaderEpoch`:
//! nothing but the batches and the hard state is stored. `storage::PartitionLog` will implement
//! [`ReplicaLog`] the same way over its segments.

use super::batch::check_batch;
use super::epochs::EpochCache;
use super::log::{ReplicaLog, ReplicaLogError};
use crate::io::sim::SimRng;
use crate::model::Offset;
use bytes::Bytes;
use raft::eraftpb::HardState;
use std::cell::RefCell;
use std::rc::Rc;

enum Op {
    Write { pos: usize, data: Bytes },
    Truncate(usize),
}

#[derive(Default)]
struct DiskState {
    durable: Vec<u8>,
    pending: Vec<Op>,
    hard: [u64; 3],
    hard_pending: Option<[u64; 3]>,
    syncs: u64,
}

fn apply(file: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { pos, data } => {
            file.resize(*pos, 0);
            file.extend_from_slice(data);
        }
        Op::Truncate(len) => file.truncate(*len),
    }
}

/// The simulated disk under one [`MemLog`]. Clones share it (the log and the test that
/// crashes it).
#[derive(Clone, Default)]
pub struct MemDisk(Rc<RefCell<DiskState>>);

impl MemDisk {
    /// Power loss (see the module docs); a [`MemLog`] open on this disk must be dropped.
    pub fn crash(&self, rng: &mut SimRng) {
        let mut d = self.0.borrow_mut();
        let pending = std::mem::take(&mut d.pending);
        let keep = rng.below(pending.len() as u64 + 1) as usize;
        for op in &pending[..keep] {
            apply(&mut d.durable, op);
        }
        if let Some(Op::Write { pos, data }) = pending.get(keep) {
            let cut = rng.below(data.len() as u64) as usize;
            let mut torn = data[..cut].to_vec();
            if cut > 0 && rng.below(4) == 0 {
                let at = rng.below(cut as u64) as usize;
                torn[at] ^= 1 << rng.below(8);
            }
            apply(
                &mut d.durable,
                &Op::Write {
                    pos: *pos,
                    data: torn.into(),
                },
            );
        }
        if let Some(hs) = d.hard_pending.take() {
            if rng.below(2) == 0 {
                d.hard = hs;
            }
        }
    }

    /// Successful syncs so far.
    pub fn syncs(&self) -> u64 {
        self.0.borrow().syncs
    }
}

struct Meta {
    term: u64,
    end: Offset,
    pos: usize,
    batch: Bytes,
}

/// A replica's log in memory (see the module docs).
pub struct MemLog {
    disk: MemDisk,
    entries: Vec<Meta>,
    epochs: EpochCache,
    hard: HardState,
    file_len: usize,
}

impl MemLog {
    /// Open (recover) the log on `disk`.
    pub fn open(disk: MemDisk) -> MemLog {
        let mut log = MemLog {
            disk,
            entries: Vec::new(),
            epochs: EpochCache::default(),
            hard: HardState::default(),
            file_len: 0,
        };
        let bytes = {
            let mut d = log.disk.0.borrow_mut();
            d.pending.clear();
            d.hard_pending = None;
            Bytes::from(d.durable.clone())
        };
        while let Some(total) = log.next_valid(&bytes) {
            let batch = bytes.slice(log.file_len..log.file_len + total);
            let h = check_batch(&batch).expect("checked by next_valid");
            let (term, end) = (h.partition_leader_epoch().0 as u64, h.last_offset() + 1);
            log.push(term, end, batch);
        }
        let mut d = log.disk.0.borrow_mut();
        d.durable.truncate(log.file_len);
        let [term, vote, commit] = d.hard;
        log.hard = HardState {
            term,
            vote,
            commit: commit.min(log.entries.len() as u64),
            ..Default::default()
        };
        drop(d);
        log
    }

    /// Length of the valid batch at the file's current end, if one is there.
    fn next_valid(&self, bytes: &[u8]) -> Option<usize> {
        let rest = bytes.get(self.file_len..)?;
        let h = crate::model::BatchHeader::parse(rest).ok()?;
        let total = h.total_bytes().ok()?;
        let h = check_batch(rest.get(..total)?).ok()?;
        let prev_term = self.entries.last().map_or(0, |m| m.term);
        let epoch_ok =
            h.partition_leader_epoch().0 >= 0 && h.partition_leader_epoch().0 as u64 >= prev_term;
        (h.base_offset() == self.log_end() && epoch_ok).then_some(total)
    }

    fn push(&mut self, term: u64, end: Offset, batch: Bytes) {
        let index = self.entries.len() as u64 + 1;
        self.epochs.push(term, index);
        let pos = self.file_len;
        self.file_len += batch.len();
        self.entries.push(Meta {
            term,
            end,
            pos,
            batch,
        });
    }

    fn log_end(&self) -> Offset {
        self.entries.last().map_or(0, |m| m.end)
    }

    fn meta(&self, index: u64) -> Option<&Meta> {
        self.entries
            .get(usize::try_from(index.checked_sub(1)?).ok()?)
    }

    /// The disk under this log.
    pub fn disk(&self) -> &MemDisk {
        &self.disk
    }
}

impl ReplicaLog for MemLog {
    fn first_index(&self) -> u64 {
        1
    }
    fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }
    fn term(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.meta(index).map(|m| m.term)
    }
    fn batch(&self, index: u64) -> Option<Bytes> {
        self.meta(index).map(|m| m.batch.clone())
    }
    fn end_offset(&self, index: u64) -> Option<Offset> {
        if index == 0 {
            return Some(0);
        }
        self.meta(index).map(|m| m.end)
    }

    fn append(&mut self, term: u64, batch: Bytes) -> Result<(), ReplicaLogError> {
        let h = check_batch(&batch).map_err(|e| ReplicaLogError::BadBatch(e.to_string()))?;
        let last_term = self.entries.last().map_or(0, |m| m.term);
        if h.base_offset() != self.log_end() || h.partition_leader_epoch().0 as u64 != term {
            return Err(ReplicaLogError::BadBatch(format!(
                "stamped {}@{}, log end {} term {term}",
                h.base_offset(),
                h.partition_leader_epoch(),
                self.log_end()
            )));
        }
        assert!(term >= last_term, "terms in a raft log never go down");
        let end = h.last_offset() + 1;
        assert!(end > self.log_end(), "offsets strictly increase");
        let pos = self.file_len;
        self.disk.0.borrow_mut().pending.push(Op::Write {
            pos,
            data: batch.clone(),
        });
        self.push(term, end, batch);
        Ok(())
    }

    fn truncate_from(&mut self, index: u64) -> Result<(), ReplicaLogError> {
        if index == 0 || index <= self.hard.commit {
            return Err(ReplicaLogError::BadTruncate {
                index,
                commit: self.hard.commit,
            });
        }
        let Some(pos) = self.meta(index).map(|m| m.pos) else {
            return Ok(());
        };
        self.entries.truncate(index as usize - 1);
        self.epochs.truncate_from(index);
        self.file_len = pos;
        self.disk.0.borrow_mut().pending.push(Op::Truncate(pos));
        Ok(())
    }

    fn hard_state(&self) -> HardState {
        self.hard.clone()
    }

    fn set_hard_state(&mut self, hs: &HardState) {
        self.hard = hs.clone();
        self.disk.0.borrow_mut().hard_pending = Some([hs.term, hs.vote, hs.commit]);
    }

    fn epoch_end_offset(&self, epoch: u64) -> Option<(u64, Offset)> {
        self.epochs
            .end_of(epoch, |i| self.end_offset(i), self.log_end())
    }
}

impl MemLog {
    /// Make every append, truncation and hard state so far durable.
    pub fn sync(&mut self) -> Result<(), ReplicaLogError> {
        let mut d = self.disk.0.borrow_mut();
        for op in std::mem::take(&mut d.pending) {
            apply(&mut d.durable, &op);
        }
        if let Some(hs) = d.hard_pending.take() {
            d.hard = hs;
        }
        d.syncs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{stamp_batch, test_batches, LeaderEpoch};

    fn stamped(records: usize, base: Offset, term: u64) -> Bytes {
        let values: Vec<&[u8]> = (0..records).map(|_| &b"v"[..]).collect();
        let mut b = test_batches::batch(&values, 1);
        stamp_batch(&mut b, base, LeaderEpoch(term as i32));
        Bytes::from(b)
    }

    fn fill(log: &mut MemLog, terms: &[u64]) {
        for &t in terms {
            let base = log.end_offset(log.last_index()).unwrap();
            log.append(t, stamped(2, base, t)).unwrap();
        }
    }

    #[test]
    fn offsets_terms_and_epoch_cache() {
        let mut log = MemLog::open(MemDisk::default());
        fill(&mut log, &[1, 1, 3, 3, 4]);
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.end_offset(3), Some(6));
        assert_eq!(
            (log.term(0), log.term(3), log.term(6)),
            (Some(0), Some(3), None)
        );
        assert_eq!(log.epoch_end_offset(1), Some((1, 4)));
        assert_eq!(
            log.epoch_end_offset(2),
            Some((1, 4)),
            "epoch 2 never led: ends with 1"
        );
        assert_eq!(log.epoch_end_offset(3), Some((3, 8)));
        assert_eq!(log.epoch_end_offset(9), Some((4, 10)));
        assert_eq!(log.epoch_end_offset(0), None);
        assert!(
            log.append(4, stamped(1, 7, 4)).is_err(),
            "misplaced offset refused"
        );
        log.truncate_from(4).unwrap();
        assert_eq!(
            (log.last_index(), log.epoch_end_offset(9)),
            (3, Some((3, 6)))
        );
        fill(&mut log, &[5]);
        assert_eq!(log.epoch_end_offset(4), Some((3, 6)));
    }

    #[test]
    fn recovery_keeps_synced_batches_and_a_valid_prefix_of_the_rest() {
        for seed in 0..200 {
            let mut rng = SimRng::new(seed);
            let disk = MemDisk::default();
            let mut log = MemLog::open(disk.clone());
            fill(&mut log, &[1, 1, 2]);
            log.set_hard_state(&HardState {
                term: 2,
                vote: 1,
                commit: 2,
                ..Default::default()
            });
            log.sync().unwrap();
            let synced: Vec<Bytes> = (1..=3).map(|i| log.batch(i).unwrap()).collect();
            log.truncate_from(3).unwrap();
            fill(&mut log, &[3, 3, 3]);
            let later: Vec<Bytes> = (3..=5).map(|i| log.batch(i).unwrap()).collect();
            drop(log);
            disk.crash(&mut rng);
            let log = MemLog::open(disk.clone());
            let n = log.last_index();
            assert!(n >= 2, "seed {seed}: synced committed entries survive");
            for i in 1..=n {
                let want = if i <= 2 || (i == 3 && log.term(3) == Some(2)) {
                    &synced[i as usize - 1]
                } else {
                    &later[i as usize - 3]
                };
                assert_eq!(&log.batch(i).unwrap(), want, "seed {seed}: entry {i}");
            }
            assert_eq!(log.hard_state().commit, 2);
        }
    }
}
