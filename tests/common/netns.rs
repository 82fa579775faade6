//! A multi-host harness on one machine: each node is a `ringmq serve` process in its own
//! network namespace with its own address on a bridge, so tests can kill, pause and cut off a
//! node, and make its link lossy or slow, as happens between machines.
//!
//! Topology of cluster `X` (X is picked free at creation; concurrent test processes each get
//! their own): bridge `rmqbX` with 10.88.X.1/24 in the root namespace (where the test and its
//! clients run); node i (1-based) in namespace `rmqX_i`, its veth end renamed `eth0` with
//! 10.88.X.(10+i)/24, listening for Kafka on :9092 and for RPC/gossip on :33145 of its own
//! address (ports are per namespace, so every node uses the defaults).
//!
//! Faults: [`NetCluster::kill`] (SIGKILL), [`NetCluster::pause`] / [`NetCluster::resume`]
//! (SIGSTOP/SIGCONT), [`NetCluster::cut_off`] (iptables DROP of every peer in the node's
//! namespace, both directions), [`NetCluster::cut_between`] (one pair),
//! [`NetCluster::partition`] (groups that only talk within themselves: majority/minority
//! splits), [`NetCluster::lossy`] (iptables `statistic` random drop), [`NetCluster::slow`]
//! (a `tbf` rate limit on the node's eth0), [`NetCluster::heal`] / [`NetCluster::heal_all`];
//! [`NetCluster::start_many`] starts nodes at once (a restart of the whole cluster).
//! This kernel has no `netem`: fixed delays are the simulation's job.
//!
//! Everything is removed on drop (processes, namespaces, bridge), also when the test panics.
//! Needs root (CI runs as root) and `ip`, `iptables`, `tc`.
#![allow(dead_code)]

use super::{fresh_data_dir, remove_dir_retrying, signal};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Kafka port of every node (inside its own namespace).
pub const KAFKA_PORT: u16 = 9092;
/// RPC and gossip port of every node.
pub const RPC_PORT: u16 = 33145;

/// Run a command; panic with its output if it fails.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run a command and ignore failure (cleanup).
fn sh_quiet(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One node: its namespace, address, data dir and (when running) process.
pub struct NetNode {
    pub id: i32,
    pub ns: String,
    pub ip: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<VecDeque<String>>>,
    starts: u32,
}

impl NetNode {
    /// `IP:9092`, the bootstrap address for clients in the root namespace.
    pub fn addr(&self) -> String {
        format!("{}:{KAFKA_PORT}", self.ip)
    }
    pub fn rpc_addr(&self) -> String {
        format!("{}:{RPC_PORT}", self.ip)
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// N nodes on one bridge. See the module docs.
pub struct NetCluster {
    pub x: u8,
    pub bridge: String,
    pub nodes: Vec<NetNode>,
    /// Extra `ringmq serve` flags for every node (`--metrics-listen` here replaces the
    /// default `off`).
    pub extra: Vec<String>,
}

impl NetCluster {
    /// Create the bridge and `n` namespaces (no broker started yet).
    pub fn create(name: &str, n: usize) -> NetCluster {
        assert!((1..=200).contains(&n));
        let x = claim_bridge();
        let mut cluster = NetCluster {
            x,
            bridge: format!("rmqb{x}"),
            nodes: Vec::new(),
            extra: Vec::new(),
        };
        for i in 1..=n {
            cluster.add_namespace(name, i);
        }
        cluster
    }

    fn add_namespace(&mut self, name: &str, i: usize) {
        let x = self.x;
        let ns = format!("rmq{x}_{i}");
        let veth = format!("rmqv{x}_{i}");
        let ip = format!("10.88.{x}.{}", 10 + i);
        sh_quiet(&["ip", "netns", "del", &ns]);
        sh(&["ip", "netns", "add", &ns]);
        // Pushed before configuring, so Drop removes a half-made namespace too.
        self.nodes.push(NetNode {
            id: i as i32,
            ns: ns.clone(),
            ip: ip.clone(),
            data_dir: fresh_data_dir(&format!("{name}-n{i}")),
            child: None,
            log: Arc::new(Mutex::new(VecDeque::new())),
            starts: 0,
        });
        let peer = format!("{veth}p");
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
        ]);
        sh(&["ip", "link", "set", &veth, "master", &self.bridge, "up"]);
        sh(&["ip", "link", "set", &peer, "netns", &ns]);
        let exec = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", ns.as_str()];
            v.extend_from_slice(args);
            sh(&v);
        };
        exec(&["ip", "link", "set", &peer, "name", "eth0"]);
        exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        exec(&["ip", "link", "set", "eth0", "up"]);
        exec(&["ip", "link", "set", "lo", "up"]);
    }

    /// The RPC addresses of the first `k` nodes, as a `--seeds` value.
    pub fn seeds(&self, k: usize) -> String {
        let v: Vec<String> = self.nodes.iter().take(k).map(NetNode::rpc_addr).collect();
        v.join(",")
    }

    /// Start node `i` (1-based) with `--node-id i`, the first `seeds` nodes as seeds, one
    /// shard, plus `extra`; waits for `ready`.
    pub fn start(&mut self, i: usize, seeds: usize) {
        self.start_many(&[i], seeds);
    }

    /// Start the nodes `ids` all at once (each as [`NetCluster::start`]), then wait until
    /// every one of them is ready.
    pub fn start_many(&mut self, ids: &[usize], seeds: usize) {
        let ready: Vec<_> = ids.iter().map(|&i| (i, self.spawn(i, seeds))).collect();
        for (i, rx) in ready {
            if rx.recv_timeout(super::READY_TIMEOUT).is_err() {
                panic!(
                    "node {i} did not become ready; log:\n{}",
                    self.nodes[i - 1].log_lines().join("\n")
                );
            }
        }
    }

    /// Spawn node `i`; the receiver hears once it printed `ready` (or is dropped when it
    /// exits before).
    fn spawn(&mut self, i: usize, seeds: usize) -> mpsc::Receiver<()> {
        let seeds = self.seeds(seeds);
        let extra = self.extra.clone();
        let node = &mut self.nodes[i - 1];
        assert!(node.child.is_none(), "node {i} is running");
        std::fs::create_dir_all(&node.data_dir).expect("data dir");
        node.starts += 1;
        let listen = node.addr();
        let rpc = node.rpc_addr();
        let data = node.data_dir.to_string_lossy().into_owned();
        let id = node.id.to_string();
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &node.ns,
            env!("CARGO_BIN_EXE_ringmq"),
            "serve",
        ])
        .args(["--listen", &listen, "--rpc-listen", &rpc, "--node-id", &id])
        .args(["--data-dir", &data, "--shards", "1"]);
        if !extra.iter().any(|a| a == "--metrics-listen") {
            cmd.args(["--metrics-listen", "off"]);
        }
        if !seeds.is_empty() {
            cmd.args(["--seeds", &seeds]);
        }
        cmd.args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ringmq in its namespace");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let (log, tag) = (node.log.clone(), format!("n{i}#{}", node.starts));
        thread::spawn(move || super::forward_stderr(stderr, tag, log, tx));
        node.child = Some(child);
        rx
    }

    /// Start every node, all of the first `seeds` nodes as seeds.
    pub fn start_all(&mut self, seeds: usize) {
        for i in 1..=self.nodes.len() {
            self.start(i, seeds);
        }
    }

    /// The Kafka addresses of the running nodes, by node id.
    pub fn running_addrs(&self) -> Vec<String> {
        let running = self.nodes.iter().filter(|n| n.is_running());
        running.map(NetNode::addr).collect()
    }

    fn send(&self, i: usize, sig: libc::c_int) {
        let pid = self.nodes[i - 1].pid().expect("node is running");
        signal(pid, sig);
    }

    /// SIGTERM the nodes `ids` all at once and wait (at most 30 s each) for their clean
    /// exits; their data dirs stay.
    pub fn stop_many(&mut self, ids: &[usize]) {
        let mut stopping = Vec::new();
        for &i in ids {
            if let Some(child) = self.nodes[i - 1].child.take() {
                signal(child.id(), libc::SIGTERM);
                stopping.push((i, child));
            }
        }
        for (i, mut child) in stopping {
            if super::wait_timeout(&mut child, Duration::from_secs(30)).is_none() {
                signal(child.id(), libc::SIGKILL);
                let _ = child.wait();
                panic!("node {i} did not stop within 30 s of SIGTERM");
            }
        }
    }

    /// SIGKILL node i and reap it; its data dir stays.
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i - 1];
        if let Some(mut child) = node.child.take() {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }
    pub fn pause(&self, i: usize) {
        self.send(i, libc::SIGSTOP);
    }
    pub fn resume(&self, i: usize) {
        self.send(i, libc::SIGCONT);
    }

    fn ns_exec(&self, i: usize, args: &[&str]) {
        let mut v = vec!["ip", "netns", "exec", self.nodes[i - 1].ns.as_str()];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// Drop all traffic between node i and every other node (both directions, in i's
    /// namespace). Clients in the root namespace still reach it.
    pub fn cut_off(&self, i: usize) {
        for j in (1..=self.nodes.len()).filter(|&j| j != i) {
            self.cut_between(i, j);
        }
    }

    /// Drop all traffic between nodes i and j (both directions, rules in i's namespace).
    pub fn cut_between(&self, i: usize, j: usize) {
        let ip = self.nodes[j - 1].ip.clone();
        self.ns_exec(
            i,
            &["iptables", "-w", "-A", "INPUT", "-s", &ip, "-j", "DROP"],
        );
        self.ns_exec(
            i,
            &["iptables", "-w", "-A", "OUTPUT", "-d", &ip, "-j", "DROP"],
        );
    }

    /// Split the nodes into `groups` (1-based ids, each node in exactly one): nodes talk
    /// only within their group (a majority/minority split is two groups). Clients in the
    /// root namespace still reach every node. [`NetCluster::heal_all`] ends it.
    pub fn partition(&self, groups: &[Vec<usize>]) {
        let n = self.nodes.len();
        let group_of = |i: usize| {
            let mut at = groups.iter().enumerate().filter(|(_, g)| g.contains(&i));
            let (k, _) = at.next().unwrap_or_else(|| panic!("node {i} in no group"));
            assert!(at.next().is_none(), "node {i} in two groups");
            k
        };
        for i in 1..=n {
            for j in (1..=n).filter(|&j| group_of(j) != group_of(i)) {
                self.cut_between(i, j);
            }
        }
    }

    /// Drop each packet node i receives with probability `p` (0..1).
    pub fn lossy(&self, i: usize, p: f64) {
        let p = format!("{p:.4}");
        self.ns_exec(
            i,
            &[
                "iptables",
                "-w",
                "-A",
                "INPUT",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ],
        );
    }

    /// Limit what node i sends to `rate` (tc syntax, e.g. `1mbit`).
    pub fn slow(&self, i: usize, rate: &str) {
        self.ns_exec(
            i,
            &[
                "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate, "burst",
                "32kbit", "latency", "400ms",
            ],
        );
    }

    /// Remove every link fault of every node.
    pub fn heal_all(&self) {
        for i in 1..=self.nodes.len() {
            self.heal(i);
        }
    }

    /// Remove every fault of node i (iptables rules and the rate limit).
    pub fn heal(&self, i: usize) {
        self.ns_exec(i, &["iptables", "-w", "-F"]);
        let ns = self.nodes[i - 1].ns.as_str();
        sh_quiet(&[
            "ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root",
        ]);
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                signal(child.id(), libc::SIGCONT);
                signal(child.id(), libc::SIGKILL);
                let _ = child.wait();
            }
            sh_quiet(&["ip", "netns", "del", &node.ns]);
            // The host end goes with the namespace, unless something still holds it.
            sh_quiet(&["ip", "link", "del", &node.ns.replace("rmq", "rmqv")]);
            if thread::panicking() {
                eprintln!(
                    "keeping data dir of failed test: {}",
                    node.data_dir.display()
                );
            } else {
                remove_dir_retrying(&node.data_dir);
            }
        }
        sh_quiet(&["ip", "link", "del", &self.bridge]);
    }
}

/// Create a bridge `rmqbX` for the first free X (1..=250) and give it 10.88.X.1/24.
fn claim_bridge() -> u8 {
    let start = (std::process::id() % 250) as u8;
    for k in 0..250u16 {
        let x = 1 + ((u16::from(start) + k) % 250) as u8;
        let bridge = format!("rmqb{x}");
        if sh_quiet(&["ip", "link", "add", &bridge, "type", "bridge"]) {
            sh(&[
                "ip",
                "addr",
                "add",
                &format!("10.88.{x}.1/24"),
                "dev",
                &bridge,
            ]);
            sh(&["ip", "link", "set", &bridge, "up"]);
            return x;
        }
    }
    panic!("no free rmqb* bridge name");
}

/// Whether this process may build namespaces (root with `ip` and `iptables`).
pub fn available() -> bool {
    // SAFETY: geteuid has no side effects.
    let root = unsafe { libc::geteuid() } == 0;
    root && sh_quiet(&["ip", "netns", "list"]) && sh_quiet(&["iptables", "-V"])
}

/// The broker ids node `addr` lists, sorted (empty if it does not answer).
pub fn listed(addr: &str) -> Vec<i32> {
    use rdkafka::consumer::Consumer;
    let mut ids: Vec<i32> = super::kafka::consumer(addr)
        .fetch_metadata(None, Duration::from_secs(2))
        .map(|md| md.brokers().iter().map(|b| b.id()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// `n` nodes, all seeds, started; waits until every node's Metadata lists all of them.
pub fn started(name: &str, n: usize) -> NetCluster {
    assert!(
        available(),
        "this test needs root, ip and iptables (CI runs as root and installs iptables)"
    );
    let mut c = NetCluster::create(name, n);
    c.start_all(n);
    let all: Vec<i32> = (1..=n as i32).collect();
    for node in &c.nodes {
        let listed_all = wait_until(Duration::from_secs(15), || listed(&node.addr()) == all);
        assert!(
            listed_all.is_some(),
            "node {} lists brokers {:?}",
            node.id,
            listed(&node.addr())
        );
    }
    c
}

/// Poll `f` every 20 ms until it is true or `timeout` passes; returns how long it took.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return Some(t0.elapsed());
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}
