//! JoinGroup (key 11), versions 0–9, flexible from 6 (Kafka 4.1 schema for v2+).
//!
//! The first call of the classic rebalance protocol: a member names its group, its session
//! and rebalance timeouts and the protocols (assignors) it supports with their metadata. The
//! coordinator answers once the rebalance completes: the leader gets every member's metadata,
//! followers an empty list. v0–1 were removed in Kafka 4.0 (KIP-896) but are still what old
//! clients send (Sarama 1.22 joins with v1), so they are served: v0 has no rebalance timeout
//! (the session timeout stands in, as in Kafka), and neither has the response's throttle time.
//! Version notes: `group_instance_id` v5+ (static membership, KIP-345), `reason` v8+,
//! response `protocol_type` v7+, `skip_assignment` v9.

use super::wire::{check_version, DecodeResult, Reader, Writer};
use bytes::Bytes;

/// Kafka API key of JoinGroup.
pub const API_KEY: i16 = 11;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Lowest version the Kafka 4.1 schemas (the test oracle) still know.
#[cfg(test)]
const ORACLE_MIN_VERSION: i16 = 2;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 9;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 6;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v1+ (always present in served versions).
    pub rebalance_timeout_ms: i32,
    /// "" on the first join.
    pub member_id: String,
    /// v5+; `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<JoinGroupProtocol>,
    /// v8+.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupProtocol {
    pub name: String,
    pub metadata: Bytes,
}

impl JoinGroupRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let group_id = r.string(flex, "group_id")?;
        let session_timeout_ms = r.i32("session_timeout_ms")?;
        let rebalance_timeout_ms = if version >= 1 {
            r.i32("rebalance_timeout_ms")?
        } else {
            session_timeout_ms
        };
        let member_id = r.string(flex, "member_id")?;
        let group_instance_id = if version >= 5 {
            r.nullable_string(flex, "group_instance_id")?
        } else {
            None
        };
        let protocol_type = r.string(flex, "protocol_type")?;
        let protocols = r.array(flex, 2, "protocols", |r| {
            let name = r.string(flex, "name")?;
            let metadata = r.bytes(flex, "metadata")?;
            r.tags_if(flex)?;
            Ok(JoinGroupProtocol { name, metadata })
        })?;
        let reason = if version >= 8 {
            r.nullable_string(flex, "reason")?
        } else {
            None
        };
        r.tags_if(flex)?;
        Ok(JoinGroupRequest {
            group_id,
            session_timeout_ms,
            rebalance_timeout_ms,
            member_id,
            group_instance_id,
            protocol_type,
            protocols,
            reason,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.string(&self.group_id, flex);
        w.i32(self.session_timeout_ms);
        if version >= 1 {
            w.i32(self.rebalance_timeout_ms);
        }
        w.string(&self.member_id, flex);
        if version >= 5 {
            w.nullable_string(self.group_instance_id.as_deref(), flex);
        }
        w.string(&self.protocol_type, flex);
        w.array(&self.protocols, flex, |w, p| {
            w.string(&p.name, flex);
            w.bytes(&p.metadata, flex);
            w.tags_if(flex);
        });
        if version >= 8 {
            w.nullable_string(self.reason.as_deref(), flex);
        }
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    /// −1 on error.
    pub generation_id: i32,
    /// v7+; `None` on error.
    pub protocol_type: Option<String>,
    /// Nullable from v7; before v7 `None` is written as "".
    pub protocol_name: Option<String>,
    pub leader: String,
    /// v9+.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member's metadata for the leader; empty for followers.
    pub members: Vec<JoinGroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    pub member_id: String,
    /// v5+.
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

impl JoinGroupResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 2 {
            w.i32(self.throttle_time_ms);
        }
        w.i16(self.error_code);
        w.i32(self.generation_id);
        if version >= 7 {
            w.nullable_string(self.protocol_type.as_deref(), flex);
            w.nullable_string(self.protocol_name.as_deref(), flex);
        } else {
            w.string(self.protocol_name.as_deref().unwrap_or(""), flex);
        }
        w.string(&self.leader, flex);
        if version >= 9 {
            w.bool(self.skip_assignment);
        }
        w.string(&self.member_id, flex);
        w.array(&self.members, flex, |w, m| {
            w.string(&m.member_id, flex);
            if version >= 5 {
                w.nullable_string(m.group_instance_id.as_deref(), flex);
            }
            w.bytes(&m.metadata, flex);
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let throttle_time_ms = if version >= 2 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = r.i16("error_code")?;
        let generation_id = r.i32("generation_id")?;
        let (protocol_type, protocol_name) = if version >= 7 {
            (
                r.nullable_string(flex, "protocol_type")?,
                r.nullable_string(flex, "protocol_name")?,
            )
        } else {
            (None, Some(r.string(flex, "protocol_name")?))
        };
        let leader = r.string(flex, "leader")?;
        let skip_assignment = if version >= 9 {
            r.bool("skip_assignment")?
        } else {
            false
        };
        let member_id = r.string(flex, "member_id")?;
        let members = r.array(flex, 2, "members", |r| {
            let member_id = r.string(flex, "member_id")?;
            let group_instance_id = if version >= 5 {
                r.nullable_string(flex, "group_instance_id")?
            } else {
                None
            };
            let metadata = r.bytes(flex, "metadata")?;
            r.tags_if(flex)?;
            Ok(JoinGroupMember {
                member_id,
                group_instance_id,
                metadata,
            })
        })?;
        r.tags_if(flex)?;
        Ok(JoinGroupResponse {
            throttle_time_ms,
            error_code,
            generation_id,
            protocol_type,
            protocol_name,
            leader,
            skip_assignment,
            member_id,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use kafka_protocol::messages as kp;

    fn sample_request() -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: "payments".into(),
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            member_id: "consumer-1-abc".into(),
            group_instance_id: Some("host-a".into()),
            protocol_type: "consumer".into(),
            protocols: vec![
                JoinGroupProtocol {
                    name: "range".into(),
                    metadata: Bytes::from_static(b"\x00\x01meta"),
                },
                JoinGroupProtocol {
                    name: "cooperative-sticky".into(),
                    metadata: Bytes::new(),
                },
            ],
            reason: Some("rejoin".into()),
        }
    }

    fn sample_response() -> JoinGroupResponse {
        JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            generation_id: 7,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "consumer-1-abc".into(),
            skip_assignment: false,
            member_id: "consumer-1-abc".into(),
            members: vec![JoinGroupMember {
                member_id: "consumer-1-abc".into(),
                group_instance_id: Some("host-a".into()),
                metadata: Bytes::from_static(b"md"),
            }],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                JoinGroupRequest::encode,
                JoinGroupRequest::decode,
            );
            assert_eq!(got.protocols, sample_request().protocols);
            assert_eq!(got.group_instance_id.is_some(), v >= 5);
            assert_eq!(got.reason.is_some(), v >= 8);
            if v >= 8 {
                assert_eq!(got, sample_request());
            }
            truncations_fail(&b, v, JoinGroupRequest::decode);
            if v >= ORACLE_MIN_VERSION {
                oracle_agrees::<kp::JoinGroupRequest>(&b, v);
            }
            if v == 0 {
                assert_eq!(
                    got.rebalance_timeout_ms,
                    sample_request().session_timeout_ms
                );
            }

            let (got, b) = round_trip(
                &sample_response(),
                v,
                JoinGroupResponse::encode,
                JoinGroupResponse::decode,
            );
            assert_eq!(got.generation_id, 7);
            assert_eq!(got.protocol_name.as_deref(), Some("range"));
            if v >= 7 {
                assert_eq!(got, sample_response());
            }
            truncations_fail(&b, v, JoinGroupResponse::decode);
            if v >= ORACLE_MIN_VERSION {
                oracle_agrees::<kp::JoinGroupResponse>(&b, v);
            }
        }
    }

    #[test]
    fn error_response_with_null_protocol_encodes_at_every_version() {
        let resp = JoinGroupResponse {
            error_code: 79,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            members: Vec::new(),
            ..sample_response()
        };
        for v in MIN_VERSION..=MAX_VERSION {
            let b = encode(&resp, v, JoinGroupResponse::encode);
            if v >= ORACLE_MIN_VERSION {
                oracle_agrees::<kp::JoinGroupResponse>(&b, v);
            }
            let got = decode_all(b, v, JoinGroupResponse::decode).unwrap();
            assert_eq!(got.error_code, 79);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [0, 1, 2, 5, 6, 9]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, JoinGroupRequest::encode),
                    encode(&sample_response(), v, JoinGroupResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            JoinGroupRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            JoinGroupResponse::decode,
            2000,
        );
    }
}
