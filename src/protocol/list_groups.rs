//! ListGroups (key 16), versions 0–5, flexible from 3 (Kafka 4.1 schema).
//!
//! Lists the groups this coordinator owns. v4+ filter by state (KIP-518), v5+ by group type
//! (KIP-848: "classic", "consumer"); an empty filter matches everything. The answer carries
//! `group_state` from v4 and `group_type` from v5.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of ListGroups.
pub const API_KEY: i16 = 16;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 5;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 3;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsRequest {
    /// v4+; empty = any state.
    pub states_filter: Vec<String>,
    /// v5+; empty = any type.
    pub types_filter: Vec<String>,
}

impl ListGroupsRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let states_filter = if version >= 4 {
            r.array(flex, 1, "states_filter", |r| r.string(flex, "state"))?
        } else {
            Vec::new()
        };
        let types_filter = if version >= 5 {
            r.array(flex, 1, "types_filter", |r| r.string(flex, "type"))?
        } else {
            Vec::new()
        };
        r.tags_if(flex)?;
        Ok(ListGroupsRequest {
            states_filter,
            types_filter,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 4 {
            w.array(&self.states_filter, flex, |w, s| w.string(s, flex));
        }
        if version >= 5 {
            w.array(&self.types_filter, flex, |w, s| w.string(s, flex));
        }
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    /// v1+.
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub groups: Vec<ListedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// v4+.
    pub group_state: String,
    /// v5+.
    pub group_type: String,
}

impl ListGroupsResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        w.i16(self.error_code);
        w.array(&self.groups, flex, |w, g| {
            w.string(&g.group_id, flex);
            w.string(&g.protocol_type, flex);
            if version >= 4 {
                w.string(&g.group_state, flex);
            }
            if version >= 5 {
                w.string(&g.group_type, flex);
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
        let error_code = r.i16("error_code")?;
        let groups = r.array(flex, 2, "groups", |r| {
            let group_id = r.string(flex, "group_id")?;
            let protocol_type = r.string(flex, "protocol_type")?;
            let group_state = if version >= 4 {
                r.string(flex, "group_state")?
            } else {
                String::new()
            };
            let group_type = if version >= 5 {
                r.string(flex, "group_type")?
            } else {
                String::new()
            };
            r.tags_if(flex)?;
            Ok(ListedGroup {
                group_id,
                protocol_type,
                group_state,
                group_type,
            })
        })?;
        r.tags_if(flex)?;
        Ok(ListGroupsResponse {
            throttle_time_ms,
            error_code,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> ListGroupsRequest {
        ListGroupsRequest {
            states_filter: vec!["Stable".into(), "Empty".into()],
            types_filter: vec!["classic".into()],
        }
    }

    fn sample_response() -> ListGroupsResponse {
        ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            groups: vec![ListedGroup {
                group_id: "payments".into(),
                protocol_type: "consumer".into(),
                group_state: "Stable".into(),
                group_type: "classic".into(),
            }],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                ListGroupsRequest::encode,
                ListGroupsRequest::decode,
            );
            assert_eq!(got.states_filter.len(), if v >= 4 { 2 } else { 0 });
            assert_eq!(got.types_filter.len(), if v >= 5 { 1 } else { 0 });
            truncations_fail(&b, v, ListGroupsRequest::decode);
            oracle_agrees::<kp::ListGroupsRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                ListGroupsResponse::encode,
                ListGroupsResponse::decode,
            );
            assert_eq!(got.groups[0].group_id, "payments");
            if v >= 5 {
                assert_eq!(got, sample_response());
            }
            truncations_fail(&b, v, ListGroupsResponse::decode);
            oracle_agrees::<kp::ListGroupsResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [0, 3, 5]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, ListGroupsRequest::encode),
                    encode(&sample_response(), v, ListGroupsResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            ListGroupsRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            ListGroupsResponse::decode,
            2000,
        );
    }
}
