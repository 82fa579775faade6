//! Disk full on a real filesystem (issue 13): the broker's data dir is a small ext4 image,
//! loop-mounted under `/work/tmp-harden-disk/` (needs root, as CI has; unmounted and deleted on
//! drop). A ballast file leaves a few MiB free; librdkafka then produces (acks=all, no
//! idempotence, no retries, so every answer is reported as it came) until the disk is full.
//! Checked:
//! - the broker keeps running and keeps serving fetches while the disk is full;
//! - a record answered KAFKA_STORAGE_ERROR is never stored (a client told "failed" retries,
//!   and would otherwise find its record twice);
//! - every acknowledged record is served, at the offset its acknowledgement named;
//! - once the ballast is removed, produces succeed again without a restart, and everything
//!   acknowledged survives a clean restart.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka;
use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const IMAGE_MIB: u64 = 96;
/// Free space left next to the ballast: a few segments' worth.
const LEFT_FREE_BYTES: u64 = 6 << 20;
const VALUE_BYTES: usize = 1000;
const PARTITIONS: i32 = 2;
/// Records produced into the full disk: ~4x the free space.
const FILL_RECORDS: u64 = 24_000;

/// A loop-mounted ext4 image; unmounted and deleted on drop.
struct LoopFs {
    root: PathBuf,
    mnt: PathBuf,
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl LoopFs {
    fn new(name: &str, mib: u64) -> LoopFs {
        let root =
            PathBuf::from("/work/tmp-harden-disk").join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mnt = root.join("mnt");
        std::fs::create_dir_all(&mnt).expect("create mount point");
        let image = root.join("image");
        let f = std::fs::File::create(&image).expect("create image");
        f.set_len(mib << 20).expect("size image");
        let image = image.to_string_lossy().into_owned();
        run("mkfs.ext4", &["-q", "-F", &image]);
        run("mount", &["-o", "loop", &image, &mnt.to_string_lossy()]);
        LoopFs { root, mnt }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let mnt = self.mnt.to_string_lossy().into_owned();
        let ok = Command::new("umount")
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").args(["-l", &mnt]).status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: statvfs writes only into `st`, a properly sized struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` is writable.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statvfs {}", path.display());
    st.f_bavail * st.f_frsize
}

/// Fill the filesystem with zeros until about `leave` bytes remain.
fn write_ballast(path: &Path, leave: u64) {
    let mut f = std::fs::File::create(path).expect("create ballast");
    let chunk = vec![0u8; 1 << 20];
    while free_bytes(path.parent().expect("parent")) > leave + chunk.len() as u64 {
        f.write_all(&chunk).expect("write ballast");
    }
    f.sync_all().expect("sync ballast");
}

/// Per-record answers: acknowledged (index → partition, offset) and failures by error code.
#[derive(Default)]
struct Answers {
    acked: HashMap<u64, (i32, i64)>,
    failed: HashMap<u64, Option<RDKafkaErrorCode>>,
}

#[derive(Clone, Default)]
struct Ctx(Arc<Mutex<Answers>>);

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let mut a = self.0.lock().expect("answers");
        match result {
            Ok(m) => {
                a.acked.insert(index as u64, (m.partition(), m.offset()));
            }
            Err((e, _)) => {
                a.failed.insert(index as u64, e.rdkafka_error_code());
            }
        }
    }
}

fn producer(addr: &str) -> BaseProducer<Ctx> {
    let mut c: ClientConfig = kafka::base_config(addr);
    c.set("acks", "all")
        .set("enable.idempotence", "false")
        .set("retries", "0")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "60000")
        .set("request.timeout.ms", "30000");
    c.create_with_context(Ctx::default())
        .expect("create producer")
}

/// Produce records `range` and wait for every answer.
fn produce(addr: &str, topic: &str, range: std::ops::Range<u64>) -> Answers {
    let p = producer(addr);
    let deadline = Instant::now() + Duration::from_secs(240);
    for i in range {
        let (key, value) = (kafka::key_of(i), kafka::value_of(i, VALUE_BYTES));
        loop {
            assert!(Instant::now() < deadline, "produce did not finish in time");
            let record = BaseRecord::with_opaque_to(topic, i as usize)
                .partition((i % PARTITIONS as u64) as i32)
                .key(&key)
                .payload(&value)
                .headers(kafka::headers_of(i))
                .timestamp(kafka::timestamp_of(i));
            match p.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    p.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("send {i}: {e}"),
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(120)).expect("producer flush");
    let answers = std::mem::take(&mut *p.context().0.lock().expect("answers"));
    answers
}

/// Every record stored in the topic, by index → (partition, offset).
fn stored(addr: &str, topic: &str, expected_at_least: usize) -> HashMap<u64, (i32, i64)> {
    let got = consume_available(addr, topic, expected_at_least);
    let mut by_index = HashMap::new();
    for (partition, offset, i) in got {
        if let Some(prev) = by_index.insert(i, (partition, offset)) {
            panic!(
                "record {i} stored twice: {prev:?} and {:?}",
                (partition, offset)
            );
        }
    }
    by_index
}

/// Reads every partition from the beginning: at least `expected` records, then until nothing
/// new arrives for a second (records answered REQUEST_TIMED_OUT may or may not be there).
fn consume_available(addr: &str, topic: &str, expected: usize) -> Vec<kafka::Consumed> {
    let c = kafka::consumer(addr);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut idle_since = Instant::now();
    while out.len() < expected || idle_since.elapsed() < Duration::from_secs(1) {
        assert!(
            Instant::now() < deadline,
            "consumed {} of at least {expected} records before the deadline",
            out.len()
        );
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let i = kafka::check_record(&m, VALUE_BYTES)
                    .unwrap_or_else(|e| panic!("{}@{}: {e}", m.partition(), m.offset()));
                out.push((m.partition(), m.offset(), i));
                idle_since = Instant::now();
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
        }
    }
    out
}

fn check(answers: &Answers, stored: &HashMap<u64, (i32, i64)>) {
    for (i, at) in &answers.acked {
        assert_eq!(stored.get(i), Some(at), "acknowledged record {i} at {at:?}");
    }
    for (i, code) in &answers.failed {
        if *code == Some(RDKafkaErrorCode::KafkaStorageError) {
            assert!(
                !stored.contains_key(i),
                "record {i} was answered KAFKA_STORAGE_ERROR but is stored at {:?}",
                stored[i]
            );
        }
    }
}

#[test]
fn disk_full_refuses_without_storing_and_recovers_when_space_returns() {
    let fs = LoopFs::new("disk-full", IMAGE_MIB);
    let data_dir = fs.mnt.join("data");
    let mut broker = Broker::start_in(
        data_dir.clone(),
        common::free_port(),
        vec!["--shards".into(), "1".into()],
    );
    let addr = broker.addr();
    let topic = "full";
    kafka::create_topic(&addr, topic, PARTITIONS, &[("segment.bytes", "1048576")]);
    let ballast = fs.mnt.join("ballast");
    write_ballast(&ballast, LEFT_FREE_BYTES);

    let full = produce(&addr, topic, 0..FILL_RECORDS);
    broker.assert_alive();
    let refused = full
        .failed
        .values()
        .filter(|c| **c == Some(RDKafkaErrorCode::KafkaStorageError))
        .count();
    eprintln!(
        "disk full: {} acknowledged, {} failed ({refused} KAFKA_STORAGE_ERROR), codes {:?}",
        full.acked.len(),
        full.failed.len(),
        full.failed
            .values()
            .map(|c| format!("{c:?}"))
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(refused > 0, "the disk never filled up");
    assert!(
        !full.acked.is_empty(),
        "nothing fitted before the disk filled"
    );
    // Fetches are served while the disk is still full.
    check(&full, &stored(&addr, topic, full.acked.len()));

    std::fs::remove_file(&ballast).expect("remove ballast");
    let after = produce(&addr, topic, FILL_RECORDS..FILL_RECORDS + 2_000);
    assert!(
        after.failed.is_empty(),
        "produces still fail after space returned: {:?}",
        after.failed.values().take(5).collect::<Vec<_>>()
    );
    let expected = full.acked.len() + after.acked.len();
    check(&full, &stored(&addr, topic, expected));

    broker.stop();
    broker.restart();
    let all = stored(&broker.addr(), topic, expected);
    check(&full, &all);
    check(&after, &all);
    broker.stop();
}
