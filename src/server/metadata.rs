//! Metadata: answered from the shard's local copy of the NameServer image and of the gossip
//! view: every live registered broker (advertised Kafka address, rack), and per partition the leader
//! and its epoch (`cluster::routing`: the Raft leader and term of a replicated partition, else
//! the one live replica), replicas, ISR and offline replicas; a partition
//! with no live replica has leader -1 and LEADER_NOT_AVAILABLE. Unknown topics are created
//! when the request and the broker both allow it. ControllerId is the controller leader, or
//! this node while none is known (it forwards admin requests to the leader once there is one).

use super::validate::{topic_action, TopicAction};
use super::{errors::admin_error_code, RequestError, ServerCtx};
use crate::cluster::TopicMeta;
use crate::config::Listener;
use crate::protocol::leader_discovery::{LeaderIdAndEpoch, NodeEndpoint};
use crate::protocol::metadata::*;
use crate::protocol::ErrorCode;
use crate::router::{AdminCall, AdminError};
use std::collections::{BTreeMap, BTreeSet};

pub async fn handle(
    ctx: &ServerCtx,
    req: MetadataRequest,
    listener: &Listener,
) -> Result<MetadataResponse, RequestError> {
    let image = ctx.image();
    let mut topics = Vec::new();
    match req.topics {
        None => {
            for t in image.topics.values() {
                topics.push(topic_entry(ctx, t));
            }
        }
        Some(requested) => {
            for rt in requested {
                let by_id = image
                    .topics
                    .values()
                    .find(|t| rt.topic_id != [0; 16] && t.topic_id == rt.topic_id);
                let name = rt
                    .name
                    .clone()
                    .or_else(|| by_id.map(|t| t.name.to_string()))
                    .unwrap_or_default();
                topics.push(resolve(ctx, &name, rt.topic_id, req.allow_auto_topic_creation).await?);
            }
        }
    }
    Ok(MetadataResponse {
        throttle_time_ms: 0,
        brokers: brokers(ctx, listener),
        cluster_id: Some(ctx.config.cluster_id.clone()),
        // Admin requests reach the controller leader through any node (forwarding). While no
        // leader is known (an election), name this node, as Kafka's KRaft brokers name a live
        // broker: given -1, librdkafka refreshes Metadata once, then waits for a change that
        // a second -1 never brings, and its admin calls stall until they time out.
        controller_id: ctx.metadata.controller().unwrap_or(ctx.config.node_id),
        topics,
        cluster_authorized_operations: i32::MIN,
    })
}

async fn resolve(
    ctx: &ServerCtx,
    name: &str,
    topic_id: [u8; 16],
    allow_create: bool,
) -> Result<MetadataResponseTopic, RequestError> {
    if let Some(t) = ctx.image().topics.get(name) {
        return Ok(topic_entry(ctx, t));
    }
    let error = |code: ErrorCode| MetadataResponseTopic {
        error_code: code.0,
        name: Some(name.to_string()),
        topic_id,
        is_internal: false,
        partitions: Vec::new(),
        topic_authorized_operations: i32::MIN,
    };
    if name.is_empty() {
        return Ok(error(ErrorCode::UNKNOWN_TOPIC_ID));
    }
    let creatable = topic_action(name, TopicAction::Create).is_ok();
    if !(allow_create && ctx.config.auto_create_topics && creatable) {
        return Ok(error(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
    }
    let call = AdminCall::CreateTopic {
        name: name.to_string(),
        partitions: ctx.config.default_partitions,
        replication_factor: -1,
        configs: BTreeMap::new(),
        validate_only: false,
    };
    match ctx.admin(call).await? {
        Ok(_) | Err(AdminError::TopicAlreadyExists(_)) => match ctx.image().topics.get(name) {
            Some(t) => Ok(topic_entry(ctx, t)),
            None => Ok(error(ErrorCode::LEADER_NOT_AVAILABLE)),
        },
        Err(e) => Ok(error(admin_error_code(&e).0)),
    }
}

/// KIP-951 CurrentLeader for a NOT_LEADER_OR_FOLLOWER answer about partition `p` of
/// `topic`: the live node that leads it, unless that is this node or nobody, with the epoch
/// Metadata gives (so a hint never claims a newer leader than Metadata does).
pub fn current_leader(ctx: &ServerCtx, topic: &str, p: i32) -> Option<LeaderIdAndEpoch> {
    let image = ctx.image();
    let t = image.topics.get(topic)?;
    let route = ctx.route(t, p);
    let leader = route.leader?;
    (leader != ctx.config.node_id).then_some(LeaderIdAndEpoch {
        leader_id: leader,
        leader_epoch: route.leader_epoch,
    })
}

/// KIP-951 NodeEndpoints: the Kafka endpoints of the live brokers among `ids`, as a client on
/// `listener` reaches them.
pub fn node_endpoints(
    ctx: &ServerCtx,
    listener: &Listener,
    ids: &BTreeSet<i32>,
) -> Vec<NodeEndpoint> {
    brokers(ctx, listener)
        .into_iter()
        .filter(|b| ids.contains(&b.node_id))
        .map(|b| NodeEndpoint {
            node_id: b.node_id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect()
}

/// Every live broker of the gossip view that is registered with the controller (so may lead
/// partitions and coordinate groups), and this node itself, by node id, as a client on
/// `listener` reaches it. A node gossip already sees but the controller has not registered
/// yet is left out, as Kafka leaves out brokers before their registration: a client that sees
/// N brokers can create a topic on all N (placement picks among registered nodes), instead of
/// having its partitions piled on the few nodes registered first.
pub fn brokers(ctx: &ServerCtx, listener: &Listener) -> Vec<MetadataResponseBroker> {
    let image = ctx.image();
    let me = ctx.config.node_id;
    let listed = |id: i32| id == me || image.nodes.contains_key(&id);
    ctx.membership()
        .live()
        .filter(|m| listed(m.card.node_id))
        .map(|m| {
            let (host, port) = ctx.kafka_address(&m.card, listener);
            MetadataResponseBroker {
                node_id: m.card.node_id,
                host,
                port,
                rack: m.card.rack.clone(),
            }
        })
        .collect()
}

fn topic_entry(ctx: &ServerCtx, t: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|p| {
            let route = ctx.route(t, p);
            let error = match route.leader {
                Some(_) => ErrorCode::NONE,
                None => ErrorCode::LEADER_NOT_AVAILABLE,
            };
            MetadataResponsePartition {
                error_code: error.0,
                partition_index: p,
                leader_id: route.leader.unwrap_or(-1),
                leader_epoch: route.leader_epoch,
                replica_nodes: route.replicas,
                isr_nodes: route.isr,
                offline_replicas: route.offline,
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: 0,
        name: Some(t.name.to_string()),
        topic_id: t.topic_id,
        is_internal: false,
        partitions,
        topic_authorized_operations: i32::MIN,
    }
}
