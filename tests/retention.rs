//! Retention under load with the real binary: small segments and `retention.bytes` make the
//! broker delete old segments while an idempotent acks=all producer writes and a consumer
//! tails the topic. Checks: the producer sees no failure; the tailing consumer sees only
//! intact records at strictly increasing offsets and no error; the log start offset advances;
//! the partition directories stay near their bound; afterwards a fresh consumer reads exactly
//! the retained range [log start, end), every record intact and at its acknowledged offset.

mod common;

use common::{kafka, Broker};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 2;
const VALUE_BYTES: usize = 1000;
const SEGMENT_BYTES: u64 = 64 * 1024;
const RETENTION_BYTES: u64 = 512 * 1024;

fn dir_bytes(dir: &std::path::Path) -> u64 {
    common::walk_files(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn retention_deletes_segments_under_load() {
    let broker = Broker::start("retention", 1, &[]);
    let topic = "retained";
    let seg = SEGMENT_BYTES.to_string();
    let ret = RETENTION_BYTES.to_string();
    kafka::create_topic(
        &broker.addr(),
        topic,
        PARTITIONS,
        &[("segment.bytes", &seg), ("retention.bytes", &ret)],
    );

    let stop = Arc::new(AtomicBool::new(false));
    let tail = {
        let (addr, stop) = (broker.addr(), stop.clone());
        std::thread::spawn(move || tail_consumer(&addr, topic, &stop))
    };
    let mut acked = HashMap::new();
    for round in 0..10u64 {
        let range = round * 2_000..(round + 1) * 2_000;
        // Batches well below the segment size, so segments roll at their configured size.
        let small = [("batch.size", "16384")];
        acked.extend(kafka::produce_all_with(
            &broker.addr(),
            topic,
            PARTITIONS,
            range,
            "none",
            VALUE_BYTES,
            &small,
        ));
        std::thread::sleep(Duration::from_millis(300)); // retention runs once a second
    }
    std::thread::sleep(Duration::from_millis(1_500));
    stop.store(true, Ordering::Release);
    let tailed = tail.join().expect("tail consumer thread");
    assert!(tailed > 0, "the tailing consumer read nothing");

    let c = kafka::consumer(&broker.addr());
    let mut retained = 0;
    for p in 0..PARTITIONS {
        let (start, end) = kafka::watermarks(&c, topic, p);
        let produced = acked.values().filter(|(part, _)| *part == p).count() as i64;
        assert_eq!(
            end, produced,
            "partition {p}: end offset = records produced"
        );
        assert!(
            start > 0,
            "partition {p}: retention never advanced the log start"
        );
        let dir = broker.data_dir.join(format!("{topic}-{p}"));
        let bytes = dir_bytes(&dir);
        let files: Vec<(String, u64)> = common::walk_files(&dir)
            .iter()
            .map(|f| {
                (
                    f.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    std::fs::metadata(f).map_or(0, |m| m.len()),
                )
            })
            .collect();
        assert!(
            bytes < RETENTION_BYTES + 4 * SEGMENT_BYTES + 64 * 1024,
            "partition {p}: {bytes} bytes on disk: {files:?}"
        );
        retained += (end - start) as usize;
    }
    // A fresh reader gets exactly the retained records, each at its acknowledged offset.
    let got = kafka::consume_all(&broker.addr(), topic, PARTITIONS, retained, VALUE_BYTES);
    for (partition, offset, i) in got {
        assert_eq!(
            acked.get(&i),
            Some(&(partition, offset)),
            "record {i} at {partition}/{offset}"
        );
    }
}

/// Tails the topic from the end until `stop`; returns how many records it read.
fn tail_consumer(addr: &str, topic: &str, stop: &AtomicBool) -> usize {
    let c = kafka::consumer(addr);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut count = 0;
    while !stop.load(Ordering::Acquire) {
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                kafka::check_record(&m, VALUE_BYTES)
                    .unwrap_or_else(|e| panic!("tail {}@{}: {e}", m.partition(), m.offset()));
                let prev = last.insert(m.partition(), m.offset());
                assert!(
                    prev.is_none_or(|p| m.offset() > p),
                    "tail: offsets went back on {}",
                    m.partition()
                );
                count += 1;
            }
            Some(Err(e)) => panic!("tail consumer error: {e}"),
        }
    }
    count
}
