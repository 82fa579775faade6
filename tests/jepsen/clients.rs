//! The fault test's clients, each on its own thread, each recording what it saw into the
//! [`History`](crate::checker::History):
//!
//! - producers: librdkafka idempotent, acks=all, Jepsen's timeouts (delivery 10 s, request
//!   3 s, reconnect backoff at most 1 s; `jepsen-io/redpanda src/jepsen/redpanda/client.clj`).
//!   A send is `Ok(offset)` when acknowledged, `Failed` only when librdkafka reports the
//!   message surely not persisted (`rd_kafka_message_status` = NOT_PERSISTED), else
//!   `Unknown`. A producer that hits a fatal error (idempotence broken) is replaced by a new
//!   instance (new values, new producer id) and the error is kept for the report;
//! - a consumer by assignment of every partition from the beginning (never seeks: its
//!   offsets must grow);
//! - group members (subscribe, commit every second);
//! - after the run, [`read_to_end`] (every partition to its high watermark) and
//!   [`committed`] (the group's offsets).
//!
//! Every loop ends when the shared stop flag is set and is bounded in values and time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::bindings::{rd_kafka_message_status, rd_kafka_msg_status_t};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, DeliveryResult};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::checker::{Outcome, Read, Send, Stream, VALUE_STRIDE};
use crate::common::kafka;

/// What every client shares.
pub struct Workload {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    /// Set to end every client loop.
    pub stop: AtomicBool,
    pub started: Instant,
    /// Pause between two sends of one producer.
    pub send_pause: Duration,
    /// Most values one producer thread sends over the run.
    pub max_sends: u64,
}

impl Workload {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// Sends queued in librdkafka and not yet reported, at most (a bound on memory while a
/// partition is unavailable: its sends wait there until their delivery timeout).
const MAX_IN_FLIGHT: usize = 5_000;
/// How long a producer waits for its last reports at the end.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The config every client of the fault test starts from.
fn config(w: &Workload) -> ClientConfig {
    let mut c = kafka::base_config(&w.bootstrap);
    c.set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "3");
    c
}

/// Delivery reports of one producer instance: (index of the send, outcome).
#[derive(Default)]
struct Reports {
    done: Mutex<Vec<(usize, Outcome)>>,
}

struct Ctx(Arc<Reports>);

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(m) => Outcome::Ok(m.offset()),
            Err((_, m)) if not_persisted(m) => Outcome::Failed,
            Err(_) => Outcome::Unknown,
        };
        if let Ok(mut done) = self.0.done.lock() {
            done.push((index, outcome));
        }
    }
}

/// librdkafka's verdict: the message was surely not written (never sent, or refused).
fn not_persisted(m: &BorrowedMessage<'_>) -> bool {
    // SAFETY: `m` is the live message librdkafka lends to the delivery callback.
    let status = unsafe { rd_kafka_message_status(m.ptr()) };
    status == rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED
}

/// What one producer thread did.
#[derive(Default)]
pub struct ProducerLog {
    pub sends: Vec<Send>,
    /// Fatal errors (each ended a producer instance).
    pub fatal: Vec<String>,
}

/// One producer thread: instances `first`, `first + stride`, ... (a new one after a fatal
/// error), until stopped or `max_sends` values were sent.
pub fn spawn_producer(
    w: Arc<Workload>,
    first: u64,
    stride: u64,
) -> thread::JoinHandle<ProducerLog> {
    thread::spawn(move || {
        let mut log = ProducerLog::default();
        let mut instance = first;
        while !w.stopped() && (log.sends.len() as u64) < w.max_sends {
            if let Some(fatal) = run_instance(&w, instance, &mut log.sends) {
                eprintln!("jepsen: producer instance {instance}: fatal error: {fatal}");
                log.fatal.push(fatal);
            }
            instance += stride;
        }
        log
    })
}

fn producer(w: &Workload, reports: Arc<Reports>) -> BaseProducer<Ctx> {
    let mut c = config(w);
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "10000")
        .set("request.timeout.ms", "3000")
        .set("retry.backoff.ms", "100");
    c.create_with_context(Ctx(reports))
        .expect("create producer")
}

/// Sends values of one producer instance to partitions round robin; returns its fatal
/// error, if it had one. Every send is appended to `sends` with its outcome.
fn run_instance(w: &Workload, instance: u64, sends: &mut Vec<Send>) -> Option<String> {
    let reports = Arc::new(Reports::default());
    let p = producer(w, reports.clone());
    let first = sends.len();
    let mut reported = 0;
    let mut fatal = None;
    for n in 0..VALUE_STRIDE {
        if w.stopped() || sends.len() as u64 >= w.max_sends {
            break;
        }
        if let Some((_, e)) = p.client().fatal_error() {
            fatal = Some(e);
            break;
        }
        while sends.len() - first - reported >= MAX_IN_FLIGHT && !w.stopped() {
            p.poll(Duration::from_millis(10));
            reported += apply(&reports, &mut sends[first..]);
        }
        let value = instance * VALUE_STRIDE + n;
        let partition = ((instance + n) % w.partitions as u64) as i32;
        let outcome = send_one(&p, w, value, partition, sends.len() - first);
        if outcome == Outcome::Failed {
            reported += 1; // refused: no report will come
        }
        sends.push(Send {
            value,
            partition,
            sent_ms: w.elapsed_ms(),
            outcome,
        });
        p.poll(Duration::ZERO);
        reported += apply(&reports, &mut sends[first..]);
        thread::sleep(w.send_pause);
    }
    let _ = p.flush(FLUSH_TIMEOUT);
    apply(&reports, &mut sends[first..]);
    fatal.or_else(|| p.client().fatal_error().map(|(_, e)| e))
}

/// Hands one value to librdkafka (waiting while its queue is full). `Unknown` until its
/// report arrives; `Failed` if librdkafka refused it outright (never sent).
fn send_one(
    p: &BaseProducer<Ctx>,
    w: &Workload,
    value: u64,
    partition: i32,
    index: usize,
) -> Outcome {
    let payload = value.to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let record = BaseRecord::<(), _, _>::with_opaque_to(&w.topic, index)
            .partition(partition)
            .payload(&payload);
        match p.send(record) {
            Ok(()) => return Outcome::Unknown,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                if Instant::now() < deadline =>
            {
                p.poll(Duration::from_millis(10));
            }
            Err(_) => return Outcome::Failed,
        }
    }
}

/// Moves the reports received so far into `sends`; returns how many.
fn apply(reports: &Reports, sends: &mut [Send]) -> usize {
    let done = std::mem::take(&mut *reports.done.lock().expect("reports"));
    for &(index, outcome) in &done {
        sends[index].outcome = outcome;
    }
    done.len()
}

fn read_of(m: &BorrowedMessage<'_>) -> Read {
    let value = m
        .payload()
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|s| s.parse().ok());
    Read {
        partition: m.partition(),
        offset: m.offset(),
        value,
    }
}

fn every_partition(w: &Workload, offset: Offset) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for p in 0..w.partitions {
        tpl.add_partition_offset(&w.topic, p, offset).expect("tpl");
    }
    tpl
}

fn consumer_config(w: &Workload, group: &str) -> ClientConfig {
    let mut c = config(w);
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "100");
    c
}

/// The consumer by assignment: every partition from the beginning, until stopped.
pub fn spawn_assigned(w: Arc<Workload>, name: &str) -> thread::JoinHandle<Stream> {
    let name = name.to_string();
    thread::spawn(move || {
        let group = format!("{}-{name}-unused", w.group);
        let c: BaseConsumer = consumer_config(&w, &group).create().expect("consumer");
        c.assign(&every_partition(&w, Offset::Beginning))
            .expect("assign");
        let mut reads = Vec::new();
        while !w.stopped() {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                reads.push(read_of(&m));
            }
        }
        Stream {
            name,
            ordered: true,
            reads,
        }
    })
}

/// A group member: subscribes, commits what it consumed every second, until stopped; then
/// commits once more and leaves. Returns its reads and (commits ok, commits failed).
pub fn spawn_member(w: Arc<Workload>, name: &str) -> thread::JoinHandle<(Stream, u64, u64)> {
    let name = name.to_string();
    thread::spawn(move || {
        let mut cfg = consumer_config(&w, &w.group);
        cfg.set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
        let c: BaseConsumer = cfg.create().expect("group member");
        c.subscribe(&[&w.topic]).expect("subscribe");
        let (mut reads, mut ok, mut failed) = (Vec::new(), 0, 0);
        let mut next_commit = Instant::now() + Duration::from_secs(1);
        while !w.stopped() {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                reads.push(read_of(&m));
            }
            if Instant::now() >= next_commit {
                next_commit = Instant::now() + Duration::from_secs(1);
                match c.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
        }
        match c.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => ok += 1,
            Err(_) => failed += 1,
        }
        c.unsubscribe();
        let stream = Stream {
            name,
            ordered: false,
            reads,
        };
        (stream, ok, failed)
    })
}

/// High watermark of every partition (retried until `deadline`).
fn high_watermarks(
    c: &BaseConsumer,
    w: &Workload,
    deadline: Instant,
) -> Result<BTreeMap<i32, i64>, String> {
    let mut hws = BTreeMap::new();
    for p in 0..w.partitions {
        let high = loop {
            match c.fetch_watermarks(&w.topic, p, Duration::from_secs(5)) {
                Ok((_, high)) => break high,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("high watermark of {}/{p}: {e}", w.topic))
                }
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        };
        hws.insert(p, high);
    }
    Ok(hws)
}

/// Every partition from its start to its end (librdkafka's partition EOF: the fetch
/// reached the high watermark), with the high watermarks taken before the read began.
pub fn read_to_end(
    w: &Workload,
    within: Duration,
) -> Result<(Vec<Read>, BTreeMap<i32, i64>), String> {
    let deadline = Instant::now() + within;
    let mut cfg = consumer_config(w, &format!("{}-final", w.group));
    cfg.set("enable.partition.eof", "true");
    let c: BaseConsumer = cfg.create().expect("final consumer");
    let hws = high_watermarks(&c, w, deadline)?;
    c.assign(&every_partition(w, Offset::Beginning))
        .expect("assign");
    let mut reads = Vec::new();
    let mut at_end = BTreeSet::new();
    while at_end.len() < w.partitions as usize {
        if Instant::now() >= deadline {
            return Err(format!(
                "final read: only partitions {:?} reached their end",
                at_end
            ));
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => reads.push(read_of(&m)),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            _ => {}
        }
    }
    Ok((reads, hws))
}

/// The group's committed offsets (partitions it committed), as a group outsider asks.
pub fn committed(w: &Workload, within: Duration) -> Result<BTreeMap<i32, i64>, String> {
    let c: BaseConsumer = consumer_config(w, &w.group).create().expect("consumer");
    let deadline = Instant::now() + within;
    loop {
        match c.committed_offsets(every_partition(w, Offset::Invalid), Duration::from_secs(5)) {
            Ok(tpl) => {
                let offsets = tpl
                    .elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect();
                return Ok(offsets);
            }
            Err(e) if Instant::now() >= deadline => return Err(format!("committed offsets: {e}")),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}
