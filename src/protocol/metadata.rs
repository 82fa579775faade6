//! Metadata (key 3), versions 0–12, flexible from 9 (Kafka 4.1 schema).
//!
//! v1+ distinguishes a null topic list ("all topics") from an empty one ("no topics"); in v0
//! (still sent by Sarama's admin) an empty list means all topics and decodes as `None`, and
//! the response lacks the rack, controller id and is_internal. Topic ids (v10+) are carried as raw 16-byte UUIDs,
//! all zero when unknown. v13 (top-level error code) is not served.
//!
//! Fields a version lacks decode to the schema default (leader_epoch −1, controller_id −1,
//! authorized operations i32::MIN, …), so a decoded value always re-encodes to the same bytes.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of Metadata.
pub const API_KEY: i16 = 3;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 12;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 9;

/// Default of the `*_authorized_operations` bit fields: "not requested".
pub const AUTHORIZED_OPERATIONS_UNKNOWN: i32 = i32::MIN;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// `None` = all topics.
    pub topics: Option<Vec<MetadataRequestTopic>>,
    /// v4+; true before.
    pub allow_auto_topic_creation: bool,
    /// v8–10.
    pub include_cluster_authorized_operations: bool,
    /// v8+.
    pub include_topic_authorized_operations: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequestTopic {
    /// v10+; zero = not given.
    pub topic_id: [u8; 16],
    /// Nullable from v10 (a topic asked for by id). Before v10 a null name is sent as "".
    pub name: Option<String>,
}

impl MetadataRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let topics = r.nullable_array(flex, 2, "topics", |r| {
            let topic_id = if version >= 10 {
                r.uuid("topic_id")?
            } else {
                [0; 16]
            };
            let name = if version >= 10 {
                r.nullable_string(flex, "name")?
            } else {
                Some(r.string(flex, "name")?)
            };
            r.tags_if(flex)?;
            Ok(MetadataRequestTopic { topic_id, name })
        })?;
        let topics = topics.filter(|t| version >= 1 || !t.is_empty());
        let allow_auto_topic_creation = if version >= 4 {
            r.bool("allow_auto_topic_creation")?
        } else {
            true
        };
        let include_cluster_authorized_operations = if (8..=10).contains(&version) {
            r.bool("include_cluster_authorized_operations")?
        } else {
            false
        };
        let include_topic_authorized_operations = if version >= 8 {
            r.bool("include_topic_authorized_operations")?
        } else {
            false
        };
        r.tags_if(flex)?;
        Ok(MetadataRequest {
            topics,
            allow_auto_topic_creation,
            include_cluster_authorized_operations,
            include_topic_authorized_operations,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        // v0 has no null list: "all topics" is the empty list.
        let topics = match self.topics.as_deref() {
            None if version == 0 => Some(&[][..]),
            topics => topics,
        };
        w.nullable_array(topics, flex, |w, t| {
            if version >= 10 {
                w.uuid(&t.topic_id);
                w.nullable_string(t.name.as_deref(), flex);
            } else {
                w.string(t.name.as_deref().unwrap_or(""), flex);
            }
            w.tags_if(flex);
        });
        if version >= 4 {
            w.bool(self.allow_auto_topic_creation);
        }
        if (8..=10).contains(&version) {
            w.bool(self.include_cluster_authorized_operations);
        }
        if version >= 8 {
            w.bool(self.include_topic_authorized_operations);
        }
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    /// v3+.
    pub throttle_time_ms: i32,
    pub brokers: Vec<MetadataResponseBroker>,
    /// v2+.
    pub cluster_id: Option<String>,
    /// v1+; −1 if unknown.
    pub controller_id: i32,
    pub topics: Vec<MetadataResponseTopic>,
    /// v8–10.
    pub cluster_authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponseBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    /// v1+.
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponseTopic {
    pub error_code: i16,
    /// Nullable from v12 (topic looked up by id); before v12 null is sent as "".
    pub name: Option<String>,
    /// v10+.
    pub topic_id: [u8; 16],
    /// v1+.
    pub is_internal: bool,
    pub partitions: Vec<MetadataResponsePartition>,
    /// v8+.
    pub topic_authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponsePartition {
    pub error_code: i16,
    pub partition_index: i32,
    pub leader_id: i32,
    /// v7+; −1 if unknown.
    pub leader_epoch: i32,
    pub replica_nodes: Vec<i32>,
    pub isr_nodes: Vec<i32>,
    /// v5+.
    pub offline_replicas: Vec<i32>,
}

impl MetadataResponseBroker {
    fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i32(self.node_id);
        w.string(&self.host, flex);
        w.i32(self.port);
        if version >= 1 {
            w.nullable_string(self.rack.as_deref(), flex);
        }
        w.tags_if(flex);
    }

    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flex = flexible(version);
        let node_id = r.i32("node_id")?;
        let host = r.string(flex, "host")?;
        let port = r.i32("port")?;
        let rack = if version >= 1 {
            r.nullable_string(flex, "rack")?
        } else {
            None
        };
        r.tags_if(flex)?;
        Ok(MetadataResponseBroker {
            node_id,
            host,
            port,
            rack,
        })
    }
}

impl MetadataResponsePartition {
    fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i16(self.error_code);
        w.i32(self.partition_index);
        w.i32(self.leader_id);
        if version >= 7 {
            w.i32(self.leader_epoch);
        }
        w.array(&self.replica_nodes, flex, |w, n| w.i32(*n));
        w.array(&self.isr_nodes, flex, |w, n| w.i32(*n));
        if version >= 5 {
            w.array(&self.offline_replicas, flex, |w, n| w.i32(*n));
        }
        w.tags_if(flex);
    }

    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flex = flexible(version);
        let error_code = r.i16("error_code")?;
        let partition_index = r.i32("partition_index")?;
        let leader_id = r.i32("leader_id")?;
        let leader_epoch = if version >= 7 {
            r.i32("leader_epoch")?
        } else {
            -1
        };
        let replica_nodes = r.array(flex, 4, "replica_nodes", |r| r.i32("replica_node"))?;
        let isr_nodes = r.array(flex, 4, "isr_nodes", |r| r.i32("isr_node"))?;
        let offline_replicas = if version >= 5 {
            r.array(flex, 4, "offline_replicas", |r| r.i32("offline_replica"))?
        } else {
            Vec::new()
        };
        r.tags_if(flex)?;
        Ok(MetadataResponsePartition {
            error_code,
            partition_index,
            leader_id,
            leader_epoch,
            replica_nodes,
            isr_nodes,
            offline_replicas,
        })
    }
}

impl MetadataResponseTopic {
    fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i16(self.error_code);
        if version >= 12 {
            w.nullable_string(self.name.as_deref(), flex);
        } else {
            w.string(self.name.as_deref().unwrap_or(""), flex);
        }
        if version >= 10 {
            w.uuid(&self.topic_id);
        }
        if version >= 1 {
            w.bool(self.is_internal);
        }
        w.array(&self.partitions, flex, |w, p| p.encode(w, version));
        if version >= 8 {
            w.i32(self.topic_authorized_operations);
        }
        w.tags_if(flex);
    }

    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flex = flexible(version);
        let error_code = r.i16("error_code")?;
        let name = if version >= 12 {
            r.nullable_string(flex, "name")?
        } else {
            Some(r.string(flex, "name")?)
        };
        let topic_id = if version >= 10 {
            r.uuid("topic_id")?
        } else {
            [0; 16]
        };
        let is_internal = version >= 1 && r.bool("is_internal")?;
        let partitions = r.array(flex, 14, "partitions", |r| {
            MetadataResponsePartition::decode(r, version)
        })?;
        let topic_authorized_operations = if version >= 8 {
            r.i32("topic_authorized_operations")?
        } else {
            AUTHORIZED_OPERATIONS_UNKNOWN
        };
        r.tags_if(flex)?;
        Ok(MetadataResponseTopic {
            error_code,
            name,
            topic_id,
            is_internal,
            partitions,
            topic_authorized_operations,
        })
    }
}

impl MetadataResponse {
    /// Encodes versions 1–12 (v0 lacks fields this struct always has and is not served).
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 3 {
            w.i32(self.throttle_time_ms);
        }
        w.array(&self.brokers, flex, |w, b| b.encode(w, version));
        if version >= 2 {
            w.nullable_string(self.cluster_id.as_deref(), flex);
        }
        if version >= 1 {
            w.i32(self.controller_id);
        }
        w.array(&self.topics, flex, |w, t| t.encode(w, version));
        if (8..=10).contains(&version) {
            w.i32(self.cluster_authorized_operations);
        }
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
        let brokers = r.array(flex, 9, "brokers", |r| {
            MetadataResponseBroker::decode(r, version)
        })?;
        let cluster_id = if version >= 2 {
            r.nullable_string(flex, "cluster_id")?
        } else {
            None
        };
        let controller_id = if version >= 1 {
            r.i32("controller_id")?
        } else {
            -1
        };
        let topics = r.array(flex, 5, "topics", |r| {
            MetadataResponseTopic::decode(r, version)
        })?;
        let cluster_authorized_operations = if (8..=10).contains(&version) {
            r.i32("cluster_authorized_operations")?
        } else {
            AUTHORIZED_OPERATIONS_UNKNOWN
        };
        r.tags_if(flex)?;
        Ok(MetadataResponse {
            throttle_time_ms,
            brokers,
            cluster_id,
            controller_id,
            topics,
            cluster_authorized_operations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> MetadataRequest {
        MetadataRequest {
            topics: Some(vec![
                MetadataRequestTopic {
                    topic_id: [7; 16],
                    name: Some("orders".into()),
                },
                MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some("payments".into()),
                },
            ]),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: true,
            include_topic_authorized_operations: true,
        }
    }

    fn sample_response() -> MetadataResponse {
        MetadataResponse {
            throttle_time_ms: 3,
            brokers: vec![
                MetadataResponseBroker {
                    node_id: 1,
                    host: "localhost".into(),
                    port: 9092,
                    rack: Some("r1".into()),
                },
                MetadataResponseBroker {
                    node_id: 2,
                    host: "b2".into(),
                    port: 9093,
                    rack: None,
                },
            ],
            cluster_id: Some("ringmq-cluster".into()),
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                error_code: 0,
                name: Some("orders".into()),
                topic_id: [9; 16],
                is_internal: true,
                partitions: vec![MetadataResponsePartition {
                    error_code: 0,
                    partition_index: 0,
                    leader_id: 1,
                    leader_epoch: 4,
                    replica_nodes: vec![1, 2],
                    isr_nodes: vec![1],
                    offline_replicas: vec![2],
                }],
                topic_authorized_operations: 0x0f,
            }],
            cluster_authorized_operations: 0x1f,
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                MetadataRequest::encode,
                MetadataRequest::decode,
            );
            assert_eq!(got.allow_auto_topic_creation, v < 4, "v{v}");
            assert_eq!(
                got.include_cluster_authorized_operations,
                (8..=10).contains(&v)
            );
            assert_eq!(got.topics.as_ref().map(Vec::len), Some(2));
            if v == 10 {
                assert_eq!(got, sample_request());
            }
            truncations_fail(&b, v, MetadataRequest::decode);
            oracle_agrees::<kp::MetadataRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                MetadataResponse::encode,
                MetadataResponse::decode,
            );
            let p = &got.topics[0].partitions[0];
            assert_eq!(p.leader_epoch, if v >= 7 { 4 } else { -1 });
            assert_eq!(p.offline_replicas.len(), usize::from(v >= 5));
            let rack = if v >= 1 { Some("r1") } else { None };
            assert_eq!(got.brokers[0].rack.as_deref(), rack);
            assert_eq!(got.controller_id, if v >= 1 { 1 } else { -1 });
            if v == 10 {
                assert_eq!(got, sample_response());
            }
            truncations_fail(&b, v, MetadataResponse::decode);
            oracle_agrees::<kp::MetadataResponse>(&b, v);
        }
    }

    #[test]
    fn null_topics_means_all_and_differs_from_empty() {
        for v in 1..=MAX_VERSION {
            let all = MetadataRequest {
                topics: None,
                ..sample_request()
            };
            let none = MetadataRequest {
                topics: Some(vec![]),
                ..sample_request()
            };
            let (got_all, _) =
                round_trip(&all, v, MetadataRequest::encode, MetadataRequest::decode);
            let (got_none, _) =
                round_trip(&none, v, MetadataRequest::encode, MetadataRequest::decode);
            assert_eq!(got_all.topics, None);
            assert_eq!(got_none.topics, Some(vec![]));
        }
    }

    #[test]
    fn v0_empty_topic_list_means_all() {
        let none = MetadataRequest {
            topics: Some(vec![]),
            ..sample_request()
        };
        let (got, _) = round_trip(&none, 0, MetadataRequest::encode, MetadataRequest::decode);
        assert_eq!(got.topics, None);
    }

    #[test]
    fn null_topic_names_where_nullable() {
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: [1; 16],
                name: None,
            }]),
            ..sample_request()
        };
        let (got, _) = round_trip(&req, 12, MetadataRequest::encode, MetadataRequest::decode);
        assert_eq!(got.topics.unwrap()[0].name, None);
        let mut resp = sample_response();
        resp.topics[0].name = None;
        let (got, b) = round_trip(
            &resp,
            12,
            MetadataResponse::encode,
            MetadataResponse::decode,
        );
        assert_eq!(got.topics[0].name, None);
        oracle_agrees::<kp::MetadataResponse>(&b, 12);
    }

    #[test]
    fn oracle_encoded_request_decodes() {
        let name = kp::TopicName::from(kafka_protocol::protocol::StrBytes::from_static_str("x"));
        let t = kp::metadata_request::MetadataRequestTopic::default().with_name(Some(name));
        let req = kp::MetadataRequest::default()
            .with_topics(Some(vec![t]))
            .with_allow_auto_topic_creation(true);
        for v in MIN_VERSION..=MAX_VERSION {
            ours_agree(&req, v, MetadataRequest::encode, MetadataRequest::decode);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [4, 9, 12]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, MetadataRequest::encode),
                    encode(&sample_response(), v, MetadataResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(&seeds, 1..=12, MetadataRequest::decode, 2000);
        random_bytes_never_panic(&seeds, 1..=12, MetadataResponse::decode, 2000);
    }
}
