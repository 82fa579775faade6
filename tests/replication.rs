//! Issue 12, partitions replicated by Raft, on three nodes in network namespaces
//! (tests/common/netns.rs; the clients run in the root namespace).
//!
//! - A topic of replication factor 3: Metadata on every node names the same leader per
//!   partition with a leader epoch >= 1 (the Raft term) and all three replicas in the ISR;
//!   librdkafka produces with acks=all through one node and reads everything back through
//!   another, each record once at its acknowledged offset; a follower refuses Produce and
//!   Fetch with NOT_LEADER_OR_FOLLOWER and names the leader (KIP-951); after a clean stop the
//!   three replicas' segment files hold the same batches, byte for byte.
//! - Fail-over: an idempotent acks=all librdkafka producer sends at a steady rate while the
//!   leader of partition 0 is SIGKILLed; the survivors agree on a new leader (with a higher
//!   epoch) for every partition within 3 s (the time is printed), the producer continues
//!   without a failed delivery, and every acknowledged record is read back exactly once at
//!   its acknowledged offset.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::netns;
use common::oracle::{self, call};
use common::{kafka, walk_files};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::Producer;

const TOPIC: &str = "replicated";
const PARTITIONS: i32 = 3;
const VALUE_BYTES: usize = 100;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// One partition as a node's Metadata v9 reports it: (leader, leader epoch, sorted ISR).
type Route = (i32, i32, Vec<i32>);

/// Every partition of `topic` as node `addr` reports it (by partition index).
fn routes(addr: &str, topic: &str) -> Vec<Route> {
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let t = MetadataRequestTopic::default().with_name(Some(name));
    let resp = call(
        addr,
        9,
        &MetadataRequest::default().with_topics(Some(vec![t])),
    );
    let mut parts: Vec<_> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|n| n.0).collect();
            isr.sort_unstable();
            (p.partition_index, (p.leader_id.0, p.leader_epoch, isr))
        })
        .collect();
    parts.sort_by_key(|(i, _)| *i);
    parts.into_iter().map(|(_, r)| r).collect()
}

/// What the nodes must agree on about a topic.
struct Want<'a> {
    topic: &'a str,
    /// Every leader is one of these nodes.
    leaders: &'a [i32],
    /// The ISR of every partition, if given.
    isr: Option<&'a [i32]>,
}

/// Waits (at most 10 s) until the nodes at `addrs` report the same route for every
/// partition of `want.topic`, each led (epoch >= 1) as `want` says; returns those routes.
fn agreed_routes(addrs: &[String], want: &Want) -> Vec<Route> {
    let mut seen = Vec::new();
    let agreed = netns::wait_until(Duration::from_secs(10), || {
        seen = addrs.iter().map(|a| routes(a, want.topic)).collect();
        let first = &seen[0];
        let led = |(l, e, i): &Route| {
            want.leaders.contains(l) && *e >= 1 && want.isr.is_none_or(|w| i.as_slice() == w)
        };
        first.len() == PARTITIONS as usize
            && first.iter().all(led)
            && seen.iter().all(|r| r == first)
    });
    assert!(
        agreed.is_some(),
        "{}: no agreed leaders: {seen:?}",
        want.topic
    );
    seen.swap_remove(0)
}

/// The batches of partition `p`'s segment files under `data_dir`, in offset order: each
/// file read from its start, batch by batch (baseOffset i64, batchLength i32), until the
/// zero padding.
fn stored_batches(data_dir: &Path, p: i32) -> Vec<Vec<u8>> {
    let dir = data_dir.join(format!("{TOPIC}-{p}"));
    let mut segments: Vec<_> = walk_files(&dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for seg in segments {
        let bytes = std::fs::read(&seg).unwrap_or_else(|e| panic!("{}: {e}", seg.display()));
        let mut at = 0;
        while at + 12 <= bytes.len() {
            let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            if len <= 0 {
                break;
            }
            let end = at + 12 + len as usize;
            assert!(end <= bytes.len(), "{}: batch at {at} cut", seg.display());
            out.push(bytes[at..end].to_vec());
            at = end;
        }
    }
    out
}

/// See the module docs.
#[test]
fn replicated_topic_commits_on_a_majority_and_followers_refuse() {
    let mut c = netns::started("repl-a", 3);
    let (a1, a2) = (c.nodes[0].addr(), c.nodes[1].addr());
    kafka::create_topic_replicated(&a1, TOPIC, PARTITIONS, 3, &[]);
    let all = [1, 2, 3];
    let want = Want {
        topic: TOPIC,
        leaders: &all,
        isr: Some(&all),
    };
    let leaders = agreed_routes(&c.running_addrs(), &want);
    eprintln!("{TOPIC}: (leader, epoch, isr) per partition: {leaders:?}");

    let no_idempotence = [("enable.idempotence", "false"), ("acks", "all")];
    let records = 3_000;
    let acked = kafka::produce_all_with(
        &a1,
        TOPIC,
        PARTITIONS,
        0..records,
        "none",
        VALUE_BYTES,
        &no_idempotence,
    );
    let got = kafka::consume_all(&a2, TOPIC, PARTITIONS, records as usize, VALUE_BYTES);
    kafka::verify_exactly_once(TOPIC, &acked, &got);

    for (p, (leader, epoch, _)) in leaders.iter().enumerate() {
        for follower in c.nodes.iter().filter(|n| n.id != *leader) {
            let hint = (*leader, *epoch);
            let (code, leader, _) = oracle::produce_one(&follower.addr(), TOPIC, p as i32, 10);
            let produce = (code, leader);
            assert_eq!(
                produce,
                (NOT_LEADER_OR_FOLLOWER, hint),
                "produce p{p} on node {}",
                follower.id
            );
            let fetch = oracle::fetch_from_start(&follower.addr(), TOPIC, p as i32);
            assert_eq!(
                fetch,
                (NOT_LEADER_OR_FOLLOWER, hint),
                "fetch p{p} on node {}",
                follower.id
            );
        }
    }

    // Followers hold every entry once its commit is known; give the last ones a moment. A
    // node that outlives another may elect itself and append a no-op of a new term, so the
    // replicas must agree on the prefix they share, which must hold every acknowledged record.
    std::thread::sleep(Duration::from_secs(1));
    c.stop_many(&[1, 2, 3]);
    for p in 0..PARTITIONS {
        let logs: Vec<Vec<Vec<u8>>> = c
            .nodes
            .iter()
            .map(|n| stored_batches(&n.data_dir, p))
            .collect();
        let shared = logs.iter().map(Vec::len).min().unwrap_or(0);
        for (n, log) in logs.iter().enumerate().skip(1) {
            assert!(
                log[..shared] == logs[0][..shared],
                "partition {p}: node {} stores other batches than node 1",
                n + 1
            );
        }
        let last_acked = acked
            .values()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .max();
        let last_shared = logs[0][..shared].iter().map(|b| last_offset(b)).max();
        assert!(
            last_shared >= last_acked && last_acked.is_some(),
            "partition {p}: the replicas share batches up to offset {last_shared:?}, \
             the last acknowledged record is at {last_acked:?}"
        );
    }
}

/// The last offset of a stored batch (baseOffset + lastOffsetDelta).
fn last_offset(batch: &[u8]) -> i64 {
    let base = i64::from_be_bytes(batch[0..8].try_into().unwrap());
    let delta = i32::from_be_bytes(batch[23..27].try_into().unwrap());
    base + i64::from(delta)
}

const FAILOVER_TOPIC: &str = "failover";

/// See the module docs.
#[test]
fn a_killed_leader_is_replaced_and_the_idempotent_producer_continues() {
    let mut c = netns::started("repl-b", 3);
    let all: Vec<String> = c.running_addrs();
    kafka::create_topic_replicated(&all[0], FAILOVER_TOPIC, PARTITIONS, 3, &[]);
    let nodes = [1, 2, 3];
    let want = Want {
        topic: FAILOVER_TOPIC,
        leaders: &nodes,
        isr: Some(&nodes),
    };
    let before = agreed_routes(&all, &want);
    let (victim, old_epoch) = (before[0].0, before[0].1);
    eprintln!("{FAILOVER_TOPIC}: before the kill {before:?}; killing node {victim}");

    let settings = [
        ("request.timeout.ms", "3000"),
        ("message.timeout.ms", "60000"),
        ("metadata.max.age.ms", "1000"),
    ];
    let p = kafka::producer(&all.join(","), "none", &settings);
    let (records, kill_at) = (6_000u64, 2_000u64);
    let started = Instant::now();
    let mut failover = None;
    for i in 0..records {
        kafka::send_record(&p, FAILOVER_TOPIC, PARTITIONS, i, VALUE_BYTES);
        p.poll(Duration::from_millis(1));
        if i == kill_at {
            c.kill(victim as usize);
            let killed = Instant::now();
            let survivors = c.running_addrs();
            let others: Vec<i32> = nodes.iter().copied().filter(|&n| n != victim).collect();
            failover = Some(std::thread::spawn(move || {
                let want = Want {
                    topic: FAILOVER_TOPIC,
                    leaders: &others,
                    isr: None,
                };
                let after = agreed_routes(&survivors, &want);
                (killed.elapsed(), after)
            }));
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "sending took over 120 s"
        );
    }
    p.flush(Duration::from_secs(90)).expect("producer flush");
    let (took, after) = failover.expect("killed").join().expect("fail-over watcher");
    eprintln!("{FAILOVER_TOPIC}: new leaders after {took:?}: {after:?}");
    assert!(
        took < Duration::from_secs(3),
        "no new leader within 3 s: {took:?}"
    );
    assert!(
        after[0].0 != victim && after[0].1 > old_epoch,
        "partition 0 after the kill: {:?}",
        after[0]
    );
    let log = std::mem::take(&mut *p.context().log.lock().expect("ack log"));
    assert!(
        log.failed.is_empty(),
        "failed deliveries: {:?}",
        &log.failed[..log.failed.len().min(10)]
    );
    assert_eq!(log.acked.len() as u64, records, "acknowledged records");
    let survivor = c.running_addrs()[0].clone();
    let got = kafka::consume_all(
        &survivor,
        FAILOVER_TOPIC,
        PARTITIONS,
        records as usize,
        VALUE_BYTES,
    );
    kafka::verify_exactly_once(FAILOVER_TOPIC, &log.acked, &got);
}
