//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete.
//!
//! A commit is checked against the group the way Kafka checks it (a generation of −1 with
//! an empty group is a "simple" commit that needs no membership; otherwise the member must
//! be current and the generation must match), then applied in memory and emitted as one
//! record per partition. Topic existence is the caller's business: the coordinator stores
//! whatever topic name it is given.

use super::coordinator::check_member;
use super::group::{Group, GroupState};
use super::group_log::{GroupRecord, OffsetCommitValue};
use super::{valid_group_id, Coordinator};
use crate::protocol::offset_commit::{
    OffsetCommitPartition, OffsetCommitPartitionResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetCommitTopicResponse,
};
use crate::protocol::offset_delete::{
    OffsetDeletePartitionResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetDeleteTopicResponse,
};
use crate::protocol::offset_fetch::{
    OffsetFetchGroup, OffsetFetchGroupResponse, OffsetFetchPartitionResponse, OffsetFetchRequest,
    OffsetFetchResponse, OffsetFetchTopicResponse,
};
use crate::protocol::{ErrorCode, Reader};
use std::collections::BTreeMap;

/// Protocol type of Kafka consumers (the only one whose subscriptions ringmq can read).
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// An OffsetCommit answer naming every partition of `req` in request order, each with the
/// code `code_of` gives it (called once per partition, in order).
pub(super) fn commit_response(
    req: &OffsetCommitRequest,
    mut code_of: impl FnMut(&str, &OffsetCommitPartition) -> ErrorCode,
) -> OffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| OffsetCommitTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| OffsetCommitPartitionResponse {
                    partition_index: p.partition_index,
                    error_code: code_of(&t.name, p).0,
                })
                .collect(),
        })
        .collect();
    OffsetCommitResponse {
        throttle_time_ms: 0,
        topics,
    }
}

impl Coordinator {
    /// OffsetCommit. Records for the committed partitions come out of
    /// [`Coordinator::take_records`]; answer the client once they are durable.
    pub fn commit_offsets(
        &mut self,
        now_ms: i64,
        req: &OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        let group_error = self.commit_check(now_ms, req).err();
        let max_metadata_bytes = self.cfg.offset_metadata_max_bytes;
        commit_response(req, |topic, p| {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            match group_error {
                Some(code) => code,
                None if metadata.len() > max_metadata_bytes => ErrorCode::OFFSET_METADATA_TOO_LARGE,
                None => {
                    let value = OffsetCommitValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: metadata.to_owned(),
                        commit_timestamp_ms: now_ms,
                    };
                    self.store_offset(&req.group_id, topic, p.partition_index, value);
                    ErrorCode::NONE
                }
            }
        })
    }

    fn store_offset(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: OffsetCommitValue,
    ) {
        if let Some(group) = self.groups.get_mut(group_id) {
            group
                .offsets
                .insert((topic.to_owned(), partition), value.clone());
            self.fx.records.push(GroupRecord::OffsetCommit {
                group_id: group_id.to_owned(),
                topic: topic.to_owned(),
                partition,
                value: Some(value),
            });
        }
    }

    /// Kafka's checks of a commit against its group, in Kafka's order.
    fn commit_check(&mut self, now_ms: i64, req: &OffsetCommitRequest) -> Result<(), ErrorCode> {
        if self.loading {
            return Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        }
        if !valid_group_id(&req.group_id) {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        let simple = req.generation_id < 0;
        let room = self.has_room_for(&req.group_id);
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            if !simple {
                return Err(ErrorCode::ILLEGAL_GENERATION);
            }
            if !room {
                return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
            }
            self.groups
                .insert(req.group_id.clone(), Group::new(&req.group_id, now_ms));
            return Ok(());
        };
        if group.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return Err(ErrorCode::FENCED_INSTANCE_ID);
        }
        if simple && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        check_member(
            group,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )?;
        if let Some(member) = group.members.get_mut(&req.member_id) {
            member.last_heartbeat_ms = now_ms;
        }
        Ok(())
    }

    /// OffsetFetch, any version: unknown groups and partitions answer offset −1.
    pub fn fetch_offsets(&self, version: i16, req: &OffsetFetchRequest) -> OffsetFetchResponse {
        let groups = req
            .groups(version)
            .iter()
            .map(|g| self.fetch_group(g, version))
            .collect();
        OffsetFetchResponse::for_groups(version, groups)
    }

    fn fetch_group(&self, asked: &OffsetFetchGroup, version: i16) -> OffsetFetchGroupResponse {
        let group = self.groups.get(&asked.group_id);
        let error = if self.loading {
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        } else {
            ErrorCode::NONE
        };
        // v1 has no group-level error: put it on every partition.
        let partition_error = if version < 2 { error } else { ErrorCode::NONE };
        let lookup = |topic: &str, partition: i32| {
            let stored = group
                .filter(|_| !self.loading)
                .and_then(|g| g.offsets.get(&(topic.to_owned(), partition)));
            OffsetFetchPartitionResponse {
                partition_index: partition,
                committed_offset: stored.map_or(-1, |v| v.offset),
                committed_leader_epoch: stored.map_or(-1, |v| v.leader_epoch),
                metadata: Some(stored.map_or(String::new(), |v| v.metadata.clone())),
                error_code: partition_error.0,
            }
        };
        let topics = match &asked.topics {
            Some(topics) => topics
                .iter()
                .map(|t| OffsetFetchTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|p| lookup(&t.name, *p))
                        .collect(),
                })
                .collect(),
            None => all_offsets(group.filter(|_| !self.loading), lookup),
        };
        OffsetFetchGroupResponse {
            group_id: asked.group_id.clone(),
            topics,
            error_code: error.0,
        }
    }

    /// OffsetDelete: an empty group loses any offsets; a consumer group with members only
    /// those of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
    pub fn delete_offsets(&mut self, req: &OffsetDeleteRequest) -> OffsetDeleteResponse {
        let refuse = |code: ErrorCode| OffsetDeleteResponse {
            error_code: code.0,
            throttle_time_ms: 0,
            topics: Vec::new(),
        };
        if self.loading {
            return refuse(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return refuse(ErrorCode::GROUP_ID_NOT_FOUND);
        };
        let subscribed = match group.state {
            GroupState::Dead => return refuse(ErrorCode::GROUP_ID_NOT_FOUND),
            GroupState::Empty => Subscribed::Nothing,
            _ if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => {
                subscribed_topics(group)
            }
            _ => return refuse(ErrorCode::NON_EMPTY_GROUP),
        };
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for &partition in &t.partition_indexes {
                let error = if subscribed.contains(&t.name) {
                    ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    if group.offsets.remove(&(t.name.clone(), partition)).is_some() {
                        self.fx.records.push(GroupRecord::OffsetCommit {
                            group_id: req.group_id.clone(),
                            topic: t.name.clone(),
                            partition,
                            value: None,
                        });
                    }
                    ErrorCode::NONE
                };
                partitions.push(OffsetDeletePartitionResponse {
                    partition_index: partition,
                    error_code: error.0,
                });
            }
            topics.push(OffsetDeleteTopicResponse {
                name: t.name.clone(),
                partitions,
            });
        }
        OffsetDeleteResponse {
            error_code: 0,
            throttle_time_ms: 0,
            topics,
        }
    }
}

/// Every committed offset of `group`, grouped by topic.
fn all_offsets(
    group: Option<&Group>,
    lookup: impl Fn(&str, i32) -> OffsetFetchPartitionResponse,
) -> Vec<OffsetFetchTopicResponse> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetFetchPartitionResponse>> = BTreeMap::new();
    for (topic, partition) in group.map(|g| g.offsets.keys()).into_iter().flatten() {
        by_topic
            .entry(topic)
            .or_default()
            .push(lookup(topic, *partition));
    }
    by_topic
        .into_iter()
        .map(|(name, partitions)| OffsetFetchTopicResponse {
            name: name.to_owned(),
            partitions,
        })
        .collect()
}

/// Topics the members of a consumer group subscribe to.
enum Subscribed {
    Nothing,
    Topics(Vec<String>),
    /// A subscription could not be read: assume every topic (never delete in use offsets).
    Everything,
}

impl Subscribed {
    fn contains(&self, topic: &str) -> bool {
        match self {
            Subscribed::Nothing => false,
            Subscribed::Topics(topics) => topics.iter().any(|t| t == topic),
            Subscribed::Everything => true,
        }
    }
}

fn subscribed_topics(group: &Group) -> Subscribed {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let mut topics = Vec::new();
    for member in group.members.values() {
        let metadata = match group.protocol_name {
            Some(_) => member.metadata_for(&protocol),
            None => member
                .protocols
                .first()
                .map(|(_, m)| m.clone())
                .unwrap_or_default(),
        };
        match parse_subscription_topics(metadata) {
            Some(mut t) => topics.append(&mut t),
            None => return Subscribed::Everything,
        }
    }
    Subscribed::Topics(topics)
}

/// The topics of a ConsumerProtocolSubscription (every version starts with an i16 version
/// and a non-flexible array of topic names).
fn parse_subscription_topics(metadata: bytes::Bytes) -> Option<Vec<String>> {
    let mut r = Reader::new(metadata);
    let _version = r.i16("version").ok()?;
    r.array(false, 2, "topics", |r| r.string(false, "topic"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::testkit::*;
    use crate::groups::{GroupConfig, GroupRecord};
    use crate::protocol::offset_delete::OffsetDeleteTopic;
    use crate::protocol::offset_fetch::OffsetFetchTopic;
    use bytes::Bytes;

    const T0: i64 = 1_000_000;

    fn fetch(c: &Coordinator, version: i16, partitions: Option<Vec<i32>>) -> OffsetFetchResponse {
        let topics = partitions.map(|p| {
            vec![OffsetFetchTopic {
                name: "orders".into(),
                partition_indexes: p,
            }]
        });
        let req = OffsetFetchRequest {
            group_id: GROUP.into(),
            topics: topics.clone(),
            groups: vec![OffsetFetchGroup {
                group_id: GROUP.into(),
                member_id: None,
                member_epoch: -1,
                topics,
            }],
            require_stable: false,
        };
        c.fetch_offsets(version, &req)
    }

    #[test]
    fn stale_generation_commit_is_refused() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None, None]);
        let t = T0 + 5_000;
        assert_eq!(
            commit_error(&c.commit_offsets(t, &commit_req(&ids[1], generation, 0, 10))),
            ErrorCode::NONE
        );
        let stale = c.commit_offsets(t, &commit_req(&ids[1], generation - 1, 0, 99));
        assert_eq!(commit_error(&stale), ErrorCode::ILLEGAL_GENERATION);
        let ghost = c.commit_offsets(t, &commit_req("ghost", generation, 0, 99));
        assert_eq!(commit_error(&ghost), ErrorCode::UNKNOWN_MEMBER_ID);
        // A simple (generation −1) commit to a group with members is refused too.
        let simple = c.commit_offsets(t, &commit_req("", -1, 0, 99));
        assert_eq!(commit_error(&simple), ErrorCode::UNKNOWN_MEMBER_ID);
        // In CompletingRebalance commits wait for the new generation.
        pending(c.join(t, VERSION, &client("c0"), &join_req(&ids[0], None)));
        respond(c.join(t, VERSION, &client("c1"), &join_req(&ids[1], None)));
        let busy = c.commit_offsets(t, &commit_req(&ids[1], generation + 1, 0, 99));
        assert_eq!(commit_error(&busy), ErrorCode::REBALANCE_IN_PROGRESS);
        let got = fetch(&c, 9, Some(vec![0]));
        assert_eq!(
            got.groups[0].topics[0].partitions[0].committed_offset, 10,
            "refused commits changed nothing"
        );
        let records = c.take_records();
        let commits = records
            .iter()
            .filter(|r| matches!(r, GroupRecord::OffsetCommit { .. }))
            .count();
        assert_eq!(commits, 1);
    }

    #[test]
    fn simple_commits_fetch_and_metadata_limit() {
        let mut c = Coordinator::new(GroupConfig {
            offset_metadata_max_bytes: 4,
            ..config()
        });
        // No group yet: generation −1 creates an empty group; any other generation is refused.
        assert_eq!(
            commit_error(&c.commit_offsets(T0, &commit_req("", 3, 0, 1))),
            ErrorCode::ILLEGAL_GENERATION
        );
        assert_eq!(
            commit_error(&c.commit_offsets(T0, &commit_req("", -1, 0, 7))),
            ErrorCode::NONE
        );
        assert_eq!(c.group_state(GROUP), Some(crate::groups::GroupState::Empty));
        let mut long = commit_req("", -1, 1, 8);
        long.topics[0].partitions[0].committed_metadata = Some("12345".into());
        assert_eq!(
            commit_error(&c.commit_offsets(T0, &long)),
            ErrorCode::OFFSET_METADATA_TOO_LARGE
        );
        for version in [1, 2, 7] {
            let got = fetch(&c, version, Some(vec![0, 1]));
            let p = &got.topics[0].partitions;
            assert_eq!((p[0].committed_offset, p[0].committed_leader_epoch), (7, 1));
            assert_eq!(p[0].metadata.as_deref(), Some("m"));
            assert_eq!(
                (p[1].committed_offset, p[1].metadata.as_deref()),
                (-1, Some(""))
            );
        }
        // Null topics: everything the group has.
        let all = fetch(&c, 8, None);
        assert_eq!(all.groups[0].topics[0].partitions.len(), 1);
        // Unknown group: −1, no error.
        let mut other = OffsetFetchRequest {
            group_id: "nope".into(),
            topics: None,
            groups: Vec::new(),
            require_stable: false,
        };
        other.topics = Some(vec![OffsetFetchTopic {
            name: "orders".into(),
            partition_indexes: vec![0],
        }]);
        let got = c.fetch_offsets(5, &other);
        assert_eq!(
            (got.error_code, got.topics[0].partitions[0].committed_offset),
            (0, -1)
        );
        let loading = Coordinator::new_loading(config());
        assert_eq!(
            ErrorCode(fetch(&loading, 8, None).groups[0].error_code),
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        );
        assert_eq!(
            ErrorCode(fetch(&loading, 1, Some(vec![0])).topics[0].partitions[0].error_code),
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        );
    }

    #[test]
    fn offsets_and_generation_survive_replay_through_bytes() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[Some("host-a"), None]);
        let t = T0 + 5_000;
        for (partition, offset) in [(0, 10), (1, 20), (0, 15)] {
            assert_eq!(
                commit_error(
                    &c.commit_offsets(t, &commit_req(&ids[0], generation, partition, offset))
                ),
                ErrorCode::NONE
            );
        }
        // Through the bytes the log would hold.
        let stored: Vec<(Bytes, Option<Bytes>)> = c
            .take_records()
            .iter()
            .map(|r| (r.key_bytes(), r.value_bytes()))
            .collect();
        let records: Vec<GroupRecord> = stored
            .into_iter()
            .map(|(k, v)| GroupRecord::decode(k, v).unwrap())
            .collect();
        let mut restarted = Coordinator::new_loading(config());
        restarted.load(t + 1_000, records);
        assert_eq!(
            fetch(&restarted, 9, Some(vec![0, 1])),
            fetch(&c, 9, Some(vec![0, 1]))
        );
        let got = fetch(&restarted, 9, Some(vec![0, 1]));
        let offsets: Vec<i64> = got.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| p.committed_offset)
            .collect();
        assert_eq!(offsets, vec![15, 20]);
        // The generation is back, Stable, with its assignments and static members.
        assert_eq!(
            restarted.group_state(GROUP),
            Some(crate::groups::GroupState::Stable)
        );
        let s = respond(restarted.sync(t + 1_000, &sync_req(&ids[1], generation, &[])));
        assert_eq!(&s.assignment[..], b"a-1");
        assert_eq!(
            restarted
                .heartbeat(
                    t + 1_000,
                    &heartbeat_req(&ids[0], generation, Some("host-a"))
                )
                .error_code,
            0
        );
        let fenced =
            restarted.heartbeat(t + 1_000, &heartbeat_req("old", generation, Some("host-a")));
        assert_eq!(ErrorCode(fenced.error_code), ErrorCode::FENCED_INSTANCE_ID);
    }

    #[test]
    fn offset_delete_spares_subscribed_topics() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None]);
        let mut commit = commit_req(&ids[0], generation, 0, 5);
        commit.topics[0].name = "old-topic".into();
        c.commit_offsets(T0 + 4_000, &commit);
        c.commit_offsets(T0 + 4_000, &commit_req(&ids[0], generation, 0, 6));
        c.take_records();
        let req = OffsetDeleteRequest {
            group_id: GROUP.into(),
            topics: vec![
                OffsetDeleteTopic {
                    name: "orders".into(),
                    partition_indexes: vec![0],
                },
                OffsetDeleteTopic {
                    name: "old-topic".into(),
                    partition_indexes: vec![0],
                },
            ],
        };
        let resp = c.delete_offsets(&req);
        assert_eq!(resp.error_code, 0);
        assert_eq!(
            ErrorCode(resp.topics[0].partitions[0].error_code),
            ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
        );
        assert_eq!(resp.topics[1].partitions[0].error_code, 0);
        let records = c.take_records();
        assert!(
            matches!(&records[..], [GroupRecord::OffsetCommit { value: None, topic, .. }] if topic == "old-topic")
        );
        let missing = OffsetDeleteRequest {
            group_id: "nope".into(),
            topics: Vec::new(),
        };
        assert_eq!(
            ErrorCode(c.delete_offsets(&missing).error_code),
            ErrorCode::GROUP_ID_NOT_FOUND
        );
    }

    #[test]
    fn subscription_topics_are_read_or_refused() {
        let mut w = crate::protocol::Writer::new();
        w.i16(1);
        w.array(&["orders", "audit"], false, |w, t| w.string(t, false));
        w.bytes(b"userdata", false);
        let topics = parse_subscription_topics(w.finish_contiguous()).unwrap();
        assert_eq!(topics, vec!["orders".to_string(), "audit".to_string()]);
        assert_eq!(
            parse_subscription_topics(Bytes::from_static(&[0, 1, 0x7f, 0, 0, 0])),
            None
        );
    }
}
