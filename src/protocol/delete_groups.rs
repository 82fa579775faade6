//! DeleteGroups (key 42), versions 0–2, flexible from 2 (Kafka 4.1 schema).
//!
//! Deletes empty groups and their committed offsets; a group with members answers
//! NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of DeleteGroups.
pub const API_KEY: i16 = 42;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 2;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 2;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsRequest {
    pub groups_names: Vec<String>,
}

impl DeleteGroupsRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let groups_names = r.array(flex, 1, "groups_names", |r| r.string(flex, "group_name"))?;
        r.tags_if(flex)?;
        Ok(DeleteGroupsRequest { groups_names })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.array(&self.groups_names, flex, |w, g| w.string(g, flex));
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsResponse {
    pub throttle_time_ms: i32,
    pub results: Vec<DeletableGroupResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletableGroupResult {
    pub group_id: String,
    pub error_code: i16,
}

impl DeleteGroupsResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i32(self.throttle_time_ms);
        w.array(&self.results, flex, |w, g| {
            w.string(&g.group_id, flex);
            w.i16(g.error_code);
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let results = r.array(flex, 3, "results", |r| {
            let group_id = r.string(flex, "group_id")?;
            let error_code = r.i16("error_code")?;
            r.tags_if(flex)?;
            Ok(DeletableGroupResult {
                group_id,
                error_code,
            })
        })?;
        r.tags_if(flex)?;
        Ok(DeleteGroupsResponse {
            throttle_time_ms,
            results,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> DeleteGroupsRequest {
        DeleteGroupsRequest {
            groups_names: vec!["payments".into(), "audit".into()],
        }
    }

    fn sample_response() -> DeleteGroupsResponse {
        DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: vec![
                DeletableGroupResult {
                    group_id: "payments".into(),
                    error_code: 68,
                },
                DeletableGroupResult {
                    group_id: "audit".into(),
                    error_code: 0,
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
                DeleteGroupsRequest::encode,
                DeleteGroupsRequest::decode,
            );
            assert_eq!(got, sample_request());
            truncations_fail(&b, v, DeleteGroupsRequest::decode);
            oracle_agrees::<kp::DeleteGroupsRequest>(&b, v);
            let (got, b) = round_trip(
                &sample_response(),
                v,
                DeleteGroupsResponse::encode,
                DeleteGroupsResponse::decode,
            );
            assert_eq!(got, sample_response());
            truncations_fail(&b, v, DeleteGroupsResponse::decode);
            oracle_agrees::<kp::DeleteGroupsResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [0, 2]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, DeleteGroupsRequest::encode),
                    encode(&sample_response(), v, DeleteGroupsResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            DeleteGroupsRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            DeleteGroupsResponse::decode,
            2000,
        );
    }
}
