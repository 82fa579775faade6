//! [`StoredLog`]: a partition's [`PartitionLog`] as a raft log ([`ReplicaLog`]).
//!
//! One write: raft entry `i` is the `i`-th batch of the partition's segment files, stamped
//! (base offset, partitionLeaderEpoch = term) before it is stored; nothing else about an
//! entry is stored. In memory the log keeps, per entry, its end offset (the raft-index ↔
//! offset map: 8 bytes an entry), the leader-epoch cache, and the batches of the newest
//! entries (at most [`TAIL_BYTES`], plus any not yet stored). [`StoredLog::open`] rebuilds
//! all of it by reading the partition back from its log start (recovery).
//!
//! Writes are two-phase, because raft's side is synchronous and the disk's is not:
//! [`ReplicaLog::append`], `truncate_from` and `set_hard_state` only change memory (readable
//! at once); the driver then takes the work ([`StoredLog::take_persist`]), runs it
//! ([`Persist::run`]: the truncation, the appends, the sync, the hard state) without holding
//! the log, and hands the result back ([`StoredLog::persisted`]). The hard-state file is
//! rewritten only when the term or vote changed (a raft election): the commit index it holds
//! may lag, which raft allows (a restarted replica learns the commit from its leader, and a
//! new leader serves only once an entry of its own term committed).
//!
//! An entry raft asks for that is no longer in memory (a follower far behind) is answered
//! "unavailable" and noted; the driver reads it back ([`StoredLog::read_back`]) into a
//! bounded side cache, where raft's next attempt (its next heartbeat round) finds it.

use super::epochs::EpochCache;
use super::log::{ReplicaLog, ReplicaLogError};
use super::{GroupId, MultiRaft};
use crate::base::join_all;
use crate::io::Disk;
use crate::model::{BatchHeader, Offset};
use crate::storage::{PartitionLog, RaftState, StorageError};
use bytes::Bytes;
use raft::eraftpb::HardState;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};

/// Bytes of the newest entries' batches kept in memory per log (for followers' appends).
pub const TAIL_BYTES: usize = 4 << 20;
/// Bytes of older entries read back for lagging followers, kept per log.
pub const READ_BACK_BYTES: usize = 4 << 20;
/// Bytes one read-back reads.
const READ_BACK_CHUNK_BYTES: usize = 1 << 20;

/// A partition log seen as a raft log (see the module docs).
pub struct StoredLog<D: Disk> {
    log: PartitionLog<D>,
    /// `ends[i]`: the offset after entry `i + 1`.
    ends: Vec<Offset>,
    epochs: EpochCache,
    /// Batches of entries `last_index() - tail.len() + 1 ..= last_index()`.
    tail: VecDeque<Bytes>,
    tail_bytes: usize,
    /// Older entries read back from disk, by index.
    read_back: BTreeMap<u64, Bytes>,
    read_back_bytes: usize,
    /// The lowest entry raft asked for that was not in memory.
    missing: Cell<Option<u64>>,
    hard: HardState,
    /// What the hard-state file holds.
    stored: RaftState,
    /// Entries `1..=in_log` are in the partition log (appended, maybe not yet synced).
    in_log: u64,
    /// The partition log must be cut here before the next appends.
    cut_at: Option<Offset>,
    /// Whether a sync must make the appends durable (topic `durability` = `always`).
    sync_data: bool,
}

/// One round of writes taken from a [`StoredLog`], run without holding it.
pub struct Persist<D: Disk> {
    log: PartitionLog<D>,
    cut_at: Option<Offset>,
    appends: Vec<Bytes>,
    last_index: u64,
    hard: Option<RaftState>,
    sync_data: bool,
}

/// What a [`Persist`] did, for [`StoredLog::persisted`].
pub struct Persisted<D: Disk> {
    log: PartitionLog<D>,
    last_index: u64,
    hard: Option<RaftState>,
}

fn storage(e: StorageError) -> ReplicaLogError {
    ReplicaLogError::Io(std::io::Error::other(e.to_string()))
}

impl<D: Disk> StoredLog<D> {
    /// Recover: read the partition back from its log start, batch by batch (each must start
    /// where the previous ended, with a term not below the previous one; the log is cut at
    /// the first that does not), and the hard state.
    pub async fn open(log: PartitionLog<D>, sync_data: bool) -> Result<Self, ReplicaLogError> {
        let mut s = StoredLog {
            log: log.clone(),
            ends: Vec::new(),
            epochs: EpochCache::default(),
            tail: VecDeque::new(),
            tail_bytes: 0,
            read_back: BTreeMap::new(),
            read_back_bytes: 0,
            missing: Cell::new(None),
            hard: HardState::default(),
            stored: RaftState::default(),
            in_log: 0,
            cut_at: None,
            sync_data,
        };
        let start = log.log_start_offset();
        if start != 0 {
            let why = format!("a replicated log starts at offset 0, this one at {start}");
            return Err(ReplicaLogError::BadBatch(why));
        }
        // Not cut: such a batch is data written before the partition was replicated (epoch
        // 0), which raft must not replace; the partition stays closed instead.
        if let Some(bad) = s.scan().await.map_err(storage)? {
            let why = format!("the batch at offset {bad} is not a raft entry (epoch or offset)");
            return Err(ReplicaLogError::BadBatch(why));
        }
        s.in_log = s.ends.len() as u64;
        if let Some(hs) = s.log.read_raft_state().await.map_err(storage)? {
            s.stored = hs;
            s.hard.term = hs.term;
            s.hard.vote = hs.vote;
            s.hard.commit = hs.commit.min(s.in_log);
        }
        Ok(s)
    }

    /// Read every batch back into the index; the offset of the first one that breaks the
    /// log's rules, if any.
    async fn scan(&mut self) -> Result<Option<Offset>, StorageError> {
        let mut at = 0;
        let end = self.log.log_end_offset();
        while at < end {
            let read = self.log.read(at, READ_BACK_CHUNK_BYTES).await?;
            if read.batches.is_empty() {
                return Ok(Some(at));
            }
            for batch in read.batches {
                let h = BatchHeader::parse(&batch).map_err(StorageError::CorruptBatch)?;
                let term = u64::try_from(h.partition_leader_epoch().0).unwrap_or(0);
                let ok = h.base_offset() == at && term >= self.epochs.last_term() && term > 0;
                if !ok {
                    return Ok(Some(at));
                }
                at = h.last_offset() + 1;
                self.push(term, at, batch);
            }
        }
        Ok(None)
    }

    fn push(&mut self, term: u64, end: Offset, batch: Bytes) {
        self.ends.push(end);
        self.epochs.push(term, self.ends.len() as u64);
        self.tail_bytes += batch.len();
        self.tail.push_back(batch);
        self.trim_tail();
    }

    /// Drop the oldest batches past [`TAIL_BYTES`], never one not yet in the partition log.
    fn trim_tail(&mut self) {
        let unstored = self.last_index() - self.in_log;
        while self.tail_bytes > TAIL_BYTES && self.tail.len() as u64 > unstored.max(1) {
            let b = self.tail.pop_front().expect("non-empty");
            self.tail_bytes -= b.len();
        }
    }

    /// The partition log (a cheap clone); replaced after a truncation.
    pub fn partition_log(&self) -> &PartitionLog<D> {
        &self.log
    }

    pub fn set_sync_data(&mut self, sync_data: bool) {
        self.sync_data = sync_data;
    }

    /// Whether anything waits to be written.
    pub fn has_work(&self) -> bool {
        self.cut_at.is_some() || self.in_log < self.last_index() || self.hard_changed()
    }

    fn hard_changed(&self) -> bool {
        (self.hard.term, self.hard.vote) != (self.stored.term, self.stored.vote)
    }

    /// The writes to do now (see the module docs).
    pub fn take_persist(&mut self) -> Persist<D> {
        let first_unstored = self.tail.len() as u64 - (self.last_index() - self.in_log);
        let appends = self
            .tail
            .iter()
            .skip(first_unstored as usize)
            .cloned()
            .collect();
        let hard = self.hard_changed().then_some(RaftState {
            term: self.hard.term,
            vote: self.hard.vote,
            commit: self.hard.commit,
        });
        Persist {
            log: self.log.clone(),
            cut_at: self.cut_at.take(),
            appends,
            last_index: self.last_index(),
            hard,
            sync_data: self.sync_data,
        }
    }

    /// A [`Persist`] finished: its entries are in the partition log (durable if it synced).
    /// Nothing may change the log between [`Self::take_persist`] and this call (the driver
    /// runs one round at a time and steps raft only between rounds).
    pub fn persisted(&mut self, done: Persisted<D>) {
        assert!(
            self.cut_at.is_none() && done.last_index <= self.last_index(),
            "{}: the log changed during its persist",
            self.log.dir().display()
        );
        self.log = done.log;
        self.in_log = done.last_index;
        if let Some(hs) = done.hard {
            self.stored = hs;
        }
        self.trim_tail();
    }

    /// A [`Persist`] failed part way: the partition log may hold some of its appends, so the
    /// next round first cuts it back to what is known stored, then appends again.
    pub fn persist_failed(&mut self) {
        let known = self.end_offset(self.in_log).unwrap_or(0);
        if self.log.log_end_offset() != known {
            self.cut_at = Some(self.cut_at.map_or(known, |c| c.min(known)));
        }
    }

    /// The lowest entry raft asked for that was not in memory, once.
    pub fn take_missing(&self) -> Option<u64> {
        self.missing.take()
    }

    /// What [`Self::read_back`] needs: the log and the offset where entry `index` starts.
    pub fn read_back_from(&self, index: u64) -> Option<(PartitionLog<D>, Offset)> {
        let start = self.end_offset(index.checked_sub(1)?)?;
        (index <= self.in_log).then(|| (self.log.clone(), start))
    }

    /// Batches read from offset `start` (through [`read_batches`]) for entries from `index`
    /// on: kept if they are exactly the entries the index expects.
    pub fn read_back(&mut self, index: u64, batches: Vec<Bytes>) {
        for (i, batch) in (index..).zip(batches) {
            let Some(end) = self.end_offset(i).filter(|_| i <= self.in_log) else {
                break;
            };
            let fits = BatchHeader::parse(&batch).is_ok_and(|h| h.last_offset() + 1 == end);
            if !fits {
                break;
            }
            self.read_back_bytes += batch.len();
            if let Some(old) = self.read_back.insert(i, batch) {
                self.read_back_bytes -= old.len();
            }
        }
        while self.read_back_bytes > READ_BACK_BYTES {
            let Some((_, b)) = self.read_back.pop_first() else {
                break;
            };
            self.read_back_bytes -= b.len();
        }
    }

    fn tail_first(&self) -> u64 {
        self.last_index() + 1 - self.tail.len() as u64
    }

    fn log_end(&self) -> Offset {
        self.ends.last().copied().unwrap_or(0)
    }
}

/// Steps 4 and 5 of a loop iteration (see [`super`]) over stored logs: run the persist of
/// every group `multi` names dirty (and of the `retry` groups whose last persist failed),
/// all at once (one flush or fdatasync per log, whatever it appended), then tell raft which
/// logs are durable. Returns the groups whose persist failed (to retry in the next round).
pub async fn persist_dirty<D: Disk>(
    multi: &RefCell<MultiRaft<StoredLog<D>>>,
    retry: Vec<GroupId>,
) -> Vec<(GroupId, StorageError)> {
    let work: Vec<(GroupId, Persist<D>)> = {
        let mut m = multi.borrow_mut();
        let mut dirty = m.take_dirty();
        for g in retry {
            if !dirty.contains(&g) {
                dirty.push(g);
            }
        }
        dirty
            .into_iter()
            .filter_map(|g| m.log_mut(g).map(|l| (g, l.take_persist())))
            .collect()
    };
    if work.is_empty() {
        return Vec::new();
    }
    let runs = work
        .into_iter()
        .map(|(g, p)| async move { (g, p.run().await) });
    let results = join_all(runs).await;
    let mut m = multi.borrow_mut();
    let (mut synced, mut failed) = (Vec::new(), Vec::new());
    for (g, result) in results {
        let Some(log) = m.log_mut(g) else { continue };
        match result {
            Ok(done) => {
                log.persisted(done);
                synced.push(g);
            }
            Err(e) => {
                log.persist_failed();
                failed.push((g, e));
            }
        }
    }
    m.persisted(&synced);
    failed
}

/// Read up to one chunk of whole batches from `start` (for [`StoredLog::read_back`]).
pub async fn read_batches<D: Disk>(
    log: &PartitionLog<D>,
    start: Offset,
) -> Result<Vec<Bytes>, StorageError> {
    Ok(log.read(start, READ_BACK_CHUNK_BYTES).await?.batches)
}

impl<D: Disk> Persist<D> {
    /// Whether the round writes data (not only the hard state).
    pub fn writes_data(&self) -> bool {
        self.cut_at.is_some() || !self.appends.is_empty()
    }

    /// Cut, append, sync (or flush), write the hard state.
    pub async fn run(self) -> Result<Persisted<D>, StorageError> {
        let mut log = self.log;
        if let Some(at) = self.cut_at {
            log = log.truncate_to(at).await?;
        }
        for batch in self.appends {
            log.append_replicated(batch).await?;
        }
        let end = log.log_end_offset();
        if self.sync_data && end > 0 {
            log.sync_through(end - 1).await?;
        } else {
            log.flush().await?;
        }
        if let Some(hs) = self.hard {
            log.write_raft_state(hs).await?;
        }
        Ok(Persisted {
            log,
            last_index: self.last_index,
            hard: self.hard,
        })
    }
}

impl<D: Disk> ReplicaLog for StoredLog<D> {
    fn first_index(&self) -> u64 {
        1
    }
    fn last_index(&self) -> u64 {
        self.ends.len() as u64
    }
    fn term(&self, index: u64) -> Option<u64> {
        (index <= self.last_index()).then(|| self.epochs.term_of(index))
    }
    fn batch(&self, index: u64) -> Option<Bytes> {
        if index == 0 || index > self.last_index() {
            return None;
        }
        let first = self.tail_first();
        if index >= first {
            return self.tail.get((index - first) as usize).cloned();
        }
        let found = self.read_back.get(&index).cloned();
        if found.is_none() && self.missing.get().is_none_or(|m| index < m) {
            self.missing.set(Some(index));
        }
        found
    }
    fn end_offset(&self, index: u64) -> Option<Offset> {
        match index {
            0 => Some(0),
            i => self.ends.get(usize::try_from(i - 1).ok()?).copied(),
        }
    }

    fn append(&mut self, term: u64, batch: Bytes) -> Result<(), ReplicaLogError> {
        let h = BatchHeader::parse(&batch).map_err(|e| ReplicaLogError::BadBatch(e.to_string()))?;
        let stamped = (
            h.base_offset(),
            u64::try_from(h.partition_leader_epoch().0).ok(),
        );
        if stamped != (self.log_end(), Some(term)) || term < self.epochs.last_term() {
            return Err(ReplicaLogError::BadBatch(format!(
                "stamped {}@{}, log end {} term {term}",
                h.base_offset(),
                h.partition_leader_epoch(),
                self.log_end()
            )));
        }
        let end = h.last_offset() + 1;
        assert!(end > self.log_end(), "offsets strictly increase");
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
        if index > self.last_index() {
            return Ok(());
        }
        let keep = index - 1;
        let drop_count = (self.last_index() - keep) as usize;
        for _ in 0..drop_count.min(self.tail.len()) {
            let b = self.tail.pop_back().expect("counted");
            self.tail_bytes -= b.len();
        }
        self.ends.truncate(keep as usize);
        self.epochs.truncate_from(index);
        self.read_back.retain(|&i, _| i <= keep);
        self.read_back_bytes = self.read_back.values().map(Bytes::len).sum();
        if self.in_log > keep {
            let at = self.log_end();
            self.cut_at = Some(self.cut_at.map_or(at, |c| c.min(at)));
            self.in_log = keep;
        }
        Ok(())
    }

    fn hard_state(&self) -> HardState {
        self.hard.clone()
    }
    fn set_hard_state(&mut self, hs: &HardState) {
        self.hard = hs.clone();
    }

    fn epoch_end_offset(&self, epoch: u64) -> Option<(u64, Offset)> {
        self.epochs
            .end_of(epoch, |i| self.end_offset(i), self.log_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;
    use crate::model::{stamp_batch, test_batches, LeaderEpoch};
    use crate::replication::{Event, MultiConfig};
    use crate::rpc::NodeId;
    use crate::storage::test_util::run;
    use crate::storage::{BatchCache, LogConfig};
    use std::path::PathBuf;

    async fn open(disk: &SimDisk) -> StoredLog<SimDisk> {
        let config = LogConfig {
            segment_bytes: 16 * 1024,
            ..LogConfig::default()
        };
        let dir = PathBuf::from("/data/t-0");
        let log = PartitionLog::open(disk.clone(), dir, config, BatchCache::new(1 << 20));
        StoredLog::open(log.await.unwrap(), true).await.unwrap()
    }

    fn entry(log: &StoredLog<SimDisk>, term: u64, value: &[u8]) -> Bytes {
        let mut b = test_batches::batch(&[value, value], 7);
        stamp_batch(&mut b, log.log_end(), LeaderEpoch(term as i32));
        Bytes::from(b)
    }

    async fn persist(log: &mut StoredLog<SimDisk>) {
        let done = log.take_persist().run().await.unwrap();
        log.persisted(done);
    }

    #[test]
    fn entries_truncation_and_hard_state_survive_reopen() {
        run(|| async {
            let disk = SimDisk::new(11);
            let mut log = open(&disk).await;
            for (i, term) in [1, 1, 2, 2, 2].into_iter().enumerate() {
                log.append(term, entry(&log, term, format!("a{i}").as_bytes()))
                    .unwrap();
            }
            let hs = HardState {
                term: 2,
                vote: 1,
                commit: 2,
                ..Default::default()
            };
            log.set_hard_state(&hs);
            persist(&mut log).await;
            assert!(
                log.truncate_from(2).is_err(),
                "never at or below the commit"
            );
            log.truncate_from(4).unwrap();
            assert!(log.has_work(), "the stored suffix must be cut");
            for v in [b"b0", b"b1"] {
                log.append(3, entry(&log, 3, v)).unwrap();
            }
            let expect: Vec<Bytes> = (1..=5).map(|i| log.batch(i).unwrap()).collect();
            persist(&mut log).await;
            drop(log);
            disk.crash();
            let log = open(&disk).await;
            let terms: Vec<u64> = (1..=5).map(|i| log.term(i).unwrap()).collect();
            assert_eq!(terms, vec![1, 1, 2, 3, 3]);
            let back: Vec<Bytes> = (1..=5).map(|i| log.batch(i).unwrap()).collect();
            assert_eq!(back, expect, "the same bytes after recovery");
            assert_eq!(log.end_offset(5), Some(10));
            assert_eq!(log.epoch_end_offset(2), Some((2, 6)));
            let hs = log.hard_state();
            assert_eq!((hs.term, hs.vote, hs.commit), (2, 1, 2));
        });
    }

    type Node = RefCell<MultiRaft<StoredLog<SimDisk>>>;

    async fn start_node(id: NodeId, disk: &SimDisk) -> Node {
        let mut cfg = MultiConfig::new(id);
        cfg.replica.election_seed = Some(id as u64 + 1);
        let mut m = MultiRaft::new(cfg);
        m.add_group(GroupId(1), &[0, 1, 2], open(disk).await)
            .unwrap();
        RefCell::new(m)
    }

    /// One loop iteration of every live node; envelopes reach their peers at once.
    async fn round(nodes: &[Option<Node>], tick: bool, events: &mut Vec<(NodeId, Event)>) {
        let mut mail = Vec::new();
        for (n, node) in nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            if tick {
                node.borrow_mut().tick();
            }
            assert!(node.borrow_mut().process().is_empty());
            assert!(persist_dirty(node, Vec::new()).await.is_empty());
            let mut m = node.borrow_mut();
            events.extend(m.take_events().into_iter().map(|(_, e)| (n as NodeId, e)));
            mail.extend(m.flush().into_iter().map(|(to, b)| (n as NodeId, to, b)));
        }
        for (from, to, bytes) in mail {
            if let Some(node) = &nodes[to as usize] {
                node.borrow_mut().receive(from, &bytes).unwrap();
            }
        }
    }

    fn leader(nodes: &[Option<Node>]) -> Option<usize> {
        nodes.iter().position(|n| {
            n.as_ref()
                .is_some_and(|n| n.borrow().group(GroupId(1)).unwrap().is_serving())
        })
    }

    fn read_all(node: &Node) -> Vec<Bytes> {
        let m = node.borrow();
        let log = m.group(GroupId(1)).unwrap().log();
        (1..=log.last_index())
            .map(|i| log.batch(i).unwrap())
            .collect()
    }

    #[test]
    fn three_stored_replicas_commit_and_a_restarted_one_catches_up() {
        run(|| async {
            let disks: Vec<SimDisk> = (0..3).map(|i| SimDisk::new(20 + i)).collect();
            let mut nodes = Vec::new();
            for (i, d) in disks.iter().enumerate() {
                nodes.push(Some(start_node(i as NodeId, d).await));
            }
            let mut events = Vec::new();
            let mut committed = 0;
            for r in 0..400 {
                round(&nodes, r % 2 == 0, &mut events).await;
                if let Some(l) = leader(&nodes) {
                    let value = format!("v{r}");
                    let b = Bytes::from(test_batches::batch(&[value.as_bytes()], r));
                    let mut m = nodes[l].as_ref().unwrap().borrow_mut();
                    m.propose(GroupId(1), b).unwrap();
                }
                if r == 150 {
                    let down = (leader(&nodes).unwrap() + 1) % 3;
                    nodes[down] = None;
                    disks[down].crash();
                }
                if r == 250 {
                    let down = nodes.iter().position(Option::is_none).unwrap();
                    nodes[down] = Some(start_node(down as NodeId, &disks[down]).await);
                }
                committed = events
                    .iter()
                    .filter(|(_, e)| matches!(e, Event::Committed { .. }))
                    .count();
            }
            for _ in 0..100 {
                round(&nodes, true, &mut events).await;
            }
            assert!(committed > 300, "only {committed} proposals committed");
            let logs: Vec<Vec<Bytes>> = nodes
                .iter()
                .map(|n| read_all(n.as_ref().unwrap()))
                .collect();
            assert!(logs[0].len() > committed);
            assert_eq!(logs[0], logs[1], "replicas diverge");
            assert_eq!(logs[0], logs[2], "replicas diverge");
        });
    }
}
