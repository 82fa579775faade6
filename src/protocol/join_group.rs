//! JoinGroup (key 11), versions 0–9, flexible from 6 (Kafka 4.1 schema for v2+).
//!
//! The first call of the classic rebalance protocol: a member names its group, its session
//! and rebalance timeouts and the protocols (assignors) it supports with their metadata. The
//! coordinator answers once the rebalance completes: the leader gets every member's metadata,
//! followers an empty list. v0–1 were removed in Kafka 4.0 (KIP-896) but are still what old
//! clients send (Sarama 1.22 joins with v1), so they are served: v0 has no rebalance timeout
//! (the session timeout stands in, as in Kafka: [`JoinGroupRequest::decode_served`]), and
//! neither has the response's throttle time.

use super::codec::{kafka_api, kafka_struct, NullableFrom};
use super::wire::{DecodeResult, Reader};
use bytes::Bytes;

kafka_api!(key 11, versions 0..=9, flexible 6,
    JoinGroupRequest, JoinGroupResponse,
    oracle JoinGroupRequest, JoinGroupResponse from 2);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct JoinGroupRequest {
        pub group_id: String [0..],
        pub session_timeout_ms: i32 [0..],
        /// v1+; see [`JoinGroupRequest::decode_served`] for v0.
        pub rebalance_timeout_ms: i32 [1.., default -1],
        /// "" on the first join.
        pub member_id: String [0..],
        /// `None` for a dynamic member (static membership, KIP-345).
        pub group_instance_id: Option<String> [5..],
        pub protocol_type: String [0..],
        pub protocols: Vec<JoinGroupProtocol> [0..],
        pub reason: Option<String> [8..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct JoinGroupProtocol {
        pub name: String [0..],
        pub metadata: Bytes [0..],
    }
}

impl JoinGroupRequest {
    /// Decode the request as the coordinator reads it: at v0, which has no rebalance
    /// timeout, the session timeout stands in (as in Kafka).
    pub fn decode_served(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let mut req = Self::decode(r, version)?;
        if version < 1 {
            req.rebalance_timeout_ms = req.session_timeout_ms;
        }
        Ok(req)
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct JoinGroupResponse {
        pub throttle_time_ms: i32 [2..],
        pub error_code: i16 [0..],
        /// −1 on error.
        pub generation_id: i32 [0..],
        /// `None` on error.
        pub protocol_type: Option<String> [7..],
        /// Nullable from v7; before v7 `None` is written as "".
        pub protocol_name: Option<String> [0.., as NullableFrom<7>],
        pub leader: String [0..],
        pub skip_assignment: bool [9..],
        pub member_id: String [0..],
        /// Every member's metadata for the leader; empty for followers.
        pub members: Vec<JoinGroupMember> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct JoinGroupMember {
        pub member_id: String [0..],
        pub group_instance_id: Option<String> [5..],
        pub metadata: Bytes [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use kafka_protocol::messages as kp;

    /// v0 and v1 (removed in Kafka 4.0, so not in the oracle): known bytes. A v0 join has no
    /// rebalance timeout and the session timeout stands in; a v1 answer has no throttle time.
    #[test]
    fn v0_request_and_v1_response_known_bytes() {
        let mut v0 = vec![0, 1, b'g', 0, 0, 3, 232, 0, 0, 0, 1, b'c'];
        v0.extend_from_slice(&[0, 0, 0, 1, 0, 1, b'r', 0, 0, 0, 1, 7]);
        let got = decode_all(Bytes::from(v0.clone()), 0, JoinGroupRequest::decode_served);
        let got = got.unwrap();
        assert_eq!(
            (got.session_timeout_ms, got.rebalance_timeout_ms),
            (1000, 1000)
        );
        assert_eq!(
            (got.group_id.as_str(), got.protocol_type.as_str()),
            ("g", "c")
        );
        assert_eq!(got.protocols[0].metadata, Bytes::from_static(&[7]));
        assert_eq!(encode(&got, 0, JoinGroupRequest::encode), v0);

        let mut v1 = vec![0, 0, 0, 0, 0, 5, 0, 1, b'r', 0, 1, b'm', 0, 1, b'm'];
        v1.extend_from_slice(&[0, 0, 0, 1, 0, 1, b'm', 0, 0, 0, 0]);
        let got = decode_all(Bytes::from(v1.clone()), 1, JoinGroupResponse::decode).unwrap();
        assert_eq!(
            (got.generation_id, got.protocol_name.as_deref()),
            (5, Some("r"))
        );
        assert_eq!((got.leader.as_str(), got.members.len()), ("m", 1));
        assert_eq!(encode(&got, 1, JoinGroupResponse::encode), v1);
    }

    #[test]
    fn error_response_with_null_protocol_encodes_at_every_version() {
        let resp = JoinGroupResponse {
            error_code: 79,
            generation_id: -1,
            member_id: "consumer-1-abc".into(),
            ..JoinGroupResponse::default()
        };
        for v in MIN_VERSION..=MAX_VERSION {
            let b = encode(&resp, v, JoinGroupResponse::encode);
            if v >= 2 {
                oracle_agrees::<kp::JoinGroupResponse>(&b, v);
            }
            let got = decode_all(b, v, JoinGroupResponse::decode).unwrap();
            assert_eq!(got.error_code, 79);
            let name = if v >= 7 { None } else { Some("") };
            assert_eq!(got.protocol_name.as_deref(), name);
        }
    }
}
