//! The classic consumer-group coordinator: a deterministic state machine, no I/O.
//!
//! # Design
//!
//! Kafka's classic rebalance protocol makes requests wait for each other: a JoinGroup is
//! answered only when every member has rejoined (or the rebalance timeout removed the
//! stragglers), a follower's SyncGroup only when the leader's assignment arrived. The
//! [`Coordinator`] therefore never blocks and never reads a clock; every call takes `now_ms`
//! and returns either an immediate response or a [`Ticket`] ([`Outcome::Pending`]). Answers
//! to tickets appear later, as `(Ticket, Reply)` pairs, from any event that completes them
//! (another member's join, the leader's sync, a leave, or [`Coordinator::tick`] when a
//! deadline passes). The owning shard drives it:
//!
//! 1. decode a request, call the matching method, send an immediate response or park a
//!    oneshot sender under the ticket;
//! 2. after *every* call, drain [`Coordinator::take_completions`] and send each reply to its
//!    parked sender (a sender whose client went away is simply dropped), and drain
//!    [`Coordinator::take_records`] into the group log partition;
//! 3. keep one timer armed at [`Coordinator::next_deadline`] and call
//!    [`Coordinator::tick`] when it fires.
//!
//! Because nothing here does I/O, every scenario (three members join, one dies, a static
//! member restarts…) is a plain unit test with a hand-moved clock.
//!
//! # Persistence
//!
//! State changes that must survive a restart (committed offsets, a completed generation with
//! its members and assignments, deleted groups) are emitted as [`GroupRecord`]s, encoded as
//! Kafka's `__consumer_offsets` keys and values ([`group_log`]). The lead appends them to the
//! group log partition on the owning shard; at start the partition is read back and fed to
//! [`Coordinator::load`]. For OffsetCommit the response should be sent only once the
//! records of that call are durable (the coordinator applies the commit in memory at once).
//!
//! # Placement
//!
//! A group lives in partition [`group_partition`] of the group log, computed exactly as
//! Kafka does (Java `String.hashCode`, `Utils.abs`, modulo the partition count), so a group
//! maps to the same partition on ringmq as on Kafka.
//!
//! Not implemented: KIP-848 (the "consumer" protocol, ConsumerGroupHeartbeat), transactional
//! offset commits, offset retention/expiry.

mod admin;
pub mod call;
mod coordinator;
mod group;
pub mod group_log;
mod offsets;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod wire_tests;

pub use coordinator::Coordinator;
pub use group::GroupState;
pub use group_log::{
    replay, GroupMetadataValue, GroupRecord, MemberMetadataValue, OffsetCommitValue, RecordError,
};

use crate::protocol::join_group::JoinGroupResponse;
use crate::protocol::sync_group::SyncGroupResponse;

/// Identifies a request that waits for other members (JoinGroup or SyncGroup).
/// Unique for the life of one [`Coordinator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// What a call that may wait returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R> {
    /// Answer now.
    Respond(R),
    /// Answer later: a `(ticket, reply)` pair will come out of
    /// [`Coordinator::take_completions`] or [`Coordinator::tick`].
    Pending(Ticket),
}

/// The delayed answer to a [`Ticket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
}

/// Who sent a JoinGroup (shown by DescribeGroups, stored in the group record).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    pub client_id: String,
    /// As Kafka shows it: "/" followed by the peer address.
    pub client_host: String,
}

/// Broker settings of the coordinator, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`. Kafka's default is unbounded; ringmq bounds every collection.
    pub max_size: usize,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members (each new member extends it, up to the rebalance timeout).
    pub initial_rebalance_delay_ms: i32,
    /// `offset.metadata.max.bytes`: longer commit metadata is refused with
    /// OFFSET_METADATA_TOO_LARGE.
    pub offset_metadata_max_bytes: usize,
    /// Mixed into generated member ids so that ids differ across restarts (the caller passes
    /// something random or time based; tests pass a constant).
    pub member_id_seed: u64,
    /// `offsets.retention.minutes` in ms: the committed offsets of a group that has been
    /// Empty this long (counted from the later of becoming empty and the commit) expire.
    pub offsets_retention_ms: i64,
    /// Most groups one coordinator (shard) keeps; a new group past it is refused with
    /// COORDINATOR_NOT_AVAILABLE.
    pub max_groups: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: 1_000,
            initial_rebalance_delay_ms: 3_000,
            offset_metadata_max_bytes: 4_096,
            member_id_seed: 0,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            max_groups: 10_000,
        }
    }
}

/// Longest group id accepted (Kafka's topic-name limit; the group log stores it).
pub const GROUP_ID_BYTES_MAX: usize = 249;
/// Most protocol metadata one member may send in a JoinGroup (all protocols together); the
/// coordinator keeps a copy per member.
pub const MEMBER_METADATA_BYTES_MAX: usize = 1 << 20;
/// Largest assignment the leader may give one member in a SyncGroup.
pub const ASSIGNMENT_BYTES_MAX: usize = 1 << 20;

/// Whether `group_id` may be stored: 1 to [`GROUP_ID_BYTES_MAX`] bytes, no control characters.
pub fn valid_group_id(group_id: &str) -> bool {
    (1..=GROUP_ID_BYTES_MAX).contains(&group_id.len()) && !group_id.chars().any(char::is_control)
}

/// Kafka's default `offsets.topic.num.partitions`.
pub const DEFAULT_GROUP_PARTITIONS: i32 = 50;
/// Name of the group log's partitions on disk (Kafka's internal topic name).
pub const GROUP_LOG_TOPIC: &str = "__consumer_offsets";
/// Partitions of the group log (Kafka's `offsets.topic.num.partitions` default).
pub const GROUP_LOG_PARTITIONS: i32 = DEFAULT_GROUP_PARTITIONS;

/// Partition of the group log that owns `group_id`: `Utils.abs(groupId.hashCode) %
/// partitions`, with Java's `String.hashCode` over UTF-16 code units, as Kafka computes it.
/// `partitions` must be positive; 0 or less answers 0.
pub fn group_partition(group_id: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    let hash = java_string_hash(group_id);
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_bounded() {
        assert!(valid_group_id("g"));
        assert!(valid_group_id("my app:consumers/1"));
        assert!(valid_group_id(&"g".repeat(GROUP_ID_BYTES_MAX)));
        assert!(!valid_group_id(""));
        assert!(!valid_group_id(&"g".repeat(GROUP_ID_BYTES_MAX + 1)));
        assert!(!valid_group_id("a\nb"));
    }

    #[test]
    fn the_group_log_is_an_internal_topic() {
        assert!(crate::model::is_internal_topic(GROUP_LOG_TOPIC));
    }

    #[test]
    fn java_hash_matches_known_values() {
        // Values from java.lang.String#hashCode.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("abc"), 96_354);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // Overflows: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Non-BMP characters hash as two UTF-16 surrogates: "😀" = D83D DE00.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn group_partition_is_kafkas() {
        assert_eq!(group_partition("abc", 50), 96_354 % 50);
        assert_eq!(group_partition("polygenelubricants", 50), 0);
        // A negative hash takes its absolute value: "console-consumer-1".
        let h = java_string_hash("console-consumer-1");
        assert_eq!(group_partition("console-consumer-1", 50), h.abs() % 50);
        for id in ["a", "payments", "consumer-group-ÿ", "日本"] {
            let p = group_partition(id, DEFAULT_GROUP_PARTITIONS);
            assert!((0..50).contains(&p), "{id} -> {p}");
        }
        assert_eq!(group_partition("x", 0), 0);
    }
}
