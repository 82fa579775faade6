//! Issue 11, routing on three nodes in network namespaces (tests/common/netns.rs; the clients
//! run in the root namespace and reach every node over the bridge at its advertised address).
//!
//! - Group requests that name many groups (batched FindCoordinator, batched OffsetFetch,
//!   DescribeGroups, DeleteGroups) are answered per group: served for the groups this node
//!   coordinates, NOT_COORDINATOR for the others.
//!
//! Raw requests are encoded and their responses decoded by the kafka-protocol crate (an
//! implementation independent of ringmq's codec).

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::netns::{self, NetCluster};
use common::{kafka, RawConn, ReadOutcome};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    OffsetFetchRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rdkafka::consumer::Consumer;

const NOT_COORDINATOR: i16 = 16;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// One request through kafka-protocol's codec, on a fresh connection to `addr`; the response
/// must decode exactly.
fn call<R: Request>(addr: &str, version: i16, req: &R) -> R::Response {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("cluster-clients")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, R::header_version(version))
        .expect("encode header");
    req.encode(&mut buf, version).expect("encode request");
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    let mut conn = RawConn::connect(addr);
    assert!(conn.send(&frame), "send to {addr}");
    let body = match conn.read_frame(Duration::from_secs(20)) {
        ReadOutcome::Frame(body) => body,
        other => panic!("api {} v{version} to {addr}: {other:?}", R::KEY),
    };
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .expect("response header");
    assert_eq!(header.correlation_id, 7, "correlation id");
    let resp = R::Response::decode(&mut body, version)
        .unwrap_or_else(|e| panic!("decode api {} v{version} from {addr}: {e}", R::KEY));
    assert!(body.is_empty(), "{} bytes after the response", body.len());
    resp
}

/// The broker ids node `addr` lists, sorted (empty if it does not answer).
fn listed(addr: &str) -> Vec<i32> {
    let mut ids: Vec<i32> = kafka::consumer(addr)
        .fetch_metadata(None, Duration::from_secs(2))
        .map(|md| md.brokers().iter().map(|b| b.id()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// Three nodes, all seeds; waits until every node's Metadata lists the 3 brokers.
fn three_nodes(name: &str) -> NetCluster {
    assert!(
        netns::available(),
        "this test needs root, ip and iptables (CI runs as root and installs iptables)"
    );
    let mut c = NetCluster::create(name, 3);
    c.start_all(3);
    for node in &c.nodes {
        let all = netns::wait_until(Duration::from_secs(15), || {
            listed(&node.addr()) == [1, 2, 3]
        });
        assert!(
            all.is_some(),
            "node {} lists brokers {:?}",
            node.id,
            listed(&node.addr())
        );
    }
    c
}

/// FindCoordinator v4 (batched) on `addr`: the node named for each group (-1 on an error).
fn coordinators(addr: &str, groups: &[String]) -> Vec<i32> {
    let keys = groups
        .iter()
        .map(|g| StrBytes::from_string(g.clone()))
        .collect();
    let req = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(keys);
    let resp = call(addr, 4, &req);
    let named: Vec<&str> = resp.coordinators.iter().map(|c| &*c.key).collect();
    assert_eq!(named, groups, "FindCoordinator answers every key in order");
    resp.coordinators
        .iter()
        .map(|c| if c.error_code == 0 { c.node_id.0 } else { -1 })
        .collect()
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}

/// Batched OffsetFetch v8, DescribeGroups v5 and DeleteGroups v2 on `addr` for `groups`:
/// the error code of each group in each answer (in request order).
fn group_errors(addr: &str, groups: &[String]) -> [Vec<i16>; 3] {
    let asked = groups
        .iter()
        .map(|g| OffsetFetchRequestGroup::default().with_group_id(group_id(g)))
        .collect();
    let fetch = call(addr, 8, &OffsetFetchRequest::default().with_groups(asked));
    let ids: Vec<GroupId> = groups.iter().map(|g| group_id(g)).collect();
    let describe = call(
        addr,
        5,
        &DescribeGroupsRequest::default().with_groups(ids.clone()),
    );
    let delete = call(
        addr,
        2,
        &DeleteGroupsRequest::default().with_groups_names(ids.clone()),
    );
    let order = |got: Vec<&GroupId>| assert_eq!(got, ids.iter().collect::<Vec<_>>(), "in order");
    order(fetch.groups.iter().map(|g| &g.group_id).collect());
    order(describe.groups.iter().map(|g| &g.group_id).collect());
    order(delete.results.iter().map(|g| &g.group_id).collect());
    [
        fetch.groups.iter().map(|g| g.error_code).collect(),
        describe.groups.iter().map(|g| g.error_code).collect(),
        delete.results.iter().map(|g| g.error_code).collect(),
    ]
}

/// Single-group OffsetFetch v7 on `addr`: the top-level error code.
fn offset_fetch_v7_error(addr: &str, group: &str) -> i16 {
    let req = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    call(addr, 7, &req).error_code
}

/// 30 groups spread over the 3 coordinators: batched FindCoordinator names the same owner for
/// each group on every node; every node answers batched OffsetFetch, DescribeGroups and
/// DeleteGroups per group, serving the groups it coordinates (OffsetFetch and DescribeGroups
/// error 0, DeleteGroups GROUP_ID_NOT_FOUND for a group that never existed) and answering
/// NOT_COORDINATOR for every other group; single-group OffsetFetch v7 likewise.
#[test]
fn multi_group_requests_answer_not_coordinator_per_group() {
    let c = three_nodes("cc-coord");
    let groups: Vec<String> = (0..30).map(|i| format!("group-{i}")).collect();
    // Every node must know all three registered nodes before they agree on owners.
    let mut owners = Vec::new();
    let agreed = netns::wait_until(Duration::from_secs(10), || {
        let seen: Vec<Vec<i32>> = c
            .nodes
            .iter()
            .map(|n| coordinators(&n.addr(), &groups))
            .collect();
        owners = seen[0].clone();
        seen.windows(2).all(|w| w[0] == w[1]) && (1..=3).all(|n| owners.contains(&n))
    });
    assert!(agreed.is_some(), "FindCoordinator: {owners:?}");
    for node in &c.nodes {
        let owned = |ok: i16| -> Vec<i16> {
            let code = |&o: &i32| if o == node.id { ok } else { NOT_COORDINATOR };
            owners.iter().map(code).collect()
        };
        let [fetch, describe, delete] = group_errors(&node.addr(), &groups);
        assert_eq!(fetch, owned(0), "OffsetFetch v8 on node {}", node.id);
        assert_eq!(describe, owned(0), "DescribeGroups on node {}", node.id);
        assert_eq!(
            delete,
            owned(GROUP_ID_NOT_FOUND),
            "DeleteGroups on node {}",
            node.id
        );
        for (g, &o) in groups.iter().zip(&owners).take(6) {
            let want = if o == node.id { 0 } else { NOT_COORDINATOR };
            assert_eq!(
                offset_fetch_v7_error(&node.addr(), g),
                want,
                "OffsetFetch v7 {g}"
            );
        }
    }
}
