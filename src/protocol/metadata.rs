//! Metadata (key 3), versions 0–12, flexible from 9 (Kafka 4.1 schema).
//!
//! v1+ distinguishes a null topic list ("all topics") from an empty one ("no topics"); in v0
//! (still sent by Sarama's admin) an empty list means all topics and decodes as `None`, and
//! the response lacks the rack, controller id and is_internal. Topic ids (v10+) are carried as
//! raw 16-byte UUIDs, all zero when unknown. v13 (top-level error code) is not served.
//!
//! Fields a version lacks decode to the schema default (leader_epoch −1, controller_id −1,
//! authorized operations i32::MIN, …), so a decoded value always re-encodes to the same bytes.

use super::codec::{kafka_api, kafka_struct, Field, FieldAs, NullableFrom};
use super::wire::{DecodeResult, Reader, Writer};

kafka_api!(key 3, versions 0..=12, flexible 9,
    MetadataRequest, MetadataResponse,
    oracle MetadataRequest, MetadataResponse from 0);

/// Default of the `*_authorized_operations` bit fields: "not requested".
pub const AUTHORIZED_OPERATIONS_UNKNOWN: i32 = i32::MIN;

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataRequest {
        /// `None` = all topics.
        pub topics: Option<Vec<MetadataRequestTopic>> [0.., as EmptyIsAllInV0],
        /// v4+; true before.
        pub allow_auto_topic_creation: bool [4.., default true],
        pub include_cluster_authorized_operations: bool [8..=10],
        pub include_topic_authorized_operations: bool [8..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataRequestTopic {
        /// v10+; zero = not given.
        pub topic_id: [u8; 16] [10..],
        /// Nullable from v10 (a topic asked for by id). Before v10 a null name is sent as "".
        pub name: Option<String> [0.., as NullableFrom<10>],
    }
}

/// The request's topic list: v0 has no null list, "all topics" is the empty list there.
pub struct EmptyIsAllInV0;

impl FieldAs<Option<Vec<MetadataRequestTopic>>> for EmptyIsAllInV0 {
    fn read(
        r: &mut Reader,
        version: i16,
        flex: bool,
        name: &'static str,
    ) -> DecodeResult<Option<Vec<MetadataRequestTopic>>> {
        let topics = Option::<Vec<MetadataRequestTopic>>::read(r, version, flex, name)?;
        Ok(topics.filter(|t| version >= 1 || !t.is_empty()))
    }
    fn write(value: &Option<Vec<MetadataRequestTopic>>, w: &mut Writer, version: i16, flex: bool) {
        match value {
            None if version == 0 => Vec::<MetadataRequestTopic>::new().write(w, version, flex),
            topics => topics.write(w, version, flex),
        }
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataResponse {
        pub throttle_time_ms: i32 [3..],
        pub brokers: Vec<MetadataResponseBroker> [0..],
        pub cluster_id: Option<String> [2..],
        /// −1 if unknown.
        pub controller_id: i32 [1.., default -1],
        pub topics: Vec<MetadataResponseTopic> [0..],
        pub cluster_authorized_operations: i32 [8..=10, default AUTHORIZED_OPERATIONS_UNKNOWN],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataResponseBroker {
        pub node_id: i32 [0..],
        pub host: String [0..],
        pub port: i32 [0..],
        pub rack: Option<String> [1..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataResponseTopic {
        pub error_code: i16 [0..],
        /// Nullable from v12 (topic looked up by id); before v12 null is sent as "".
        pub name: Option<String> [0.., as NullableFrom<12>],
        pub topic_id: [u8; 16] [10..],
        pub is_internal: bool [1..],
        pub partitions: Vec<MetadataResponsePartition> [0..],
        pub topic_authorized_operations: i32 [8.., default AUTHORIZED_OPERATIONS_UNKNOWN],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataResponsePartition {
        pub error_code: i16 [0..],
        pub partition_index: i32 [0..],
        pub leader_id: i32 [0..],
        /// −1 if unknown.
        pub leader_epoch: i32 [7.., default -1],
        pub replica_nodes: Vec<i32> [0..],
        pub isr_nodes: Vec<i32> [0..],
        pub offline_replicas: Vec<i32> [5..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
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
}
