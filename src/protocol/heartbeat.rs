//! Heartbeat (key 12), versions 0–4, flexible from 4 (Kafka 4.1 schema).
//!
//! A member proves it is alive between polls; the answer is also how it learns a rebalance
//! started (REBALANCE_IN_PROGRESS). `group_instance_id` is v3+.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of Heartbeat.
pub const API_KEY: i16 = 12;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 4;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 4;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
}

impl HeartbeatRequest {
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
        r.tags_if(flex)?;
        Ok(HeartbeatRequest {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
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
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// v1+.
    pub throttle_time_ms: i32,
    pub error_code: i16,
}

impl HeartbeatResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        w.i16(self.error_code);
        w.tags_if(flexible(version));
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = r.i16("error_code")?;
        r.tags_if(flexible(version))?;
        Ok(HeartbeatResponse {
            throttle_time_ms,
            error_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> HeartbeatRequest {
        HeartbeatRequest {
            group_id: "payments".into(),
            generation_id: 12,
            member_id: "m-1".into(),
            group_instance_id: Some("host-a".into()),
        }
    }

    #[test]
    fn round_trips_every_version() {
        let resp = HeartbeatResponse {
            throttle_time_ms: 3,
            error_code: 27,
        };
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                HeartbeatRequest::encode,
                HeartbeatRequest::decode,
            );
            assert_eq!(got.generation_id, 12);
            assert_eq!(got.group_instance_id.is_some(), v >= 3);
            truncations_fail(&b, v, HeartbeatRequest::decode);
            oracle_agrees::<kp::HeartbeatRequest>(&b, v);

            let (got, b) = round_trip(
                &resp,
                v,
                HeartbeatResponse::encode,
                HeartbeatResponse::decode,
            );
            assert_eq!(got.error_code, 27);
            truncations_fail(&b, v, HeartbeatResponse::decode);
            oracle_agrees::<kp::HeartbeatResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [0, 3, 4]
            .iter()
            .map(|&v| encode(&sample_request(), v, HeartbeatRequest::encode))
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            HeartbeatRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            HeartbeatResponse::decode,
            2000,
        );
    }
}
