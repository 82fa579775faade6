//! Fetch: sessionless (session id 0), long polling woken by produce.
//!
//! 1. Read every requested partition (one router call per owning shard).
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
use crate::router::{FetchPart, FetchedPartition, PartitionError, Scatter, ShardCall, ShardReply};
use std::collections::BTreeMap;
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

/// The partitions of a request, in request order, with their owner.
struct Plan {
    /// Per partition: its owning shard and the part to read, or why it is not read here.
    parts: Vec<(usize, usize, Result<(ShardId, FetchPart), PartitionError>)>,
}

fn plan(ctx: &ServerCtx, req: &FetchRequest) -> Plan {
    let image = ctx.image();
    let mut parts = Vec::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let meta = image.topics.get(topic.topic.as_str());
        for (pi, p) in topic.partitions.iter().enumerate() {
            let target = meta.filter(|m| ctx.leads(m, p.partition)).map(|m| {
                let tp = TopicPartition {
                    topic: m.name.clone(),
                    partition: p.partition,
                };
                let max = usize::try_from(p.partition_max_bytes)
                    .unwrap_or(0)
                    .min(FETCH_RESPONSE_BYTES_CAP);
                (
                    ctx.router.owner(&m.name, p.partition),
                    FetchPart {
                        tp,
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: max,
                    },
                )
            });
            let target = target.ok_or_else(|| ctx.unrouted(&topic.topic, p.partition));
            parts.push((ti, pi, target));
        }
    }
    Plan { parts }
}

async fn read_all(ctx: &ServerCtx, plan: &Plan) -> Result<Vec<Slot>, RequestError> {
    let mut scatter = Scatter::new();
    for (_, _, target) in &plan.parts {
        match target {
            Ok((shard, part)) => scatter.send(*shard, part.clone()),
            Err(_) => scatter.skip(),
        }
    }
    let slots = ctx
        .scatter_gather(
            scatter,
            |parts| ShardCall::Fetch { parts },
            |reply| match reply {
                ShardReply::Fetch(results) => Some(results),
                _ => None,
            },
        )
        .await?;
    Ok(slots
        .into_iter()
        .zip(&plan.parts)
        .map(|(s, (_, _, target))| match target {
            Err(e) => Err(e.clone()),
            Ok(_) => s.unwrap_or(Err(PartitionError::UnknownTopicOrPartition)),
        })
        .collect())
}

/// Wait until any owning shard reports new data, or `timeout`.
async fn wait_for_data(ctx: &ServerCtx, plan: &Plan, timeout: Duration) {
    let mut by_shard: BTreeMap<ShardId, Vec<(TopicPartition, Offset)>> = BTreeMap::new();
    for (_, _, target) in &plan.parts {
        if let Ok((shard, part)) = target {
            by_shard
                .entry(*shard)
                .or_default()
                .push((part.tp.clone(), part.fetch_offset));
        }
    }
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
    // Admission by the response the client may get: its byte limit, capped. Released when
    // the response is encoded (the bytes it references are the log's own buffers).
    let budget = response_budget(&req) as u64;
    let _permit = ctx
        .inflight
        .acquire_permit(budget)
        .await
        .map_err(|_| RequestError::Unavailable)?;
    let plan = plan(ctx, &req);
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0).max(1);
    let mut slots = read_all(ctx, &plan).await?;
    loop {
        let bytes: usize = slots
            .iter()
            .map(|s| s.as_ref().map_or(0, FetchedPartition::bytes))
            .sum();
        let any_error = slots.iter().any(Result::is_err);
        let left = deadline.saturating_duration_since(Instant::now());
        if bytes >= min_bytes || any_error || left.is_zero() {
            break;
        }
        wait_for_data(ctx, &plan, left).await;
        slots = read_all(ctx, &plan).await?;
    }
    let response = respond(&req, &plan, slots);
    for p in response.responses.iter().flat_map(|t| t.partitions.iter()) {
        if p.error_code != 0 {
            ctx.metrics.error(API_KEY, p.error_code);
        }
    }
    Ok(response)
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
    for ((ti, pi, _), slot) in plan.parts.iter().zip(slots) {
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
        };
        match slot {
            Ok(f) => {
                pd.high_watermark = f.high_watermark;
                pd.last_stable_offset = f.last_stable_offset;
                pd.log_start_offset = f.log_start_offset;
                if req.isolation_level == 1 {
                    pd.aborted_transactions = Some(Vec::new());
                }
                for batch in f.batches {
                    // The first batch of the response always goes (KIP-74); later ones fit.
                    if used > 0 && used + batch.len() > max_bytes {
                        break;
                    }
                    used += batch.len();
                    pd.records.push(batch);
                }
            }
            Err(e) => pd.error_code = partition_error_code(&e).0,
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
