//! Admin APIs: topics (create, delete, partitions), configs (describe, alter, incremental
//! alter), DescribeCluster, DeleteRecords and InitProducerId. Topic changes run on the
//! metadata shard, which pushes the new image to every shard before it answers.

use super::errors::{admin_error_code, partition_error_code};
use super::validate::{topic_action, Refusal, TopicAction};
use super::{RequestError, ServerCtx};
use crate::cluster::MetadataImage;
use crate::config::{validate_topic_config, TOPIC_CONFIG_KEYS};
use crate::model::{ShardId, TopicPartition};
use crate::protocol::*;
use crate::router::{AdminCall, AdminReply, Scatter, ShardCall, ShardReply};
use std::collections::BTreeMap;

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;

/// Decode, handle and encode one admin request. Returns whether a response was written.
pub async fn handle(
    ctx: &ServerCtx,
    key: i16,
    version: i16,
    listener: &crate::config::Listener,
    r: &mut Reader,
    w: &mut Writer,
) -> Result<bool, RequestError> {
    let de = |error| RequestError::Decode {
        api_key: key,
        api_version: version,
        error,
    };
    match key {
        create_topics::API_KEY => {
            let req = create_topics::CreateTopicsRequest::decode(r, version).map_err(de)?;
            create_topics(ctx, req).await?.encode(w, version);
        }
        delete_topics::API_KEY => {
            let req = delete_topics::DeleteTopicsRequest::decode(r, version).map_err(de)?;
            delete_topics(ctx, req).await?.encode(w, version);
        }
        create_partitions::API_KEY => {
            let req = create_partitions::CreatePartitionsRequest::decode(r, version).map_err(de)?;
            create_partitions(ctx, req).await?.encode(w, version);
        }
        describe_configs::API_KEY => {
            let req = describe_configs::DescribeConfigsRequest::decode(r, version).map_err(de)?;
            describe_configs(ctx, req).encode(w, version);
        }
        alter_configs::API_KEY => {
            let req = alter_configs::AlterConfigsRequest::decode(r, version).map_err(de)?;
            alter_configs(ctx, req).await?.encode(w, version);
        }
        incremental_alter_configs::API_KEY => {
            let req = incremental_alter_configs::IncrementalAlterConfigsRequest::decode(r, version)
                .map_err(de)?;
            incremental_alter_configs(ctx, req)
                .await?
                .encode(w, version);
        }
        describe_cluster::API_KEY => {
            let req = describe_cluster::DescribeClusterRequest::decode(r, version).map_err(de)?;
            describe_cluster(ctx, &req, listener)
                .await
                .encode(w, version);
        }
        delete_records::API_KEY => {
            let req = delete_records::DeleteRecordsRequest::decode(r, version).map_err(de)?;
            delete_records(ctx, req).await?.encode(w, version);
        }
        init_producer_id::API_KEY => {
            let req = init_producer_id::InitProducerIdRequest::decode(r, version).map_err(de)?;
            init_producer_id(ctx, req).await?.encode(w, version);
        }
        _ => {
            return Err(RequestError::Unsupported {
                api_key: key,
                api_version: version,
            })
        }
    }
    Ok(true)
}

async fn create_topics(
    ctx: &ServerCtx,
    req: create_topics::CreateTopicsRequest,
) -> Result<create_topics::CreateTopicsResponse, RequestError> {
    use create_topics::*;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut result = CreatableTopicResult {
            name: t.name.clone(),
            topic_id: [0; 16],
            error_code: ErrorCode::NONE,
            error_message: None,
            topic_config_error_code: ErrorCode::NONE,
            num_partitions: -1,
            replication_factor: -1,
            configs: None,
        };
        let partitions = if t.num_partitions == -1 {
            ctx.config.default_partitions
        } else {
            t.num_partitions
        };
        let fail = |code: ErrorCode, msg: String, mut r: CreatableTopicResult| {
            r.error_code = code;
            r.error_message = Some(msg);
            r
        };
        if let Err((code, msg)) = creatable(&t) {
            topics.push(fail(code, msg, result));
            continue;
        }
        let mut configs = BTreeMap::new();
        for c in &t.configs {
            configs.insert(c.name.clone(), c.value.clone().unwrap_or_default());
        }
        let call = AdminCall::CreateTopic {
            name: t.name.clone(),
            partitions,
            replication_factor: t.replication_factor,
            configs,
            validate_only: req.validate_only,
        };
        match ctx.admin(call).await? {
            Ok(AdminReply::Done(image)) => {
                result.num_partitions = partitions;
                result.replication_factor = t.replication_factor;
                if let Some(meta) = image.topics.get(t.name.as_str()) {
                    result.topic_id = meta.topic_id;
                    let rf = meta.replicas.first().map_or(1, Vec::len);
                    result.replication_factor = i16::try_from(rf).unwrap_or(i16::MAX);
                }
                topics.push(result);
            }
            Ok(AdminReply::ProducerId(_)) => topics.push(result),
            Err(e) => {
                let (code, msg) = admin_error_code(&e);
                topics.push(fail(code, msg, result));
            }
        }
    }
    Ok(CreateTopicsResponse {
        throttle_time_ms: 0,
        topics,
    })
}

/// Refusals of a topic to create that need no metadata: internal names, manual assignment
/// and replication (not supported yet).
fn creatable(t: &create_topics::CreatableTopic) -> Result<(), Refusal> {
    topic_action(&t.name, TopicAction::Create)?;
    if !t.assignments.is_empty() {
        return Err((
            ErrorCode::INVALID_REQUEST,
            "manual replica assignment is not supported".into(),
        ));
    }
    Ok(())
}

async fn delete_topics(
    ctx: &ServerCtx,
    req: delete_topics::DeleteTopicsRequest,
) -> Result<delete_topics::DeleteTopicsResponse, RequestError> {
    use delete_topics::*;
    let image = ctx.image();
    let mut wanted: Vec<(Option<String>, [u8; 16])> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.clone()), [0; 16]))
        .collect();
    wanted.extend(req.topics.iter().map(|t| (t.name.clone(), t.topic_id)));
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = name.or_else(|| {
            image
                .topics
                .values()
                .find(|t| t.topic_id == id)
                .map(|t| t.name.to_string())
        });
        let mut result = DeletableTopicResult {
            name: name.clone(),
            topic_id: id,
            error_code: ErrorCode::NONE,
            error_message: None,
        };
        match name {
            None => result.error_code = ErrorCode::UNKNOWN_TOPIC_ID,
            Some(name) => {
                if let Some(meta) = image.topics.get(name.as_str()) {
                    result.topic_id = meta.topic_id;
                }
                let outcome = match topic_action(&name, TopicAction::Delete) {
                    Ok(()) => ctx
                        .admin(AdminCall::DeleteTopic { name })
                        .await?
                        .map_err(|e| admin_error_code(&e)),
                    Err(refusal) => Err(refusal),
                };
                if let Err((code, msg)) = outcome {
                    result.error_code = code;
                    result.error_message = Some(msg);
                }
            }
        }
        responses.push(result);
    }
    Ok(DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses,
    })
}

async fn create_partitions(
    ctx: &ServerCtx,
    req: create_partitions::CreatePartitionsRequest,
) -> Result<create_partitions::CreatePartitionsResponse, RequestError> {
    use create_partitions::*;
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut result = CreatePartitionsTopicResult {
            name: t.name.clone(),
            error_code: ErrorCode::NONE,
            error_message: None,
        };
        if let Err((code, msg)) = topic_action(&t.name, TopicAction::CreatePartitions) {
            result.error_code = code;
            result.error_message = Some(msg);
        } else if t.assignments.is_some() {
            result.error_code = ErrorCode::INVALID_REPLICA_ASSIGNMENT;
            result.error_message = Some("manual replica assignment is not supported".into());
        } else {
            let call = AdminCall::CreatePartitions {
                name: t.name.clone(),
                count: t.count,
                validate_only: req.validate_only,
            };
            if let Err(e) = ctx.admin(call).await? {
                let (code, msg) = admin_error_code(&e);
                result.error_code = code;
                result.error_message = Some(msg);
            }
        }
        results.push(result);
    }
    Ok(CreatePartitionsResponse {
        throttle_time_ms: 0,
        results,
    })
}

/// Broker-level settings shown by DescribeConfigs on the broker resource.
fn broker_configs(ctx: &ServerCtx) -> Vec<(String, String)> {
    let c = &ctx.config;
    let urls = |f: fn(&crate::config::Listener) -> String| {
        c.listeners.iter().map(f).collect::<Vec<_>>().join(",")
    };
    let mut v = vec![
        ("listeners".to_string(), urls(|l| l.to_url())),
        (
            "advertised.listeners".to_string(),
            urls(|l| l.advertised_url()),
        ),
        (
            "sasl.enabled.mechanisms".to_string(),
            c.sasl_mechanisms.join(","),
        ),
        (
            "connections.max.reauth.ms".to_string(),
            c.connections_max_reauth_ms.to_string(),
        ),
        ("log.dirs".to_string(), c.data_dir.display().to_string()),
        (
            "num.partitions".to_string(),
            c.default_partitions.to_string(),
        ),
        (
            "auto.create.topics.enable".to_string(),
            c.auto_create_topics.to_string(),
        ),
        (
            "socket.request.max.bytes".to_string(),
            c.max_request_bytes.to_string(),
        ),
        ("broker.id".to_string(), c.node_id.to_string()),
        ("ringmq.shards".to_string(), c.shards.to_string()),
    ];
    for (k, v2) in &c.topic_defaults.values {
        v.push((format!("log.{k}"), v2.clone()));
    }
    v
}

fn describe_configs(
    ctx: &ServerCtx,
    req: describe_configs::DescribeConfigsRequest,
) -> describe_configs::DescribeConfigsResponse {
    let image = ctx.image();
    let docs = req.include_documentation;
    describe_configs::DescribeConfigsResponse {
        throttle_time_ms: 0,
        results: req
            .resources
            .into_iter()
            .map(|res| describe_resource(ctx, &image, res, docs))
            .collect(),
    }
}

/// A described config entry: name, value and source.
type ConfigEntry = (String, String, i8);

/// The configs of one resource, those in `configuration_keys` when it is not null.
fn describe_resource(
    ctx: &ServerCtx,
    image: &MetadataImage,
    res: describe_configs::DescribeConfigsResource,
    include_documentation: bool,
) -> describe_configs::DescribeConfigsResult {
    let (entries, error) = match resource_entries(ctx, image, &res) {
        Ok(entries) => (entries, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    let keys = res.configuration_keys.as_ref();
    let configs = entries
        .into_iter()
        .filter(|(name, _, _)| keys.is_none_or(|k| k.contains(name)))
        .map(|(name, value, source)| {
            let doc = TOPIC_CONFIG_KEYS
                .iter()
                .find(|(k, _, _)| *k == name)
                .map(|(_, _, d)| d.to_string());
            describe_configs::DescribeConfigsResourceResult {
                name,
                value: Some(value),
                read_only: res.resource_type == RESOURCE_BROKER,
                config_source: source,
                is_sensitive: false,
                synonyms: Vec::new(),
                config_type: 2, // STRING
                documentation: if include_documentation { doc } else { None },
            }
        })
        .collect();
    describe_configs::DescribeConfigsResult {
        error_code: error.as_ref().map_or(ErrorCode::NONE, |e| e.0),
        error_message: error.map(|e| e.1),
        resource_type: res.resource_type,
        resource_name: res.resource_name,
        configs,
    }
}

/// Every config entry of one resource, or the error (and its message) that answers it.
fn resource_entries(
    ctx: &ServerCtx,
    image: &MetadataImage,
    res: &describe_configs::DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, (ErrorCode, String)> {
    match res.resource_type {
        RESOURCE_TOPIC => match image.topics.get(res.resource_name.as_str()) {
            Some(t) => Ok(topic_entries(ctx, &t.configs)),
            None => Err((
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("topic '{}' does not exist", res.resource_name),
            )),
        },
        RESOURCE_BROKER => Ok(broker_configs(ctx)
            .into_iter()
            .map(|(k, v)| (k, v, SOURCE_STATIC_BROKER))
            .collect()),
        other => Err((
            ErrorCode::INVALID_REQUEST,
            format!("resource type {other} is not supported"),
        )),
    }
}

/// A topic's configs: its overrides, else the broker's topic defaults (source DEFAULT when
/// that is Kafka's own default too).
fn topic_entries(ctx: &ServerCtx, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    use describe_configs::SOURCE_DEFAULT;
    TOPIC_CONFIG_KEYS
        .iter()
        .map(|(k, _, _)| match overrides.get(*k) {
            Some(v) => (k.to_string(), v.clone(), SOURCE_TOPIC),
            None => {
                let v = ctx.config.topic_defaults.get(k).to_string();
                let default = TOPIC_CONFIG_KEYS
                    .iter()
                    .any(|(k2, d, _)| k2 == k && *d == v);
                let source = if default {
                    SOURCE_DEFAULT
                } else {
                    SOURCE_STATIC_BROKER
                };
                (k.to_string(), v, source)
            }
        })
        .collect()
}

type ConfigChange = (String, Option<String>, i8);

/// AlterConfigs: each resource's whole dynamic config set is replaced by the one sent.
async fn alter_configs(
    ctx: &ServerCtx,
    req: alter_configs::AlterConfigsRequest,
) -> Result<alter_configs::AlterConfigsResponse, RequestError> {
    let changes = req
        .resources
        .iter()
        .map(|res| {
            let set = res
                .configs
                .iter()
                .map(|c| (c.name.clone(), c.value.clone(), 0i8))
                .collect();
            (res.resource_type, res.resource_name.clone(), set, true)
        })
        .collect();
    let responses = alter(ctx, changes, req.validate_only).await?;
    Ok(alter_configs::AlterConfigsResponse {
        throttle_time_ms: 0,
        responses,
    })
}

/// IncrementalAlterConfigs: only the configs sent change, each by its operation.
async fn incremental_alter_configs(
    ctx: &ServerCtx,
    req: incremental_alter_configs::IncrementalAlterConfigsRequest,
) -> Result<incremental_alter_configs::IncrementalAlterConfigsResponse, RequestError> {
    let changes = req
        .resources
        .iter()
        .map(|res| {
            let set = res
                .configs
                .iter()
                .map(|c| (c.name.clone(), c.value.clone(), c.config_operation))
                .collect();
            (res.resource_type, res.resource_name.clone(), set, false)
        })
        .collect();
    let responses = alter(ctx, changes, req.validate_only).await?;
    Ok(incremental_alter_configs::IncrementalAlterConfigsResponse {
        throttle_time_ms: 0,
        responses,
    })
}

/// Apply config changes to topics. `replace` (AlterConfigs) sets the whole override set;
/// otherwise (IncrementalAlterConfigs) op 0 sets, 1 deletes; append/subtract are refused.
async fn alter(
    ctx: &ServerCtx,
    changes: Vec<(i8, String, Vec<ConfigChange>, bool)>,
    validate_only: bool,
) -> Result<Vec<alter_configs::AlterConfigsResourceResponse>, RequestError> {
    use alter_configs::AlterConfigsResourceResponse;
    let mut out = Vec::with_capacity(changes.len());
    for (resource_type, name, set, replace) in changes {
        let mut resp = AlterConfigsResourceResponse {
            error_code: ErrorCode::NONE,
            error_message: None,
            resource_type,
            resource_name: name.clone(),
        };
        match merged_configs(ctx, resource_type, &name, set, replace) {
            Err((code, msg)) => {
                resp.error_code = code;
                resp.error_message = Some(msg);
            }
            Ok(configs) => {
                let call = AdminCall::SetTopicConfigs {
                    name,
                    configs,
                    validate_only,
                };
                if let Err(e) = ctx.admin(call).await? {
                    let (code, msg) = admin_error_code(&e);
                    resp.error_code = code;
                    resp.error_message = Some(msg);
                }
            }
        }
        out.push(resp);
    }
    Ok(out)
}

fn merged_configs(
    ctx: &ServerCtx,
    resource_type: i8,
    name: &str,
    set: Vec<ConfigChange>,
    replace: bool,
) -> Result<BTreeMap<String, String>, (ErrorCode, String)> {
    if resource_type != RESOURCE_TOPIC {
        return Err((
            ErrorCode::INVALID_REQUEST,
            "only topic configs can be altered".into(),
        ));
    }
    topic_action(name, TopicAction::AlterConfigs)?;
    let image = ctx.image();
    let topic = image.topics.get(name).ok_or_else(|| {
        (
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic '{name}' does not exist"),
        )
    })?;
    let mut configs = if replace {
        BTreeMap::new()
    } else {
        topic.configs.clone()
    };
    for (key, value, op) in set {
        match (op, value) {
            (0, Some(v)) => {
                validate_topic_config(&key, &v)
                    .map_err(|e| (ErrorCode::INVALID_CONFIG, e.to_string()))?;
                configs.insert(key, v);
            }
            (0, None) if replace => {}
            (1, _) => {
                configs.remove(&key);
            }
            (op, _) => {
                return Err((
                    ErrorCode::INVALID_CONFIG,
                    format!("operation {op} on {key} is not supported"),
                ))
            }
        }
    }
    Ok(configs)
}

/// Every node this node knows (the controller's registry and gossip): live ones always,
/// dead ones too when the request asks for fenced brokers (v2), each with ringmq's tagged
/// gossip state, RPC address and controller role (from shard 0, which runs the controller).
async fn describe_cluster(
    ctx: &ServerCtx,
    req: &describe_cluster::DescribeClusterRequest,
    listener: &crate::config::Listener,
) -> describe_cluster::DescribeClusterResponse {
    use crate::cluster::status::{self, ControllerRole};
    use crate::cluster::NodeState;
    use describe_cluster::*;
    let controller = match ctx
        .router
        .call(ShardId(0), ShardCall::ControllerStatus)
        .await
    {
        Ok(ShardReply::ControllerStatus(s)) => s,
        _ => None,
    };
    let role = |id: i32| match controller.as_ref().and_then(|c| c.role(id)) {
        Some(ControllerRole::Leader) => CONTROLLER_ROLE_LEADER,
        Some(ControllerRole::Voter) => CONTROLLER_ROLE_VOTER,
        Some(ControllerRole::Observer) => CONTROLLER_ROLE_OBSERVER,
        None => CONTROLLER_ROLE_NONE,
    };
    let nodes = status::nodes(&ctx.image(), &ctx.metadata.membership());
    let brokers = nodes
        .into_iter()
        .filter(|n| req.include_fenced_brokers || n.state != NodeState::Dead)
        .map(|n| DescribeClusterBroker {
            broker_id: n.id,
            is_fenced: n.state == NodeState::Dead,
            ringmq_state: match n.state {
                NodeState::Alive => NODE_STATE_ALIVE,
                NodeState::Suspect => NODE_STATE_SUSPECT,
                NodeState::Dead => NODE_STATE_DEAD,
            },
            ringmq_controller_role: role(n.id),
            ringmq_rpc: n.rpc,
            host: match n.id == ctx.config.node_id {
                true => listener.advertise_host.clone(),
                false => n.host,
            },
            port: match n.id == ctx.config.node_id {
                true => i32::from(listener.advertise_port),
                false => n.port,
            },
            rack: n.rack,
        })
        .collect();
    DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::NONE,
        error_message: None,
        endpoint_type: ENDPOINT_TYPE_BROKERS,
        cluster_id: ctx.config.cluster_id.clone(),
        controller_id: ctx.metadata.controller().unwrap_or(-1),
        brokers,
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
    }
}

async fn delete_records(
    ctx: &ServerCtx,
    req: delete_records::DeleteRecordsRequest,
) -> Result<delete_records::DeleteRecordsResponse, RequestError> {
    use delete_records::*;
    let image = ctx.image();
    let mut scatter = Scatter::new();
    for t in &req.topics {
        let meta = image.topics.get(t.name.as_str());
        let meta = meta.filter(|_| topic_action(&t.name, TopicAction::DeleteRecords).is_ok());
        for p in &t.partitions {
            match meta.filter(|m| ctx.leads(m, p.partition_index)) {
                Some(m) => {
                    let tp = TopicPartition {
                        topic: m.name.clone(),
                        partition: p.partition_index,
                    };
                    scatter.send(ctx.router.owner(&m.name, p.partition_index), (tp, p.offset));
                }
                None => scatter.skip(),
            }
        }
    }
    let mut slots = ctx
        .scatter_gather(
            scatter,
            |parts| ShardCall::DeleteRecords { parts },
            |reply| match reply {
                ShardReply::DeleteRecords(results) => Some(results),
                _ => None,
            },
        )
        .await?
        .into_iter();
    // Slots come in request order: take them in the same nested order.
    let topics = req
        .topics
        .iter()
        .map(|t| DeleteRecordsTopicResult {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let slot = slots.next().flatten();
                    match slot.unwrap_or_else(|| Err(ctx.unrouted(&t.name, p.partition_index))) {
                        Ok(low) => DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: low,
                            error_code: ErrorCode::NONE,
                        },
                        Err(e) => DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: -1,
                            error_code: match topic_action(&t.name, TopicAction::DeleteRecords) {
                                Err((code, _)) => code,
                                Ok(()) => partition_error_code(&e),
                            },
                        },
                    }
                })
                .collect(),
        })
        .collect();
    Ok(DeleteRecordsResponse {
        throttle_time_ms: 0,
        topics,
    })
}

async fn init_producer_id(
    ctx: &ServerCtx,
    req: init_producer_id::InitProducerIdRequest,
) -> Result<init_producer_id::InitProducerIdResponse, RequestError> {
    use init_producer_id::*;
    let mut resp = InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: 0,
        producer_id: -1,
        producer_epoch: -1,
    };
    if req.transactional_id.is_some() {
        resp.error_code = ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.0;
        return Ok(resp);
    }
    // A producer that asks again with its id gets the next epoch (KIP-360), else a new id.
    if req.producer_id >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        resp.producer_id = req.producer_id;
        resp.producer_epoch = req.producer_epoch + 1;
        return Ok(resp);
    }
    match ctx.admin(AdminCall::AllocateProducerId).await? {
        Ok(AdminReply::ProducerId(id)) => {
            resp.producer_id = id;
            resp.producer_epoch = 0;
        }
        Ok(_) => resp.error_code = ErrorCode::UNKNOWN_SERVER_ERROR.0,
        Err(e) => resp.error_code = admin_error_code(&e).0 .0,
    }
    Ok(resp)
}
