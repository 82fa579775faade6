//! LeaveGroup (key 13), versions 0–5, flexible from 4 (Kafka 4.1 schema).
//!
//! v0–2 name one `member_id`; v3+ (KIP-345) batch `members`, each by member id and/or
//! group instance id, and answer per member. `reason` is v5+. Both shapes live in one struct;
//! [`LeaveGroupRequest::leaving`] gives the members whatever the version.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 13, versions 0..=5, flexible 4,
    LeaveGroupRequest, LeaveGroupResponse, oracle LeaveGroupRequest, LeaveGroupResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LeaveGroupRequest {
        pub group_id: String [0..],
        pub member_id: String [0..=2],
        pub members: Vec<MemberIdentity> [3..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MemberIdentity {
        pub member_id: String [0..],
        pub group_instance_id: Option<String> [0..],
        pub reason: Option<String> [5..],
    }
}

impl LeaveGroupRequest {
    /// The leaving members whatever the version: one dynamic member before v3.
    pub fn leaving(&self, version: i16) -> Vec<MemberIdentity> {
        if version >= 3 {
            return self.members.clone();
        }
        vec![MemberIdentity {
            member_id: self.member_id.clone(),
            group_instance_id: None,
            reason: None,
        }]
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LeaveGroupResponse {
        pub throttle_time_ms: i32 [1..],
        pub error_code: i16 [0..],
        pub members: Vec<MemberResponse> [3..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MemberResponse {
        pub member_id: String [0..],
        pub group_instance_id: Option<String> [0..],
        pub error_code: i16 [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> LeaveGroupRequest {
        LeaveGroupRequest {
            group_id: "payments".into(),
            member_id: "m-1".into(),
            members: vec![
                MemberIdentity {
                    member_id: "m-1".into(),
                    group_instance_id: None,
                    reason: Some("bye".into()),
                },
                MemberIdentity {
                    member_id: String::new(),
                    group_instance_id: Some("host-b".into()),
                    reason: None,
                },
            ],
        }
    }

    fn sample_response() -> LeaveGroupResponse {
        LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            members: vec![MemberResponse {
                member_id: "m-1".into(),
                group_instance_id: None,
                error_code: 25,
            }],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                LeaveGroupRequest::encode,
                LeaveGroupRequest::decode,
            );
            if v <= 2 {
                assert_eq!(got.leaving(v).len(), 1);
                assert_eq!(got.leaving(v)[0].member_id, "m-1");
            } else {
                assert_eq!(got.leaving(v).len(), 2);
                assert_eq!(got.members[1].group_instance_id.as_deref(), Some("host-b"));
                assert_eq!(got.members[0].reason.is_some(), v >= 5);
            }
            truncations_fail(&b, v, LeaveGroupRequest::decode);
            oracle_agrees::<kp::LeaveGroupRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                LeaveGroupResponse::encode,
                LeaveGroupResponse::decode,
            );
            assert_eq!(got.members.len(), if v >= 3 { 1 } else { 0 });
            truncations_fail(&b, v, LeaveGroupResponse::decode);
            oracle_agrees::<kp::LeaveGroupResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [0, 3, 4, 5]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, LeaveGroupRequest::encode),
                    encode(&sample_response(), v, LeaveGroupResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            LeaveGroupRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            LeaveGroupResponse::decode,
            2000,
        );
    }
}
