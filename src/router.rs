//! Cross-shard calls: typed requests in `model` terms, carried over glommio's channel mesh.
//!
//! Every shard holds a [`Router`]. The server on the accepting shard splits a request by the
//! partition's owner ([`crate::model::owner_shard`]) and sends ONE [`ShardCall`] per
//! destination shard per client request (never one per partition or record: waking a parked
//! executor costs tens of microseconds). A call to the local shard skips the mesh and runs the
//! handler directly. Replies come back over the mesh, matched by a per-shard call id.
//!
//! Ownership: only the owning shard's handler touches a partition log. Payloads are owned and
//! `Send` (`Bytes`, `Arc`), so record bytes cross shards without being copied.
//!
//! Bounds: the mesh channels hold [`MESH_CHANNEL_CAPACITY`] messages per pair of shards; a full
//! channel makes the sender wait (back-pressure to the connection), never grow a queue.

mod scatter;

pub use scatter::Scatter;

use crate::cluster::MetadataImage;
use crate::groups::call::{GroupAnswer, GroupCall};
use crate::model::{Offset, ShardId, TimestampMs, TopicPartition};
use bytes::Bytes;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Messages in flight between one pair of shards, per direction. Each is one client
/// request's worth of work for that shard (or its reply).
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// The shard that coordinates `group_id`: the owner of its partition of the group log.
pub fn group_owner(group_id: &str, shard_count: u16) -> ShardId {
    crate::model::owner_shard(
        crate::groups::GROUP_LOG_TOPIC,
        crate::groups::group_partition(group_id, crate::groups::GROUP_LOG_PARTITIONS),
        shard_count,
    )
}

/// Why a partition-level operation failed on its owning shard. Mapped to a Kafka error code
/// in one place, at the server edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionError {
    UnknownTopicOrPartition,
    /// Another node leads the partition (or none does): nothing was done here.
    NotLeader,
    /// The batch failed its length, magic or CRC-32C check; nothing was appended.
    CorruptMessage(String),
    /// More than one batch, or a malformed batch header.
    InvalidRecord(String),
    MessageTooLarge {
        bytes: usize,
        max_bytes: usize,
    },
    OutOfOrderSequence(String),
    InvalidProducerEpoch(String),
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    /// The disk failed (ENOSPC, EIO); the partition keeps what was acknowledged, and the
    /// batch of a produce answered so was not stored.
    Storage(String),
    /// The batch was appended (readers may see it; its write is retried) but its fdatasync
    /// failed: possibly stored, so the client must not be told it failed (REQUEST_TIMED_OUT,
    /// which producers retry; an idempotent retry is answered as a duplicate).
    NotDurable(String),
    /// The shard is shutting down.
    ShuttingDown,
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Outcome of appending one partition's batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: Offset,
    pub log_append_time_ms: TimestampMs,
    pub log_start_offset: Offset,
}

/// Records read from one partition, plus its offsets.
#[derive(Debug, Clone, Default)]
pub struct FetchedPartition {
    pub high_watermark: Offset,
    pub last_stable_offset: Offset,
    pub log_start_offset: Offset,
    /// Whole batches, zero-copy slices of the log's buffers.
    pub batches: Vec<Bytes>,
}

impl FetchedPartition {
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

#[derive(Debug, Clone)]
pub struct ProducePart {
    pub tp: TopicPartition,
    pub records: Option<Bytes>,
}

#[derive(Debug, Clone)]
pub struct FetchPart {
    pub tp: TopicPartition,
    pub fetch_offset: Offset,
    pub partition_max_bytes: usize,
}

/// The bytes a Fetch may still read (its max_bytes), shared by the shards that serve it:
/// each takes a partition's share before reading it and gives back what it did not use, so
/// the bytes read for one Fetch stay within its max_bytes (plus, per partition read, the part
/// of a first batch larger than its share: KIP-74).
#[derive(Debug, Clone)]
pub struct FetchBudget(Arc<std::sync::atomic::AtomicUsize>);

impl FetchBudget {
    pub fn new(bytes: usize) -> Self {
        FetchBudget(Arc::new(std::sync::atomic::AtomicUsize::new(bytes)))
    }

    /// Take up to `want` bytes: all of them, what is left if less, 0 once spent.
    pub fn take(&self, want: usize) -> usize {
        use std::sync::atomic::Ordering;
        let before = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left - left.min(want))
            })
            .unwrap_or_else(|left| left);
        before.min(want)
    }

    /// Give back bytes taken and not read.
    pub fn give_back(&self, bytes: usize) {
        self.0.fetch_add(bytes, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn left(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// What to look up in ListOffsets: -2 earliest, -1 latest, -3 max timestamp, else the first
/// offset whose timestamp is at or after it.
#[derive(Debug, Clone)]
pub struct OffsetQuery {
    pub tp: TopicPartition,
    pub timestamp: TimestampMs,
}

/// Topic-level admin operations, answered by the metadata shard (shard 0).
#[derive(Debug, Clone)]
pub enum AdminCall {
    CreateTopic {
        name: String,
        partitions: i32,
        /// As requested: -1 is the broker default.
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
        validate_only: bool,
    },
    /// Replace a topic's config overrides with `configs` (already merged by the caller).
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    AllocateProducerId,
    /// Create, replace or delete one SCRAM credential: a `Command::UpsertScram` or
    /// `Command::DeleteScram` (any other command is refused).
    AlterScram(crate::cluster::Command),
}

/// Why an admin call failed: a Kafka error code's name and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    TopicAlreadyExists(String),
    UnknownTopic(String),
    InvalidTopic(String),
    InvalidPartitions(String),
    InvalidConfig(String),
    InvalidReplicationFactor(String),
    Storage(String),
    /// No controller leader committed the change in time (election, minority); retriable.
    Unavailable(String),
    /// No such user or credential (RESOURCE_NOT_FOUND).
    ResourceNotFound(String),
    /// A user name or credential that may not be stored (UNACCEPTABLE_CREDENTIAL).
    UnacceptableCredential(String),
    /// A change the request describes badly, such as an ACL that may not be stored
    /// (INVALID_REQUEST).
    InvalidRequest(String),
}

#[derive(Debug, Clone)]
pub enum AdminReply {
    /// The image after the change; the caller applies it locally before answering.
    Done(Arc<MetadataImage>),
    ProducerId(i64),
}

/// A unit of work for one shard.
#[derive(Debug)]
pub enum ShardCall {
    Produce {
        acks: i16,
        parts: Vec<ProducePart>,
    },
    Fetch {
        parts: Vec<FetchPart>,
        budget: FetchBudget,
    },
    /// Resolve when any partition has data past its offset, or at the timeout.
    WaitForData {
        parts: Vec<(TopicPartition, Offset)>,
        timeout: Duration,
    },
    ListOffsets {
        queries: Vec<OffsetQuery>,
    },
    DeleteRecords {
        parts: Vec<(TopicPartition, Offset)>,
    },
    Admin(AdminCall),
    /// A new metadata image from the metadata shard; apply it (open or remove partitions).
    ApplyMetadata(Arc<MetadataImage>),
    /// A new gossip membership view from shard 0; keep it if newer.
    ApplyMembership(Arc<crate::cluster::MembershipView>),
    /// The controller leader changed (`None`: none known); from the metadata shard.
    ControllerChanged(Option<i32>),
    /// A consumer-group request, on the shard that coordinates the group.
    Group(GroupCall),
    /// A copy of the shard's metrics.
    Metrics,
    /// Shard 0: the controller group as this node knows it (`None` elsewhere, or before
    /// the controller opened).
    ControllerStatus,
    /// To shard 0 (which holds the node's transport): send one replication envelope of a
    /// shard's Raft groups to node `to`.
    ReplicationOut {
        to: i32,
        payload: Bytes,
    },
    /// From shard 0: a replication envelope from node `from` for this shard's Raft groups.
    ReplicationIn {
        from: i32,
        payload: Bytes,
    },
    /// From the shard that drives a replicated partition's Raft group: the leadership its
    /// replica now knows (`None`: the partition is no longer on this node).
    PartitionLeader {
        tp: TopicPartition,
        leadership: Option<crate::cluster::routing::PartitionLeadership>,
    },
}

#[derive(Debug)]
pub enum ShardReply {
    Produce(Vec<Result<AppendOutcome, PartitionError>>),
    Fetch(Vec<Result<FetchedPartition, PartitionError>>),
    DataReady,
    ListOffsets(Vec<Result<(Offset, TimestampMs), PartitionError>>),
    DeleteRecords(Vec<Result<Offset, PartitionError>>),
    Admin(Result<AdminReply, AdminError>),
    Applied,
    Group(GroupAnswer),
    Metrics(Box<crate::metrics::Snapshot>),
    ControllerStatus(Option<crate::cluster::status::ControllerStatus>),
}

/// What travels over the mesh.
#[derive(Debug)]
pub enum Envelope {
    Call { id: u64, from: u16, call: ShardCall },
    Reply { id: u64, reply: ShardReply },
}

/// The shard-local executor of [`ShardCall`]s (implemented by the shard).
pub trait ShardHandler {
    fn handle(&self, call: ShardCall) -> Pin<Box<dyn Future<Output = ShardReply> + '_>>;
}

/// Error when a peer shard is gone (only during shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerGone(pub ShardId);

/// A shard's router. `!Send`: one per executor.
pub struct Router {
    me: ShardId,
    shard_count: u16,
    senders: Senders<Envelope>,
    pending: RefCell<HashMap<u64, LocalSender<ShardReply>>>,
    next_id: Cell<u64>,
    handler: RefCell<Option<Rc<dyn ShardHandler>>>,
    /// Measurement aid (`--bench-owner-shard`): every data partition owned by one shard.
    /// Set identically on every shard before any partition is opened.
    owner_override: Cell<Option<ShardId>>,
}

impl Router {
    pub fn new(senders: Senders<Envelope>, shard_count: u16) -> Rc<Self> {
        let me = ShardId(senders.peer_id() as u16);
        Rc::new(Router {
            me,
            shard_count,
            senders,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            handler: RefCell::new(None),
            owner_override: Cell::new(None),
        })
    }

    pub fn me(&self) -> ShardId {
        self.me
    }
    pub fn shard_count(&self) -> u16 {
        self.shard_count
    }
    pub fn set_owner_override(&self, shard: Option<ShardId>) {
        self.owner_override.set(shard);
    }
    pub fn set_handler(&self, handler: Rc<dyn ShardHandler>) {
        *self.handler.borrow_mut() = Some(handler);
    }
    fn handler(&self) -> Rc<dyn ShardHandler> {
        self.handler
            .borrow()
            .clone()
            .expect("router used before its handler was set")
    }

    /// Run `call` on shard `to` and return its reply.
    pub async fn call(&self, to: ShardId, call: ShardCall) -> Result<ShardReply, PeerGone> {
        if to == self.me {
            let handler = self.handler();
            return Ok(handler.handle(call).await);
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, tx);
        let env = Envelope::Call {
            id,
            from: self.me.0,
            call,
        };
        if self.senders.send_to(to.0 as usize, env).await.is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(PeerGone(to));
        }
        let reply = rx.recv().await;
        self.pending.borrow_mut().remove(&id);
        reply.ok_or(PeerGone(to))
    }

    /// Spawn one task per peer that receives envelopes: calls run on this shard's handler
    /// (each in its own task, so a slow call does not block the channel), replies complete
    /// the matching pending call.
    pub fn spawn_receivers(self: &Rc<Self>, mut receivers: Receivers<Envelope>) {
        for (peer, stream) in receivers.streams() {
            let router = self.clone();
            glommio::spawn_local(async move {
                while let Some(env) = stream.recv().await {
                    router.dispatch(peer, env);
                }
            })
            .detach();
        }
    }

    fn dispatch(self: &Rc<Self>, peer: usize, env: Envelope) {
        match env {
            Envelope::Reply { id, reply } => {
                let tx = self.pending.borrow_mut().remove(&id);
                if let Some(tx) = tx {
                    let _ = tx.try_send(reply);
                }
            }
            Envelope::Call { id, from, call } => {
                debug_assert_eq!(from as usize, peer);
                let router = self.clone();
                glommio::spawn_local(async move {
                    let handler = router.handler();
                    let reply = handler.handle(call).await;
                    let _ = router
                        .senders
                        .send_to(from as usize, Envelope::Reply { id, reply })
                        .await;
                })
                .detach();
            }
        }
    }

    /// Stop sending to peers (shutdown).
    pub fn close(&self) {
        self.senders.close();
    }
}

impl Router {
    /// The shard that owns a partition.
    pub fn owner(&self, topic: &str, partition: i32) -> ShardId {
        if let Some(pinned) = self.owner_override.get() {
            return pinned;
        }
        crate::model::owner_shard(topic, partition, self.shard_count)
    }
}

#[cfg(test)]
mod tests {
    use super::FetchBudget;

    #[test]
    fn a_fetch_budget_is_shared_and_never_overdrawn() {
        let b = FetchBudget::new(100);
        let other = b.clone();
        assert_eq!(b.take(60), 60);
        assert_eq!(other.take(60), 40, "only what is left");
        assert_eq!(b.take(1), 0, "spent");
        other.give_back(25);
        assert_eq!((b.left(), b.take(usize::MAX)), (25, 25));
    }
}
