//! [`PartitionReplica`]: one partition's replica, a raft-rs `RawNode` over its [`ReplicaLog`].
//!
//! Contract with the driver ([`super::MultiRaft`]): [`PartitionReplica::handle_ready`]
//! appends what raft hands over to the log (stamping offsets and the epoch) and returns
//! whether the log needs a sync; the driver syncs it and then calls
//! [`PartitionReplica::on_synced`], which tells raft the entries are durable and releases the
//! messages that had to wait for that (votes, append acknowledgements). Raft persists
//! asynchronously (`advance_append_async` + `on_persist_ready`), so a leader counts its own
//! copy toward the commit only after the sync, like a follower's.
//!
//! Invariants asserted (they hold whatever peers send): the applied index and the high
//! watermark never go back; raft never truncates an applied entry; offsets strictly increase
//! (in the log). A proposal is known by `(term, index)`; a committed entry answers it only if
//! its term matches (an entry of another leader at that index means it was lost).

use super::batch::{batch_for_entry, check_batch, is_raft_control};
use super::log::{RaftStore, ReplicaLog, ReplicaLogError};
use super::{node_of, raft_id, GroupId, ReplicationError};
use crate::io::sim::SimRng;
use crate::model::Offset;
use crate::rpc::NodeId;
use bytes::Bytes;
use raft::eraftpb::{Entry, Message, MessageType};
use raft::{RawNode, StateRole};
use std::collections::BTreeMap;

/// Settings of one replica (the same for every group of a shard).
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub node: NodeId,
    /// Ticks without a leader before an election (randomized in `[e, 2e)`).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Seed for election timeouts (raft-rs draws them unseeded): the simulation's replay.
    pub election_seed: Option<u64>,
    /// At most this many of this replica's proposals wait for their commit.
    pub max_pending: usize,
    /// A quiescent leader hibernates its group after this many quiet ticks.
    pub hibernate_after_ticks: usize,
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
}

impl ReplicaConfig {
    /// Defaults for a 50 ms tick: heartbeats every 100 ms, elections after 0.5–1 s.
    pub fn new(node: NodeId) -> Self {
        ReplicaConfig {
            node,
            election_tick: 10,
            heartbeat_tick: 2,
            election_seed: None,
            max_pending: 4096,
            hibernate_after_ticks: 4,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
        }
    }
}

/// A proposal's entry: the term it was proposed in and its raft index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalId {
    pub term: u64,
    pub index: u64,
}

/// What a replica reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This leader appended its proposal (not yet durable): acks=1 may answer.
    Appended {
        id: ProposalId,
        base_offset: Offset,
        last_offset: Offset,
    },
    /// The proposal's entry committed (a majority persisted it): acks=all may answer.
    Committed {
        id: ProposalId,
        base_offset: Offset,
        last_offset: Offset,
    },
    /// Leadership changed before the proposal committed here; it may still commit
    /// (REQUEST_TIMED_OUT, possibly persisted).
    Lost { id: ProposalId },
    /// The high watermark moved (the offset after the last committed entry applied).
    HighWatermark { hw: Offset, commit_index: u64 },
    /// The leader or term this replica knows changed.
    Leader { leader: Option<NodeId>, term: u64 },
}

/// What a tick did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickOutcome {
    Ticked,
    /// The group is hibernating: not ticked.
    Asleep,
    /// This leader just hibernated the group: tell the followers.
    Hibernated,
}

/// raft-rs logs through slog; its warnings and errors go to ringmq's log.
struct RaftLogDrain;

impl slog::Drain for RaftLogDrain {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, r: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        match r.level() {
            slog::Level::Critical | slog::Level::Error => crate::error!("raft: {}", r.msg()),
            slog::Level::Warning => crate::warn!("raft: {}", r.msg()),
            _ => {}
        }
        Ok(())
    }
}

pub struct PartitionReplica<L: ReplicaLog> {
    group: GroupId,
    node: RawNode<RaftStore<L>>,
    cfg: ReplicaConfig,
    voters: Vec<NodeId>,
    applied: u64,
    hw: Offset,
    /// This replica's proposals waiting for their commit: index → term.
    pending: BTreeMap<u64, u64>,
    leader: Option<NodeId>,
    term: u64,
    hibernated: bool,
    quiet_ticks: usize,
    /// The newest ready handed to the log and not yet synced.
    unsynced: Option<u64>,
    /// Messages that leave only after the sync.
    held: Vec<Message>,
    election_rng: Option<(SimRng, u64, StateRole)>,
}

impl<L: ReplicaLog> PartitionReplica<L> {
    /// Open the replica of `group` on `log` (recovered already), with the group's voters.
    pub fn new(
        group: GroupId,
        cfg: ReplicaConfig,
        voters: &[NodeId],
        log: L,
    ) -> Result<Self, ReplicationError> {
        let applied = log.hard_state().commit.min(log.last_index());
        let hw =
            log.end_offset(applied)
                .ok_or(ReplicationError::Log(ReplicaLogError::Misplaced {
                    expected: log.first_index(),
                    got: applied,
                }))?;
        let ids: Vec<u64> = voters.iter().map(|&v| raft_id(v)).collect();
        let mut c = raft::Config::new(raft_id(cfg.node));
        c.election_tick = cfg.election_tick;
        c.heartbeat_tick = cfg.heartbeat_tick;
        c.applied = applied;
        c.check_quorum = true;
        c.pre_vote = true;
        c.max_size_per_msg = cfg.max_size_per_msg;
        c.max_inflight_msgs = cfg.max_inflight_msgs;
        let logger = slog::Logger::root(RaftLogDrain, slog::o!());
        let node =
            RawNode::new(&c, RaftStore::new(log, &ids), &logger).map_err(ReplicationError::Raft)?;
        let election_rng = cfg.election_seed.map(|s| {
            (
                SimRng::new(s ^ group.0.wrapping_mul(0x9e37_79b9)),
                u64::MAX,
                StateRole::Follower,
            )
        });
        let mut r = PartitionReplica {
            group,
            node,
            cfg,
            voters: voters.to_vec(),
            applied,
            hw,
            pending: BTreeMap::new(),
            leader: None,
            term: 0,
            hibernated: false,
            quiet_ticks: 0,
            unsynced: None,
            held: Vec::new(),
            election_rng,
        };
        r.redraw_election_timeout();
        Ok(r)
    }

    /// The log, once the replica is dropped (its topic was deleted).
    pub fn into_log(self) -> L {
        self.node.raft.r.raft_log.store.log
    }

    pub fn group(&self) -> GroupId {
        self.group
    }
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }
    pub fn log(&self) -> &L {
        &self.node.store().log
    }
    /// The log, for the driver's sync.
    pub fn log_mut(&mut self) -> &mut L {
        &mut self.node.mut_store().log
    }
    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }
    /// The leader this replica knows.
    pub fn leader(&self) -> Option<NodeId> {
        node_of(self.node.raft.leader_id)
    }
    /// The current term (= the Kafka leader epoch).
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }
    /// The last index of raft's log (the log's, plus entries not yet handed to it).
    pub fn raft_last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }
    pub fn applied_index(&self) -> u64 {
        self.applied
    }
    pub fn high_watermark(&self) -> Offset {
        self.hw
    }
    pub fn is_hibernating(&self) -> bool {
        self.hibernated
    }
    /// A leader serves produce and fetch only once an entry of its own term committed (its
    /// high watermark then covers everything any earlier leader acknowledged).
    pub fn is_serving(&self) -> bool {
        self.is_leader() && self.log().term(self.applied) == Some(self.term())
    }

    /// Role, term, leader, commit, applied and last index, for test failure messages.
    pub fn debug_state(&self) -> String {
        let r = &self.node.raft;
        format!(
            "{} {:?} term {} leader {} commit {} applied {} last {} hibernating {}",
            self.group,
            r.state,
            r.term,
            r.leader_id,
            r.raft_log.committed,
            self.applied,
            r.raft_log.last_index(),
            self.hibernated
        )
    }

    /// Propose one RecordBatch v2 (a client's; not a control batch). Its outcome arrives as
    /// [`Event`]s under the returned id.
    pub fn propose(&mut self, batch: Bytes) -> Result<ProposalId, ReplicationError> {
        if !self.is_leader() {
            return Err(ReplicationError::NotLeader {
                leader: self.leader(),
            });
        }
        if self.pending.len() >= self.cfg.max_pending {
            return Err(ReplicationError::Busy);
        }
        let h = check_batch(&batch).map_err(ReplicationError::BadBatch)?;
        if h.is_control() {
            return Err(ReplicationError::BadBatch(
                crate::model::BatchError::BadLength(h.batch_length()),
            ));
        }
        self.wake();
        let before = self.node.raft.raft_log.last_index();
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = raft_id(self.cfg.node);
        m.set_entries(
            vec![Entry {
                data: batch,
                ..Default::default()
            }]
            .into(),
        );
        self.node.step(m).map_err(|_| ReplicationError::NotLeader {
            leader: self.leader(),
        })?;
        let id = ProposalId {
            term: self.node.raft.term,
            index: self.node.raft.raft_log.last_index(),
        };
        assert_eq!(id.index, before + 1, "a proposal appends exactly one entry");
        let stale = self.pending.insert(id.index, id.term);
        assert!(
            stale.is_none(),
            "two waiting proposals at index {}",
            id.index
        );
        Ok(id)
    }

    /// One tick, unless hibernating. A quiescent leader hibernates after
    /// `hibernate_after_ticks` quiet ticks, only if `may_hibernate` (every voter's node heard
    /// from recently).
    pub fn tick(&mut self, may_hibernate: bool) -> TickOutcome {
        if self.hibernated {
            return TickOutcome::Asleep;
        }
        // Judged before raft's own tick, which queues heartbeats (a ready) every few ticks.
        if may_hibernate && self.is_quiescent() {
            self.quiet_ticks += 1;
        } else {
            self.quiet_ticks = 0;
        }
        if self.quiet_ticks >= self.cfg.hibernate_after_ticks {
            self.hibernated = true;
            return TickOutcome::Hibernated;
        }
        self.node.tick();
        self.redraw_election_timeout();
        TickOutcome::Ticked
    }

    /// A leader whose every voter holds its whole log, all committed and applied, with
    /// nothing in flight.
    fn is_quiescent(&self) -> bool {
        let r = &self.node.raft;
        let last = r.raft_log.last_index();
        r.state == StateRole::Leader
            && self.pending.is_empty()
            && self.unsynced.is_none()
            && self.held.is_empty()
            && !self.node.has_ready()
            && r.raft_log.committed == last
            && self.applied == last
            && r.prs().iter().all(|(_, pr)| pr.matched == last)
    }

    /// Resume ticking; true if the group was hibernating.
    pub fn wake(&mut self) -> bool {
        self.quiet_ticks = 0;
        std::mem::replace(&mut self.hibernated, false)
    }

    /// A follower whose leader `from` said "hibernate" in `term`: stop ticking, if that is
    /// still our leader and term.
    pub fn follow_into_hibernation(&mut self, from: NodeId, term: u64) {
        let r = &self.node.raft;
        if r.state == StateRole::Follower && self.leader() == Some(from) && r.term == term {
            self.hibernated = true;
        }
    }

    /// The leader's node fell silent while this follower hibernated: behave as if no heartbeat
    /// came for an election timeout (which is true), so pre-vote may proceed.
    pub fn leader_lost(&mut self) {
        let r = &mut self.node.raft;
        if r.state != StateRole::Leader {
            r.election_elapsed = r.election_elapsed.max(self.cfg.election_tick);
        }
    }

    /// A message from a peer (validated by the wire decoder). Raft drops what it refuses.
    pub fn step(&mut self, msg: Message) {
        if let Err(e) = self.node.step(msg) {
            crate::debug!("{} dropped a message: {e}", self.group);
        }
        self.redraw_election_timeout();
    }

    /// Raft redraws the election timeout on every change of term or role; with a seed, so do
    /// we, from the seed.
    fn redraw_election_timeout(&mut self) {
        let Some((rng, term, role)) = self.election_rng.as_mut() else {
            return;
        };
        let r = &mut self.node.raft;
        if (*term, *role) != (r.term, r.state) {
            (*term, *role) = (r.term, r.state);
            let lo = self.cfg.election_tick;
            r.set_randomized_election_timeout(lo + rng.below(lo as u64) as usize);
        }
    }

    pub fn has_ready(&self) -> bool {
        self.node.has_ready()
    }

    /// Handle raft's ready: messages that may leave now go to `out`; entries and hard state go
    /// to the log; committed entries move the high watermark. True if the log needs a sync
    /// (then [`Self::on_synced`] after it).
    pub fn handle_ready(
        &mut self,
        out: &mut Vec<Message>,
        events: &mut Vec<Event>,
    ) -> Result<bool, ReplicationError> {
        if !self.node.has_ready() {
            return Ok(false);
        }
        let mut rd = self.node.ready();
        if let Some(ss) = rd.ss() {
            if ss.raft_state != StateRole::Leader {
                self.drop_pending(events);
            }
        }
        out.append(&mut rd.take_messages());
        if !rd.snapshot().is_empty() {
            return Err(ReplicationError::Log(ReplicaLogError::BadBatch(
                "raft snapshots are not supported yet".into(),
            )));
        }
        let entries = rd.take_entries();
        let dirty = !entries.is_empty() || rd.hs().is_some();
        self.append_entries(&entries, events)?;
        if let Some(hs) = rd.hs() {
            self.node.mut_store().log.set_hard_state(hs);
        }
        self.apply(rd.take_committed_entries(), events);
        self.held.append(&mut rd.take_persisted_messages());
        let number = rd.number();
        self.node.advance_append_async(rd);
        self.node.advance_apply();
        if dirty || self.unsynced.is_some() {
            self.unsynced = Some(number);
        } else {
            self.node.on_persist_ready(number);
            out.append(&mut self.held);
        }
        self.note_leader(events);
        Ok(self.unsynced.is_some())
    }

    /// The log synced everything [`Self::handle_ready`] gave it: raft may count it, and the
    /// held messages leave.
    pub fn on_synced(&mut self, out: &mut Vec<Message>) {
        if let Some(number) = self.unsynced.take() {
            self.node.on_persist_ready(number);
        }
        out.append(&mut self.held);
    }

    fn append_entries(
        &mut self,
        entries: &[Entry],
        events: &mut Vec<Event>,
    ) -> Result<(), ReplicationError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let log = &mut self.node.mut_store().log;
        if first.index <= log.last_index() {
            assert!(
                first.index > self.applied,
                "{}: raft truncates from {} below the applied index {}",
                self.group,
                first.index,
                self.applied
            );
            log.truncate_from(first.index)?;
        }
        for e in entries {
            let expected = log.last_index() + 1;
            let base = log.end_offset(e.index.wrapping_sub(1));
            let (Some(base), true) = (base, e.index == expected) else {
                return Err(ReplicaLogError::Misplaced {
                    expected,
                    got: e.index,
                }
                .into());
            };
            let batch = batch_for_entry(e, base)
                .map_err(|err| ReplicaLogError::BadBatch(err.to_string()))?;
            let last = check_batch(&batch).map(|h| h.last_offset()).unwrap_or(base);
            log.append(e.term, batch)?;
            if self.pending.get(&e.index) == Some(&e.term) {
                let id = ProposalId {
                    term: e.term,
                    index: e.index,
                };
                events.push(Event::Appended {
                    id,
                    base_offset: base,
                    last_offset: last,
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, committed: Vec<Entry>, events: &mut Vec<Event>) {
        for e in committed {
            if e.index <= self.applied {
                continue;
            }
            assert_eq!(
                e.index,
                self.applied + 1,
                "{}: entries apply in order",
                self.group
            );
            self.applied = e.index;
            let Some(term) = self.pending.remove(&e.index) else {
                continue;
            };
            let id = ProposalId {
                term,
                index: e.index,
            };
            let log = &self.node.store().log;
            match (log.end_offset(e.index - 1), log.end_offset(e.index)) {
                (Some(base), Some(end)) if term == e.term => events.push(Event::Committed {
                    id,
                    base_offset: base,
                    last_offset: end - 1,
                }),
                _ => events.push(Event::Lost { id }),
            }
        }
        let hw = self.log().end_offset(self.applied).unwrap_or(self.hw);
        assert!(
            hw >= self.hw,
            "{}: the high watermark went back",
            self.group
        );
        if hw != self.hw {
            self.hw = hw;
            events.push(Event::HighWatermark {
                hw,
                commit_index: self.applied,
            });
        }
    }

    fn drop_pending(&mut self, events: &mut Vec<Event>) {
        for (index, term) in std::mem::take(&mut self.pending) {
            events.push(Event::Lost {
                id: ProposalId { term, index },
            });
        }
    }

    fn note_leader(&mut self, events: &mut Vec<Event>) {
        let (leader, term) = (self.leader(), self.term());
        if (leader, term) != (self.leader, self.term) {
            (self.leader, self.term) = (leader, term);
            events.push(Event::Leader { leader, term });
        }
    }
}

/// True if a raft message from a peer is one raft-rs can step without breaking its own
/// assertions: no snapshot (not supported yet); the entries of an append are consecutive from
/// `index + 1`, in terms not above the message's and not going down; every data entry is a
/// valid batch that is not one of our raft control batches (raft's own entries travel as raft
/// entry types).
pub fn message_is_valid(m: &Message) -> bool {
    if m.get_msg_type() == MessageType::MsgSnapshot {
        return false;
    }
    let mut prev = (m.index, m.log_term);
    for e in m.entries.iter() {
        if e.index != prev.0.wrapping_add(1) || e.term < prev.1 || e.term > m.term {
            return false;
        }
        prev = (e.index, e.term);
        let data_entry =
            e.get_entry_type() == raft::eraftpb::EntryType::EntryNormal && !e.data.is_empty();
        if data_entry && (check_batch(&e.data).is_err() || is_raft_control(&e.data)) {
            return false;
        }
    }
    true
}
