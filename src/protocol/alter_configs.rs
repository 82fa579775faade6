//! AlterConfigs (key 33), versions 0–2, flexible from 2. Schema: Kafka 4.1
//! `AlterConfigsRequest.json` / `AlterConfigsResponse.json`.
//!
//! AlterConfigs *replaces* the whole dynamic config set of each resource: a config left out
//! of the request is reset to its default. That is why Java clients describe every config
//! first and send the full set back (and why IncrementalAlterConfigs exists).
//!
//! Version quirks: the layout is the same at every version; v1 only changes throttling
//! behaviour and v2 is the first flexible version. `value` is nullable.

use super::codec::{kafka_api, kafka_struct};
use super::ErrorCode;

kafka_api!(key 33, versions 0..=2, flexible 2,
    AlterConfigsRequest, AlterConfigsResponse,
    oracle AlterConfigsRequest, AlterConfigsResponse from 0);

kafka_struct! {
    /// AlterConfigs request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterConfigsRequest {
        pub resources: Vec<AlterConfigsResource> [0..],
        pub validate_only: bool [0..],
    }
}

kafka_struct! {
    /// One resource (topic 2, broker 4, ...) and its complete new config set.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterConfigsResource {
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
        pub configs: Vec<AlterableConfig> [0..],
    }
}

kafka_struct! {
    /// One config of the new set.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterableConfig {
        pub name: String [0..],
        pub value: Option<String> [0..],
    }
}

kafka_struct! {
    /// AlterConfigs response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterConfigsResponse {
        pub throttle_time_ms: i32 [0..],
        pub responses: Vec<AlterConfigsResourceResponse> [0..],
    }
}

kafka_struct! {
    /// The result for one resource (also IncrementalAlterConfigs' result, same layout).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterConfigsResourceResponse {
        pub error_code: ErrorCode [0..],
        pub error_message: Option<String> [0..],
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DecodeError, Reader, Writer};
    use bytes::Bytes;

    fn sample_request() -> AlterConfigsRequest {
        AlterConfigsRequest {
            resources: vec![
                AlterConfigsResource {
                    resource_type: 2,
                    resource_name: "orders".into(),
                    configs: vec![
                        AlterableConfig {
                            name: "retention.ms".into(),
                            value: Some("1000".into()),
                        },
                        AlterableConfig {
                            name: String::new(),
                            value: None,
                        },
                    ],
                },
                AlterConfigsResource {
                    resource_type: 4,
                    resource_name: String::new(),
                    configs: vec![],
                },
            ],
            validate_only: true,
        }
    }

    fn sample_response() -> AlterConfigsResponse {
        AlterConfigsResponse {
            throttle_time_ms: 9,
            responses: vec![
                AlterConfigsResourceResponse {
                    error_code: ErrorCode::NONE,
                    error_message: None,
                    resource_type: 2,
                    resource_name: "orders".into(),
                },
                AlterConfigsResourceResponse {
                    error_code: ErrorCode::INVALID_CONFIG,
                    error_message: Some("bad value".into()),
                    resource_type: 4,
                    resource_name: String::new(),
                },
            ],
        }
    }

    fn encode_request(req: &AlterConfigsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &AlterConfigsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = sample_request();
            let mut r = Reader::new(encode_request(&req, version));
            assert_eq!(
                AlterConfigsRequest::decode(&mut r, version).unwrap(),
                req,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response();
            let mut r = Reader::new(encode_response(&resp, version));
            assert_eq!(
                AlterConfigsResponse::decode(&mut r, version).unwrap(),
                resp,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v2_known_bytes() {
        let req = AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![AlterableConfig {
                    name: "a".into(),
                    value: Some("1".into()),
                }],
            }],
            validate_only: false,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            2,          // resources: compact 1
            2,          // resource_type
            2, b't',    // resource_name
            2,          // configs: compact 1
            2, b'a',    // name
            2, b'1',    // value
            0,          // config tagged fields
            0,          // resource tagged fields
            0,          // validate_only
            0,          // tagged fields
        ];
        assert_eq!(&encode_request(&req, 2)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(AlterConfigsRequest::decode(&mut r, 2).unwrap(), req);
    }

    #[test]
    fn response_v0_known_bytes() {
        let resp = AlterConfigsResponse {
            throttle_time_ms: 1,
            responses: vec![AlterConfigsResourceResponse {
                error_code: ErrorCode::INVALID_CONFIG,
                error_message: None,
                resource_type: 2,
                resource_name: "t".into(),
            }],
        };
        let expected: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 1, 0, 40, 0xff, 0xff, 2, 0, 1, b't'];
        assert_eq!(&encode_response(&resp, 0)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(AlterConfigsResponse::decode(&mut r, 0).unwrap(), resp);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::truncations_fail(
                &req,
                version,
                AlterConfigsRequest::decode,
            );
            let resp = encode_response(&sample_response(), version);
            crate::protocol::api::testkit::truncations_fail(
                &resp,
                version,
                AlterConfigsResponse::decode,
            );
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::AlterConfigsRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::AlterConfigsResponse>(
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
            let _ = AlterConfigsRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ = AlterConfigsResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x1234_5678_9abc_def1_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_request(&sample_request(), 0),
            encode_request(&sample_request(), 2),
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
            AlterConfigsRequest::decode(&mut Reader::new(classic), 0),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0]);
        assert!(matches!(
            AlterConfigsRequest::decode(&mut Reader::new(compact), 2),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            AlterConfigsResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(), 0);
        for version in [-1, 3] {
            let err = AlterConfigsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 33, .. })
            ));
        }
    }
}
