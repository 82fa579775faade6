//! One bench consumer: a fetch loop over its share of the partitions, one request at a time.
//!
//! Consumer `c` of `n` reads the partitions at positions `c, c+n, c+2n, …` of the plan's
//! partition list, from the offsets the plan fixed before the run (latest for `e2e`,
//! earliest for `consume`). In `consume` mode it stops once it has read up to the log end
//! seen at setup: a catch-up read of the backlog, timed until the last consumer is done. In `e2e` mode each record's first 8 bytes are its producer's
//! intended send time (ns since the Unix epoch), and the latency recorded is receipt minus
//! that; in `consume` mode the latency recorded is each fetch's round trip.

use super::stats::Recorder;
use super::{Mode, Plan};
use crate::client::batch::{records, split_batches};
use crate::client::conn::Connection;
use crate::client::ClientError;
use crate::model::BatchHeader;
use crate::protocol::fetch::{FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Longest the broker may hold a fetch waiting for data.
const FETCH_MAX_WAIT_MS: i32 = 100;
/// Bytes per fetch response, and per partition within it.
const FETCH_MAX_BYTES: i32 = 32 << 20;
const PARTITION_MAX_BYTES: i32 = 4 << 20;

struct Assigned {
    partition: i32,
    next_offset: i64,
    /// Stop reading this partition here (`consume` mode's backlog end).
    end_offset: i64,
}

/// Run consumer `index` until the plan's consumer stop time; failures are counted.
pub(crate) async fn run(plan: Arc<Plan>, index: u64, rec: Rc<RefCell<Recorder>>) {
    if let Err(e) = consume(&plan, index, &rec).await {
        eprintln!("consumer {index}: {e}");
        rec.borrow_mut().errors.connections += 1;
    }
}

async fn consume(
    plan: &Arc<Plan>,
    index: u64,
    rec: &Rc<RefCell<Recorder>>,
) -> Result<(), ClientError> {
    let n = u64::from(plan.args.consumers.max(1));
    let mut assigned: Vec<Assigned> = (0..plan.partitions.len())
        .filter(|i| *i as u64 % n == index)
        .map(|i| Assigned {
            partition: plan.partitions[i],
            next_offset: plan.start_offsets[i],
            end_offset: plan.end_offsets[i],
        })
        .collect();
    if assigned.iter().all(|a| a.next_offset >= a.end_offset) {
        caught_up(plan, 0);
        return Ok(());
    }
    let mut conn =
        Connection::connect(&plan.args.bootstrap, &format!("ringmq-bench-c{index}")).await?;
    let version = conn.versions.pick::<FetchRequest>()?;
    plan.clock.sleep_until(0).await;
    while plan.clock.elapsed_ns() < plan.consume_stop_ns {
        let req = fetch_request(&plan.args.topic, &assigned);
        let sent = plan.clock.elapsed_ns();
        let id = conn.writer.send(&req, version).await?;
        let resp = conn.reader.recv::<FetchRequest>(version, id).await?;
        let now = plan.clock.elapsed_ns();
        let got = absorb(plan, &resp, &mut assigned, now, &mut rec.borrow_mut());
        if plan.args.mode == Mode::Consume && got > 0 && plan.in_window(now) {
            rec.borrow_mut().record_latency_ns(now - sent);
        }
        if assigned.iter().all(|a| a.next_offset >= a.end_offset) {
            caught_up(plan, now);
            break;
        }
    }
    Ok(())
}

/// Note that this consumer has read its whole backlog at run time `now_ns`.
fn caught_up(plan: &Plan, now_ns: u64) {
    plan.caught_up_ns.fetch_max(now_ns, Ordering::Relaxed);
    plan.consumers_caught_up.fetch_add(1, Ordering::Relaxed);
}

fn fetch_request(topic: &str, assigned: &[Assigned]) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: FETCH_MAX_WAIT_MS,
        min_bytes: 1,
        max_bytes: FETCH_MAX_BYTES,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: assigned
                .iter()
                .map(|a| FetchPartition {
                    partition: a.partition,
                    current_leader_epoch: -1,
                    fetch_offset: a.next_offset,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: PARTITION_MAX_BYTES,
                })
                .collect(),
        }],
        forgotten_topics_data: Vec::new(),
        rack_id: String::new(),
    }
}

/// Count the records of one fetch response and advance the offsets; returns records seen.
fn absorb(
    plan: &Plan,
    resp: &FetchResponse,
    assigned: &mut [Assigned],
    now_ns: u64,
    r: &mut Recorder,
) -> u64 {
    let mut seen = 0;
    let now_epoch = plan.clock.epoch_ns(now_ns);
    for pd in resp.responses.iter().flat_map(|t| &t.partitions) {
        let Some(a) = assigned
            .iter_mut()
            .find(|a| a.partition == pd.partition_index)
        else {
            continue;
        };
        if pd.error_code != 0 {
            r.errors.broker_records += 1;
            continue;
        }
        for chunk in &pd.records {
            for batch in split_batches(chunk) {
                let Ok(header) = BatchHeader::parse(batch) else {
                    continue;
                };
                let base = header.base_offset();
                let Ok(recs) = records(batch) else {
                    r.errors.malformed += 1;
                    a.next_offset = a.next_offset.max(header.last_offset() + 1);
                    continue;
                };
                for rv in recs {
                    let Ok(rv) = rv else {
                        r.errors.malformed += 1;
                        break;
                    };
                    if base + i64::from(rv.offset_delta) < a.next_offset {
                        continue; // a batch may start before the fetch offset
                    }
                    seen += 1;
                    count_record(plan, r, rv.value.unwrap_or(&[]), now_ns, now_epoch);
                }
                a.next_offset = a.next_offset.max(header.last_offset() + 1);
            }
        }
    }
    seen
}

fn count_record(plan: &Plan, r: &mut Recorder, value: &[u8], now_ns: u64, now_epoch_ns: u64) {
    if plan.args.mode == Mode::E2e {
        let Some(stamp) = value.get(..8) else {
            r.errors.malformed += 1;
            return;
        };
        let mut b = [0u8; 8];
        b.copy_from_slice(stamp);
        let sent_epoch_ns = u64::from_be_bytes(b);
        if sent_epoch_ns < plan.clock.epoch_ns(plan.warmup_ns)
            || sent_epoch_ns >= plan.clock.epoch_ns(plan.end_ns)
        {
            return;
        }
        r.record_latency_ns(now_epoch_ns.saturating_sub(sent_epoch_ns));
    } else if !plan.in_window(now_ns) {
        return;
    }
    r.records += 1;
    r.bytes += value.len() as u64;
}
