//! Produce: split the request by owning shard, one router call per shard, and assemble the
//! per-partition answers in request order. Record batches travel as zero-copy slices of the
//! request frame.

use super::errors::{partition_error_code, partition_error_message};
use super::{RequestError, ServerCtx};
use crate::base::join_all;
use crate::model::{ShardId, TopicPartition};
use crate::protocol::produce::*;
use crate::protocol::ErrorCode;
use crate::router::{AppendOutcome, PartitionError, ProducePart, ShardCall, ShardReply};
use std::collections::BTreeMap;
use std::sync::Arc;

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
pub async fn handle(
    ctx: &ServerCtx,
    req: ProduceRequest,
) -> Result<Option<ProduceResponse>, RequestError> {
    let image = ctx.image();
    // One slot per partition in request order; filled locally (errors) or by a shard.
    let mut slots: Vec<Vec<Option<Slot>>> = Vec::with_capacity(req.topic_data.len());
    let mut by_shard: BTreeMap<ShardId, (Vec<ProducePart>, Vec<(usize, usize)>)> = BTreeMap::new();
    let bad_acks = !(-1..=1).contains(&req.acks);
    for (ti, topic) in req.topic_data.iter().enumerate() {
        let meta = image.topics.get(topic.name.as_str());
        let mut row = Vec::with_capacity(topic.partition_data.len());
        for (pi, part) in topic.partition_data.iter().enumerate() {
            let known = meta.is_some_and(|m| (0..m.partitions).contains(&part.index));
            if bad_acks || req.transactional_id.is_some() || !known {
                row.push(Some(Err(PartitionError::UnknownTopicOrPartition)));
                continue;
            }
            row.push(None);
            let name: Arc<str> = meta
                .map(|m| m.name.clone())
                .unwrap_or_else(|| Arc::from(topic.name.as_str()));
            let owner = ctx.router.owner(&name, part.index);
            let entry = by_shard.entry(owner).or_default();
            entry.0.push(ProducePart {
                tp: TopicPartition {
                    topic: name,
                    partition: part.index,
                },
                records: part.records.clone(),
            });
            entry.1.push((ti, pi));
        }
        slots.push(row);
    }
    let calls = by_shard.into_iter().map(|(shard, (parts, positions))| {
        let router = ctx.router.clone();
        let acks = req.acks;
        async move {
            (
                router.call(shard, ShardCall::Produce { acks, parts }).await,
                positions,
            )
        }
    });
    for (reply, positions) in join_all(calls).await {
        let results = match reply {
            Ok(ShardReply::Produce(results)) => results,
            _ => return Err(RequestError::Unavailable),
        };
        for ((ti, pi), result) in positions.into_iter().zip(results) {
            slots[ti][pi] = Some(result);
        }
    }
    if req.acks == 0 {
        return Ok(None);
    }
    let responses: Vec<TopicProduceResponse> = req
        .topic_data
        .iter()
        .zip(slots)
        .map(|(topic, row)| TopicProduceResponse {
            name: topic.name.clone(),
            partition_responses: topic
                .partition_data
                .iter()
                .zip(row)
                .map(|(p, slot)| {
                    let slot = slot.unwrap_or(Err(PartitionError::UnknownTopicOrPartition));
                    let mut r = partition_response(p.index, &slot);
                    if bad_acks {
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
    Ok(Some(ProduceResponse {
        responses,
        throttle_time_ms: 0,
    }))
}
