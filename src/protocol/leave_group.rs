//! LeaveGroup (key 13), versions 0–5, flexible from 4 (Kafka 4.1 schema).
//!
//! v0–2 name one `member_id`; v3+ (KIP-345) batch `members`, each by member id and/or
//! group instance id, and answer per member. `reason` is v5+. Both shapes live in one struct;
//! [`LeaveGroupRequest::leaving`] gives the members whatever the version.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of LeaveGroup.
pub const API_KEY: i16 = 13;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 5;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 4;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    /// v0–2.
    pub member_id: String,
    /// v3+.
    pub members: Vec<MemberIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentity {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+.
    pub reason: Option<String>,
}

impl LeaveGroupRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let group_id = r.string(flex, "group_id")?;
        let member_id = if version <= 2 {
            r.string(flex, "member_id")?
        } else {
            String::new()
        };
        let members = if version >= 3 {
            r.array(flex, 2, "members", |r| {
                let member_id = r.string(flex, "member_id")?;
                let group_instance_id = r.nullable_string(flex, "group_instance_id")?;
                let reason = if version >= 5 {
                    r.nullable_string(flex, "reason")?
                } else {
                    None
                };
                r.tags_if(flex)?;
                Ok(MemberIdentity {
                    member_id,
                    group_instance_id,
                    reason,
                })
            })?
        } else {
            Vec::new()
        };
        r.tags_if(flex)?;
        Ok(LeaveGroupRequest {
            group_id,
            member_id,
            members,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.string(&self.group_id, flex);
        if version <= 2 {
            w.string(&self.member_id, flex);
        } else {
            w.array(&self.members, flex, |w, m| {
                w.string(&m.member_id, flex);
                w.nullable_string(m.group_instance_id.as_deref(), flex);
                if version >= 5 {
                    w.nullable_string(m.reason.as_deref(), flex);
                }
                w.tags_if(flex);
            });
        }
        w.tags_if(flex);
    }

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    /// v1+.
    pub throttle_time_ms: i32,
    pub error_code: i16,
    /// v3+.
    pub members: Vec<MemberResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

impl LeaveGroupResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        w.i16(self.error_code);
        if version >= 3 {
            w.array(&self.members, flex, |w, m| {
                w.string(&m.member_id, flex);
                w.nullable_string(m.group_instance_id.as_deref(), flex);
                w.i16(m.error_code);
                w.tags_if(flex);
            });
        }
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = r.i16("error_code")?;
        let members = if version >= 3 {
            r.array(flex, 4, "members", |r| {
                let member_id = r.string(flex, "member_id")?;
                let group_instance_id = r.nullable_string(flex, "group_instance_id")?;
                let error_code = r.i16("error_code")?;
                r.tags_if(flex)?;
                Ok(MemberResponse {
                    member_id,
                    group_instance_id,
                    error_code,
                })
            })?
        } else {
            Vec::new()
        };
        r.tags_if(flex)?;
        Ok(LeaveGroupResponse {
            throttle_time_ms,
            error_code,
            members,
        })
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
