//! CreatePartitions (key 37), versions 0–3, flexible from 2. Schema: Kafka 4.1
//! `CreatePartitionsRequest.json` / `CreatePartitionsResponse.json`.
//!
//! Version quirks: the layout is the same at every version; v1 only changes throttling
//! behaviour, v2 is the first flexible version and v3 may answer THROTTLING_QUOTA_EXCEEDED.
//! `assignments` is a nullable array: null means "let the broker place the new
//! partitions", which is different from an empty array.

use super::codec::{kafka_api, kafka_struct};
use super::ErrorCode;

kafka_api!(key 37, versions 0..=3, flexible 2,
    CreatePartitionsRequest, CreatePartitionsResponse,
    oracle CreatePartitionsRequest, CreatePartitionsResponse from 0);

kafka_struct! {
    /// CreatePartitions request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatePartitionsRequest {
        pub topics: Vec<CreatePartitionsTopic> [0..],
        pub timeout_ms: i32 [0..],
        pub validate_only: bool [0..],
    }
}

kafka_struct! {
    /// One topic to grow.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatePartitionsTopic {
        pub name: String [0..],
        /// The new total partition count.
        pub count: i32 [0..],
        /// Placement of each new partition, or null for automatic placement.
        pub assignments: Option<Vec<CreatePartitionsAssignment>> [0..],
    }
}

kafka_struct! {
    /// Replica placement of one new partition.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatePartitionsAssignment {
        pub broker_ids: Vec<i32> [0..],
    }
}

kafka_struct! {
    /// CreatePartitions response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatePartitionsResponse {
        pub throttle_time_ms: i32 [0..],
        pub results: Vec<CreatePartitionsTopicResult> [0..],
    }
}

kafka_struct! {
    /// The result for one topic.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreatePartitionsTopicResult {
        pub name: String [0..],
        pub error_code: ErrorCode [0..],
        pub error_message: Option<String> [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DecodeError, Reader, Writer};
    use bytes::Bytes;

    fn sample_request() -> CreatePartitionsRequest {
        CreatePartitionsRequest {
            topics: vec![
                CreatePartitionsTopic {
                    name: "orders".into(),
                    count: 6,
                    assignments: Some(vec![
                        CreatePartitionsAssignment {
                            broker_ids: vec![1, 2, 3],
                        },
                        CreatePartitionsAssignment { broker_ids: vec![] },
                    ]),
                },
                CreatePartitionsTopic {
                    name: String::new(),
                    count: 2,
                    assignments: None,
                },
                CreatePartitionsTopic {
                    name: "e".into(),
                    count: 2,
                    assignments: Some(vec![]),
                },
            ],
            timeout_ms: 30_000,
            validate_only: true,
        }
    }

    fn sample_response() -> CreatePartitionsResponse {
        CreatePartitionsResponse {
            throttle_time_ms: 3,
            results: vec![
                CreatePartitionsTopicResult {
                    name: "orders".into(),
                    error_code: ErrorCode::NONE,
                    error_message: None,
                },
                CreatePartitionsTopicResult {
                    name: String::new(),
                    error_code: ErrorCode::INVALID_PARTITIONS,
                    error_message: Some("cannot shrink".into()),
                },
            ],
        }
    }

    fn encode_request(req: &CreatePartitionsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &CreatePartitionsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = sample_request();
            let mut r = Reader::new(encode_request(&req, version));
            let decoded = CreatePartitionsRequest::decode(&mut r, version).unwrap();
            assert_eq!(decoded, req, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response();
            let mut r = Reader::new(encode_response(&resp, version));
            let decoded = CreatePartitionsResponse::decode(&mut r, version).unwrap();
            assert_eq!(decoded, resp, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v0_and_v2_known_bytes() {
        let req = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "t".into(),
                count: 4,
                assignments: None,
            }],
            timeout_ms: 1000,
            validate_only: false,
        };
        #[rustfmt::skip]
        let v0: &[u8] = &[
            0, 0, 0, 1,             // topics: 1
            0, 1, b't',             // name
            0, 0, 0, 4,             // count
            0xff, 0xff, 0xff, 0xff, // assignments: null
            0, 0, 0x03, 0xe8,       // timeout_ms
            0,                      // validate_only
        ];
        #[rustfmt::skip]
        let v2: &[u8] = &[
            2,                      // topics: compact 1
            2, b't',                // name
            0, 0, 0, 4,             // count
            0,                      // assignments: null
            0,                      // topic tagged fields
            0, 0, 0x03, 0xe8,       // timeout_ms
            0,                      // validate_only
            0,                      // tagged fields
        ];
        for (version, expected) in [(0, v0), (2, v2)] {
            assert_eq!(&encode_request(&req, version)[..], expected);
            let mut r = Reader::new(Bytes::from_static(expected));
            assert_eq!(
                CreatePartitionsRequest::decode(&mut r, version).unwrap(),
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
                let result = CreatePartitionsRequest::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
            let resp = encode_response(&sample_response(), version);
            for len in 0..resp.len() {
                let mut r = Reader::new(resp.slice(..len));
                let result = CreatePartitionsResponse::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::CreatePartitionsRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::CreatePartitionsResponse>(
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
            let _ = CreatePartitionsRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ = CreatePartitionsResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x853c_49e6_748f_ea9b_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_request(&sample_request(), 0),
            encode_request(&sample_request(), 3),
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
    fn huge_topic_count_is_an_error() {
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
        assert!(matches!(
            CreatePartitionsRequest::decode(&mut Reader::new(classic), 0),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            CreatePartitionsRequest::decode(&mut Reader::new(compact), 2),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            CreatePartitionsResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(), 0);
        for version in [-1, 4] {
            let err = CreatePartitionsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 37, .. })
            ));
        }
    }
}
