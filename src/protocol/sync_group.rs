//! SyncGroup (key 14), versions 0–5, flexible from 4 (Kafka 4.1 schema).
//!
//! The second call of the classic rebalance protocol: the leader sends every member's
//! assignment, followers send none; each gets its own assignment back once the leader's has
//! arrived.

use super::codec::{kafka_api, kafka_struct};
use bytes::Bytes;

kafka_api!(key 14, versions 0..=5, flexible 4,
    SyncGroupRequest, SyncGroupResponse, oracle SyncGroupRequest, SyncGroupResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SyncGroupRequest {
        pub group_id: String [0..],
        pub generation_id: i32 [0..],
        pub member_id: String [0..],
        pub group_instance_id: Option<String> [3..],
        pub protocol_type: Option<String> [5..],
        pub protocol_name: Option<String> [5..],
        /// Sent by the leader only.
        pub assignments: Vec<SyncGroupAssignment> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SyncGroupAssignment {
        pub member_id: String [0..],
        pub assignment: Bytes [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SyncGroupResponse {
        pub throttle_time_ms: i32 [1..],
        pub error_code: i16 [0..],
        pub protocol_type: Option<String> [5..],
        pub protocol_name: Option<String> [5..],
        pub assignment: Bytes [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use kafka_protocol::messages as kp;

    fn sample_request() -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: "payments".into(),
            generation_id: 3,
            member_id: "m-1".into(),
            group_instance_id: Some("host-a".into()),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![
                SyncGroupAssignment {
                    member_id: "m-1".into(),
                    assignment: Bytes::from_static(b"a1"),
                },
                SyncGroupAssignment {
                    member_id: "m-2".into(),
                    assignment: Bytes::from_static(b"a2"),
                },
            ],
        }
    }

    fn sample_response() -> SyncGroupResponse {
        SyncGroupResponse {
            throttle_time_ms: 5,
            error_code: 0,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"\x00\x01assignment"),
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                SyncGroupRequest::encode,
                SyncGroupRequest::decode,
            );
            assert_eq!(got.assignments, sample_request().assignments);
            assert_eq!(got.group_instance_id.is_some(), v >= 3);
            if v >= 5 {
                assert_eq!(got, sample_request());
            }
            truncations_fail(&b, v, SyncGroupRequest::decode);
            oracle_agrees::<kp::SyncGroupRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                SyncGroupResponse::encode,
                SyncGroupResponse::decode,
            );
            assert_eq!(got.assignment, sample_response().assignment);
            if v >= 5 {
                assert_eq!(got, sample_response());
            }
            truncations_fail(&b, v, SyncGroupResponse::decode);
            oracle_agrees::<kp::SyncGroupResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [0, 3, 4, 5]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, SyncGroupRequest::encode),
                    encode(&sample_response(), v, SyncGroupResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            SyncGroupRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            SyncGroupResponse::decode,
            2000,
        );
    }
}
