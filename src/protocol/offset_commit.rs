//! OffsetCommit (key 8), versions 2–9, flexible from 8 (Kafka 4.1 schema).
//!
//! A consumer stores its position per partition, with an optional metadata string. The
//! generation id and member id let the coordinator refuse commits from members that lost
//! their assignment. Version notes: `retention_time_ms` v2–4 only (ignored by Kafka since
//! 2.1, kept for the wire), `committed_leader_epoch` v6+, `group_instance_id` v7+. v0–1 were
//! removed in Kafka 4.0; v10 (topic ids) is not served.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of OffsetCommit.
pub const API_KEY: i16 = 8;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 2;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 9;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 8;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// −1 for a commit outside any generation (simple consumers, admin tools).
    pub generation_id: i32,
    pub member_id: String,
    /// v7+.
    pub group_instance_id: Option<String>,
    /// v2–4; −1 = broker default.
    pub retention_time_ms: i64,
    pub topics: Vec<OffsetCommitTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v6+; −1 when unknown.
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

impl OffsetCommitRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let group_id = r.string(flex, "group_id")?;
        let generation_id = r.i32("generation_id")?;
        let member_id = r.string(flex, "member_id")?;
        let group_instance_id = if version >= 7 {
            r.nullable_string(flex, "group_instance_id")?
        } else {
            None
        };
        let retention_time_ms = if version <= 4 {
            r.i64("retention_time_ms")?
        } else {
            -1
        };
        let topics = r.array(flex, 2, "topics", |r| {
            let name = r.string(flex, "name")?;
            let partitions = r.array(flex, 13, "partitions", |r| {
                let partition_index = r.i32("partition_index")?;
                let committed_offset = r.i64("committed_offset")?;
                let committed_leader_epoch = if version >= 6 {
                    r.i32("committed_leader_epoch")?
                } else {
                    -1
                };
                let committed_metadata = r.nullable_string(flex, "committed_metadata")?;
                r.tags_if(flex)?;
                Ok(OffsetCommitPartition {
                    partition_index,
                    committed_offset,
                    committed_leader_epoch,
                    committed_metadata,
                })
            })?;
            r.tags_if(flex)?;
            Ok(OffsetCommitTopic { name, partitions })
        })?;
        r.tags_if(flex)?;
        Ok(OffsetCommitRequest {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
            retention_time_ms,
            topics,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.string(&self.group_id, flex);
        w.i32(self.generation_id);
        w.string(&self.member_id, flex);
        if version >= 7 {
            w.nullable_string(self.group_instance_id.as_deref(), flex);
        }
        if version <= 4 {
            w.i64(self.retention_time_ms);
        }
        w.array(&self.topics, flex, |w, t| {
            w.string(&t.name, flex);
            w.array(&t.partitions, flex, |w, p| {
                w.i32(p.partition_index);
                w.i64(p.committed_offset);
                if version >= 6 {
                    w.i32(p.committed_leader_epoch);
                }
                w.nullable_string(p.committed_metadata.as_deref(), flex);
                w.tags_if(flex);
            });
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    /// v3+.
    pub throttle_time_ms: i32,
    pub topics: Vec<OffsetCommitTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartitionResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetCommitPartitionResponse {
    pub partition_index: i32,
    pub error_code: i16,
}

impl OffsetCommitResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 3 {
            w.i32(self.throttle_time_ms);
        }
        w.array(&self.topics, flex, |w, t| {
            w.string(&t.name, flex);
            w.array(&t.partitions, flex, |w, p| {
                w.i32(p.partition_index);
                w.i16(p.error_code);
                w.tags_if(flex);
            });
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let throttle_time_ms = if version >= 3 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let topics = r.array(flex, 2, "topics", |r| {
            let name = r.string(flex, "name")?;
            let partitions = r.array(flex, 6, "partitions", |r| {
                let partition_index = r.i32("partition_index")?;
                let error_code = r.i16("error_code")?;
                r.tags_if(flex)?;
                Ok(OffsetCommitPartitionResponse {
                    partition_index,
                    error_code,
                })
            })?;
            r.tags_if(flex)?;
            Ok(OffsetCommitTopicResponse { name, partitions })
        })?;
        r.tags_if(flex)?;
        Ok(OffsetCommitResponse {
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

    fn sample_request() -> OffsetCommitRequest {
        OffsetCommitRequest {
            group_id: "payments".into(),
            generation_id: 4,
            member_id: "m-1".into(),
            group_instance_id: Some("host-a".into()),
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: "orders".into(),
                partitions: vec![
                    OffsetCommitPartition {
                        partition_index: 0,
                        committed_offset: 100,
                        committed_leader_epoch: 2,
                        committed_metadata: Some("m".into()),
                    },
                    OffsetCommitPartition {
                        partition_index: 1,
                        committed_offset: 7,
                        committed_leader_epoch: 2,
                        committed_metadata: None,
                    },
                ],
            }],
        }
    }

    fn sample_response() -> OffsetCommitResponse {
        OffsetCommitResponse {
            throttle_time_ms: 1,
            topics: vec![OffsetCommitTopicResponse {
                name: "orders".into(),
                partitions: vec![
                    OffsetCommitPartitionResponse {
                        partition_index: 0,
                        error_code: 0,
                    },
                    OffsetCommitPartitionResponse {
                        partition_index: 1,
                        error_code: 22,
                    },
                ],
            }],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                OffsetCommitRequest::encode,
                OffsetCommitRequest::decode,
            );
            assert_eq!(got.topics[0].partitions[0].committed_offset, 100);
            assert_eq!(got.topics[0].partitions[1].committed_metadata, None);
            assert_eq!(
                got.topics[0].partitions[0].committed_leader_epoch,
                if v >= 6 { 2 } else { -1 }
            );
            if v >= 7 {
                assert_eq!(got, sample_request());
            }
            truncations_fail(&b, v, OffsetCommitRequest::decode);
            oracle_agrees::<kp::OffsetCommitRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                OffsetCommitResponse::encode,
                OffsetCommitResponse::decode,
            );
            assert_eq!(got.topics[0].partitions[1].error_code, 22);
            truncations_fail(&b, v, OffsetCommitResponse::decode);
            oracle_agrees::<kp::OffsetCommitResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [2, 5, 7, 8, 9]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, OffsetCommitRequest::encode),
                    encode(&sample_response(), v, OffsetCommitResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            OffsetCommitRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            OffsetCommitResponse::decode,
            2000,
        );
    }
}
