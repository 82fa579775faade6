//! Heartbeat (key 12), versions 0–4, flexible from 4 (Kafka 4.1 schema).
//!
//! A member proves it is alive between polls; the answer is also how it learns a rebalance
//! started (REBALANCE_IN_PROGRESS).

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 12, versions 0..=4, flexible 4,
    HeartbeatRequest, HeartbeatResponse, oracle HeartbeatRequest, HeartbeatResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct HeartbeatRequest {
        pub group_id: String [0..],
        pub generation_id: i32 [0..],
        pub member_id: String [0..],
        pub group_instance_id: Option<String> [3..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HeartbeatResponse {
        pub throttle_time_ms: i32 [1..],
        pub error_code: i16 [0..],
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
