//! Partition replication on a shard (issue 12): the loop that drives every Raft group of the
//! replicated partitions (more than one replica) this shard owns, through one
//! [`MultiRaft`] over [`StoredLog`]s (the partitions' own segment files are the Raft logs).
//!
//! One iteration of [`Shard::replication_loop`] (woken by a tick every [`TICK`], an envelope
//! from a peer or a proposal; see `replication`'s module docs for the steps): step every
//! envelope received, tick when due, handle every group's ready, persist all dirty logs at
//! once (one flush or fdatasync per log), hand out the outcomes (produce waiters, fetch
//! waiters on a moved high watermark), send at most one envelope per peer node, read back
//! entries a lagging follower needs, and push changed leaderships to every shard of the node
//! (Metadata and request routing read them). The loop runs again at once while raft has more
//! to do (a persist releases acknowledgements and commits).
//!
//! Transport: the node's [`Rpc`] lives on shard 0. Other shards send their envelopes through
//! it ([`ShardCall::ReplicationOut`]); shard 0 hands each envelope from a peer to the shard
//! that owns its groups ([`ShardCall::ReplicationIn`]), splitting it by owner when the
//! groups of one envelope live on several shards here (shard counts may differ per node). A
//! keep-alive (an empty envelope) goes to every shard.
//!
//! Produce: the leader proposes the batch once its replica serves (an entry of its own term
//! committed); acks=1 is answered when the leader appended it, acks=all when it committed
//! (a majority persisted it, the leader among them). A proposal that loses its leadership is
//! answered REQUEST_TIMED_OUT (it may still commit); a replica that does not serve answers
//! NOT_LEADER_OR_FOLLOWER (nothing was appended). Idempotent producers: the log's producer
//! state trails the proposals (it is updated when an entry is stored), so the leader checks a
//! batch first against that producer's proposals in flight (an exact retry waits for its
//! original; the next batch must follow the newest), then against the log's state (an exact
//! retry is answered with the original offset, as a new leader does for a batch its
//! predecessor committed).

use super::{broadcast, DiskLog, Shard};
use crate::cluster::routing::PartitionLeadership;
use crate::cluster::{MetadataImage, TopicMeta};
use crate::io::dma::DmaDisk;
use crate::model::{
    BatchHeader, Offset, ProducerEpoch, ProducerId, Sequence, ShardId, TopicPartition,
};
use crate::replication::stored::{persist_dirty, read_batches};
use crate::replication::wire::Batch;
use crate::replication::{
    group_of, Event, GroupId, MultiConfig, MultiRaft, ProposalId, ReplicaLog, ReplicationError,
    StoredLog, KIND_REPLICATION,
};
use crate::router::{AppendOutcome, PartitionError, ShardCall};
use crate::rpc::{Inbox, NodeId, Rpc};
use crate::storage::LogConfig;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The Raft tick of partition groups ([`crate::replication::ReplicaConfig::new`]'s timing
/// assumes it: heartbeats every 100 ms, elections after 0.5–1 s of silence).
pub const TICK: Duration = Duration::from_millis(50);
/// Envelopes from peers held for the next iteration; more are dropped (raft resends).
const INBOX_ENVELOPES: usize = 1024;
/// How long a produce waits for its append (acks=1) or commit (acks=all) before it is
/// answered REQUEST_TIMED_OUT (possibly stored).
pub const PRODUCE_WAIT: Duration = Duration::from_secs(10);

type Outcome = Result<AppendOutcome, PartitionError>;

/// A produce waiting for its proposal's outcome.
struct Waiter {
    acks: i16,
    tx: flume::Sender<Outcome>,
}

/// An idempotent producer's batch proposed and not yet resolved.
struct InFlight {
    epoch: ProducerEpoch,
    first: Sequence,
    last: Sequence,
    id: ProposalId,
}

/// What the leader does with a batch (see [`Replicas::admit`]).
enum Admit {
    Propose,
    /// An exact retry of a batch the log holds: answer with its base offset.
    Original(Offset),
    /// An exact retry of a batch proposed and not resolved: wait for that proposal.
    Join(ProposalId),
}

/// A produce after its proposal: answered already, or waiting.
enum Proposed {
    Original(Offset),
    Wait(flume::Receiver<Outcome>),
}

/// A shard's replicated partitions (empty on a node without any).
pub struct Replicas {
    multi: RefCell<MultiRaft<StoredLog<DmaDisk>>>,
    groups: RefCell<HashMap<TopicPartition, GroupId>>,
    partitions: RefCell<HashMap<GroupId, TopicPartition>>,
    waiters: RefCell<HashMap<(GroupId, ProposalId), Vec<Waiter>>>,
    /// Idempotent producers' batches proposed and not yet committed or lost, per group and
    /// producer in proposal order (a retry joins its original; the next must follow it).
    inflight: RefCell<HashMap<(GroupId, ProducerId), VecDeque<InFlight>>>,
    inflight_of: RefCell<HashMap<(GroupId, ProposalId), ProducerId>>,
    inbox: RefCell<VecDeque<(NodeId, Bytes)>>,
    wake: super::DataNotify,
    announced: RefCell<HashMap<GroupId, PartitionLeadership>>,
    /// Groups whose last persist failed (retried next round).
    retry: RefCell<Vec<GroupId>>,
    /// Shard 0: the node's transport.
    rpc: RefCell<Option<Rc<Rpc>>>,
    /// Shard 0: the owner shard of every group here, as of the image version.
    owners: RefCell<(u64, HashMap<GroupId, ShardId>)>,
    pub dropped_in: Cell<u64>,
}

impl Replicas {
    pub fn new(node: NodeId) -> Self {
        Replicas {
            multi: RefCell::new(MultiRaft::new(MultiConfig::new(node))),
            groups: RefCell::default(),
            partitions: RefCell::default(),
            waiters: RefCell::default(),
            inflight: RefCell::default(),
            inflight_of: RefCell::default(),
            inbox: RefCell::default(),
            wake: super::DataNotify::default(),
            announced: RefCell::default(),
            retry: RefCell::default(),
            rpc: RefCell::new(None),
            owners: RefCell::default(),
            dropped_in: Cell::new(0),
        }
    }

    pub fn group(&self, tp: &TopicPartition) -> Option<GroupId> {
        self.groups.borrow().get(tp).copied()
    }

    /// The partition log of a replicated partition (a cheap clone; replaced after a
    /// truncation, so never kept across a loop iteration).
    pub fn partition_log(&self, tp: &TopicPartition) -> Option<DiskLog> {
        let g = self.group(tp)?;
        let m = self.multi.borrow();
        Some(m.group(g)?.log().partition_log().clone())
    }

    /// The high watermark of a replicated partition (the offset after the last entry this
    /// replica applied as committed).
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<Offset> {
        let g = self.group(tp)?;
        Some(self.multi.borrow().group(g)?.high_watermark())
    }

    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.groups.borrow().keys().cloned().collect()
    }

    /// An envelope from node `from` for the next iteration.
    pub fn deliver(&self, from: NodeId, payload: Bytes) {
        let mut inbox = self.inbox.borrow_mut();
        if inbox.len() >= INBOX_ENVELOPES {
            self.dropped_in.set(self.dropped_in.get() + 1);
            return;
        }
        inbox.push_back((from, payload));
        drop(inbox);
        self.wake.notify();
    }

    /// A group goes away: its waiters are dropped (answered "closed").
    fn forget_proposals(&self, g: GroupId) {
        self.waiters
            .borrow_mut()
            .retain(|(group, _), _| *group != g);
        self.inflight
            .borrow_mut()
            .retain(|(group, _), _| *group != g);
        self.inflight_of
            .borrow_mut()
            .retain(|(group, _), _| *group != g);
    }

    /// Proposal `id` of `g` committed or was lost: no longer in flight.
    fn resolved(&self, g: GroupId, id: ProposalId) {
        let Some(pid) = self.inflight_of.borrow_mut().remove(&(g, id)) else {
            return;
        };
        let mut all = self.inflight.borrow_mut();
        if let Some(q) = all.get_mut(&(g, pid)) {
            q.retain(|f| f.id != id);
            if q.is_empty() {
                all.remove(&(g, pid));
            }
        }
    }

    /// The idempotent-producer check of the leader, before it proposes `batch`: against the
    /// producer's batches in flight first (a retry of one joins it; the next must follow the
    /// newest), else against the batches `log` holds (a retry is answered with the original).
    fn admit(&self, g: GroupId, log: &DiskLog, batch: &[u8]) -> Result<Admit, PartitionError> {
        let h =
            BatchHeader::parse(batch).map_err(|e| PartitionError::CorruptMessage(e.to_string()))?;
        let pid = h.producer_id();
        if pid.0 < 0 {
            return Ok(Admit::Propose);
        }
        let (epoch, first, last) = (h.producer_epoch(), h.base_sequence(), h.last_sequence());
        let all = self.inflight.borrow();
        if let Some(q) = all.get(&(g, pid)).filter(|q| !q.is_empty()) {
            let same = |f: &&InFlight| (f.epoch, f.first, f.last) == (epoch, first, last);
            if let Some(original) = q.iter().find(same) {
                return Ok(Admit::Join(original.id));
            }
            let newest = q.back().expect("not empty");
            let follows = (epoch == newest.epoch && first == newest.last.next())
                || (epoch > newest.epoch && first == Sequence(0));
            return match follows {
                true => Ok(Admit::Propose),
                false if epoch < newest.epoch => Err(PartitionError::InvalidProducerEpoch(
                    format!("producer {pid} epoch {epoch}, current {}", newest.epoch),
                )),
                false => Err(PartitionError::OutOfOrderSequence(format!(
                    "producer {pid}: sequence {first}, expected {}",
                    newest.last.next()
                ))),
            };
        }
        match log.check_sequence(batch) {
            Ok(None) => Ok(Admit::Propose),
            Ok(Some(original)) => Ok(Admit::Original(original.base_offset)),
            Err(e) => Err(super::storage_error(e)),
        }
    }

    /// Remember an idempotent batch just proposed as `id`.
    fn note_inflight(&self, g: GroupId, batch: &[u8], id: ProposalId) {
        let Ok(h) = BatchHeader::parse(batch) else {
            return;
        };
        if h.producer_id().0 < 0 {
            return;
        }
        let f = InFlight {
            epoch: h.producer_epoch(),
            first: h.base_sequence(),
            last: h.last_sequence(),
            id,
        };
        let key = (g, h.producer_id());
        self.inflight
            .borrow_mut()
            .entry(key)
            .or_default()
            .push_back(f);
        self.inflight_of
            .borrow_mut()
            .insert((g, id), h.producer_id());
    }

    /// Shard 0: send another shard's envelope to node `to`.
    pub fn send_out(&self, to: NodeId, payload: Bytes) {
        let rpc = self.rpc.borrow().clone();
        match rpc.map(|rpc| rpc.send(to, KIND_REPLICATION, payload)) {
            Some(Ok(())) => {}
            Some(Err(e)) => crate::debug!("replication: to node {to}: {e}"),
            None => crate::debug!("replication: no transport on this shard"),
        }
    }

    fn has_work(&self) -> bool {
        !self.inbox.borrow().is_empty() || self.multi.borrow().has_ready()
    }

    /// Hand `outcome` to the waiters of proposal `id`: all of them, or with `acks_one` only
    /// those that wait for the leader's append (acks 0 or 1).
    fn answer(&self, g: GroupId, id: ProposalId, acks_one: bool, outcome: &Outcome) {
        if !acks_one {
            self.resolved(g, id);
        }
        let mut all = self.waiters.borrow_mut();
        let Some(list) = all.remove(&(g, id)) else {
            return;
        };
        let (now, later): (Vec<Waiter>, Vec<Waiter>) =
            list.into_iter().partition(|w| !acks_one || w.acks != -1);
        for w in now {
            let _ = w.tx.try_send(outcome.clone());
        }
        if !later.is_empty() {
            all.insert((g, id), later);
        }
    }
}

fn appended(base_offset: Offset) -> Outcome {
    Ok(AppendOutcome {
        base_offset,
        log_append_time_ms: -1,
        log_start_offset: 0,
    })
}

fn proposal_error(e: ReplicationError) -> PartitionError {
    match e {
        ReplicationError::NotLeader { .. } => PartitionError::NotLeader,
        ReplicationError::Busy => {
            PartitionError::NotDurable("too many batches wait for their commit".into())
        }
        ReplicationError::BadBatch(b) => PartitionError::CorruptMessage(b.to_string()),
        ReplicationError::UnknownGroup(_) => PartitionError::UnknownTopicOrPartition,
        other => PartitionError::Storage(other.to_string()),
    }
}

/// The owner shard, here, of every replicated group of `image` this node holds.
fn owners_of(
    image: &MetadataImage,
    me: NodeId,
    owner: impl Fn(&str, i32) -> ShardId,
) -> HashMap<GroupId, ShardId> {
    let mut out = HashMap::new();
    for t in image.topics.values() {
        for p in replicated_here(t, me) {
            out.insert(group_of(&t.topic_id, p), owner(&t.name, p));
        }
    }
    out
}

/// The partitions of `t` with more than one replica, one of them on node `me`.
pub(super) fn replicated_here(t: &TopicMeta, me: NodeId) -> impl Iterator<Item = i32> + '_ {
    (0..t.partitions).filter(move |&p| {
        t.replicas
            .get(p as usize)
            .is_some_and(|r| r.len() > 1 && r.contains(&me))
    })
}

impl Shard {
    /// Host this node's replica of `tp` (recovering its log as a raft log).
    pub(super) async fn open_replica(&self, tp: TopicPartition, t: &TopicMeta, config: LogConfig) {
        let Some(voters) = t.replicas.get(tp.partition as usize).cloned() else {
            return;
        };
        let sync_data = self.durability(t) == crate::config::Durability::Always;
        let dir = self.partition_dir(&tp);
        let opened = crate::storage::PartitionLog::open(DmaDisk, dir, config, self.cache.clone());
        let log = match opened.await {
            Ok(log) => log,
            Err(e) => return crate::error!("shard {}: cannot open partition {tp}: {e}", self.id.0),
        };
        super::count_recovery(&log, &self.metrics);
        let stored = match StoredLog::open(log, sync_data).await {
            Ok(s) => s,
            Err(e) => {
                return crate::error!("shard {}: partition {tp} is no raft log: {e}", self.id.0)
            }
        };
        let g = group_of(&t.topic_id, tp.partition);
        let last = stored.last_index();
        let r = &self.replicas;
        if let Err(e) = r.multi.borrow_mut().add_group(g, &voters, stored) {
            return crate::error!("shard {}: partition {tp}: {e}", self.id.0);
        }
        crate::info!("partition {tp} opened as {g} with voters {voters:?}, {last} entries");
        r.groups.borrow_mut().insert(tp.clone(), g);
        r.partitions.borrow_mut().insert(g, tp);
        r.wake.notify();
    }

    /// Stop hosting `tp` (its topic was deleted) and remove its files.
    pub(super) async fn remove_replica(&self, tp: &TopicPartition) {
        let r = &self.replicas;
        let Some(g) = r.groups.borrow_mut().remove(tp) else {
            return;
        };
        r.partitions.borrow_mut().remove(&g);
        r.announced.borrow_mut().remove(&g);
        r.forget_proposals(g);
        let stored = r.multi.borrow_mut().remove_group(g);
        self.metadata.set_leadership(&tp.topic, tp.partition, None);
        if let Some(stored) = stored {
            if let Err(e) = stored.partition_log().clone().remove().await {
                crate::error!("shard {}: removing {tp}: {e}", self.id.0);
            }
        }
    }

    /// Set a replicated partition's configs (a topic config change).
    pub(super) fn configure_replica(&self, tp: &TopicPartition, t: &TopicMeta, config: LogConfig) {
        let Some(g) = self.replicas.group(tp) else {
            return;
        };
        let sync_data = self.durability(t) == crate::config::Durability::Always;
        let mut m = self.replicas.multi.borrow_mut();
        if let Some(log) = m.log_mut(g) {
            log.set_sync_data(sync_data);
            log.partition_log().set_config(config);
        }
    }

    /// Produce to a replicated partition this node leads: propose the batch (after the
    /// idempotent-producer check) and wait for its append (acks=1) or commit (acks=all);
    /// acks=0 is answered once proposed.
    pub(super) async fn produce_replicated(&self, g: GroupId, acks: i16, batch: Bytes) -> Outcome {
        let rx = match self.propose_or_join(g, acks, batch)? {
            Proposed::Original(base_offset) => return appended(base_offset),
            Proposed::Wait(rx) => rx,
        };
        self.replicas.wake.notify();
        if acks == 0 {
            return appended(-1);
        }
        let waited = glommio::timer::timeout(PRODUCE_WAIT, async { Ok(rx.recv_async().await) });
        match waited.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(PartitionError::NotDurable("the partition closed".into())),
            Err(_) => Err(PartitionError::NotDurable(format!(
                "not committed within {} s",
                PRODUCE_WAIT.as_secs()
            ))),
        }
    }

    /// The synchronous part of [`Self::produce_replicated`]: checks, then a proposal (or a
    /// retry joining its original), and the waiter for its outcome.
    fn propose_or_join(
        &self,
        g: GroupId,
        acks: i16,
        batch: Bytes,
    ) -> Result<Proposed, PartitionError> {
        let r = &self.replicas;
        let mut m = r.multi.borrow_mut();
        let replica = m.group(g).ok_or(PartitionError::UnknownTopicOrPartition)?;
        if !replica.is_serving() {
            return Err(PartitionError::NotLeader);
        }
        let log = replica.log().partition_log().clone();
        let max = log.config().max_message_bytes as usize;
        if batch.len() > max {
            let bytes = batch.len();
            return Err(PartitionError::MessageTooLarge {
                bytes,
                max_bytes: max,
            });
        }
        let id = match r.admit(g, &log, &batch)? {
            Admit::Original(base_offset) => return Ok(Proposed::Original(base_offset)),
            Admit::Join(id) => id,
            Admit::Propose => {
                let id = m.propose(g, batch.clone()).map_err(proposal_error)?;
                r.note_inflight(g, &batch, id);
                id
            }
        };
        let (tx, rx) = flume::bounded(1);
        if acks != 0 {
            let w = Waiter { acks, tx };
            r.waiters.borrow_mut().entry((g, id)).or_default().push(w);
        }
        Ok(Proposed::Wait(rx))
    }

    /// Drive this shard's Raft groups until shutdown (see the module docs).
    pub async fn replication_loop(self: Rc<Self>) {
        let mut next_tick = Instant::now() + TICK;
        while !self.closing.get() {
            if !self.replicas.has_work() {
                let left = next_tick.saturating_duration_since(Instant::now());
                futures_lite::future::race(glommio::timer::sleep(left), async {
                    self.replicas.wake.changed().await;
                })
                .await;
            }
            let tick = Instant::now() >= next_tick;
            if tick {
                next_tick = Instant::now() + TICK;
            }
            self.replication_round(tick).await;
        }
    }

    async fn replication_round(&self, tick: bool) {
        let r = &self.replicas;
        let inbox: Vec<(NodeId, Bytes)> = r.inbox.borrow_mut().drain(..).collect();
        let failed = {
            let mut m = r.multi.borrow_mut();
            for (from, payload) in inbox {
                if let Err(e) = m.receive(from, &payload) {
                    crate::debug!("replication: envelope from node {from} refused: {e}");
                }
            }
            if tick {
                m.tick();
            }
            m.process()
        };
        for (g, e) in failed {
            crate::error!("replication: {g} stopped: {e}");
            let tp = r.partitions.borrow().get(&g).cloned();
            if let Some(tp) = tp {
                self.remove_group_keep_files(&tp, g);
            }
        }
        let retry = std::mem::take(&mut *r.retry.borrow_mut());
        for (g, e) in persist_dirty(&r.multi, retry).await {
            crate::warn!("replication: {g}: persist failed (retried): {e}");
            r.retry.borrow_mut().push(g);
        }
        let events = r.multi.borrow_mut().take_events();
        let changed = self.hand_out(events);
        let out = r.multi.borrow_mut().flush();
        self.send_envelopes(out).await;
        self.read_back_missing().await;
        self.announce_leaders(tick, changed).await;
    }

    /// A group whose log failed: stop driving it (its files stay for a restart).
    fn remove_group_keep_files(&self, tp: &TopicPartition, g: GroupId) {
        let r = &self.replicas;
        r.groups.borrow_mut().remove(tp);
        r.partitions.borrow_mut().remove(&g);
        r.forget_proposals(g);
        r.multi.borrow_mut().remove_group(g);
        self.metadata.set_leadership(&tp.topic, tp.partition, None);
    }

    /// Answer produce waiters and wake fetch waiters; returns the groups whose leader, term
    /// or high watermark changed (their leadership is announced again if it differs).
    fn hand_out(&self, events: Vec<(GroupId, Event)>) -> BTreeSet<GroupId> {
        let r = &self.replicas;
        let mut changed = BTreeSet::new();
        for (g, e) in events {
            match e {
                Event::Appended {
                    id, base_offset, ..
                } => r.answer(g, id, true, &appended(base_offset)),
                Event::Committed {
                    id, base_offset, ..
                } => r.answer(g, id, false, &appended(base_offset)),
                Event::Lost { id } => {
                    let why = "the leader changed before the batch committed".to_string();
                    r.answer(g, id, false, &Err(PartitionError::NotDurable(why)))
                }
                Event::HighWatermark { .. } | Event::Leader { .. } => {
                    changed.insert(g);
                }
            }
        }
        if !changed.is_empty() {
            self.data_notify.notify();
        }
        changed
    }

    async fn send_envelopes(&self, out: Vec<(NodeId, Bytes)>) {
        if self.replicas.rpc.borrow().is_some() {
            for (to, payload) in out {
                self.replicas.send_out(to, payload);
            }
            return;
        }
        let calls = out.into_iter().map(|(to, payload)| {
            let call = ShardCall::ReplicationOut { to, payload };
            async move {
                let _ = self.router.call(ShardId(0), call).await;
            }
        });
        crate::base::join_all(calls.collect::<Vec<_>>()).await;
    }

    /// Read back, for each group raft asked for entries no longer in memory, the entries
    /// from the first one missing (one chunk per group per iteration).
    async fn read_back_missing(&self) {
        let wanted: Vec<(GroupId, u64, DiskLog, Offset)> = {
            let m = self.replicas.multi.borrow();
            m.groups()
                .filter_map(|r| {
                    let index = r.log().take_missing()?;
                    let (log, start) = r.log().read_back_from(index)?;
                    Some((r.group(), index, log, start))
                })
                .collect()
        };
        for (g, index, log, start) in wanted {
            match read_batches(&log, start).await {
                Ok(batches) => {
                    if let Some(l) = self.replicas.multi.borrow_mut().log_mut(g) {
                        l.read_back(index, batches);
                    }
                }
                Err(e) => crate::warn!("replication: {g}: read back from {start}: {e}"),
            }
        }
    }

    /// The leadership of `g` as this replica knows it: a leader names itself only once it
    /// serves; its ISR is itself and the voters whose nodes it heard from recently.
    fn leadership_of(&self, g: GroupId) -> Option<PartitionLeadership> {
        let m = self.replicas.multi.borrow();
        let r = m.group(g)?;
        let me = self.config.node_id;
        let epoch = i32::try_from(r.term()).unwrap_or(i32::MAX);
        if !r.is_leader() {
            return Some(PartitionLeadership {
                leader: r.leader().filter(|&l| l != me),
                epoch,
                isr: Vec::new(),
            });
        }
        let serving = r.is_serving();
        let isr = r.voters().iter().copied().filter(|&v| m.peer_is_live(v));
        Some(PartitionLeadership {
            leader: serving.then_some(me),
            epoch,
            isr: if serving { isr.collect() } else { Vec::new() },
        })
    }

    /// Push every changed leadership (of `changed`, or of every group on a tick) to every
    /// shard of this node.
    async fn announce_leaders(&self, tick: bool, changed: BTreeSet<GroupId>) {
        let groups: Vec<GroupId> = if tick {
            self.replicas.partitions.borrow().keys().copied().collect()
        } else {
            changed.into_iter().collect()
        };
        let mut news = Vec::new();
        for g in groups {
            let Some(now) = self.leadership_of(g) else {
                continue;
            };
            let mut announced = self.replicas.announced.borrow_mut();
            if announced.get(&g) == Some(&now) {
                continue;
            }
            announced.insert(g, now.clone());
            let tp = self.replicas.partitions.borrow().get(&g).cloned();
            news.extend(tp.map(|tp| (tp, now)));
        }
        for (tp, now) in news {
            crate::debug!(
                "replication: {tp} leader {:?} epoch {} isr {:?}",
                now.leader,
                now.epoch,
                now.isr
            );
            let make = || ShardCall::PartitionLeader {
                tp: tp.clone(),
                leadership: Some(now.clone()),
            };
            broadcast(&self.router, make).await;
        }
    }

    /// Shard 0: receive the node's replication envelopes and hand each to the shards that own
    /// its groups.
    pub fn start_replication_transport(self: &Rc<Self>, rpc: Rc<Rpc>) -> Result<(), String> {
        let inbox = rpc.subscribe(KIND_REPLICATION).map_err(|e| e.to_string())?;
        *self.replicas.rpc.borrow_mut() = Some(rpc);
        let shard = self.clone();
        glommio::spawn_local(async move { shard.replication_inbox(inbox).await }).detach();
        Ok(())
    }

    async fn replication_inbox(self: Rc<Self>, inbox: Inbox) {
        while let Some(m) = inbox.recv().await {
            if self.router.shard_count() == 1 {
                self.replicas.deliver(m.from, m.payload);
                continue;
            }
            for (shard, payload) in self.split_envelope(&m.payload) {
                let call = ShardCall::ReplicationIn {
                    from: m.from,
                    payload,
                };
                let _ = self.router.call(shard, call).await;
            }
        }
    }

    /// The parts of an envelope for each shard here that owns some of its groups (the
    /// envelope itself when one shard owns them all; every shard for a keep-alive).
    fn split_envelope(&self, payload: &Bytes) -> Vec<(ShardId, Bytes)> {
        let Ok(batch) = Batch::decode(payload) else {
            self.replicas
                .dropped_in
                .set(self.replicas.dropped_in.get() + 1);
            return Vec::new();
        };
        let all = (0..self.router.shard_count()).map(ShardId);
        if batch.is_empty() {
            return all.map(|s| (s, payload.clone())).collect();
        }
        self.refresh_owners();
        let owners = self.replicas.owners.borrow();
        let owner = |g: &GroupId| owners.1.get(g).copied();
        let mut parts: BTreeMap<ShardId, Batch> = BTreeMap::new();
        for b in batch.beats {
            if let Some(s) = owner(&b.group) {
                parts.entry(s).or_default().beats.push(b);
            }
        }
        for g in batch.wakes {
            if let Some(s) = owner(&g) {
                parts.entry(s).or_default().wakes.push(g);
            }
        }
        for (g, msg) in batch.messages {
            if let Some(s) = owner(&g) {
                parts.entry(s).or_default().messages.push((g, msg));
            }
        }
        if parts.len() == 1 {
            return parts.into_keys().map(|s| (s, payload.clone())).collect();
        }
        parts
            .into_iter()
            .map(|(s, b)| (s, Bytes::from(b.encode())))
            .collect()
    }

    /// Shard 0: the owner shard of every replicated group here (rebuilt per image version).
    fn refresh_owners(&self) {
        let image = self.metadata();
        let mut cached = self.replicas.owners.borrow_mut();
        if cached.0 != image.version || cached.1.is_empty() {
            let owner = |t: &str, p: i32| self.owner(t, p);
            *cached = (image.version, owners_of(&image, self.config.node_id, owner));
        }
    }

    /// Shutdown: close every replicated partition's log.
    pub(super) async fn close_replicas(&self) {
        for tp in self.replicas.partitions() {
            if let Some(log) = self.replicas.partition_log(&tp) {
                if let Err(e) = log.close().await {
                    crate::error!("shard {}: closing {tp}: {e}", self.id.0);
                }
            }
        }
    }
}
