//! DeleteRecords (key 21), versions 0–2, flexible from 2. Schema: Kafka 4.1
//! `DeleteRecordsRequest.json` / `DeleteRecordsResponse.json`.
//!
//! Moves each partition's log start offset up to `offset` (-1 means "to the high
//! watermark"); the response reports the new `low_watermark`. The layout is the same at
//! every version: v1 only changes throttling behaviour and v2 is the first flexible version.

use super::codec::{kafka_api, kafka_struct};
use super::ErrorCode;

kafka_api!(key 21, versions 0..=2, flexible 2,
    DeleteRecordsRequest, DeleteRecordsResponse,
    oracle DeleteRecordsRequest, DeleteRecordsResponse from 0);

kafka_struct! {
    /// DeleteRecords request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteRecordsRequest {
        pub topics: Vec<DeleteRecordsTopic> [0..],
        pub timeout_ms: i32 [0..],
    }
}

kafka_struct! {
    /// The partitions of one topic to trim.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteRecordsTopic {
        pub name: String [0..],
        pub partitions: Vec<DeleteRecordsPartition> [0..],
    }
}

kafka_struct! {
    /// Trim one partition below `offset`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteRecordsPartition {
        pub partition_index: i32 [0..],
        /// Delete records before this offset; -1 for the high watermark.
        pub offset: i64 [0..],
    }
}

kafka_struct! {
    /// DeleteRecords response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteRecordsResponse {
        pub throttle_time_ms: i32 [0..],
        pub topics: Vec<DeleteRecordsTopicResult> [0..],
    }
}

kafka_struct! {
    /// The results for one topic.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteRecordsTopicResult {
        pub name: String [0..],
        pub partitions: Vec<DeleteRecordsPartitionResult> [0..],
    }
}

kafka_struct! {
    /// The result for one partition.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteRecordsPartitionResult {
        pub partition_index: i32 [0..],
        /// The partition's log start offset after the deletion.
        pub low_watermark: i64 [0..],
        pub error_code: ErrorCode [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DecodeError, Reader, Writer};
    use bytes::Bytes;

    fn sample_request() -> DeleteRecordsRequest {
        DeleteRecordsRequest {
            topics: vec![
                DeleteRecordsTopic {
                    name: "orders".into(),
                    partitions: vec![
                        DeleteRecordsPartition {
                            partition_index: 0,
                            offset: 42,
                        },
                        DeleteRecordsPartition {
                            partition_index: 7,
                            offset: -1,
                        },
                    ],
                },
                DeleteRecordsTopic {
                    name: String::new(),
                    partitions: vec![],
                },
            ],
            timeout_ms: 30_000,
        }
    }

    fn sample_response() -> DeleteRecordsResponse {
        DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics: vec![
                DeleteRecordsTopicResult {
                    name: "orders".into(),
                    partitions: vec![
                        DeleteRecordsPartitionResult {
                            partition_index: 0,
                            low_watermark: 42,
                            error_code: ErrorCode::NONE,
                        },
                        DeleteRecordsPartitionResult {
                            partition_index: 7,
                            low_watermark: -1,
                            error_code: ErrorCode::OFFSET_OUT_OF_RANGE,
                        },
                    ],
                },
                DeleteRecordsTopicResult {
                    name: String::new(),
                    partitions: vec![],
                },
            ],
        }
    }

    fn encode_request(req: &DeleteRecordsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &DeleteRecordsResponse, version: i16) -> Bytes {
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
                DeleteRecordsRequest::decode(&mut r, version).unwrap(),
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
                DeleteRecordsResponse::decode(&mut r, version).unwrap(),
                resp,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v0_known_bytes() {
        let req = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: "t".into(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: 1,
                    offset: 256,
                }],
            }],
            timeout_ms: 1000,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 1,                 // topics: 1
            0, 1, b't',                 // name
            0, 0, 0, 1,                 // partitions: 1
            0, 0, 0, 1,                 // partition_index
            0, 0, 0, 0, 0, 0, 1, 0,     // offset 256
            0, 0, 0x03, 0xe8,           // timeout_ms
        ];
        assert_eq!(&encode_request(&req, 0)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DeleteRecordsRequest::decode(&mut r, 0).unwrap(), req);
    }

    #[test]
    fn response_v2_known_bytes() {
        let resp = DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics: vec![DeleteRecordsTopicResult {
                name: "t".into(),
                partitions: vec![DeleteRecordsPartitionResult {
                    partition_index: 0,
                    low_watermark: 5,
                    error_code: ErrorCode::NONE,
                }],
            }],
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,                 // throttle_time_ms
            2,                          // topics: compact 1
            2, b't',                    // name
            2,                          // partitions: compact 1
            0, 0, 0, 0,                 // partition_index
            0, 0, 0, 0, 0, 0, 0, 5,     // low_watermark
            0, 0,                       // error_code
            0,                          // partition tagged fields
            0,                          // topic tagged fields
            0,                          // tagged fields
        ];
        assert_eq!(&encode_response(&resp, 2)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DeleteRecordsResponse::decode(&mut r, 2).unwrap(), resp);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::truncations_fail(
                &req,
                version,
                DeleteRecordsRequest::decode,
            );
            let resp = encode_response(&sample_response(), version);
            crate::protocol::api::testkit::truncations_fail(
                &resp,
                version,
                DeleteRecordsResponse::decode,
            );
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DeleteRecordsRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DeleteRecordsResponse>(
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
            let _ = DeleteRecordsRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ = DeleteRecordsResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x6a09_e667_f3bc_c908_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_request(&sample_request(), 2),
            encode_response(&sample_response(), 0),
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
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            DeleteRecordsRequest::decode(&mut Reader::new(classic), 0),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0, 0]);
        assert!(matches!(
            DeleteRecordsRequest::decode(&mut Reader::new(compact), 2),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            DeleteRecordsResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(), 0);
        for version in [-1, 3] {
            let err = DeleteRecordsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 21, .. })
            ));
        }
    }
}
