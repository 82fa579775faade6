//! Issue 11, routing on three nodes in network namespaces (tests/common/netns.rs; the clients
//! run in the root namespace and reach every node over the bridge at its advertised address).
//!
//! - Group requests that name many groups (batched FindCoordinator, batched OffsetFetch,
//!   DescribeGroups, DeleteGroups) are answered per group: served for the groups this node
//!   coordinates, NOT_COORDINATOR for the others.
//! - Real clients (issue 11's "Done means"): librdkafka (the rdkafka crate and kcat),
//!   kafka-python and KafkaJS, each bootstrapped with ONE node, produce to and consume from
//!   every partition of a topic whose leaders are on all three nodes; a consumer group whose
//!   members bootstrap through different nodes consumes everything exactly once and commits;
//!   a killed node leaves Metadata within 2 s, its partitions go leaderless, topics can still
//!   be created, and restarted it serves every record it had.
//!
//! Raw requests are encoded and their responses decoded by the kafka-protocol crate (an
//! implementation independent of ringmq's codec).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::kafka;
use common::netns::{self, NetCluster};
use common::oracle::call;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, MetadataRequest,
    MetadataResponse, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

const NOT_COORDINATOR: i16 = 16;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// Three nodes, all seeds; waits until every node's Metadata lists the 3 brokers.
fn three_nodes(name: &str) -> NetCluster {
    netns::started(name, 3)
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

// ---- Real clients across three nodes -------------------------------------------------------

/// Every record the test knows of: (partition, offset) → (key, value).
type Log = BTreeMap<(i32, i64), (String, String)>;

const SPREAD: &str = "spread";
const PARTITIONS: i32 = 6;
/// Records each client writes to each partition.
const PER_PARTITION: usize = 20;
/// Longest an external client program may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const LEADER_NOT_AVAILABLE: i16 = 5;

fn skipped(test: &str) -> bool {
    let skip = std::env::var("RINGMQ_SKIP_EXTERNAL").as_deref() == Ok("1");
    if skip {
        eprintln!("{test}: SKIPPED because RINGMQ_SKIP_EXTERNAL=1");
    }
    skip
}

/// Where `scripts/test setup` installs the clients (the venv, node modules).
fn cache() -> PathBuf {
    match std::env::var_os("RINGMQ_TEST_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/ringmq-test"),
    }
}

fn installed(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `scripts/test setup` (it installs the clients)",
        path.display()
    );
    path
}

fn client_script(name: &str) -> String {
    format!("{}/tests/clients/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to its end (SIGKILLed after [`TOOL_TIMEOUT`]); panics unless it exits 0.
/// Returns stdout.
fn run_tool(what: &str, mut cmd: Command) -> String {
    // cargo puts its build dirs on LD_LIBRARY_PATH; a librdkafka built there (rdkafka-sys)
    // must not replace the system one under Debian's kcat.
    cmd.env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let started = Instant::now();
    let out = match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which the waiter thread has not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("{what} did not finish within {TOOL_TIMEOUT:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstderr:\n{}\nstdout (tail):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        &stdout[stdout.len().saturating_sub(2000)..]
    );
    eprintln!("{what}: done in {:?}", started.elapsed());
    stdout
}

/// Metadata v12 of `topics` on `addr`, through kafka-protocol's codec.
fn metadata(addr: &str, topics: &[&str]) -> MetadataResponse {
    let topics = topics
        .iter()
        .map(|t| {
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
        })
        .collect();
    let req = MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(false);
    call(addr, 12, &req)
}

/// The broker ids of a Metadata answer, sorted.
fn brokers(md: &MetadataResponse) -> Vec<i32> {
    let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort_unstable();
    ids
}

/// (leader, error code) of every partition of `topic`, by partition index (empty if the
/// answer does not list the topic, or an index is missing).
fn partition_leaders(md: &MetadataResponse, topic: &str) -> Vec<(i32, i16)> {
    let Some(t) = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| &**n == topic) && t.error_code == 0)
    else {
        return Vec::new();
    };
    let mut parts: Vec<(i32, i32, i16)> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0, p.error_code))
        .collect();
    parts.sort_unstable();
    let dense = parts.iter().enumerate().all(|(i, p)| p.0 == i as i32);
    if !dense {
        return Vec::new();
    }
    parts.into_iter().map(|(_, l, e)| (l, e)).collect()
}

/// Creates the 6-partition topic through node 1 and waits until every node reports the same
/// leader for each partition; returns the leaders, which must be on all three nodes.
fn spread_topic(c: &NetCluster) -> Vec<i32> {
    kafka::create_topic(&c.nodes[0].addr(), SPREAD, PARTITIONS, &[]);
    let mut seen = Vec::new();
    let agreed = netns::wait_until(Duration::from_secs(10), || {
        seen = c
            .nodes
            .iter()
            .map(|n| partition_leaders(&metadata(&n.addr(), &[SPREAD]), SPREAD))
            .collect();
        let led =
            seen[0].len() == PARTITIONS as usize && seen[0].iter().all(|&(l, e)| l > 0 && e == 0);
        led && seen.windows(2).all(|w| w[0] == w[1])
    });
    assert!(agreed.is_some(), "leaders per node: {seen:?}");
    let leaders: Vec<i32> = seen[0].iter().map(|&(l, _)| l).collect();
    for id in 1..=3 {
        assert!(leaders.contains(&id), "no leader on node {id}: {leaders:?}");
    }
    // Every node names every broker at the address it advertises in its own namespace.
    for node in &c.nodes {
        let md = metadata(&node.addr(), &[]);
        for b in &md.brokers {
            let n = &c.nodes[b.node_id.0 as usize - 1];
            assert_eq!(
                (&*b.host, b.port),
                (n.ip.as_str(), i32::from(netns::KAFKA_PORT))
            );
        }
    }
    leaders
}

/// librdkafka (idempotent, acks=all) bootstrapped with `addr` only: `per` records to each
/// partition in `parts`, keys `rdkafka-k-{tag}-P-I`; returns what was acknowledged.
fn rdkafka_produce(addr: &str, topic: &str, parts: &[i32], per: usize, tag: &str) -> Log {
    let p = kafka::producer(addr, "none", &[("message.timeout.ms", "20000")]);
    let mut sent = Vec::new();
    for &part in parts {
        for i in 0..per {
            let key = format!("rdkafka-k-{tag}-{part}-{i}");
            let value = format!("rdkafka-{tag}-{part}-{i}");
            let record = BaseRecord::with_opaque_to(topic, sent.len())
                .partition(part)
                .key(&key)
                .payload(&value);
            p.send(record).map_err(|(e, _)| e).expect("send");
            sent.push((part, key, value));
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    let acks = std::mem::take(&mut *p.context().log.lock().expect("ack log"));
    assert!(acks.failed.is_empty(), "failed: {:?}", acks.failed);
    assert_eq!(acks.acked.len(), sent.len(), "acknowledged");
    let mut log = Log::new();
    for (i, (part, key, value)) in sent.into_iter().enumerate() {
        let (at, offset) = acks.acked[&(i as u64)];
        assert_eq!(at, part, "{key} acknowledged on another partition");
        assert!(
            log.insert((part, offset), (key, value)).is_none(),
            "one offset twice"
        );
    }
    log
}

/// librdkafka bootstrapped with `addr`: every partition of `topic` from the beginning until
/// `n` records arrived, then 300 ms more for anything extra.
fn rdkafka_read_all(addr: &str, topic: &str, n: usize) -> Log {
    let c = kafka::consumer(addr);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut log = Log::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut settle = None;
    while settle.is_none_or(|s| Instant::now() < s) {
        assert!(Instant::now() < deadline, "read {} of {n}", log.len());
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let text =
                    |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or(b"")).into_owned();
                let kv = (text(m.key()), text(m.payload()));
                assert!(
                    log.insert((m.partition(), m.offset()), kv).is_none(),
                    "read twice"
                );
            }
            Some(Err(e)) => panic!("rdkafka consumer: {e}"),
        }
        if log.len() >= n && settle.is_none() {
            settle = Some(Instant::now() + Duration::from_millis(300));
        }
    }
    log
}

/// Lines `TAG P OFFSET KEY VALUE` of a client program's output, as a log (each offset once).
fn parse_lines(stdout: &str, tag: &str) -> Log {
    let mut log = Log::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        assert_eq!(f.len(), 4, "line {line:?}");
        let at = (
            f[0].parse().expect("partition"),
            f[1].parse().expect("offset"),
        );
        let kv = (f[2].to_string(), f[3].to_string());
        assert!(log.insert(at, kv).is_none(), "{tag} {at:?} twice");
    }
    log
}

/// Runs a client program that prints ACK and GOT lines (tests/clients/cluster_roundtrip.*):
/// its acknowledgements must be `per` records on every partition, at offsets not yet used,
/// and what it read back must be exactly `log` plus them. Adds them to `log`.
fn client_round_trip(what: &str, cmd: Command, prefix: &str, log: &mut Log) {
    let out = run_tool(what, cmd);
    assert!(out.lines().any(|l| l == "OK"), "{what} did not say OK");
    let acked = parse_lines(&out, "ACK");
    assert_eq!(
        acked.len(),
        PARTITIONS as usize * PER_PARTITION,
        "{what} acks"
    );
    for (&(p, o), (k, v)) in &acked {
        assert!(
            k.starts_with(&format!("{prefix}-k-{p}-")),
            "{what}: {k} on {p}"
        );
        assert_eq!(v, &k.replacen("-k", "", 1), "{what} ack at {p}/{o}");
        assert!(
            log.insert((p, o), (k.clone(), v.clone())).is_none(),
            "{what}: {p}/{o} reused"
        );
    }
    assert_logs_equal(what, &parse_lines(&out, "GOT"), log);
}

fn assert_logs_equal(what: &str, got: &Log, want: &Log) {
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, _)| !want.contains_key(k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: read {} records, expected {}; missing or different {missing:?}; extra {extra:?}",
        got.len(),
        want.len()
    );
}

fn python_client(addr: &str) -> Command {
    let mut cmd = Command::new(installed(cache().join("venv/bin/python")));
    cmd.arg(client_script("cluster_roundtrip.py"))
        .args(["--bootstrap", addr, "--topic", SPREAD])
        .args(["--partitions", &PARTITIONS.to_string()])
        .args(["--count", &PER_PARTITION.to_string()]);
    cmd
}

fn kafkajs_client(addr: &str) -> Command {
    let modules = installed(cache().join("node/node_modules/kafkajs")).join("..");
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", modules)
        .arg(client_script("cluster_roundtrip.js"))
        .args([
            addr,
            SPREAD,
            &PARTITIONS.to_string(),
            &PER_PARTITION.to_string(),
        ]);
    cmd
}

/// kcat (Debian's librdkafka 2.0.2) bootstrapped with `addr`: every partition to its end.
fn kcat_read_all(addr: &str) -> Log {
    let mut cmd = Command::new("kcat");
    cmd.args([
        "-b",
        addr,
        "-X",
        "broker.address.family=v4",
        "-C",
        "-t",
        SPREAD,
    ])
    .args(["-o", "beginning", "-e", "-q", "-f", "GOT %p %o %k %s\\n"]);
    parse_lines(&run_tool("kcat -C", cmd), "GOT")
}

const GROUPED: &str = "grouped";
const GROUP: &str = "cc-group";

/// A librdkafka group member bootstrapped with `addr` only, subscribed to [`GROUPED`].
fn group_member(addr: &str) -> BaseConsumer {
    let mut cfg = kafka::base_config(addr);
    cfg.set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "100");
    let c: BaseConsumer = cfg.create().expect("group member");
    c.subscribe(&[GROUPED]).expect("subscribe");
    c
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|t| t.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every member once; returns (member, partition, offset, record index) of what came.
fn poll_members(members: &[BaseConsumer]) -> Vec<(usize, kafka::Consumed)> {
    let mut out = Vec::new();
    for (k, m) in members.iter().enumerate() {
        match m.poll(Duration::from_millis(50)) {
            None => {}
            Some(Ok(msg)) => {
                let i = kafka::check_record(&msg, 16)
                    .unwrap_or_else(|e| panic!("{}/{}: {e}", msg.partition(), msg.offset()));
                out.push((k, (msg.partition(), msg.offset(), i)));
            }
            Some(Err(e)) => panic!("member {k}: {e}"),
        }
    }
    out
}

/// Two librdkafka members of one group, bootstrapped through nodes 1 and 3, settle on a split
/// of the 6 partitions; 600 records produced through node 2 are consumed exactly once, each by
/// the member that owns its partition, and committed; the committed offsets are the end
/// offsets, and a kafka-python member that joins the group through node 2 afterwards resumes
/// there (reads nothing).
fn consumer_group(c: &NetCluster) {
    let (a1, a2, a3) = (c.nodes[0].addr(), c.nodes[1].addr(), c.nodes[2].addr());
    kafka::create_topic(&a2, GROUPED, PARTITIONS, &[]);
    let members = [group_member(&a1), group_member(&a3)];
    let mut owned = Vec::new();
    let stable = netns::wait_until(Duration::from_secs(30), || {
        let early = poll_members(&members);
        assert!(
            early.is_empty(),
            "records before any was produced: {early:?}"
        );
        owned = members.iter().map(assigned).collect();
        let split = owned.iter().all(|o| !o.is_empty()) && owned[0].is_disjoint(&owned[1]);
        split && owned[0].len() + owned[1].len() == PARTITIONS as usize
    });
    assert!(stable.is_some(), "group assignment: {owned:?}");
    eprintln!(
        "group {GROUP}: coordinator {:?}, members own {owned:?}",
        coordinators(&a1, &[GROUP.to_string()])
    );
    let acked = kafka::produce_all(&a2, GROUPED, PARTITIONS, 0..600, "none", 16);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < acked.len() {
        assert!(Instant::now() < deadline, "group read {} of 600", got.len());
        for (k, r) in poll_members(&members) {
            assert!(owned[k].contains(&r.0), "member {k} got partition {}", r.0);
            got.push(r);
        }
    }
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        let extra = poll_members(&members);
        assert!(extra.is_empty(), "records past the 600: {extra:?}");
    }
    kafka::verify_exactly_once(GROUPED, &acked, &got);
    let mut ends = BTreeMap::new();
    for &(p, o) in acked.values() {
        let e = ends.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    for (k, m) in members.iter().enumerate() {
        m.commit_consumer_state(CommitMode::Sync)
            .unwrap_or_else(|e| panic!("member {k} commit: {e}"));
        let committed = m.committed(kafka::CLIENT_TIMEOUT).expect("committed");
        for e in committed.elements() {
            assert_eq!(
                e.offset(),
                Offset::Offset(ends[&e.partition()]),
                "committed {}",
                e.partition()
            );
        }
    }
    drop(members);
    let mut cmd = Command::new(installed(cache().join("venv/bin/python")));
    cmd.arg(client_script("kafka_python_group.py"))
        .args(["--bootstrap", &a2, "--topic", GROUPED, "--group", GROUP])
        .args(["--count", "0", "--timeout-s", "30"]);
    let out = run_tool("kafka-python group member", cmd);
    assert!(out.starts_with("OK 0 "), "kafka-python: {out}");
}

/// Every survivor's Metadata: exactly `live` brokers; each partition led by its node in
/// `leaders`, or leaderless (-1, LEADER_NOT_AVAILABLE) where that node is not live.
fn reflects(c: &NetCluster, live: &[i32], leaders: &[i32]) -> bool {
    live.iter().all(|&s| {
        let md = metadata(&c.nodes[s as usize - 1].addr(), &[SPREAD]);
        let want: Vec<(i32, i16)> = leaders
            .iter()
            .map(|l| match live.contains(l) {
                true => (*l, 0),
                false => (-1, LEADER_NOT_AVAILABLE),
            })
            .collect();
        brokers(&md) == live && partition_leaders(&md, SPREAD) == want
    })
}

/// SIGKILL a node that is not the controller: within 2 s every survivor's Metadata drops it
/// and shows its partitions leaderless; a topic created through the other non-controller
/// survivor (forwarded) is placed on the survivors and serves a produce/consume round trip.
/// Restarted, the node is listed and leads its partitions again, serves every record they
/// had, and appends new records at the next offsets.
fn kill_and_restart(c: &mut NetCluster, leaders: &[i32], log: &mut Log) {
    // The controller every node names (a node names itself while it knows no leader).
    let mut named = Vec::new();
    let agreed = netns::wait_until(Duration::from_secs(10), || {
        named = c
            .nodes
            .iter()
            .map(|n| metadata(&n.addr(), &[]).controller_id.0)
            .collect();
        named.windows(2).all(|w| w[0] == w[1])
    });
    assert!(agreed.is_some(), "controller per node: {named:?}");
    let controller = named[0];
    let victim = (1..=3)
        .rev()
        .find(|&i| i != controller)
        .expect("a non-controller");
    let live: Vec<i32> = (1..=3).filter(|&i| i != victim).collect();
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.addr()).collect();
    let addr = |i: i32| addrs[i as usize - 1].clone();
    c.kill(victim as usize);
    let killed = Instant::now();
    let took = netns::wait_until(Duration::from_secs(5), || reflects(c, &live, leaders));
    let took = took.unwrap_or_else(|| {
        panic!(
            "node {victim} killed: Metadata after 5 s: {:?}",
            metadata(&addr(live[0]), &[SPREAD])
        )
    });
    eprintln!("node {victim} killed (controller {controller}): survivors' Metadata reflect it after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "took {took:?} (since kill {:?})",
        killed.elapsed()
    );
    let via = *live
        .iter()
        .find(|&&i| i != controller)
        .expect("a survivor that is not the controller");
    kafka::create_topic(&addr(via), "after-kill", 4, &[]);
    let placed = netns::wait_until(Duration::from_secs(5), || {
        live.iter().all(|&s| {
            let l = partition_leaders(&metadata(&addr(s), &["after-kill"]), "after-kill");
            l.len() == 4 && l.iter().all(|&(n, e)| e == 0 && live.contains(&n))
        })
    });
    assert!(placed.is_some(), "after-kill not placed on the survivors");
    let acked = kafka::produce_all(&addr(controller), "after-kill", 4, 0..200, "none", 16);
    let got = kafka::consume_all(&addr(via), "after-kill", 4, 200, 16);
    kafka::verify_exactly_once("after-kill", &acked, &got);

    c.start(victim as usize, 3);
    let all = [1, 2, 3];
    let back = netns::wait_until(Duration::from_secs(15), || reflects(c, &all, leaders));
    eprintln!(
        "node {victim} restarted: every node's Metadata lists it and its leaders after {back:?}"
    );
    assert!(
        back.is_some(),
        "restarted node {victim} not back: {:?}",
        metadata(&addr(1), &[SPREAD])
    );
    let mut next = BTreeMap::new();
    for &(p, o) in log.keys() {
        next.insert(p, o + 1);
    }
    let parts: Vec<i32> = (0..PARTITIONS).collect();
    let more = rdkafka_produce(&addr(victim), SPREAD, &parts, 1, "after");
    for &(p, o) in more.keys() {
        assert_eq!(o, next[&p], "partition {p}: first offset after the restart");
    }
    log.extend(more);
    let read = rdkafka_read_all(&addr(live[0]), SPREAD, log.len());
    assert_logs_equal("every record after the restart", &read, log);
}

/// Issue 11's first two "Done means" with unmodified clients, each bootstrapped with ONE node:
/// librdkafka (rdkafka crate) produces through node 1 and reads back through node 2,
/// kafka-python through node 2 and KafkaJS (its consumer a group of its own) through node 3
/// each produce to every partition and read everything back, kcat reads everything through
/// node 1; all values are compared offset by offset. Then [`consumer_group`] and
/// [`kill_and_restart`].
#[test]
fn real_clients_follow_leaders_and_survive_a_node_kill() {
    if skipped("real_clients_follow_leaders_and_survive_a_node_kill") {
        return;
    }
    let started = Instant::now();
    let mut c = three_nodes("cc-real");
    let leaders = spread_topic(&c);
    eprintln!("{SPREAD}: leaders {leaders:?}");
    let (a1, a2, a3) = (c.nodes[0].addr(), c.nodes[1].addr(), c.nodes[2].addr());
    let parts: Vec<i32> = (0..PARTITIONS).collect();
    let mut log = rdkafka_produce(&a1, SPREAD, &parts, PER_PARTITION, "first");
    assert_logs_equal("rdkafka", &rdkafka_read_all(&a2, SPREAD, log.len()), &log);
    client_round_trip("kafka-python", python_client(&a2), "python", &mut log);
    client_round_trip("kafkajs", kafkajs_client(&a3), "kafkajs", &mut log);
    assert_logs_equal("kcat", &kcat_read_all(&a1), &log);
    consumer_group(&c);
    kill_and_restart(&mut c, &leaders, &mut log);
    eprintln!("real clients on three nodes: {:?}", started.elapsed());
}

// ---- KIP-951 current-leader hints -----------------------------------------------------------

const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// Produce one record to partition `p` of [`SPREAD`] on `addr` at `version`: (error code,
/// CurrentLeader (id, epoch), NodeEndpoints (id, host, port)).
fn produce_raw(addr: &str, p: i32, version: i16) -> (i16, (i32, i32), Vec<(i32, String, i32)>) {
    common::oracle::produce_one(addr, SPREAD, p, version)
}

/// Fetch v12 of partition `p` of [`SPREAD`] from offset 0 on `addr`: (error code,
/// CurrentLeader (id, epoch)).
fn fetch_raw(addr: &str, p: i32) -> (i16, (i32, i32)) {
    common::oracle::fetch_from_start(addr, SPREAD, p)
}

/// KIP-951 against the real binary: on every node, a Produce v10–12 for a partition another
/// node leads answers NOT_LEADER_OR_FOLLOWER with CurrentLeader = (that node, the epoch
/// Metadata reports) and NodeEndpoints = that node at its own address; Produce v9 has no such
/// tags; a Fetch v12 names the leader too; a partition the node leads is served without a
/// hint. With the leader killed, survivors answer NOT_LEADER_OR_FOLLOWER without a hint (no
/// leader is known). Frames encoded and decoded by kafka-protocol.
#[test]
fn not_leader_answers_name_the_current_leader() {
    let mut c = three_nodes("cc-kip951");
    let leaders = spread_topic(&c);
    let md = metadata(&c.nodes[0].addr(), &[SPREAD]);
    let epochs: BTreeMap<i32, i32> = md.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_epoch))
        .collect();
    for node in &c.nodes {
        for (p, &leader) in leaders.iter().enumerate() {
            let p = p as i32;
            let at = |id: i32| {
                let n = &c.nodes[id as usize - 1];
                vec![(id, n.ip.clone(), i32::from(netns::KAFKA_PORT))]
            };
            if leader == node.id {
                assert_eq!(produce_raw(&node.addr(), p, 12), (0, (-1, -1), vec![]));
                assert_eq!(fetch_raw(&node.addr(), p), (0, (-1, -1)));
                continue;
            }
            let hint = (leader, epochs[&p]);
            for v in 10..=12 {
                let got = produce_raw(&node.addr(), p, v);
                assert_eq!(
                    got,
                    (NOT_LEADER_OR_FOLLOWER, hint, at(leader)),
                    "node {} p{p} v{v}",
                    node.id
                );
            }
            let got = produce_raw(&node.addr(), p, 9);
            assert_eq!(
                got,
                (NOT_LEADER_OR_FOLLOWER, (-1, -1), vec![]),
                "v9 has no hint"
            );
            assert_eq!(
                fetch_raw(&node.addr(), p),
                (NOT_LEADER_OR_FOLLOWER, hint),
                "fetch p{p}"
            );
        }
    }
    c.kill(3);
    let gone = netns::wait_until(Duration::from_secs(5), || reflects(&c, &[1, 2], &leaders));
    assert!(gone.is_some(), "node 3 leaves Metadata");
    for (p, _) in leaders.iter().enumerate().filter(|(_, &l)| l == 3) {
        let got = produce_raw(&c.nodes[0].addr(), p as i32, 12);
        assert_eq!(
            got,
            (NOT_LEADER_OR_FOLLOWER, (-1, -1), vec![]),
            "leaderless p{p}"
        );
        assert_eq!(
            fetch_raw(&c.nodes[1].addr(), p as i32),
            (NOT_LEADER_OR_FOLLOWER, (-1, -1))
        );
    }
}
