//! [`MultiRaft`]: one shard's driver of all its partition replicas (see the module docs of
//! [`super`] for one loop iteration).
//!
//! Batching: everything the shard's groups send to one node between two [`MultiRaft::flush`]
//! calls travels in one envelope ([`super::wire::Batch`]); raft heartbeats and their responses
//! travel as 25-byte beats. Each peer's outbox is bounded ([`MultiConfig::max_outbox_bytes`]);
//! a raft message that does not fit is dropped and counted (raft resends; a beat always fits,
//! as beats are bounded by the number of groups).
//!
//! Hibernation: a leader whose group is quiescent stops ticking it and tells its followers
//! (a beat flagged hibernate), which stop too; then the group costs nothing per tick, and one
//! keep-alive envelope per peer every [`MultiConfig::keepalive_ticks`] carries liveness for all
//! such groups. A peer silent for [`MultiConfig::silence_ticks`] wakes the groups that depend
//! on it (followers whose leader it is: their election may start at once; leaders with a
//! voter there: their check-quorum runs again). Any message for a group other than a beat
//! wakes it, and a follower woken by someone else than its leader asks the leader to wake too.

use super::replica::TickOutcome;
use super::replica::{message_is_valid, Event, PartitionReplica, ProposalId, ReplicaConfig};
use super::wire::{Batch, Beat, BEAT_HIBERNATE, BEAT_RESPONSE};
use super::{node_of, raft_id, GroupId, ReplicaLog, ReplicationError};
use crate::rpc::NodeId;
use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct MultiConfig {
    pub replica: ReplicaConfig,
    /// A peer that sent nothing for this many ticks counts as silent.
    pub silence_ticks: u64,
    /// A peer that got no envelope for this many ticks gets an empty one (a keep-alive).
    pub keepalive_ticks: u64,
    /// Most bytes of raft messages queued for one peer between two flushes.
    pub max_outbox_bytes: usize,
}

impl MultiConfig {
    pub fn new(node: NodeId) -> Self {
        let replica = ReplicaConfig::new(node);
        MultiConfig {
            silence_ticks: replica.election_tick as u64,
            keepalive_ticks: replica.heartbeat_tick as u64,
            max_outbox_bytes: 8 << 20,
            replica,
        }
    }
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MultiStats {
    pub envelopes_sent: u64,
    pub bytes_sent: u64,
    pub beats_sent: u64,
    pub messages_sent: u64,
    pub wakes_sent: u64,
    /// Envelopes that carried nothing (keep-alives).
    pub keepalives_sent: u64,
    /// Raft messages dropped at a full outbox.
    pub dropped_out: u64,
    /// Envelopes and messages from peers refused (bad bytes, wrong ids, unknown group).
    pub refused_in: u64,
    /// Group ticks done (hibernating groups are not ticked).
    pub group_ticks: u64,
    pub hibernations: u64,
    pub wakeups: u64,
}

struct Peer {
    last_heard: u64,
    last_sent: u64,
    silent: bool,
    out: Batch,
    out_bytes: usize,
}

pub struct MultiRaft<L: ReplicaLog> {
    cfg: MultiConfig,
    groups: BTreeMap<GroupId, PartitionReplica<L>>,
    peers: BTreeMap<NodeId, Peer>,
    now: u64,
    dirty: Vec<GroupId>,
    events: Vec<(GroupId, Event)>,
    stats: MultiStats,
    scratch: Vec<Message>,
}

impl<L: ReplicaLog> MultiRaft<L> {
    pub fn new(cfg: MultiConfig) -> Self {
        MultiRaft {
            cfg,
            groups: BTreeMap::new(),
            peers: BTreeMap::new(),
            now: 0,
            dirty: Vec::new(),
            events: Vec::new(),
            stats: MultiStats::default(),
            scratch: Vec::new(),
        }
    }

    pub fn node(&self) -> NodeId {
        self.cfg.replica.node
    }
    pub fn stats(&self) -> MultiStats {
        self.stats
    }
    pub fn group(&self, g: GroupId) -> Option<&PartitionReplica<L>> {
        self.groups.get(&g)
    }
    pub fn groups(&self) -> impl Iterator<Item = &PartitionReplica<L>> {
        self.groups.values()
    }
    /// The log of `g`, for the driver's sync.
    pub fn log_mut(&mut self, g: GroupId) -> Option<&mut L> {
        self.groups.get_mut(&g).map(|r| r.log_mut())
    }

    /// Host this node's replica of `group` (whose voters include this node) on `log`.
    pub fn add_group(
        &mut self,
        group: GroupId,
        voters: &[NodeId],
        log: L,
    ) -> Result<(), ReplicationError> {
        if self.groups.contains_key(&group) {
            return Err(ReplicationError::GroupExists(group));
        }
        let mut cfg = self.cfg.replica.clone();
        cfg.election_seed = cfg.election_seed.map(|s| s ^ group.0);
        let replica = PartitionReplica::new(group, cfg, voters, log)?;
        let (me, now) = (self.node(), self.now);
        for &v in voters.iter().filter(|&&v| v != me) {
            self.peers.entry(v).or_insert_with(|| Peer {
                last_heard: now,
                last_sent: now,
                silent: false,
                out: Batch::default(),
                out_bytes: 0,
            });
        }
        self.groups.insert(group, replica);
        Ok(())
    }

    /// Stop hosting `group` (its topic was deleted); its log is handed back.
    pub fn remove_group(&mut self, group: GroupId) -> Option<L> {
        self.dirty.retain(|&g| g != group);
        self.groups.remove(&group).map(PartitionReplica::into_log)
    }

    /// Whether node `peer` was heard from within [`MultiConfig::silence_ticks`].
    pub fn peer_is_live(&self, peer: NodeId) -> bool {
        peer == self.node() || self.peers.get(&peer).is_some_and(|p| !p.silent)
    }

    /// Whether any group has raft work for [`Self::process`].
    pub fn has_ready(&self) -> bool {
        self.groups.values().any(|r| r.has_ready())
    }

    /// Propose a batch to the group this node leads (see [`PartitionReplica::propose`]).
    pub fn propose(&mut self, g: GroupId, batch: Bytes) -> Result<ProposalId, ReplicationError> {
        let r = self
            .groups
            .get_mut(&g)
            .ok_or(ReplicationError::UnknownGroup(g))?;
        r.propose(batch)
    }

    /// One tick: silent peers wake the groups that depend on them; every awake group ticks;
    /// a leader that hibernates tells its followers.
    pub fn tick(&mut self) {
        self.now += 1;
        let silent: Vec<NodeId> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| !p.silent && self.now - p.last_heard >= self.cfg.silence_ticks)
            .map(|(&id, p)| {
                p.silent = true;
                id
            })
            .collect();
        for peer in silent {
            self.wake_for_silent(peer);
        }
        let me = self.node();
        for (&g, r) in self.groups.iter_mut() {
            if r.is_hibernating() {
                continue;
            }
            let peers = &self.peers;
            let may = r
                .voters()
                .iter()
                .all(|v| *v == me || peers.get(v).is_some_and(|p| !p.silent));
            self.stats.group_ticks += 1;
            if r.tick(may) == TickOutcome::Hibernated {
                self.stats.hibernations += 1;
                let beat = |_| Beat {
                    group: g,
                    term: r.term(),
                    commit: r.commit_index(),
                    flags: BEAT_HIBERNATE,
                };
                for v in r.voters().iter().filter(|&&v| v != me) {
                    if let Some(p) = self.peers.get_mut(v) {
                        p.out.beats.push(beat(()));
                    }
                }
            }
        }
    }

    fn wake_for_silent(&mut self, peer: NodeId) {
        for r in self.groups.values_mut() {
            let depends = if r.is_leader() {
                r.voters().contains(&peer)
            } else {
                r.leader() == Some(peer)
            };
            if depends && r.is_hibernating() {
                r.wake();
                self.stats.wakeups += 1;
                r.leader_lost();
            }
        }
    }

    /// An envelope from node `from`. A bad envelope is refused whole; a message for an
    /// unknown group, or whose raft ids do not match the node pair, is dropped.
    pub fn receive(&mut self, from: NodeId, payload: &Bytes) -> Result<(), ReplicationError> {
        let Some(peer) = self.peers.get_mut(&from) else {
            self.stats.refused_in += 1;
            return Err(ReplicationError::BadEnvelope(format!(
                "node {from} shares no group with this node"
            )));
        };
        let batch = Batch::decode(payload).inspect_err(|_| self.stats.refused_in += 1)?;
        peer.last_heard = self.now;
        peer.silent = false;
        for beat in batch.beats {
            self.receive_beat(from, beat);
        }
        for g in batch.wakes {
            if self
                .groups
                .get_mut(&g)
                .is_some_and(|r| r.is_leader() && r.wake())
            {
                self.stats.wakeups += 1;
            }
        }
        let me = raft_id(self.node());
        for (g, m) in batch.messages {
            let ok = m.from == raft_id(from) && m.to == me && message_is_valid(&m);
            let Some(r) = self.groups.get_mut(&g).filter(|_| ok) else {
                self.stats.refused_in += 1;
                continue;
            };
            if r.wake() {
                self.stats.wakeups += 1;
                if let Some(l) = r.leader().filter(|&l| l != from && !r.is_leader()) {
                    if let Some(p) = self.peers.get_mut(&l) {
                        p.out.wakes.push(g);
                        self.stats.wakes_sent += 1;
                    }
                }
            }
            r.step(m);
        }
        Ok(())
    }

    fn receive_beat(&mut self, from: NodeId, beat: Beat) {
        let Some(r) = self.groups.get_mut(&beat.group) else {
            self.stats.refused_in += 1;
            return;
        };
        if !r.voters().contains(&from) {
            self.stats.refused_in += 1;
            return;
        }
        let mut m = Message::default();
        let response = beat.flags & BEAT_RESPONSE != 0;
        m.set_msg_type(if response {
            MessageType::MsgHeartbeatResponse
        } else {
            MessageType::MsgHeartbeat
        });
        (m.from, m.to) = (raft_id(from), raft_id(self.cfg.replica.node));
        (m.term, m.commit) = (beat.term, beat.commit);
        if !response && beat.commit > r.raft_last_index() {
            // raft-rs would abort: a leader never claims a commit beyond what we acknowledged.
            self.stats.refused_in += 1;
            return;
        }
        let hibernate = !response && beat.flags & BEAT_HIBERNATE != 0;
        if !response && !hibernate && r.wake() {
            self.stats.wakeups += 1;
        }
        r.step(m);
        if hibernate {
            r.follow_into_hibernation(from, beat.term);
        }
    }

    /// Handle every group's ready (see [`PartitionReplica::handle_ready`]). Groups whose log
    /// failed are returned with the error (they stop being processed by the caller's choice).
    pub fn process(&mut self) -> Vec<(GroupId, ReplicationError)> {
        let mut failed = Vec::new();
        let mut out = std::mem::take(&mut self.scratch);
        let mut evs = Vec::new();
        let ready: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, r)| r.has_ready())
            .map(|(&g, _)| g)
            .collect();
        for g in ready {
            let r = self.groups.get_mut(&g).expect("listed above");
            match r.handle_ready(&mut out, &mut evs) {
                Ok(true) => self.dirty.push(g),
                Ok(false) => {}
                Err(e) => failed.push((g, e)),
            }
            self.events.extend(evs.drain(..).map(|e| (g, e)));
            self.route(g, &mut out);
        }
        self.scratch = out;
        failed
    }

    /// Groups whose logs need a sync before [`Self::persisted`] (each once).
    pub fn take_dirty(&mut self) -> Vec<GroupId> {
        self.dirty.dedup();
        std::mem::take(&mut self.dirty)
    }

    /// The logs of `groups` synced.
    pub fn persisted(&mut self, groups: &[GroupId]) {
        let mut out = std::mem::take(&mut self.scratch);
        for &g in groups {
            if let Some(r) = self.groups.get_mut(&g) {
                r.on_synced(&mut out);
                self.route(g, &mut out);
            }
        }
        self.scratch = out;
    }

    fn route(&mut self, g: GroupId, msgs: &mut Vec<Message>) {
        for m in msgs.drain(..) {
            let Some(peer) = node_of(m.to).and_then(|to| self.peers.get_mut(&to)) else {
                continue;
            };
            let t = m.get_msg_type();
            let beat = matches!(
                t,
                MessageType::MsgHeartbeat | MessageType::MsgHeartbeatResponse
            );
            if beat && m.context.is_empty() {
                let flags = if t == MessageType::MsgHeartbeatResponse {
                    BEAT_RESPONSE
                } else {
                    0
                };
                peer.out.beats.push(Beat {
                    group: g,
                    term: m.term,
                    commit: m.commit,
                    flags,
                });
                continue;
            }
            let size = m.compute_size() as usize + 12;
            if peer.out_bytes + size > self.cfg.max_outbox_bytes {
                self.stats.dropped_out += 1;
                continue;
            }
            peer.out_bytes += size;
            peer.out.messages.push((g, m));
        }
    }

    /// One envelope per peer that has something queued or is due a keep-alive.
    pub fn flush(&mut self) -> Vec<(NodeId, Bytes)> {
        let mut sent = Vec::new();
        for (&id, p) in self.peers.iter_mut() {
            let idle = p.out.is_empty();
            if idle && self.now - p.last_sent < self.cfg.keepalive_ticks {
                continue;
            }
            let batch = std::mem::take(&mut p.out);
            p.out_bytes = 0;
            p.last_sent = self.now;
            let bytes = Bytes::from(batch.encode());
            let s = &mut self.stats;
            s.envelopes_sent += 1;
            s.bytes_sent += bytes.len() as u64;
            s.beats_sent += batch.beats.len() as u64;
            s.messages_sent += batch.messages.len() as u64;
            s.keepalives_sent += u64::from(idle);
            sent.push((id, bytes));
        }
        sent
    }

    /// What happened since the last call, per group, in order.
    pub fn take_events(&mut self) -> Vec<(GroupId, Event)> {
        std::mem::take(&mut self.events)
    }
}
