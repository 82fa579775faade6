//! Fetch: sessionless (session id 0), long polling woken by produce.
//!
//! 1. Read every requested partition (one router call per owning shard); a partition named
//!    more than once is read once. What is read in all stays within the request's max_bytes
//!    (at most [`FETCH_RESPONSE_BYTES_CAP`]), given out in request order to the partitions
//!    that have data (see [`read_all`]).
//! 2. If fewer than `min_bytes` came back and `max_wait_ms` has not passed, ask each owning
//!    shard to wake us when any of its partitions grows (`WaitForData`); the first shard to
//!    answer, or the deadline, ends the wait; then read again.
//! 3. Answer with whole batches (the one containing the fetch offset first, even when larger
//!    than the limits, KIP-74), stopping before `max_bytes` for the rest. Record bytes are
//!    the log's buffers, written to the socket without a copy.

use super::errors::partition_error_code;
use super::{RequestError, ServerCtx};
use crate::model::{Offset, ShardId, TopicPartition};
use crate::protocol::fetch::*;
use crate::protocol::ErrorCode;
use crate::router::{
    FetchBudget, FetchPart, FetchedPartition, PartitionError, Scatter, ShardCall, ShardReply,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Longest wait a client may ask for.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);
/// Largest response a fetch may build, whatever the client asks: bounds the memory one
/// request can pin (the first batch of the response may still exceed it, KIP-74).
pub const FETCH_RESPONSE_BYTES_CAP: usize = 64 << 20;

type Slot = Result<FetchedPartition, PartitionError>;

/// The partitions of a request: each distinct partition once, with its owner; and every
/// entry of the request, in request order, pointing at its read.
struct Plan {
    /// Distinct partitions to read, in the order first named.
    reads: Vec<(ShardId, FetchPart)>,
    /// Per request entry: (topic index, partition index, its read and whether it is the
    /// first entry naming that partition), or why it is not read here.
    entries: Vec<(usize, usize, Result<(usize, bool), PartitionError>)>,
}

/// The request's entries, a partition named twice or more read once (the first entry's
/// offset and limit; later ones are answered without records), as Kafka keys fetch data by
/// partition.
fn plan(ctx: &ServerCtx, req: &FetchRequest) -> Plan {
    let image = ctx.image();
    let mut reads: Vec<(ShardId, FetchPart)> = Vec::new();
    let mut seen: HashMap<(&str, i32), usize> = HashMap::new();
    let mut entries = Vec::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let meta = image.topics.get(topic.topic.as_str());
        for (pi, p) in topic.partitions.iter().enumerate() {
            let Some(m) = meta.filter(|m| ctx.leads(m, p.partition)) else {
                entries.push((ti, pi, Err(ctx.unrouted(&topic.topic, p.partition))));
                continue;
            };
            if let Some(&at) = seen.get(&(topic.topic.as_str(), p.partition)) {
                entries.push((ti, pi, Ok((at, false))));
                continue;
            }
            seen.insert((topic.topic.as_str(), p.partition), reads.len());
            let max = usize::try_from(p.partition_max_bytes)
                .unwrap_or(0)
                .min(FETCH_RESPONSE_BYTES_CAP);
            let part = FetchPart {
                tp: TopicPartition {
                    topic: m.name.clone(),
                    partition: p.partition,
                },
                fetch_offset: p.fetch_offset,
                partition_max_bytes: max,
            };
            entries.push((ti, pi, Ok((reads.len(), true))));
            reads.push((ctx.router.owner(&m.name, p.partition), part));
        }
    }
    Plan { reads, entries }
}

/// Read every distinct partition once, within `max_bytes` in all. When the partitions'
/// limits fit in it, they are all read at once (the shards share the budget). When they do
/// not, a first call learns which partitions have data (reading none), and `max_bytes` is
/// given out to those in request order, as Kafka reads them one after the other: a partition
/// at its end takes nothing, and the order the client chose (clients rotate it) decides who
/// is served, not which shard answers first.
async fn read_all(
    ctx: &ServerCtx,
    plan: &Plan,
    max_bytes: usize,
) -> Result<Vec<Slot>, RequestError> {
    let all: Vec<Option<FetchPart>> = plan.reads.iter().map(|(_, p)| Some(p.clone())).collect();
    let wanted = plan
        .reads
        .iter()
        .map(|(_, p)| p.partition_max_bytes.max(1))
        .fold(0usize, usize::saturating_add);
    if wanted <= max_bytes {
        return read(ctx, plan, all, max_bytes).await;
    }
    let mut slots = read(ctx, plan, all, 0).await?;
    let mut left = max_bytes.max(1);
    let mut shares = Vec::with_capacity(plan.reads.len());
    for ((_, part), slot) in plan.reads.iter().zip(&slots) {
        let has_data = matches!(slot, Ok(f) if part.fetch_offset < f.high_watermark);
        let share = if has_data {
            part.partition_max_bytes.max(1).min(left)
        } else {
            0
        };
        left -= share;
        shares.push((share > 0).then(|| FetchPart {
            partition_max_bytes: share,
            ..part.clone()
        }));
    }
    let read_slots = read(ctx, plan, shares.clone(), max_bytes).await?;
    for ((slot, share), fresh) in slots.iter_mut().zip(&shares).zip(read_slots) {
        if share.is_some() {
            *slot = fresh;
        }
    }
    Ok(slots)
}

/// One call per owning shard for the `parts` given (`None`: not read, answered as unknown
/// and replaced by the caller), sharing a budget of `max_bytes`.
async fn read(
    ctx: &ServerCtx,
    plan: &Plan,
    parts: Vec<Option<FetchPart>>,
    max_bytes: usize,
) -> Result<Vec<Slot>, RequestError> {
    let mut scatter = Scatter::new();
    for ((shard, _), part) in plan.reads.iter().zip(parts) {
        match part {
            Some(part) => scatter.send(*shard, part),
            None => scatter.skip(),
        }
    }
    let budget = FetchBudget::new(max_bytes);
    let slots = ctx
        .scatter_gather(
            scatter,
            |parts| ShardCall::Fetch {
                parts,
                budget: budget.clone(),
            },
            |reply| match reply {
                ShardReply::Fetch(results) => Some(results),
                _ => None,
            },
        )
        .await?;
    Ok(slots
        .into_iter()
        .map(|s| s.unwrap_or(Err(PartitionError::UnknownTopicOrPartition)))
        .collect())
}

/// The offset after what `slot` read of `part`: data past it is new.
fn read_up_to(part: &FetchPart, slot: &Slot) -> Offset {
    let last = slot.as_ref().ok().and_then(|f| f.batches.last());
    last.and_then(|b| crate::model::BatchHeader::parse(b).ok())
        .map_or(part.fetch_offset, |h| h.last_offset().saturating_add(1))
}

/// Per owning shard, each partition with the offset after what `slots` read of it.
type Marks = BTreeMap<ShardId, Vec<(TopicPartition, Offset)>>;

fn marks(plan: &Plan, slots: &[Slot]) -> Marks {
    let mut by_shard = Marks::new();
    for ((shard, part), slot) in plan.reads.iter().zip(slots) {
        by_shard
            .entry(*shard)
            .or_default()
            .push((part.tp.clone(), read_up_to(part, slot)));
    }
    by_shard
}

/// Wait until any owning shard reports data past its marks, or `timeout`.
async fn wait_for_data(ctx: &ServerCtx, by_shard: Marks, timeout: Duration) {
    let mut waits: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = by_shard
        .into_iter()
        .map(|(shard, parts)| {
            let f: Pin<Box<dyn Future<Output = ()> + '_>> = Box::pin(async move {
                let _ = ctx
                    .router
                    .call(shard, ShardCall::WaitForData { parts, timeout })
                    .await;
            });
            f
        })
        .collect();
    if waits.is_empty() {
        glommio::timer::sleep(timeout).await;
        return;
    }
    let first = std::future::poll_fn(|cx| {
        for w in waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    });
    let _ = glommio::timer::timeout(timeout, async {
        first.await;
        Ok(())
    })
    .await;
}

pub async fn handle(ctx: &ServerCtx, req: FetchRequest) -> Result<FetchResponse, RequestError> {
    // The bytes read are bounded by the request (max_bytes, capped, shared by the shards
    // that read) and by the memory each owning shard lets its disk reads hold
    // (`storage::ReadMemory`), not by a permit held across the long-poll wait.
    let max_bytes = response_budget(&req);
    let plan = plan(ctx, &req);
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0).max(1);
    let mut slots = read_all(ctx, &plan, max_bytes).await?;
    loop {
        let bytes: usize = slots
            .iter()
            .map(|s| s.as_ref().map_or(0, FetchedPartition::bytes))
            .sum();
        let any_error =
            slots.iter().any(Result::is_err) || plan.entries.iter().any(|(_, _, e)| e.is_err());
        let left = deadline.saturating_duration_since(Instant::now());
        // More than max_bytes cannot come: waiting for min_bytes past it would spin.
        if bytes >= min_bytes.min(max_bytes) || any_error || left.is_zero() {
            break;
        }
        let marks = marks(&plan, &slots);
        drop(slots); // nothing is held while waiting
        wait_for_data(ctx, marks, left).await;
        slots = read_all(ctx, &plan, max_bytes).await?;
    }
    let mut response = respond(&req, &plan, slots);
    leader_hints(ctx, &mut response);
    for p in response.responses.iter().flat_map(|t| t.partitions.iter()) {
        if p.error_code != 0 {
            ctx.metrics.error(API_KEY, p.error_code);
        }
    }
    Ok(response)
}

/// KIP-951: every NOT_LEADER_OR_FOLLOWER partition names its current leader (when another
/// live node leads it); encoded from v12.
fn leader_hints(ctx: &ServerCtx, response: &mut FetchResponse) {
    for t in &mut response.responses {
        for p in &mut t.partitions {
            if p.error_code == ErrorCode::NOT_LEADER_OR_FOLLOWER.0 {
                p.current_leader =
                    super::metadata::current_leader(ctx, &t.topic, p.partition_index);
            }
        }
    }
}

/// Bytes of response a request may produce: its max_bytes, or the sum of its partition
/// limits if smaller, never above [`FETCH_RESPONSE_BYTES_CAP`].
fn response_budget(req: &FetchRequest) -> usize {
    let partitions: usize = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| usize::try_from(p.partition_max_bytes).unwrap_or(0))
        .fold(0usize, usize::saturating_add);
    let total = usize::try_from(req.max_bytes).unwrap_or(usize::MAX);
    total.min(partitions).min(FETCH_RESPONSE_BYTES_CAP)
}

fn respond(req: &FetchRequest, plan: &Plan, slots: Vec<Slot>) -> FetchResponse {
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(FETCH_RESPONSE_BYTES_CAP);
    let mut used = 0usize;
    let mut responses: Vec<FetchableTopicResponse> = req
        .topics
        .iter()
        .map(|t| FetchableTopicResponse {
            topic: t.topic.clone(),
            partitions: Vec::new(),
        })
        .collect();
    for (ti, pi, entry) in &plan.entries {
        let partition_index = req.topics[*ti].partitions[*pi].partition;
        let mut pd = PartitionData {
            partition_index,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: Vec::new(),
            current_leader: None,
        };
        let slot = entry.as_ref().map(|&(at, first)| (&slots[at], first));
        match slot {
            Err(e) | Ok((Err(e), _)) => pd.error_code = partition_error_code(e).0,
            Ok((Ok(f), first)) => {
                pd.high_watermark = f.high_watermark;
                pd.last_stable_offset = f.last_stable_offset;
                pd.log_start_offset = f.log_start_offset;
                if req.isolation_level == 1 {
                    pd.aborted_transactions = Some(Vec::new());
                }
                let batches = if first { &f.batches[..] } else { &[] };
                for batch in batches {
                    // The first batch of the response always goes (KIP-74); later ones fit.
                    if used > 0 && used + batch.len() > max_bytes {
                        break;
                    }
                    used += batch.len();
                    pd.records.push(batch.clone());
                }
            }
        }
        responses[*ti].partitions.push(pd);
    }
    FetchResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::NONE.0,
        session_id: 0,
        responses,
    }
}
