//! Per-partition Raft (Cluster II), sans-IO: a [`PartitionReplica`] per partition (a raft-rs
//! `RawNode` over the partition's own log, through the [`ReplicaLog`] trait) and a per-shard
//! [`MultiRaft`] driver that ticks all of a shard's groups, batches everything they send to
//! one node into one envelope per loop, sends heartbeats in a compact form, and stops
//! ticking idle groups (hibernation). Design and its reasons: `docs/replication.md`.
//!
//! Nothing here does I/O or reads a clock. The shard's loop (or the simulation in `sim`)
//! drives one iteration as:
//! 1. [`MultiRaft::receive`] every envelope that arrived from a peer;
//! 2. [`MultiRaft::tick`] when the tick interval passed;
//! 3. [`MultiRaft::process`]: every group's raft `ready()` is handled: entries are appended
//!    to the group's log (readable at once, not yet durable), messages that may leave before
//!    the sync are queued, the rest (votes, append acks) are held;
//! 4. the driver syncs the log of every group [`MultiRaft::take_dirty`] names (one flush per
//!    log per loop, whatever the number of batches: the group commit);
//! 5. [`MultiRaft::persisted`] with those groups: raft learns its entries are durable (the
//!    leader's own vote toward the commit counts only now) and held messages are released;
//! 6. [`MultiRaft::flush`]: at most one envelope per peer node, and
//!    [`MultiRaft::take_events`]: proposals appended / committed / lost, high watermarks,
//!    leader and term changes.
//!
//! Offsets: a raft entry is one RecordBatch; each replica stamps the batch's base offset
//! (the end of the previous entry) and `partitionLeaderEpoch` (the entry's term) when it
//! appends it, so offsets follow from the log prefix and are equal on every replica. The high
//! watermark is the offset after the last committed entry this replica applied.

pub mod batch;
pub mod epochs;
pub mod log;
pub mod mem_log;
pub mod multi;
pub mod replica;
pub mod stored;
pub mod wire;

#[cfg(test)]
mod sim;

pub use self::log::{RaftStore, ReplicaLog, ReplicaLogError};
pub use self::mem_log::{MemDisk, MemLog};
pub use multi::{MultiConfig, MultiRaft, MultiStats};
pub use replica::{Event, PartitionReplica, ProposalId, ReplicaConfig};
pub use stored::StoredLog;

use crate::model::BatchError;
use crate::rpc::NodeId;
use std::fmt;

/// The rpc envelope kind that carries a [`wire::Batch`] between two nodes' shard drivers.
pub const KIND_REPLICATION: u16 = 200;

/// A partition's Raft group, the same on every replica (the controller names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {}", self.0)
    }
}

/// The group of partition `partition` of the topic `topic_id`: FNV-1a (64 bits) of the topic
/// id and the partition index, the same on every node.
pub fn group_of(topic_id: &[u8; 16], partition: i32) -> GroupId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in topic_id.iter().chain(partition.to_be_bytes().iter()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    GroupId(h)
}

/// Raft id of Kafka node `node` (raft reserves id 0).
pub fn raft_id(node: NodeId) -> u64 {
    u64::from(node as u32) + 1
}

/// Kafka node id of raft id `id` (`None` for raft's "no node", 0, or an id out of range).
pub fn node_of(id: u64) -> Option<NodeId> {
    let n = id.checked_sub(1)?;
    i32::try_from(n).ok()
}

/// Why a replication operation failed.
#[derive(Debug)]
pub enum ReplicationError {
    /// This replica does not lead the group; `leader` is the one it knows. The batch was not
    /// appended (NOT_LEADER_OR_FOLLOWER).
    NotLeader { leader: Option<NodeId> },
    /// Too many of this replica's proposals wait for their commit. Not appended; retriable.
    Busy,
    /// The batch proposed is not a valid RecordBatch v2 (CORRUPT_MESSAGE).
    BadBatch(BatchError),
    /// No such group on this node.
    UnknownGroup(GroupId),
    /// The group exists already.
    GroupExists(GroupId),
    /// An envelope from a peer does not parse (the envelope is dropped).
    BadEnvelope(String),
    /// The group's log failed (KAFKA_STORAGE_ERROR); the group stops.
    Log(ReplicaLogError),
    /// raft-rs refused an operation.
    Raft(raft::Error),
}

impl fmt::Display for ReplicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicationError::NotLeader { leader: Some(l) } => {
                write!(f, "not the leader of the partition; node {l} is")
            }
            ReplicationError::NotLeader { leader: None } => {
                write!(f, "not the leader of the partition; none is known")
            }
            ReplicationError::Busy => write!(f, "too many proposals in flight"),
            ReplicationError::BadBatch(e) => write!(f, "bad record batch: {e}"),
            ReplicationError::UnknownGroup(g) => write!(f, "{g} is not on this node"),
            ReplicationError::GroupExists(g) => write!(f, "{g} exists already"),
            ReplicationError::BadEnvelope(why) => write!(f, "bad replication envelope: {why}"),
            ReplicationError::Log(e) => write!(f, "replica log: {e}"),
            ReplicationError::Raft(e) => write!(f, "raft: {e}"),
        }
    }
}

impl std::error::Error for ReplicationError {}

impl From<ReplicaLogError> for ReplicationError {
    fn from(e: ReplicaLogError) -> Self {
        ReplicationError::Log(e)
    }
}
