//! A minimal Kafka client: our own connections on glommio, our own codec, no librdkafka.
//!
//! Used by `ringmq bench` (and later the CLI). It imports only `protocol` and `model`, never
//! broker internals, so it talks to ringmq exactly as it would to any Kafka broker.
//!
//! * [`batch`]: RecordBatch v2 builder into one reused buffer, and a record reader.
//! * [`api`]: the requests we send, tied to their responses; version negotiation.
//! * [`conn`]: one connection, split into a writer and a reader for pipelining.
//! * [`security`]: SASL (PLAIN, SCRAM) after ApiVersions, with the process's identity.
//!
//! This module's helpers ([`topic_partitions`], [`create_topic`], [`list_offsets`]) are the
//! small admin steps a bench needs before it starts; the hot paths (produce, fetch) drive
//! [`conn::ConnWriter`] and [`conn::ConnReader`] directly.
//!
//! Limits (on purpose, for now): every request goes to the bootstrap broker (fine for a
//! single-node ringmq; on a multi-broker Kafka cluster partitions led elsewhere answer
//! NOT_LEADER_OR_FOLLOWER, counted as broker errors), no reconnects, no compression, no
//! idempotence, no fetch sessions (every fetch is a full one).
//!
//! Like the broker, the client is thread-per-core: a [`conn::Connection`] lives on the
//! glommio executor that opened it and is never shared across threads.

pub mod api;
pub mod batch;
pub mod conn;
pub mod security;

use crate::protocol::create_topics::{CreatableTopic, CreateTopicsRequest};
use crate::protocol::list_offsets::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use crate::protocol::metadata::{MetadataRequest, MetadataRequestTopic};
use crate::protocol::{DecodeError, ErrorCode};
use conn::Connection;
use std::fmt;

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    Io(String),
    /// A response did not decode.
    Decode(DecodeError),
    /// A response broke the protocol (wrong correlation id, bad frame size).
    Protocol(String),
    /// The broker does not serve any version of this API that we speak.
    Unsupported { api_key: i16 },
    /// The broker answered with an error code.
    Broker { what: String, code: i16 },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "i/o: {e}"),
            ClientError::Decode(e) => write!(f, "decode: {e}"),
            ClientError::Protocol(e) => write!(f, "protocol: {e}"),
            ClientError::Unsupported { api_key } => {
                write!(f, "broker serves no version of api {api_key} we speak")
            }
            ClientError::Broker { what, code } => write!(f, "{what}: broker error code {code}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Decode(e)
    }
}

/// Partition indexes of `topic`, sorted; `Ok(None)` when the topic does not exist.
pub async fn topic_partitions(
    conn: &mut Connection,
    topic: &str,
) -> Result<Option<Vec<i32>>, ClientError> {
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            topic_id: [0; 16],
            name: Some(topic.into()),
        }]),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    };
    let resp = conn.call(&req).await?;
    let Some(t) = resp
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
    else {
        return Ok(None);
    };
    if t.error_code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0 {
        return Ok(None);
    }
    if t.error_code != 0 {
        return Err(ClientError::Broker {
            what: format!("metadata for {topic}"),
            code: t.error_code,
        });
    }
    let mut parts: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    parts.sort_unstable();
    Ok(Some(parts))
}

/// Create `topic` with `partitions` partitions (broker-default replication). An existing
/// topic is not an error.
pub async fn create_topic(
    conn: &mut Connection,
    topic: &str,
    partitions: i32,
) -> Result<(), ClientError> {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.into(),
            num_partitions: partitions,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        }],
        timeout_ms: 30_000,
        validate_only: false,
    };
    let resp = conn.call(&req).await?;
    for t in &resp.topics {
        let code = t.error_code;
        if code != ErrorCode::NONE && code != ErrorCode::TOPIC_ALREADY_EXISTS {
            return Err(ClientError::Broker {
                what: format!("create topic {}", t.name),
                code: code.0,
            });
        }
    }
    Ok(())
}

/// The offset at `timestamp` (use `list_offsets::LATEST_TIMESTAMP` / `EARLIEST_TIMESTAMP`)
/// of each of `partitions`, in the same order.
pub async fn list_offsets(
    conn: &mut Connection,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<i64>, ClientError> {
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: partitions
                .iter()
                .map(|&p| ListOffsetsPartition {
                    partition_index: p,
                    current_leader_epoch: -1,
                    timestamp,
                })
                .collect(),
        }],
    };
    let resp = conn.call(&req).await?;
    let mut out = Vec::with_capacity(partitions.len());
    for &p in partitions {
        let found = resp
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|r| r.partition_index == p);
        match found {
            Some(r) if r.error_code == 0 => out.push(r.offset),
            Some(r) => {
                return Err(ClientError::Broker {
                    what: format!("list offsets {topic}-{p}"),
                    code: r.error_code,
                })
            }
            None => return Err(ClientError::Protocol(format!("no offset for {topic}-{p}"))),
        }
    }
    Ok(out)
}
