//! Broker configuration: defaults, the TOML file, and flags (flags override the file).
//!
//! Topic-level settings (`segment.bytes`, `retention.ms`, `durability`, ...) have broker
//! defaults here and per-topic overrides stored by the NameServer; [`TopicConfigs`] resolves
//! them and validates every value.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// When a produce's data is made durable (fdatasync). Topic config `durability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// acks=-1 is answered only after its data is fdatasync'ed (one group commit per round).
    Always,
    /// Data is fdatasync'ed every `n` milliseconds; acks do not wait for it.
    IntervalMs(u64),
    /// Never fdatasync on the produce path (Kafka's default behaviour); written within
    /// `flush_interval_ms`, synced at segment roll and shutdown.
    Never,
}

impl Durability {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Durability::Always),
            "never" => Ok(Durability::Never),
            _ => match s.strip_prefix("interval:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => Ok(Durability::IntervalMs(ms)),
                _ => Err(format!(
                    "'{s}' is not always, never or interval:<ms> with ms > 0"
                )),
            },
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Always => write!(f, "always"),
            Durability::IntervalMs(ms) => write!(f, "interval:{ms}"),
            Durability::Never => write!(f, "never"),
        }
    }
}

/// Settings read from `--config FILE`. Every field is optional; flags override them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileConfig {
    pub listen: Option<String>,
    pub advertise: Option<String>,
    /// `PLAINTEXT://HOST:PORT,SASL_PLAINTEXT://HOST:PORT` (Kafka's `listeners`).
    pub listeners: Option<String>,
    /// Per listener, what Metadata tells clients (Kafka's `advertised.listeners`).
    pub advertised_listeners: Option<String>,
    /// SASL mechanisms served on SASL listeners.
    pub sasl_mechanisms: Option<Vec<String>>,
    /// Principals (`User:name`) that will bypass ACLs once the authorizer exists.
    pub super_users: Option<Vec<String>>,
    /// KIP-368 session lifetime of SASL connections (0: unlimited).
    pub connections_max_reauth_ms: Option<u64>,
    /// PEM certificate chain of the TLS listeners.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates; set, TLS clients must present a certificate they signed.
    pub tls_client_ca: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<u16>,
    pub auto_create_topics: Option<bool>,
    pub default_partitions: Option<i32>,
    /// Replicas of a topic created with replication factor -1 (default min(3, live nodes)).
    pub default_replication_factor: Option<i16>,
    pub max_request_bytes: Option<usize>,
    pub connections_max_idle_ms: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub request_read_timeout_ms: Option<u64>,
    pub response_write_timeout_ms: Option<u64>,
    /// `HOST:PORT` for `/metrics` and `/health`, or `off`.
    pub metrics_listen: Option<String>,
    pub spin_before_park_us: Option<u64>,
    pub node_id: Option<i32>,
    pub cluster_id: Option<String>,
    pub rpc_listen: Option<String>,
    pub rpc_advertise: Option<String>,
    /// RPC addresses of the seed nodes (the controller voters).
    pub seeds: Option<Vec<String>>,
    pub rack: Option<String>,
    /// Topic config defaults, by Kafka name (`"retention.ms" = "86400000"`).
    #[serde(default)]
    pub topic_defaults: BTreeMap<String, String>,
}

/// A listener's security protocol, by Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityProtocol {
    Plaintext,
    SaslPlaintext,
    Ssl,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslSsl,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
    /// Parse Kafka's name (case-insensitive, as Kafka's clients accept it).
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One Kafka listener: where it accepts, how it authenticates, what Metadata tells clients
/// that came in on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub protocol: SecurityProtocol,
    pub addr: SocketAddr,
    pub advertise_host: String,
    pub advertise_port: u16,
}

impl Listener {
    /// `PROTOCOL://HOST:PORT` of the bound address.
    pub fn to_url(&self) -> String {
        format!("{}://{}", self.protocol, self.addr)
    }
    /// `PROTOCOL://HOST:PORT` of the advertised address.
    pub fn advertised_url(&self) -> String {
        format!(
            "{}://{}",
            self.protocol,
            join_host_port(&self.advertise_host, self.advertise_port)
        )
    }
}

/// SASL mechanisms ringmq serves, in its default order of preference.
pub const SASL_MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

/// Most listeners (one per security protocol).
pub const MAX_LISTENERS: usize = 4;

/// Split `PROTO://HOST:PORT,...` into (protocol, `HOST:PORT`) pairs; an empty host means
/// every interface. Each protocol may appear once.
pub fn parse_listener_list(s: &str) -> Result<Vec<(SecurityProtocol, String)>, String> {
    let mut out: Vec<(SecurityProtocol, String)> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| format!("'{item}' is not PROTOCOL://HOST:PORT"))?;
        let protocol = SecurityProtocol::parse(name)
            .ok_or_else(|| format!("'{name}' is not PLAINTEXT, SASL_PLAINTEXT, SSL or SASL_SSL"))?;
        if out.iter().any(|(p, _)| *p == protocol) {
            return Err(format!("{protocol} is listed twice"));
        }
        let addr = if addr.starts_with(':') {
            format!("0.0.0.0{addr}")
        } else {
            addr.to_string()
        };
        out.push((protocol, addr));
    }
    if out.is_empty() {
        return Err(format!("'{s}' names no listener"));
    }
    Ok(out)
}

/// A user created at start if missing (`RINGMQ_BOOTSTRAP_USER=name:password[:mechanism]`).
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapUser {
    pub name: String,
    pub password: String,
    /// `SCRAM-SHA-512` (default) or `SCRAM-SHA-256`.
    pub mechanism: String,
}

impl fmt::Debug for BootstrapUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapUser({}, ****, {})", self.name, self.mechanism)
    }
}

impl BootstrapUser {
    /// Parse `name:password[:mechanism]`. The password may not contain `:` when a mechanism
    /// follows; a last part that is not a SCRAM mechanism belongs to the password.
    pub fn parse(s: &str) -> Result<BootstrapUser, String> {
        let (name, rest) = s
            .split_once(':')
            .ok_or("expected name:password[:mechanism]")?;
        let (password, mechanism) = match rest.rsplit_once(':') {
            Some((pw, m)) if m.starts_with("SCRAM-") => (pw, m),
            _ => (rest, "SCRAM-SHA-512"),
        };
        if !["SCRAM-SHA-512", "SCRAM-SHA-256"].contains(&mechanism) {
            return Err(format!(
                "mechanism '{mechanism}' is not SCRAM-SHA-512 or SCRAM-SHA-256"
            ));
        }
        if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
            return Err("the user name must be 1 to 256 bytes without control characters".into());
        }
        if password.is_empty() {
            return Err("the password is empty".into());
        }
        Ok(BootstrapUser {
            name: name.into(),
            password: password.into(),
            mechanism: mechanism.into(),
        })
    }
}

/// The effective broker configuration.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// The primary listener's address (the PLAINTEXT listener if there is one, else the
    /// first): what other nodes' clients are told through gossip, the RPC default host.
    pub listen: SocketAddr,
    /// Host and port that Metadata tells clients of the primary listener.
    pub advertise_host: String,
    pub advertise_port: u16,
    /// Every Kafka listener, in the order given; at least one.
    pub listeners: Vec<Listener>,
    /// Mechanisms SASL listeners serve (names from [`SASL_MECHANISMS`]), in preference order.
    pub sasl_mechanisms: Vec<String>,
    /// Principals (`User:name`) that will bypass ACLs (kept for the authorizer step).
    pub super_users: Vec<String>,
    /// KIP-368: a SASL session lasts this long unless the client re-authenticates (0: forever).
    pub connections_max_reauth_ms: u64,
    /// PEM certificate chain the TLS listeners present (read at start).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (unencrypted).
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: clients of TLS listeners must present a certificate signed by a CA of
    /// this PEM file; their principal is `User:<subject CN>`.
    pub tls_client_ca: Option<PathBuf>,
    /// Created at start if it does not exist (`RINGMQ_BOOTSTRAP_USER`).
    pub bootstrap_user: Option<BootstrapUser>,
    pub data_dir: PathBuf,
    pub shards: u16,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    /// Replicas of a topic created with replication factor -1; `None`: min(3, live nodes).
    pub default_replication_factor: Option<i16>,
    /// Largest request frame accepted; bigger frames close the connection.
    pub max_request_bytes: usize,
    /// Bytes of request frames one shard holds in flight (admission control).
    pub inflight_bytes_per_shard: usize,
    /// A connection with no request in flight that sends nothing for this long is closed.
    pub connections_max_idle_ms: u64,
    /// Client connections this node holds at most; more are closed at accept.
    pub max_connections: usize,
    /// Client connections from one address at most; more are closed at accept.
    pub max_connections_per_ip: usize,
    /// A request whose first byte arrived must arrive whole within this (time the broker
    /// spends waiting for its own budget not counted), or the connection is closed.
    pub request_read_timeout_ms: u64,
    /// A response the client takes no byte of for this long closes the connection (and so
    /// gives back what it holds).
    pub response_write_timeout_ms: u64,
    /// Broker-wide defaults for topic configs, validated.
    pub topic_defaults: TopicConfigs,
    /// This node's id (unique in the cluster). Persisted in the data dir at first start.
    pub node_id: i32,
    /// Whether `node_id` was configured; a default id adopts the one the data dir holds.
    pub node_id_set: bool,
    /// The cluster's id. Persisted in the data dir; another cluster's data dir is refused.
    pub cluster_id: String,
    /// Whether `cluster_id` was configured; a default id adopts the one the data dir holds.
    pub cluster_id_set: bool,
    /// Node-to-node traffic (TCP for RPC, UDP for gossip) is accepted here.
    pub rpc_listen: SocketAddr,
    /// Host and port that other nodes dial for RPC and gossip.
    pub rpc_advertise_host: String,
    pub rpc_advertise_port: u16,
    /// `HOST:PORT` RPC addresses of the seed nodes; empty (or only this node) = a cluster of one.
    pub seeds: Vec<String>,
    /// Rack (failure domain) of this node, for placement.
    pub rack: Option<String>,
    /// Where `/metrics` and `/health` are served (shard 0); `None` turns them off.
    pub metrics_listen: Option<SocketAddr>,
    /// How long an idle shard polls its ring before it sleeps in the kernel. Waking a
    /// sleeping core costs tens of µs per request at low rates; polling costs CPU.
    pub spin_before_park_us: u64,
    /// Measurement aid: only this shard accepts connections.
    pub bench_accept_shard: Option<u16>,
    /// Measurement aid: every data partition is owned by this shard.
    pub bench_owner_shard: Option<u16>,
}

pub const DEFAULT_PORT: u16 = 9092;
/// Default RPC (and gossip) port.
pub const DEFAULT_RPC_PORT: u16 = 33145;
/// Default cluster id of a node that is given none and has none persisted.
pub const DEFAULT_CLUSTER_ID: &str = "ringmq-cluster";
/// Most seeds accepted (the controller voters are 1, 3 or 5 of them).
pub const MAX_SEEDS: usize = 64;
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
pub const DEFAULT_SPIN_BEFORE_PARK_US: u64 = 50;
/// Kafka's `connections.max.idle.ms` default (10 minutes).
pub const DEFAULT_CONNECTIONS_MAX_IDLE_MS: u64 = 600_000;
/// Kafka's `max.connections` and `max.connections.per.ip` default: no limit (Int.MaxValue).
pub const DEFAULT_MAX_CONNECTIONS: usize = i32::MAX as usize;
/// Kafka clients' `request.timeout.ms` default: a client has given up on its request by then.
pub const DEFAULT_REQUEST_READ_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_RESPONSE_WRITE_TIMEOUT_MS: u64 = 30_000;
/// Upper bound of `spin_before_park_us`: one second of polling is already a busy core.
pub const MAX_SPIN_BEFORE_PARK_US: u64 = 1_000_000;

impl BrokerConfig {
    /// Defaults for a fresh machine: port 9092, `./ringmq-data`, one shard per CPU.
    pub fn defaults() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        BrokerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            advertise_host: "127.0.0.1".into(),
            advertise_port: DEFAULT_PORT,
            listeners: vec![Listener {
                protocol: SecurityProtocol::Plaintext,
                addr: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
                advertise_host: "127.0.0.1".into(),
                advertise_port: DEFAULT_PORT,
            }],
            sasl_mechanisms: SASL_MECHANISMS.iter().map(|m| m.to_string()).collect(),
            super_users: Vec::new(),
            connections_max_reauth_ms: 0,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            bootstrap_user: None,
            data_dir: PathBuf::from("./ringmq-data"),
            shards: cpus.min(u16::MAX as usize) as u16,
            auto_create_topics: true,
            default_partitions: 1,
            default_replication_factor: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            inflight_bytes_per_shard: 2 * DEFAULT_MAX_REQUEST_BYTES + (16 << 20),
            connections_max_idle_ms: DEFAULT_CONNECTIONS_MAX_IDLE_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS,
            request_read_timeout_ms: DEFAULT_REQUEST_READ_TIMEOUT_MS,
            response_write_timeout_ms: DEFAULT_RESPONSE_WRITE_TIMEOUT_MS,
            topic_defaults: TopicConfigs::default(),
            node_id: 0,
            node_id_set: false,
            cluster_id: DEFAULT_CLUSTER_ID.into(),
            cluster_id_set: false,
            rpc_listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_RPC_PORT)),
            rpc_advertise_host: "127.0.0.1".into(),
            rpc_advertise_port: DEFAULT_RPC_PORT,
            seeds: Vec::new(),
            rack: None,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9644))),
            spin_before_park_us: DEFAULT_SPIN_BEFORE_PARK_US,
            bench_accept_shard: None,
            bench_owner_shard: None,
        }
    }

    /// Apply the listen address and derive the advertised one when none is given: the
    /// listen host unless it is a wildcard, in which case the machine's loopback. The
    /// shorthand for one PLAINTEXT listener.
    pub fn set_listen(&mut self, listen: &str, advertise: Option<&str>) -> Result<(), String> {
        let adv = advertise.map(|a| format!("PLAINTEXT://{a}"));
        self.set_listeners(&format!("PLAINTEXT://{listen}"), adv.as_deref())
            .map_err(|e| format!("--listen: {e}"))
    }

    /// Apply `--listeners` and `--advertised-listeners` (same form; a listener not named
    /// there advertises its own host, or loopback if that is a wildcard).
    pub fn set_listeners(
        &mut self,
        listeners: &str,
        advertised: Option<&str>,
    ) -> Result<(), String> {
        let advertised = match advertised {
            Some(a) => parse_listener_list(a).map_err(|e| format!("advertised listeners: {e}"))?,
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for (protocol, addr_text) in parse_listener_list(listeners)? {
            let addr = addr_text
                .to_socket_addrs()
                .map_err(|e| format!("{protocol}://{addr_text}: {e}"))?
                .next()
                .ok_or_else(|| format!("{protocol}://{addr_text}: no address"))?;
            let (host, port) = match advertised.iter().find(|(p, _)| *p == protocol) {
                Some((_, a)) => split_host_port(a)?,
                None if addr.ip().is_unspecified() => ("127.0.0.1".into(), addr.port()),
                None => (addr.ip().to_string(), addr.port()),
            };
            out.push(Listener {
                protocol,
                addr,
                advertise_host: host,
                advertise_port: port,
            });
        }
        if let Some((p, _)) = advertised
            .iter()
            .find(|(p, _)| !out.iter().any(|l| l.protocol == *p))
        {
            return Err(format!("advertised listener {p} has no listener"));
        }
        let primary = out
            .iter()
            .find(|l| l.protocol == SecurityProtocol::Plaintext)
            .unwrap_or(&out[0]);
        self.listen = primary.addr;
        self.advertise_host = primary.advertise_host.clone();
        self.advertise_port = primary.advertise_port;
        self.listeners = out;
        Ok(())
    }

    /// The listener of `protocol`, if configured.
    pub fn listener(&self, protocol: SecurityProtocol) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.protocol == protocol)
    }

    /// Apply the RPC listen address (default: the Kafka listen host, port 33145) and derive
    /// the advertised one when none is given: the RPC listen host unless it is a wildcard, in
    /// which case the Kafka advertised host.
    pub fn set_rpc_listen(
        &mut self,
        listen: Option<&str>,
        advertise: Option<&str>,
    ) -> Result<(), String> {
        self.rpc_listen = match listen {
            Some(l) => l
                .to_socket_addrs()
                .map_err(|e| format!("--rpc-listen {l}: {e}"))?
                .next()
                .ok_or_else(|| format!("--rpc-listen {l}: no address"))?,
            None => SocketAddr::new(self.listen.ip(), DEFAULT_RPC_PORT),
        };
        let (host, port) = match advertise {
            Some(a) => split_host_port(a).map_err(|e| format!("--rpc-advertise: {e}"))?,
            None if self.rpc_listen.ip().is_unspecified() => {
                (self.advertise_host.clone(), self.rpc_listen.port())
            }
            None => (self.rpc_listen.ip().to_string(), self.rpc_listen.port()),
        };
        self.rpc_advertise_host = host;
        self.rpc_advertise_port = port;
        Ok(())
    }

    /// `HOST:PORT` that other nodes dial for RPC.
    pub fn rpc_advertise(&self) -> String {
        join_host_port(&self.rpc_advertise_host, self.rpc_advertise_port)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.validate_node()?;
        self.validate_security()?;
        if self.shards == 0 {
            return Err("shards: must be at least 1".into());
        }
        if self.default_replication_factor.is_some_and(|rf| rf < 1) {
            return Err("default_replication_factor: must be at least 1".into());
        }
        if !(1..=100_000).contains(&self.default_partitions) {
            return Err("default_partitions: must be between 1 and 100000".into());
        }
        if self.max_request_bytes < 1024 || self.max_request_bytes > (1 << 30) {
            return Err("max_request_bytes: must be between 1 KiB and 1 GiB".into());
        }
        if self.spin_before_park_us > MAX_SPIN_BEFORE_PARK_US {
            return Err(format!(
                "spin_before_park_us: must be at most {MAX_SPIN_BEFORE_PARK_US}"
            ));
        }
        for (name, v) in [
            ("bench-accept-shard", self.bench_accept_shard),
            ("bench-owner-shard", self.bench_owner_shard),
        ] {
            if v.is_some_and(|s| s >= self.shards) {
                return Err(format!(
                    "{name}: must be below the shard count {}",
                    self.shards
                ));
            }
        }
        if self.inflight_bytes_per_shard < self.max_request_bytes {
            return Err("in-flight budget must hold at least one maximal request".into());
        }
        self.validate_connections()
    }

    /// Connection limits and timeouts: each at least 1.
    fn validate_connections(&self) -> Result<(), String> {
        let counts = [
            ("max_connections", self.max_connections as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            ("connections_max_idle_ms", self.connections_max_idle_ms),
            ("request_read_timeout_ms", self.request_read_timeout_ms),
            ("response_write_timeout_ms", self.response_write_timeout_ms),
        ];
        match counts.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("{name}: must be at least 1")),
            None => Ok(()),
        }
    }
}

impl BrokerConfig {
    /// Listeners, SASL mechanisms, super users.
    fn validate_security(&self) -> Result<(), String> {
        if self.listeners.is_empty() || self.listeners.len() > MAX_LISTENERS {
            return Err(format!("listeners: 1 to {MAX_LISTENERS} are needed"));
        }
        self.validate_tls()?;
        for (i, l) in self.listeners.iter().enumerate() {
            if self.listeners[..i]
                .iter()
                .any(|o| o.addr.port() == l.addr.port())
            {
                return Err(format!("listeners: port {} is used twice", l.addr.port()));
            }
            if l.addr.port() == self.rpc_listen.port() {
                return Err(format!(
                    "listeners: port {} is also the RPC port",
                    l.addr.port()
                ));
            }
        }
        if self.sasl_mechanisms.is_empty() && self.listeners.iter().any(|l| l.protocol.is_sasl()) {
            return Err("sasl_mechanisms: a SASL listener needs at least one".into());
        }
        for m in &self.sasl_mechanisms {
            if !SASL_MECHANISMS.contains(&m.as_str()) {
                return Err(format!(
                    "sasl_mechanisms: '{m}' is not one of {}",
                    SASL_MECHANISMS.join(", ")
                ));
            }
        }
        for u in &self.super_users {
            let ok = u
                .strip_prefix("User:")
                .is_some_and(|n| !n.is_empty() && n.len() <= 256);
            if !ok {
                return Err(format!("super_users: '{u}' is not User:<name>"));
            }
        }
        Ok(())
    }

    /// A TLS listener needs a certificate and its key; the TLS files without a TLS listener
    /// would silently do nothing, so they are refused.
    fn validate_tls(&self) -> Result<(), String> {
        let tls = self.listeners.iter().find(|l| l.protocol.is_tls());
        match (tls, &self.tls_cert, &self.tls_key) {
            (Some(l), None, _) | (Some(l), _, None) => Err(format!(
                "listeners: {} needs tls_cert and tls_key (PEM files)",
                l.to_url()
            )),
            (None, Some(_), _) | (None, _, Some(_)) => {
                Err("tls_cert and tls_key need an SSL or SASL_SSL listener".into())
            }
            (None, None, None) if self.tls_client_ca.is_some() => {
                Err("tls_client_ca needs an SSL or SASL_SSL listener".into())
            }
            _ => Ok(()),
        }
    }

    /// Node identity and cluster settings.
    fn validate_node(&self) -> Result<(), String> {
        if self.node_id < 0 {
            return Err(format!("node_id: {} is below 0", self.node_id));
        }
        validate_cluster_id(&self.cluster_id)?;
        if self.seeds.len() > MAX_SEEDS {
            return Err(format!("seeds: at most {MAX_SEEDS} are accepted"));
        }
        for seed in &self.seeds {
            split_host_port(seed).map_err(|e| format!("seeds: {e}"))?;
        }
        if let Some(rack) = &self.rack {
            let ok = (1..=255).contains(&rack.len()) && rack.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(format!(
                    "rack: '{rack}' must be 1 to 255 printable ASCII characters"
                ));
            }
        }
        Ok(())
    }
}

/// A cluster id is 1 to 64 of `[A-Za-z0-9._-]` (it travels in RPC handshakes and files).
pub fn validate_cluster_id(id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cluster_id: '{id}' must be 1 to 64 of A-Z a-z 0-9 . _ -"
        ))
    }
}

/// `host:port`, with brackets around an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Split `HOST:PORT` (the host may be a bracketed IPv6 address).
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' is not HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("'{s}': bad port"))?;
    if host.is_empty() {
        return Err(format!("'{s}': no host"));
    }
    Ok((
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        port,
    ))
}

/// Timestamp type of a topic (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampKind {
    CreateTime,
    LogAppendTime,
}

/// The topic configs ringmq understands, with Kafka's names, defaults and validation.
/// `(name, default, doc)`.
pub const TOPIC_CONFIG_KEYS: &[(&str, &str, &str)] = &[
    (
        "cleanup.policy",
        "delete",
        "delete only; compact is refused until compaction exists",
    ),
    ("segment.bytes", "1073741824", "roll a segment at this size"),
    ("segment.ms", "604800000", "roll a segment after this age"),
    (
        "retention.ms",
        "604800000",
        "delete segments older than this; -1 keeps forever",
    ),
    (
        "retention.bytes",
        "-1",
        "delete oldest segments above this size; -1 = unlimited",
    ),
    (
        "max.message.bytes",
        "1048588",
        "largest record batch accepted",
    ),
    (
        "message.timestamp.type",
        "CreateTime",
        "CreateTime or LogAppendTime",
    ),
    (
        "index.interval.bytes",
        "4096",
        "bytes between sparse offset index entries",
    ),
    (
        "durability",
        "always",
        "always | interval:<ms> | never (fdatasync policy)",
    ),
    (
        "preallocate",
        "false",
        "reserve segment.bytes of disk (fallocate) when a segment is created",
    ),
    (
        "min.insync.replicas",
        "1",
        "accepted for compatibility; single node",
    ),
];

/// Validated topic configuration values (a topic's overrides over the broker defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct TopicConfigs {
    pub values: BTreeMap<String, String>,
}

impl Default for TopicConfigs {
    fn default() -> Self {
        let values = TOPIC_CONFIG_KEYS
            .iter()
            .map(|(k, v, _)| (k.to_string(), v.to_string()))
            .collect();
        TopicConfigs { values }
    }
}

/// A config name or value that was refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}: {}", self.name, self.reason)
    }
}

fn check_i64(name: &str, value: &str, min: i64) -> Result<(), ConfigError> {
    match value.parse::<i64>() {
        Ok(v) if v >= min => Ok(()),
        _ => Err(ConfigError {
            name: name.into(),
            reason: format!("'{value}' is not an integer >= {min}"),
        }),
    }
}

/// Longest topic config value accepted. Every value ringmq knows is a number or a word;
/// the bound keeps a client from storing megabytes in the metadata image (whose strings
/// carry a u16 length).
pub const CONFIG_VALUE_BYTES_MAX: usize = 1024;

/// Validate one topic config name and value.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    let err = |reason: String| {
        Err(ConfigError {
            name: name.into(),
            reason,
        })
    };
    if value.len() > CONFIG_VALUE_BYTES_MAX {
        return err(format!(
            "the value is {} bytes; at most {CONFIG_VALUE_BYTES_MAX} are allowed",
            value.len()
        ));
    }
    match name {
        "cleanup.policy" if value == "delete" => Ok(()),
        "cleanup.policy" => err(format!(
            "'{value}' is not supported: only 'delete' (compaction does not exist yet)"
        )),
        "segment.bytes" => check_i64(name, value, 14 * 1024),
        "segment.ms" => check_i64(name, value, 1),
        "retention.ms" | "retention.bytes" => check_i64(name, value, -1),
        "max.message.bytes" => check_i64(name, value, 0),
        "index.interval.bytes" => check_i64(name, value, 0),
        "min.insync.replicas" => check_i64(name, value, 1),
        "message.timestamp.type" if value == "CreateTime" || value == "LogAppendTime" => Ok(()),
        "message.timestamp.type" => err(format!("'{value}' is not CreateTime or LogAppendTime")),
        "durability" => Durability::parse(value)
            .map(|_| ())
            .map_err(|reason| ConfigError {
                name: name.into(),
                reason,
            }),
        "preallocate" if value == "true" || value == "false" => Ok(()),
        "preallocate" => err(format!("'{value}' is not true or false")),
        _ => err("unknown topic config".into()),
    }
}

impl TopicConfigs {
    /// Apply overrides on top of `self` after validating every one.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfigs, ConfigError> {
        let mut out = self.clone();
        for (k, v) in overrides {
            validate_topic_config(k, v)?;
            out.values.insert(k.to_string(), v.to_string());
        }
        Ok(out)
    }
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }
    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(-1)
    }
    pub fn durability(&self) -> Durability {
        Durability::parse(self.get("durability")).unwrap_or(Durability::Always)
    }
    pub fn timestamp_kind(&self) -> TimestampKind {
        if self.get("message.timestamp.type") == "LogAppendTime" {
            TimestampKind::LogAppendTime
        } else {
            TimestampKind::CreateTime
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_bounded() {
        assert!(validate_topic_config("retention.ms", "86400000").is_ok());
        let long = format!("{}86400000", "0".repeat(CONFIG_VALUE_BYTES_MAX));
        let e = validate_topic_config("retention.ms", &long).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }

    #[test]
    fn durability_parses() {
        assert_eq!(Durability::parse("always"), Ok(Durability::Always));
        assert_eq!(
            Durability::parse("interval:5"),
            Ok(Durability::IntervalMs(5))
        );
        assert!(Durability::parse("interval:0").is_err());
        assert!(Durability::parse("sometimes").is_err());
    }

    #[test]
    fn topic_overrides_are_validated() {
        let d = TopicConfigs::default();
        let t = d.with_overrides([("retention.ms", "1000")]).unwrap();
        assert_eq!(t.get_i64("retention.ms"), 1000);
        assert!(d.with_overrides([("cleanup.policy", "compact")]).is_err());
        assert!(d.with_overrides([("no.such", "1")]).is_err());
        assert!(d.with_overrides([("segment.bytes", "12")]).is_err());
    }

    #[test]
    fn advertise_defaults_from_listen() {
        let mut c = BrokerConfig::defaults();
        c.set_listen("0.0.0.0:9999", None).unwrap();
        assert_eq!(
            (c.advertise_host.as_str(), c.advertise_port),
            ("127.0.0.1", 9999)
        );
        c.set_listen("127.0.0.1:1234", Some("broker.example:19092"))
            .unwrap();
        assert_eq!(
            (c.advertise_host.as_str(), c.advertise_port),
            ("broker.example", 19092)
        );
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].protocol, SecurityProtocol::Plaintext);
    }

    #[test]
    fn listeners_parse_kafka_style() {
        let mut c = BrokerConfig::defaults();
        c.set_listeners(
            "SASL_PLAINTEXT://127.0.0.1:9093, PLAINTEXT://:9092",
            Some("SASL_PLAINTEXT://broker.example:19093"),
        )
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
        let sasl = c.listener(SecurityProtocol::SaslPlaintext).unwrap();
        assert_eq!(
            sasl.advertised_url(),
            "SASL_PLAINTEXT://broker.example:19093"
        );
        let plain = c.listener(SecurityProtocol::Plaintext).unwrap();
        assert_eq!(plain.to_url(), "PLAINTEXT://0.0.0.0:9092");
        assert_eq!(plain.advertised_url(), "PLAINTEXT://127.0.0.1:9092");
        assert_eq!(c.listen.port(), 9092, "PLAINTEXT is the primary listener");
        c.validate().unwrap();
        for bad in [
            "PLAINTEXT://:1,PLAINTEXT://:2",
            "HTTP://:1",
            "127.0.0.1:9092",
            "",
        ] {
            assert!(c.set_listeners(bad, None).is_err(), "{bad}");
        }
        assert!(c
            .set_listeners("PLAINTEXT://:1", Some("SASL_PLAINTEXT://h:2"))
            .is_err());
        c.set_listeners("SASL_SSL://127.0.0.1:9094", None).unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.contains("needs tls_cert and tls_key"), "{e}");
        c.tls_cert = Some("cert.pem".into());
        c.tls_key = Some("key.pem".into());
        c.validate().unwrap();
        c.set_listeners("PLAINTEXT://127.0.0.1:9094", None).unwrap();
        assert!(c.validate().unwrap_err().contains("need an SSL"));
        (c.tls_cert, c.tls_key, c.tls_client_ca) = (None, None, Some("ca.pem".into()));
        assert!(c.validate().unwrap_err().contains("tls_client_ca"));
        c.tls_client_ca = None;
        c.set_listeners("PLAINTEXT://:7000,SASL_PLAINTEXT://127.0.0.1:7000", None)
            .unwrap();
        assert!(c.validate().unwrap_err().contains("used twice"));
        c.set_listeners("SASL_PLAINTEXT://127.0.0.1:7001", None)
            .unwrap();
        c.sasl_mechanisms = vec!["GSSAPI".into()];
        assert!(c.validate().is_err());
        c.sasl_mechanisms = vec!["PLAIN".into()];
        c.super_users = vec!["admin".into()];
        assert!(c.validate().is_err());
        c.super_users = vec!["User:admin".into()];
        c.validate().unwrap();
    }

    #[test]
    fn bootstrap_user_parses_and_hides_the_password() {
        let u = BootstrapUser::parse("admin:s3cr:et").unwrap();
        assert_eq!((u.name.as_str(), u.password.as_str()), ("admin", "s3cr:et"));
        assert_eq!(u.mechanism, "SCRAM-SHA-512");
        let u = BootstrapUser::parse("admin:pw:SCRAM-SHA-256").unwrap();
        assert_eq!(
            (u.password.as_str(), u.mechanism.as_str()),
            ("pw", "SCRAM-SHA-256")
        );
        assert!(!format!("{u:?}").contains("pw"));
        assert!(BootstrapUser::parse("admin").is_err());
        assert!(BootstrapUser::parse("admin:").is_err());
        assert!(BootstrapUser::parse(":pw").is_err());
        assert!(BootstrapUser::parse("a:pw:SCRAM-SHA-1").is_err());
    }
}
