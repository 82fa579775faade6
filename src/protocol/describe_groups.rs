//! DescribeGroups (key 15), versions 0–5, flexible from 5 (Kafka 4.1 schema).
//!
//! State, protocol and members (with their metadata and assignment bytes) of each named
//! group. Version notes: `include_authorized_operations`/`authorized_operations` v3+,
//! member `group_instance_id` v4+. v6 (`error_message`, KIP-1043) is not served.

use super::wire::{check_version, DecodeResult, Reader, Writer};
use bytes::Bytes;

/// Kafka API key of DescribeGroups.
pub const API_KEY: i16 = 15;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 5;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 5;

/// `authorized_operations` when they were not asked for (Kafka's INT32_MIN sentinel).
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
    /// v3+.
    pub include_authorized_operations: bool,
}

impl DescribeGroupsRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let groups = r.array(flex, 1, "groups", |r| r.string(flex, "group"))?;
        let include_authorized_operations = if version >= 3 {
            r.bool("include_authorized_operations")?
        } else {
            false
        };
        r.tags_if(flex)?;
        Ok(DescribeGroupsRequest {
            groups,
            include_authorized_operations,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.array(&self.groups, flex, |w, g| w.string(g, flex));
        if version >= 3 {
            w.bool(self.include_authorized_operations);
        }
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsResponse {
    /// v1+.
    pub throttle_time_ms: i32,
    pub groups: Vec<DescribedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    pub error_code: i16,
    pub group_id: String,
    /// "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead".
    pub group_state: String,
    pub protocol_type: String,
    /// The selected protocol (assignor) name, "" while rebalancing.
    pub protocol_data: String,
    pub members: Vec<DescribedGroupMember>,
    /// v3+.
    pub authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroupMember {
    pub member_id: String,
    /// v4+.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_metadata: Bytes,
    pub member_assignment: Bytes,
}

impl DescribeGroupsResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        w.array(&self.groups, flex, |w, g| {
            w.i16(g.error_code);
            w.string(&g.group_id, flex);
            w.string(&g.group_state, flex);
            w.string(&g.protocol_type, flex);
            w.string(&g.protocol_data, flex);
            w.array(&g.members, flex, |w, m| {
                w.string(&m.member_id, flex);
                if version >= 4 {
                    w.nullable_string(m.group_instance_id.as_deref(), flex);
                }
                w.string(&m.client_id, flex);
                w.string(&m.client_host, flex);
                w.bytes(&m.member_metadata, flex);
                w.bytes(&m.member_assignment, flex);
                w.tags_if(flex);
            });
            if version >= 3 {
                w.i32(g.authorized_operations);
            }
            w.tags_if(flex);
        });
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
        let groups = r.array(flex, 7, "groups", |r| {
            let error_code = r.i16("error_code")?;
            let group_id = r.string(flex, "group_id")?;
            let group_state = r.string(flex, "group_state")?;
            let protocol_type = r.string(flex, "protocol_type")?;
            let protocol_data = r.string(flex, "protocol_data")?;
            let members = r.array(flex, 4, "members", |r| decode_member(r, version))?;
            let authorized_operations = if version >= 3 {
                r.i32("authorized_operations")?
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            };
            r.tags_if(flex)?;
            Ok(DescribedGroup {
                error_code,
                group_id,
                group_state,
                protocol_type,
                protocol_data,
                members,
                authorized_operations,
            })
        })?;
        r.tags_if(flex)?;
        Ok(DescribeGroupsResponse {
            throttle_time_ms,
            groups,
        })
    }
}

fn decode_member(r: &mut Reader, version: i16) -> DecodeResult<DescribedGroupMember> {
    let flex = flexible(version);
    let member_id = r.string(flex, "member_id")?;
    let group_instance_id = if version >= 4 {
        r.nullable_string(flex, "group_instance_id")?
    } else {
        None
    };
    let client_id = r.string(flex, "client_id")?;
    let client_host = r.string(flex, "client_host")?;
    let member_metadata = r.bytes(flex, "member_metadata")?;
    let member_assignment = r.bytes(flex, "member_assignment")?;
    r.tags_if(flex)?;
    Ok(DescribedGroupMember {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        member_metadata,
        member_assignment,
    })
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
