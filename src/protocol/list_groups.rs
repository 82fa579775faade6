//! ListGroups (key 16), versions 0–5, flexible from 3 (Kafka 4.1 schema).
//!
//! Lists the groups this coordinator owns. v4+ filter by state (KIP-518), v5+ by group type
//! (KIP-848: "classic", "consumer"); an empty filter matches everything. The answer carries
//! `group_state` from v4 and `group_type` from v5.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 16, versions 0..=5, flexible 3,
    ListGroupsRequest, ListGroupsResponse, oracle ListGroupsRequest, ListGroupsResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListGroupsRequest {
        /// Empty = any state.
        pub states_filter: Vec<String> [4..],
        /// Empty = any type.
        pub types_filter: Vec<String> [5..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListGroupsResponse {
        pub throttle_time_ms: i32 [1..],
        pub error_code: i16 [0..],
        pub groups: Vec<ListedGroup> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListedGroup {
        pub group_id: String [0..],
        pub protocol_type: String [0..],
        pub group_state: String [4..],
        pub group_type: String [5..],
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
