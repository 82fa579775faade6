//! Produce: split the request by owning shard, one router call per shard, and assemble the
//! per-partition answers in request order. Record batches travel as zero-copy slices of the
//! request frame.

use super::errors::{partition_error_code, partition_error_message};
use super::metadata::{current_leader, node_endpoints};
use super::validate::{topic_action, TopicAction};
use super::{RequestError, ServerCtx};
use crate::config::Listener;
use crate::model::TopicPartition;
use crate::protocol::leader_discovery::NodeEndpoint;
use crate::protocol::produce::*;
use crate::protocol::ErrorCode;
use crate::router::{AppendOutcome, PartitionError, ProducePart, Scatter, ShardCall, ShardReply};

use std::collections::BTreeSet;

type Slot = Result<AppendOutcome, PartitionError>;

fn partition_response(index: i32, result: &Slot) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse {
        index,
        error_code: 0,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        record_errors: Vec::new(),
        error_message: None,
        current_leader: None,
    };
    match result {
        Ok(o) => {
            r.base_offset = o.base_offset;
            r.log_append_time_ms = o.log_append_time_ms;
            r.log_start_offset = o.log_start_offset;
        }
        Err(e) => {
            r.error_code = partition_error_code(e).0;
            r.error_message = partition_error_message(e);
        }
    }
    r
}

/// Returns `None` for acks=0 (no response is sent).
/// `listener`: the one the client came in on (NodeEndpoints name addresses on it).
pub async fn handle(
    ctx: &ServerCtx,
    req: ProduceRequest,
    listener: &Listener,
) -> Result<Option<ProduceResponse>, RequestError> {
    let bad_acks = !(-1..=1).contains(&req.acks);
    let refused = bad_acks || req.transactional_id.is_some();
    let acks = req.acks;
    let mut slots = ctx
        .scatter_gather(
            split(ctx, &req, refused),
            |parts| ShardCall::Produce { acks, parts },
            |reply| match reply {
                ShardReply::Produce(results) => Some(results),
                _ => None,
            },
        )
        .await?
        .into_iter();
    if req.acks == 0 {
        return Ok(None);
    }
    // Slots come in request order: take them in the same nested order.
    let mut responses: Vec<TopicProduceResponse> = req
        .topic_data
        .iter()
        .map(|topic| TopicProduceResponse {
            name: topic.name.clone(),
            partition_responses: topic
                .partition_data
                .iter()
                .map(|p| {
                    let slot = slots.next().flatten();
                    let slot = slot.unwrap_or_else(|| Err(ctx.unrouted(&topic.name, p.index)));
                    let mut r = partition_response(p.index, &slot);
                    if let Err((code, msg)) = topic_action(&topic.name, TopicAction::Produce) {
                        r.error_code = code.0;
                        r.error_message = Some(msg);
                    } else if bad_acks {
                        r.error_code = ErrorCode::INVALID_REQUIRED_ACKS.0;
                    } else if req.transactional_id.is_some() {
                        r.error_code = ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.0;
                        r.error_message = Some("transactions are not supported yet".into());
                    }
                    r
                })
                .collect(),
        })
        .collect();
    for p in responses.iter().flat_map(|t| t.partition_responses.iter()) {
        if p.error_code != 0 {
            ctx.metrics.error(API_KEY, p.error_code);
        }
    }
    let node_endpoints = leader_hints(ctx, listener, &mut responses);
    Ok(Some(ProduceResponse {
        responses,
        throttle_time_ms: 0,
        node_endpoints,
    }))
}

/// KIP-951: every NOT_LEADER_OR_FOLLOWER partition names its current leader (when another
/// live node leads it); returns the endpoints of the nodes named. Encoded from v10 only.
fn leader_hints(
    ctx: &ServerCtx,
    listener: &Listener,
    responses: &mut [TopicProduceResponse],
) -> Vec<NodeEndpoint> {
    let mut named = BTreeSet::new();
    for t in responses.iter_mut() {
        for p in &mut t.partition_responses {
            if p.error_code == ErrorCode::NOT_LEADER_OR_FOLLOWER.0 {
                p.current_leader = current_leader(ctx, &t.name, p.index);
                named.extend(p.current_leader.as_ref().map(|l| l.leader_id));
            }
        }
    }
    match named.is_empty() {
        true => Vec::new(),
        false => node_endpoints(ctx, listener, &named),
    }
}

/// The request's partitions by owning shard; unknown partitions (and all of a `refused`
/// request) are answered here.
fn split(ctx: &ServerCtx, req: &ProduceRequest, refused: bool) -> Scatter<ProducePart> {
    let image = ctx.image();
    let mut scatter = Scatter::new();
    for topic in &req.topic_data {
        let meta = image.topics.get(topic.name.as_str());
        let meta = meta.filter(|_| topic_action(&topic.name, TopicAction::Produce).is_ok());
        for part in &topic.partition_data {
            match meta.filter(|m| !refused && ctx.leads(m, part.index)) {
                Some(m) => scatter.send(
                    ctx.router.owner(&m.name, part.index),
                    ProducePart {
                        tp: TopicPartition {
                            topic: m.name.clone(),
                            partition: part.index,
                        },
                        records: part.records.clone(),
                    },
                ),
                None => scatter.skip(),
            }
        }
    }
    scatter
}
