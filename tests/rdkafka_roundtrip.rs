//! librdkafka round trip against the real binary (issue 2, "Done means" 1 and 2).
//!
//! Invariants checked, once per compression codec (none, gzip, snappy, lz4), each on its own
//! broker and topic:
//! - CreateTopics makes a topic with 8 partitions.
//! - 100,000 keyed records with two headers and explicit CreateTimes, produced with acks=all and
//!   enable.idempotence=true, are all acknowledged.
//! - Consuming from the beginning with assign() returns every acknowledged record exactly once,
//!   at the offset its acknowledgement named, with key, value, headers and timestamp intact, in
//!   order within each partition, and nothing else.
//! - ListOffsets earliest/latest (fetch_watermarks) give 0 and the record count per partition;
//!   by timestamp (offsets_for_times) finds the first record at or after the time, and End past
//!   the last one.
//! - After SIGTERM (exit 0) and a restart on the same data dir, all of the above hold again.

mod common;

use std::collections::HashMap;

use common::kafka::{self, timestamp_of, Consumed};
use common::Broker;
use rdkafka::Offset;

const PARTITIONS: i32 = 8;
const RECORDS: u64 = 100_000;
const VALUE_BYTES: usize = 100;

#[test]
fn roundtrip_uncompressed() {
    roundtrip("none");
}

#[test]
fn roundtrip_gzip() {
    roundtrip("gzip");
}

#[test]
fn roundtrip_snappy() {
    roundtrip("snappy");
}

#[test]
fn roundtrip_lz4() {
    roundtrip("lz4");
}

fn roundtrip(codec: &str) {
    let mut broker = Broker::start(&format!("roundtrip-{codec}"), 1, &[]);
    let topic = format!("roundtrip-{codec}");
    kafka::create_topic(&broker.addr(), &topic, PARTITIONS, &[]);
    let acked = kafka::produce_all(
        &broker.addr(),
        &topic,
        PARTITIONS,
        0..RECORDS,
        codec,
        VALUE_BYTES,
    );
    for (i, (partition, _)) in &acked {
        assert_eq!(
            *partition as u64,
            i % PARTITIONS as u64,
            "record {i} landed in the wrong partition"
        );
    }

    check_everything(&broker.addr(), &topic, &acked);
    broker.stop();
    broker.restart();
    check_everything(&broker.addr(), &topic, &acked);
    broker.stop();
}

fn check_everything(addr: &str, topic: &str, acked: &HashMap<u64, (i32, i64)>) {
    let got = kafka::consume_all(addr, topic, PARTITIONS, acked.len(), VALUE_BYTES);
    kafka::verify_exactly_once(topic, acked, &got);
    check_list_offsets(addr, topic, &got);
}

/// ListOffsets earliest, latest and by timestamp, against what was consumed.
fn check_list_offsets(addr: &str, topic: &str, got: &[Consumed]) {
    let c = kafka::consumer(addr);
    for partition in 0..PARTITIONS {
        let mut records: Vec<(i64, u64)> = got
            .iter()
            .filter(|(p, _, _)| *p == partition)
            .map(|&(_, offset, i)| (offset, i))
            .collect();
        records.sort_unstable();
        let count = records.len() as i64;
        assert_eq!(
            kafka::watermarks(&c, topic, partition),
            (0, count),
            "{topic}/{partition}: (earliest, latest)"
        );
        let (first_offset, first_i) = records[0];
        let (mid_offset, mid_i) = records[records.len() / 2];
        let (_, last_i) = records[records.len() - 1];
        let cases = [
            // Before every record: the first one.
            (timestamp_of(first_i) - 1_000, Offset::Offset(first_offset)),
            // Exactly a record's timestamp: that record.
            (timestamp_of(mid_i), Offset::Offset(mid_offset)),
            // Between two records of this partition (timestamps step by PARTITIONS ms): the next.
            (timestamp_of(mid_i) - 1, Offset::Offset(mid_offset)),
            // After the last record: no offset (End, i.e. -1 on the wire).
            (timestamp_of(last_i) + 1, Offset::End),
        ];
        for (timestamp_ms, expected) in cases {
            assert_eq!(
                kafka::offset_for_time(&c, topic, partition, timestamp_ms),
                expected,
                "{topic}/{partition}: ListOffsets by timestamp {timestamp_ms}"
            );
        }
    }
}
