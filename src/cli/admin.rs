//! `ringmq topic create|list|describe|delete|alter-config|add-partitions` and
//! `ringmq cluster info`: one admin request (or a few) each, answered as a table or JSON.
//!
//! Topic existence is decided by Metadata (never auto-creating), so `describe`, `alter-config`
//! and `add-partitions` on a missing topic fail with "topic 'x' does not exist" before sending
//! anything that could change state.

use super::output::{join_ids, Json, Table};
use super::{check_code, connect, emit, CliError, ConnArgs};
use crate::client::conn::Connection;
use crate::protocol::create_partitions::{CreatePartitionsRequest, CreatePartitionsTopic};
use crate::protocol::create_topics::{CreatableTopic, CreatableTopicConfig, CreateTopicsRequest};
use crate::protocol::delete_topics::{DeleteTopicState, DeleteTopicsRequest};
use crate::protocol::describe_cluster::{
    DescribeClusterBroker, DescribeClusterRequest, CONTROLLER_ROLE_LEADER,
    CONTROLLER_ROLE_OBSERVER, CONTROLLER_ROLE_VOTER, ENDPOINT_TYPE_BROKERS, NODE_STATE_ALIVE,
    NODE_STATE_DEAD, NODE_STATE_SUSPECT,
};
use crate::protocol::describe_configs::{DescribeConfigsRequest, DescribeConfigsResource};
use crate::protocol::incremental_alter_configs::{
    config_operation, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResource,
    IncrementalAlterableConfig,
};
use crate::protocol::list_offsets::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::protocol::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use crate::protocol::ErrorCode;
use clap::{Args, Subcommand};

/// ConfigResource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// Admin request timeout sent to the broker.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// `ringmq topic ...`
#[derive(Subcommand, Debug, Clone)]
pub enum TopicCommand {
    /// Create a topic.
    Create(TopicCreateArgs),
    /// List topics with their partition counts.
    List(ConnArgs),
    /// Partitions (leader, replicas, offsets) and configs of a topic.
    Describe(TopicNameArgs),
    /// Delete topics.
    Delete(TopicDeleteArgs),
    /// Set or remove per-topic configs.
    AlterConfig(TopicAlterConfigArgs),
    /// Grow a topic's partition count.
    AddPartitions(TopicAddPartitionsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct TopicCreateArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    #[arg(short, long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor (-1: the broker's default).
    #[arg(short, long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i16,
    /// Topic config, e.g. `-c retention.ms=3600000` (repeatable).
    #[arg(short, long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    /// Succeed when the topic already exists.
    #[arg(long)]
    pub if_not_exists: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TopicNameArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic name.
    pub name: String,
}

#[derive(Args, Debug, Clone)]
pub struct TopicDeleteArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct TopicAlterConfigArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic name.
    pub name: String,
    /// Set a config (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Remove a per-topic config, back to the broker default (repeatable).
    #[arg(long, value_name = "KEY")]
    pub delete: Vec<String>,
}

#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false, id = "how_many")]
pub struct TopicAddPartitionsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic name.
    pub name: String,
    /// Partitions to add.
    #[arg(long, group = "how_many")]
    pub add: Option<i32>,
    /// New total partition count.
    #[arg(long, group = "how_many")]
    pub total: Option<i32>,
}

/// Run one `topic` subcommand.
pub async fn run_topic(cmd: TopicCommand) -> Result<(), CliError> {
    match cmd {
        TopicCommand::Create(a) => create(a).await,
        TopicCommand::List(a) => list(a).await,
        TopicCommand::Describe(a) => describe(a).await,
        TopicCommand::Delete(a) => delete(a).await,
        TopicCommand::AlterConfig(a) => alter_config(a).await,
        TopicCommand::AddPartitions(a) => add_partitions(a).await,
    }
}

/// `KEY=VALUE` into its parts.
pub fn parse_kv(kv: &str, flag: &str) -> Result<(String, String), CliError> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(CliError::Usage(format!(
            "{flag} '{kv}' is not of the form KEY=VALUE"
        ))),
    }
}

async fn create(a: TopicCreateArgs) -> Result<(), CliError> {
    let configs = a
        .configs
        .iter()
        .map(|kv| {
            parse_kv(kv, "--config").map(|(name, value)| CreatableTopicConfig {
                name,
                value: Some(value),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut conn = connect(&a.conn.bootstrap).await?;
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: a.name.clone(),
            num_partitions: a.partitions,
            replication_factor: a.replication_factor,
            assignments: Vec::new(),
            configs,
        }],
        timeout_ms: ADMIN_TIMEOUT_MS,
        validate_only: false,
    };
    let resp = conn.call(&req).await?;
    let t = resp
        .topics
        .iter()
        .find(|t| t.name == a.name)
        .ok_or_else(|| CliError::Client(format!("no answer for topic '{}'", a.name)))?;
    let existed = t.error_code == ErrorCode::TOPIC_ALREADY_EXISTS && a.if_not_exists;
    if !existed {
        let what = format!("create topic '{}'", a.name);
        check_code(&what, t.error_code.0, t.error_message.as_deref())?;
    }
    let value = Json::obj([
        ("topic", Json::str(&a.name)),
        ("created", Json::Bool(!existed)),
        ("partitions", Json::Int(t.num_partitions.into())),
    ]);
    emit(a.conn.json, &value, || {
        if existed {
            format!("topic '{}' already exists\n", a.name)
        } else {
            format!(
                "created topic '{}' with {} partition(s)\n",
                a.name,
                if t.num_partitions > 0 {
                    t.num_partitions
                } else {
                    a.partitions
                }
            )
        }
    });
    Ok(())
}

/// Metadata for `topics` (None: all), never auto-creating.
pub async fn metadata(
    conn: &mut Connection,
    topics: Option<&[String]>,
) -> Result<MetadataResponse, CliError> {
    let req = MetadataRequest {
        topics: topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some(n.clone()),
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    };
    Ok(conn.call(&req).await?)
}

/// A topic id as 32 lowercase hex digits.
fn topic_id_hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sorted partition indexes of `topic`, or NotFound.
pub async fn require_topic(conn: &mut Connection, topic: &str) -> Result<Vec<i32>, CliError> {
    match crate::client::topic_partitions(conn, topic).await? {
        Some(parts) => Ok(parts),
        None => Err(CliError::NotFound(format!("topic '{topic}'"))),
    }
}

async fn list(a: ConnArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.bootstrap).await?;
    let resp = metadata(&mut conn, None).await?;
    let mut topics: Vec<_> = resp
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .map(|t| {
            (
                t.name.clone().unwrap_or_default(),
                t.partitions.len(),
                t.is_internal,
                t.topic_id,
            )
        })
        .collect();
    topics.sort();
    let value = Json::Arr(
        topics
            .iter()
            .map(|(name, parts, internal, id)| {
                Json::obj([
                    ("topic", Json::str(name)),
                    ("partitions", Json::Int(*parts as i64)),
                    ("internal", Json::Bool(*internal)),
                    ("topic_id", Json::str(topic_id_hex(id))),
                ])
            })
            .collect(),
    );
    emit(a.json, &value, || {
        let mut t = Table::new(&["TOPIC", "PARTITIONS"]);
        for (name, parts, internal, _) in &topics {
            let name = if *internal {
                format!("{name} (internal)")
            } else {
                name.clone()
            };
            t.row(vec![name, parts.to_string()]);
        }
        t.render()
    });
    Ok(())
}

/// Kafka's ConfigSource as a short word.
fn config_source(source: i8) -> &'static str {
    match source {
        1 => "topic",
        2..=4 => "broker",
        5 => "default",
        _ => "unknown",
    }
}

/// (name, value, source) of every config of `topic`.
async fn topic_configs(
    conn: &mut Connection,
    topic: &str,
) -> Result<Vec<(String, Option<String>, &'static str)>, CliError> {
    let req = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: topic.to_string(),
            configuration_keys: None,
        }],
        include_synonyms: false,
        include_documentation: false,
    };
    let resp = conn.call(&req).await?;
    let mut out = Vec::new();
    for r in &resp.results {
        let what = format!("describe configs of topic '{topic}'");
        check_code(&what, r.error_code.0, r.error_message.as_deref())?;
        for c in &r.configs {
            out.push((
                c.name.clone(),
                c.value.clone(),
                config_source(c.config_source),
            ));
        }
    }
    out.sort();
    Ok(out)
}

struct PartitionRow {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    earliest: i64,
    latest: i64,
}

async fn describe(a: TopicNameArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.conn.bootstrap).await?;
    let resp = metadata(&mut conn, Some(std::slice::from_ref(&a.name))).await?;
    let topic = resp
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(a.name.as_str()) && t.error_code == 0)
        .ok_or_else(|| CliError::NotFound(format!("topic '{}'", a.name)))?;
    let mut parts: Vec<_> = topic.partitions.iter().collect();
    parts.sort_by_key(|p| p.partition_index);
    let indexes: Vec<i32> = parts.iter().map(|p| p.partition_index).collect();
    let earliest =
        crate::client::list_offsets(&mut conn, &a.name, &indexes, EARLIEST_TIMESTAMP).await?;
    let latest =
        crate::client::list_offsets(&mut conn, &a.name, &indexes, LATEST_TIMESTAMP).await?;
    let rows: Vec<PartitionRow> = parts
        .iter()
        .zip(earliest.iter().zip(&latest))
        .map(|(p, (&earliest, &latest))| PartitionRow {
            partition: p.partition_index,
            leader: p.leader_id,
            replicas: p.replica_nodes.clone(),
            isr: p.isr_nodes.clone(),
            earliest,
            latest,
        })
        .collect();
    let configs = topic_configs(&mut conn, &a.name).await?;
    let value = describe_json(&a.name, &rows, &configs);
    emit(a.conn.json, &value, || {
        describe_text(&a.name, &rows, &configs)
    });
    Ok(())
}

fn describe_json(
    name: &str,
    rows: &[PartitionRow],
    configs: &[(String, Option<String>, &str)],
) -> Json {
    Json::obj([
        ("topic", Json::str(name)),
        (
            "partitions",
            Json::Arr(
                rows.iter()
                    .map(|r| {
                        Json::obj([
                            ("partition", Json::Int(r.partition.into())),
                            ("leader", Json::Int(r.leader.into())),
                            (
                                "replicas",
                                Json::Arr(
                                    r.replicas.iter().map(|&n| Json::Int(n.into())).collect(),
                                ),
                            ),
                            (
                                "isr",
                                Json::Arr(r.isr.iter().map(|&n| Json::Int(n.into())).collect()),
                            ),
                            ("earliest_offset", Json::Int(r.earliest)),
                            ("latest_offset", Json::Int(r.latest)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "configs",
            Json::Obj(
                configs
                    .iter()
                    .map(|(k, v, source)| {
                        let entry = Json::obj([
                            ("value", Json::opt_str(v.as_deref())),
                            ("source", Json::str(*source)),
                        ]);
                        (k.clone(), entry)
                    })
                    .collect(),
            ),
        ),
    ])
}

fn describe_text(
    name: &str,
    rows: &[PartitionRow],
    configs: &[(String, Option<String>, &str)],
) -> String {
    let mut out = format!("topic {name}: {} partition(s)\n\n", rows.len());
    let mut t = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "EARLIEST",
        "LATEST",
    ]);
    for r in rows {
        t.row(vec![
            r.partition.to_string(),
            r.leader.to_string(),
            join_ids(&r.replicas),
            join_ids(&r.isr),
            r.earliest.to_string(),
            r.latest.to_string(),
        ]);
    }
    out.push_str(&t.render());
    if !configs.is_empty() {
        out.push('\n');
        let mut t = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
        for (k, v, source) in configs {
            t.row(vec![
                k.clone(),
                v.clone().unwrap_or_default(),
                source.to_string(),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

async fn delete(a: TopicDeleteArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.conn.bootstrap).await?;
    let req = DeleteTopicsRequest {
        topics: a
            .names
            .iter()
            .map(|n| DeleteTopicState {
                name: Some(n.clone()),
                topic_id: [0; 16],
            })
            .collect(),
        topic_names: a.names.clone(),
        timeout_ms: ADMIN_TIMEOUT_MS,
    };
    let resp = conn.call(&req).await?;
    for name in &a.names {
        let r = resp
            .responses
            .iter()
            .find(|r| r.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| CliError::Client(format!("no answer for topic '{name}'")))?;
        if r.error_code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
            return Err(CliError::NotFound(format!("topic '{name}'")));
        }
        let what = format!("delete topic '{name}'");
        check_code(&what, r.error_code.0, r.error_message.as_deref())?;
    }
    let value = Json::obj([(
        "deleted",
        Json::Arr(a.names.iter().map(Json::str).collect()),
    )]);
    emit(a.conn.json, &value, || {
        a.names
            .iter()
            .map(|n| format!("deleted topic '{n}'\n"))
            .collect()
    });
    Ok(())
}

async fn alter_config(a: TopicAlterConfigArgs) -> Result<(), CliError> {
    if a.set.is_empty() && a.delete.is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give --set KEY=VALUE or --delete KEY".into(),
        ));
    }
    let mut configs = Vec::new();
    for kv in &a.set {
        let (name, value) = parse_kv(kv, "--set")?;
        configs.push(IncrementalAlterableConfig {
            name,
            config_operation: config_operation::SET,
            value: Some(value),
        });
    }
    for name in &a.delete {
        configs.push(IncrementalAlterableConfig {
            name: name.clone(),
            config_operation: config_operation::DELETE,
            value: None,
        });
    }
    let mut conn = connect(&a.conn.bootstrap).await?;
    require_topic(&mut conn, &a.name).await?;
    let req = IncrementalAlterConfigsRequest {
        resources: vec![IncrementalAlterConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: a.name.clone(),
            configs,
        }],
        validate_only: false,
    };
    let resp = conn.call(&req).await?;
    for r in &resp.responses {
        let what = format!("alter configs of topic '{}'", a.name);
        check_code(&what, r.error_code.0, r.error_message.as_deref())?;
    }
    let value = Json::obj([
        ("topic", Json::str(&a.name)),
        ("set", Json::Arr(a.set.iter().map(Json::str).collect())),
        (
            "deleted",
            Json::Arr(a.delete.iter().map(Json::str).collect()),
        ),
    ]);
    emit(a.conn.json, &value, || {
        format!("altered configs of topic '{}'\n", a.name)
    });
    Ok(())
}

async fn add_partitions(a: TopicAddPartitionsArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.conn.bootstrap).await?;
    let current = require_topic(&mut conn, &a.name).await?.len() as i32;
    let total = match (a.add, a.total) {
        (Some(add), _) if add > 0 => current.saturating_add(add),
        (Some(add), _) => {
            return Err(CliError::Usage(format!(
                "--add {add}: the number of partitions to add must be positive"
            )))
        }
        (None, Some(total)) => total,
        (None, None) => return Err(CliError::Usage("give --add N or --total N".into())),
    };
    let req = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: a.name.clone(),
            count: total,
            assignments: None,
        }],
        timeout_ms: ADMIN_TIMEOUT_MS,
        validate_only: false,
    };
    let resp = conn.call(&req).await?;
    for r in &resp.results {
        let what = format!("grow topic '{}' to {total} partitions", a.name);
        check_code(&what, r.error_code.0, r.error_message.as_deref())?;
    }
    let value = Json::obj([
        ("topic", Json::str(&a.name)),
        ("partitions_before", Json::Int(current.into())),
        ("partitions", Json::Int(total.into())),
    ]);
    emit(a.conn.json, &value, || {
        format!(
            "topic '{}' now has {total} partitions (was {current})\n",
            a.name
        )
    });
    Ok(())
}

/// `ringmq cluster info`.
/// One node in `cluster info`.
struct NodeRow {
    id: i32,
    host: String,
    port: i32,
    /// Empty when the broker does not say (not ringmq).
    rpc: String,
    rack: Option<String>,
    state: &'static str,
    role: &'static str,
    partitions: usize,
    leaders: usize,
}

/// A DescribeCluster broker as a row. ringmq adds the gossip state, RPC address and
/// controller role as tagged fields; from another broker only `is_fenced` (v2) is known.
fn node_row(b: &DescribeClusterBroker, controller_id: i32) -> NodeRow {
    let state = match b.ringmq_state {
        NODE_STATE_ALIVE => "alive",
        NODE_STATE_SUSPECT => "suspect",
        NODE_STATE_DEAD => "dead",
        _ if b.is_fenced => "fenced",
        _ => "live",
    };
    let role = match b.ringmq_controller_role {
        CONTROLLER_ROLE_LEADER => "leader",
        CONTROLLER_ROLE_VOTER => "voter",
        CONTROLLER_ROLE_OBSERVER => "observer",
        _ if b.broker_id == controller_id => "leader",
        _ => "-",
    };
    NodeRow {
        id: b.broker_id,
        host: b.host.clone(),
        port: b.port,
        rpc: b.ringmq_rpc.clone(),
        rack: b.rack.clone(),
        state,
        role,
        partitions: 0,
        leaders: 0,
    }
}

/// Every node, the dead and suspect ones too: DescribeCluster v2 with fenced brokers (a
/// broker without it: Metadata's live brokers), with each node's partitions (replicas on it)
/// and leaders counted from Metadata; and the controller leader. That comes from
/// DescribeCluster, which says -1 while none is known; Metadata then names the answering
/// node (it forwards admin requests), so it is only the fallback.
async fn cluster_nodes(conn: &mut Connection, md: &MetadataResponse) -> (Vec<NodeRow>, i32) {
    let req = DescribeClusterRequest {
        include_cluster_authorized_operations: false,
        endpoint_type: ENDPOINT_TYPE_BROKERS,
        include_fenced_brokers: true,
    };
    let (mut rows, controller): (Vec<NodeRow>, i32) = match conn.call(&req).await {
        Ok(resp) if resp.error_code == ErrorCode::NONE => (
            resp.brokers
                .iter()
                .map(|b| node_row(b, resp.controller_id))
                .collect(),
            resp.controller_id,
        ),
        _ => (
            md.brokers
                .iter()
                .map(|b| {
                    let b = DescribeClusterBroker {
                        broker_id: b.node_id,
                        host: b.host.clone(),
                        port: b.port,
                        rack: b.rack.clone(),
                        ..Default::default()
                    };
                    node_row(&b, md.controller_id)
                })
                .collect(),
            md.controller_id,
        ),
    };
    rows.sort_by_key(|r| r.id);
    let partitions = md.topics.iter().filter(|t| t.error_code == 0);
    for p in partitions.flat_map(|t| &t.partitions) {
        for r in rows.iter_mut() {
            r.partitions += usize::from(p.replica_nodes.contains(&r.id));
            r.leaders += usize::from(p.leader_id == r.id);
        }
    }
    (rows, controller)
}

fn node_json(r: &NodeRow) -> Json {
    Json::obj([
        ("node_id", Json::Int(r.id.into())),
        ("host", Json::str(&r.host)),
        ("port", Json::Int(r.port.into())),
        (
            "rpc",
            Json::opt_str(Some(r.rpc.as_str()).filter(|s| !s.is_empty())),
        ),
        ("rack", Json::opt_str(r.rack.as_deref())),
        ("state", Json::str(r.state)),
        ("controller_role", Json::str(r.role)),
        ("partitions", Json::Int(r.partitions as i64)),
        ("leaders", Json::Int(r.leaders as i64)),
    ])
}

fn nodes_table(rows: &[NodeRow]) -> String {
    let mut t = Table::new(&[
        "NODE",
        "HOST",
        "PORT",
        "RPC",
        "RACK",
        "STATE",
        "CONTROLLER",
        "PARTITIONS",
        "LEADERS",
    ]);
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    for r in rows {
        t.row(vec![
            r.id.to_string(),
            r.host.clone(),
            r.port.to_string(),
            dash(&r.rpc),
            dash(r.rack.as_deref().unwrap_or("")),
            r.state.into(),
            r.role.into(),
            r.partitions.to_string(),
            r.leaders.to_string(),
        ]);
    }
    t.render()
}

fn api_versions_json(apis: &[(i16, i16, i16)]) -> Json {
    Json::Arr(
        apis.iter()
            .map(|&(key, min, max)| {
                Json::obj([
                    ("api_key", Json::Int(key.into())),
                    ("min_version", Json::Int(min.into())),
                    ("max_version", Json::Int(max.into())),
                ])
            })
            .collect(),
    )
}

/// `ringmq cluster info`: cluster id, controller, every node (state, controller role,
/// partitions and leaders), topics and the API versions served.
pub async fn cluster_info(a: ConnArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.bootstrap).await?;
    let resp = metadata(&mut conn, None).await?;
    let (nodes, controller_id) = cluster_nodes(&mut conn, &resp).await;
    let ok_topics = || resp.topics.iter().filter(|t| t.error_code == 0);
    let topics = ok_topics().count();
    let partitions: usize = ok_topics().map(|t| t.partitions.len()).sum();
    let apis = conn.versions.rows().to_vec();
    let value = Json::obj([
        ("cluster_id", Json::opt_str(resp.cluster_id.as_deref())),
        ("controller_id", Json::Int(controller_id.into())),
        ("nodes", Json::Arr(nodes.iter().map(node_json).collect())),
        ("topics", Json::Int(topics as i64)),
        ("partitions", Json::Int(partitions as i64)),
        ("api_versions", api_versions_json(&apis)),
    ]);
    emit(a.json, &value, || {
        let mut out = format!(
            "cluster id:  {}\ncontroller:  {}\ntopics:      {topics} ({partitions} partitions)\napis:        {} served by {}\n\n",
            resp.cluster_id.as_deref().unwrap_or("-"),
            controller_id,
            apis.len(),
            a.bootstrap
        );
        out.push_str(&nodes_table(&nodes));
        out
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_need_a_key_and_an_equals_sign() {
        assert_eq!(
            parse_kv("retention.ms=10", "--set").unwrap(),
            ("retention.ms".into(), "10".into())
        );
        assert_eq!(
            parse_kv("a=b=c", "--set").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_kv("novalue", "--set").is_err());
        assert!(parse_kv("=v", "--set").is_err());
    }

    #[test]
    fn describe_text_lists_partitions_and_configs() {
        let rows = vec![PartitionRow {
            partition: 0,
            leader: 1,
            replicas: vec![1],
            isr: vec![1],
            earliest: 0,
            latest: 5,
        }];
        let configs = vec![("retention.ms".to_string(), Some("10".to_string()), "topic")];
        let text = describe_text("t", &rows, &configs);
        assert!(text.contains("1 partition(s)"), "{text}");
        assert!(text.contains("retention.ms  10     topic"), "{text}");
        let json = describe_json("t", &rows, &configs).render();
        assert!(json.contains(r#""latest_offset":5"#), "{json}");
    }
}
