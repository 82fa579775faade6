//! OffsetFetch (key 9), versions 1–9, flexible from 6 (Kafka 4.1 schema).
//!
//! A consumer reads its group's committed positions. v1–7 ask for one group (top-level
//! `group_id`/`topics`); v8+ (KIP-709) batch `groups`. Both shapes live in one struct each;
//! [`OffsetFetchRequest::groups`] and [`OffsetFetchResponse::for_groups`] hide the
//! difference from the handler. A null topic list means "every partition the group has".
//! Version notes: top-level `error_code` v2–7, `committed_leader_epoch` v5+, `require_stable`
//! v7+, `member_id`/`member_epoch` v9+. v0 was removed in Kafka 4.0; v10 is not served.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of OffsetFetch.
pub const API_KEY: i16 = 9;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 1;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 9;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 6;
/// First version with batched groups.
pub const BATCHED_FROM: i16 = 8;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    /// v1–7.
    pub group_id: String,
    /// v1–7; `None` = all committed partitions (v2+).
    pub topics: Option<Vec<OffsetFetchTopic>>,
    /// v8+.
    pub groups: Vec<OffsetFetchGroup>,
    /// v7+.
    pub require_stable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    pub group_id: String,
    /// v9+.
    pub member_id: Option<String>,
    /// v9+; −1 for the classic protocol.
    pub member_epoch: i32,
    /// `None` = all committed partitions.
    pub topics: Option<Vec<OffsetFetchTopic>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

fn decode_topics(r: &mut Reader, flex: bool) -> DecodeResult<Option<Vec<OffsetFetchTopic>>> {
    r.nullable_array(flex, 2, "topics", |r| {
        let name = r.string(flex, "name")?;
        let partition_indexes =
            r.array(flex, 4, "partition_indexes", |r| r.i32("partition_index"))?;
        r.tags_if(flex)?;
        Ok(OffsetFetchTopic {
            name,
            partition_indexes,
        })
    })
}

fn encode_topics(w: &mut Writer, topics: Option<&[OffsetFetchTopic]>, flex: bool) {
    w.nullable_array(topics, flex, |w, t| {
        w.string(&t.name, flex);
        w.array(&t.partition_indexes, flex, |w, p| w.i32(*p));
        w.tags_if(flex);
    });
}

impl OffsetFetchRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let mut req = OffsetFetchRequest {
            group_id: String::new(),
            topics: None,
            groups: Vec::new(),
            require_stable: false,
        };
        if version < BATCHED_FROM {
            req.group_id = r.string(flex, "group_id")?;
            req.topics = decode_topics(r, flex)?;
        } else {
            req.groups = r.array(flex, 3, "groups", |r| {
                let group_id = r.string(flex, "group_id")?;
                let member_id = if version >= 9 {
                    r.nullable_string(flex, "member_id")?
                } else {
                    None
                };
                let member_epoch = if version >= 9 {
                    r.i32("member_epoch")?
                } else {
                    -1
                };
                let topics = decode_topics(r, flex)?;
                r.tags_if(flex)?;
                Ok(OffsetFetchGroup {
                    group_id,
                    member_id,
                    member_epoch,
                    topics,
                })
            })?;
        }
        if version >= 7 {
            req.require_stable = r.bool("require_stable")?;
        }
        r.tags_if(flex)?;
        Ok(req)
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version < BATCHED_FROM {
            w.string(&self.group_id, flex);
            encode_topics(w, self.topics.as_deref(), flex);
        } else {
            w.array(&self.groups, flex, |w, g| {
                w.string(&g.group_id, flex);
                if version >= 9 {
                    w.nullable_string(g.member_id.as_deref(), flex);
                    w.i32(g.member_epoch);
                }
                encode_topics(w, g.topics.as_deref(), flex);
                w.tags_if(flex);
            });
        }
        if version >= 7 {
            w.bool(self.require_stable);
        }
        w.tags_if(flex);
    }

    /// The groups asked for, whatever the version: one group before v8.
    pub fn groups(&self, version: i16) -> Vec<OffsetFetchGroup> {
        if version >= BATCHED_FROM {
            return self.groups.clone();
        }
        vec![OffsetFetchGroup {
            group_id: self.group_id.clone(),
            member_id: None,
            member_epoch: -1,
            topics: self.topics.clone(),
        }]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    /// v3+.
    pub throttle_time_ms: i32,
    /// v1–7.
    pub topics: Vec<OffsetFetchTopicResponse>,
    /// v2–7.
    pub error_code: i16,
    /// v8+.
    pub groups: Vec<OffsetFetchGroupResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroupResponse {
    pub group_id: String,
    pub topics: Vec<OffsetFetchTopicResponse>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetFetchPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchPartitionResponse {
    pub partition_index: i32,
    /// −1 when nothing is committed.
    pub committed_offset: i64,
    /// v5+; −1 when unknown.
    pub committed_leader_epoch: i32,
    pub metadata: Option<String>,
    pub error_code: i16,
}

fn encode_topic_responses(w: &mut Writer, topics: &[OffsetFetchTopicResponse], version: i16) {
    let flex = flexible(version);
    w.array(topics, flex, |w, t| {
        w.string(&t.name, flex);
        w.array(&t.partitions, flex, |w, p| {
            w.i32(p.partition_index);
            w.i64(p.committed_offset);
            if version >= 5 {
                w.i32(p.committed_leader_epoch);
            }
            w.nullable_string(p.metadata.as_deref(), flex);
            w.i16(p.error_code);
            w.tags_if(flex);
        });
        w.tags_if(flex);
    });
}

fn decode_topic_responses(
    r: &mut Reader,
    version: i16,
) -> DecodeResult<Vec<OffsetFetchTopicResponse>> {
    let flex = flexible(version);
    r.array(flex, 2, "topics", |r| {
        let name = r.string(flex, "name")?;
        let partitions = r.array(flex, 15, "partitions", |r| {
            let partition_index = r.i32("partition_index")?;
            let committed_offset = r.i64("committed_offset")?;
            let committed_leader_epoch = if version >= 5 {
                r.i32("committed_leader_epoch")?
            } else {
                -1
            };
            let metadata = r.nullable_string(flex, "metadata")?;
            let error_code = r.i16("error_code")?;
            r.tags_if(flex)?;
            Ok(OffsetFetchPartitionResponse {
                partition_index,
                committed_offset,
                committed_leader_epoch,
                metadata,
                error_code,
            })
        })?;
        r.tags_if(flex)?;
        Ok(OffsetFetchTopicResponse { name, partitions })
    })
}

impl OffsetFetchResponse {
    /// The response for per-group answers at `version`: before v8 the first group's topics
    /// and error go to the top-level fields.
    pub fn for_groups(version: i16, mut groups: Vec<OffsetFetchGroupResponse>) -> Self {
        if version >= BATCHED_FROM || groups.is_empty() {
            return OffsetFetchResponse {
                throttle_time_ms: 0,
                topics: Vec::new(),
                error_code: 0,
                groups,
            };
        }
        let first = groups.swap_remove(0);
        OffsetFetchResponse {
            throttle_time_ms: 0,
            topics: first.topics,
            error_code: first.error_code,
            groups: Vec::new(),
        }
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 3 {
            w.i32(self.throttle_time_ms);
        }
        if version < BATCHED_FROM {
            encode_topic_responses(w, &self.topics, version);
            if version >= 2 {
                w.i16(self.error_code);
            }
        } else {
            w.array(&self.groups, flex, |w, g| {
                w.string(&g.group_id, flex);
                encode_topic_responses(w, &g.topics, version);
                w.i16(g.error_code);
                w.tags_if(flex);
            });
        }
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let mut resp = OffsetFetchResponse {
            throttle_time_ms: 0,
            topics: Vec::new(),
            error_code: 0,
            groups: Vec::new(),
        };
        if version >= 3 {
            resp.throttle_time_ms = r.i32("throttle_time_ms")?;
        }
        if version < BATCHED_FROM {
            resp.topics = decode_topic_responses(r, version)?;
            if version >= 2 {
                resp.error_code = r.i16("error_code")?;
            }
        } else {
            resp.groups = r.array(flex, 4, "groups", |r| {
                let group_id = r.string(flex, "group_id")?;
                let topics = decode_topic_responses(r, version)?;
                let error_code = r.i16("error_code")?;
                r.tags_if(flex)?;
                Ok(OffsetFetchGroupResponse {
                    group_id,
                    topics,
                    error_code,
                })
            })?;
        }
        r.tags_if(flex)?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn topics() -> Vec<OffsetFetchTopic> {
        vec![OffsetFetchTopic {
            name: "orders".into(),
            partition_indexes: vec![0, 1, 2],
        }]
    }

    fn sample_request() -> OffsetFetchRequest {
        OffsetFetchRequest {
            group_id: "payments".into(),
            topics: Some(topics()),
            groups: vec![
                OffsetFetchGroup {
                    group_id: "payments".into(),
                    member_id: Some("m-1".into()),
                    member_epoch: 3,
                    topics: Some(topics()),
                },
                OffsetFetchGroup {
                    group_id: "audit".into(),
                    member_id: None,
                    member_epoch: -1,
                    topics: None,
                },
            ],
            require_stable: true,
        }
    }

    fn partitions() -> Vec<OffsetFetchTopicResponse> {
        vec![OffsetFetchTopicResponse {
            name: "orders".into(),
            partitions: vec![
                OffsetFetchPartitionResponse {
                    partition_index: 0,
                    committed_offset: 42,
                    committed_leader_epoch: 1,
                    metadata: Some("meta".into()),
                    error_code: 0,
                },
                OffsetFetchPartitionResponse {
                    partition_index: 1,
                    committed_offset: -1,
                    committed_leader_epoch: 1,
                    metadata: None,
                    error_code: 0,
                },
            ],
        }]
    }

    fn sample_response() -> OffsetFetchResponse {
        OffsetFetchResponse {
            throttle_time_ms: 2,
            topics: partitions(),
            error_code: 14,
            groups: vec![
                OffsetFetchGroupResponse {
                    group_id: "payments".into(),
                    topics: partitions(),
                    error_code: 0,
                },
                OffsetFetchGroupResponse {
                    group_id: "audit".into(),
                    topics: Vec::new(),
                    error_code: 69,
                },
            ],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                OffsetFetchRequest::encode,
                OffsetFetchRequest::decode,
            );
            let groups = got.groups(v);
            assert_eq!(groups.len(), if v >= 8 { 2 } else { 1 });
            assert_eq!(groups[0].group_id, "payments");
            assert_eq!(groups[0].topics, Some(topics()));
            assert_eq!(got.require_stable, v >= 7);
            assert_eq!(groups[0].member_epoch, if v >= 9 { 3 } else { -1 });
            truncations_fail(&b, v, OffsetFetchRequest::decode);
            oracle_agrees::<kp::OffsetFetchRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                OffsetFetchResponse::encode,
                OffsetFetchResponse::decode,
            );
            if v >= 8 {
                assert_eq!(got.groups[1].error_code, 69);
                assert_eq!(got.groups[0].topics[0].partitions[0].committed_offset, 42);
            } else {
                assert_eq!(
                    got.topics[0].partitions[0].metadata.as_deref(),
                    Some("meta")
                );
                assert_eq!(got.error_code, if v >= 2 { 14 } else { 0 });
            }
            truncations_fail(&b, v, OffsetFetchResponse::decode);
            oracle_agrees::<kp::OffsetFetchResponse>(&b, v);
        }
    }

    #[test]
    fn null_topics_mean_all_partitions() {
        let req = OffsetFetchRequest {
            topics: None,
            ..sample_request()
        };
        for v in 2..=7 {
            let (got, b) = round_trip(
                &req,
                v,
                OffsetFetchRequest::encode,
                OffsetFetchRequest::decode,
            );
            assert_eq!(got.groups(v)[0].topics, None);
            oracle_agrees::<kp::OffsetFetchRequest>(&b, v);
        }
    }

    #[test]
    fn for_groups_fills_the_right_shape() {
        let groups = sample_response().groups;
        let old = OffsetFetchResponse::for_groups(7, groups.clone());
        assert_eq!(old.topics, partitions());
        assert!(old.groups.is_empty());
        let new = OffsetFetchResponse::for_groups(8, groups.clone());
        assert_eq!(new.groups, groups);
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [1, 5, 6, 8, 9]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, OffsetFetchRequest::encode),
                    encode(&sample_response(), v, OffsetFetchResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            OffsetFetchRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            OffsetFetchResponse::decode,
            2000,
        );
    }
}
