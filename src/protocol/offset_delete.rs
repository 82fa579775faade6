//! OffsetDelete (key 47), version 0, not flexible (Kafka 4.1 schema).
//!
//! Removes committed offsets of a group (KIP-496). The coordinator refuses partitions the
//! group is still consuming (GROUP_SUBSCRIBED_TO_TOPIC) and answers per partition.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 47, versions 0..=0, flexible i16::MAX,
    OffsetDeleteRequest, OffsetDeleteResponse,
    oracle OffsetDeleteRequest, OffsetDeleteResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetDeleteRequest {
        pub group_id: String [0..],
        pub topics: Vec<OffsetDeleteTopic> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetDeleteTopic {
        pub name: String [0..],
        pub partition_indexes: Vec<i32> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetDeleteResponse {
        /// Group-level error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP …).
        pub error_code: i16 [0..],
        pub throttle_time_ms: i32 [0..],
        pub topics: Vec<OffsetDeleteTopicResponse> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetDeleteTopicResponse {
        pub name: String [0..],
        pub partitions: Vec<OffsetDeletePartitionResponse> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct OffsetDeletePartitionResponse {
        pub partition_index: i32 [0..],
        pub error_code: i16 [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use crate::protocol::Reader;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> OffsetDeleteRequest {
        OffsetDeleteRequest {
            group_id: "payments".into(),
            topics: vec![OffsetDeleteTopic {
                name: "orders".into(),
                partition_indexes: vec![0, 3],
            }],
        }
    }

    fn sample_response() -> OffsetDeleteResponse {
        OffsetDeleteResponse {
            error_code: 0,
            throttle_time_ms: 0,
            topics: vec![OffsetDeleteTopicResponse {
                name: "orders".into(),
                partitions: vec![OffsetDeletePartitionResponse {
                    partition_index: 3,
                    error_code: 86,
                }],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let (got, b) = round_trip(
            &sample_request(),
            0,
            OffsetDeleteRequest::encode,
            OffsetDeleteRequest::decode,
        );
        assert_eq!(got, sample_request());
        truncations_fail(&b, 0, OffsetDeleteRequest::decode);
        oracle_agrees::<kp::OffsetDeleteRequest>(&b, 0);
        let (got, b) = round_trip(
            &sample_response(),
            0,
            OffsetDeleteResponse::encode,
            OffsetDeleteResponse::decode,
        );
        assert_eq!(got, sample_response());
        truncations_fail(&b, 0, OffsetDeleteResponse::decode);
        oracle_agrees::<kp::OffsetDeleteResponse>(&b, 0);
        assert!(OffsetDeleteRequest::decode(&mut Reader::new(b), 1).is_err());
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = vec![
            encode(&sample_request(), 0, OffsetDeleteRequest::encode),
            encode(&sample_response(), 0, OffsetDeleteResponse::encode),
        ];
        random_bytes_never_panic(&seeds, 0..=0, OffsetDeleteRequest::decode, 3000);
        random_bytes_never_panic(&seeds, 0..=0, OffsetDeleteResponse::decode, 3000);
    }
}
