//! Old clients (Produce v0–2, Fetch v0–3: message sets v0/v1), served as Kafka 3.x does: a
//! produced message set is converted into a RecordBatch v2 before it is routed, so storage and
//! the v3+ path see only batches; a fetch reads batches as usual and down-converts each
//! partition's answer into a message set (`records::legacy`), within the request's byte
//! limits. The v3+ paths never come here and stay zero-copy.

use super::errors::{partition_error_code, records_error};
use super::fetch::FETCH_RESPONSE_BYTES_CAP;
use super::{RequestError, ServerCtx};
use crate::config::Listener;
use crate::protocol::fetch::{FetchRequest, FetchResponse};
use crate::protocol::produce::{ProduceRequest, ProduceResponse};
use crate::records::legacy;
use crate::router::PartitionError;
use bytes::Bytes;

/// Produce v0–2: convert every partition's message set, then produce as v3+ does. A
/// partition whose set cannot be converted is answered with its error (and not appended);
/// the others are unaffected. `None` for acks=0.
pub async fn produce(
    ctx: &ServerCtx,
    mut req: ProduceRequest,
    listener: &Listener,
) -> Result<Option<ProduceResponse>, RequestError> {
    let mut failed: Vec<(usize, usize, PartitionError)> = Vec::new();
    for (ti, topic) in req.topic_data.iter_mut().enumerate() {
        for (pi, part) in topic.partition_data.iter_mut().enumerate() {
            let Some(set) = part.records.take() else {
                continue;
            };
            match legacy::to_record_batch(&set) {
                Ok(batch) => part.records = Some(Bytes::from(batch)),
                Err(e) => failed.push((ti, pi, records_error(&e))),
            }
        }
    }
    let mut resp = super::produce::handle(ctx, req, listener).await?;
    if let Some(resp) = resp.as_mut() {
        for (ti, pi, e) in failed {
            let p = &mut resp.responses[ti].partition_responses[pi];
            p.error_code = partition_error_code(&e).0;
            p.error_message = Some(e.to_string());
        }
    }
    Ok(resp)
}

/// Fetch v0–3: fetch as v4+ does, then answer message sets of magic 0 (v0–1) or 1 (v2–3).
pub async fn fetch(
    ctx: &ServerCtx,
    req: FetchRequest,
    version: i16,
) -> Result<FetchResponse, RequestError> {
    let magic = if version < 2 { 0 } else { 1 };
    // (fetch offset, partition limit) in request order, which is the response's order.
    let wanted: Vec<(i64, usize)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            let max = usize::try_from(p.partition_max_bytes).unwrap_or(0);
            (p.fetch_offset, max.min(FETCH_RESPONSE_BYTES_CAP))
        })
        .collect();
    let total = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(FETCH_RESPONSE_BYTES_CAP);
    let mut resp = super::fetch::handle(ctx, req).await?;
    let parts = resp
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut());
    let mut used = 0usize;
    for (p, &(fetch_offset, max)) in parts.zip(&wanted) {
        if p.records.is_empty() {
            continue;
        }
        let limit = max.min(total.saturating_sub(used));
        let converted = legacy::to_message_set(&p.records, fetch_offset, magic, limit);
        p.records.clear();
        match converted {
            // Only the response's first message may pass the limits (as for batches, KIP-74).
            Ok(set) if used == 0 || set.len() <= limit => {
                used += set.len();
                if !set.is_empty() {
                    p.records.push(Bytes::from(set));
                }
            }
            Ok(_) => {}
            Err(e) => {
                p.error_code = partition_error_code(&records_error(&e)).0;
                ctx.metrics
                    .error(crate::protocol::fetch::API_KEY, p.error_code);
            }
        }
    }
    Ok(resp)
}
