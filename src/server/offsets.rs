//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3) and by timestamp, answered by
//! the owning shards (one router call per shard).

use super::errors::partition_error_code;
use super::{RequestError, ServerCtx};
use crate::base::join_all;
use crate::model::{ShardId, TopicPartition};
use crate::protocol::list_offsets::*;
use crate::router::{OffsetQuery, PartitionError, ShardCall, ShardReply};
use std::collections::BTreeMap;

pub async fn list_offsets(
    ctx: &ServerCtx,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, RequestError> {
    let image = ctx.image();
    let mut slots: Vec<Vec<Option<Result<(i64, i64), PartitionError>>>> = Vec::new();
    let mut by_shard: BTreeMap<ShardId, (Vec<OffsetQuery>, Vec<(usize, usize)>)> = BTreeMap::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let meta = image.topics.get(topic.name.as_str());
        let mut row = Vec::new();
        for (pi, p) in topic.partitions.iter().enumerate() {
            match meta.filter(|m| (0..m.partitions).contains(&p.partition_index)) {
                Some(m) => {
                    row.push(None);
                    let tp = TopicPartition {
                        topic: m.name.clone(),
                        partition: p.partition_index,
                    };
                    let e = by_shard
                        .entry(ctx.router.owner(&m.name, p.partition_index))
                        .or_default();
                    e.0.push(OffsetQuery {
                        tp,
                        timestamp: p.timestamp,
                    });
                    e.1.push((ti, pi));
                }
                None => row.push(Some(Err(PartitionError::UnknownTopicOrPartition))),
            }
        }
        slots.push(row);
    }
    let calls = by_shard
        .into_iter()
        .map(|(shard, (queries, pos))| async move {
            (
                ctx.router
                    .call(shard, ShardCall::ListOffsets { queries })
                    .await,
                pos,
            )
        });
    for (reply, pos) in join_all(calls).await {
        let Ok(ShardReply::ListOffsets(results)) = reply else {
            return Err(RequestError::Unavailable);
        };
        for ((ti, pi), r) in pos.into_iter().zip(results) {
            slots[ti][pi] = Some(r);
        }
    }
    let topics = req
        .topics
        .iter()
        .zip(slots)
        .map(|(t, row)| ListOffsetsTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .zip(row)
                .map(|(p, slot)| {
                    let slot = slot.unwrap_or(Err(PartitionError::UnknownTopicOrPartition));
                    match slot {
                        Ok((offset, timestamp)) => ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: 0,
                            timestamp,
                            offset,
                            leader_epoch: if offset >= 0 { 0 } else { -1 },
                        },
                        Err(e) => ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: partition_error_code(&e).0,
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                        },
                    }
                })
                .collect(),
        })
        .collect();
    Ok(ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    })
}
