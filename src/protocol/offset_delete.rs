//! OffsetDelete (key 47), version 0, not flexible (Kafka 4.1 schema).
//!
//! Removes committed offsets of a group (KIP-496). The coordinator refuses partitions the
//! group is still consuming (GROUP_SUBSCRIBED_TO_TOPIC) and answers per partition.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of OffsetDelete.
pub const API_KEY: i16 = 47;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 0;
/// First flexible (KIP-482) version: none (the schema says "none"; i16::MAX never matches).
pub const FLEXIBLE_FROM: i16 = i16::MAX;

const FLEX: bool = false;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    pub topics: Vec<OffsetDeleteTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

impl OffsetDeleteRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let group_id = r.string(FLEX, "group_id")?;
        let topics = r.array(FLEX, 6, "topics", |r| {
            let name = r.string(FLEX, "name")?;
            let partition_indexes = r.array(FLEX, 4, "partitions", |r| r.i32("partition_index"))?;
            Ok(OffsetDeleteTopic {
                name,
                partition_indexes,
            })
        })?;
        Ok(OffsetDeleteRequest { group_id, topics })
    }

    pub fn encode(&self, w: &mut Writer, _version: i16) {
        w.string(&self.group_id, FLEX);
        w.array(&self.topics, FLEX, |w, t| {
            w.string(&t.name, FLEX);
            w.array(&t.partition_indexes, FLEX, |w, p| w.i32(*p));
        });
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteResponse {
    /// Group-level error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP …).
    pub error_code: i16,
    pub throttle_time_ms: i32,
    pub topics: Vec<OffsetDeleteTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetDeletePartitionResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetDeletePartitionResponse {
    pub partition_index: i32,
    pub error_code: i16,
}

impl OffsetDeleteResponse {
    pub fn encode(&self, w: &mut Writer, _version: i16) {
        w.i16(self.error_code);
        w.i32(self.throttle_time_ms);
        w.array(&self.topics, FLEX, |w, t| {
            w.string(&t.name, FLEX);
            w.array(&t.partitions, FLEX, |w, p| {
                w.i32(p.partition_index);
                w.i16(p.error_code);
            });
        });
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let error_code = r.i16("error_code")?;
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let topics = r.array(FLEX, 6, "topics", |r| {
            let name = r.string(FLEX, "name")?;
            let partitions = r.array(FLEX, 6, "partitions", |r| {
                let partition_index = r.i32("partition_index")?;
                let error_code = r.i16("error_code")?;
                Ok(OffsetDeletePartitionResponse {
                    partition_index,
                    error_code,
                })
            })?;
            Ok(OffsetDeleteTopicResponse { name, partitions })
        })?;
        Ok(OffsetDeleteResponse {
            error_code,
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

    fn sample_request() -> OffsetDeleteRequest {
        OffsetDeleteRequest {
            group_id: "payments".into(),
            topics: vec![OffsetDeleteTopic {
                name: "orders".into(),
                partition_indexes: vec![0, 3],
            }],
        }
    }

    fn sample_response() -> OffsetDeleteResponse {
        OffsetDeleteResponse {
            error_code: 0,
            throttle_time_ms: 0,
            topics: vec![OffsetDeleteTopicResponse {
                name: "orders".into(),
                partitions: vec![OffsetDeletePartitionResponse {
                    partition_index: 3,
                    error_code: 86,
                }],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let (got, b) = round_trip(
            &sample_request(),
            0,
            OffsetDeleteRequest::encode,
            OffsetDeleteRequest::decode,
        );
        assert_eq!(got, sample_request());
        truncations_fail(&b, 0, OffsetDeleteRequest::decode);
        oracle_agrees::<kp::OffsetDeleteRequest>(&b, 0);
        let (got, b) = round_trip(
            &sample_response(),
            0,
            OffsetDeleteResponse::encode,
            OffsetDeleteResponse::decode,
        );
        assert_eq!(got, sample_response());
        truncations_fail(&b, 0, OffsetDeleteResponse::decode);
        oracle_agrees::<kp::OffsetDeleteResponse>(&b, 0);
        assert!(OffsetDeleteRequest::decode(&mut Reader::new(b), 1).is_err());
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = vec![
            encode(&sample_request(), 0, OffsetDeleteRequest::encode),
            encode(&sample_response(), 0, OffsetDeleteResponse::encode),
        ];
        random_bytes_never_panic(&seeds, 0..=0, OffsetDeleteRequest::decode, 3000);
        random_bytes_never_panic(&seeds, 0..=0, OffsetDeleteResponse::decode, 3000);
    }
}
