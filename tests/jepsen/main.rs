//! Issue 12 item 10: a Jepsen-style fault test. Real clients (librdkafka idempotent acks=all
//! producers, a consumer by assignment, a consumer group that commits) run against a
//! cluster of nodes in network namespaces while a seeded schedule of faults (SIGKILL and
//! restart, SIGSTOP/SIGCONT, a node cut off, majority/minority splits, lossy and slow links,
//! every node restarted at once) hits it; then every fault is healed, every partition read
//! to its end, and the history checked as Jepsen's Kafka checker does (`checker.rs`: lost,
//! duplicated, inconsistent offsets, reordered, unexpected, aborted reads, nonmonotonic and
//! skipped polls, committed offsets beyond the high watermark, partitions unavailable after
//! the heal). Every count must be 0; the counts and the seed are printed.
//!
//! Settings (environment):
//! - `RINGMQ_TEST_SEED`: the schedule's seed (default: from the clock; printed).
//! - `RINGMQ_JEPSEN_RF`: replication factor of the topic (default 1). At 1 each partition
//!   lives on one node: a killed or paused node's partitions are unavailable until it is
//!   back (their sends fail or stay unknown), and what is checked is that nothing
//!   acknowledged is lost, duplicated or reordered across crashes, restarts and link faults,
//!   and that consumers never see data that later changes. What needs 3 (partition
//!   replication, issue 12 items 1-7): that isolating, pausing or splitting off a leader
//!   exercises fail-over at all (at 1 these faults only test the controller, gossip and the
//!   clients' retries), that a deposed leader does not acknowledge (a split brain would show
//!   as inconsistent offsets or lost writes), and that sends to a faulted node's partitions
//!   keep succeeding through a new leader.
//! - `RINGMQ_JEPSEN_NODES`: cluster size (default 3; 5 is the 5-node variant).
//! - For the long run (`cargo test --test jepsen -- --ignored faults_long_schedule`):
//!   `RINGMQ_JEPSEN_MINUTES` (default 30) and `RINGMQ_JEPSEN_FAULTS` (default 120), both
//!   minimums; the run stops at twice the minutes plus 10 whatever the count.

#[path = "../common/mod.rs"]
mod common;

mod checker;
mod clients;
mod nemesis;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use checker::{History, Outcome};
use clients::Workload;
use common::kafka;
use common::netns::{self, NetCluster};
use nemesis::{Fault, Nemesis};
use rdkafka::consumer::Consumer;

const TOPIC: &str = "jepsen";
const GROUP: &str = "jepsen-group";
const PARTITIONS: i32 = 6;
const PRODUCERS: u64 = 2;
const MEMBERS: usize = 2;
/// Clients run this long before the first fault, and producers this long after the last
/// fault healed (every partition must acknowledge sends made then).
const WARM_UP: Duration = Duration::from_secs(3);
const AFTER_HEAL: Duration = Duration::from_secs(8);
/// How long the healed cluster may take to list every node and a leader for every partition.
const SETTLE: Duration = Duration::from_secs(45);
const FINAL_READ: Duration = Duration::from_secs(90);

/// How long and how hard a run is.
struct Plan {
    faults_min: usize,
    run_min: Duration,
    run_max: Duration,
    /// A fault holds, and the quiet spell after it lasts, between these (ms).
    hold_ms: (u64, u64),
    quiet_ms: (u64, u64),
    send_pause: Duration,
    max_sends: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CI's schedule: every kind of fault once and a few more, in at most 2 minutes of faults.
/// (It once caught, about 1 run in 8, Fetch serving batches not yet written, so that a
/// SIGKILL dropped records a consumer had read and reused their offsets; found by the long
/// run, seed 225134211. Consumers now see only what is written.)
#[test]
fn faults_short_schedule() {
    run(Plan {
        faults_min: 12,
        run_min: Duration::ZERO,
        run_max: Duration::from_secs(120),
        hold_ms: (2_000, 9_000),
        quiet_ms: (1_000, 3_000),
        send_pause: Duration::from_millis(4),
        max_sends: 50_000,
    });
}

/// The long run: at least 30 minutes and 120 faults (see the module docs).
#[test]
#[ignore = "takes 30 minutes or more; run it by name with --ignored"]
fn faults_long_schedule() {
    let minutes: u64 = env_or("RINGMQ_JEPSEN_MINUTES", 30);
    run(Plan {
        faults_min: env_or("RINGMQ_JEPSEN_FAULTS", 120),
        run_min: Duration::from_secs(minutes * 60),
        run_max: Duration::from_secs((2 * minutes + 10) * 60),
        hold_ms: (3_000, 15_000),
        quiet_ms: (2_000, 8_000),
        send_pause: Duration::from_millis(10),
        max_sends: 500_000,
    });
}

fn seed() -> u64 {
    let from_clock = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    };
    std::env::var("RINGMQ_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(from_clock)
}

fn run(plan: Plan) {
    assert!(
        netns::available(),
        "this test needs root, ip and iptables (CI runs as root and installs iptables)"
    );
    let seed = seed();
    let nodes: usize = env_or("RINGMQ_JEPSEN_NODES", 3);
    let rf: i16 = env_or("RINGMQ_JEPSEN_RF", 1);
    eprintln!("jepsen: seed {seed} (replay with RINGMQ_TEST_SEED={seed}), {nodes} nodes, rf {rf}");
    let seeds = nodes.min(3);
    let mut c = form_cluster(nodes, seeds, rf);
    let w = Arc::new(Workload {
        bootstrap: c
            .nodes
            .iter()
            .map(|n| n.addr())
            .collect::<Vec<_>>()
            .join(","),
        topic: TOPIC.into(),
        partitions: PARTITIONS,
        group: GROUP.into(),
        stop: Default::default(),
        started: Instant::now(),
        send_pause: plan.send_pause,
        max_sends: plan.max_sends,
    });
    let clients = Clients::start(&w);
    thread::sleep(WARM_UP);
    let faults = run_faults(&mut c, &plan, seed, seeds);
    let healed_ms = w.started.elapsed().as_millis() as u64;
    if let Err(e) = settle(&c, Some(TOPIC)) {
        panic!("jepsen seed {seed}: the healed cluster did not settle: {e}");
    }
    thread::sleep(AFTER_HEAL);
    w.stop.store(true, Ordering::Relaxed);
    let mut history = History {
        partitions: PARTITIONS,
        healed_ms,
        ..History::default()
    };
    let (commits, fatal) = clients.join(&mut history);
    let (reads, hws) =
        clients::read_to_end(&w, FINAL_READ).unwrap_or_else(|e| panic!("jepsen seed {seed}: {e}"));
    history.final_read = reads;
    history.high_watermarks = hws;
    history.committed = clients::committed(&w, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("jepsen seed {seed}: {e}"));
    let report = checker::check(&history);
    summary(seed, &faults, &history, commits, &fatal);
    eprintln!("jepsen seed {seed}: {report}");
    assert!(
        report.is_clean() && fatal.is_empty(),
        "jepsen seed {seed}: anomalies found (replay with RINGMQ_TEST_SEED={seed}); \
         fatal producer errors: {fatal:?}"
    );
}

/// `nodes` nodes (the first `seeds` of them seeds) whose Metadata agree, and the topic
/// (`durability` always, `rf` replicas) led on them.
fn form_cluster(nodes: usize, seeds: usize, rf: i16) -> NetCluster {
    let mut c = NetCluster::create("jepsen", nodes);
    c.start_all(seeds);
    settle(&c, None).unwrap_or_else(|e| panic!("cluster did not form: {e}"));
    let configs = [("durability", "always")];
    kafka::create_topic_replicated(&c.nodes[0].addr(), TOPIC, PARTITIONS, rf, &configs);
    settle(&c, Some(TOPIC)).unwrap_or_else(|e| panic!("topic not led: {e}"));
    c
}

/// The client threads of a run.
struct Clients {
    producers: Vec<thread::JoinHandle<clients::ProducerLog>>,
    assigned: thread::JoinHandle<checker::Stream>,
    members: Vec<thread::JoinHandle<(checker::Stream, u64, u64)>>,
}

impl Clients {
    fn start(w: &Arc<Workload>) -> Clients {
        Clients {
            producers: (1..=PRODUCERS)
                .map(|i| clients::spawn_producer(w.clone(), i, PRODUCERS))
                .collect(),
            assigned: clients::spawn_assigned(w.clone(), "assigned"),
            members: (0..MEMBERS)
                .map(|i| clients::spawn_member(w.clone(), &format!("member-{i}")))
                .collect(),
        }
    }

    /// Waits for every thread (after the stop flag was set); their records go into `h`.
    /// Returns (group commits ok, failed) and the producers' fatal errors.
    fn join(self, h: &mut History) -> ((u64, u64), Vec<String>) {
        let mut fatal = Vec::new();
        for p in self.producers {
            let log = p.join().expect("producer thread");
            h.sends.extend(log.sends);
            fatal.extend(log.fatal);
        }
        h.streams
            .push(self.assigned.join().expect("assigned consumer"));
        let mut commits = (0, 0);
        for m in self.members {
            let (stream, ok, failed) = m.join().expect("group member");
            h.streams.push(stream);
            commits = (commits.0 + ok, commits.1 + failed);
        }
        (commits, fatal)
    }
}

/// The schedule: faults one at a time until the plan's minimums are met (or its maximum
/// time passed). Returns the faults applied.
fn run_faults(c: &mut NetCluster, plan: &Plan, seed: u64, seeds: usize) -> Vec<Fault> {
    let started = Instant::now();
    let mut nemesis = Nemesis::new(seed, c.nodes.len(), PARTITIONS);
    let mut done = Vec::new();
    while (done.len() < plan.faults_min || started.elapsed() < plan.run_min)
        && started.elapsed() < plan.run_max
    {
        let addrs: Vec<String> = c
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.addr())
            .collect();
        let fault = nemesis.next_fault(&|p| leader_of(&addrs, p));
        let hold = nemesis.millis(plan.hold_ms);
        let at = started.elapsed();
        eprintln!(
            "jepsen: +{:.1}s fault {}: {fault:?} for {hold} ms",
            at.as_secs_f64(),
            done.len() + 1
        );
        nemesis::begin(c, &fault);
        thread::sleep(Duration::from_millis(hold));
        nemesis::end(c, &fault, seeds);
        eprintln!(
            "jepsen: +{:.1}s fault {} ended",
            started.elapsed().as_secs_f64(),
            done.len() + 1
        );
        done.push(fault);
        thread::sleep(Duration::from_millis(nemesis.millis(plan.quiet_ms)));
    }
    done
}

/// The node Metadata (asked of the first node of `addrs` that answers) names leader of
/// partition `p` of the topic.
fn leader_of(addrs: &[String], p: i32) -> Option<usize> {
    for addr in addrs {
        let md = kafka::consumer(addr).fetch_metadata(Some(TOPIC), Duration::from_secs(2));
        let Ok(md) = md else { continue };
        let leader = md
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .find(|part| part.id() == p)
            .map(|part| part.leader());
        return leader.and_then(|l| usize::try_from(l).ok());
    }
    None
}

/// Waits until every node's Metadata lists every node and (with `topic`) names a leader
/// for each of its partitions.
fn settle(c: &NetCluster, topic: Option<&str>) -> Result<Duration, String> {
    let mut last = String::new();
    let settled = netns::wait_until(SETTLE, || {
        let all = c
            .nodes
            .iter()
            .all(|node| match settled_on(c, &node.addr(), topic) {
                Ok(()) => true,
                Err(e) => {
                    last = format!("node {}: {e}", node.id);
                    false
                }
            });
        if !all {
            thread::sleep(Duration::from_millis(200));
        }
        all
    });
    settled.ok_or(last)
}

/// Whether the Metadata of the node at `addr` lists every node and a leader for every
/// partition of `topic`.
fn settled_on(c: &NetCluster, addr: &str, topic: Option<&str>) -> Result<(), String> {
    let md = kafka::consumer(addr)
        .fetch_metadata(topic, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    if md.brokers().len() != c.nodes.len() {
        return Err(format!("lists {} brokers", md.brokers().len()));
    }
    let Some(topic) = topic else { return Ok(()) };
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or("no topic")?;
    let led = t
        .partitions()
        .iter()
        .filter(|p| p.leader() > 0 && p.error().is_none());
    match (t.error(), led.count()) {
        (None, n) if n == PARTITIONS as usize => Ok(()),
        (e, n) => Err(format!("{topic}: error {e:?}, {n} partitions led")),
    }
}

fn summary(seed: u64, faults: &[Fault], h: &History, commits: (u64, u64), fatal: &[String]) {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in faults {
        *kinds.entry(f.kind()).or_default() += 1;
    }
    let count = |f: fn(&Outcome) -> bool| h.sends.iter().filter(|s| f(&s.outcome)).count();
    let ok = count(|o| matches!(o, Outcome::Ok(_)));
    let failed = count(|o| *o == Outcome::Failed);
    let unknown = count(|o| *o == Outcome::Unknown);
    let streams: Vec<String> = h
        .streams
        .iter()
        .map(|s| format!("{} {}", s.name, s.reads.len()))
        .collect();
    eprintln!(
        "jepsen seed {seed}: {} faults {kinds:?}; sends {} (ok {ok}, failed {failed}, unknown {unknown}); \
         reads during the run: {}; final read {} records, high watermarks {:?}; \
         group commits ok {} failed {}, committed {:?}; fatal producer errors {}",
        faults.len(),
        h.sends.len(),
        streams.join(", "),
        h.final_read.len(),
        h.high_watermarks,
        commits.0,
        commits.1,
        h.committed,
        fatal.len()
    );
}
