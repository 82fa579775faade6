//! `--shards 2`: partitions owned by both shards, reached through one connection (issue 2).
//!
//! librdkafka keeps one connection per broker for producing and one for fetching, so a single
//! producer writing to all 8 partitions and a single consumer reading them exercise the router
//! on whichever shard accepted each connection: with 8 partitions and a deterministic owner
//! function, both shards own some. Invariants:
//! - one producer → 8 partitions → one consumer: every acknowledged record exactly once, at its
//!   acknowledged offset, in order per partition; the same after a restart (ownership is
//!   recomputed alike);
//! - four producers at once (their connections spread over both accepting shards), each with
//!   its own index range: every record exactly once, each producer's records in order within
//!   each partition, and offsets dense from 0 to the high watermark.

mod common;

use std::collections::HashMap;
use std::thread;

use common::kafka;
use common::Broker;

const PARTITIONS: i32 = 8;
const VALUE_BYTES: usize = 64;

#[test]
fn one_connection_reaches_partitions_on_both_shards() {
    let mut broker = Broker::start("shards-one", 2, &[]);
    let topic = "two-shards";
    kafka::create_topic(&broker.addr(), topic, PARTITIONS, &[]);
    let acked = kafka::produce_all(
        &broker.addr(),
        topic,
        PARTITIONS,
        0..16_000,
        "none",
        VALUE_BYTES,
    );
    let got = kafka::consume_all(&broker.addr(), topic, PARTITIONS, acked.len(), VALUE_BYTES);
    kafka::verify_exactly_once(topic, &acked, &got);

    broker.stop();
    broker.restart();
    let got = kafka::consume_all(&broker.addr(), topic, PARTITIONS, acked.len(), VALUE_BYTES);
    kafka::verify_exactly_once(topic, &acked, &got);
    broker.stop();
}

#[test]
fn concurrent_producers_across_shards() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 5_000;
    let mut broker = Broker::start("shards-many", 2, &[]);
    let topic = "two-shards-many";
    kafka::create_topic(&broker.addr(), topic, PARTITIONS, &[]);

    let handles: Vec<_> = (0..PRODUCERS)
        .map(|k| {
            let addr = broker.addr();
            thread::spawn(move || {
                let range = k * PER_PRODUCER..(k + 1) * PER_PRODUCER;
                kafka::produce_all(&addr, topic, PARTITIONS, range, "lz4", VALUE_BYTES)
            })
        })
        .collect();
    let mut acked = HashMap::new();
    for h in handles {
        acked.extend(h.join().expect("producer thread"));
    }
    assert_eq!(acked.len() as u64, PRODUCERS * PER_PRODUCER);

    let got = kafka::consume_all(&broker.addr(), topic, PARTITIONS, acked.len(), VALUE_BYTES);
    let mut seen = HashMap::new();
    let mut last: HashMap<(i32, u64), (i64, u64)> = HashMap::new();
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    for &(partition, offset, i) in &got {
        assert!(
            seen.insert(i, (partition, offset)).is_none(),
            "record {i} consumed twice"
        );
        assert_eq!(acked.get(&i), Some(&(partition, offset)), "record {i}");
        let expected_offset = next_offset.entry(partition).or_insert(0);
        assert_eq!(
            offset, *expected_offset,
            "{topic}/{partition}: offsets are not dense"
        );
        *expected_offset += 1;
        let producer = i / PER_PRODUCER;
        if let Some(&(o, j)) = last.get(&(partition, producer)) {
            assert!(
                offset > o && i > j,
                "{partition}: producer {producer} out of order: {i}@{offset} after {j}@{o}"
            );
        }
        last.insert((partition, producer), (offset, i));
    }
    let c = kafka::consumer(&broker.addr());
    for partition in 0..PARTITIONS {
        let hw = next_offset.get(&partition).copied().unwrap_or(0);
        assert_eq!(
            kafka::watermarks(&c, topic, partition),
            (0, hw),
            "{topic}/{partition}"
        );
    }
    broker.stop();
}
