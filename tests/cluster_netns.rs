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

/// `ringmq <args> --bootstrap addr --json` from the root namespace: (success, stdout, stderr).
fn cli(addr: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .args(args)
        .args(["--bootstrap", addr, "--json"])
        .output()
        .expect("run the ringmq cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The controller id node `addr` reports in Metadata (-1: none known, or unreachable).
fn controller_of(addr: &str) -> i32 {
    let (ok, out, _) = cli(addr, &["cluster", "info"]);
    let key = r#""controller_id":"#;
    let Some(at) = out.find(key).filter(|_| ok) else {
        return -1;
    };
    let rest = &out[at + key.len()..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().unwrap_or(-1)
}

/// The topic id node `addr` reports for `topic` (None: it does not list it).
fn topic_id_on(addr: &str, topic: &str) -> Option<String> {
    let (_, out, _) = cli(addr, &["topic", "list"]);
    let key = format!(r#""topic":"{topic}","#);
    let at = out.find(&key)?;
    let rest = &out[at..];
    let id_key = r#""topic_id":""#;
    let start = rest.find(id_key)? + id_key.len();
    Some(rest[start..start + 32].to_string())
}

/// Create `topic` through `addr`, retrying retriable failures (as Kafka clients do) for up
/// to `t`; returns the last error on failure.
fn create_through(addr: &str, topic: &str, t: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let args = ["topic", "create", topic, "-p", "3", "-r", "1"];
        let (ok, out, err) = cli(addr, &args);
        if ok {
            return Ok(());
        }
        if started.elapsed() > t || err.contains("already exists") {
            return Err(format!("{out}{err}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A leader other than `old` that every node in `nodes` (1-based) agrees on, within `t`.
fn agreed_leader(c: &NetCluster, nodes: &[usize], old: i32, t: Duration) -> Option<i32> {
    let mut leader = None;
    netns::wait_until(t, || {
        let seen: Vec<i32> = nodes
            .iter()
            .map(|&i| controller_of(&c.nodes[i - 1].addr()))
            .collect();
        leader = Some(seen[0]).filter(|&l| l >= 0 && l != old && seen.iter().all(|&s| s == l));
        leader.is_some()
    })?;
    leader
}

fn start_three(name: &str) -> NetCluster {
    if !netns::available() {
        panic!("this test needs root, ip and iptables (CI runs as root and installs iptables)");
    }
    let mut c = NetCluster::create(name, 3);
    c.start_all(3);
    c
}

/// Three seeds elect one controller; topics created through any node have one topic id on
/// every node; a cut-off minority cannot commit (a retriable error, never a topic of its
/// own); the leader killed with SIGKILL is replaced within 2 s and CreateTopics works again
/// through every survivor; the restarted node catches up.
#[test]
fn controller_quorum_commits_fails_over_and_catches_up() {
    let mut c = start_three("ctl");
    let all = [1, 2, 3];
    let leader = agreed_leader(&c, &all, -1, Duration::from_secs(15)).expect("a controller");
    for (k, via) in all.iter().enumerate() {
        let topic = format!("via-{via}");
        create_through(&c.nodes[via - 1].addr(), &topic, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("create {topic} through node {via}: {e}"));
        let id = topic_id_on(&c.nodes[k].addr(), &topic).expect("listed where created");
        for i in all {
            let seen = netns::wait_until(Duration::from_secs(5), || {
                topic_id_on(&c.nodes[i - 1].addr(), &topic).as_deref() == Some(id.as_str())
            });
            assert!(seen.is_some(), "node {i} lists {topic} with id {id}");
        }
    }
    // A minority (one node cut off from the other two) cannot commit.
    let lone = all
        .into_iter()
        .find(|&i| i as i32 != leader)
        .expect("a follower");
    c.cut_off(lone);
    let started = Instant::now();
    let (ok, out, err) = cli(&c.nodes[lone - 1].addr(), &["topic", "create", "minority"]);
    assert!(!ok, "a minority committed: {out}");
    assert!(
        err.contains("REQUEST_TIMED_OUT") || err.contains("retry"),
        "a clear retriable error: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    for i in all {
        assert_eq!(topic_id_on(&c.nodes[i - 1].addr(), "minority"), None);
    }
    c.heal(lone);
    // The forwarded request may still sit in a TCP retransmission queue and reach the leader
    // after the heal (its outcome was reported unknown: "may still be applied"); what must
    // never happen is two answers: after the heal every node agrees.
    std::thread::sleep(Duration::from_secs(3));
    let ids: Vec<Option<String>> = all
        .iter()
        .map(|&i| topic_id_on(&c.nodes[i - 1].addr(), "minority"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "nodes disagree: {ids:?}"
    );
    // Kill the leader: the survivors elect another within 2 s and commit again.
    let old = agreed_leader(&c, &all, -1, Duration::from_secs(10)).expect("healed leader");
    c.kill(old as usize);
    let killed = Instant::now();
    let survivors: Vec<usize> = all.into_iter().filter(|&i| i as i32 != old).collect();
    let new = agreed_leader(&c, &survivors, old, Duration::from_secs(10));
    let took = killed.elapsed();
    assert!(new.is_some_and(|l| l != old), "no new controller: {new:?}");
    assert!(took <= Duration::from_secs(2), "fail-over took {took:?}");
    for &via in &survivors {
        let topic = format!("after-{via}");
        create_through(&c.nodes[via - 1].addr(), &topic, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("create {topic} through node {via}: {e}"));
    }
    // The old leader restarts and catches up on what it missed.
    c.start(old as usize, 3);
    for &via in &survivors {
        let topic = format!("after-{via}");
        let id = topic_id_on(&c.nodes[via - 1].addr(), &topic).expect("created");
        let caught = netns::wait_until(Duration::from_secs(10), || {
            topic_id_on(&c.nodes[old as usize - 1].addr(), &topic).as_deref() == Some(id.as_str())
        });
        assert!(caught.is_some(), "restarted node {old} lacks {topic}");
    }
}

/// Controller fail-over, measured: kill the leader (SIGKILL) `RINGMQ_FAILOVER_KILLS` times
/// (default 20) and time until both survivors name the same new leader. Prints median and
/// max. `cargo test --release --test cluster_netns controller_failover -- --ignored --nocapture`
#[test]
#[ignore = "measurement: about 5 s per kill"]
fn controller_failover_measured() {
    let kills: usize = std::env::var("RINGMQ_FAILOVER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut c = start_three("ctlfo");
    let all = [1, 2, 3];
    let mut took = Vec::new();
    for k in 0..kills {
        let old = agreed_leader(&c, &all, -1, Duration::from_secs(15)).expect("a leader");
        c.kill(old as usize);
        let killed = Instant::now();
        let survivors: Vec<usize> = all.into_iter().filter(|&i| i as i32 != old).collect();
        let new = agreed_leader(&c, &survivors, old, Duration::from_secs(15)).expect("new leader");
        took.push(killed.elapsed());
        assert_ne!(new, old);
        eprintln!("kill {k}: node {old} -> node {new} in {:?}", took[k]);
        c.start(old as usize, 3);
    }
    took.sort();
    eprintln!(
        "controller fail-over over {kills} kills: median {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() - 1]
    );
}
