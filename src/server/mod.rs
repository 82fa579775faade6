//! The Kafka server edge: connections ([`conn`]), one handler per API, and the one place
//! where internal errors become Kafka error codes ([`errors`]).
//!
//! The server reaches partition state only through the [`Router`]: it splits a request by
//! owning shard, sends one call per shard, and assembles the response in request order. It
//! reads cluster metadata from the shard's [`LocalMetadata`] copy and never imports
//! `storage` or `shard`.

pub mod admin;
pub mod admission;
pub mod conn;
pub mod errors;
pub mod fetch;
pub mod groups;
pub mod http;
pub mod legacy;
pub mod limits;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod sasl;
pub mod users;
pub mod validate;

use crate::cluster::{LocalMetadata, MetadataImage};
use crate::config::BrokerConfig;
use crate::protocol::header::{response_header_version, RequestHeader, ResponseHeader};
use crate::protocol::{api_versions, DecodeError, Reader, Writer};
use crate::router::{AdminCall, AdminError, AdminReply, Router, Scatter, ShardCall, ShardReply};
use bytes::Bytes;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

/// Why a request closes its connection.
#[derive(Debug)]
pub enum RequestError {
    Decode {
        api_key: i16,
        api_version: i16,
        error: DecodeError,
    },
    Unsupported {
        api_key: i16,
        api_version: i16,
    },
    /// A peer shard is gone (shutdown).
    Unavailable,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Decode {
                api_key,
                api_version,
                error,
            } => {
                write!(
                    f,
                    "malformed request (api {api_key} v{api_version}): {error}"
                )
            }
            RequestError::Unsupported {
                api_key,
                api_version,
            } => {
                write!(f, "unsupported api key {api_key} version {api_version}")
            }
            RequestError::Unavailable => write!(f, "broker shutting down"),
        }
    }
}

/// Per-shard server state shared by the connections of that shard.
pub struct ServerCtx {
    pub config: Arc<BrokerConfig>,
    pub router: Rc<Router>,
    pub metadata: Rc<LocalMetadata>,
    /// Bytes of request frames being read or handled (admission control, [`admission`]).
    pub requests: admission::Budget,
    /// The node's open client connections, shared by every shard ([`limits`]).
    pub limits: Arc<limits::ConnectionLimits>,
    pub connections: Cell<usize>,
    pub metrics: Rc<crate::metrics::ShardMetrics>,
    /// The TLS listeners' settings (`None` without an SSL or SASL_SSL listener).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Client errors logged in the current second (rate limit).
    log_budget: Cell<(u64, u32)>,
}

/// Client protocol errors logged per second per shard at most.
const CLIENT_ERROR_LOGS_PER_SECOND: u32 = 20;

impl ServerCtx {
    pub fn new(
        config: Arc<BrokerConfig>,
        router: Rc<Router>,
        metadata: Rc<LocalMetadata>,
        metrics: Rc<crate::metrics::ShardMetrics>,
        limits: Arc<limits::ConnectionLimits>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let requests = admission::Budget::new(config.inflight_bytes_per_shard as u64);
        ServerCtx {
            config,
            router,
            metadata,
            requests,
            limits,
            connections: Cell::new(0),
            metrics,
            tls,
            log_budget: Cell::new((0, 0)),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.get()
    }

    /// Whether this node leads partition `p` of `topic` (and so may answer for it).
    pub fn leads(&self, topic: &crate::cluster::TopicMeta, p: i32) -> bool {
        (0..topic.partitions).contains(&p)
            && self.route(topic, p).leader == Some(self.config.node_id)
    }

    /// Who leads partition `p` of `topic`, with which epoch, replicas and ISR (the Raft
    /// leadership this node's replica knows, for a replicated partition).
    pub fn route(
        &self,
        topic: &crate::cluster::TopicMeta,
        p: i32,
    ) -> crate::cluster::routing::PartitionRoute {
        let raft = self.metadata.leadership(&topic.name, p);
        crate::cluster::routing::replicated_route(
            &self.image(),
            &self.membership(),
            self.config.node_id,
            topic,
            p,
            raft.as_ref(),
        )
    }

    /// Why a partition got no answer from a shard: it exists but another node (or nobody)
    /// leads it (NOT_LEADER_OR_FOLLOWER), or it does not exist.
    pub fn unrouted(&self, topic: &str, p: i32) -> crate::router::PartitionError {
        let image = self.image();
        match image.topics.get(topic) {
            Some(t) if (0..t.partitions).contains(&p) && !self.leads(t, p) => {
                crate::router::PartitionError::NotLeader
            }
            _ => crate::router::PartitionError::UnknownTopicOrPartition,
        }
    }

    /// The node that coordinates `group_id`: the owner of its group-log partition.
    pub fn coordinator_node(&self, group_id: &str) -> i32 {
        let p = crate::groups::group_partition(group_id, crate::groups::GROUP_LOG_PARTITIONS);
        crate::cluster::routing::group_log_owner(&self.image(), self.config.node_id, p)
    }

    /// `Ok` if this node coordinates `group_id`; else the error a group call gets.
    pub fn coordinator(&self, group_id: &str) -> Result<(), crate::protocol::ErrorCode> {
        let owner = self.coordinator_node(group_id);
        if owner == self.config.node_id {
            Ok(())
        } else if self.membership().is_live(owner) {
            Err(crate::protocol::ErrorCode::NOT_COORDINATOR)
        } else {
            Err(crate::protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)
        }
    }

    /// The Kafka address of `card`'s node for a client on `listener`: this node answers with
    /// that listener's advertised address; another node with the address it gossips.
    pub fn kafka_address(
        &self,
        card: &crate::cluster::NodeCard,
        listener: &crate::config::Listener,
    ) -> (String, i32) {
        if card.node_id == self.config.node_id {
            (
                listener.advertise_host.clone(),
                i32::from(listener.advertise_port),
            )
        } else {
            (card.kafka_host.clone(), i32::from(card.kafka_port))
        }
    }

    /// The newest gossip membership view on this shard.
    pub fn membership(&self) -> Arc<crate::cluster::MembershipView> {
        self.metadata.membership()
    }

    /// Log one line for a connection closed because of the client, at most
    /// [`CLIENT_ERROR_LOGS_PER_SECOND`] per second.
    pub fn log_client_error(&self, peer: &str, why: &str) {
        let second = crate::base::now_ms() as u64 / 1000;
        let (at, count) = self.log_budget.get();
        let count = if at == second { count + 1 } else { 1 };
        self.log_budget.set((second, count));
        if count <= CLIENT_ERROR_LOGS_PER_SECOND {
            crate::warn!(
                "shard {}: closing connection from {peer}: {why}",
                self.router.me().0
            );
        }
    }

    /// Resolves when no request frame is held (all grants returned).
    pub async fn drained(&self) {
        while !self.requests.idle() {
            glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Run an admin call on the metadata shard.
    pub async fn admin(
        &self,
        call: AdminCall,
    ) -> Result<Result<AdminReply, AdminError>, RequestError> {
        match self
            .router
            .call(crate::model::ShardId(0), ShardCall::Admin(call))
            .await
        {
            Ok(ShardReply::Admin(r)) => Ok(r),
            _ => Err(RequestError::Unavailable),
        }
    }

    /// The request's items, split by owning shard in `scatter`, as one `make(items)` call per
    /// shard; `unpack` takes each reply's per-item answers (in the order of the items). The
    /// answers come back in request order, `None` for skipped items. A shard gone or a
    /// reply of the wrong kind fails the request.
    pub async fn scatter_gather<P, R>(
        &self,
        scatter: Scatter<P>,
        make: impl Fn(Vec<P>) -> ShardCall,
        unpack: impl Fn(ShardReply) -> Option<Vec<R>>,
    ) -> Result<Vec<Option<R>>, RequestError> {
        let unpack = &unpack;
        scatter
            .gather(|shard, items| {
                let call = self.router.call(shard, make(items));
                async move {
                    match call.await {
                        Ok(reply) => unpack(reply).ok_or(RequestError::Unavailable),
                        Err(_) => Err(RequestError::Unavailable),
                    }
                }
            })
            .await
    }
}

/// Handle one request frame (after the size prefix). Returns the response frame's parts
/// (header + body, without the size prefix), `None` when the request gets no response
/// (acks=0 produce), or an error that closes the connection.
pub async fn handle_request(
    ctx: &ServerCtx,
    header: RequestHeader,
    conn: &conn::Conn,
    body: Reader,
) -> Result<Option<Vec<Bytes>>, RequestError> {
    let key = header.api_key;
    ctx.metrics.request(key);
    let started = std::time::Instant::now();
    let result = dispatch(ctx, header, conn, body).await;
    match key {
        crate::protocol::produce::API_KEY => ctx.metrics.produce_latency.record(started.elapsed()),
        crate::protocol::fetch::API_KEY => ctx.metrics.fetch_latency.record(started.elapsed()),
        _ => {}
    }
    result
}

async fn dispatch(
    ctx: &ServerCtx,
    header: RequestHeader,
    conn: &conn::Conn,
    mut body: Reader,
) -> Result<Option<Vec<Bytes>>, RequestError> {
    let (key, version) = (header.api_key, header.api_version);
    if !api::supported(key, version) {
        if key == api_versions::API_KEY {
            return Ok(Some(api_versions_fallback(header.correlation_id)));
        }
        return Err(RequestError::Unsupported {
            api_key: key,
            api_version: version,
        });
    }
    let mut w = Writer::new();
    ResponseHeader {
        correlation_id: header.correlation_id,
    }
    .encode(&mut w, response_header_version(key, version));
    let decode_err = |error| RequestError::Decode {
        api_key: key,
        api_version: version,
        error,
    };
    use crate::protocol::*;
    let answered = match key {
        api_versions::API_KEY => {
            api_versions::ApiVersionsRequest::decode(&mut body, version).map_err(decode_err)?;
            api_versions::ApiVersionsResponse::from_advertised().encode(&mut w, version);
            true
        }
        metadata::API_KEY => {
            let req = metadata::MetadataRequest::decode(&mut body, version).map_err(decode_err)?;
            self::metadata::handle(ctx, req, &conn.listener)
                .await?
                .encode(&mut w, version);
            true
        }
        produce::API_KEY => {
            let req = produce::ProduceRequest::decode(&mut body, version).map_err(decode_err)?;
            serve_produce(ctx, req, version, &conn.listener, &mut w).await?
        }
        fetch::API_KEY => {
            let req = fetch::FetchRequest::decode(&mut body, version).map_err(decode_err)?;
            serve_fetch(ctx, req, version, &mut w).await?;
            true
        }
        list_offsets::API_KEY => {
            let req =
                list_offsets::ListOffsetsRequest::decode(&mut body, version).map_err(decode_err)?;
            self::offsets::list_offsets(ctx, req)
                .await?
                .encode(&mut w, version);
            true
        }
        sasl_handshake::API_KEY | sasl_authenticate::API_KEY => {
            // Only a PLAINTEXT listener gets here (conn answers SASL on SASL listeners).
            self::sasl::not_a_sasl_listener(key, version, &mut body, &mut w)?;
            true
        }
        _ => {
            self::groups::handle(ctx, &header, conn, &mut body, &mut w).await?
                || self::users::handle(ctx, key, version, &mut body, &mut w).await?
                || self::admin::handle(ctx, key, version, &conn.listener, &mut body, &mut w).await?
        }
    };
    Ok(answered.then(|| w.finish()))
}

/// KIP-511: an ApiVersions request at a version we do not serve is answered with a v0 body
/// under header v0, error UNSUPPORTED_VERSION and the full list.
fn api_versions_fallback(correlation_id: i32) -> Vec<Bytes> {
    let mut w = Writer::new();
    ResponseHeader { correlation_id }.encode(&mut w, 0);
    api_versions::ApiVersionsResponse::unsupported_fallback().encode(&mut w, 0);
    w.finish()
}

/// Produce (v0-2 converted from message sets first). Returns whether there is an answer
/// (acks=0 has none).
async fn serve_produce(
    ctx: &ServerCtx,
    req: crate::protocol::produce::ProduceRequest,
    version: i16,
    listener: &crate::config::Listener,
    w: &mut Writer,
) -> Result<bool, RequestError> {
    let resp = if version < crate::protocol::produce::MIN_STORED_VERSION {
        self::legacy::produce(ctx, req, listener).await?
    } else {
        self::produce::handle(ctx, req, listener).await?
    };
    if let Some(resp) = &resp {
        resp.encode(w, version);
    }
    Ok(resp.is_some())
}

/// Fetch (v0-3 answered with message sets, down-converted).
async fn serve_fetch(
    ctx: &ServerCtx,
    req: crate::protocol::fetch::FetchRequest,
    version: i16,
    w: &mut Writer,
) -> Result<(), RequestError> {
    let resp = if version < crate::protocol::fetch::MIN_BATCH_VERSION {
        self::legacy::fetch(ctx, req, version).await?
    } else {
        self::fetch::handle(ctx, req).await?
    };
    resp.encode(w, version);
    Ok(())
}
