//! OffsetFetch (key 9), versions 1–9, flexible from 6 (Kafka 4.1 schema).
//!
//! A consumer reads its group's committed positions. v1–7 ask for one group (top-level
//! `group_id`/`topics`); v8+ (KIP-709) batch `groups`. Both shapes live in one struct each;
//! [`OffsetFetchRequest::groups`] and [`OffsetFetchResponse::for_groups`] hide the
//! difference from the handler. A null topic list (v2+) means "every partition the group
//! has". v0 was removed in Kafka 4.0; v10 is not served.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 9, versions 1..=9, flexible 6,
    OffsetFetchRequest, OffsetFetchResponse,
    oracle OffsetFetchRequest, OffsetFetchResponse from 1);

/// First version with batched groups.
pub const BATCHED_FROM: i16 = 8;

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetFetchRequest {
        pub group_id: String [0..=7],
        /// `None` = all committed partitions (v2+; v1 has no null, hence the default).
        pub topics: Option<Vec<OffsetFetchTopic>> [0..=7, default Some(Vec::new())],
        pub groups: Vec<OffsetFetchGroup> [8..],
        pub require_stable: bool [7..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetFetchGroup {
        pub group_id: String [0..],
        pub member_id: Option<String> [9..],
        /// −1 for the classic protocol.
        pub member_epoch: i32 [9.., default -1],
        /// `None` = all committed partitions.
        pub topics: Option<Vec<OffsetFetchTopic>> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetFetchTopic {
        pub name: String [0..],
        pub partition_indexes: Vec<i32> [0..],
    }
}

impl OffsetFetchRequest {
    /// The groups asked for, whatever the version: one group before v8.
    pub fn groups(&self, version: i16) -> Vec<OffsetFetchGroup> {
        if version >= BATCHED_FROM {
            return self.groups.clone();
        }
        vec![OffsetFetchGroup {
            group_id: self.group_id.clone(),
            topics: self.topics.clone(),
            ..OffsetFetchGroup::default()
        }]
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetFetchResponse {
        pub throttle_time_ms: i32 [3..],
        pub topics: Vec<OffsetFetchTopicResponse> [0..=7],
        pub error_code: i16 [2..=7],
        pub groups: Vec<OffsetFetchGroupResponse> [8..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetFetchGroupResponse {
        pub group_id: String [0..],
        pub topics: Vec<OffsetFetchTopicResponse> [0..],
        pub error_code: i16 [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetFetchTopicResponse {
        pub name: String [0..],
        pub partitions: Vec<OffsetFetchPartitionResponse> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetFetchPartitionResponse {
        pub partition_index: i32 [0..],
        /// −1 when nothing is committed.
        pub committed_offset: i64 [0..],
        /// −1 when unknown.
        pub committed_leader_epoch: i32 [5.., default -1],
        pub metadata: Option<String> [0..],
        pub error_code: i16 [0..],
    }
}

impl OffsetFetchResponse {
    /// The response for per-group answers at `version`: before v8 the first group's topics
    /// and error go to the top-level fields.
    pub fn for_groups(version: i16, mut groups: Vec<OffsetFetchGroupResponse>) -> Self {
        if version >= BATCHED_FROM || groups.is_empty() {
            return OffsetFetchResponse {
                groups,
                ..OffsetFetchResponse::default()
            };
        }
        let first = groups.swap_remove(0);
        OffsetFetchResponse {
            topics: first.topics,
            error_code: first.error_code,
            ..OffsetFetchResponse::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use kafka_protocol::messages as kp;

    fn topics() -> Vec<OffsetFetchTopic> {
        vec![OffsetFetchTopic {
            name: "orders".into(),
            partition_indexes: vec![0, 1, 2],
        }]
    }

    fn sample_request() -> OffsetFetchRequest {
        OffsetFetchRequest {
            group_id: "payments".into(),
            topics: Some(topics()),
            groups: vec![
                OffsetFetchGroup {
                    group_id: "payments".into(),
                    member_id: Some("m-1".into()),
                    member_epoch: 3,
                    topics: Some(topics()),
                },
                OffsetFetchGroup {
                    group_id: "audit".into(),
                    member_id: None,
                    member_epoch: -1,
                    topics: None,
                },
            ],
            require_stable: true,
        }
    }

    fn partitions() -> Vec<OffsetFetchTopicResponse> {
        vec![OffsetFetchTopicResponse {
            name: "orders".into(),
            partitions: vec![OffsetFetchPartitionResponse {
                partition_index: 0,
                committed_offset: 42,
                committed_leader_epoch: 1,
                metadata: Some("meta".into()),
                error_code: 0,
            }],
        }]
    }

    /// Both shapes read back through [`OffsetFetchRequest::groups`]: one group before v8
    /// (no member before v9), the batch from v8.
    #[test]
    fn groups_hide_the_shape_at_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, _) = round_trip(
                &sample_request(),
                v,
                OffsetFetchRequest::encode,
                OffsetFetchRequest::decode,
            );
            let groups = got.groups(v);
            assert_eq!(groups.len(), if v >= 8 { 2 } else { 1 });
            assert_eq!(groups[0].group_id, "payments");
            assert_eq!(groups[0].topics, Some(topics()));
            assert_eq!(got.require_stable, v >= 7);
            assert_eq!(groups[0].member_epoch, if v >= 9 { 3 } else { -1 });
        }
    }

    #[test]
    fn null_topics_mean_all_partitions() {
        let req = OffsetFetchRequest {
            topics: None,
            ..sample_request()
        };
        for v in 2..=7 {
            let (got, b) = round_trip(
                &req,
                v,
                OffsetFetchRequest::encode,
                OffsetFetchRequest::decode,
            );
            assert_eq!(got.groups(v)[0].topics, None);
            oracle_agrees::<kp::OffsetFetchRequest>(&b, v);
        }
    }

    #[test]
    fn for_groups_fills_the_right_shape() {
        let groups = vec![
            OffsetFetchGroupResponse {
                group_id: "payments".into(),
                topics: partitions(),
                error_code: 14,
            },
            OffsetFetchGroupResponse {
                group_id: "audit".into(),
                topics: Vec::new(),
                error_code: 69,
            },
        ];
        let old = OffsetFetchResponse::for_groups(7, groups.clone());
        assert_eq!((old.topics, old.error_code), (partitions(), 14));
        assert!(old.groups.is_empty());
        let new = OffsetFetchResponse::for_groups(8, groups.clone());
        assert_eq!(new.groups, groups);
        assert!(new.topics.is_empty());
    }
}
