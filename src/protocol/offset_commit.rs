//! OffsetCommit (key 8), versions 0–9, flexible from 8 (Kafka 4.1 schema; v0–1 from Kafka 3).
//!
//! A consumer stores its position per partition, with an optional metadata string. The
//! generation id and member id (v1+) let the coordinator refuse commits from members that lost
//! their assignment; a v0 commit has neither and is treated as one outside any generation
//! (−1), like an admin tool's. v0–1 were removed in Kafka 4.0 but old clients still send
//! them, so they are served like v2; v1's per-partition `commit_timestamp` is read and ignored,
//! as Kafka 4 ignores it. `retention_time_ms` (v2–4) is ignored by Kafka since 2.1 and kept
//! for the wire. v10 (topic ids) is not served.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 8, versions 0..=9, flexible 8,
    OffsetCommitRequest, OffsetCommitResponse,
    oracle OffsetCommitRequest, OffsetCommitResponse from 2);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetCommitRequest {
        pub group_id: String [0..],
        /// −1 for a commit outside any generation (simple consumers, admin tools, v0).
        pub generation_id: i32 [1.., default -1],
        pub member_id: String [1..],
        pub group_instance_id: Option<String> [7..],
        /// −1 = broker default.
        pub retention_time_ms: i64 [2..=4, default -1],
        pub topics: Vec<OffsetCommitTopic> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetCommitTopic {
        pub name: String [0..],
        pub partitions: Vec<OffsetCommitPartition> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetCommitPartition {
        pub partition_index: i32 [0..],
        pub committed_offset: i64 [0..],
        /// −1 when unknown.
        pub committed_leader_epoch: i32 [6.., default -1],
        /// v1 only; ignored (Kafka 4 ignores it too).
        pub commit_timestamp: i64 [1..=1, default -1],
        pub committed_metadata: Option<String> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetCommitResponse {
        pub throttle_time_ms: i32 [3..],
        pub topics: Vec<OffsetCommitTopicResponse> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetCommitTopicResponse {
        pub name: String [0..],
        pub partitions: Vec<OffsetCommitPartitionResponse> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct OffsetCommitPartitionResponse {
        pub partition_index: i32 [0..],
        pub error_code: i16 [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> OffsetCommitRequest {
        OffsetCommitRequest {
            group_id: "payments".into(),
            generation_id: 4,
            member_id: "m-1".into(),
            group_instance_id: Some("host-a".into()),
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: "orders".into(),
                partitions: vec![
                    OffsetCommitPartition {
                        partition_index: 0,
                        committed_offset: 100,
                        committed_leader_epoch: 2,
                        commit_timestamp: -1,
                        committed_metadata: Some("m".into()),
                    },
                    OffsetCommitPartition {
                        partition_index: 1,
                        committed_offset: 7,
                        committed_leader_epoch: 2,
                        commit_timestamp: -1,
                        committed_metadata: None,
                    },
                ],
            }],
        }
    }

    fn sample_response() -> OffsetCommitResponse {
        OffsetCommitResponse {
            throttle_time_ms: 1,
            topics: vec![OffsetCommitTopicResponse {
                name: "orders".into(),
                partitions: vec![
                    OffsetCommitPartitionResponse {
                        partition_index: 0,
                        error_code: 0,
                    },
                    OffsetCommitPartitionResponse {
                        partition_index: 1,
                        error_code: 22,
                    },
                ],
            }],
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in 2..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                OffsetCommitRequest::encode,
                OffsetCommitRequest::decode,
            );
            assert_eq!(got.topics[0].partitions[0].committed_offset, 100);
            assert_eq!(got.topics[0].partitions[1].committed_metadata, None);
            assert_eq!(
                got.topics[0].partitions[0].committed_leader_epoch,
                if v >= 6 { 2 } else { -1 }
            );
            if v >= 7 {
                assert_eq!(got, sample_request());
            }
            truncations_fail(&b, v, OffsetCommitRequest::decode);
            oracle_agrees::<kp::OffsetCommitRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                OffsetCommitResponse::encode,
                OffsetCommitResponse::decode,
            );
            assert_eq!(got.topics[0].partitions[1].error_code, 22);
            truncations_fail(&b, v, OffsetCommitResponse::decode);
            oracle_agrees::<kp::OffsetCommitResponse>(&b, v);
        }
    }

    /// v0 and v1 (removed in Kafka 4.0, so not in the oracle): known bytes. v0 has no
    /// generation or member (a commit outside any generation); v1's commit timestamp is read.
    #[test]
    fn v0_and_v1_known_bytes() {
        let mut v1 = vec![0, 1, b'g', 0, 0, 0, 4, 0, 1, b'm', 0, 0, 0, 1, 0, 1, b't'];
        v1.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 100]);
        v1.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 123, 0xff, 0xff]);
        let got = decode_all(Bytes::from(v1.clone()), 1, OffsetCommitRequest::decode).unwrap();
        assert_eq!((got.generation_id, got.member_id.as_str()), (4, "m"));
        let p = &got.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.committed_offset), (3, 100));
        assert_eq!(
            (p.commit_timestamp, p.committed_metadata.clone()),
            (123, None)
        );
        assert_eq!(encode(&got, 1, OffsetCommitRequest::encode), v1);

        let mut v0 = vec![0, 1, b'g', 0, 0, 0, 1, 0, 1, b't'];
        v0.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0]);
        let got = decode_all(Bytes::from(v0.clone()), 0, OffsetCommitRequest::decode).unwrap();
        assert_eq!((got.generation_id, got.member_id.as_str()), (-1, ""));
        assert_eq!(
            got.topics[0].partitions[0].committed_metadata.as_deref(),
            Some("")
        );
        assert_eq!(encode(&got, 0, OffsetCommitRequest::encode), v0);
        let resp = [0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 3, 0, 0];
        let got = decode_all(
            Bytes::copy_from_slice(&resp),
            0,
            OffsetCommitResponse::decode,
        );
        assert_eq!(got.unwrap().topics[0].partitions[0].partition_index, 3);
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [2, 5, 7, 8, 9]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, OffsetCommitRequest::encode),
                    encode(&sample_response(), v, OffsetCommitResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            OffsetCommitRequest::decode,
            2000,
        );
        random_bytes_never_panic(
            &seeds,
            MIN_VERSION..=MAX_VERSION,
            OffsetCommitResponse::decode,
            2000,
        );
    }
}
