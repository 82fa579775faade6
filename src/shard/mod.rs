//! One shard: the per-core state and the handler that alone mutates it.
//!
//! A shard owns the partitions [`crate::model::owner_shard`] assigns to it, their logs and the
//! shard's batch cache. Shard 0 is also the metadata shard: it runs this node's controller
//! ([`controller::ControllerDriver`]), through which every metadata change is committed, and
//! pushes every new image to all shards, each of which opens the partitions of this node it
//! now owns and removes the ones whose topic was deleted.
//!
//! Durability happens here: after an append with acks=-1 on a topic whose `durability` is
//! `always`, the handler waits for the log's group commit (`sync_through`) before answering;
//! all producers waiting on a partition share one fdatasync.

pub mod controller;
pub mod groups;
pub mod replicas;

use crate::base::{join_all, now_ms};
use crate::cluster::placement::{place, replication_factor, Candidate};
use crate::cluster::{Command, LocalMetadata, MetadataError, MetadataImage, TopicMeta};
use crate::config::{BrokerConfig, Durability, TimestampKind, TopicConfigs};
use crate::io::dma::DmaDisk;
use crate::model::{LeaderEpoch, Offset, ShardId, TopicPartition};
use crate::router::*;
use crate::storage::{BatchCache, LogConfig, PartitionLog, StorageError, TimestampType};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Bytes of recent batches each shard keeps in memory for tail fetches.
pub const BATCH_CACHE_BYTES_PER_SHARD: usize = 256 << 20;

/// A partition log on the real disk (glommio DMA files).
pub(crate) type DiskLog = PartitionLog<DmaDisk>;

/// Wakes every waiter when data is appended on this shard (fetch long polling).
#[derive(Default)]
pub struct DataNotify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl DataNotify {
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
    /// Resolves after the next `notify`.
    pub fn changed(&self) -> impl Future<Output = ()> + '_ {
        let start = self.generation.get();
        std::future::poll_fn(move |cx| {
            if self.generation.get() != start {
                return Poll::Ready(());
            }
            self.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
    }
}

pub struct Shard {
    pub id: ShardId,
    pub config: Arc<BrokerConfig>,
    metadata: Rc<LocalMetadata>,
    /// One image applied at a time (the controller's publisher and an admin call may both
    /// push one): a partition is opened once.
    applying: glommio::sync::Semaphore,
    /// This node's controller (shard 0 only, set at start).
    controller: RefCell<Option<Rc<controller::ControllerDriver>>>,
    /// Shard 0: this node's gossip, for the cluster gauges of `/metrics`.
    gossip: RefCell<Option<Rc<crate::membership::driver::GossipDriver>>>,
    logs: RefCell<HashMap<TopicPartition, DiskLog>>,
    cache: BatchCache,
    pub data_notify: DataNotify,
    router: Rc<Router>,
    /// Set when shutdown starts: new calls are refused.
    closing: Cell<bool>,
    pub metrics: Rc<crate::metrics::ShardMetrics>,
    /// The consumer-group coordinator of the groups this shard owns (set at start).
    groups: RefCell<Option<Rc<groups::GroupShard>>>,
    /// The replicated partitions this shard owns and their Raft groups.
    replicas: replicas::Replicas,
}

fn storage_error(e: StorageError) -> PartitionError {
    match e {
        StorageError::CorruptBatch(b) => PartitionError::CorruptMessage(b.to_string()),
        StorageError::MessageTooLarge { size, max } => PartitionError::MessageTooLarge {
            bytes: size,
            max_bytes: max as usize,
        },
        StorageError::OffsetOutOfRange {
            requested,
            log_start,
            log_end,
        } => PartitionError::OffsetOutOfRange {
            requested,
            log_start,
            log_end,
        },
        StorageError::OutOfOrderSequence { .. } => {
            PartitionError::OutOfOrderSequence(e.to_string())
        }
        StorageError::InvalidProducerEpoch { .. } => {
            PartitionError::InvalidProducerEpoch(e.to_string())
        }
        other => PartitionError::Storage(other.to_string()),
    }
}

/// One partition of a produce after its append (a plain log: the outcome and what an
/// acks=-1 producer waits for) or before its proposal (a replicated partition).
enum Appended {
    Local(
        Result<AppendOutcome, PartitionError>,
        Option<(DiskLog, Offset)>,
    ),
    Raft(crate::replication::GroupId, ProducePart),
}

/// The fdatasync of an appended batch failed. The batch is in the log (readers may see it,
/// and its write is retried until it succeeds), so the producer must treat it as possibly
/// stored: a KAFKA_STORAGE_ERROR here made clients retry batches that were then stored twice.
fn not_durable(e: StorageError) -> PartitionError {
    match e {
        StorageError::Closed => PartitionError::ShuttingDown,
        other => PartitionError::NotDurable(format!("appended but not synced: {other}")),
    }
}

/// The Kafka-facing error of a metadata change the state machine refused.
pub(crate) fn admin_error(e: MetadataError) -> AdminError {
    match e {
        MetadataError::TopicExists(t) => {
            AdminError::TopicAlreadyExists(format!("topic '{t}' already exists"))
        }
        MetadataError::UnknownTopic(t) => {
            AdminError::UnknownTopic(format!("topic '{t}' does not exist"))
        }
        MetadataError::InvalidTopicName(why) => AdminError::InvalidTopic(why),
        MetadataError::InvalidPartitions(why) => AdminError::InvalidPartitions(why),
        MetadataError::Unstorable(why) => AdminError::InvalidConfig(why),
        MetadataError::InvalidReplicas(why) => AdminError::InvalidReplicationFactor(why),
        MetadataError::UnknownUser(why) => AdminError::ResourceNotFound(why),
        MetadataError::InvalidCredential(why) => AdminError::UnacceptableCredential(why),
        MetadataError::InvalidAcl(why) => AdminError::InvalidRequest(why),
        other => AdminError::Storage(other.to_string()),
    }
}

/// Count what recovery set aside when `log` was opened, in the shard's metrics.
fn count_recovery(log: &DiskLog, metrics: &crate::metrics::ShardMetrics) {
    for event in log.recovery_events() {
        let counter = if event.is_quarantine() {
            &metrics.recovery_quarantined
        } else {
            &metrics.recovery_cut
        };
        counter.set(counter.get() + 1);
    }
}

/// The storage settings of a topic, from its resolved configs.
pub fn log_config(configs: &TopicConfigs) -> LogConfig {
    let clamp_u32 = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
    LogConfig {
        segment_bytes: configs.get_i64("segment.bytes").max(14 * 1024) as u64,
        segment_ms: configs.get_i64("segment.ms"),
        index_interval_bytes: clamp_u32(configs.get_i64("index.interval.bytes")),
        retention_ms: configs.get_i64("retention.ms"),
        retention_bytes: configs.get_i64("retention.bytes"),
        max_message_bytes: clamp_u32(configs.get_i64("max.message.bytes")),
        timestamp_type: match configs.timestamp_kind() {
            TimestampKind::CreateTime => TimestampType::CreateTime,
            TimestampKind::LogAppendTime => TimestampType::LogAppendTime,
        },
        preallocate: configs.get("preallocate") == "true",
    }
}

impl Shard {
    pub fn new(
        config: Arc<BrokerConfig>,
        metadata: Rc<LocalMetadata>,
        router: Rc<Router>,
        metrics: Rc<crate::metrics::ShardMetrics>,
    ) -> Rc<Self> {
        let node = config.node_id;
        Rc::new(Shard {
            id: router.me(),
            config,
            metadata,
            applying: glommio::sync::Semaphore::new(1),
            controller: RefCell::new(None),
            gossip: RefCell::new(None),
            logs: RefCell::new(HashMap::new()),
            cache: BatchCache::new(BATCH_CACHE_BYTES_PER_SHARD),
            data_notify: DataNotify::default(),
            router,
            closing: Cell::new(false),
            groups: RefCell::new(None),
            replicas: replicas::Replicas::new(node),
            metrics,
        })
    }

    pub fn metadata(&self) -> Arc<MetadataImage> {
        self.metadata.get()
    }
    /// The newest gossip membership view (live nodes for placement: `view.live()`).
    pub fn membership(&self) -> Arc<crate::cluster::MembershipView> {
        self.metadata.membership()
    }
    /// Shard 0: this node's controller, through which admin calls commit.
    pub fn set_controller(&self, driver: Rc<controller::ControllerDriver>) {
        *self.controller.borrow_mut() = Some(driver);
    }
    /// Shard 0: this node's gossip.
    pub fn set_gossip(&self, driver: Rc<crate::membership::driver::GossipDriver>) {
        *self.gossip.borrow_mut() = Some(driver);
    }
    pub fn router(&self) -> &Rc<Router> {
        &self.router
    }
    pub fn owner(&self, topic: &str, partition: i32) -> ShardId {
        self.router.owner(topic, partition)
    }
    /// Check topic config overrides (the store keeps them as given).
    fn validate_overrides(&self, configs: &BTreeMap<String, String>) -> Result<(), AdminError> {
        let overrides = configs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        self.config
            .topic_defaults
            .with_overrides(overrides)
            .map(|_| ())
            .map_err(|e| AdminError::InvalidConfig(e.to_string()))
    }

    /// A topic's `durability`: its override, else the broker default. Allocation-free: it
    /// runs on every append (unlike [`Shard::topic_configs`], which builds the whole set).
    fn durability(&self, topic: &TopicMeta) -> Durability {
        match topic.configs.get("durability") {
            Some(v) => Durability::parse(v).unwrap_or(Durability::Always),
            None => self.config.topic_defaults.durability(),
        }
    }

    pub fn topic_configs(&self, topic: &TopicMeta) -> TopicConfigs {
        let overrides = topic.configs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        self.config
            .topic_defaults
            .with_overrides(overrides)
            .unwrap_or_else(|_| self.config.topic_defaults.clone())
    }

    fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.config
            .data_dir
            .join(format!("{}-{}", tp.topic, tp.partition))
    }

    fn log(&self, tp: &TopicPartition) -> Result<DiskLog, PartitionError> {
        if self.closing.get() {
            return Err(PartitionError::ShuttingDown);
        }
        let plain = self.logs.borrow().get(tp).cloned();
        plain
            .or_else(|| self.replicas.partition_log(tp))
            .ok_or(PartitionError::UnknownTopicOrPartition)
    }

    /// What readers may see of `tp`: the log's high watermark, and for a replicated
    /// partition no more than its Raft high watermark (the commit).
    fn high_watermark(&self, tp: &TopicPartition, log: &DiskLog) -> Offset {
        self.raft_clamped(tp, log.high_watermark())
    }

    /// Where a read of `tp` may reach now: the log end (a read writes out what it serves,
    /// see `PartitionLog::high_watermark`), for a replicated partition no further than its
    /// Raft high watermark.
    fn readable_end(&self, tp: &TopicPartition, log: &DiskLog) -> Offset {
        self.raft_clamped(tp, log.log_end_offset())
    }

    /// `offset`, or for a replicated partition no more than its Raft high watermark.
    fn raft_clamped(&self, tp: &TopicPartition, offset: Offset) -> Offset {
        self.replicas
            .high_watermark(tp)
            .map_or(offset, |raft| raft.min(offset))
    }

    /// Open (and recover) every partition this shard owns in `image` that is not open yet,
    /// and remove the logs of partitions whose topic is gone.
    pub async fn apply_metadata(&self, image: Arc<MetadataImage>) {
        let Ok(_one) = self.applying.acquire_permit(1).await else {
            return;
        };
        if !self.metadata.apply(image.clone()) {
            return;
        }
        self.remove_gone(&image).await;
        let me = self.config.node_id;
        for topic in image.topics.values() {
            let configs = log_config(&self.topic_configs(topic));
            for p in 0..topic.partitions {
                let here = topic
                    .replicas
                    .get(p as usize)
                    .is_some_and(|r| r.contains(&me));
                if !here || self.owner(&topic.name, p) != self.id {
                    continue;
                }
                let tp = TopicPartition {
                    topic: topic.name.clone(),
                    partition: p,
                };
                if crate::cluster::routing::is_replicated(topic, p) {
                    match self.replicas.group(&tp) {
                        Some(_) => self.configure_replica(&tp, topic, configs.clone()),
                        None => self.open_replica(tp, topic, configs.clone()).await,
                    }
                    continue;
                }
                let existing = self.logs.borrow().get(&tp).cloned();
                match existing {
                    Some(log) => log.set_config(configs.clone()),
                    None => self.open_log(tp, configs.clone()).await,
                }
            }
        }
    }

    /// Remove the logs (plain and replicated) of partitions `image` no longer has.
    async fn remove_gone(&self, image: &MetadataImage) {
        let gone = |tp: &TopicPartition| {
            image
                .topics
                .get(&tp.topic)
                .is_none_or(|t| tp.partition >= t.partitions)
        };
        let plain: Vec<TopicPartition> = self
            .logs
            .borrow()
            .keys()
            .filter(|tp| gone(tp))
            .cloned()
            .collect();
        for tp in self.replicas.partitions().into_iter().filter(|tp| gone(tp)) {
            self.remove_replica(&tp).await;
        }
        for tp in plain {
            let log = self.logs.borrow_mut().remove(&tp);
            if let Some(log) = log {
                if let Err(e) = log.remove().await {
                    crate::error!("shard {}: removing {tp}: {e}", self.id.0);
                }
            }
        }
    }

    async fn open_log(&self, tp: TopicPartition, config: LogConfig) {
        let dir = self.partition_dir(&tp);
        let started = std::time::Instant::now();
        match PartitionLog::open(DmaDisk, dir, config, self.cache.clone()).await {
            Ok(log) => {
                count_recovery(&log, &self.metrics);
                crate::info!(
                    "partition {tp} opened: log start {}, end {}, in {} ms",
                    log.log_start_offset(),
                    log.log_end_offset(),
                    started.elapsed().as_millis()
                );
                self.logs.borrow_mut().insert(tp, log);
            }
            Err(e) => crate::error!("shard {}: cannot open partition {tp}: {e}", self.id.0),
        }
    }

    /// Open and replay this shard's group-log partitions, then run the group timers.
    pub async fn start_groups(self: &Rc<Self>) -> Result<(), String> {
        let g = groups::GroupShard::open(
            self.id,
            self.router.shard_count(),
            &self.config.data_dir,
            self.cache.clone(),
            &self.metrics,
        )
        .await?;
        let g = Rc::new(g);
        *self.groups.borrow_mut() = Some(g.clone());
        let shard = self.clone();
        glommio::spawn_local(async move { g.run_timers(|| shard.closing.get()).await }).detach();
        Ok(())
    }

    /// The shard's metrics, plus what lag needs: log end offsets of its partitions and the
    /// committed offsets of the groups it coordinates.
    fn metrics_snapshot(&self) -> crate::metrics::Snapshot {
        self.metrics
            .partitions
            .set(self.open_partition_count() as u64);
        let mut snap = self.metrics.snapshot(self.id.0);
        snap.log_ends = self
            .logs
            .borrow()
            .iter()
            .map(|(tp, log)| (tp.topic.to_string(), tp.partition, log.high_watermark()))
            .collect();
        for tp in self.replicas.partitions() {
            if let Some(hw) = self.replicas.high_watermark(&tp) {
                snap.log_ends.push((tp.topic.to_string(), tp.partition, hw));
            }
        }
        let groups = self.groups.borrow().clone();
        if let Some(g) = groups {
            snap.committed = g.committed_offsets();
        }
        snap.cluster = self.cluster_gauges();
        snap
    }

    /// Shard 0: the node-wide gauges of gossip and the controller (`None` elsewhere).
    fn cluster_gauges(&self) -> Option<crate::metrics::ClusterGauges> {
        use crate::cluster::status;
        let ctl = self.controller.borrow().clone()?;
        let nodes = status::nodes(&self.metadata(), &self.membership());
        let ctl = ctl.status().unwrap_or_default();
        let gossip = self.gossip.borrow().clone();
        let (sent, received, bad) = gossip.map_or((0, 0, 0), |g| g.packet_counts());
        Some(crate::metrics::ClusterGauges {
            nodes: status::count_states(&nodes),
            controller_leader: ctl.leader.map_or(-1, i64::from),
            controller_term: ctl.term,
            controller_commit_index: ctl.commit_index,
            gossip_sent: sent,
            gossip_received: received,
            gossip_bad: bad,
        })
    }

    pub fn open_partition_count(&self) -> usize {
        self.logs.borrow().len() + self.replicas.partitions().len()
    }

    async fn produce(
        &self,
        acks: i16,
        parts: Vec<ProducePart>,
    ) -> Vec<Result<AppendOutcome, PartitionError>> {
        let mut appended = Vec::with_capacity(parts.len());
        for part in parts {
            appended.push(match self.replicas.group(&part.tp) {
                Some(g) => Appended::Raft(g, part),
                None => {
                    let (result, sync) = self.append_one(part).await;
                    Appended::Local(result, sync)
                }
            });
        }
        self.data_notify.notify();
        // acks=-1 on `always` topics: wait for the group commits, all partitions at once;
        // replicated partitions propose here (each in request order, before any wait).
        let syncs = appended.into_iter().map(|step| async move {
            match step {
                Appended::Raft(g, part) => self.produce_raft(g, acks, part).await,
                Appended::Local(Ok(outcome), Some((log, last))) if acks == -1 => {
                    let started = std::time::Instant::now();
                    let synced = log.sync_through(last).await;
                    self.metrics.fsync_latency.record(started.elapsed());
                    synced.map(|()| outcome).map_err(not_durable)
                }
                Appended::Local(r, _) => r,
            }
        });
        join_all(syncs).await
    }

    /// One partition of a produce to a replicated partition (see `replicas`).
    async fn produce_raft(
        &self,
        g: crate::replication::GroupId,
        acks: i16,
        part: ProducePart,
    ) -> Result<AppendOutcome, PartitionError> {
        let Some(records) = part.records else {
            return Err(PartitionError::InvalidRecord("null records".into()));
        };
        let (bytes, count) = batch_size(&records);
        let outcome = self.produce_replicated(g, acks, records).await;
        if outcome.is_ok() {
            self.metrics.appended(&part.tp.topic, bytes, count);
        }
        outcome
    }

    /// Append one partition's records. Returns the outcome and, when the topic's durability
    /// is `always`, the log and offset an acks=-1 producer must wait for.
    async fn append_one(
        &self,
        part: ProducePart,
    ) -> (
        Result<AppendOutcome, PartitionError>,
        Option<(DiskLog, Offset)>,
    ) {
        let log = match self.log(&part.tp) {
            Ok(log) => log,
            Err(e) => return (Err(e), None),
        };
        crate::base::failpoint::panic_on_produce(&part.tp.topic);
        let Some(records) = part.records else {
            return (
                Err(PartitionError::InvalidRecord("null records".into())),
                None,
            );
        };
        let (bytes, count) = batch_size(&records);
        match log.append(records, LeaderEpoch(0)).await {
            Ok(info) => {
                if !info.duplicate {
                    self.metrics.appended(&part.tp.topic, bytes, count);
                }
                let durability = self
                    .metadata()
                    .topics
                    .get(&part.tp.topic)
                    .map_or(Durability::Always, |t| self.durability(t));
                let sync =
                    (durability == Durability::Always).then(|| (log.clone(), info.last_offset));
                let outcome = AppendOutcome {
                    base_offset: info.base_offset,
                    log_append_time_ms: info.log_append_time_ms,
                    log_start_offset: info.log_start_offset,
                };
                (Ok(outcome), sync)
            }
            Err(e) => (Err(storage_error(e)), None),
        }
    }

    /// Read every partition of the call at once, so disk reads of cold partitions overlap
    /// (one O_DIRECT read each in flight) instead of queueing one behind the other. Each
    /// partition with something to read first takes its share of the Fetch's `budget`, in
    /// request order (a partition at its end takes none), and gives back what it did not use.
    async fn fetch(
        &self,
        parts: Vec<FetchPart>,
        budget: &FetchBudget,
    ) -> Vec<Result<FetchedPartition, PartitionError>> {
        let shares: Vec<usize> = parts
            .iter()
            .map(|p| match self.log(&p.tp) {
                Ok(log) if p.fetch_offset != self.readable_end(&p.tp, &log) => {
                    budget.take(p.partition_max_bytes.max(1))
                }
                _ => 0,
            })
            .collect();
        join_all(
            parts
                .into_iter()
                .zip(shares)
                .map(|(part, share)| async move {
                    let fetched = self.fetch_one(part, share).await;
                    let used = fetched.as_ref().map_or(0, FetchedPartition::bytes);
                    budget.give_back(share.saturating_sub(used));
                    fetched
                }),
        )
        .await
    }

    /// Read one partition from its fetch offset, at most `share` bytes (but at least one
    /// batch, KIP-74); a share of 0 (the Fetch's budget is spent) reads nothing.
    async fn fetch_one(
        &self,
        part: FetchPart,
        share: usize,
    ) -> Result<FetchedPartition, PartitionError> {
        let log = self.log(&part.tp)?;
        let high_watermark = self.high_watermark(&part.tp, &log);
        let mut fetched = FetchedPartition {
            high_watermark,
            last_stable_offset: high_watermark,
            log_start_offset: log.log_start_offset(),
            batches: Vec::new(),
        };
        let end = self.readable_end(&part.tp, &log);
        let in_range = (log.log_start_offset()..=end).contains(&part.fetch_offset);
        if part.fetch_offset == end || (share == 0 && in_range) {
            return Ok(fetched);
        }
        let read = log
            .read_for_fetch(part.fetch_offset, share)
            .await
            .map_err(storage_error)?;
        // The read wrote out what it serves: its high watermark, not the one before it.
        let high_watermark = self.raft_clamped(&part.tp, read.high_watermark);
        fetched.high_watermark = high_watermark;
        fetched.last_stable_offset = high_watermark;
        fetched.log_start_offset = read.log_start_offset;
        let counter = if read.from_cache {
            &self.metrics.cache_hits
        } else {
            &self.metrics.cache_misses
        };
        counter.set(counter.get() + 1);
        let (bytes, records) = read
            .batches
            .iter()
            .map(|b| batch_size(b))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        self.metrics.fetched(&part.tp.topic, bytes, records);
        fetched.batches = read.batches;
        // A replicated log holds entries not committed yet: readers never see them.
        let committed = |b: &bytes::Bytes| {
            crate::model::BatchHeader::parse(b).is_ok_and(|h| h.base_offset() < high_watermark)
        };
        if fetched.batches.last().is_some_and(|b| !committed(b)) {
            fetched.batches.retain(committed);
        }
        Ok(fetched)
    }

    /// True when any partition has data past its offset (or cannot be read at all, so the
    /// fetch should answer now with the error).
    fn any_data(&self, parts: &[(TopicPartition, Offset)]) -> bool {
        parts.iter().any(|(tp, offset)| match self.log(tp) {
            Ok(log) => {
                let committed = self
                    .replicas
                    .high_watermark(tp)
                    .is_none_or(|hw| hw > *offset);
                (committed && log.readable_past(*offset)) || *offset < log.log_start_offset()
            }
            Err(_) => true,
        })
    }

    async fn wait_for_data(&self, parts: Vec<(TopicPartition, Offset)>, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.any_data(&parts) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            let _ = glommio::timer::timeout(left, async {
                self.data_notify.changed().await;
                Ok(())
            })
            .await;
        }
    }

    async fn list_offsets(
        &self,
        queries: Vec<OffsetQuery>,
    ) -> Vec<Result<(Offset, i64), PartitionError>> {
        let mut out = Vec::with_capacity(queries.len());
        for q in queries {
            out.push(self.list_offset(q).await);
        }
        out
    }

    async fn list_offset(&self, q: OffsetQuery) -> Result<(Offset, i64), PartitionError> {
        let log = self.log(&q.tp)?;
        match q.timestamp {
            -2 => Ok((log.log_start_offset(), -1)),
            -1 => {
                // "Latest" is the high watermark: write out what is appended first, so that
                // a produce answered before this query is counted (a failed write: what is
                // written).
                let _ = log.flush().await;
                Ok((self.high_watermark(&q.tp, &log), -1))
            }
            -3 => Ok(log
                .max_timestamp()
                .map(|(ts, off)| (off, ts))
                .unwrap_or((-1, -1))),
            // The exact record (storage reads the batch record by record), as Kafka answers.
            ts => Ok(log
                .offset_for_timestamp(ts)
                .await
                .map_err(storage_error)?
                .unwrap_or((-1, -1))),
        }
    }

    async fn delete_records(
        &self,
        parts: Vec<(TopicPartition, Offset)>,
    ) -> Vec<Result<Offset, PartitionError>> {
        let mut out = Vec::with_capacity(parts.len());
        for (tp, offset) in parts {
            let result = match self.log(&tp) {
                Ok(_) if self.replicas.group(&tp).is_some() => Err(PartitionError::Storage(
                    "DeleteRecords on a replicated partition is not supported yet".into(),
                )),
                Ok(log) => {
                    // Records are deleted up to the high watermark: write out what is
                    // appended first (a failed write is answered by the delete below).
                    let _ = log.flush().await;
                    let target = if offset == -1 {
                        log.high_watermark()
                    } else {
                        offset
                    };
                    if target > log.high_watermark() || target < 0 {
                        Err(PartitionError::OffsetOutOfRange {
                            requested: offset,
                            log_start: log.log_start_offset(),
                            log_end: log.high_watermark(),
                        })
                    } else {
                        log.delete_records_before(target)
                            .await
                            .map_err(storage_error)
                    }
                }
                Err(e) => Err(e),
            };
            out.push(result);
        }
        out
    }

    /// Metadata-shard admin: validate here, commit through the controller, push the new
    /// image to every shard (waiting for each to apply it), and return it.
    async fn admin(&self, call: AdminCall) -> Result<AdminReply, AdminError> {
        let driver = self.controller.borrow().clone();
        let Some(driver) = driver else {
            return Err(AdminError::Storage("not the metadata shard".into()));
        };
        let image = driver.image();
        let cmd = match call {
            AdminCall::AllocateProducerId => {
                return driver
                    .allocate_producer_id()
                    .await
                    .map(AdminReply::ProducerId);
            }
            AdminCall::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
                validate_only,
            } => {
                self.validate_overrides(&configs)?;
                let cmd =
                    self.create_topic(&image, name, partitions, replication_factor, configs)?;
                if validate_only {
                    return Ok(AdminReply::Done(image));
                }
                cmd
            }
            AdminCall::DeleteTopic { name } => Command::DeleteTopic { name },
            AdminCall::CreatePartitions {
                name,
                count,
                validate_only,
            } => {
                let cmd = self.create_partitions(&image, name, count)?;
                if validate_only {
                    return Ok(AdminReply::Done(image));
                }
                cmd
            }
            AdminCall::SetTopicConfigs {
                name,
                configs,
                validate_only,
            } => {
                self.validate_overrides(&configs)?;
                if validate_only {
                    return Ok(AdminReply::Done(image));
                }
                Command::SetTopicConfigs { name, configs }
            }
            AdminCall::AlterScram(
                cmd @ (Command::UpsertScram { .. } | Command::DeleteScram { .. }),
            ) => cmd,
            AdminCall::AlterScram(other) => {
                return Err(AdminError::Storage(format!(
                    "not a credential change: {other:?}"
                )))
            }
        };
        let (_, after) = driver.propose(&cmd).await?;
        log_metadata_change(&self.metadata(), &after);
        self.broadcast(after.clone()).await;
        Ok(AdminReply::Done(after))
    }

    /// Placement candidates: the registered nodes that gossip sees alive (all registered
    /// nodes while the view knows none of them).
    fn candidates(&self, image: &MetadataImage) -> Vec<Candidate> {
        let view = self.membership();
        let live: Vec<i32> = view.live().map(|m| m.card.node_id).collect();
        let any_live = image.nodes.keys().any(|id| live.contains(id));
        let nodes = image.nodes.values();
        nodes
            .filter(|n| !any_live || live.contains(&n.id))
            .map(|n| Candidate {
                id: n.id,
                rack: n.rack.clone(),
            })
            .collect()
    }

    /// A CreateTopic command with its topic id and placement, if the request is valid.
    fn create_topic(
        &self,
        image: &MetadataImage,
        name: String,
        partitions: i32,
        rf: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Command, AdminError> {
        crate::cluster::validate_topic_name(&name).map_err(admin_error)?;
        if image.topics.contains_key(name.as_str()) {
            return Err(admin_error(MetadataError::TopicExists(name)));
        }
        let max = crate::cluster::MAX_PARTITIONS_PER_TOPIC;
        if !(1..=max).contains(&partitions) {
            let why = format!("{partitions} is not between 1 and {max}");
            return Err(AdminError::InvalidPartitions(why));
        }
        let live = self.candidates(image);
        let rf = replication_factor(rf, self.config.default_replication_factor, live.len())
            .map_err(|e| AdminError::InvalidReplicationFactor(e.0))?;
        let replicas = place(image, &live, partitions as usize, rf)
            .map_err(|e| AdminError::InvalidReplicationFactor(e.0))?;
        Ok(Command::CreateTopic {
            name,
            topic_id: crate::cluster::random_uuid(),
            configs,
            replicas,
        })
    }

    /// A CreatePartitions command placing the new partitions like the topic's first ones.
    fn create_partitions(
        &self,
        image: &MetadataImage,
        name: String,
        count: i32,
    ) -> Result<Command, AdminError> {
        let t = image
            .topics
            .get(name.as_str())
            .ok_or_else(|| AdminError::UnknownTopic(format!("topic '{name}' does not exist")))?;
        let max = crate::cluster::MAX_PARTITIONS_PER_TOPIC;
        if count <= t.partitions || count > max {
            return Err(AdminError::InvalidPartitions(format!(
                "topic '{name}' has {} partitions; the new count {count} must be larger and at most {max}",
                t.partitions
            )));
        }
        let live = self.candidates(image);
        let rf = t
            .replicas
            .first()
            .map_or(1, Vec::len)
            .min(live.len())
            .max(1);
        let replicas = place(image, &live, (count - t.partitions) as usize, rf)
            .map_err(|e| AdminError::InvalidReplicationFactor(e.0))?;
        Ok(Command::CreatePartitions {
            name,
            from: t.partitions,
            replicas,
        })
    }

    async fn broadcast(&self, image: Arc<MetadataImage>) {
        broadcast(&self.router, || ShardCall::ApplyMetadata(image.clone())).await;
    }

    /// Shutdown: refuse new calls, then flush, fdatasync and close every partition.
    pub async fn close_all(&self) {
        self.closing.set(true);
        let groups = self.groups.borrow_mut().take();
        if let Some(g) = groups {
            g.close().await;
        }
        self.close_replicas().await;
        let logs: Vec<(TopicPartition, DiskLog)> = self.logs.borrow_mut().drain().collect();
        for (tp, log) in logs {
            if let Err(e) = log.close().await {
                crate::error!("shard {}: closing {tp}: {e}", self.id.0);
            }
        }
    }

    /// The open partition logs, copied out so that the caller may await between them.
    fn open_logs(&self) -> Vec<(TopicPartition, DiskLog)> {
        let logs = self.logs.borrow();
        logs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Periodic work: flushes, fdatasync for `interval:<ms>` durability, and (in a task of
    /// its own) retention. Runs until shutdown; ticks every `tick`.
    pub async fn housekeeping(self: Rc<Self>, tick: Duration) {
        glommio::spawn_local(self.clone().retention(Duration::from_secs(1))).detach();
        let mut last_sync: HashMap<TopicPartition, std::time::Instant> = HashMap::new();
        while !self.closing.get() {
            glommio::timer::sleep(tick).await;
            let logs = self.open_logs();
            let image = self.metadata();
            let mut synced = Vec::new();
            let flushes = logs.iter().map(|(tp, log)| {
                let durability = image.topics.get(&tp.topic).map(|t| self.durability(t));
                let sync_due = matches!(durability, Some(Durability::IntervalMs(ms))
                    if last_sync.get(tp).is_none_or(|t| t.elapsed() >= Duration::from_millis(ms)));
                if sync_due {
                    synced.push(tp.clone());
                }
                async move {
                    let _ = log.flush().await;
                    if sync_due {
                        let _ = log.sync_through(log.log_end_offset() - 1).await;
                    }
                }
            });
            // All partitions at once: one at a time kept a single write in flight per shard.
            join_all(flushes.collect::<Vec<_>>()).await;
            for tp in synced {
                last_sync.insert(tp, std::time::Instant::now());
            }
        }
    }

    /// Retention, every `period`, in its own task: deleting segments waits on fsyncs and
    /// unlinks (~100 ms per partition under load), which must not delay the flushes above.
    async fn retention(self: Rc<Self>, period: Duration) {
        while !self.closing.get() {
            glommio::timer::sleep(period).await;
            let logs = self.open_logs();
            for (tp, log) in logs {
                if self.closing.get() {
                    break;
                }
                match log.enforce_retention(now_ms()).await {
                    Ok(()) | Err(crate::storage::StorageError::Closed) => {}
                    Err(e) => crate::error!("shard {}: retention on {tp}: {e}", self.id.0),
                }
            }
        }
    }
}

/// One log line per topic created, deleted, grown or reconfigured.
/// Make `make()` on every shard of this node, waiting for each.
pub(crate) async fn broadcast(router: &Router, make: impl Fn() -> ShardCall) {
    let calls = (0..router.shard_count()).map(|s| {
        let call = make();
        async move {
            let _ = router.call(ShardId(s), call).await;
        }
    });
    join_all(calls).await;
}

fn log_metadata_change(before: &MetadataImage, after: &MetadataImage) {
    for (name, t) in &after.topics {
        match before.topics.get(name) {
            None => crate::info!("topic '{name}' created with {} partition(s)", t.partitions),
            Some(old) if old.partitions != t.partitions => {
                crate::info!(
                    "topic '{name}' grown from {} to {} partitions",
                    old.partitions,
                    t.partitions
                )
            }
            Some(old) if old.configs != t.configs => {
                crate::info!("topic '{name}' configs set to {:?}", t.configs)
            }
            Some(_) => {}
        }
    }
    for name in before
        .topics
        .keys()
        .filter(|n| !after.topics.contains_key(*n))
    {
        crate::info!("topic '{name}' deleted");
    }
    for (user, creds) in &after.users {
        if before.users.get(user) != Some(creds) {
            let mechanisms: Vec<&str> = creds.keys().map(|m| m.name()).collect();
            crate::info!("user '{user}' credentials set: {}", mechanisms.join(","));
        }
    }
    for user in before
        .users
        .keys()
        .filter(|u| !after.users.contains_key(*u))
    {
        crate::info!("user '{user}' deleted");
    }
}

/// Bytes and record count of a batch (0 records if its header is unreadable: validation
/// happens in the log, this is for counting only).
fn batch_size(batch: &[u8]) -> (usize, u64) {
    let records = crate::model::BatchHeader::parse(batch)
        .map(|h| u64::try_from(h.records_count()).unwrap_or(0))
        .unwrap_or(0);
    (batch.len(), records)
}

impl ShardHandler for Shard {
    fn handle(&self, call: ShardCall) -> Pin<Box<dyn Future<Output = ShardReply> + '_>> {
        Box::pin(async move {
            match call {
                ShardCall::Produce { acks, parts } => {
                    ShardReply::Produce(self.produce(acks, parts).await)
                }
                ShardCall::Fetch { parts, budget } => {
                    ShardReply::Fetch(self.fetch(parts, &budget).await)
                }
                ShardCall::WaitForData { parts, timeout } => {
                    self.wait_for_data(parts, timeout).await;
                    ShardReply::DataReady
                }
                ShardCall::ListOffsets { queries } => {
                    ShardReply::ListOffsets(self.list_offsets(queries).await)
                }
                ShardCall::DeleteRecords { parts } => {
                    ShardReply::DeleteRecords(self.delete_records(parts).await)
                }
                ShardCall::Admin(call) => ShardReply::Admin(self.admin(call).await),
                ShardCall::Group(call) => {
                    // A peer shard may be ready before this one has replayed its group
                    // log: such calls wait for the replay (clients see a slower answer).
                    let groups = loop {
                        let g = self.groups.borrow().clone();
                        match g {
                            Some(g) => break g,
                            None => glommio::timer::sleep(Duration::from_millis(5)).await,
                        }
                    };
                    ShardReply::Group(groups.handle(call).await)
                }
                ShardCall::Metrics => ShardReply::Metrics(Box::new(self.metrics_snapshot())),
                ShardCall::ApplyMetadata(image) => {
                    self.apply_metadata(image).await;
                    ShardReply::Applied
                }
                ShardCall::ApplyMembership(view) => {
                    self.metadata.apply_membership(view);
                    ShardReply::Applied
                }
                ShardCall::ControllerChanged(leader) => {
                    self.metadata.set_controller(leader);
                    ShardReply::Applied
                }
                ShardCall::ReplicationOut { to, payload } => {
                    self.replicas.send_out(to, payload);
                    ShardReply::Applied
                }
                ShardCall::ReplicationIn { from, payload } => {
                    self.replicas.deliver(from, payload);
                    ShardReply::Applied
                }
                ShardCall::PartitionLeader { tp, leadership } => {
                    self.metadata
                        .set_leadership(&tp.topic, tp.partition, leadership);
                    ShardReply::Applied
                }
                ShardCall::ControllerStatus => {
                    let ctl = self.controller.borrow().clone();
                    ShardReply::ControllerStatus(ctl.and_then(|c| c.status()))
                }
            }
        })
    }
}
