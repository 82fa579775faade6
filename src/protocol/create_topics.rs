//! CreateTopics (key 19), versions 2–7, flexible from 5. Schema: Kafka 4.1
//! `CreateTopicsRequest.json` / `CreateTopicsResponse.json`.
//!
//! Version quirks:
//! * v0–1 were removed in Kafka 4.0 but old clients (segmentio/kafka-go 0.2) still send v0:
//!   v1 adds the request's `validate_only` and the response's `error_message`, v2 the
//!   response's `throttle_time_ms` (Kafka 3.x schemas).
//! * v4 lets `num_partitions` / `replication_factor` be -1 ("broker default") even without
//!   manual assignments; the wire layout is unchanged.
//! * v5 is the first flexible version and the response gains `num_partitions`,
//!   `replication_factor`, a nullable `configs` array and the tagged field 0
//!   `topic_config_error_code`, which we emit only when non-zero (a tagged field at its
//!   default is never written).
//! * v6 only adds the THROTTLING_QUOTA_EXCEEDED error; v7 adds `topic_id` to the response.
//!
//! Fields a version does not carry decode to their Kafka defaults (`num_partitions` and
//! `replication_factor` -1, `topic_id` all zero, `configs` empty) and are not encoded.

use super::codec::{kafka_api, kafka_struct};
use super::ErrorCode;

kafka_api!(key 19, versions 0..=7, flexible 5,
    CreateTopicsRequest, CreateTopicsResponse,
    oracle CreateTopicsRequest, CreateTopicsResponse from 2);

kafka_struct! {
    /// CreateTopics request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreateTopicsRequest {
        pub topics: Vec<CreatableTopic> [0..],
        /// How long to wait for the topics to be created.
        pub timeout_ms: i32 [0.., default 60_000],
        /// Check only; create nothing.
        pub validate_only: bool [1..],
    }
}

kafka_struct! {
    /// One topic to create.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatableTopic {
        pub name: String [0..],
        /// -1 with manual assignments or for the broker default.
        pub num_partitions: i32 [0..],
        /// -1 with manual assignments or for the broker default.
        pub replication_factor: i16 [0..],
        /// Manual assignment; empty for automatic.
        pub assignments: Vec<CreatableReplicaAssignment> [0..],
        pub configs: Vec<CreatableTopicConfig> [0..],
    }
}

kafka_struct! {
    /// Manual replica placement of one partition.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatableReplicaAssignment {
        pub partition_index: i32 [0..],
        pub broker_ids: Vec<i32> [0..],
    }
}

kafka_struct! {
    /// One topic config override in a request.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatableTopicConfig {
        pub name: String [0..],
        pub value: Option<String> [0..],
    }
}

kafka_struct! {
    /// CreateTopics response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreateTopicsResponse {
        pub throttle_time_ms: i32 [2..],
        pub topics: Vec<CreatableTopicResult> [0..],
    }
}

kafka_struct! {
    /// The result for one topic.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatableTopicResult {
        pub name: String [0..],
        pub topic_id: [u8; 16] [7..],
        pub error_code: ErrorCode [0..],
        pub error_message: Option<String> [1..],
        /// Why `configs` is absent. Written only when non-zero.
        pub topic_config_error_code: ErrorCode [5.., tag 0],
        pub num_partitions: i32 [5.., default -1],
        pub replication_factor: i16 [5.., default -1],
        /// Null when the caller may not describe configs.
        pub configs: Option<Vec<CreatableTopicConfigs>> [5.., default Some(Vec::new())],
    }
}

kafka_struct! {
    /// One effective config of a created topic (v5+ response).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatableTopicConfigs {
        pub name: String [0..],
        pub value: Option<String> [0..],
        pub read_only: bool [0..],
        pub config_source: i8 [0.., default -1],
        pub is_sensitive: bool [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DecodeError, Reader, Writer};
    use bytes::Bytes;

    fn sample_request() -> CreateTopicsRequest {
        CreateTopicsRequest {
            topics: vec![
                CreatableTopic {
                    name: "orders".into(),
                    num_partitions: -1,
                    replication_factor: -1,
                    assignments: vec![
                        CreatableReplicaAssignment {
                            partition_index: 0,
                            broker_ids: vec![1, 2],
                        },
                        CreatableReplicaAssignment {
                            partition_index: 1,
                            broker_ids: vec![],
                        },
                    ],
                    configs: vec![
                        CreatableTopicConfig {
                            name: "cleanup.policy".into(),
                            value: Some("compact".into()),
                        },
                        CreatableTopicConfig {
                            name: "retention.ms".into(),
                            value: None,
                        },
                    ],
                },
                CreatableTopic {
                    name: String::new(),
                    num_partitions: 3,
                    replication_factor: 1,
                    assignments: vec![],
                    configs: vec![],
                },
            ],
            timeout_ms: 60_000,
            validate_only: true,
        }
    }

    fn sample_response(version: i16) -> CreateTopicsResponse {
        let flexible = version >= FLEXIBLE_FROM;
        let mut ok = CreatableTopicResult {
            name: "orders".into(),
            topic_id: if version >= 7 { [7; 16] } else { [0; 16] },
            error_code: ErrorCode::NONE,
            error_message: None,
            topic_config_error_code: ErrorCode::NONE,
            num_partitions: -1,
            replication_factor: -1,
            configs: Some(vec![]),
        };
        let mut failed = CreatableTopicResult {
            name: String::new(),
            error_code: ErrorCode::TOPIC_ALREADY_EXISTS,
            error_message: Some("exists".into()),
            ..ok.clone()
        };
        if flexible {
            ok.num_partitions = 3;
            ok.replication_factor = 1;
            ok.configs = Some(vec![
                CreatableTopicConfigs {
                    name: "cleanup.policy".into(),
                    value: Some("compact".into()),
                    read_only: false,
                    config_source: 1,
                    is_sensitive: false,
                },
                CreatableTopicConfigs {
                    name: "sasl.jaas.config".into(),
                    value: None,
                    read_only: true,
                    config_source: -1,
                    is_sensitive: true,
                },
            ]);
            failed.topic_config_error_code = ErrorCode(29);
            failed.configs = None;
        }
        if version < 1 {
            failed.error_message = None;
        }
        CreateTopicsResponse {
            throttle_time_ms: if version >= 2 { 12 } else { 0 },
            topics: vec![ok, failed],
        }
    }

    fn encode_request(req: &CreateTopicsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &CreateTopicsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let mut req = sample_request();
            req.validate_only &= version >= 1;
            let mut r = Reader::new(encode_request(&req, version));
            assert_eq!(
                CreateTopicsRequest::decode(&mut r, version).unwrap(),
                req,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response(version);
            let mut r = Reader::new(encode_response(&resp, version));
            assert_eq!(
                CreateTopicsResponse::decode(&mut r, version).unwrap(),
                resp,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v2_known_bytes() {
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: 3,
                replication_factor: 1,
                assignments: vec![],
                configs: vec![CreatableTopicConfig {
                    name: "a".into(),
                    value: None,
                }],
            }],
            timeout_ms: 1000,
            validate_only: false,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 1,             // topics: 1
            0, 1, b't',             // name
            0, 0, 0, 3,             // num_partitions
            0, 1,                   // replication_factor
            0, 0, 0, 0,             // assignments: 0
            0, 0, 0, 1,             // configs: 1
            0, 1, b'a',             // config name
            0xff, 0xff,             // config value: null
            0, 0, 0x03, 0xe8,       // timeout_ms
            0,                      // validate_only
        ];
        assert_eq!(&encode_request(&req, 2)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(CreateTopicsRequest::decode(&mut r, 2).unwrap(), req);
    }

    #[test]
    fn response_v5_tagged_config_error_known_bytes() {
        let resp = CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: vec![CreatableTopicResult {
                name: "t".into(),
                topic_id: [0; 16],
                error_code: ErrorCode::NONE,
                error_message: None,
                topic_config_error_code: ErrorCode(29),
                num_partitions: 1,
                replication_factor: 1,
                configs: None,
            }],
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,     // throttle_time_ms
            2,              // topics: compact 1
            2, b't',        // name
            0, 0,           // error_code
            0,              // error_message: null
            0, 0, 0, 1,     // num_partitions
            0, 1,           // replication_factor
            0,              // configs: null
            1, 0, 2, 0, 29, // tagged: 1 field, tag 0, size 2, value 29
            0,              // top-level tagged fields
        ];
        assert_eq!(&encode_response(&resp, 5)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(CreateTopicsResponse::decode(&mut r, 5).unwrap(), resp);
    }

    #[test]
    fn zero_config_error_is_not_emitted() {
        let mut resp = sample_response(5);
        resp.topics.truncate(1);
        let bytes = encode_response(&resp, 5);
        // The topic's tagged-field section is the second-to-last byte and is empty.
        assert_eq!(bytes[bytes.len() - 2], 0);
    }

    /// v5 response with one topic whose tagged section is `tags`.
    fn response_v5_with_topic_tags(tags: &[u8]) -> Bytes {
        let mut bytes = vec![0, 0, 0, 0, 2, 2, b't', 0, 0, 0, 0, 0, 0, 1, 0, 1, 0];
        bytes.extend_from_slice(tags);
        bytes.push(0);
        Bytes::from(bytes)
    }

    #[test]
    fn response_tagged_fields_unknown_skipped_malformed_rejected() {
        // Unknown tag 5 (3 bytes) before tag 0 = 29: the unknown one is skipped.
        let bytes = response_v5_with_topic_tags(&[2, 5, 3, 1, 2, 3, 0, 2, 0, 29]);
        let mut r = Reader::new(bytes);
        let resp = CreateTopicsResponse::decode(&mut r, 5).unwrap();
        assert_eq!(resp.topics[0].topic_config_error_code, ErrorCode(29));
        assert_eq!(r.remaining(), 0);
        // Tag 0 must hold exactly an int16.
        let bytes = response_v5_with_topic_tags(&[1, 0, 3, 0, 29, 0]);
        let err = CreateTopicsResponse::decode(&mut Reader::new(bytes), 5);
        assert!(matches!(err, Err(DecodeError::BadLength { .. })), "{err:?}");
        let bytes = response_v5_with_topic_tags(&[1, 0, 1, 29]);
        assert!(CreateTopicsResponse::decode(&mut Reader::new(bytes), 5).is_err());
        // A tag claiming more bytes than the frame holds.
        let bytes = response_v5_with_topic_tags(&[1, 0, 0x7f]);
        assert!(CreateTopicsResponse::decode(&mut Reader::new(bytes), 5).is_err());
    }

    #[test]
    fn huge_topic_count_is_an_error() {
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
        assert!(matches!(
            CreateTopicsRequest::decode(&mut Reader::new(classic), 2),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            CreateTopicsResponse::decode(&mut Reader::new(resp), 2),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0]);
        assert!(matches!(
            CreateTopicsRequest::decode(&mut Reader::new(compact), 5),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
        assert!(matches!(
            CreateTopicsResponse::decode(&mut Reader::new(resp), 5),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(), 2);
        for version in [-1, 8] {
            let err = CreateTopicsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 19, .. })
            ));
        }
    }
}
