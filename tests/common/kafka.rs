//! librdkafka (the `rdkafka` crate, sync APIs only) as the "normal client" of the tests.
//!
//! Records are generated from their index `i` so a consumer can check every byte without keeping
//! what was sent: key `k-{i}`, a value that repeats `i` up to a chosen size, two headers (one
//! carrying `i`, one constant), a CreateTime of `base_timestamp_ms() + i`, and partition
//! `i % partitions`. Within a partition, both `i` and the timestamp grow with the offset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// CreateTime of record 0: the first use in this test process, minus a minute. Record `i` is
/// stamped this plus `i` ms. Close to now on purpose: time-based retention (7 days by default)
/// would delete records stamped long ago, and brokers may refuse timestamps far in the future.
pub fn base_timestamp_ms() -> i64 {
    static BASE: OnceLock<i64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970");
        (now.as_secs() as i64 - 60) * 1_000
    })
}
/// How long any one client call may wait on the broker.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The expected contents of record `i`.
pub struct Expected {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp_ms: i64,
}

pub fn key_of(i: u64) -> Vec<u8> {
    format!("k-{i}").into_bytes()
}

/// `v-{i}|` repeated until `value_bytes` (at least one copy), so a value is checkable on its own.
pub fn value_of(i: u64, value_bytes: usize) -> Vec<u8> {
    let unit = format!("v-{i}|");
    let mut v = Vec::with_capacity(value_bytes.max(unit.len()));
    while v.len() < value_bytes.max(unit.len()) {
        v.extend_from_slice(unit.as_bytes());
    }
    v
}

pub fn headers_of(i: u64) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: "idx",
            value: Some(&i.to_be_bytes()),
        })
        .insert(Header {
            key: "origin",
            value: Some("ringmq-test"),
        })
}

pub fn timestamp_of(i: u64) -> i64 {
    base_timestamp_ms() + i as i64
}

/// Reads the record index from the `idx` header and checks key, value, headers and timestamp
/// against it. Returns the index, or a description of what is wrong.
pub fn check_record<M: Message>(m: &M, value_bytes: usize) -> Result<u64, String> {
    let headers = m.headers().ok_or("no headers")?;
    if headers.count() != 2 {
        return Err(format!("{} headers, expected 2", headers.count()));
    }
    let idx = headers.get(0);
    let origin = headers.get(1);
    let i_bytes: [u8; 8] = match (idx.key, idx.value) {
        ("idx", Some(v)) => v.try_into().map_err(|_| "idx header is not 8 bytes")?,
        other => return Err(format!("first header is {other:?}")),
    };
    if (origin.key, origin.value) != ("origin", Some(&b"ringmq-test"[..])) {
        return Err(format!("second header is {:?}", (origin.key, origin.value)));
    }
    let i = u64::from_be_bytes(i_bytes);
    if m.key() != Some(&key_of(i)[..]) {
        return Err(format!(
            "record {i}: key {:?}",
            m.key().map(String::from_utf8_lossy)
        ));
    }
    if m.payload() != Some(&value_of(i, value_bytes)[..]) {
        return Err(format!(
            "record {i}: value differs ({:?} bytes)",
            m.payload().map(|p| p.len())
        ));
    }
    if m.timestamp().to_millis() != Some(timestamp_of(i)) {
        return Err(format!("record {i}: timestamp {:?}", m.timestamp()));
    }
    Ok(i)
}

/// bootstrap.servers plus the settings every test client shares.
pub fn base_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "6");
    c
}

pub fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    base_config(addr).create().expect("create admin client")
}

/// CreateTopics through librdkafka's admin API; panics unless the topic was created.
pub fn create_topic(addr: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    create_topic_replicated(addr, name, partitions, 1, configs);
}

/// [`create_topic`] with `replication_factor` replicas of each partition.
pub fn create_topic_replicated(
    addr: &str,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
) {
    let admin = admin(addr);
    let rf = TopicReplication::Fixed(i32::from(replication_factor));
    let mut topic = NewTopic::new(name, partitions, rf);
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let results = futures_executor::block_on(admin.create_topics([&topic], &opts))
        .unwrap_or_else(|e| panic!("CreateTopics {name}: {e}"));
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("CreateTopics {t}: {e}"));
    }
}

/// Delivery reports: acknowledged (index → partition, offset) and failures.
#[derive(Default)]
pub struct AckLog {
    pub acked: HashMap<u64, (i32, i64)>,
    pub failed: Vec<(u64, String)>,
}

/// A producer context that records every delivery report in a shared [`AckLog`].
#[derive(Clone, Default)]
pub struct AckContext {
    pub log: Arc<Mutex<AckLog>>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let mut log = self.log.lock().expect("ack log poisoned");
        match result {
            Ok(m) => {
                log.acked.insert(index as u64, (m.partition(), m.offset()));
            }
            Err((e, _)) => log.failed.push((index as u64, e.to_string())),
        }
    }
}

/// An idempotent acks=all producer with `compression.codec = codec` and extra settings.
pub fn producer(addr: &str, codec: &str, extra: &[(&str, &str)]) -> BaseProducer<AckContext> {
    let mut c = base_config(addr);
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.codec", codec)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000")
        .set("queue.buffering.max.messages", "200000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(AckContext::default())
        .expect("create producer")
}

/// Sends record `i` (see the module docs) to `topic`, waiting while librdkafka's queue is full.
/// Panics on any other error.
pub fn send_record(
    p: &BaseProducer<AckContext>,
    topic: &str,
    partitions: i32,
    i: u64,
    value_bytes: usize,
) {
    try_send_record(p, topic, partitions, i, value_bytes)
        .unwrap_or_else(|e| panic!("send record {i}: {e}"));
}

/// [`send_record`] that hands back the error (e.g. librdkafka's fatal idempotence error).
pub fn try_send_record(
    p: &BaseProducer<AckContext>,
    topic: &str,
    partitions: i32,
    i: u64,
    value_bytes: usize,
) -> Result<(), KafkaError> {
    let key = key_of(i);
    let value = value_of(i, value_bytes);
    let partition = (i % partitions as u64) as i32;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let record = BaseRecord::with_opaque_to(topic, i as usize)
            .partition(partition)
            .key(&key)
            .payload(&value)
            .headers(headers_of(i))
            .timestamp(timestamp_of(i));
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                if Instant::now() < deadline =>
            {
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Produces records `range` and flushes; panics unless every one was acknowledged.
/// Returns the acknowledgements (index → partition, offset).
pub fn produce_all(
    addr: &str,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<u64>,
    codec: &str,
    value_bytes: usize,
) -> HashMap<u64, (i32, i64)> {
    produce_all_with(addr, topic, partitions, range, codec, value_bytes, &[])
}

/// [`produce_all`] with extra producer settings.
pub fn produce_all_with(
    addr: &str,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<u64>,
    codec: &str,
    value_bytes: usize,
    extra: &[(&str, &str)],
) -> HashMap<u64, (i32, i64)> {
    let p = producer(addr, codec, extra);
    let count = range.end - range.start;
    for i in range {
        send_record(&p, topic, partitions, i, value_bytes);
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(300)).expect("producer flush");
    let log = std::mem::take(&mut *p.context().log.lock().expect("ack log"));
    assert!(
        log.failed.is_empty(),
        "failed deliveries: {:?}",
        &log.failed[..log.failed.len().min(10)]
    );
    assert_eq!(log.acked.len() as u64, count, "acknowledged records");
    log.acked
}

/// A consumer for assign() only (no subscribe, no commits) that verifies CRCs.
///
/// librdkafka refuses assign() without a group.id ("Local: Unknown group"), so each consumer
/// gets a unique one; it never joins the group and never commits. Its coordinator lookups are
/// only logged by librdkafka, and starting from a logical offset needs no coordinator.
pub fn consumer(addr: &str) -> BaseConsumer {
    static GROUPS: AtomicU64 = AtomicU64::new(0);
    let group = format!(
        "ringmq-test-{}-{}",
        std::process::id(),
        GROUPS.fetch_add(1, Ordering::Relaxed)
    );
    let mut c = base_config(addr);
    c.set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("check.crcs", "true")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    c.create().expect("create consumer")
}

/// One consumed record: partition, offset, record index.
pub type Consumed = (i32, i64, u64);

/// Reads partitions `0..partitions` of `topic` from the beginning until `expected` records have
/// arrived (then waits `settle` more for any extra), checking each record's contents.
/// Any consumer error, malformed record or timeout fails the test.
pub fn consume_all(
    addr: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    value_bytes: usize,
) -> Vec<Consumed> {
    let c = consumer(addr);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(300);
    while out.len() < expected {
        assert!(
            Instant::now() < deadline,
            "{topic}: consumed {} of {expected} records before the deadline",
            out.len()
        );
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                let i = check_record(&m, value_bytes)
                    .unwrap_or_else(|e| panic!("{topic}/{} @{}: {e}", m.partition(), m.offset()));
                out.push((m.partition(), m.offset(), i));
            }
            Some(Err(e)) => panic!("{topic}: consumer error: {e}"),
        }
    }
    // Anything beyond the expected count is a duplicate or a stray record.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => panic!(
                "{topic}: extra record past the expected {expected}: {}/{} {:?}",
                m.partition(),
                m.offset(),
                check_record(&m, value_bytes)
            ),
            Some(Err(e)) => panic!("{topic}: consumer error: {e}"),
        }
    }
    out
}

/// (log start offset, high watermark) via ListOffsets earliest and latest.
pub fn watermarks(c: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    c.fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("fetch_watermarks {topic}/{partition}: {e}"))
}

/// ListOffsets by timestamp for one partition: the answer as an `Offset`.
pub fn offset_for_time(c: &BaseConsumer, topic: &str, partition: i32, timestamp_ms: i64) -> Offset {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(timestamp_ms))
        .expect("tpl");
    let answer = c
        .offsets_for_times(tpl, CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("offsets_for_times {topic}/{partition}: {e}"));
    let elem = answer
        .find_partition(topic, partition)
        .expect("partition in answer");
    elem.error()
        .unwrap_or_else(|e| panic!("offsets_for_times {topic}/{partition}: {e}"));
    elem.offset()
}

/// A small end-to-end check that a broker still serves a normal client: creates `topic`
/// (1 partition), produces `n` records and reads them back.
pub fn smoke(addr: &str, topic: &str, n: u64) {
    create_topic(addr, topic, 1, &[]);
    let acked = produce_all(addr, topic, 1, 0..n, "none", 32);
    let got = consume_all(addr, topic, 1, n as usize, 32);
    verify_exactly_once(topic, &acked, &got);
}

/// Every acknowledged record was consumed exactly once, at the offset its acknowledgement named,
/// nothing else was consumed, and within each partition offsets and indexes both increase.
pub fn verify_exactly_once(topic: &str, acked: &HashMap<u64, (i32, i64)>, got: &[Consumed]) {
    let mut seen = HashMap::with_capacity(got.len());
    for &(partition, offset, i) in got {
        if let Some(prev) = seen.insert(i, (partition, offset)) {
            panic!(
                "{topic}: record {i} consumed twice: at {prev:?} and at {:?}",
                (partition, offset)
            );
        }
        assert_eq!(
            acked.get(&i),
            Some(&(partition, offset)),
            "{topic}: record {i} consumed at {partition}/{offset}, acknowledged at"
        );
    }
    assert_eq!(
        seen.len(),
        acked.len(),
        "{topic}: acknowledged records missing"
    );
    verify_partition_order(topic, got);
}

/// Within each partition, in consumption order, offsets and record indexes strictly increase.
pub fn verify_partition_order(topic: &str, got: &[Consumed]) {
    let mut last: HashMap<i32, (i64, u64)> = HashMap::new();
    for &(partition, offset, i) in got {
        if let Some(&(o, j)) = last.get(&partition) {
            assert!(
                offset > o && i > j,
                "{topic}/{partition}: record {i}@{offset} came after record {j}@{o}"
            );
        }
        last.insert(partition, (offset, i));
    }
}

/// The node ids a broker's Metadata lists.
pub fn broker_ids(addr: &str) -> Vec<i32> {
    let c = consumer(addr);
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    md.brokers().iter().map(|b| b.id()).collect()
}
