//! DeleteGroups (key 42), versions 0–2, flexible from 2 (Kafka 4.1 schema).
//!
//! Deletes empty groups and their committed offsets; a group with members answers
//! NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 42, versions 0..=2, flexible 2,
    DeleteGroupsRequest, DeleteGroupsResponse,
    oracle DeleteGroupsRequest, DeleteGroupsResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteGroupsRequest {
        pub groups_names: Vec<String> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteGroupsResponse {
        pub throttle_time_ms: i32 [0..],
        pub results: Vec<DeletableGroupResult> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeletableGroupResult {
        pub group_id: String [0..],
        pub error_code: i16 [0..],
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
