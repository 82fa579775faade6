//! ListOffsets (key 2), versions 1–7, flexible from 6 (Kafka 4.1 schema).
//!
//! A partition asks for the offset at a timestamp, or at one of the special timestamps
//! ([`LATEST_TIMESTAMP`], [`EARLIEST_TIMESTAMP`], [`MAX_TIMESTAMP`] from v7). v0 (a list of old
//! style offsets) is not served; v8+ (tiered storage, timeout) neither.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of ListOffsets.
pub const API_KEY: i16 = 2;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 1;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 7;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 6;

/// Special request timestamp: the log end offset (next offset to be written).
pub const LATEST_TIMESTAMP: i64 = -1;
/// Special request timestamp: the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// Special request timestamp (v7+): the offset of the record with the largest timestamp.
pub const MAX_TIMESTAMP: i64 = -3;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    /// −1 for consumers.
    pub replica_id: i32,
    /// v2+; 0 = read_uncommitted, 1 = read_committed.
    pub isolation_level: i8,
    pub topics: Vec<ListOffsetsTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOffsetsPartition {
    pub partition_index: i32,
    /// v4+; −1 when absent.
    pub current_leader_epoch: i32,
    pub timestamp: i64,
}

impl ListOffsetsRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let replica_id = r.i32("replica_id")?;
        let isolation_level = if version >= 2 {
            r.i8("isolation_level")?
        } else {
            0
        };
        let topics = r.array(flex, 3, "topics", |r| {
            let name = r.string(flex, "name")?;
            let partitions = r.array(flex, 12, "partitions", |r| {
                let partition_index = r.i32("partition_index")?;
                let current_leader_epoch = if version >= 4 {
                    r.i32("current_leader_epoch")?
                } else {
                    -1
                };
                let timestamp = r.i64("timestamp")?;
                r.tags_if(flex)?;
                Ok(ListOffsetsPartition {
                    partition_index,
                    current_leader_epoch,
                    timestamp,
                })
            })?;
            r.tags_if(flex)?;
            Ok(ListOffsetsTopic { name, partitions })
        })?;
        r.tags_if(flex)?;
        Ok(ListOffsetsRequest {
            replica_id,
            isolation_level,
            topics,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i32(self.replica_id);
        if version >= 2 {
            w.i8(self.isolation_level);
        }
        w.array(&self.topics, flex, |w, t| {
            w.string(&t.name, flex);
            w.array(&t.partitions, flex, |w, p| {
                w.i32(p.partition_index);
                if version >= 4 {
                    w.i32(p.current_leader_epoch);
                }
                w.i64(p.timestamp);
                w.tags_if(flex);
            });
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    /// v2+.
    pub throttle_time_ms: i32,
    pub topics: Vec<ListOffsetsTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsTopicResponse {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOffsetsPartitionResponse {
    pub partition_index: i32,
    pub error_code: i16,
    /// −1 when not found.
    pub timestamp: i64,
    /// −1 when not found.
    pub offset: i64,
    /// v4+; −1 when unknown.
    pub leader_epoch: i32,
}

impl ListOffsetsResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 2 {
            w.i32(self.throttle_time_ms);
        }
        w.array(&self.topics, flex, |w, t| {
            w.string(&t.name, flex);
            w.array(&t.partitions, flex, |w, p| {
                w.i32(p.partition_index);
                w.i16(p.error_code);
                w.i64(p.timestamp);
                w.i64(p.offset);
                if version >= 4 {
                    w.i32(p.leader_epoch);
                }
                w.tags_if(flex);
            });
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let throttle_time_ms = if version >= 2 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let topics = r.array(flex, 3, "topics", |r| {
            let name = r.string(flex, "name")?;
            let partitions = r.array(flex, 22, "partitions", |r| {
                let partition_index = r.i32("partition_index")?;
                let error_code = r.i16("error_code")?;
                let timestamp = r.i64("timestamp")?;
                let offset = r.i64("offset")?;
                let leader_epoch = if version >= 4 {
                    r.i32("leader_epoch")?
                } else {
                    -1
                };
                r.tags_if(flex)?;
                Ok(ListOffsetsPartitionResponse {
                    partition_index,
                    error_code,
                    timestamp,
                    offset,
                    leader_epoch,
                })
            })?;
            r.tags_if(flex)?;
            Ok(ListOffsetsTopicResponse { name, partitions })
        })?;
        r.tags_if(flex)?;
        Ok(ListOffsetsResponse {
            throttle_time_ms,
            topics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> ListOffsetsRequest {
        ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 1,
            topics: vec![ListOffsetsTopic {
                name: "orders".into(),
                partitions: vec![
                    ListOffsetsPartition {
                        partition_index: 0,
                        current_leader_epoch: 2,
                        timestamp: LATEST_TIMESTAMP,
                    },
                    ListOffsetsPartition {
                        partition_index: 1,
                        current_leader_epoch: 2,
                        timestamp: 1_700_000_000_000,
                    },
                ],
            }],
        }
    }

    fn sample_response() -> ListOffsetsResponse {
        ListOffsetsResponse {
            throttle_time_ms: 1,
            topics: vec![ListOffsetsTopicResponse {
                name: "orders".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition_index: 0,
                    error_code: 0,
                    timestamp: -1,
                    offset: 4242,
                    leader_epoch: 2,
                }],
            }],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                ListOffsetsRequest::encode,
                ListOffsetsRequest::decode,
            );
            assert_eq!(got.isolation_level, if v >= 2 { 1 } else { 0 });
            assert_eq!(got.topics[0].partitions[1].timestamp, 1_700_000_000_000);
            if v >= 4 {
                assert_eq!(got, sample_request());
            }
            truncations_fail(&b, v, ListOffsetsRequest::decode);
            oracle_agrees::<kp::ListOffsetsRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                ListOffsetsResponse::encode,
                ListOffsetsResponse::decode,
            );
            assert_eq!(got.topics[0].partitions[0].offset, 4242);
            if v >= 4 {
                assert_eq!(got, sample_response());
            }
            truncations_fail(&b, v, ListOffsetsResponse::decode);
            oracle_agrees::<kp::ListOffsetsResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [1, 4, 7]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, ListOffsetsRequest::encode),
                    encode(&sample_response(), v, ListOffsetsResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(&seeds, 1..=7, ListOffsetsRequest::decode, 2000);
        random_bytes_never_panic(&seeds, 1..=7, ListOffsetsResponse::decode, 2000);
    }
}
