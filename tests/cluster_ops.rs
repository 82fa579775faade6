//! Operating a cluster: `ringmq cluster info` and the cluster gauges of `/metrics`, against
//! real nodes in network namespaces (tests/common/netns.rs).

mod common;

use common::netns::{self, NetCluster};
use rdkafka::consumer::Consumer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// Metrics port of every node (on its own address, inside its namespace).
const METRICS_PORT: u16 = 9644;

/// `ringmq cluster info --bootstrap addr [--json]`: stdout, or None if it failed.
fn cluster_info(addr: &str, json: bool) -> Option<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringmq"));
    cmd.args(["cluster", "info", "--bootstrap", addr]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run the ringmq cli");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One node of `cluster info --json`.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    id: i32,
    host: String,
    rpc: String,
    state: String,
    role: String,
    partitions: i64,
    leaders: i64,
}

/// The raw text of `"key":VALUE` in `obj` (strings without their quotes).
fn field<'a>(obj: &'a str, key: &str) -> &'a str {
    let tag = format!("\"{key}\":");
    let Some(at) = obj.find(&tag) else { return "" };
    let rest = &obj[at + tag.len()..];
    match rest.strip_prefix('"') {
        Some(s) => &s[..s.find('"').unwrap_or(s.len())],
        None => rest[..rest.find([',', '}']).unwrap_or(rest.len())].trim(),
    }
}

/// The nodes `cluster info --json` lists (empty if the command failed).
fn nodes(addr: &str) -> Vec<Node> {
    let Some(out) = cluster_info(addr, true) else {
        return Vec::new();
    };
    let Some(start) = out.find("\"nodes\":[") else {
        return Vec::new();
    };
    let list = &out[start..out[start..].find(']').map_or(out.len(), |e| start + e)];
    list.split("{\"node_id\":")
        .skip(1)
        .map(|o| {
            let o = format!("{{\"node_id\":{o}");
            Node {
                id: field(&o, "node_id").parse().unwrap_or(-1),
                host: field(&o, "host").into(),
                rpc: field(&o, "rpc").into(),
                state: field(&o, "state").into(),
                role: field(&o, "controller_role").into(),
                partitions: field(&o, "partitions").parse().unwrap_or(-1),
                leaders: field(&o, "leaders").parse().unwrap_or(-1),
            }
        })
        .collect()
}

/// `GET /metrics` of a node from the root namespace.
fn scrape(ip: &str) -> String {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{METRICS_PORT}").parse().unwrap(),
        Duration::from_secs(5),
    )
    .expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The value of the sample `name_and_labels` (exact, up to the space before the value).
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn roles(list: &[Node]) -> Vec<String> {
    list.iter().map(|n| n.role.clone()).collect()
}

/// Four nodes, the first three seeds (voters): `cluster info` lists every node with its
/// addresses, state and controller role (one leader, two voters, one observer) and the
/// partitions and leaders of a 8-partition topic per node, matching Metadata; a killed
/// node stays listed, as suspect then dead, and leaves the live count of `/metrics`, whose
/// gauges name the same controller leader, a commit index that grows, and gossip traffic.
#[test]
fn cluster_info_and_metrics_show_every_node_its_state_and_role() {
    if !netns::available() {
        panic!("this test needs root, ip and iptables (CI runs as root and installs iptables)");
    }
    let mut c = NetCluster::create("ops", 4);
    c.extra = vec!["--metrics-listen".into(), format!("0.0.0.0:{METRICS_PORT}")];
    c.start_all(3);
    let (a1, a2) = (c.nodes[0].addr(), c.nodes[1].addr());
    let mut seen = Vec::new();
    let settled = netns::wait_until(Duration::from_secs(20), || {
        seen = nodes(&a2);
        let mut r = roles(&seen);
        r.sort();
        seen.len() == 4
            && seen.iter().all(|n| n.state == "alive")
            && r == ["leader", "observer", "voter", "voter"]
    });
    assert!(
        settled.is_some(),
        "4 alive nodes with their roles: {seen:?}"
    );
    for (n, node) in seen.iter().zip(&c.nodes) {
        assert_eq!(n.id, node.id);
        assert_eq!(n.host, node.ip);
        assert_eq!(n.rpc, node.rpc_addr());
    }
    assert_eq!(seen[3].role, "observer", "node 4 is not a seed");
    let leader = seen.iter().find(|n| n.role == "leader").unwrap().id;
    let info = cluster_info(&a2, true).expect("cluster info");
    assert_eq!(field(&info, "controller_id"), leader.to_string(), "{info}");

    let created = netns::wait_until(Duration::from_secs(15), || {
        let args = [
            "topic",
            "create",
            "spread",
            "-p",
            "8",
            "-r",
            "1",
            "--bootstrap",
            &a1,
        ];
        let out = Command::new(env!("CARGO_BIN_EXE_ringmq"))
            .args(args)
            .output();
        out.is_ok_and(|o| o.status.success())
    });
    assert!(created.is_some(), "topic created");
    // Per node, the partitions and leaders cluster info counts equal Metadata's.
    let counted = netns::wait_until(Duration::from_secs(10), || {
        seen = nodes(&a2);
        let md =
            common::kafka::consumer(&a2).fetch_metadata(Some("spread"), Duration::from_secs(3));
        let Ok(md) = md else { return false };
        let leaders: Vec<i32> = md
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .map(|p| p.leader())
            .collect();
        let led = |id: i32| leaders.iter().filter(|&&l| l == id).count() as i64;
        leaders.len() == 8
            && seen.iter().map(|n| n.partitions).sum::<i64>() == 8
            && seen
                .iter()
                .all(|n| n.leaders == led(n.id) && n.partitions == n.leaders)
    });
    assert!(
        counted.is_some(),
        "partitions and leaders per node: {seen:?}"
    );

    let m1 = scrape(&c.nodes[0].ip);
    assert_eq!(
        sample(&m1, "ringmq_cluster_nodes{state=\"alive\"}"),
        Some(4.0),
        "{m1}"
    );
    assert_eq!(
        sample(&m1, "ringmq_cluster_nodes{state=\"dead\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&m1, "ringmq_controller_leader_id"),
        Some(f64::from(leader))
    );
    let commit1 = sample(&m1, "ringmq_controller_commit_index").expect("commit index");
    assert!(commit1 > 0.0);
    let sent1 = sample(&m1, "ringmq_gossip_packets_sent_total").expect("gossip sent");
    let received1 = sample(&m1, "ringmq_gossip_packets_received_total").expect("received");
    assert!(sent1 > 0.0 && received1 > 0.0, "{m1}");

    c.kill(4);
    let mut states = Vec::new();
    let noticed = netns::wait_until(Duration::from_secs(10), || {
        let list = nodes(&a2);
        if let Some(n4) = list.iter().find(|n| n.id == 4) {
            states.push(n4.state.clone());
        }
        list.len() == 4 && list[3].state == "dead"
    });
    assert!(
        noticed.is_some(),
        "node 4 listed as dead: states seen {states:?}"
    );
    assert!(
        states
            .iter()
            .all(|s| ["alive", "suspect", "dead"].contains(&s.as_str())),
        "{states:?}"
    );
    let text = cluster_info(&a2, false).expect("text output");
    let row4 = text
        .lines()
        .find(|l| l.starts_with("4 "))
        .expect("node 4 row");
    assert!(row4.contains("dead") && row4.contains("observer"), "{text}");
    let others = nodes(&a2);
    assert!(others[..3].iter().all(|n| n.state == "alive"), "{others:?}");

    let m2 = scrape(&c.nodes[0].ip);
    assert_eq!(
        sample(&m2, "ringmq_cluster_nodes{state=\"alive\"}"),
        Some(3.0),
        "{m2}"
    );
    assert_eq!(
        sample(&m2, "ringmq_cluster_nodes{state=\"dead\"}"),
        Some(1.0)
    );
    assert!(sample(&m2, "ringmq_controller_commit_index").unwrap() >= commit1);
    assert!(sample(&m2, "ringmq_gossip_packets_sent_total").unwrap() > sent1);
    assert!(sample(&m2, "ringmq_gossip_packets_received_total").unwrap() > received1);

    // One log line per membership change and per controller election.
    let log = c.nodes[1].log_lines();
    assert!(log
        .iter()
        .any(|l| l.contains("membership: node 4") && l.contains("is down")));
    assert!(log
        .iter()
        .any(|l| l.contains("controller: leader is now node")));
}
