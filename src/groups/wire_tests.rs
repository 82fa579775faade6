//! Codec + coordinator together, at the byte level: requests are built and encoded the way
//! a client library would (the kafka-protocol crate, generated from Kafka's schemas),
//! decoded by ringmq's codecs, answered by the coordinator, encoded by ringmq and decoded
//! again by kafka-protocol. Two clients of very different ages share one group: one speaks
//! the newest versions served, the other the oldest.

#![cfg(test)]

use super::testkit::{pending, respond, subscription};
use super::{ClientInfo, Coordinator, GroupConfig, Reply};
use crate::protocol::api::testkit::{decode_all, encode, Dec, Enc};
use crate::protocol::{heartbeat, join_group, offset_commit, offset_fetch, sync_group, ErrorCode};
use bytes::Bytes;
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Client bytes → our request type.
fn from_client<O: Encodable, T>(request: &O, version: i16, dec: Dec<T>) -> T {
    let mut bytes = Vec::new();
    request.encode(&mut bytes, version).expect("client encodes");
    decode_all(Bytes::from(bytes), version, dec).expect("ringmq decodes the client's request")
}

/// Our response → what the client library reads.
fn to_client<T, O: Decodable>(response: &T, version: i16, enc: Enc<T>) -> O {
    let mut bytes = encode(response, version, enc);
    let decoded = O::decode(&mut bytes, version).expect("client decodes ringmq's response");
    assert!(bytes.is_empty(), "client left bytes at v{version}");
    decoded
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn join(member_id: &str, instance: Option<&str>) -> kp::JoinGroupRequest {
    kp::JoinGroupRequest::default()
        .with_group_id(kp::GroupId(s("wire")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(20_000)
        .with_member_id(s(member_id))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            kp::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(subscription(&["orders"])),
        ])
}

fn sync(
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> kp::SyncGroupRequest {
    kp::SyncGroupRequest::default()
        .with_group_id(kp::GroupId(s("wire")))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    kp::sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::from_static(a))
                })
                .collect(),
        )
}

#[test]
fn newest_and_oldest_clients_share_a_group_over_the_wire() {
    let mut c = Coordinator::new(GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    });
    let who = ClientInfo {
        client_id: "wire".into(),
        client_host: "/127.0.0.1".into(),
    };
    let join_in = |req, v| from_client(&req, v, join_group::JoinGroupRequest::decode);

    // New client (v9): MEMBER_ID_REQUIRED first, then it joins alone (no initial delay).
    let first = respond(c.join(0, 9, &who, &join_in(join("", None), 9)));
    let first: kp::JoinGroupResponse = to_client(&first, 9, join_group::JoinGroupResponse::encode);
    assert_eq!(first.error_code, ErrorCode::MEMBER_ID_REQUIRED.0);
    let new_id = first.member_id.to_string();
    let j = respond(c.join(0, 9, &who, &join_in(join(&new_id, None), 9)));
    assert_eq!(j.generation_id, 1);

    // Old client (v2) arrives: no MEMBER_ID_REQUIRED at v2; it waits for the rebalance.
    let old_ticket = pending(c.join(10, 2, &who, &join_in(join("", None), 2)));
    let renewed = respond(c.join(20, 9, &who, &join_in(join(&new_id, None), 9)));
    let renewed: kp::JoinGroupResponse =
        to_client(&renewed, 9, join_group::JoinGroupResponse::encode);
    assert_eq!((renewed.generation_id, renewed.members.len()), (2, 2));
    assert_eq!(renewed.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(renewed.leader.as_str(), new_id);
    let old_join = c
        .take_completions()
        .into_iter()
        .find(|(t, _)| *t == old_ticket);
    let Some((_, Reply::Join(old_join))) = old_join else {
        panic!("old client not answered")
    };
    let old_join: kp::JoinGroupResponse =
        to_client(&old_join, 2, join_group::JoinGroupResponse::encode);
    assert_eq!(old_join.protocol_name.as_deref(), Some("range"));
    let old_id = old_join.member_id.to_string();

    // Old client syncs at v0 and waits; the leader syncs at v5 with both assignments.
    let sync_in = |req, v| from_client(&req, v, sync_group::SyncGroupRequest::decode);
    let old_sync = pending(c.sync(30, &sync_in(sync(&old_id, 2, &[]), 0)));
    let assignments: [(&str, &'static [u8]); 2] = [(&new_id, b"p0"), (&old_id, b"p1")];
    let leader_sync = respond(c.sync(30, &sync_in(sync(&new_id, 2, &assignments), 5)));
    let leader_sync: kp::SyncGroupResponse =
        to_client(&leader_sync, 5, sync_group::SyncGroupResponse::encode);
    assert_eq!(
        (
            &leader_sync.assignment[..],
            leader_sync.protocol_name.as_deref()
        ),
        (&b"p0"[..], Some("range"))
    );
    let done = c.take_completions();
    let Some((_, Reply::Sync(old_sync))) = done.into_iter().find(|(t, _)| *t == old_sync) else {
        panic!()
    };
    let old_sync: kp::SyncGroupResponse =
        to_client(&old_sync, 0, sync_group::SyncGroupResponse::encode);
    assert_eq!(&old_sync.assignment[..], b"p1");

    // Heartbeats at v0 and v4.
    for (id, v) in [(&old_id, 0), (&new_id, 4)] {
        let hb = kp::HeartbeatRequest::default()
            .with_group_id(kp::GroupId(s("wire")))
            .with_generation_id(2)
            .with_member_id(s(id));
        let resp = c.heartbeat(
            40,
            &from_client(&hb, v, heartbeat::HeartbeatRequest::decode),
        );
        let resp: kp::HeartbeatResponse = to_client(&resp, v, heartbeat::HeartbeatResponse::encode);
        assert_eq!(resp.error_code, 0);
    }

    // Commit at v2 (old) and v9 (new), fetch at v1 and v9.
    for (id, v, partition, offset) in [(&old_id, 2, 1, 100), (&new_id, 9, 0, 200)] {
        let commit = kp::OffsetCommitRequest::default()
            .with_group_id(kp::GroupId(s("wire")))
            .with_generation_id_or_member_epoch(2)
            .with_member_id(s(id))
            .with_topics(vec![
                kp::offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(kp::TopicName(s("orders")))
                    .with_partitions(vec![
                        kp::offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(offset)
                            .with_committed_metadata(Some(s(""))),
                    ]),
            ]);
        let resp = c.commit_offsets(
            50,
            &from_client(&commit, v, offset_commit::OffsetCommitRequest::decode),
        );
        let resp: kp::OffsetCommitResponse =
            to_client(&resp, v, offset_commit::OffsetCommitResponse::encode);
        assert_eq!(resp.topics[0].partitions[0].error_code, 0, "commit v{v}");
    }
    let old_fetch = kp::OffsetFetchRequest::default()
        .with_group_id(kp::GroupId(s("wire")))
        .with_topics(Some(vec![
            kp::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(kp::TopicName(s("orders")))
                .with_partition_indexes(vec![0, 1]),
        ]));
    let resp = c.fetch_offsets(
        1,
        &from_client(&old_fetch, 1, offset_fetch::OffsetFetchRequest::decode),
    );
    let resp: kp::OffsetFetchResponse =
        to_client(&resp, 1, offset_fetch::OffsetFetchResponse::encode);
    let offsets: Vec<i64> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(offsets, vec![200, 100]);
    let new_fetch = kp::OffsetFetchRequest::default().with_groups(vec![
        kp::offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(kp::GroupId(s("wire")))
            .with_topics(None),
    ]);
    let resp = c.fetch_offsets(
        9,
        &from_client(&new_fetch, 9, offset_fetch::OffsetFetchRequest::decode),
    );
    let resp: kp::OffsetFetchResponse =
        to_client(&resp, 9, offset_fetch::OffsetFetchResponse::encode);
    let partitions = &resp.groups[0].topics[0].partitions;
    assert_eq!(
        partitions
            .iter()
            .map(|p| p.committed_offset)
            .collect::<Vec<_>>(),
        vec![200, 100]
    );
}
