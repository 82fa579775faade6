//! DescribeGroups (key 15), versions 0–5, flexible from 5 (Kafka 4.1 schema).
//!
//! State, protocol and members (with their metadata and assignment bytes) of each named
//! group. v6 (`error_message`, KIP-1043) is not served.

use super::codec::{kafka_api, kafka_struct};
use bytes::Bytes;

kafka_api!(key 15, versions 0..=5, flexible 5,
    DescribeGroupsRequest, DescribeGroupsResponse,
    oracle DescribeGroupsRequest, DescribeGroupsResponse from 0);

/// `authorized_operations` when they were not asked for (Kafka's INT32_MIN sentinel).
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeGroupsRequest {
        pub groups: Vec<String> [0..],
        pub include_authorized_operations: bool [3..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeGroupsResponse {
        pub throttle_time_ms: i32 [1..],
        pub groups: Vec<DescribedGroup> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribedGroup {
        pub error_code: i16 [0..],
        pub group_id: String [0..],
        /// "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead".
        pub group_state: String [0..],
        pub protocol_type: String [0..],
        /// The selected protocol (assignor) name, "" while rebalancing.
        pub protocol_data: String [0..],
        pub members: Vec<DescribedGroupMember> [0..],
        pub authorized_operations: i32 [3.., default AUTHORIZED_OPERATIONS_OMITTED],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribedGroupMember {
        pub member_id: String [0..],
        pub group_instance_id: Option<String> [4..],
        pub client_id: String [0..],
        pub client_host: String [0..],
        pub member_metadata: Bytes [0..],
        pub member_assignment: Bytes [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use kafka_protocol::messages as kp;

    fn sample_request() -> DescribeGroupsRequest {
        DescribeGroupsRequest {
            groups: vec!["payments".into(), "audit".into()],
            include_authorized_operations: true,
        }
    }

    fn sample_response() -> DescribeGroupsResponse {
        DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![
                DescribedGroup {
                    error_code: 0,
                    group_id: "payments".into(),
                    group_state: "Stable".into(),
                    protocol_type: "consumer".into(),
                    protocol_data: "range".into(),
                    members: vec![DescribedGroupMember {
                        member_id: "m-1".into(),
                        group_instance_id: Some("host-a".into()),
                        client_id: "rdkafka".into(),
                        client_host: "/127.0.0.1".into(),
                        member_metadata: Bytes::from_static(b"md"),
                        member_assignment: Bytes::from_static(b"as"),
                    }],
                    authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                },
                DescribedGroup {
                    error_code: 69,
                    group_id: "audit".into(),
                    group_state: "Dead".into(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    members: Vec::new(),
                    authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                },
            ],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                DescribeGroupsRequest::encode,
                DescribeGroupsRequest::decode,
            );
            assert_eq!(got.groups, sample_request().groups);
            assert_eq!(got.include_authorized_operations, v >= 3);
            truncations_fail(&b, v, DescribeGroupsRequest::decode);
            oracle_agrees::<kp::DescribeGroupsRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                DescribeGroupsResponse::encode,
                DescribeGroupsResponse::decode,
            );
            assert_eq!(
                got.groups[0].members[0].member_assignment,
                Bytes::from_static(b"as")
            );
            assert_eq!(got.groups[0].members[0].group_instance_id.is_some(), v >= 4);
            if v >= 4 {
                assert_eq!(got, sample_response());
            }
            truncations_fail(&b, v, DescribeGroupsResponse::decode);
            oracle_agrees::<kp::DescribeGroupsResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [0, 3, 5]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, DescribeGroupsRequest::encode),
                    encode(&sample_response(), v, DescribeGroupsResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            DescribeGroupsRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            DescribeGroupsResponse::decode,
            2000,
        );
    }
}
