//! ListOffsets (key 2), versions 1–7, flexible from 6 (Kafka 4.1 schema).
//!
//! A partition asks for the offset at a timestamp, or at one of the special timestamps
//! ([`LATEST_TIMESTAMP`], [`EARLIEST_TIMESTAMP`], [`MAX_TIMESTAMP`] from v7). v0 (a list of old
//! style offsets) is not served; v8+ (tiered storage, timeout) neither.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 2, versions 1..=7, flexible 6,
    ListOffsetsRequest, ListOffsetsResponse,
    oracle ListOffsetsRequest, ListOffsetsResponse from 1);

/// Special request timestamp: the log end offset (next offset to be written).
pub const LATEST_TIMESTAMP: i64 = -1;
/// Special request timestamp: the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// Special request timestamp (v7+): the offset of the record with the largest timestamp.
pub const MAX_TIMESTAMP: i64 = -3;

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListOffsetsRequest {
        /// −1 for consumers.
        pub replica_id: i32 [0..],
        /// 0 = read_uncommitted, 1 = read_committed.
        pub isolation_level: i8 [2..],
        pub topics: Vec<ListOffsetsTopic> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListOffsetsTopic {
        pub name: String [0..],
        pub partitions: Vec<ListOffsetsPartition> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ListOffsetsPartition {
        pub partition_index: i32 [0..],
        /// −1 when absent.
        pub current_leader_epoch: i32 [4.., default -1],
        pub timestamp: i64 [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListOffsetsResponse {
        pub throttle_time_ms: i32 [2..],
        pub topics: Vec<ListOffsetsTopicResponse> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListOffsetsTopicResponse {
        pub name: String [0..],
        pub partitions: Vec<ListOffsetsPartitionResponse> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ListOffsetsPartitionResponse {
        pub partition_index: i32 [0..],
        pub error_code: i16 [0..],
        /// −1 when not found.
        pub timestamp: i64 [0.., default -1],
        /// −1 when not found.
        pub offset: i64 [0.., default -1],
        /// −1 when unknown.
        pub leader_epoch: i32 [4.., default -1],
    }
}
