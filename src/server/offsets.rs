//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3) and by timestamp, answered by
//! the owning shards (one router call per shard).

use super::errors::partition_error_code;
use super::{RequestError, ServerCtx};
use crate::model::TopicPartition;
use crate::protocol::list_offsets::*;
use crate::router::{OffsetQuery, PartitionError, Scatter, ShardCall, ShardReply};

pub async fn list_offsets(
    ctx: &ServerCtx,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, RequestError> {
    let mut slots = ctx
        .scatter_gather(
            split(ctx, &req),
            |queries| ShardCall::ListOffsets { queries },
            |reply| match reply {
                ShardReply::ListOffsets(results) => Some(results),
                _ => None,
            },
        )
        .await?
        .into_iter();
    // Slots come in request order: take them in the same nested order.
    let topics = req
        .topics
        .iter()
        .map(|t| ListOffsetsTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let slot = slots.next().flatten();
                    let slot =
                        slot.unwrap_or_else(|| Err(ctx.unrouted(&t.name, p.partition_index)));
                    partition_response(p.partition_index, slot)
                })
                .collect(),
        })
        .collect();
    Ok(ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    })
}

/// The request's partitions by owning shard; unknown ones are answered here.
fn split(ctx: &ServerCtx, req: &ListOffsetsRequest) -> Scatter<OffsetQuery> {
    let image = ctx.image();
    let mut scatter = Scatter::new();
    for topic in &req.topics {
        let meta = image.topics.get(topic.name.as_str());
        for p in &topic.partitions {
            match meta.filter(|m| ctx.leads(m, p.partition_index)) {
                Some(m) => scatter.send(
                    ctx.router.owner(&m.name, p.partition_index),
                    OffsetQuery {
                        tp: TopicPartition {
                            topic: m.name.clone(),
                            partition: p.partition_index,
                        },
                        timestamp: p.timestamp,
                    },
                ),
                None => scatter.skip(),
            }
        }
    }
    scatter
}

fn partition_response(
    partition_index: i32,
    slot: Result<(i64, i64), PartitionError>,
) -> ListOffsetsPartitionResponse {
    match slot {
        Ok((offset, timestamp)) => ListOffsetsPartitionResponse {
            partition_index,
            error_code: 0,
            timestamp,
            offset,
            leader_epoch: if offset >= 0 { 0 } else { -1 },
        },
        Err(e) => ListOffsetsPartitionResponse {
            partition_index,
            error_code: partition_error_code(&e).0,
            timestamp: -1,
            offset: -1,
            leader_epoch: -1,
        },
    }
}
