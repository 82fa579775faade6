//! Consumer-group APIs. Every group lives on the shard that owns its group-log partition
//! ([`group_owner`]); single-group requests go there whole, multi-group requests
//! (DescribeGroups, DeleteGroups, batched OffsetFetch) are split by owner and merged in
//! request order, ListGroups asks every shard. A group another node coordinates is answered
//! NOT_COORDINATOR (per group in the multi-group requests), never served here.

use super::validate::bounded_client_id;
use super::{RequestError, ServerCtx};
use crate::base::join_all;
use crate::groups::call::{refused_fetch, GroupAnswer, GroupCall};
use crate::groups::ClientInfo;
use crate::model::ShardId;
use crate::protocol::header::RequestHeader;
use crate::protocol::*;
use crate::router::{group_owner, Scatter, ShardCall, ShardReply};

/// A single-group call, on the shard that owns the group; a group this node does not
/// coordinate is answered NOT_COORDINATOR (COORDINATOR_NOT_AVAILABLE while its node is down).
async fn call(
    ctx: &ServerCtx,
    group_id: &str,
    call: GroupCall,
) -> Result<GroupAnswer, RequestError> {
    if let Err(code) = ctx.coordinator(group_id) {
        return call.refuse(code).ok_or_else(mismatch);
    }
    call_shard(ctx, group_owner(group_id, ctx.router.shard_count()), call).await
}

async fn call_shard(
    ctx: &ServerCtx,
    shard: ShardId,
    call: GroupCall,
) -> Result<GroupAnswer, RequestError> {
    match ctx.router.call(shard, ShardCall::Group(call)).await {
        Ok(ShardReply::Group(answer)) => Ok(answer),
        _ => Err(RequestError::Unavailable),
    }
}

fn mismatch() -> RequestError {
    RequestError::Unavailable
}

/// The answer of kind `$variant`, or the request fails (an answer of another kind).
macro_rules! expect_answer {
    ($answer:expr, $variant:ident) => {
        match $answer {
            GroupAnswer::$variant(resp) => resp,
            _ => return Err(mismatch()),
        }
    };
}

/// Decode, route and encode one group API request. Returns `Ok(false)` if `key` is not a
/// group API.
pub async fn handle(
    ctx: &ServerCtx,
    header: &RequestHeader,
    conn: &super::conn::Conn,
    r: &mut Reader,
    w: &mut Writer,
) -> Result<bool, RequestError> {
    let (key, version) = (header.api_key, header.api_version);
    let de = |error| RequestError::Decode {
        api_key: key,
        api_version: version,
        error,
    };
    match key {
        find_coordinator::API_KEY => {
            let req = find_coordinator::FindCoordinatorRequest::decode(r, version).map_err(de)?;
            find_coordinator_response(ctx, &req, version, &conn.listener).encode(w, version);
        }
        join_group::API_KEY => {
            let req = join_group::JoinGroupRequest::decode_served(r, version).map_err(de)?;
            let client = ClientInfo {
                client_id: bounded_client_id(header.client_id.as_deref().unwrap_or_default()),
                client_host: format!("/{}", conn.peer),
            };
            let group = req.group_id.clone();
            let join = GroupCall::Join {
                version,
                client,
                req,
            };
            expect_answer!(call(ctx, &group, join).await?, Join).encode(w, version);
        }
        sync_group::API_KEY => {
            let req = sync_group::SyncGroupRequest::decode(r, version).map_err(de)?;
            let group = req.group_id.clone();
            let answer = call(ctx, &group, GroupCall::Sync { req }).await?;
            expect_answer!(answer, Sync).encode(w, version);
        }
        heartbeat::API_KEY => {
            let req = heartbeat::HeartbeatRequest::decode(r, version).map_err(de)?;
            let group = req.group_id.clone();
            let answer = call(ctx, &group, GroupCall::Heartbeat { req }).await?;
            expect_answer!(answer, Heartbeat).encode(w, version);
        }
        leave_group::API_KEY => {
            let req = leave_group::LeaveGroupRequest::decode(r, version).map_err(de)?;
            let group = req.group_id.clone();
            let answer = call(ctx, &group, GroupCall::Leave { version, req }).await?;
            expect_answer!(answer, Leave).encode(w, version);
        }
        _ => return handle_offsets_and_admin(ctx, key, version, r, w).await,
    }
    Ok(true)
}

/// The group APIs about offsets and group administration (see [`handle`]).
async fn handle_offsets_and_admin(
    ctx: &ServerCtx,
    key: i16,
    version: i16,
    r: &mut Reader,
    w: &mut Writer,
) -> Result<bool, RequestError> {
    let de = |error| RequestError::Decode {
        api_key: key,
        api_version: version,
        error,
    };
    match key {
        offset_commit::API_KEY => {
            let req = offset_commit::OffsetCommitRequest::decode(r, version).map_err(de)?;
            offset_commit(ctx, req).await?.encode(w, version);
        }
        offset_fetch::API_KEY => {
            let req = offset_fetch::OffsetFetchRequest::decode(r, version).map_err(de)?;
            offset_fetch(ctx, req, version).await?.encode(w, version);
        }
        offset_delete::API_KEY => {
            let req = offset_delete::OffsetDeleteRequest::decode(r, version).map_err(de)?;
            let group = req.group_id.clone();
            let answer = call(ctx, &group, GroupCall::DeleteOffsets { req }).await?;
            expect_answer!(answer, DeleteOffsets).encode(w, version);
        }
        list_groups::API_KEY => {
            let req = list_groups::ListGroupsRequest::decode(r, version).map_err(de)?;
            list_groups(ctx, req).await?.encode(w, version);
        }
        describe_groups::API_KEY => {
            let req = describe_groups::DescribeGroupsRequest::decode(r, version).map_err(de)?;
            describe_groups(ctx, req).await?.encode(w, version);
        }
        delete_groups::API_KEY => {
            let req = delete_groups::DeleteGroupsRequest::decode(r, version).map_err(de)?;
            delete_groups(ctx, req).await?.encode(w, version);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// OffsetCommit: partitions that do not exist are answered UNKNOWN_TOPIC_OR_PARTITION here
/// (Kafka does the same), so no client can fill a group with offsets for made-up topics; the
/// rest go to the group's coordinator.
async fn offset_commit(
    ctx: &ServerCtx,
    mut req: offset_commit::OffsetCommitRequest,
) -> Result<offset_commit::OffsetCommitResponse, RequestError> {
    use offset_commit::*;
    let image = ctx.image();
    let exists = |topic: &str, p: i32| {
        image
            .topics
            .get(topic)
            .is_some_and(|m| (0..m.partitions).contains(&p))
    };
    let asked: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    for t in &mut req.topics {
        t.partitions.retain(|p| exists(&t.name, p.partition_index));
    }
    req.topics.retain(|t| !t.partitions.is_empty());
    let group = req.group_id.clone();
    let mut answered = if req.topics.is_empty() {
        Vec::new()
    } else {
        let answer = call(ctx, &group, GroupCall::Commit { req }).await?;
        expect_answer!(answer, Commit).topics
    };
    let mut code_of = |topic: &str, p: i32| {
        if !exists(topic, p) {
            return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0;
        }
        // The coordinator answers in request order; a topic or partition named twice takes
        // the next answer for it.
        let found = answered.iter_mut().find_map(|t| {
            let at = t.partitions.iter().position(|x| x.partition_index == p);
            at.filter(|_| t.name == topic)
                .map(|i| t.partitions.remove(i))
        });
        found.map_or(ErrorCode::UNKNOWN_SERVER_ERROR.0, |x| x.error_code)
    };
    let topics = asked
        .into_iter()
        .map(|(name, partitions)| OffsetCommitTopicResponse {
            partitions: partitions
                .into_iter()
                .map(|p| OffsetCommitPartitionResponse {
                    partition_index: p,
                    error_code: code_of(&name, p),
                })
                .collect(),
            name,
        })
        .collect();
    Ok(OffsetCommitResponse {
        throttle_time_ms: 0,
        topics,
    })
}

/// What a transactional client is told until transactions exist.
pub const TRANSACTIONS_UNSUPPORTED: &str =
    "ringmq does not support transactions yet (transactional.id cannot be used)";

fn find_coordinator_response(
    ctx: &ServerCtx,
    req: &find_coordinator::FindCoordinatorRequest,
    version: i16,
    listener: &crate::config::Listener,
) -> find_coordinator::FindCoordinatorResponse {
    use find_coordinator::*;
    let keys = req.keys(version);
    // key_type 0 = group; 1 = transaction (not served: no transaction coordinator yet).
    let coordinator = if req.key_type == 0 {
        let mut found: Vec<Coordinator> = keys
            .iter()
            .map(|k| group_coordinator(ctx, k, listener))
            .collect();
        if version >= 4 || found.len() != 1 {
            let first = found
                .first()
                .cloned()
                .unwrap_or_else(|| group_coordinator(ctx, "", listener));
            let mut resp = FindCoordinatorResponse::for_keys(version, &[], &first);
            resp.coordinators = found;
            return resp;
        }
        found.remove(0)
    } else {
        // Clients retry COORDINATOR_NOT_AVAILABLE until their own timeout (librdkafka 30 s,
        // kafka-python and aiokafka for ever). TRANSACTIONAL_ID_AUTHORIZATION_FAILED is the
        // answer every client treats as fatal at once; the message says why.
        Coordinator {
            key: String::new(),
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.0,
            error_message: Some(TRANSACTIONS_UNSUPPORTED.into()),
        }
    };
    FindCoordinatorResponse::for_keys(version, &keys, &coordinator)
}

/// Where group `key` is coordinated: the node owning its group-log partition, if live.
fn group_coordinator(
    ctx: &ServerCtx,
    key: &str,
    listener: &crate::config::Listener,
) -> find_coordinator::Coordinator {
    let view = ctx.membership();
    let owner = ctx.coordinator_node(key);
    match view
        .members
        .get(&owner)
        .filter(|m| view.is_live(m.card.node_id))
    {
        Some(m) => {
            let (host, port) = ctx.kafka_address(&m.card, listener);
            find_coordinator::Coordinator {
                key: key.to_owned(),
                node_id: owner,
                host,
                port,
                error_code: 0,
                error_message: None,
            }
        }
        None => find_coordinator::Coordinator {
            key: key.to_owned(),
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE.0,
            error_message: Some(format!(
                "node {owner}, which coordinates the group, is down"
            )),
        },
    }
}

/// Items of a multi-group request, each sent to the shard that coordinates its group; a
/// group another node coordinates is skipped, with the code it is answered (NOT_COORDINATOR,
/// or COORDINATOR_NOT_AVAILABLE while its coordinator is down), in request order.
fn by_group_owner<'a, P: 'a>(
    ctx: &ServerCtx,
    items: impl IntoIterator<Item = (&'a str, P)>,
) -> (Scatter<P>, Vec<Result<(), ErrorCode>>) {
    let shards = ctx.router.shard_count();
    let mut scatter = Scatter::new();
    let mut here = Vec::new();
    for (group_id, item) in items {
        let coordinated = ctx.coordinator(group_id);
        match coordinated {
            Ok(()) => scatter.send(group_owner(group_id, shards), item),
            Err(_) => scatter.skip(),
        }
        here.push(coordinated);
    }
    (scatter, here)
}

/// The per-group answers in request order: a group [`by_group_owner`] skipped gets
/// `refuse(position, code)`.
fn with_refused<R>(
    slots: Vec<Option<R>>,
    here: Vec<Result<(), ErrorCode>>,
    refuse: impl Fn(usize, ErrorCode) -> R,
) -> Vec<R> {
    slots
        .into_iter()
        .zip(here)
        .enumerate()
        .map(|(i, (slot, here))| {
            slot.unwrap_or_else(|| refuse(i, here.err().unwrap_or(ErrorCode::NOT_COORDINATOR)))
        })
        .collect()
}

async fn offset_fetch(
    ctx: &ServerCtx,
    req: offset_fetch::OffsetFetchRequest,
    version: i16,
) -> Result<offset_fetch::OffsetFetchResponse, RequestError> {
    use offset_fetch::*;
    if version < BATCHED_FROM {
        let group = req.group_id.clone();
        let answer = call(ctx, &group, GroupCall::Fetch { version, req }).await?;
        return Ok(expect_answer!(answer, Fetch));
    }
    let require_stable = req.require_stable;
    let groups = req.groups.iter().map(|g| (g.group_id.as_str(), g.clone()));
    let (scatter, here) = by_group_owner(ctx, groups);
    let answers = ctx
        .scatter_gather(
            scatter,
            |groups| {
                let req = OffsetFetchRequest {
                    group_id: String::new(),
                    topics: None,
                    groups,
                    require_stable,
                };
                ShardCall::Group(GroupCall::Fetch { version, req })
            },
            |reply| match reply {
                ShardReply::Group(GroupAnswer::Fetch(resp)) => Some(resp.groups),
                _ => None,
            },
        )
        .await?;
    let groups = with_refused(answers, here, |i, code| {
        refused_fetch(&req.groups[i], version, code)
    });
    Ok(OffsetFetchResponse::for_groups(version, groups))
}

async fn list_groups(
    ctx: &ServerCtx,
    req: list_groups::ListGroupsRequest,
) -> Result<list_groups::ListGroupsResponse, RequestError> {
    // Every shard coordinates some groups: ask them all (no split by owner).
    let calls = (0..ctx.router.shard_count()).map(|s| {
        let sub = req.clone();
        async move { call_shard(ctx, ShardId(s), GroupCall::List { req: sub }).await }
    });
    let mut merged = list_groups::ListGroupsResponse {
        throttle_time_ms: 0,
        error_code: 0,
        groups: Vec::new(),
    };
    for answer in join_all(calls).await {
        let resp = expect_answer!(answer?, List);
        if merged.error_code == 0 {
            merged.error_code = resp.error_code;
        }
        merged.groups.extend(resp.groups);
    }
    Ok(merged)
}

async fn describe_groups(
    ctx: &ServerCtx,
    req: describe_groups::DescribeGroupsRequest,
) -> Result<describe_groups::DescribeGroupsResponse, RequestError> {
    use describe_groups::*;
    let include_authorized_operations = req.include_authorized_operations;
    let groups = req.groups.iter().map(|g| (g.as_str(), g.clone()));
    let (scatter, here) = by_group_owner(ctx, groups);
    let answers = ctx
        .scatter_gather(
            scatter,
            |groups| {
                let req = DescribeGroupsRequest {
                    groups,
                    include_authorized_operations,
                };
                ShardCall::Group(GroupCall::Describe { req })
            },
            |reply| match reply {
                ShardReply::Group(GroupAnswer::Describe(resp)) => Some(resp.groups),
                _ => None,
            },
        )
        .await?;
    let groups = with_refused(answers, here, |i, code| DescribedGroup {
        error_code: code.0,
        group_id: req.groups[i].clone(),
        ..DescribedGroup::default()
    });
    Ok(DescribeGroupsResponse {
        throttle_time_ms: 0,
        groups,
    })
}

async fn delete_groups(
    ctx: &ServerCtx,
    req: delete_groups::DeleteGroupsRequest,
) -> Result<delete_groups::DeleteGroupsResponse, RequestError> {
    use delete_groups::*;
    let groups = req.groups_names.iter().map(|g| (g.as_str(), g.clone()));
    let (scatter, here) = by_group_owner(ctx, groups);
    let answers = ctx
        .scatter_gather(
            scatter,
            |groups_names| {
                ShardCall::Group(GroupCall::Delete {
                    req: DeleteGroupsRequest { groups_names },
                })
            },
            |reply| match reply {
                ShardReply::Group(GroupAnswer::Delete(resp)) => Some(resp.results),
                _ => None,
            },
        )
        .await?;
    let results = with_refused(answers, here, |i, code| DeletableGroupResult {
        group_id: req.groups_names[i].clone(),
        error_code: code.0,
    });
    Ok(DeleteGroupsResponse {
        throttle_time_ms: 0,
        results,
    })
}
