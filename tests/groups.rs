//! Consumer groups with real clients against the real binary (issue 4, "Done means").
//!
//! Every group member here is a real client: librdkafka (`rdkafka` consumers in threads, or in a
//! child process of this test binary when the test must kill a member without a LeaveGroup),
//! kcat's balanced consumer and kafka-python. Cases no client can produce (stale generations,
//! oversized metadata, a join storm) are hand-encoded frames on raw TCP.
//!
//! Each in-process member has a [`MemberCtx`] that watches its rebalance callbacks: a partition
//! must never be handed to one member while another still holds it, and a record must only
//! arrive from a partition the member currently holds. Any violation lands in
//! [`GroupView::problems`], which the tests assert empty.
//!
//! The broker's group.initial.rebalance.delay.ms is 3000 ms (as Kafka's): the first
//! rebalance of an empty group waits that long for more members, so "all members assigned"
//! waits are at least 3 s.
//!
//! Tests print `MEASURE ...` lines (run with `--nocapture`): join and takeover times, and the
//! commit rate and latency of one client. Everything runs with
//! `cargo test --release --test groups` (about 45 s with the default two test threads).
//! kcat and kafka-python must be installed unless RINGMQ_SKIP_EXTERNAL=1.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::wire::{request_frame, Reader, Writer};
use common::{kafka, Broker, RawConn, ReadOutcome};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

/// Session timeout of every rdkafka member (the broker's group.min.session.timeout.ms).
const SESSION_TIMEOUT_MS: u64 = 6_000;
const HEARTBEAT_MS: &str = "500";
const EAGER: &str = "range";
const COOPERATIVE: &str = "cooperative-sticky";

// ---------------------------------------------------------------------------------------------
// Watching members
// ---------------------------------------------------------------------------------------------

/// What all members of one group (in this process) share: who holds which partition.
#[derive(Default)]
struct GroupView {
    owners: Mutex<HashMap<i32, String>>,
    problems: Mutex<Vec<String>>,
    /// librdkafka log lines that name a group error we never expect.
    bad_logs: Mutex<Vec<String>>,
    /// librdkafka log lines mentioning JoinGroup: proof the log watch sees the cgrp debug log.
    join_logs: AtomicUsize,
}

impl GroupView {
    fn problem(&self, p: String) {
        eprintln!("PROBLEM: {p}");
        self.problems.lock().expect("problems").push(p);
    }

    fn assert_clean(&self) {
        let problems = self.problems.lock().expect("problems");
        assert!(problems.is_empty(), "group problems: {problems:#?}");
        let bad = self.bad_logs.lock().expect("bad logs");
        assert!(bad.is_empty(), "unexpected group errors: {bad:#?}");
    }
}

/// One consumed record: partition, offset, record index, when.
type Got = (i32, i64, u64, Instant);

/// One member's own view.
#[derive(Default)]
struct MemberView {
    assigned: BTreeSet<i32>,
    revoked_ever: BTreeSet<i32>,
    assignments: u32,
    records: Vec<Got>,
}

#[derive(Clone)]
struct MemberCtx {
    name: String,
    group: Arc<GroupView>,
    me: Arc<Mutex<MemberView>>,
    /// Substrings of librdkafka logs that count as a failure (`bad_logs`).
    bad_patterns: &'static [&'static str],
}

impl ClientContext for MemberCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        if msg.contains("JoinGroup") {
            self.group.join_logs.fetch_add(1, Ordering::Relaxed);
        }
        if self.bad_patterns.iter().any(|p| msg.contains(p)) {
            let line = format!("{}: {level:?} {fac} {msg}", self.name);
            self.group.bad_logs.lock().expect("bad logs").push(line);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("{}: client error {error}: {reason}", self.name);
    }
}

impl ConsumerContext for MemberCtx {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut me = self.me.lock().expect("member view");
        let mut owners = self.group.owners.lock().expect("owners");
        match rebalance {
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements() {
                    me.assigned.remove(&e.partition());
                    me.revoked_ever.insert(e.partition());
                    if owners.get(&e.partition()) == Some(&self.name) {
                        owners.remove(&e.partition());
                    }
                }
            }
            Rebalance::Assign(tpl) => {
                me.assignments += 1;
                for e in tpl.elements() {
                    let p = e.partition();
                    if let Some(other) = owners.get(&p).filter(|o| **o != self.name) {
                        self.group.problem(format!(
                            "{p} assigned to {} while {other} holds it",
                            self.name
                        ));
                    }
                    owners.insert(p, self.name.clone());
                    me.assigned.insert(p);
                }
            }
            Rebalance::Error(e) => eprintln!("{}: rebalance error {e}", self.name),
        }
    }
}

impl MemberCtx {
    fn assigned(&self) -> BTreeSet<i32> {
        self.me.lock().expect("member view").assigned.clone()
    }

    /// Drops this member's claims: called once it stopped polling, right before it closes.
    fn release(&self) {
        let mut owners = self.group.owners.lock().expect("owners");
        owners.retain(|_, o| *o != self.name);
        self.me.lock().expect("member view").assigned.clear();
    }

    /// When this member last got a record of `partition`, if ever.
    fn last_record_at(&self, partition: i32) -> Option<Instant> {
        let me = self.me.lock().expect("member view");
        me.records
            .iter()
            .rev()
            .find(|r| r.0 == partition)
            .map(|r| r.3)
    }

    fn got_record_since(&self, t: Instant) -> bool {
        let me = self.me.lock().expect("member view");
        me.records.last().is_some_and(|r| r.3 >= t)
    }
}

const NO_BAD_LOGS: &[&str] = &[];

fn member_config(addr: &str, group: &str, strategy: &str) -> rdkafka::ClientConfig {
    let mut c = kafka::base_config(addr);
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
        .set("heartbeat.interval.ms", HEARTBEAT_MS)
        .set("partition.assignment.strategy", strategy);
    c
}

fn member(
    addr: &str,
    group: &str,
    name: &str,
    strategy: &str,
    view: &Arc<GroupView>,
    extra: &[(&str, &str)],
) -> (BaseConsumer<MemberCtx>, MemberCtx) {
    let ctx = MemberCtx {
        name: name.to_string(),
        group: Arc::clone(view),
        me: Arc::default(),
        bad_patterns: NO_BAD_LOGS,
    };
    let mut c = member_config(addr, group, strategy);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let consumer: BaseConsumer<MemberCtx> = c
        .create_with_context(ctx.clone())
        .expect("create group consumer");
    (consumer, ctx)
}

/// A member polling in its own thread until `stop`; then (optionally) commits its positions,
/// waits on `barrier`, releases its partitions and closes.
struct Running {
    ctx: MemberCtx,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<(), String>>,
}

struct Finish {
    commit: bool,
    barrier: Option<Arc<Barrier>>,
}

fn spawn_member(
    consumer: BaseConsumer<MemberCtx>,
    ctx: MemberCtx,
    topic: &str,
    value_bytes: usize,
    finish: Finish,
) -> Running {
    consumer.subscribe(&[topic]).expect("subscribe");
    let stop = Arc::new(AtomicBool::new(false));
    let (stop2, ctx2) = (Arc::clone(&stop), ctx.clone());
    let handle = thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            poll_once(&consumer, &ctx2, value_bytes);
        }
        let mut outcome = Ok(());
        if finish.commit {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                outcome = Err(format!("{}: commit: {e}", ctx2.name));
            }
        }
        if let Some(b) = finish.barrier {
            b.wait();
        }
        ctx2.release();
        drop(consumer);
        outcome
    });
    Running { ctx, stop, handle }
}

fn poll_once(consumer: &BaseConsumer<MemberCtx>, ctx: &MemberCtx, value_bytes: usize) {
    match consumer.poll(Duration::from_millis(100)) {
        None => {}
        Some(Ok(m)) => {
            let now = Instant::now();
            let i = match kafka::check_record(&m, value_bytes) {
                Ok(i) => i,
                Err(e) => {
                    ctx.group.problem(format!("{}: bad record: {e}", ctx.name));
                    return;
                }
            };
            let mut me = ctx.me.lock().expect("member view");
            if !me.assigned.contains(&m.partition()) {
                ctx.group.problem(format!(
                    "{} got {}@{} while holding {:?}",
                    ctx.name,
                    m.partition(),
                    m.offset(),
                    me.assigned
                ));
            }
            me.records.push((m.partition(), m.offset(), i, now));
        }
        Some(Err(e)) => eprintln!("{}: consumer error {e}", ctx.name),
    }
}

/// [`poll_once`] repeatedly for `duration`.
fn poll_for(
    consumer: &BaseConsumer<MemberCtx>,
    ctx: &MemberCtx,
    value_bytes: usize,
    duration: Duration,
) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        poll_once(consumer, ctx, value_bytes);
    }
}

impl Running {
    fn stop_and_join(self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("member thread panicked")
    }
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Union of the members' current assignments, if they are disjoint and cover `0..partitions`.
fn covers(members: &[&MemberCtx], partitions: i32) -> bool {
    let mut all = BTreeSet::new();
    let mut n = 0;
    for m in members {
        let a = m.assigned();
        n += a.len();
        all.extend(a);
    }
    n == partitions as usize && all == (0..partitions).collect()
}

/// Committed offsets of `group` for `topic` partitions `0..partitions` (OffsetFetch).
fn committed(addr: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Offset> {
    let c: BaseConsumer = member_config(addr, group, EAGER)
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, kafka::CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("committed_offsets {group}: {e}"));
    got.elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

fn end_offsets(addr: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Offset> {
    let c = kafka::consumer(addr);
    (0..partitions)
        .map(|p| (p, Offset::Offset(kafka::watermarks(&c, topic, p).1)))
        .collect()
}

/// A producer thread writing record after record round-robin over the partitions until stopped.
struct Feeder {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    handle: JoinHandle<()>,
}

const FEED_VALUE_BYTES: usize = 16;

fn feed(addr: &str, topic: &str, partitions: i32, pause: Duration) -> Feeder {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let (addr, topic, stop2, sent2) = (
        addr.to_string(),
        topic.to_string(),
        Arc::clone(&stop),
        Arc::clone(&sent),
    );
    let handle = thread::spawn(move || {
        let p = kafka::producer(&addr, "none", &[("linger.ms", "1")]);
        let mut i = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            kafka::send_record(&p, &topic, partitions, i, FEED_VALUE_BYTES);
            p.poll(Duration::ZERO);
            i += 1;
            sent2.store(i as usize, Ordering::Relaxed);
            thread::sleep(pause);
        }
        p.flush(Duration::from_secs(30)).expect("feeder flush");
    });
    Feeder { stop, sent, handle }
}

impl Feeder {
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("feeder panicked");
        self.sent.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Three members share a topic
// ---------------------------------------------------------------------------------------------

/// Three librdkafka members (range assignor) on a 6-partition topic holding 60,000 records:
/// the group settles on 2 partitions each, no partition is ever held by two members, every
/// record is consumed, and after the members commit and close, the committed offsets (as a
/// fresh client reads them with OffsetFetch) equal the end offsets.
#[test]
fn three_members_consume_everything_and_commit_the_end() {
    const PARTITIONS: i32 = 6;
    const RECORDS: u64 = 60_000;
    let broker = Broker::start("groups-three", 2, &[]);
    let addr = broker.addr();
    let topic = "three";
    kafka::create_topic(&addr, topic, PARTITIONS, &[]);
    kafka::produce_all(&addr, topic, PARTITIONS, 0..RECORDS, "lz4", 32);

    let view = Arc::new(GroupView::default());
    let barrier = Arc::new(Barrier::new(3));
    let members: Vec<Running> = (0..3)
        .map(|n| {
            let (c, ctx) = member(&addr, "g-three", &format!("m{n}"), EAGER, &view, &[]);
            let finish = Finish {
                commit: true,
                barrier: Some(Arc::clone(&barrier)),
            };
            spawn_member(c, ctx, topic, 32, finish)
        })
        .collect();
    wait_until(
        "60,000 distinct records consumed",
        Duration::from_secs(120),
        || {
            let mut seen = BTreeSet::new();
            for m in &members {
                seen.extend(m.ctx.me.lock().expect("view").records.iter().map(|r| r.2));
            }
            seen.len() as u64 == RECORDS
        },
    );
    let ctxs: Vec<MemberCtx> = members.iter().map(|m| m.ctx.clone()).collect();
    for c in &ctxs {
        assert_eq!(c.assigned().len(), 2, "{} holds {:?}", c.name, c.assigned());
    }
    assert!(covers(&ctxs.iter().collect::<Vec<_>>(), PARTITIONS));
    let stops: Vec<Arc<AtomicBool>> = members.iter().map(|m| Arc::clone(&m.stop)).collect();
    for s in &stops {
        s.store(true, Ordering::Relaxed);
    }
    for m in members {
        m.stop_and_join().expect("member commit");
    }
    view.assert_clean();

    let mut total = 0;
    for c in &ctxs {
        let me = c.me.lock().expect("view");
        eprintln!(
            "{}: {} records, {} assignments",
            c.name,
            me.records.len(),
            me.assignments
        );
        total += me.records.len();
        let got: Vec<kafka::Consumed> = me.records.iter().map(|r| (r.0, r.1, r.2)).collect();
        kafka::verify_partition_order(topic, &got);
    }
    assert_eq!(total as u64, RECORDS, "records consumed more than once");
    assert_eq!(
        committed(&addr, "g-three", topic, PARTITIONS),
        end_offsets(&addr, topic, PARTITIONS)
    );
}

// ---------------------------------------------------------------------------------------------
// A member in a child process (so it can die without a LeaveGroup)
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "RINGMQ_GROUP_CHILD";

/// Not a test on its own: when this binary runs with RINGMQ_GROUP_CHILD=addr|group|topic|strategy
/// it becomes one group member that prints `ASSIGN p,p,...` on every change of its assignment
/// and `CONSUMING` after its first record, until it is killed.
#[test]
fn child_member() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [addr, group, topic, strategy] = parts[..] else {
        panic!("bad {CHILD_ENV}: {spec}");
    };
    let view = Arc::new(GroupView::default());
    let (c, ctx) = member(addr, group, "child", strategy, &view, &[]);
    c.subscribe(&[topic]).expect("subscribe");
    let mut last = None;
    let mut consuming = false;
    loop {
        // Only placement is checked here: record timestamps are relative to a base time of
        // the parent process.
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let mut me = ctx.me.lock().expect("view");
            assert!(
                me.assigned.contains(&m.partition()),
                "record of unheld partition"
            );
            me.records
                .push((m.partition(), m.offset(), 0, Instant::now()));
        }
        let now = ctx.assigned();
        if last.as_ref() != Some(&now) {
            let list: Vec<String> = now.iter().map(|p| p.to_string()).collect();
            println!("ASSIGN {}", list.join(","));
            last = Some(now);
        }
        if !consuming && !ctx.me.lock().expect("view").records.is_empty() {
            consuming = true;
            println!("CONSUMING");
        }
    }
}

struct ChildMember {
    child: Child,
    assigned: Arc<Mutex<Option<BTreeSet<i32>>>>,
    consuming: Arc<AtomicBool>,
}

fn spawn_child_member(addr: &str, group: &str, topic: &str, strategy: &str) -> ChildMember {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["--exact", "child_member", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{addr}|{group}|{topic}|{strategy}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child member");
    let out = child.stdout.take().expect("child stdout");
    let assigned = Arc::new(Mutex::new(None));
    let assigned2 = Arc::clone(&assigned);
    let consuming = Arc::new(AtomicBool::new(false));
    let consuming2 = Arc::clone(&consuming);
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            eprintln!("[child member] {line}");
            if let Some(list) = line.strip_prefix("ASSIGN ") {
                let set = list.split(',').filter_map(|p| p.parse().ok()).collect();
                *assigned2.lock().expect("child view") = Some(set);
            }
            if line.ends_with("CONSUMING") {
                consuming2.store(true, Ordering::Relaxed);
            }
        }
    });
    ChildMember {
        child,
        assigned,
        consuming,
    }
}

impl ChildMember {
    fn assigned(&self) -> BTreeSet<i32> {
        self.assigned
            .lock()
            .expect("child view")
            .clone()
            .unwrap_or_default()
    }

    fn kill(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own unreaped child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// What [`killed_then_left`] saw of A and B.
struct KillReport {
    /// Partitions A or B had revoked, from the kill to the end.
    revoked: BTreeSet<i32>,
    /// Longest silence on a partition A or B held before the kill, from the kill to the end.
    longest_kept_gap: Duration,
}

/// Eager (range) group of A, B in this process and C in a child process, with records flowing:
/// C is SIGKILLed (no LeaveGroup, its connections just vanish) and A and B must own all six
/// partitions within session.timeout.ms plus one rebalance, and consume from them; then B
/// leaves cleanly and A must own everything well before a session timeout could explain it.
#[test]
fn killed_member_expires_and_clean_leave_rebalances_at_once() {
    let r = killed_then_left("groups-kill", EAGER);
    assert!(!r.revoked.is_empty(), "eager rebalances revoke everything");
}

/// The same with cooperative-sticky: through C's death, its session expiry, the rebalance
/// that hands out C's partitions and B's clean leave, A and B never have a partition revoked
/// and keep consuming the partitions they held (no silence over 1.5 s).
#[test]
fn killed_member_cooperative_sticky_keeps_others_consuming() {
    let r = killed_then_left("groups-kill-coop", COOPERATIVE);
    assert!(r.revoked.is_empty(), "revoked {:?}", r.revoked);
    assert!(
        r.longest_kept_gap < Duration::from_millis(1_500),
        "kept partitions went silent for {:?}",
        r.longest_kept_gap
    );
}

/// Longest time without a record of one of `partitions` at `m` between `from` and `to`.
fn longest_gap(m: &MemberCtx, partitions: &BTreeSet<i32>, from: Instant, to: Instant) -> Duration {
    let me = m.me.lock().expect("view");
    let mut longest = Duration::ZERO;
    for p in partitions {
        let mut last = from;
        for r in me
            .records
            .iter()
            .filter(|r| r.0 == *p && r.3 > from && r.3 <= to)
        {
            longest = longest.max(r.3 - last);
            last = r.3;
        }
        longest = longest.max(to - last);
    }
    longest
}

fn killed_then_left(broker_name: &str, strategy: &str) -> KillReport {
    const PARTITIONS: i32 = 6;
    let group = format!("g-kill-{strategy}");
    let group = group.as_str();
    let broker = Broker::start(broker_name, 2, &[]);
    let addr = broker.addr();
    let topic = "kill";
    kafka::create_topic(&addr, topic, PARTITIONS, &[]);
    let feeder = feed(&addr, topic, PARTITIONS, Duration::from_millis(2));
    let view = Arc::new(GroupView::default());
    let no_finish = || Finish {
        commit: false,
        barrier: None,
    };
    let (ca, a) = member(&addr, group, "A", strategy, &view, &[]);
    let (cb, b) = member(&addr, group, "B", strategy, &view, &[]);
    let ra = spawn_member(ca, a.clone(), topic, FEED_VALUE_BYTES, no_finish());
    let rb = spawn_member(cb, b.clone(), topic, FEED_VALUE_BYTES, no_finish());
    let mut c = spawn_child_member(&addr, group, topic, strategy);
    wait_until(
        "A, B and C share the six partitions",
        Duration::from_secs(60),
        || {
            let (sa, sb, sc) = (a.assigned(), b.assigned(), c.assigned());
            let all: BTreeSet<i32> = sa.iter().chain(&sb).chain(&sc).copied().collect();
            sa.len() == 2 && sb.len() == 2 && sc.len() == 2 && all.len() == 6
        },
    );
    wait_until("C consumes", Duration::from_secs(20), || {
        c.consuming.load(Ordering::Relaxed)
    });
    let c_parts = c.assigned();
    let kept = (a.assigned(), b.assigned());
    let revoked_before: BTreeSet<i32> = [&a, &b]
        .iter()
        .flat_map(|m| m.me.lock().expect("view").revoked_ever.clone())
        .collect();
    let killed = Instant::now();
    c.kill();
    let taken = wait_until(
        "A and B take over C's partitions",
        Duration::from_millis(SESSION_TIMEOUT_MS + 20_000),
        || covers(&[&a, &b], PARTITIONS),
    );
    let takeover = taken - killed;
    wait_until(
        "records of C's partitions flow again",
        Duration::from_secs(15),
        || {
            c_parts.iter().all(|p| {
                [&a, &b]
                    .iter()
                    .any(|m| m.last_record_at(*p).is_some_and(|t| t > taken))
            })
        },
    );
    eprintln!("MEASURE {strategy} killed member: partitions reassigned after {takeover:?}");
    assert!(
        takeover <= Duration::from_millis(SESSION_TIMEOUT_MS + 5_000),
        "killed member's partitions moved after {takeover:?}"
    );

    // B's own revocations when it closes do not count: take its view before it leaves.
    let revoked_by_b = b.me.lock().expect("view").revoked_ever.clone();
    let left = Instant::now();
    rb.stop_and_join().expect("B stops");
    let done = wait_until("A owns everything", Duration::from_secs(20), || {
        covers(&[&a], PARTITIONS)
    });
    eprintln!(
        "MEASURE {strategy} clean leave: A owns all after {:?}",
        done - left
    );
    assert!(
        done - left < Duration::from_millis(SESSION_TIMEOUT_MS / 2),
        "clean leave took {:?}, as slow as a session expiry",
        done - left
    );
    let longest_kept_gap = longest_gap(&a, &kept.0, killed, left)
        .max(longest_gap(&b, &kept.1, killed, left))
        .max(longest_gap(&a, &kept.0, left, Instant::now()));
    let revoked_by_a = a.me.lock().expect("view").revoked_ever.clone();
    let revoked: BTreeSet<i32> = revoked_by_a
        .union(&revoked_by_b)
        .filter(|p| !revoked_before.contains(p))
        .copied()
        .collect();
    eprintln!("MEASURE {strategy} kill: longest gap on kept partitions {longest_kept_gap:?}");
    ra.stop_and_join().expect("A stops");
    feeder.stop();
    view.assert_clean();
    KillReport {
        revoked,
        longest_kept_gap,
    }
}

// ---------------------------------------------------------------------------------------------
// A third member joins (eager and cooperative-sticky)
// ---------------------------------------------------------------------------------------------

/// What [`third_member_joins_then_leaves`] saw.
struct JoinReport {
    /// From the third member's subscribe until each of the three got a record after it.
    all_consume_again: Duration,
    /// Longest silence, during the join and the leave, on a partition A or B never gave up.
    longest_kept_gap: Duration,
    /// Partitions A and B ever had revoked.
    revoked: BTreeSet<i32>,
}

/// A and B share six partitions with records flowing; C joins; later C leaves cleanly.
fn third_member_joins_then_leaves(broker_name: &str, strategy: &str) -> JoinReport {
    const PARTITIONS: i32 = 6;
    let broker = Broker::start(broker_name, 2, &[]);
    let addr = broker.addr();
    let topic = "join";
    let group = format!("g-join-{strategy}");
    kafka::create_topic(&addr, topic, PARTITIONS, &[]);
    let feeder = feed(&addr, topic, PARTITIONS, Duration::from_millis(1));
    let view = Arc::new(GroupView::default());
    let finish = || Finish {
        commit: false,
        barrier: None,
    };
    let (ca, a) = member(&addr, &group, "A", strategy, &view, &[]);
    let (cb, b) = member(&addr, &group, "B", strategy, &view, &[]);
    let ra = spawn_member(ca, a.clone(), topic, FEED_VALUE_BYTES, finish());
    let rb = spawn_member(cb, b.clone(), topic, FEED_VALUE_BYTES, finish());
    let steady = Instant::now();
    wait_until(
        "A and B share six partitions",
        Duration::from_secs(60),
        || covers(&[&a, &b], PARTITIONS) && a.assigned().len() == 3,
    );
    wait_until("A and B consume", Duration::from_secs(20), || {
        a.got_record_since(steady) && b.got_record_since(steady)
    });
    let before = (a.assigned(), b.assigned());

    let joined = Instant::now();
    let (cc, c) = member(&addr, &group, "C", strategy, &view, &[]);
    let rc = spawn_member(cc, c.clone(), topic, FEED_VALUE_BYTES, finish());
    let again = wait_until("all three consume again", Duration::from_secs(60), || {
        covers(&[&a, &b, &c], PARTITIONS)
            && [&a, &b, &c].iter().all(|m| {
                // The newest record came after the join, from a partition held now.
                let held = m.assigned();
                let me = m.me.lock().expect("view");
                let fresh = me
                    .records
                    .last()
                    .is_some_and(|r| r.3 > joined && held.contains(&r.0));
                fresh && held.len() == 2
            })
    });
    thread::sleep(Duration::from_secs(1));
    let left = Instant::now();
    rc.stop_and_join().expect("C leaves");
    wait_until(
        "A and B own everything again",
        Duration::from_secs(30),
        || covers(&[&a, &b], PARTITIONS),
    );
    thread::sleep(Duration::from_secs(1));
    let end = Instant::now();

    // Partitions A (or B) held before C came and never had revoked: how long did they go
    // without a record between C's join and the end?
    let mut revoked = BTreeSet::new();
    let mut longest = Duration::ZERO;
    for (m, held) in [(&a, &before.0), (&b, &before.1)] {
        let me = m.me.lock().expect("view");
        revoked.extend(me.revoked_ever.iter().copied());
        for p in held.difference(&me.revoked_ever) {
            let mut last = joined;
            for r in me.records.iter().filter(|r| r.0 == *p && r.3 > joined) {
                longest = longest.max(r.3 - last);
                last = r.3;
            }
            longest = longest.max(end - last);
        }
    }
    eprintln!(
        "MEASURE {strategy}: third member joined -> all three consume after {:?}; \
         C left -> two own all; longest gap on kept partitions {longest:?}; revoked {revoked:?} \
         (leave at {:?})",
        again - joined,
        left - joined
    );
    ra.stop_and_join().expect("A stops");
    rb.stop_and_join().expect("B stops");
    feeder.stop();
    view.assert_clean();
    JoinReport {
        all_consume_again: again - joined,
        longest_kept_gap: longest,
        revoked,
    }
}

/// Eager (range): a third member joining a consuming group of two. Everyone gives up
/// everything in an eager rebalance, then all three consume again; the time is reported.
#[test]
fn third_member_joins_eager() {
    let r = third_member_joins_then_leaves("groups-join-eager", EAGER);
    assert!(
        r.all_consume_again < Duration::from_secs(15),
        "eager join took {:?}",
        r.all_consume_again
    );
    // Eager: every partition of A and B was revoked at least once.
    assert_eq!(r.revoked, (0..6).collect::<BTreeSet<i32>>());
}

/// cooperative-sticky: when C joins, A and B each give up exactly the partitions C gets and
/// keep consuming the rest through both rebalances (no revocation, no long silence); when C
/// leaves, nothing of A's or B's is revoked at all.
#[test]
fn third_member_joins_cooperative_sticky() {
    let r = third_member_joins_then_leaves("groups-join-coop", COOPERATIVE);
    assert_eq!(
        r.revoked.len(),
        2,
        "A and B should give up one partition each, revoked {:?}",
        r.revoked
    );
    assert!(
        r.longest_kept_gap < Duration::from_millis(1_500),
        "kept partitions went silent for {:?}",
        r.longest_kept_gap
    );
    assert!(r.all_consume_again < Duration::from_secs(15));
}

// ---------------------------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------------------------

/// Committed offsets (with their metadata) and the group itself survive a clean stop and a
/// SIGKILL of the broker; a new member resumes exactly at the committed offsets and reads
/// exactly the rest.
#[test]
fn committed_offsets_and_group_survive_restart() {
    const PARTITIONS: i32 = 3;
    const RECORDS: u64 = 3_000;
    let mut broker = Broker::start("groups-restart", 2, &[]);
    let addr = broker.addr();
    let topic = "restart";
    let group = "g-restart";
    kafka::create_topic(&addr, topic, PARTITIONS, &[]);
    let acked = kafka::produce_all(&addr, topic, PARTITIONS, 0..RECORDS, "none", 32);

    // A member consumes a while, then commits chosen offsets with metadata and leaves.
    let view = Arc::new(GroupView::default());
    let (c, ctx) = member(&addr, group, "first", EAGER, &view, &[]);
    c.subscribe(&[topic]).expect("subscribe");
    wait_until("first member consumes", Duration::from_secs(60), || {
        poll_for(&c, &ctx, 32, Duration::from_millis(200));
        ctx.me.lock().expect("view").records.len() >= 100
    });
    let chosen: BTreeMap<i32, i64> = [(0, 100), (1, 250), (2, 999)].into();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &chosen {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .expect("tpl");
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    ctx.release();
    drop(c);
    let expected: BTreeMap<i32, Offset> = chosen
        .iter()
        .map(|(p, o)| (*p, Offset::Offset(*o)))
        .collect();
    assert_eq!(committed(&addr, group, topic, PARTITIONS), expected);

    broker.stop();
    broker.restart();
    assert_eq!(
        committed(&addr, group, topic, PARTITIONS),
        expected,
        "after stop"
    );
    assert!(
        group_listed(&addr, group),
        "group missing from ListGroups after stop"
    );
    broker.kill_hard();
    broker.restart();
    assert_eq!(
        committed(&addr, group, topic, PARTITIONS),
        expected,
        "after SIGKILL"
    );
    assert!(
        group_listed(&addr, group),
        "group missing from ListGroups after SIGKILL"
    );

    // A new member starts exactly at the committed offsets and reads exactly the rest.
    let (c, ctx) = member(&addr, group, "second", EAGER, &view, &[]);
    c.subscribe(&[topic]).expect("subscribe");
    let rest = RECORDS as usize - chosen.values().sum::<i64>() as usize;
    wait_until(
        "second member reads the rest",
        Duration::from_secs(60),
        || {
            poll_for(&c, &ctx, 32, Duration::from_millis(200));
            ctx.me.lock().expect("view").records.len() >= rest
        },
    );
    poll_for(&c, &ctx, 32, Duration::from_millis(500));
    let me = ctx.me.lock().expect("view");
    assert_eq!(me.records.len(), rest, "records read after the restart");
    for p in 0..PARTITIONS {
        let first = me.records.iter().find(|r| r.0 == p).map(|r| r.1);
        assert_eq!(first, Some(chosen[&p]), "partition {p} resumed at");
    }
    for r in me.records.iter() {
        assert_eq!(
            acked.get(&r.2),
            Some(&(r.0, r.1)),
            "record {} placement",
            r.2
        );
    }
    drop(me);
    view.assert_clean();
}

/// ListGroups (through librdkafka's group list) names `group`.
fn group_listed(addr: &str, group: &str) -> bool {
    let c = kafka::consumer(addr);
    let list = c
        .fetch_group_list(None, kafka::CLIENT_TIMEOUT)
        .expect("ListGroups");
    list.groups().iter().any(|g| g.name() == group)
}

// ---------------------------------------------------------------------------------------------
// kcat -G and kafka-python
// ---------------------------------------------------------------------------------------------

const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn skip_external(test: &str) -> bool {
    let skip = std::env::var("RINGMQ_SKIP_EXTERNAL").as_deref() == Ok("1");
    if skip {
        eprintln!("{test}: SKIPPED because RINGMQ_SKIP_EXTERNAL=1");
    }
    skip
}

/// Runs `cmd` to completion (killed after [`TOOL_TIMEOUT`]); panics loudly if it cannot start.
fn run_tool(mut cmd: Command, hint: &str) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}\n{hint} (or RINGMQ_SKIP_EXTERNAL=1)"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, not yet reaped by the waiter.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("{cmd:?} did not finish within {TOOL_TIMEOUT:?}");
        }
    }
}

/// kcat's balanced consumer (`-G`, librdkafka's high-level consumer as kcat drives it) reads a
/// 3-partition topic to its end as a one-member group, each record exactly once, and its
/// auto-commit on close leaves the group's committed offsets at the end offsets.
#[test]
fn kcat_balanced_consumer() {
    if skip_external("kcat_balanced_consumer") {
        return;
    }
    const PARTITIONS: i32 = 3;
    const RECORDS: u64 = 900;
    let broker = Broker::start("groups-kcat", 2, &[]);
    let addr = broker.addr();
    kafka::create_topic(&addr, "kcatg", PARTITIONS, &[]);
    let acked = kafka::produce_all(&addr, "kcatg", PARTITIONS, 0..RECORDS, "none", 32);
    let mut cmd = Command::new("kcat");
    cmd.args([
        "-b",
        &addr,
        "-G",
        "g-kcat",
        "kcatg",
        "-o",
        "beginning",
        "-e",
        "-q",
    ])
    .args(["-f", "%p %o %k\\n", "-X", "broker.address.family=v4"]);
    let out = run_tool(cmd, "install kcat (apt-get install kcat)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kcat -G failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = HashMap::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [p, o, k] = f[..] else {
            panic!("kcat line {line:?}");
        };
        let i: u64 = k
            .strip_prefix("k-")
            .and_then(|i| i.parse().ok())
            .expect("key");
        let place = (p.parse().expect("partition"), o.parse().expect("offset"));
        assert_eq!(acked.get(&i), Some(&place), "record {i}");
        assert!(seen.insert(i, place).is_none(), "record {i} twice");
    }
    assert_eq!(seen.len() as u64, RECORDS, "records kcat -G read");
    assert_eq!(
        committed(&addr, "g-kcat", "kcatg", PARTITIONS),
        end_offsets(&addr, "kcatg", PARTITIONS)
    );
}

/// kafka-python (an independent implementation of the group protocol) joins a group, reads
/// all 1,200 records of a 4-partition topic, commits and leaves; librdkafka then sees those
/// commits as the end offsets; a second kafka-python member of the same group resumes there
/// and gets nothing.
#[test]
fn kafka_python_group_consumer() {
    if skip_external("kafka_python_group_consumer") {
        return;
    }
    const PARTITIONS: i32 = 4;
    const RECORDS: u64 = 1_200;
    let broker = Broker::start("groups-kpy", 2, &[]);
    let addr = broker.addr();
    kafka::create_topic(&addr, "kpyg", PARTITIONS, &[]);
    kafka::produce_all(&addr, "kpyg", PARTITIONS, 0..RECORDS, "none", 32);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/kafka_python_group.py"
    );
    for count in [RECORDS, 0] {
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args(["--bootstrap", &addr, "--topic", "kpyg", "--group", "g-kpy"])
            .args(["--count", &count.to_string()]);
        let out = run_tool(cmd, "install kafka-python (pip install kafka-python)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "kafka-python: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kafka-python group member failed");
        assert!(stdout.starts_with(&format!("OK {count} ")), "{stdout}");
        assert_eq!(
            committed(&addr, "g-kpy", "kpyg", PARTITIONS),
            end_offsets(&addr, "kpyg", PARTITIONS)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 100 groups at once
// ---------------------------------------------------------------------------------------------

/// librdkafka log text that must never appear while groups rebalance normally.
const MEMBER_ERRORS: &[&str] = &[
    "UNKNOWN_MEMBER_ID",
    "Unknown member",
    "ILLEGAL_GENERATION",
    "Illegal generation",
];

/// 100 groups of 2 librdkafka members on one 4-partition topic, all joining at the same time,
/// then one member of each group leaving at the same time: every group settles on 2+2 and
/// then 4 partitions (no truncated or overlapping assignment), and no member ever sees
/// UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION (librdkafka's cgrp debug log is watched).
#[test]
fn hundred_groups_rebalance_at_once() {
    const GROUPS: usize = 100;
    const PARTITIONS: i32 = 4;
    let broker = Broker::start("groups-hundred", 2, &[]);
    let addr = broker.addr();
    kafka::create_topic(&addr, "many", PARTITIONS, &[]);
    kafka::produce_all(&addr, "many", PARTITIONS, 0..400, "none", 32);
    let start = Instant::now();
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let view = Arc::new(GroupView::default());
        let mut pair = Vec::new();
        for name in ["A", "B"] {
            let ctx = MemberCtx {
                name: format!("{g}{name}"),
                group: Arc::clone(&view),
                me: Arc::default(),
                bad_patterns: MEMBER_ERRORS,
            };
            let c: BaseConsumer<MemberCtx> = member_config(&addr, &format!("g-many-{g}"), EAGER)
                .set("debug", "cgrp")
                // rdkafka-rust otherwise lowers librdkafka's level to the `log` crate's.
                .set_log_level(RDKafkaLogLevel::Debug)
                .create_with_context(ctx.clone())
                .expect("create consumer");
            let finish = Finish {
                commit: false,
                barrier: None,
            };
            pair.push(spawn_member(c, ctx, "many", 32, finish));
        }
        groups.push((view, pair));
    }
    wait_until(
        "every group settles on 2+2",
        Duration::from_secs(60),
        || {
            groups.iter().all(|(_, pair)| {
                pair.iter().all(|m| m.ctx.assigned().len() == 2)
                    && covers(&[&pair[0].ctx, &pair[1].ctx], PARTITIONS)
            })
        },
    );
    eprintln!(
        "MEASURE 100 groups x 2 settled {:?} after start",
        start.elapsed()
    );
    let mut survivors = Vec::new();
    let mut leaving = Vec::new();
    for (view, mut pair) in groups {
        let b = pair.pop().expect("B");
        b.stop.store(true, Ordering::Relaxed);
        leaving.push(b);
        survivors.push((view, pair.pop().expect("A")));
    }
    let left = Instant::now();
    for b in leaving {
        b.stop_and_join().expect("B leaves");
    }
    wait_until(
        "every A owns all 4 partitions",
        Duration::from_secs(60),
        || survivors.iter().all(|(_, a)| covers(&[&a.ctx], PARTITIONS)),
    );
    eprintln!(
        "MEASURE 100 simultaneous leaves: all A own 4 after {:?}",
        left.elapsed()
    );
    for (view, a) in survivors {
        a.stop_and_join().expect("A stops");
        view.assert_clean();
        assert!(
            view.join_logs.load(Ordering::Relaxed) > 0,
            "the cgrp debug log never reached the watch"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-encoded group requests (layouts from the Kafka JSON message schemas)
// ---------------------------------------------------------------------------------------------

const OFFSET_COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 9;
const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const SYNC_GROUP: i16 = 14;

const NONE: i16 = 0;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_MAX_SIZE_REACHED: i16 = 81;

fn frame(api_key: i16, version: i16, corr: i32, body: &Writer) -> Vec<u8> {
    request_frame(
        api_key,
        version,
        corr,
        Some("groups-test"),
        false,
        &body.buf,
    )
}

/// JoinGroup v3 (v4 has the same layout; v4+ answers an empty member id MEMBER_ID_REQUIRED).
fn join(version: i16, corr: i32, group: &str, member_id: &str, session_ms: i32) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(group)
        .i32(session_ms)
        .i32(30_000) // rebalance_timeout_ms
        .string(member_id)
        .string("consumer")
        .i32(1)
        .string("range")
        .bytes(b"test-metadata");
    frame(JOIN_GROUP, version, corr, &w)
}

#[derive(Debug)]
struct JoinAnswer {
    error: i16,
    generation: i32,
    leader: String,
    member_id: String,
    members: Vec<String>,
}

fn parse_join(frame: &[u8]) -> (i32, JoinAnswer) {
    let mut r = Reader::new(frame);
    let corr = r.i32();
    let _throttle = r.i32();
    let error = r.i16();
    let generation = r.i32();
    let _protocol = nullable_string(&mut r);
    let leader = r.string();
    let member_id = r.string();
    let n = r.i32();
    let mut members = Vec::new();
    for _ in 0..n {
        members.push(r.string());
        let len = r.i32();
        r.take(len.max(0) as usize);
    }
    assert_eq!(r.remaining(), 0, "trailing bytes in JoinGroup response");
    let answer = JoinAnswer {
        error,
        generation,
        leader,
        member_id,
        members,
    };
    (corr, answer)
}

fn nullable_string(r: &mut Reader<'_>) -> Option<String> {
    let n = r.i16();
    (n >= 0).then(|| String::from_utf8_lossy(r.take(n as usize)).into_owned())
}

/// SyncGroup v2: the leader's assignments.
fn sync(
    corr: i32,
    group: &str,
    generation: i32,
    member: &str,
    assign: &[(&str, &[u8])],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(group)
        .i32(generation)
        .string(member)
        .i32(assign.len() as i32);
    for (m, a) in assign {
        w.string(m).bytes(a);
    }
    frame(SYNC_GROUP, 2, corr, &w)
}

/// SyncGroup v1+/Heartbeat v1+ responses: correlation id, error code (after throttle time).
fn parse_throttle_error(frame: &[u8]) -> (i32, i16) {
    let mut r = Reader::new(frame);
    let corr = r.i32();
    let _throttle = r.i32();
    (corr, r.i16())
}

fn heartbeat(corr: i32, group: &str, generation: i32, member: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(group).i32(generation).string(member);
    frame(HEARTBEAT, 1, corr, &w)
}

/// OffsetCommit v2, one topic: (partition, offset, metadata).
fn commit(
    corr: i32,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    parts: &[(i32, i64, &str)],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(group)
        .i32(generation)
        .string(member)
        .i64(-1) // retention_time_ms: broker default
        .i32(1)
        .string(topic)
        .i32(parts.len() as i32);
    for (p, o, m) in parts {
        w.i32(*p).i64(*o).string(m);
    }
    frame(OFFSET_COMMIT, 2, corr, &w)
}

/// OffsetCommit v2 response: (partition, error) of the one topic.
fn parse_commit(frame: &[u8]) -> (i32, Vec<(i32, i16)>) {
    let mut r = Reader::new(frame);
    let corr = r.i32();
    let mut out = Vec::new();
    for _ in 0..r.i32() {
        let _topic = r.string();
        for _ in 0..r.i32() {
            out.push((r.i32(), r.i16()));
        }
    }
    assert_eq!(r.remaining(), 0, "trailing bytes in OffsetCommit response");
    (corr, out)
}

/// OffsetFetch v1 for `partitions` of one topic.
fn fetch(corr: i32, group: &str, topic: &str, partitions: &[i32]) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(group)
        .i32(1)
        .string(topic)
        .i32(partitions.len() as i32);
    for p in partitions {
        w.i32(*p);
    }
    frame(OFFSET_FETCH, 1, corr, &w)
}

/// OffsetFetch v1 response: partition → (offset, metadata, error).
fn parse_fetch(frame: &[u8]) -> BTreeMap<i32, (i64, Option<String>, i16)> {
    let mut r = Reader::new(frame);
    let _corr = r.i32();
    let mut out = BTreeMap::new();
    for _ in 0..r.i32() {
        let _topic = r.string();
        for _ in 0..r.i32() {
            let p = r.i32();
            let offset = r.i64();
            let metadata = nullable_string(&mut r);
            out.insert(p, (offset, metadata, r.i16()));
        }
    }
    assert_eq!(
        r.remaining(),
        0,
        "trailing bytes in OffsetFetch v1 response"
    );
    out
}

/// Sends one request and reads its response, checking the correlation id.
fn call(conn: &mut RawConn, corr: i32, request: &[u8]) -> Vec<u8> {
    assert!(conn.send(request), "broker closed the connection");
    match conn.read_frame(Duration::from_secs(30)) {
        ReadOutcome::Frame(f) => {
            let got = i32::from_be_bytes(f[..4].try_into().expect("4 bytes"));
            assert_eq!(got, corr, "correlation id");
            f
        }
        other => panic!("no response to request {corr}: {other:?}"),
    }
}

/// A member that joined (two JoinGroup v4 round trips) and synced: (member id, generation).
fn join_and_sync(conn: &mut RawConn, group: &str, session_ms: i32) -> (String, i32) {
    let (_, first) = parse_join(&call(conn, 1, &join(4, 1, group, "", session_ms)));
    assert_eq!(first.error, MEMBER_ID_REQUIRED, "{first:?}");
    let (_, j) = parse_join(&call(
        conn,
        2,
        &join(4, 2, group, &first.member_id, session_ms),
    ));
    assert_eq!(j.error, NONE, "{j:?}");
    assert_eq!(j.leader, j.member_id, "a lone member leads");
    assert_eq!(j.members, vec![j.member_id.clone()]);
    let assignment: &[u8] = b"whatever the leader says";
    let s = call(
        conn,
        3,
        &sync(
            3,
            group,
            j.generation,
            &j.member_id,
            &[(&j.member_id, assignment)],
        ),
    );
    assert_eq!(parse_throttle_error(&s).1, NONE, "SyncGroup");
    (j.member_id, j.generation)
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

/// Commits for an unknown group with a generation, stale and future generations, an unknown
/// member id, oversized metadata next to a good partition, and two join storms from one
/// connection (1,100 v4 joins that only get member ids, then 300 v3 joins that all become
/// members of one generation): each gets Kafka's error, the other group keeps its member and
/// its offsets, and every accepted commit survives a restart.
#[test]
fn bad_group_input_gets_proper_errors() {
    let mut broker = Broker::start("groups-bad", 2, &[]);
    let addr = broker.addr();
    let mut conn = RawConn::connect(&addr);
    let t = "bad-t";
    // Offsets are only stored for partitions that exist (hardening.rs covers the refusal).
    kafka::create_topic(&addr, t, 4, &[]);

    // Unknown group, generation 3: ILLEGAL_GENERATION (OffsetCommit < v9), nothing stored.
    let r = call(
        &mut conn,
        10,
        &commit(10, "ghost", 3, "m", t, &[(0, 5, "")]),
    );
    assert_eq!(parse_commit(&r).1, vec![(0, ILLEGAL_GENERATION)]);
    let f = parse_fetch(&call(&mut conn, 11, &fetch(11, "ghost", t, &[0])));
    assert_eq!(f[&0].0, -1, "ghost group got an offset: {f:?}");

    let (member, generation) = join_and_sync(&mut conn, "solo", 30_000);
    let ok = call(
        &mut conn,
        20,
        &commit(20, "solo", generation, &member, t, &[(0, 42, "ok")]),
    );
    assert_eq!(parse_commit(&ok).1, vec![(0, NONE)]);
    for (corr, gen, who, want) in [
        (21, generation - 1, member.as_str(), ILLEGAL_GENERATION),
        (22, generation + 1, member.as_str(), ILLEGAL_GENERATION),
        (23, generation, "bogus-member", UNKNOWN_MEMBER_ID),
    ] {
        let r = call(
            &mut conn,
            corr,
            &commit(corr, "solo", gen, who, t, &[(0, 666, "bad")]),
        );
        assert_eq!(
            parse_commit(&r).1,
            vec![(0, want)],
            "gen {gen} member {who}"
        );
    }
    let big = "x".repeat(5_000);
    let at_limit = "y".repeat(4_096);
    let parts = [
        (0, 777, big.as_str()),
        (1, 7, "small"),
        (2, 9, at_limit.as_str()),
    ];
    let r = call(
        &mut conn,
        24,
        &commit(24, "solo", generation, &member, t, &parts),
    );
    assert_eq!(
        parse_commit(&r).1,
        vec![(0, OFFSET_METADATA_TOO_LARGE), (1, NONE), (2, NONE)]
    );
    let expect_solo = |conn: &mut RawConn, corr: i32| {
        let f = parse_fetch(&call(conn, corr, &fetch(corr, "solo", t, &[0, 1, 2])));
        assert_eq!(f[&0], (42, Some("ok".to_string()), NONE));
        assert_eq!(f[&1], (7, Some("small".to_string()), NONE));
        assert_eq!(f[&2], (9, Some(at_limit.clone()), NONE));
    };
    expect_solo(&mut conn, 25);

    // Storm 1: 1,100 pipelined JoinGroup v4 with no member id into one group.
    let mut storm = RawConn::connect(&addr);
    let codes = pipeline(&mut storm, 1_100, |corr| join(4, corr, "storm", "", 6_000));
    let required = codes.iter().filter(|c| **c == MEMBER_ID_REQUIRED).count();
    let full = codes
        .iter()
        .filter(|c| **c == GROUP_MAX_SIZE_REACHED)
        .count();
    eprintln!("storm v4: {required} MEMBER_ID_REQUIRED, {full} GROUP_MAX_SIZE_REACHED");
    assert_eq!(required + full, codes.len(), "other codes in {codes:?}");
    assert!((1..=1_000).contains(&required));
    let hb = call(&mut conn, 30, &heartbeat(30, "solo", generation, &member));
    assert_eq!(
        parse_throttle_error(&hb).1,
        NONE,
        "solo's heartbeat after storm 1"
    );

    // Storm 2: 300 JoinGroup v3 (members without the id round trip) into another group, 30
    // pipelined on each of 10 connections (the broker runs up to 32 requests of a connection
    // at once): all answered in one generation, the leader's member list complete.
    let mut conns: Vec<RawConn> = (0..10).map(|_| RawConn::connect(&addr)).collect();
    let mut bytes = Vec::new();
    for c in conns.iter_mut() {
        bytes.clear();
        for corr in 0..30 {
            bytes.extend(join(3, corr, "storm3", "", 6_000));
        }
        assert!(c.send(&bytes), "broker closed a storm connection");
    }
    let mut parsed = Vec::new();
    for c in conns.iter_mut() {
        for corr in 0..30 {
            match c.read_frame(Duration::from_secs(60)) {
                ReadOutcome::Frame(f) => {
                    let (got, answer) = parse_join(&f);
                    assert_eq!(got, corr, "responses out of order");
                    parsed.push(answer);
                }
                other => panic!("storm 2 response {corr}: {other:?}"),
            }
        }
    }
    assert!(
        parsed.iter().all(|j| j.error == NONE),
        "{:?}",
        parsed.iter().find(|j| j.error != NONE)
    );
    let generations: BTreeSet<i32> = parsed.iter().map(|j| j.generation).collect();
    assert_eq!(generations.len(), 1, "generations {generations:?}");
    let leaders: Vec<&JoinAnswer> = parsed.iter().filter(|j| j.leader == j.member_id).collect();
    assert_eq!(leaders.len(), 1, "one leader");
    let ids: BTreeSet<&String> = parsed.iter().map(|j| &j.member_id).collect();
    let listed: BTreeSet<&String> = leaders[0].members.iter().collect();
    assert_eq!(ids.len(), 300, "distinct member ids");
    assert_eq!(listed, ids, "leader's member list");
    drop(storm);

    let hb = call(&mut conn, 31, &heartbeat(31, "solo", generation, &member));
    assert_eq!(
        parse_throttle_error(&hb).1,
        NONE,
        "solo's heartbeat after storm 2"
    );
    let r = call(
        &mut conn,
        32,
        &commit(32, "solo", generation, &member, t, &[(3, 3, "")]),
    );
    assert_eq!(parse_commit(&r).1, vec![(3, NONE)]);
    expect_solo(&mut conn, 33);
    drop(conn);

    broker.stop();
    broker.restart();
    let mut conn = RawConn::connect(&addr);
    expect_solo(&mut conn, 40);
    let f = parse_fetch(&call(&mut conn, 41, &fetch(41, "solo", t, &[3])));
    assert_eq!(f[&3].0, 3);
    let f = parse_fetch(&call(&mut conn, 42, &fetch(42, "ghost", t, &[0])));
    assert_eq!(f[&0].0, -1);
}

/// Sends `n` requests back to back, then reads the `n` responses: they must come in order.
fn pipeline_frames(conn: &mut RawConn, n: i32, req: impl Fn(i32) -> Vec<u8>) -> Vec<Vec<u8>> {
    let base = 1_000;
    let mut bytes = Vec::new();
    for corr in base..base + n {
        bytes.extend(req(corr));
    }
    assert!(conn.send(&bytes), "broker closed the storm connection");
    (base..base + n)
        .map(|corr| match conn.read_frame(Duration::from_secs(60)) {
            ReadOutcome::Frame(f) => {
                let got = i32::from_be_bytes(f[..4].try_into().expect("4 bytes"));
                assert_eq!(got, corr, "responses out of order");
                f
            }
            other => panic!("storm response {corr}: {other:?}"),
        })
        .collect()
}

/// [`pipeline_frames`] for JoinGroup: the error codes.
fn pipeline(conn: &mut RawConn, n: i32, req: impl Fn(i32) -> Vec<u8>) -> Vec<i16> {
    pipeline_frames(conn, n, req)
        .iter()
        .map(|f| parse_join(f).1.error)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

/// One client committing (OffsetCommit v2, simple group, one partition) as fast as the broker
/// answers; the group log is fdatasync'ed before each answer (durability `always`). Reports
/// commits per second and latency percentiles; checks every commit succeeded and the last
/// one is what OffsetFetch returns.
#[test]
fn commit_rate_one_client() {
    const COMMITS: i32 = 2_000;
    let broker = Broker::start("groups-rate", 2, &["--topic-default", "durability=always"]);
    kafka::create_topic(&broker.addr(), "rate", 1, &[]);
    let mut conn = RawConn::connect(&broker.addr());
    let mut latencies = Vec::with_capacity(COMMITS as usize);
    let start = Instant::now();
    for i in 0..COMMITS {
        let t0 = Instant::now();
        let r = call(
            &mut conn,
            i,
            &commit(i, "g-rate", -1, "", "rate", &[(0, i64::from(i), "m")]),
        );
        latencies.push(t0.elapsed());
        assert_eq!(parse_commit(&r).1, vec![(0, NONE)], "commit {i}");
    }
    let total = start.elapsed();
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    eprintln!(
        "MEASURE commits: {COMMITS} in {total:?} = {:.0}/s; p50 {:?} p99 {:?} max {:?}",
        f64::from(COMMITS) / total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    let f = parse_fetch(&call(&mut conn, -5, &fetch(-5, "g-rate", "rate", &[0])));
    assert_eq!(f[&0], (i64::from(COMMITS - 1), Some("m".into()), NONE));
}

// ---------------------------------------------------------------------------------------------
// Static membership
// ---------------------------------------------------------------------------------------------

/// Static members (group.instance.id, KIP-345): A closes (librdkafka sends no LeaveGroup for
/// a static member) and a new consumer with A's instance id joins within the session
/// timeout: it gets A's partitions back and B sees no rebalance at all.
#[test]
fn static_member_restart_keeps_assignment_without_rebalance() {
    const PARTITIONS: i32 = 4;
    let broker = Broker::start("groups-static", 2, &[]);
    let addr = broker.addr();
    let topic = "static";
    kafka::create_topic(&addr, topic, PARTITIONS, &[]);
    let feeder = feed(&addr, topic, PARTITIONS, Duration::from_millis(2));
    let view = Arc::new(GroupView::default());
    let finish = || Finish {
        commit: false,
        barrier: None,
    };
    let (ca, a) = member(
        &addr,
        "g-static",
        "A",
        EAGER,
        &view,
        &[("group.instance.id", "inst-a")],
    );
    let (cb, b) = member(
        &addr,
        "g-static",
        "B",
        EAGER,
        &view,
        &[("group.instance.id", "inst-b")],
    );
    let ra = spawn_member(ca, a.clone(), topic, FEED_VALUE_BYTES, finish());
    let rb = spawn_member(cb, b.clone(), topic, FEED_VALUE_BYTES, finish());
    wait_until(
        "A and B share four partitions",
        Duration::from_secs(60),
        || covers(&[&a, &b], PARTITIONS) && a.assigned().len() == 2,
    );
    let held_by_a = a.assigned();
    let b_assignments = b.me.lock().expect("view").assignments;
    ra.stop_and_join().expect("A closes");

    let restarted = Instant::now();
    let (ca2, a2) = member(
        &addr,
        "g-static",
        "A2",
        EAGER,
        &view,
        &[("group.instance.id", "inst-a")],
    );
    let ra2 = spawn_member(ca2, a2.clone(), topic, FEED_VALUE_BYTES, finish());
    wait_until(
        "the restarted A consumes again",
        Duration::from_secs(20),
        || !a2.assigned().is_empty() && a2.got_record_since(restarted),
    );
    eprintln!(
        "MEASURE static restart: consuming after {:?}",
        restarted.elapsed()
    );
    assert_eq!(
        a2.assigned(),
        held_by_a,
        "restarted static member's partitions"
    );
    // Longer than a heartbeat interval: a rebalance would have reached B by now.
    thread::sleep(Duration::from_secs(2));
    let me = b.me.lock().expect("view");
    assert!(
        me.revoked_ever.is_empty(),
        "B had {:?} revoked",
        me.revoked_ever
    );
    assert_eq!(me.assignments, b_assignments, "B was reassigned");
    drop(me);
    ra2.stop_and_join().expect("A2 stops");
    rb.stop_and_join().expect("B stops");
    feeder.stop();
    view.assert_clean();
}
