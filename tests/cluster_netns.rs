//! The multi-host harness itself (tests/common/netns.rs): nodes in their own network
//! namespaces serve Kafka clients on their own addresses, reach each other over RPC, and the
//! faults (cut off, lossy, slow, pause, kill) do what they say and heal.

mod common;

use common::kafka;
use common::netns::{self, NetCluster, RPC_PORT};
use rdkafka::consumer::Consumer;
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether a TCP connection from namespace `ns` to `ip:port` opens within `t`.
fn connects_from(ns: &str, ip: &str, port: u16, t: Duration) -> bool {
    let script = format!("exec 3<>/dev/tcp/{ip}/{port}");
    let secs = format!("{:.1}", t.as_secs_f64());
    Command::new("ip")
        .args(["netns", "exec", ns, "timeout", &secs, "bash", "-c", &script])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn nodes_in_namespaces_serve_and_faults_apply_and_heal() {
    if !netns::available() {
        panic!("this test needs root, ip and iptables (CI runs as root and installs iptables)");
    }
    let mut c = NetCluster::create("netns", 2);
    c.start_all(1);
    // Clients in the root namespace reach every node on its own address; node ids differ.
    assert!(kafka::broker_ids(&c.nodes[0].addr()).contains(&1));
    assert!(kafka::broker_ids(&c.nodes[1].addr()).contains(&2));
    let (ns1, ip2) = (c.nodes[0].ns.clone(), c.nodes[1].ip.clone());
    let t = Duration::from_secs(2);
    assert!(
        connects_from(&ns1, &ip2, RPC_PORT, t),
        "node 1 reaches node 2's RPC port"
    );
    c.cut_off(2);
    assert!(!connects_from(&ns1, &ip2, RPC_PORT, t), "cut off");
    // The root namespace (clients) still reaches the cut-off node.
    assert!(kafka::broker_ids(&c.nodes[1].addr()).contains(&2));
    c.heal(2);
    assert!(connects_from(&ns1, &ip2, RPC_PORT, t), "healed");
    c.lossy(2, 1.0);
    assert!(
        !connects_from(&ns1, &ip2, RPC_PORT, t),
        "100% loss drops everything"
    );
    c.heal(2);
    c.slow(2, "1mbit");
    assert!(
        connects_from(&ns1, &ip2, RPC_PORT, t),
        "slow still connects"
    );
    c.heal(2);
    // Paused: the kernel still completes TCP handshakes, but Kafka requests get no answer.
    c.pause(2);
    let started = Instant::now();
    let cfg = kafka::base_config(&c.nodes[1].addr());
    let consumer: rdkafka::consumer::BaseConsumer = cfg.create().expect("consumer");
    assert!(consumer
        .fetch_metadata(None, Duration::from_secs(1))
        .is_err());
    assert!(started.elapsed() >= Duration::from_millis(900));
    c.resume(2);
    assert!(consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .is_ok());
    c.kill(2);
    // The kernel tears a killed process's io_uring (which holds its sockets) down a moment
    // after the kill.
    let gone = netns::wait_until(Duration::from_secs(10), || {
        !connects_from(&ns1, &ip2, 9092, t)
    });
    assert!(gone.is_some(), "killed node stops listening");
    c.start(2, 1);
    assert!(kafka::broker_ids(&c.nodes[1].addr()).contains(&2));
}

#[test]
fn dropping_the_cluster_removes_namespaces_and_the_bridge() {
    if !netns::available() {
        panic!("this test needs root, ip and iptables");
    }
    let (bridge, namespaces) = {
        let mut c = NetCluster::create("netns-drop", 2);
        c.start(1, 1);
        let ns: Vec<String> = c.nodes.iter().map(|n| n.ns.clone()).collect();
        (c.bridge.clone(), ns)
    };
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for ns in &namespaces {
        assert!(
            !list.split_whitespace().any(|w| w == ns),
            "{ns} left behind"
        );
    }
    let link = Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .unwrap();
    assert!(!link.status.success(), "bridge {bridge} left behind");
}

/// The broker ids node `addr` lists in Metadata, sorted (empty if it does not answer).
fn listed(addr: &str) -> Vec<i32> {
    let c = kafka::consumer(addr);
    let mut ids: Vec<i32> = c
        .fetch_metadata(None, Duration::from_secs(2))
        .map(|md| md.brokers().iter().map(|b| b.id()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// Every running node among `on` lists exactly `want`.
fn all_list(c: &NetCluster, on: &[usize], want: &[i32]) -> bool {
    on.iter().all(|&i| listed(&c.nodes[i - 1].addr()) == want)
}

/// Gossip membership with 3 nodes in namespaces: every node's Metadata lists the 3 brokers
/// (each at its own advertised address); a killed node leaves every other node's Metadata
/// within 2 s; restarted, it is listed everywhere again.
#[test]
fn three_nodes_see_each_other_and_a_killed_node_leaves_metadata() {
    if !netns::available() {
        panic!("this test needs root, ip and iptables");
    }
    let mut c = NetCluster::create("members", 3);
    c.start(1, 1);
    c.start(2, 1);
    let started = Instant::now();
    c.start(3, 1);
    let joined = netns::wait_until(Duration::from_secs(10), || {
        all_list(&c, &[1, 2, 3], &[1, 2, 3])
    });
    let joined = joined.expect("every node lists 3 brokers");
    eprintln!(
        "node 3 in every node's Metadata {:?} after its start returned ({:?} since spawn)",
        joined,
        started.elapsed()
    );
    let md = kafka::consumer(&c.nodes[0].addr())
        .fetch_metadata(None, Duration::from_secs(5))
        .expect("metadata");
    for b in md.brokers() {
        let node = &c.nodes[b.id() as usize - 1];
        assert_eq!(
            (b.host(), b.port()),
            (node.ip.as_str(), i32::from(netns::KAFKA_PORT))
        );
    }
    c.kill(3);
    let gone = netns::wait_until(Duration::from_secs(5), || all_list(&c, &[1, 2], &[1, 2]));
    let gone = gone.expect("node 3 leaves Metadata");
    eprintln!("killed node 3 gone from every other node's Metadata after {gone:?}");
    assert!(gone < Duration::from_secs(2), "took {gone:?}");
    c.start(3, 1);
    let back = netns::wait_until(Duration::from_secs(10), || {
        all_list(&c, &[1, 2, 3], &[1, 2, 3])
    });
    eprintln!(
        "restarted node 3 listed everywhere after {:?}",
        back.expect("node 3 rejoins")
    );
    let lines = c.nodes[0].log_lines();
    assert!(lines
        .iter()
        .any(|l| l.contains("membership: node 3") && l.contains("is down")));
}
