//! DeleteTopics (key 20), versions 1–6, flexible from 4. Schema: Kafka 4.1
//! `DeleteTopicsRequest.json` / `DeleteTopicsResponse.json`.
//!
//! Version quirks:
//! * v0 was removed in Kafka 4.0; v1–3 are identical.
//! * v5 adds a nullable `error_message` per result (and THROTTLING_QUOTA_EXCEEDED).
//! * v6 replaces the `topic_names` string array with `topics[name nullable, topic_id]`, so a
//!   topic can be deleted by ID alone; in the response `name` becomes nullable and
//!   `topic_id` appears. In the request the new array comes *before* `timeout_ms`, exactly
//!   where `topic_names` used to be.
//!
//! The request keeps both shapes as Kafka does: `topic_names` is used by v1–5 and `topics`
//! by v6; the field a version does not carry decodes empty and is not encoded. A response
//! `name` of `None` is written as an empty string before v6 (it is not nullable there).

use super::codec::{kafka_api, kafka_struct, NullableFrom};
use super::ErrorCode;

kafka_api!(key 20, versions 1..=6, flexible 4,
    DeleteTopicsRequest, DeleteTopicsResponse,
    oracle DeleteTopicsRequest, DeleteTopicsResponse from 1);

kafka_struct! {
    /// DeleteTopics request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteTopicsRequest {
        /// The topics, by name or by ID.
        pub topics: Vec<DeleteTopicState> [6..],
        /// The names of the topics to delete.
        pub topic_names: Vec<String> [1..=5],
        pub timeout_ms: i32 [0..],
    }
}

kafka_struct! {
    /// One topic to delete (v6+): by name, or by ID when `name` is null.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteTopicState {
        pub name: Option<String> [0..],
        pub topic_id: [u8; 16] [0..],
    }
}

kafka_struct! {
    /// DeleteTopics response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteTopicsResponse {
        pub throttle_time_ms: i32 [0..],
        pub responses: Vec<DeletableTopicResult> [0..],
    }
}

kafka_struct! {
    /// The result for one topic.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeletableTopicResult {
        /// Nullable from v6 (a topic asked for by an unknown ID).
        pub name: Option<String> [0.., as NullableFrom<6>],
        /// All zero before v6.
        pub topic_id: [u8; 16] [6..],
        pub error_code: ErrorCode [0..],
        pub error_message: Option<String> [5..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DecodeError, Reader, Writer};
    use bytes::Bytes;

    fn sample_request(version: i16) -> DeleteTopicsRequest {
        if version >= 6 {
            DeleteTopicsRequest {
                topics: vec![
                    DeleteTopicState {
                        name: Some("orders".into()),
                        topic_id: [0; 16],
                    },
                    DeleteTopicState {
                        name: None,
                        topic_id: [9; 16],
                    },
                ],
                topic_names: vec![],
                timeout_ms: 30_000,
            }
        } else {
            DeleteTopicsRequest {
                topics: vec![],
                topic_names: vec!["orders".into(), String::new()],
                timeout_ms: 30_000,
            }
        }
    }

    fn sample_response(version: i16) -> DeleteTopicsResponse {
        let id = |b| if version >= 6 { [b; 16] } else { [0; 16] };
        let message = |m: &str| {
            if version >= 5 {
                Some(m.to_owned())
            } else {
                None
            }
        };
        DeleteTopicsResponse {
            throttle_time_ms: 5,
            responses: vec![
                DeletableTopicResult {
                    name: Some("orders".into()),
                    topic_id: id(1),
                    error_code: ErrorCode::NONE,
                    error_message: None,
                },
                DeletableTopicResult {
                    name: if version >= 6 {
                        None
                    } else {
                        Some(String::new())
                    },
                    topic_id: id(2),
                    error_code: ErrorCode::UNKNOWN_TOPIC_ID,
                    error_message: message("no such topic"),
                },
            ],
        }
    }

    fn encode_request(req: &DeleteTopicsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &DeleteTopicsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = sample_request(version);
            let mut r = Reader::new(encode_request(&req, version));
            assert_eq!(
                DeleteTopicsRequest::decode(&mut r, version).unwrap(),
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
                DeleteTopicsResponse::decode(&mut r, version).unwrap(),
                resp,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v6_known_bytes() {
        let req = DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: None,
                topic_id: [0xab; 16],
            }],
            topic_names: vec![],
            timeout_ms: 1000,
        };
        let mut expected = vec![2u8, 0]; // topics: compact 1; name: null
        expected.extend_from_slice(&[0xab; 16]); // topic_id
        expected.push(0); // topic tagged fields
        expected.extend_from_slice(&[0, 0, 0x03, 0xe8, 0]); // timeout_ms, tagged fields
        assert_eq!(&encode_request(&req, 6)[..], &expected[..]);
        let mut r = Reader::new(Bytes::from(expected));
        assert_eq!(DeleteTopicsRequest::decode(&mut r, 6).unwrap(), req);
    }

    #[test]
    fn response_v1_known_bytes() {
        let resp = DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses: vec![DeletableTopicResult {
                name: Some("t".into()),
                topic_id: [0; 16],
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                error_message: None,
            }],
        };
        let expected: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 3];
        assert_eq!(&encode_response(&resp, 1)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DeleteTopicsResponse::decode(&mut r, 1).unwrap(), resp);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(version), version);
            crate::protocol::api::testkit::truncations_fail(
                &req,
                version,
                DeleteTopicsRequest::decode,
            );
            let resp = encode_response(&sample_response(version), version);
            crate::protocol::api::testkit::truncations_fail(
                &resp,
                version,
                DeleteTopicsResponse::decode,
            );
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(version), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DeleteTopicsRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(version), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DeleteTopicsResponse>(
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
            let _ = DeleteTopicsRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ = DeleteTopicsResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_request(&sample_request(6), 6),
            encode_response(&sample_response(5), 5),
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
            DeleteTopicsRequest::decode(&mut Reader::new(classic), 1),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0, 0]);
        assert!(matches!(
            DeleteTopicsRequest::decode(&mut Reader::new(compact.clone()), 4),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(matches!(
            DeleteTopicsRequest::decode(&mut Reader::new(compact), 6),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            DeleteTopicsResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(1), 1);
        for version in [0, 7] {
            let err = DeleteTopicsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 20, .. })
            ));
        }
    }
}
