//! SyncGroup (key 14), versions 0–5, flexible from 4 (Kafka 4.1 schema).
//!
//! The second call of the classic rebalance protocol: the leader sends every member's
//! assignment, followers send none; each gets its own assignment back once the leader's has
//! arrived. Version notes: `group_instance_id` v3+, `protocol_type`/`protocol_name` v5+.

use super::wire::{check_version, DecodeResult, Reader, Writer};
use bytes::Bytes;

/// Kafka API key of SyncGroup.
pub const API_KEY: i16 = 14;
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
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    /// Sent by the leader only.
    pub assignments: Vec<SyncGroupAssignment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub assignment: Bytes,
}

impl SyncGroupRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let group_id = r.string(flex, "group_id")?;
        let generation_id = r.i32("generation_id")?;
        let member_id = r.string(flex, "member_id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string(flex, "group_instance_id")?
        } else {
            None
        };
        let (protocol_type, protocol_name) = if version >= 5 {
            (
                r.nullable_string(flex, "protocol_type")?,
                r.nullable_string(flex, "protocol_name")?,
            )
        } else {
            (None, None)
        };
        let assignments = r.array(flex, 2, "assignments", |r| {
            let member_id = r.string(flex, "member_id")?;
            let assignment = r.bytes(flex, "assignment")?;
            r.tags_if(flex)?;
            Ok(SyncGroupAssignment {
                member_id,
                assignment,
            })
        })?;
        r.tags_if(flex)?;
        Ok(SyncGroupRequest {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
            protocol_type,
            protocol_name,
            assignments,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.string(&self.group_id, flex);
        w.i32(self.generation_id);
        w.string(&self.member_id, flex);
        if version >= 3 {
            w.nullable_string(self.group_instance_id.as_deref(), flex);
        }
        if version >= 5 {
            w.nullable_string(self.protocol_type.as_deref(), flex);
            w.nullable_string(self.protocol_name.as_deref(), flex);
        }
        w.array(&self.assignments, flex, |w, a| {
            w.string(&a.member_id, flex);
            w.bytes(&a.assignment, flex);
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    /// v1+.
    pub throttle_time_ms: i32,
    pub error_code: i16,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        w.i16(self.error_code);
        if version >= 5 {
            w.nullable_string(self.protocol_type.as_deref(), flex);
            w.nullable_string(self.protocol_name.as_deref(), flex);
        }
        w.bytes(&self.assignment, flex);
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
        let (protocol_type, protocol_name) = if version >= 5 {
            (
                r.nullable_string(flex, "protocol_type")?,
                r.nullable_string(flex, "protocol_name")?,
            )
        } else {
            (None, None)
        };
        let assignment = r.bytes(flex, "assignment")?;
        r.tags_if(flex)?;
        Ok(SyncGroupResponse {
            throttle_time_ms,
            error_code,
            protocol_type,
            protocol_name,
            assignment,
        })
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
