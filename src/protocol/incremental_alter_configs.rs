//! IncrementalAlterConfigs (key 44), versions 0–1, flexible from 1. Schema: Kafka 4.1
//! `IncrementalAlterConfigsRequest.json` / `IncrementalAlterConfigsResponse.json`.
//!
//! Unlike AlterConfigs, each config carries an operation (0 SET, 1 DELETE, 2 APPEND,
//! 3 SUBTRACT) and configs not named are left alone. The layout is the same at both
//! versions; v1 is flexible. `value` is nullable (DELETE sends null). The response has
//! exactly AlterConfigs' layout, so it reuses
//! [`AlterConfigsResourceResponse`](super::alter_configs::AlterConfigsResourceResponse).

use super::alter_configs::AlterConfigsResourceResponse;
use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 44, versions 0..=1, flexible 1,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    oracle IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse from 0);

/// `config_operation` values.
pub mod config_operation {
    pub const SET: i8 = 0;
    pub const DELETE: i8 = 1;
    pub const APPEND: i8 = 2;
    pub const SUBTRACT: i8 = 3;
}

kafka_struct! {
    /// IncrementalAlterConfigs request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct IncrementalAlterConfigsRequest {
        pub resources: Vec<IncrementalAlterConfigsResource> [0..],
        pub validate_only: bool [0..],
    }
}

kafka_struct! {
    /// One resource and the config changes to apply to it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct IncrementalAlterConfigsResource {
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
        pub configs: Vec<IncrementalAlterableConfig> [0..],
    }
}

kafka_struct! {
    /// One change: a [`config_operation`] on one config.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct IncrementalAlterableConfig {
        pub name: String [0..],
        pub config_operation: i8 [0..],
        pub value: Option<String> [0..],
    }
}

kafka_struct! {
    /// IncrementalAlterConfigs response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct IncrementalAlterConfigsResponse {
        pub throttle_time_ms: i32 [0..],
        pub responses: Vec<AlterConfigsResourceResponse> [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use crate::protocol::{DecodeError, Reader, Writer};
    use bytes::Bytes;

    fn sample_request() -> IncrementalAlterConfigsRequest {
        IncrementalAlterConfigsRequest {
            resources: vec![
                IncrementalAlterConfigsResource {
                    resource_type: 2,
                    resource_name: "orders".into(),
                    configs: vec![
                        IncrementalAlterableConfig {
                            name: "retention.ms".into(),
                            config_operation: config_operation::SET,
                            value: Some("1000".into()),
                        },
                        IncrementalAlterableConfig {
                            name: String::new(),
                            config_operation: config_operation::DELETE,
                            value: None,
                        },
                    ],
                },
                IncrementalAlterConfigsResource {
                    resource_type: 4,
                    resource_name: String::new(),
                    configs: vec![],
                },
            ],
            validate_only: false,
        }
    }

    fn sample_response() -> IncrementalAlterConfigsResponse {
        IncrementalAlterConfigsResponse {
            throttle_time_ms: 0,
            responses: vec![
                AlterConfigsResourceResponse {
                    error_code: ErrorCode::NONE,
                    error_message: None,
                    resource_type: 2,
                    resource_name: "orders".into(),
                },
                AlterConfigsResourceResponse {
                    error_code: ErrorCode::INVALID_REQUEST,
                    error_message: Some("unknown operation".into()),
                    resource_type: 4,
                    resource_name: String::new(),
                },
            ],
        }
    }

    fn encode_request(req: &IncrementalAlterConfigsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &IncrementalAlterConfigsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = sample_request();
            let mut r = Reader::new(encode_request(&req, version));
            let decoded = IncrementalAlterConfigsRequest::decode(&mut r, version).unwrap();
            assert_eq!(decoded, req, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response();
            let mut r = Reader::new(encode_response(&resp, version));
            let decoded = IncrementalAlterConfigsResponse::decode(&mut r, version).unwrap();
            assert_eq!(decoded, resp, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v0_and_v1_known_bytes() {
        let req = IncrementalAlterConfigsRequest {
            resources: vec![IncrementalAlterConfigsResource {
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![IncrementalAlterableConfig {
                    name: "a".into(),
                    config_operation: config_operation::APPEND,
                    value: None,
                }],
            }],
            validate_only: true,
        };
        #[rustfmt::skip]
        let v0: &[u8] = &[
            0, 0, 0, 1,     // resources: 1
            2,              // resource_type
            0, 1, b't',     // resource_name
            0, 0, 0, 1,     // configs: 1
            0, 1, b'a',     // name
            2,              // config_operation: APPEND
            0xff, 0xff,     // value: null
            1,              // validate_only
        ];
        #[rustfmt::skip]
        let v1: &[u8] = &[
            2,              // resources: compact 1
            2,              // resource_type
            2, b't',        // resource_name
            2,              // configs: compact 1
            2, b'a',        // name
            2,              // config_operation: APPEND
            0,              // value: null
            0,              // config tagged fields
            0,              // resource tagged fields
            1,              // validate_only
            0,              // tagged fields
        ];
        for (version, expected) in [(0, v0), (1, v1)] {
            assert_eq!(&encode_request(&req, version)[..], expected);
            let mut r = Reader::new(Bytes::from_static(expected));
            assert_eq!(
                IncrementalAlterConfigsRequest::decode(&mut r, version).unwrap(),
                req
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            for len in 0..req.len() {
                let mut r = Reader::new(req.slice(..len));
                let result = IncrementalAlterConfigsRequest::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
            let resp = encode_response(&sample_response(), version);
            for len in 0..resp.len() {
                let mut r = Reader::new(resp.slice(..len));
                let result = IncrementalAlterConfigsResponse::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::IncrementalAlterConfigsRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::IncrementalAlterConfigsResponse>(
                &resp, version,
            );
        }
    }

    fn xorshift(state: &mut u64) -> u64 {
        let mut rng = crate::protocol::api::testkit::XorShift(*state);
        (rng.next(), *state = rng.0).0
    }

    fn decode_all(bytes: &Bytes) {
        for version in MIN_VERSION..=MAX_VERSION {
            let _ =
                IncrementalAlterConfigsRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ =
                IncrementalAlterConfigsResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x0bad_cafe_dead_beef_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_request(&sample_request(), 0),
            encode_response(&sample_response(), 1),
        ];
        for i in 0..4000 {
            let mut bytes = valid[i % 2].to_vec();
            for _ in 0..1 + xorshift(&mut seed) % 4 {
                let at = (xorshift(&mut seed) % bytes.len() as u64) as usize;
                bytes[at] = xorshift(&mut seed) as u8;
            }
            decode_all(&Bytes::from(bytes));
        }
    }

    #[test]
    fn huge_resource_count_is_an_error() {
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0]);
        assert!(matches!(
            IncrementalAlterConfigsRequest::decode(&mut Reader::new(classic), 0),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0]);
        assert!(matches!(
            IncrementalAlterConfigsRequest::decode(&mut Reader::new(compact), 1),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
        assert!(matches!(
            IncrementalAlterConfigsResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(), 0);
        for version in [-1, 2] {
            let err =
                IncrementalAlterConfigsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 44, .. })
            ));
        }
    }
}
