//! DescribeCluster (key 60), versions 0–2, flexible at every version. Schema: Kafka 4.1
//! `DescribeClusterRequest.json` / `DescribeClusterResponse.json`, plus three ringmq tagged
//! fields per broker.
//!
//! Version quirks:
//! * Flexible from v0: compact strings and arrays, and a tagged-field section on every
//!   struct, always.
//! * v1 adds `endpoint_type` (default 1 = brokers, 2 = controllers) to both request and
//!   response, and makes MISMATCHED_ENDPOINT_TYPE / UNSUPPORTED_ENDPOINT_TYPE valid errors.
//! * v2 (KIP-1073) adds `include_fenced_brokers` to the request and `is_fenced` per broker:
//!   with it, registered brokers that are down are listed too.
//! * ringmq's own tagged fields per broker (tags 10000..=10002, far from Kafka's, so any
//!   other client skips them as KIP-482 says): the node's gossip state, its RPC address and
//!   its role in the controller group. `ringmq cluster info` reads them; Kafka's
//!   DescribeCluster has no place for suspicion or the controller's voters and learners.
//!
//! `cluster_authorized_operations` defaults to `i32::MIN` ("not requested"). Fields a
//! version does not carry decode to their defaults and are not encoded.

use super::codec::{kafka_api, kafka_struct};
use super::ErrorCode;

kafka_api!(key 60, versions 0..=2, flexible 0,
    DescribeClusterRequest, DescribeClusterResponse,
    oracle DescribeClusterRequest, DescribeClusterResponse from 0);

/// `endpoint_type` of brokers (the default).
pub const ENDPOINT_TYPE_BROKERS: i8 = 1;
/// `endpoint_type` of controllers.
pub const ENDPOINT_TYPE_CONTROLLERS: i8 = 2;
/// `cluster_authorized_operations` when they were not requested.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// `ringmq_state` values: the node's gossip state as the answering node sees it.
pub const NODE_STATE_UNKNOWN: i8 = -1;
pub const NODE_STATE_ALIVE: i8 = 0;
pub const NODE_STATE_SUSPECT: i8 = 1;
pub const NODE_STATE_DEAD: i8 = 2;
/// `ringmq_controller_role` values: the node's part in the controller group.
pub const CONTROLLER_ROLE_NONE: i8 = -1;
pub const CONTROLLER_ROLE_LEADER: i8 = 0;
pub const CONTROLLER_ROLE_VOTER: i8 = 1;
pub const CONTROLLER_ROLE_OBSERVER: i8 = 2;

kafka_struct! {
    /// DescribeCluster request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeClusterRequest {
        pub include_cluster_authorized_operations: bool [0..],
        pub endpoint_type: i8 [1.., default ENDPOINT_TYPE_BROKERS],
        pub include_fenced_brokers: bool [2..],
    }
}

kafka_struct! {
    /// DescribeCluster response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeClusterResponse {
        pub throttle_time_ms: i32 [0..],
        pub error_code: ErrorCode [0..],
        pub error_message: Option<String> [0..],
        pub endpoint_type: i8 [1.., default ENDPOINT_TYPE_BROKERS],
        pub cluster_id: String [0..],
        /// -1 if unknown.
        pub controller_id: i32 [0.., default -1],
        pub brokers: Vec<DescribeClusterBroker> [0..],
        /// Bitfield, or [`AUTHORIZED_OPERATIONS_OMITTED`].
        pub cluster_authorized_operations: i32 [0.., default AUTHORIZED_OPERATIONS_OMITTED],
    }
}

kafka_struct! {
    /// One broker of the cluster.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeClusterBroker {
        pub broker_id: i32 [0..],
        pub host: String [0..],
        pub port: i32 [0..],
        pub rack: Option<String> [0..],
        pub is_fenced: bool [2..],
        /// ringmq: [`NODE_STATE_ALIVE`], [`NODE_STATE_SUSPECT`] or [`NODE_STATE_DEAD`].
        pub ringmq_state: i8 [0.., default NODE_STATE_UNKNOWN, tag 10000],
        /// ringmq: `HOST:PORT` of the node's RPC transport ("": not told).
        pub ringmq_rpc: String [0.., tag 10001],
        /// ringmq: [`CONTROLLER_ROLE_LEADER`], `_VOTER` or `_OBSERVER`.
        pub ringmq_controller_role: i8 [0.., default CONTROLLER_ROLE_NONE, tag 10002],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DecodeError, Reader, Writer};
    use bytes::Bytes;

    fn sample_request(version: i16) -> DescribeClusterRequest {
        DescribeClusterRequest {
            include_cluster_authorized_operations: true,
            endpoint_type: if version >= 1 {
                ENDPOINT_TYPE_CONTROLLERS
            } else {
                ENDPOINT_TYPE_BROKERS
            },
            include_fenced_brokers: version >= 2,
        }
    }

    fn sample_response(version: i16) -> DescribeClusterResponse {
        DescribeClusterResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            error_message: None,
            endpoint_type: if version >= 1 {
                ENDPOINT_TYPE_CONTROLLERS
            } else {
                ENDPOINT_TYPE_BROKERS
            },
            cluster_id: "ringmq-cluster".into(),
            controller_id: 1,
            brokers: vec![
                DescribeClusterBroker {
                    broker_id: 1,
                    host: "10.0.0.1".into(),
                    port: 9092,
                    rack: Some("rack-a".into()),
                    is_fenced: version >= 2,
                    ringmq_state: NODE_STATE_DEAD,
                    ringmq_rpc: "10.0.0.1:33145".into(),
                    ringmq_controller_role: CONTROLLER_ROLE_OBSERVER,
                },
                DescribeClusterBroker {
                    broker_id: 2,
                    host: String::new(),
                    port: 9093,
                    rack: None,
                    ..Default::default()
                },
            ],
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }

    fn encode_request(req: &DescribeClusterRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &DescribeClusterResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = sample_request(version);
            let mut r = Reader::new(encode_request(&req, version));
            let decoded = DescribeClusterRequest::decode(&mut r, version).unwrap();
            assert_eq!(decoded, req, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response(version);
            let mut r = Reader::new(encode_response(&resp, version));
            let decoded = DescribeClusterResponse::decode(&mut r, version).unwrap();
            assert_eq!(decoded, resp, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_known_bytes() {
        let req = DescribeClusterRequest {
            include_cluster_authorized_operations: false,
            endpoint_type: ENDPOINT_TYPE_BROKERS,
            include_fenced_brokers: false,
        };
        assert_eq!(&encode_request(&req, 0)[..], &[0, 0]);
        assert_eq!(&encode_request(&req, 1)[..], &[0, 1, 0]);
    }

    #[test]
    fn response_v1_known_bytes() {
        let resp = DescribeClusterResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            error_message: None,
            endpoint_type: ENDPOINT_TYPE_BROKERS,
            cluster_id: "c".into(),
            controller_id: -1,
            brokers: vec![DescribeClusterBroker {
                broker_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
                ..Default::default()
            }],
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,             // throttle_time_ms
            0, 0,                   // error_code
            0,                      // error_message: null
            1,                      // endpoint_type: brokers
            2, b'c',                // cluster_id
            0xff, 0xff, 0xff, 0xff, // controller_id: -1
            2,                      // brokers: compact 1
            0, 0, 0, 1,             // broker_id
            2, b'h',                // host
            0, 0, 0x23, 0x84,       // port 9092
            0,                      // rack: null
            0,                      // broker tagged fields
            0x80, 0, 0, 0,          // cluster_authorized_operations: i32::MIN
            0,                      // tagged fields
        ];
        assert_eq!(&encode_response(&resp, 1)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DescribeClusterResponse::decode(&mut r, 1).unwrap(), resp);
    }

    #[test]
    fn ringmq_fields_are_tagged_fields() {
        let resp = DescribeClusterResponse {
            cluster_id: "c".into(),
            brokers: vec![DescribeClusterBroker {
                broker_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
                is_fenced: true,
                ringmq_state: NODE_STATE_ALIVE,
                ringmq_rpc: "r".into(),
                ringmq_controller_role: CONTROLLER_ROLE_LEADER,
            }],
            ..Default::default()
        };
        #[rustfmt::skip]
        let broker: &[u8] = &[
            2,                      // brokers: compact 1
            0, 0, 0, 1, 2, b'h',    // broker_id, host
            0, 0, 0x23, 0x84, 0, 1, // port, rack: null, is_fenced
            3,                      // 3 tagged fields
            0x90, 0x4e, 1, 0,       // tag 10000, 1 byte: alive
            0x91, 0x4e, 2, 2, b'r', // tag 10001, 2 bytes: "r"
            0x92, 0x4e, 1, 0,       // tag 10002, 1 byte: leader
        ];
        let bytes = encode_response(&resp, 2);
        assert!(
            bytes.windows(broker.len()).any(|w| w == broker),
            "{bytes:?}"
        );
        let mut r = Reader::new(bytes);
        assert_eq!(DescribeClusterResponse::decode(&mut r, 2).unwrap(), resp);
        // Defaults are not sent: a broker without them has an empty tag section.
        let plain = DescribeClusterBroker::default();
        assert_eq!(plain.ringmq_state, NODE_STATE_UNKNOWN);
        assert_eq!(plain.ringmq_controller_role, CONTROLLER_ROLE_NONE);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(version), version);
            for len in 0..req.len() {
                let mut r = Reader::new(req.slice(..len));
                let result = DescribeClusterRequest::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
            let resp = encode_response(&sample_response(version), version);
            for len in 0..resp.len() {
                let mut r = Reader::new(resp.slice(..len));
                let result = DescribeClusterResponse::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(version), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DescribeClusterRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(version), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DescribeClusterResponse>(
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
            let _ = DescribeClusterRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ = DescribeClusterResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x5851_f42d_4c95_7f2d_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_response(&sample_response(0), 0),
            encode_response(&sample_response(1), 1),
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
    fn huge_broker_count_is_an_error() {
        #[rustfmt::skip]
        let resp = Bytes::from_static(&[
            0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0,  // up to controller_id (v1)
            0x80, 0x80, 0x80, 0x80, 0x08,           // brokers: 2^31 - 1
            0, 0, 0, 0, 0,
        ]);
        assert!(matches!(
            DescribeClusterResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
        // A tagged-field section claiming 2^31 - 1 fields in a tiny request.
        let req = Bytes::from_static(&[0, 0x80, 0x80, 0x80, 0x80, 0x08]);
        assert!(matches!(
            DescribeClusterRequest::decode(&mut Reader::new(req), 0),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        // include_cluster_authorized_operations, endpoint_type, 1 tagged field: tag 9, 2 bytes.
        let req = Bytes::from_static(&[1, 2, 1, 9, 2, 0xaa, 0xbb]);
        let mut r = Reader::new(req);
        let decoded = DescribeClusterRequest::decode(&mut r, 1).unwrap();
        assert_eq!(decoded, sample_request(1));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(0), 0);
        for version in [-1, 3] {
            let err = DescribeClusterRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 60, .. })
            ));
        }
    }
}
