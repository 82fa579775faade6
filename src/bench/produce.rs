//! One bench producer: an open-loop (or closed-loop) record generator, per-partition batch
//! accumulation with linger, and pipelined Produce requests on one connection.
//!
//! Two tasks share the connection: the sender generates the records that are due, closes
//! batches that are full or have lingered, and writes Produce requests; the ack reader
//! reads the responses in order and records, for every record, the time from its intended
//! send time to its acknowledgement. The bounded in-flight channel between them is the only
//! backpressure: when [`MAX_IN_FLIGHT`] requests await answers the sender waits, records keep
//! falling due on the schedule, and their wait is charged to the broker.
//!
//! A Produce request carries at most one batch per partition (Kafka's rule from v3).

use super::schedule::Schedule;
use super::stats::Recorder;
use super::{Keys, Plan};
use crate::client::batch::BatchBuilder;
use crate::client::conn::{ConnReader, ConnWriter, Connection};
use crate::client::ClientError;
use crate::protocol::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Produce requests awaiting an answer per connection (Kafka's max.in.flight default is 5).
pub const MAX_IN_FLIGHT: usize = 8;
/// A Produce request stops taking batches at this size.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Broker-side timeout written into each Produce request.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// How long in-flight requests may take to answer after the run ends.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A closed batch, waiting for a request.
struct Closed {
    slot: usize,
    batch: Bytes,
    intended_ns: Vec<u64>,
}

/// A request written and not yet answered.
struct InFlight {
    correlation_id: i32,
    version: i16,
    batches: Vec<(i32, Vec<u64>)>,
}

/// Per-partition batches being filled.
struct Accumulator {
    builders: Vec<BatchBuilder>,
    intended_ns: Vec<Vec<u64>>,
    opened_ns: Vec<u64>,
    closed: Vec<Closed>,
    closed_bytes: usize,
    batch_bytes: usize,
}

impl Accumulator {
    fn new(partitions: usize, batch_bytes: usize) -> Self {
        Accumulator {
            builders: (0..partitions)
                .map(|_| BatchBuilder::with_capacity(batch_bytes + 1024))
                .collect(),
            intended_ns: vec![Vec::new(); partitions],
            opened_ns: vec![0; partitions],
            closed: Vec::new(),
            closed_bytes: 0,
            batch_bytes,
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(batch) = self.builders[slot].finish() {
            self.closed_bytes += batch.len();
            let intended_ns = std::mem::take(&mut self.intended_ns[slot]);
            self.closed.push(Closed {
                slot,
                batch,
                intended_ns,
            });
        }
    }

    /// Close every batch opened at least `linger_ns` before `now_ns`.
    fn close_lingered(&mut self, now_ns: u64, linger_ns: u64) {
        for slot in 0..self.builders.len() {
            if !self.builders[slot].is_empty() && self.opened_ns[slot] + linger_ns <= now_ns {
                self.close(slot);
            }
        }
    }

    fn close_all(&mut self) {
        for slot in 0..self.builders.len() {
            self.close(slot);
        }
    }

    fn next_linger_deadline(&self, linger_ns: u64) -> Option<u64> {
        (0..self.builders.len())
            .filter(|&s| !self.builders[s].is_empty())
            .map(|s| self.opened_ns[s] + linger_ns)
            .min()
    }

    /// Take closed batches for one request: at most one per partition, up to the size cap.
    fn take_request(&mut self) -> Vec<Closed> {
        let mut taken: Vec<Closed> = Vec::new();
        let mut bytes = 0;
        let mut rest = Vec::new();
        for c in self.closed.drain(..) {
            let dup = taken.iter().any(|t| t.slot == c.slot);
            if dup || (bytes > 0 && bytes + c.batch.len() > MAX_REQUEST_BYTES) {
                rest.push(c);
            } else {
                bytes += c.batch.len();
                taken.push(c);
            }
        }
        self.closed = rest;
        self.closed_bytes -= bytes;
        taken
    }
}

/// Chooses each record's partition (an index into the plan's partitions) and key.
struct Partitioner {
    keys: Keys,
    partitions: usize,
    sticky: usize,
    rng: u64,
    key: [u8; 8],
}

impl Partitioner {
    /// Producer `producer`'s partitioner over `partitions` (at least 1) partitions; sticky
    /// producers start on different partitions.
    fn new(keys: Keys, partitions: usize, producer: u64) -> Self {
        let partitions = partitions.max(1);
        Partitioner {
            keys,
            partitions,
            sticky: (producer % partitions as u64) as usize,
            rng: 0x2545_f491_4f6c_dd1d ^ (producer + 1),
            key: [0; 8],
        }
    }

    fn next(&mut self, global_seq: u64, sticky_full: bool) -> (usize, Option<[u8; 8]>) {
        match self.keys {
            Keys::None => {
                if sticky_full {
                    self.sticky = (self.sticky + 1) % self.partitions;
                }
                (self.sticky, None)
            }
            Keys::Random => {
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                self.key = self.rng.to_be_bytes();
                (fnv1a(&self.key) as usize % self.partitions, Some(self.key))
            }
            Keys::RoundRobin => (
                (global_seq % self.partitions as u64) as usize,
                Some(global_seq.to_be_bytes()),
            ),
        }
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Run producer `index` until the plan's end; failures are counted, not returned.
pub(crate) async fn run(plan: Arc<Plan>, index: u64, rec: Rc<RefCell<Recorder>>) {
    if let Err(e) = produce(&plan, index, &rec).await {
        eprintln!("producer {index}: {e}");
        rec.borrow_mut().errors.connections += 1;
    }
}

async fn produce(
    plan: &Arc<Plan>,
    index: u64,
    rec: &Rc<RefCell<Recorder>>,
) -> Result<(), ClientError> {
    let conn = Connection::connect(&plan.args.bootstrap, &format!("ringmq-bench-p{index}")).await?;
    let version = conn.versions.pick::<ProduceRequest>()?;
    let Connection {
        mut writer, reader, ..
    } = conn;
    let (tx, rx) = local_channel::new_bounded::<InFlight>(MAX_IN_FLIGHT);
    let acks = glommio::spawn_local(read_acks(plan.clone(), reader, rx, rec.clone()));
    plan.clock.sleep_until(0).await;
    let sent = send_loop(plan, index, version, &mut writer, &tx, rec).await;
    drop(tx);
    let drained = glommio::timer::timeout(DRAIN_TIMEOUT, async { Ok(acks.await) }).await;
    sent?;
    match drained {
        Ok(r) => r,
        Err(_) => Err(ClientError::Io(
            "produce responses did not arrive within the drain timeout".into(),
        )),
    }
}

async fn send_loop(
    plan: &Arc<Plan>,
    index: u64,
    version: i16,
    writer: &mut ConnWriter,
    tx: &LocalSender<InFlight>,
    rec: &Rc<RefCell<Recorder>>,
) -> Result<(), ClientError> {
    let a = &plan.args;
    let sched = Schedule::new(a.rate, index, u64::from(a.producers));
    let linger_ns = a.linger_ms * 1_000_000;
    let mut acc = Accumulator::new(plan.partitions.len(), a.batch_bytes);
    let mut parts = Partitioner::new(a.keys, plan.partitions.len(), index);
    let mut k: u64 = 0;
    let mut sticky_full = false;
    // Closed loop: fill about one batch per partition before each request, as a Kafka
    // producer drains every ready batch for a broker into one request.
    let closed_loop_request_bytes =
        (plan.partitions.len() * a.batch_bytes).clamp(1, MAX_REQUEST_BYTES);
    loop {
        let now = plan.clock.elapsed_ns();
        if now >= plan.end_ns {
            break;
        }
        let due = sched.due_by(now);
        while k < due && acc.closed_bytes < MAX_REQUEST_BYTES {
            let intended = if sched.is_open_loop() {
                sched.intended_ns(k)
            } else {
                now
            };
            let (slot, key) = parts.next(sched.global_seq(k), sticky_full);
            sticky_full = append(
                plan,
                &mut acc,
                slot,
                key.as_ref().map(|k| &k[..]),
                intended,
                now,
            );
            k += 1;
            if !sched.is_open_loop() && acc.closed_bytes >= closed_loop_request_bytes {
                break;
            }
        }
        acc.close_lingered(now, linger_ns);
        if !acc.closed.is_empty() {
            send_request(plan, version, writer, tx, acc.take_request(), rec).await?;
            continue;
        }
        sleep_until_next(plan, &sched, &acc, k, now, rec).await;
    }
    acc.close_all();
    while !acc.closed.is_empty() {
        send_request(plan, version, writer, tx, acc.take_request(), rec).await?;
    }
    Ok(())
}

/// Sleeps until the next record is due (record `k`), a batch's linger ends, or the run ends;
/// an open-loop run records how late the wake-up was.
async fn sleep_until_next(
    plan: &Plan,
    sched: &Schedule,
    acc: &Accumulator,
    k: u64,
    now: u64,
    rec: &Rc<RefCell<Recorder>>,
) {
    let linger_ns = plan.args.linger_ms * 1_000_000;
    let next_due = if sched.is_open_loop() {
        sched.intended_ns(k)
    } else {
        now
    };
    let next = next_due
        .min(acc.next_linger_deadline(linger_ns).unwrap_or(u64::MAX))
        .min(plan.end_ns);
    if next > now {
        glommio::timer::sleep(Duration::from_nanos(next - now)).await;
        let woke = plan.clock.elapsed_ns();
        if sched.is_open_loop() && plan.in_window(next) {
            rec.borrow_mut()
                .record_wake_lag_ns(woke.saturating_sub(next));
        }
    }
}

/// Append one record; returns whether its batch had to be closed first (full).
fn append(
    plan: &Plan,
    acc: &mut Accumulator,
    slot: usize,
    key: Option<&[u8]>,
    intended_ns: u64,
    now_ns: u64,
) -> bool {
    let value_bytes = plan.args.record_bytes;
    let b = &acc.builders[slot];
    let ts_delta = 0; // the size estimate does not depend on small timestamp deltas
    let rec_bytes = BatchBuilder::record_bytes(b.records_count(), ts_delta, key, value_bytes, &[]);
    let full = !b.is_empty() && b.size_bytes() + rec_bytes > acc.batch_bytes;
    if full {
        acc.close(slot);
    }
    if acc.builders[slot].is_empty() {
        acc.opened_ns[slot] = now_ns;
    }
    let send_epoch_ns = plan.clock.epoch_ns(intended_ns);
    let ts_ms = (send_epoch_ns / 1_000_000) as i64;
    acc.builders[slot].append_with(ts_ms, key, value_bytes, &[], |v| {
        let stamp = send_epoch_ns.to_be_bytes();
        let n = v.len().min(stamp.len());
        v[..n].copy_from_slice(&stamp[..n]);
    });
    acc.intended_ns[slot].push(intended_ns);
    full
}

async fn send_request(
    plan: &Plan,
    version: i16,
    writer: &mut ConnWriter,
    tx: &LocalSender<InFlight>,
    batches: Vec<Closed>,
    rec: &Rc<RefCell<Recorder>>,
) -> Result<(), ClientError> {
    let req = ProduceRequest {
        transactional_id: None,
        acks: plan.args.acks,
        timeout_ms: PRODUCE_TIMEOUT_MS,
        topic_data: vec![TopicProduceData {
            name: plan.args.topic.clone(),
            partition_data: batches
                .iter()
                .map(|c| PartitionProduceData {
                    index: plan.partitions[c.slot],
                    records: Some(c.batch.clone()),
                })
                .collect(),
        }],
    };
    let meta: Vec<(i32, Vec<u64>)> = batches
        .into_iter()
        .map(|c| (plan.partitions[c.slot], c.intended_ns))
        .collect();
    if plan.args.acks == 0 {
        writer.send(&req, version).await?;
        let now = plan.clock.elapsed_ns();
        let mut r = rec.borrow_mut();
        for (_, intended) in &meta {
            count_acked(plan, &mut r, intended, now);
        }
        return Ok(());
    }
    let inflight = InFlight {
        correlation_id: writer.next_correlation_id(),
        version,
        batches: meta,
    };
    // Wait for a free in-flight slot before writing, so the reader knows what comes next.
    tx.send(inflight)
        .await
        .map_err(|_| ClientError::Io("ack reader stopped".into()))?;
    writer.send(&req, version).await?;
    Ok(())
}

fn count_acked(plan: &Plan, r: &mut Recorder, intended_ns: &[u64], now_ns: u64) {
    for &t in intended_ns {
        if plan.in_window(t) {
            r.records += 1;
            r.bytes += plan.args.record_bytes as u64;
            r.record_latency_ns(now_ns.saturating_sub(t));
        }
    }
}

async fn read_acks(
    plan: Arc<Plan>,
    mut reader: ConnReader,
    rx: LocalReceiver<InFlight>,
    rec: Rc<RefCell<Recorder>>,
) -> Result<(), ClientError> {
    while let Some(f) = rx.recv().await {
        let resp = reader
            .recv::<ProduceRequest>(f.version, f.correlation_id)
            .await?;
        let now = plan.clock.elapsed_ns();
        let mut r = rec.borrow_mut();
        for (partition, intended) in &f.batches {
            let code = resp
                .responses
                .iter()
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.index == *partition)
                .map_or(-1, |p| p.error_code);
            if code != 0 {
                r.errors.broker_records += intended.len() as u64;
                continue;
            }
            count_acked(&plan, &mut r, intended, now);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_takes_one_batch_per_partition_within_the_cap() {
        let mut acc = Accumulator::new(2, 100);
        for (slot, n) in [(0, 1u8), (1, 2), (0, 3)] {
            acc.builders[slot].append(0, None, &[n; 10], &[]);
            acc.intended_ns[slot].push(u64::from(n));
            acc.close(slot);
        }
        let first = acc.take_request();
        assert_eq!(first.iter().map(|c| c.slot).collect::<Vec<_>>(), vec![0, 1]);
        let second = acc.take_request();
        assert_eq!((second.len(), second[0].intended_ns.clone()), (1, vec![3]));
        assert_eq!(acc.closed_bytes, 0);
        assert!(acc.take_request().is_empty());
    }

    #[test]
    fn linger_closes_only_old_batches() {
        let mut acc = Accumulator::new(3, 1000);
        acc.builders[0].append(0, None, b"x", &[]);
        acc.opened_ns[0] = 100;
        acc.builders[2].append(0, None, b"y", &[]);
        acc.opened_ns[2] = 500;
        assert_eq!(acc.next_linger_deadline(50), Some(150));
        acc.close_lingered(200, 50);
        assert_eq!(acc.closed.len(), 1);
        assert_eq!(acc.next_linger_deadline(50), Some(550));
    }

    #[test]
    fn more_producers_than_partitions_stay_in_range() {
        for keys in [Keys::None, Keys::Random, Keys::RoundRobin] {
            for producer in [0, 15, 16, 21, 63] {
                let mut p = Partitioner::new(keys, 16, producer);
                for g in 0..100 {
                    assert!(p.next(g, g % 3 == 0).0 < 16, "{keys:?} producer {producer}");
                }
            }
        }
        assert_eq!(Partitioner::new(Keys::None, 16, 21).next(0, false).0, 5);
    }

    #[test]
    fn partitioners_spread_records() {
        let mut p = Partitioner {
            keys: Keys::RoundRobin,
            partitions: 3,
            sticky: 0,
            rng: 1,
            key: [0; 8],
        };
        let got: Vec<usize> = (0..6).map(|g| p.next(g, false).0).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
        let mut p = Partitioner {
            keys: Keys::None,
            ..p
        };
        assert_eq!((p.next(0, false), p.next(1, true).0), ((0, None), 1));
        let mut p = Partitioner {
            keys: Keys::Random,
            partitions: 4,
            sticky: 0,
            rng: 7,
            key: [0; 8],
        };
        let mut seen = [0; 4];
        for g in 0..400 {
            seen[p.next(g, false).0] += 1;
        }
        assert!(seen.iter().all(|&c| c > 50), "{seen:?}");
    }
}
