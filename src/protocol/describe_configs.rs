//! DescribeConfigs (key 32), versions 0–4, flexible from 4. Schema: Kafka 4.1
//! `DescribeConfigsRequest.json` / `DescribeConfigsResponse.json` (v1–4) and Kafka 3.9's
//! (v0, removed in Kafka 4.0 but still sent by older clients).
//!
//! Version quirks:
//! * v0 has no `include_synonyms` (decodes to `false`) and, per config, an `is_default` flag
//!   where v1 has `config_source` and the `synonyms` array. v0 encodes `is_default` as
//!   `config_source == DEFAULT_CONFIG (5)`, leaves synonyms out, and decodes `is_default` to
//!   source 5 or UNKNOWN (0), as Kafka's own down-conversion does.
//! * v2 only changes throttling behaviour.
//! * v3 adds `include_documentation` to the request and `config_type` (default 0) and a
//!   nullable `documentation` to each config.
//! * v4 is the first flexible version.
//!
//! `configuration_keys` is nullable: null asks for every config of the resource (Java's
//! AlterConfigs read-modify-write relies on getting all of them, defaults included). Fields
//! a version does not carry decode to their defaults (`false`, 0, `None`).

use super::codec::{kafka_api, kafka_struct, Field, FieldAs};
use super::wire::{DecodeResult, Reader, Writer};
use super::ErrorCode;

kafka_api!(key 32, versions 0..=4, flexible 4,
    DescribeConfigsRequest, DescribeConfigsResponse,
    oracle DescribeConfigsRequest, DescribeConfigsResponse from 1);

/// Kafka's ConfigSource DEFAULT_CONFIG: what v0's `is_default` stands for.
pub const SOURCE_DEFAULT: i8 = 5;

kafka_struct! {
    /// DescribeConfigs request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeConfigsRequest {
        pub resources: Vec<DescribeConfigsResource> [0..],
        pub include_synonyms: bool [1..],
        pub include_documentation: bool [3..],
    }
}

kafka_struct! {
    /// One resource whose configs are asked for.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeConfigsResource {
        /// 2 = topic, 4 = broker, 8 = broker logger (Kafka's ConfigResource.Type).
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
        /// The keys to describe, or null for all of them.
        pub configuration_keys: Option<Vec<String>> [0..],
    }
}

kafka_struct! {
    /// DescribeConfigs response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeConfigsResponse {
        pub throttle_time_ms: i32 [0..],
        pub results: Vec<DescribeConfigsResult> [0..],
    }
}

kafka_struct! {
    /// The configs of one resource.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeConfigsResult {
        pub error_code: ErrorCode [0..],
        pub error_message: Option<String> [0..],
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
        pub configs: Vec<DescribeConfigsResourceResult> [0..],
    }
}

kafka_struct! {
    /// One config entry.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeConfigsResourceResult {
        pub name: String [0..],
        pub value: Option<String> [0..],
        pub read_only: bool [0..],
        /// Where the value comes from (1 dynamic topic … 5 static broker, 6 default).
        pub config_source: i8 [0.., as IsDefaultInV0],
        pub is_sensitive: bool [0..],
        pub synonyms: Vec<DescribeConfigsSynonym> [1..],
        /// BOOLEAN=1, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD; 0 unknown.
        pub config_type: i8 [3..],
        pub documentation: Option<String> [3..],
    }
}

kafka_struct! {
    /// One synonym of a config (a value for the same key at another level).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeConfigsSynonym {
        pub name: String [0..],
        pub value: Option<String> [0..],
        pub source: i8 [0..],
    }
}

/// `config_source`, which v0 carries as the `is_default` flag: source 5 or UNKNOWN (0).
pub struct IsDefaultInV0;

impl FieldAs<i8> for IsDefaultInV0 {
    fn read(r: &mut Reader, version: i16, flex: bool, name: &'static str) -> DecodeResult<i8> {
        if version == 0 {
            return Ok(if r.bool(name)? { SOURCE_DEFAULT } else { 0 });
        }
        i8::read(r, version, flex, name)
    }
    fn write(value: &i8, w: &mut Writer, version: i16, flex: bool) {
        if version == 0 {
            return w.bool(*value == SOURCE_DEFAULT);
        }
        value.write(w, version, flex);
    }
    #[cfg(test)]
    fn sample(version: i16, flex: bool, seed: u8) -> i8 {
        if version == 0 {
            return SOURCE_DEFAULT;
        }
        i8::sample(version, flex, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DecodeError;
    use bytes::Bytes;

    fn sample_request(version: i16) -> DescribeConfigsRequest {
        DescribeConfigsRequest {
            resources: vec![
                DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: "orders".into(),
                    configuration_keys: None,
                },
                DescribeConfigsResource {
                    resource_type: 4,
                    resource_name: String::new(),
                    configuration_keys: Some(vec!["log.retention.ms".into(), String::new()]),
                },
                DescribeConfigsResource {
                    resource_type: 8,
                    resource_name: "1".into(),
                    configuration_keys: Some(vec![]),
                },
            ],
            include_synonyms: version >= 1,
            include_documentation: version >= 3,
        }
    }

    fn sample_response(version: i16) -> DescribeConfigsResponse {
        let v3 = version >= 3;
        let v0 = version == 0;
        let retention = DescribeConfigsResourceResult {
            name: "retention.ms".into(),
            value: Some("604800000".into()),
            read_only: false,
            config_source: 5,
            is_sensitive: false,
            synonyms: if v0 {
                vec![]
            } else {
                vec![
                    DescribeConfigsSynonym {
                        name: "log.retention.ms".into(),
                        value: Some("604800000".into()),
                        source: 4,
                    },
                    DescribeConfigsSynonym {
                        name: String::new(),
                        value: None,
                        source: 5,
                    },
                ]
            },
            config_type: if v3 { 5 } else { 0 },
            documentation: if v3 {
                Some("How long to keep data.".into())
            } else {
                None
            },
        };
        let secret = DescribeConfigsResourceResult {
            name: "ssl.key.password".into(),
            value: None,
            read_only: true,
            config_source: if v0 { 0 } else { -1 },
            is_sensitive: true,
            synonyms: vec![],
            config_type: if v3 { 9 } else { 0 },
            documentation: None,
        };
        DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![
                DescribeConfigsResult {
                    error_code: ErrorCode::NONE,
                    error_message: None,
                    resource_type: 2,
                    resource_name: "orders".into(),
                    configs: vec![retention, secret],
                },
                DescribeConfigsResult {
                    error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    error_message: Some("no such topic".into()),
                    resource_type: 2,
                    resource_name: String::new(),
                    configs: vec![],
                },
            ],
        }
    }

    fn encode_request(req: &DescribeConfigsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &DescribeConfigsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = sample_request(version);
            let mut r = Reader::new(encode_request(&req, version));
            let decoded = DescribeConfigsRequest::decode(&mut r, version).unwrap();
            assert_eq!(decoded, req, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response(version);
            let mut r = Reader::new(encode_response(&resp, version));
            let decoded = DescribeConfigsResponse::decode(&mut r, version).unwrap();
            assert_eq!(decoded, resp, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v1_known_bytes() {
        let req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: "t".into(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 1,             // resources: 1
            2,                      // resource_type: topic
            0, 1, b't',             // resource_name
            0xff, 0xff, 0xff, 0xff, // configuration_keys: null
            0,                      // include_synonyms
        ];
        assert_eq!(&encode_request(&req, 1)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DescribeConfigsRequest::decode(&mut r, 1).unwrap(), req);
    }

    /// A response for topic "t" with the one config `config`.
    fn one_config_response(config: DescribeConfigsResourceResult) -> DescribeConfigsResponse {
        DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![DescribeConfigsResult {
                error_code: ErrorCode::NONE,
                error_message: None,
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![config],
            }],
        }
    }

    #[test]
    fn response_v4_flexible_known_bytes() {
        let resp = one_config_response(DescribeConfigsResourceResult {
            name: "a".into(),
            value: Some("1".into()),
            read_only: false,
            config_source: 5,
            is_sensitive: false,
            synonyms: vec![],
            config_type: 3,
            documentation: None,
        });
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,     // throttle_time_ms
            2,              // results: compact 1
            0, 0,           // error_code
            0,              // error_message: null
            2,              // resource_type
            2, b't',        // resource_name
            2,              // configs: compact 1
            2, b'a',        // name
            2, b'1',        // value
            0,              // read_only
            5,              // config_source
            0,              // is_sensitive
            1,              // synonyms: compact 0
            3,              // config_type: INT
            0,              // documentation: null
            0,              // config tagged fields
            0,              // result tagged fields
            0,              // top-level tagged fields
        ];
        assert_eq!(&encode_response(&resp, 4)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DescribeConfigsResponse::decode(&mut r, 4).unwrap(), resp);
    }

    #[test]
    fn huge_resource_count_is_an_error() {
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(matches!(
            DescribeConfigsRequest::decode(&mut Reader::new(classic), 1),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0]);
        assert!(matches!(
            DescribeConfigsRequest::decode(&mut Reader::new(compact), 4),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            DescribeConfigsResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn v0_request_has_no_include_synonyms() {
        let bytes = Bytes::from_static(&[0, 0, 0, 1, 2, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let mut r = Reader::new(bytes.clone());
        let req = DescribeConfigsRequest::decode(&mut r, 0).unwrap();
        assert_eq!(r.remaining(), 0);
        assert!(!req.include_synonyms);
        assert_eq!(req.resources[0].configuration_keys, None);
        assert_eq!(encode_request(&req, 0), bytes);
    }

    #[test]
    fn v0_config_carries_is_default_instead_of_source_and_synonyms() {
        let config = DescribeConfigsResourceResult {
            name: "a".into(),
            value: Some("b".into()),
            read_only: true,
            config_source: SOURCE_DEFAULT,
            is_sensitive: false,
            synonyms: vec![DescribeConfigsSynonym {
                name: "s".into(),
                value: None,
                source: 4,
            }],
            config_type: 2,
            documentation: None,
        };
        let resp = one_config_response(config);
        let bytes = encode_response(&resp, 0);
        let config_bytes: &[u8] = &[0, 1, b'a', 0, 1, b'b', 1, 1, 0];
        assert!(bytes.ends_with(config_bytes), "{bytes:?}");
        let decoded = DescribeConfigsResponse::decode(&mut Reader::new(bytes), 0).unwrap();
        let got = &decoded.results[0].configs[0];
        assert_eq!((got.config_source, got.synonyms.len()), (SOURCE_DEFAULT, 0));
        let mut dynamic = resp;
        dynamic.results[0].configs[0].config_source = 1;
        let bytes = encode_response(&dynamic, 0);
        assert!(bytes.ends_with(&[1, 0, 0]), "is_default false: {bytes:?}");
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(1), 1);
        for version in [-1, 5] {
            let err = DescribeConfigsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 32, .. })
            ));
        }
    }
}
