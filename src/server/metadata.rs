//! Metadata: answered from the shard's local copy of the NameServer image; unknown topics
//! are created when the request and the broker both allow it.

use super::validate::{topic_action, TopicAction};
use super::{errors::admin_error_code, RequestError, ServerCtx};
use crate::cluster::TopicMeta;
use crate::protocol::metadata::*;
use crate::protocol::ErrorCode;
use crate::router::{AdminCall, AdminError};
use std::collections::BTreeMap;

pub async fn handle(
    ctx: &ServerCtx,
    req: MetadataRequest,
) -> Result<MetadataResponse, RequestError> {
    let image = ctx.image();
    let mut topics = Vec::new();
    match req.topics {
        None => {
            for t in image.topics.values() {
                topics.push(topic_entry(t));
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
        brokers: vec![MetadataResponseBroker {
            node_id: ctx.config.node_id,
            host: ctx.config.advertise_host.clone(),
            port: i32::from(ctx.config.advertise_port),
            rack: None,
        }],
        cluster_id: Some(ctx.config.cluster_id.clone()),
        controller_id: ctx.config.node_id,
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
        return Ok(topic_entry(t));
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
        configs: BTreeMap::new(),
        validate_only: false,
    };
    match ctx.admin(call).await? {
        Ok(_) | Err(AdminError::TopicAlreadyExists(_)) => match ctx.image().topics.get(name) {
            Some(t) => Ok(topic_entry(t)),
            None => Ok(error(ErrorCode::LEADER_NOT_AVAILABLE)),
        },
        Err(e) => Ok(error(admin_error_code(&e).0)),
    }
}

fn topic_entry(t: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|p| MetadataResponsePartition {
            error_code: 0,
            partition_index: p,
            leader_id: 0,
            leader_epoch: 0,
            replica_nodes: vec![0],
            isr_nodes: vec![0],
            offline_replicas: Vec::new(),
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
