//! Test drivers for the coordinator: request builders and a "bring N members to Stable"
//! helper, so each scenario test reads as the story it checks.

use super::{ClientInfo, Coordinator, GroupConfig, Outcome, Reply, Ticket};
use crate::protocol::heartbeat::HeartbeatRequest;
use crate::protocol::join_group::{JoinGroupProtocol, JoinGroupRequest, JoinGroupResponse};
use crate::protocol::offset_commit::{
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic,
};
use crate::protocol::sync_group::{SyncGroupAssignment, SyncGroupRequest, SyncGroupResponse};
use crate::protocol::ErrorCode;
use bytes::Bytes;

pub const GROUP: &str = "payments";
pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;
pub const VERSION: i16 = 9;

pub fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        member_id_seed: 42,
        ..GroupConfig::default()
    }
}

pub fn client(name: &str) -> ClientInfo {
    ClientInfo {
        client_id: name.to_owned(),
        client_host: "/127.0.0.1".to_owned(),
    }
}

/// ConsumerProtocolSubscription v0 bytes for `topics`.
pub fn subscription(topics: &[&str]) -> Bytes {
    let mut w = crate::protocol::Writer::new();
    w.i16(0);
    w.array(topics, false, |w, t| w.string(t, false));
    w.bytes(b"", false);
    w.finish_contiguous()
}

pub fn join_req(member_id: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_owned),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "range".into(),
            metadata: subscription(&["orders"]),
        }],
        reason: None,
    }
}

pub fn sync_req(
    member_id: &str,
    generation_id: i32,
    assignments: &[(&str, &str)],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .iter()
            .map(|(m, a)| SyncGroupAssignment {
                member_id: (*m).into(),
                assignment: Bytes::copy_from_slice(a.as_bytes()),
            })
            .collect(),
    }
}

pub fn heartbeat_req(
    member_id: &str,
    generation_id: i32,
    instance: Option<&str>,
) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_owned),
    }
}

pub fn commit_req(
    member_id: &str,
    generation_id: i32,
    partition: i32,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitTopic {
            name: "orders".into(),
            partitions: vec![OffsetCommitPartition {
                partition_index: partition,
                committed_offset: offset,
                committed_leader_epoch: 1,
                commit_timestamp: -1,
                committed_metadata: Some("m".into()),
            }],
        }],
    }
}

pub fn commit_error(resp: &crate::protocol::offset_commit::OffsetCommitResponse) -> ErrorCode {
    ErrorCode(resp.topics[0].partitions[0].error_code)
}

pub fn pending<R: std::fmt::Debug>(outcome: Outcome<R>) -> Ticket {
    match outcome {
        Outcome::Pending(t) => t,
        Outcome::Respond(r) => panic!("expected to wait, got {r:?}"),
    }
}

pub fn respond<R>(outcome: Outcome<R>) -> R {
    match outcome {
        Outcome::Respond(r) => r,
        Outcome::Pending(t) => panic!("expected an answer, got ticket {t:?}"),
    }
}

pub fn join_reply(completions: &[(Ticket, Reply)], ticket: Ticket) -> JoinGroupResponse {
    match completions.iter().find(|(t, _)| *t == ticket) {
        Some((_, Reply::Join(r))) => r.clone(),
        other => panic!("no join answer for {ticket:?}: {other:?} in {completions:?}"),
    }
}

pub fn sync_reply(completions: &[(Ticket, Reply)], ticket: Ticket) -> SyncGroupResponse {
    match completions.iter().find(|(t, _)| *t == ticket) {
        Some((_, Reply::Sync(r))) => r.clone(),
        other => panic!("no sync answer for {ticket:?}: {other:?} in {completions:?}"),
    }
}

/// First JoinGroup of a dynamic member (v9): MEMBER_ID_REQUIRED, then the rejoin that waits.
pub fn join_dynamic(c: &mut Coordinator, now_ms: i64, name: &str) -> (String, Ticket) {
    let first = respond(c.join(now_ms, VERSION, &client(name), &join_req("", None)));
    assert_eq!(ErrorCode(first.error_code), ErrorCode::MEMBER_ID_REQUIRED);
    assert!(first.member_id.starts_with(name), "{}", first.member_id);
    let ticket = pending(c.join(
        now_ms,
        VERSION,
        &client(name),
        &join_req(&first.member_id, None),
    ));
    (first.member_id, ticket)
}

/// A Stable group: members join (static when `instances` are given), the initial delay
/// passes, the leader syncs "a-<index>" assignments. Returns (member ids, generation).
pub fn stable_group(
    c: &mut Coordinator,
    now_ms: i64,
    instances: &[Option<&str>],
) -> (Vec<String>, i32) {
    let mut tickets = Vec::new();
    let mut ids = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let name = format!("c{i}");
        let (id, ticket) = match instance {
            None => join_dynamic(c, now_ms, &name),
            Some(inst) => {
                let t = pending(c.join(now_ms, VERSION, &client(&name), &join_req("", Some(inst))));
                (String::new(), t)
            }
        };
        ids.push(id);
        tickets.push(ticket);
    }
    let done = c.tick(now_ms + i64::from(config().initial_rebalance_delay_ms));
    let joins: Vec<JoinGroupResponse> = tickets.iter().map(|t| join_reply(&done, *t)).collect();
    let ids: Vec<String> = joins.iter().map(|j| j.member_id.clone()).collect();
    let generation = joins[0].generation_id;
    let leader = joins[0].leader.clone();
    let assignments: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("a-{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = assignments
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_str()))
        .collect();
    let now_ms = now_ms + i64::from(config().initial_rebalance_delay_ms);
    let follower_tickets: Vec<Ticket> = ids
        .iter()
        .filter(|id| **id != leader)
        .map(|id| pending(c.sync(now_ms, &sync_req(id, generation, &[]))))
        .collect();
    let leader_sync = respond(c.sync(now_ms, &sync_req(&leader, generation, &refs)));
    assert_eq!(leader_sync.error_code, 0);
    let done = c.take_completions();
    for t in follower_tickets {
        assert_eq!(sync_reply(&done, t).error_code, 0);
    }
    (ids, generation)
}
