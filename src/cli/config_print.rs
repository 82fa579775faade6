//! The broker's settings in layers — default < TOML file < `RINGMQ_*` environment < flag — and
//! `ringmq config print`, which shows the effective value of each and the layer it came from.
//!
//! `ringmq serve` and `ringmq config print` take the same [`ServeArgs`] and resolve them with
//! the same [`resolve`], so what `config print` shows is what `serve` would run with. The
//! environment is passed in as a function, so tests need not touch the process environment.
//!
//! Environment names: `RINGMQ_` + the setting in upper snake case (`RINGMQ_DATA_DIR`,
//! `RINGMQ_SHARDS`, ...), `RINGMQ_CONFIG` for the file, and per topic default
//! `RINGMQ_TOPIC_` + the Kafka name with `.` as `_` (`RINGMQ_TOPIC_RETENTION_MS`). A value that
//! does not parse stops start-up naming the variable and the reason.

use super::output::{Json, Table};
use crate::config::{BrokerConfig, FileConfig, TopicConfigs};
use clap::Parser;
use std::path::PathBuf;
use std::str::FromStr;

/// Flags of `ringmq serve` (and of `ringmq config print`).
#[derive(Parser, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to accept Kafka clients on.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address Metadata tells clients (default: the --listen address; loopback if wildcard).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Kafka listeners, e.g. `PLAINTEXT://0.0.0.0:9092,SASL_PLAINTEXT://0.0.0.0:9093`
    /// (instead of --listen); SSL and SASL_SSL need --tls-cert and --tls-key.
    #[arg(long, value_name = "PROTO://HOST:PORT,...")]
    pub listeners: Option<String>,
    /// What Metadata tells clients per listener (same form; default: each listener's host,
    /// loopback if wildcard).
    #[arg(long, value_name = "PROTO://HOST:PORT,...")]
    pub advertised_listeners: Option<String>,
    /// SASL mechanisms served on SASL listeners.
    #[arg(long, value_name = "MECHANISM,...", value_delimiter = ',')]
    pub sasl_mechanisms: Option<Vec<String>>,
    /// Principals that bypass ACLs once the authorizer exists, e.g. `User:admin`.
    #[arg(long, value_name = "User:NAME,...", value_delimiter = ',')]
    pub super_users: Option<Vec<String>>,
    /// KIP-368: SASL sessions last this long unless re-authenticated (0: no limit).
    #[arg(long, value_name = "MS")]
    pub connections_max_reauth_ms: Option<u64>,
    /// PEM certificate chain of the SSL and SASL_SSL listeners.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (unencrypted).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: PEM CA certificates that must have signed a TLS client's certificate (its
    /// principal is User:<subject CN>).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Directory for partition logs and metadata.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Number of shards (glommio executors, one per CPU).
    #[arg(long, value_name = "N")]
    pub shards: Option<u16>,
    /// TOML configuration file; environment and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Create unknown topics on Metadata requests that allow it.
    #[arg(long, value_name = "BOOL")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic.
    #[arg(long, value_name = "N")]
    pub default_partitions: Option<i32>,
    /// Replicas of a topic created with replication factor -1 (default: min(3, live nodes)).
    #[arg(long, value_name = "N")]
    pub default_replication_factor: Option<i16>,
    /// Largest request frame accepted, in bytes.
    #[arg(long, value_name = "N")]
    pub max_request_bytes: Option<usize>,
    /// Close a connection with no request in flight that sends nothing for this long
    /// (Kafka's connections.max.idle.ms; default 600000).
    #[arg(long, value_name = "MILLISECONDS")]
    pub connections_max_idle_ms: Option<u64>,
    /// Client connections this node accepts at most; more are closed at accept.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Client connections from one IP address at most; more are closed at accept.
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// A request whose first byte arrived must arrive whole within this (default 30000).
    #[arg(long, value_name = "MILLISECONDS")]
    pub request_read_timeout_ms: Option<u64>,
    /// Close a connection whose client takes no byte of its response for this long
    /// (default 30000).
    #[arg(long, value_name = "MILLISECONDS")]
    pub response_write_timeout_ms: Option<u64>,
    /// Broker default for a topic config, e.g. `--topic-default durability=never` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub topic_default: Vec<String>,
    /// Where /metrics and /health are served, or `off`.
    #[arg(long, value_name = "HOST:PORT|off")]
    pub metrics_listen: Option<String>,
    /// Microseconds an idle shard polls before it sleeps (lower latency at low rates,
    /// more CPU when idle).
    #[arg(long, value_name = "MICROSECONDS")]
    pub spin_before_park_us: Option<u64>,
    /// This node's id (integer >= 0, unique in the cluster; persisted in the data dir).
    #[arg(long, value_name = "N")]
    pub node_id: Option<i32>,
    /// The cluster's id (persisted in the data dir; another cluster's data dir is refused).
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<String>,
    /// Address for node-to-node traffic (default: the --listen host, port 33145).
    #[arg(long, value_name = "HOST:PORT")]
    pub rpc_listen: Option<String>,
    /// RPC address other nodes dial (default: the --rpc-listen address; the --advertise host
    /// if that is a wildcard).
    #[arg(long, value_name = "HOST:PORT")]
    pub rpc_advertise: Option<String>,
    /// RPC addresses of the seed nodes, comma-separated (the controller voters: 1, 3 or 5).
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// This node's rack (placement spreads replicas across racks).
    #[arg(long, value_name = "NAME")]
    pub rack: Option<String>,
    /// Measurement aid: only shard N accepts connections.
    #[arg(long, value_name = "N", hide = true)]
    pub bench_accept_shard: Option<u16>,
    /// Measurement aid: shard N owns every data partition (measures the router's cost).
    #[arg(long, value_name = "N", hide = true)]
    pub bench_owner_shard: Option<u16>,
}

/// Where a setting's value came from, lowest layer first (the order is the precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        }
    }
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub source: Source,
}

/// The environment, as a lookup (`|name| std::env::var(name).ok()` in the binary).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The effective configuration and the provenance of every setting.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: BrokerConfig,
    pub settings: Vec<Setting>,
}

/// `RINGMQ_TOPIC_RETENTION_MS` for `retention.ms`.
pub fn topic_env_name(key: &str) -> String {
    format!(
        "RINGMQ_TOPIC_{}",
        key.replace(['.', '-'], "_").to_uppercase()
    )
}

fn from_env<T: FromStr>(env: Env<'_>, var: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    match env(var) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("{var}='{v}': {e}")),
    }
}

/// The first present of flag, env and file, with its source.
fn layer<T>(flag: Option<T>, env: Option<T>, file: Option<T>) -> Option<(T, Source)> {
    flag.map(|v| (v, Source::Flag))
        .or(env.map(|v| (v, Source::Env)))
        .or(file.map(|v| (v, Source::File)))
}

fn read_file(args: &ServeArgs, env: Env<'_>) -> Result<(FileConfig, Option<PathBuf>), String> {
    let path = args
        .config
        .clone()
        .or(env("RINGMQ_CONFIG").map(PathBuf::from));
    let Some(path) = path else {
        return Ok((FileConfig::default(), None));
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file =
        toml::from_str::<FileConfig>(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((file, Some(path)))
}

/// Resolve `args` over the environment, the file and the defaults, and validate the result.
pub fn resolve(args: &ServeArgs, env: Env<'_>) -> Result<Resolved, String> {
    let (file, path) = read_file(args, env)?;
    let mut c = BrokerConfig::defaults();
    let mut settings = Vec::new();
    if let Some(p) = &path {
        let source = if args.config.is_some() {
            Source::Flag
        } else {
            Source::Env
        };
        settings.push(setting("config", p.display().to_string(), source));
    }
    resolve_network(args, env, &file, &mut c, &mut settings)?;
    resolve_security(args, env, &file, &mut c, &mut settings)?;
    resolve_tls(args, env, &file, &mut c, &mut settings);
    resolve_node(args, env, &file, &mut c, &mut settings)?;
    resolve_replication(args, env, &file, &mut c, &mut settings)?;
    resolve_data_dir(args, env, &file, &mut c, &mut settings)?;
    let shards = layer(args.shards, from_env(env, "RINGMQ_SHARDS")?, file.shards);
    apply(&mut settings, "shards", shards, &mut c.shards);
    let auto = from_env(env, "RINGMQ_AUTO_CREATE_TOPICS")?;
    let auto = layer(args.auto_create_topics, auto, file.auto_create_topics);
    apply(
        &mut settings,
        "auto_create_topics",
        auto,
        &mut c.auto_create_topics,
    );
    let parts = from_env(env, "RINGMQ_DEFAULT_PARTITIONS")?;
    let parts = layer(args.default_partitions, parts, file.default_partitions);
    apply(
        &mut settings,
        "default_partitions",
        parts,
        &mut c.default_partitions,
    );
    let max = from_env(env, "RINGMQ_MAX_REQUEST_BYTES")?;
    let max = layer(args.max_request_bytes, max, file.max_request_bytes);
    apply(
        &mut settings,
        "max_request_bytes",
        max,
        &mut c.max_request_bytes,
    );
    c.inflight_bytes_per_shard = c.inflight_bytes_per_shard.max(2 * c.max_request_bytes);
    let spin = from_env(env, "RINGMQ_SPIN_BEFORE_PARK_US")?;
    let spin = layer(args.spin_before_park_us, spin, file.spin_before_park_us);
    apply(
        &mut settings,
        "spin_before_park_us",
        spin,
        &mut c.spin_before_park_us,
    );
    resolve_connections(args, env, &file, &mut c, &mut settings)?;
    resolve_metrics(args, env, &file, &mut c, &mut settings)?;
    let topic_settings = resolve_topic_defaults(args, env, file.topic_defaults, &mut c)?;
    settings.extend(topic_settings);
    c.bench_accept_shard = args.bench_accept_shard;
    c.bench_owner_shard = args.bench_owner_shard;
    c.validate()?;
    Ok(Resolved {
        config: c,
        settings,
    })
}

fn resolve_data_dir(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) -> Result<(), String> {
    let data_dir = layer(
        args.data_dir.clone(),
        from_env(env, "RINGMQ_DATA_DIR")?,
        file.data_dir.clone(),
    );
    let source = data_dir.map_or(Source::Default, |(d, s)| {
        c.data_dir = d;
        s
    });
    settings.push(setting(
        "data_dir",
        c.data_dir.display().to_string(),
        source,
    ));
    Ok(())
}

/// The TLS files (`tls_cert`, `tls_key`, `tls_client_ca`): paths, shown as they are (the
/// key's path is not a secret; its content is never read here).
fn resolve_tls(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) {
    let files = [
        (&args.tls_cert, "tls_cert", &file.tls_cert, &mut c.tls_cert),
        (&args.tls_key, "tls_key", &file.tls_key, &mut c.tls_key),
        (
            &args.tls_client_ca,
            "tls_client_ca",
            &file.tls_client_ca,
            &mut c.tls_client_ca,
        ),
    ];
    for (flag, name, in_file, target) in files {
        let var = format!("RINGMQ_{}", name.to_uppercase());
        let from_env = env(&var).map(PathBuf::from);
        let (value, source) = match layer(flag.clone(), from_env, in_file.clone()) {
            Some((path, source)) => (Some(path), source),
            None => (None, Source::Default),
        };
        let shown = value
            .as_ref()
            .map_or("-".into(), |p| p.display().to_string());
        *target = value;
        settings.push(setting(name, shown, source));
    }
}

fn setting(name: &str, value: String, source: Source) -> Setting {
    Setting {
        name: name.to_string(),
        value,
        source,
    }
}

/// Set `target` to the chosen layer's value (if any) and record the setting.
fn apply<T: Copy + ToString>(
    settings: &mut Vec<Setting>,
    name: &str,
    chosen: Option<(T, Source)>,
    target: &mut T,
) {
    let source = chosen.map_or(Source::Default, |(v, s)| {
        *target = v;
        s
    });
    settings.push(setting(name, target.to_string(), source));
}

/// Connection limits and timeouts.
fn resolve_connections(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) -> Result<(), String> {
    let ms: [(&str, Option<u64>, Option<u64>, &mut u64); 3] = [
        (
            "connections_max_idle_ms",
            args.connections_max_idle_ms,
            file.connections_max_idle_ms,
            &mut c.connections_max_idle_ms,
        ),
        (
            "request_read_timeout_ms",
            args.request_read_timeout_ms,
            file.request_read_timeout_ms,
            &mut c.request_read_timeout_ms,
        ),
        (
            "response_write_timeout_ms",
            args.response_write_timeout_ms,
            file.response_write_timeout_ms,
            &mut c.response_write_timeout_ms,
        ),
    ];
    for (name, flag, file, target) in ms {
        let env = from_env(env, &format!("RINGMQ_{}", name.to_uppercase()))?;
        apply(settings, name, layer(flag, env, file), target);
    }
    let counts: [(&str, Option<usize>, Option<usize>, &mut usize); 2] = [
        (
            "max_connections",
            args.max_connections,
            file.max_connections,
            &mut c.max_connections,
        ),
        (
            "max_connections_per_ip",
            args.max_connections_per_ip,
            file.max_connections_per_ip,
            &mut c.max_connections_per_ip,
        ),
    ];
    for (name, flag, file, target) in counts {
        let env = from_env(env, &format!("RINGMQ_{}", name.to_uppercase()))?;
        apply(settings, name, layer(flag, env, file), target);
    }
    Ok(())
}

/// `metrics_listen`: an address, or `off` for no metrics endpoint.
fn resolve_metrics(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) -> Result<(), String> {
    let chosen = layer(
        args.metrics_listen.clone(),
        env("RINGMQ_METRICS_LISTEN"),
        file.metrics_listen.clone(),
    );
    let source = match &chosen {
        None => Source::Default,
        Some((text, source)) => {
            let name = match source {
                Source::Env => "RINGMQ_METRICS_LISTEN",
                Source::File => "metrics_listen (file)",
                _ => "--metrics-listen",
            };
            c.metrics_listen = match text.trim() {
                "off" => None,
                a => Some(a.parse().map_err(|e| format!("{name} {a}: {e}"))?),
            };
            *source
        }
    };
    let value = c.metrics_listen.map_or("off".into(), |a| a.to_string());
    settings.push(setting("metrics_listen", value, source));
    Ok(())
}

/// `listen`/`advertise` (one PLAINTEXT listener) or `listeners`/`advertised_listeners`.
/// Both forms in the same layer are refused; otherwise the higher layer wins.
fn resolve_network(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) -> Result<(), String> {
    let listen = layer(
        args.listen.clone(),
        env("RINGMQ_LISTEN"),
        file.listen.clone(),
    );
    let advertise = layer(
        args.advertise.clone(),
        env("RINGMQ_ADVERTISE"),
        file.advertise.clone(),
    );
    let listeners = layer(
        args.listeners.clone(),
        env("RINGMQ_LISTENERS"),
        file.listeners.clone(),
    );
    let advertised = layer(
        args.advertised_listeners.clone(),
        env("RINGMQ_ADVERTISED_LISTENERS"),
        file.advertised_listeners.clone(),
    );
    let source = |l: &Option<(String, Source)>| l.as_ref().map_or(Source::Default, |(_, s)| *s);
    let use_list = match (&listen, &listeners) {
        (Some((_, a)), Some((_, b))) if a == b => {
            return Err(format!(
                "listen and listeners are both set ({}): give one",
                a.as_str()
            ))
        }
        (Some((_, a)), Some((_, b))) => b > a,
        (_, l) => l.is_some(),
    };
    if use_list {
        if advertise.is_some() {
            return Err(
                "advertise goes with listen; with listeners use advertised_listeners".into(),
            );
        }
        let text = &listeners.as_ref().expect("chosen").0;
        c.set_listeners(text, advertised.as_ref().map(|(v, _)| v.as_str()))
            .map_err(|e| format!("listeners: {e}"))?;
    } else {
        let listen_text = listen
            .as_ref()
            .map_or_else(|| c.listen.to_string(), |(v, _)| v.clone());
        c.set_listen(&listen_text, advertise.as_ref().map(|(v, _)| v.as_str()))?;
    }
    let (ls, adv_src) = match use_list {
        true => (source(&listeners), source(&advertised)),
        false => (source(&listen), source(&advertise)),
    };
    settings.push(setting("listen", c.listen.to_string(), ls));
    let adv = format!("{}:{}", c.advertise_host, c.advertise_port);
    settings.push(setting("advertise", adv, adv_src));
    let urls = |f: fn(&crate::config::Listener) -> String| {
        c.listeners.iter().map(f).collect::<Vec<_>>().join(",")
    };
    settings.push(setting("listeners", urls(|l| l.to_url()), ls));
    let advertised_urls = urls(|l| l.advertised_url());
    settings.push(setting("advertised_listeners", advertised_urls, adv_src));
    Ok(())
}

/// SASL mechanisms, super users, the session lifetime, and the bootstrap user (env only:
/// it holds a password; shown masked).
fn resolve_security(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) -> Result<(), String> {
    let list = |v: Option<String>| v.map(|v| split_list(&v));
    let mechs = layer(
        args.sasl_mechanisms.clone(),
        list(env("RINGMQ_SASL_MECHANISMS")),
        file.sasl_mechanisms.clone(),
    );
    let source = mechs.map_or(Source::Default, |(v, s)| {
        c.sasl_mechanisms = v.into_iter().filter(|m| !m.is_empty()).collect();
        s
    });
    settings.push(setting(
        "sasl_mechanisms",
        c.sasl_mechanisms.join(","),
        source,
    ));
    let supers = layer(
        args.super_users.clone(),
        list(env("RINGMQ_SUPER_USERS")),
        file.super_users.clone(),
    );
    let source = supers.map_or(Source::Default, |(v, s)| {
        c.super_users = v.into_iter().filter(|u| !u.is_empty()).collect();
        s
    });
    let value = if c.super_users.is_empty() {
        "-".into()
    } else {
        c.super_users.join(",")
    };
    settings.push(setting("super_users", value, source));
    let reauth = from_env(env, "RINGMQ_CONNECTIONS_MAX_REAUTH_MS")?;
    let reauth = layer(
        args.connections_max_reauth_ms,
        reauth,
        file.connections_max_reauth_ms,
    );
    apply(
        settings,
        "connections_max_reauth_ms",
        reauth,
        &mut c.connections_max_reauth_ms,
    );
    let (value, source) = match env("RINGMQ_BOOTSTRAP_USER") {
        Some(v) => {
            let u = crate::config::BootstrapUser::parse(&v)
                .map_err(|e| format!("RINGMQ_BOOTSTRAP_USER: {e}"))?;
            let shown = format!("{}:****:{}", u.name, u.mechanism);
            c.bootstrap_user = Some(u);
            (shown, Source::Env)
        }
        None => ("-".into(), Source::Default),
    };
    settings.push(setting("bootstrap_user", value, source));
    Ok(())
}

/// Node identity and cluster membership: node_id, cluster_id, rpc_listen, rpc_advertise,
/// seeds, rack. Runs after [`resolve_network`] (the RPC defaults derive from the listen host).
fn resolve_node(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) -> Result<(), String> {
    let node = layer(args.node_id, from_env(env, "RINGMQ_NODE_ID")?, file.node_id);
    c.node_id_set = node.is_some();
    apply(settings, "node_id", node, &mut c.node_id);
    let cluster = layer(
        args.cluster_id.clone(),
        env("RINGMQ_CLUSTER_ID"),
        file.cluster_id.clone(),
    );
    c.cluster_id_set = cluster.is_some();
    let source = cluster.map_or(Source::Default, |(v, s)| {
        c.cluster_id = v;
        s
    });
    settings.push(setting("cluster_id", c.cluster_id.clone(), source));
    let listen = layer(
        args.rpc_listen.clone(),
        env("RINGMQ_RPC_LISTEN"),
        file.rpc_listen.clone(),
    );
    let advertise = layer(
        args.rpc_advertise.clone(),
        env("RINGMQ_RPC_ADVERTISE"),
        file.rpc_advertise.clone(),
    );
    c.set_rpc_listen(
        listen.as_ref().map(|(v, _)| v.as_str()),
        advertise.as_ref().map(|(v, _)| v.as_str()),
    )?;
    let source = |l: &Option<(String, Source)>| l.as_ref().map_or(Source::Default, |(_, s)| *s);
    settings.push(setting(
        "rpc_listen",
        c.rpc_listen.to_string(),
        source(&listen),
    ));
    settings.push(setting(
        "rpc_advertise",
        c.rpc_advertise(),
        source(&advertise),
    ));
    let env_seeds = env("RINGMQ_SEEDS").map(|v| split_list(&v));
    let seeds = layer(args.seeds.clone(), env_seeds, file.seeds.clone());
    let source = seeds.map_or(Source::Default, |(v, s)| {
        c.seeds = v
            .iter()
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect();
        s
    });
    settings.push(setting("seeds", c.seeds.join(","), source));
    let rack = layer(args.rack.clone(), env("RINGMQ_RACK"), file.rack.clone());
    let source = rack.map_or(Source::Default, |(v, s)| {
        c.rack = Some(v);
        s
    });
    let value = c.rack.clone().unwrap_or_else(|| "-".into());
    settings.push(setting("rack", value, source));
    Ok(())
}

/// `default_replication_factor`: a number, or `-` for min(3, live nodes).
fn resolve_replication(
    args: &ServeArgs,
    env: Env<'_>,
    file: &FileConfig,
    c: &mut BrokerConfig,
    settings: &mut Vec<Setting>,
) -> Result<(), String> {
    let env_rf = from_env(env, "RINGMQ_DEFAULT_REPLICATION_FACTOR")?;
    let rf = layer(
        args.default_replication_factor,
        env_rf,
        file.default_replication_factor,
    );
    let source = rf.map_or(Source::Default, |(v, s)| {
        c.default_replication_factor = Some(v);
        s
    });
    let value = c
        .default_replication_factor
        .map_or_else(|| "-".into(), |rf| rf.to_string());
    settings.push(setting("default_replication_factor", value, source));
    Ok(())
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).collect()
}

fn resolve_topic_defaults(
    args: &ServeArgs,
    env: Env<'_>,
    file: std::collections::BTreeMap<String, String>,
    c: &mut BrokerConfig,
) -> Result<Vec<Setting>, String> {
    let mut chosen: Vec<(String, String, Source)> = Vec::new();
    let mut set = |k: &str, v: &str, source: Source| {
        chosen.retain(|(name, _, _)| name != k);
        chosen.push((k.to_string(), v.to_string(), source));
    };
    for (k, v) in &file {
        set(k, v, Source::File);
    }
    for key in TopicConfigs::default().values.keys() {
        if let Some(v) = env(&topic_env_name(key)) {
            set(key, &v, Source::Env);
        }
    }
    for kv in &args.topic_default {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--topic-default {kv}: expected KEY=VALUE"))?;
        set(k, v, Source::Flag);
    }
    c.topic_defaults = c
        .topic_defaults
        .with_overrides(chosen.iter().map(|(k, v, _)| (k.as_str(), v.as_str())))
        .map_err(|e| match chosen.iter().find(|(k, _, _)| *k == e.name) {
            Some((k, _, Source::Env)) => format!("{}: {e}", topic_env_name(k)),
            _ => e.to_string(),
        })?;
    Ok(c.topic_defaults
        .values
        .iter()
        .map(|(k, v)| Setting {
            name: format!("topic.{k}"),
            value: v.clone(),
            source: chosen
                .iter()
                .find(|(name, _, _)| name == k)
                .map_or(Source::Default, |(_, _, s)| *s),
        })
        .collect())
}

/// `ringmq config ...`
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ConfigCommand {
    /// Show the settings `ringmq serve` would run with, and where each came from.
    Print(ConfigPrintArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ConfigPrintArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `ringmq config print` against the process environment.
pub fn print(a: &ConfigPrintArgs) -> Result<(), String> {
    let resolved = resolve(&a.serve, &|k| std::env::var(k).ok())?;
    let value = Json::Obj(
        resolved
            .settings
            .iter()
            .map(|s| {
                let entry = Json::obj([
                    ("value", Json::str(&s.value)),
                    ("source", Json::str(s.source.as_str())),
                ]);
                (s.name.clone(), entry)
            })
            .collect(),
    );
    super::emit(a.json, &value, || {
        let mut t = Table::new(&["SETTING", "VALUE", "SOURCE"]);
        for s in &resolved.settings {
            t.row(vec![
                s.name.clone(),
                s.value.clone(),
                s.source.as_str().into(),
            ]);
        }
        t.render()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn resolve_with(args: &[&str], env: &[(&str, &str)]) -> Result<Resolved, String> {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        let args = ServeArgs::try_parse_from(argv).map_err(|e| e.to_string())?;
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(&args, &move |k| env.get(k).cloned())
    }

    fn source_of(r: &Resolved, name: &str) -> (String, Source) {
        let s = r.settings.iter().find(|s| s.name == name).expect("setting");
        (s.value.clone(), s.source)
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = std::env::temp_dir().join(format!("ringmq-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ringmq.toml");
        std::fs::write(
            &file,
            "shards = 3\ndefault_partitions = 7\nmax_request_bytes = 2000000\n[topic_defaults]\n\"retention.ms\" = \"1000\"\n\"segment.ms\" = \"5000\"\n",
        )
        .unwrap();
        let path = file.to_string_lossy().into_owned();
        let env = [
            ("RINGMQ_CONFIG", path.as_str()),
            ("RINGMQ_SHARDS", "2"),
            ("RINGMQ_DEFAULT_PARTITIONS", "5"),
            ("RINGMQ_TOPIC_RETENTION_MS", "2000"),
        ];
        let r = resolve_with(
            &["--shards", "1", "--topic-default", "segment.ms=9000"],
            &env,
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.config.shards, 1);
        assert_eq!(source_of(&r, "shards"), ("1".into(), Source::Flag));
        assert_eq!(
            source_of(&r, "default_partitions"),
            ("5".into(), Source::Env)
        );
        assert_eq!(
            source_of(&r, "max_request_bytes"),
            ("2000000".into(), Source::File)
        );
        assert_eq!(
            source_of(&r, "auto_create_topics"),
            ("true".into(), Source::Default)
        );
        assert_eq!(
            source_of(&r, "topic.retention.ms"),
            ("2000".into(), Source::Env)
        );
        assert_eq!(
            source_of(&r, "topic.segment.ms"),
            ("9000".into(), Source::Flag)
        );
        assert_eq!(source_of(&r, "topic.cleanup.policy").1, Source::Default);
        assert_eq!(source_of(&r, "config"), (path, Source::Env));
        assert_eq!(r.config.topic_defaults.get("retention.ms"), "2000");
    }

    #[test]
    fn spin_before_park_is_a_setting_with_a_bound() {
        let r = resolve_with(&[], &[]).unwrap();
        assert_eq!(
            source_of(&r, "spin_before_park_us"),
            ("50".into(), Source::Default)
        );
        let r = resolve_with(&[], &[("RINGMQ_SPIN_BEFORE_PARK_US", "0")]).unwrap();
        assert_eq!(r.config.spin_before_park_us, 0);
        let r = resolve_with(&["--spin-before-park-us", "800"], &[]).unwrap();
        assert_eq!(
            source_of(&r, "spin_before_park_us"),
            ("800".into(), Source::Flag)
        );
        let e = resolve_with(&["--spin-before-park-us", "2000000"], &[]).unwrap_err();
        assert!(e.contains("spin_before_park_us"), "{e}");
    }

    #[test]
    fn connection_limits_and_timeouts_are_settings() {
        let r = resolve_with(&[], &[]).unwrap();
        assert_eq!(
            source_of(&r, "connections_max_idle_ms"),
            ("600000".into(), Source::Default)
        );
        assert_eq!(
            source_of(&r, "max_connections"),
            ("2147483647".into(), Source::Default)
        );
        let r = resolve_with(
            &[
                "--max-connections-per-ip",
                "7",
                "--response-write-timeout-ms",
                "900",
            ],
            &[
                ("RINGMQ_CONNECTIONS_MAX_IDLE_MS", "1000"),
                ("RINGMQ_MAX_CONNECTIONS", "10"),
                ("RINGMQ_REQUEST_READ_TIMEOUT_MS", "500"),
            ],
        )
        .unwrap();
        let c = &r.config;
        assert_eq!(
            (
                c.connections_max_idle_ms,
                c.max_connections,
                c.max_connections_per_ip
            ),
            (1000, 10, 7)
        );
        assert_eq!(
            (c.request_read_timeout_ms, c.response_write_timeout_ms),
            (500, 900)
        );
        assert_eq!(
            source_of(&r, "max_connections_per_ip"),
            ("7".into(), Source::Flag)
        );
        assert_eq!(
            source_of(&r, "request_read_timeout_ms"),
            ("500".into(), Source::Env)
        );
        let e = resolve_with(&["--max-connections", "0"], &[]).unwrap_err();
        assert!(e.contains("max_connections"), "{e}");
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let e = resolve_with(&[], &[("RINGMQ_SHARDS", "many")]).unwrap_err();
        assert!(e.starts_with("RINGMQ_SHARDS='many'"), "{e}");
        let e = resolve_with(&[], &[("RINGMQ_TOPIC_RETENTION_MS", "soon")]).unwrap_err();
        assert!(
            e.starts_with("RINGMQ_TOPIC_RETENTION_MS: config retention.ms"),
            "{e}"
        );
        let e = resolve_with(&[], &[("RINGMQ_AUTO_CREATE_TOPICS", "yes")]).unwrap_err();
        assert!(e.contains("RINGMQ_AUTO_CREATE_TOPICS"), "{e}");
        let e = resolve_with(&["--topic-default", "x"], &[]).unwrap_err();
        assert!(e.contains("expected KEY=VALUE"), "{e}");
        assert_eq!(
            topic_env_name("message.timestamp.type"),
            "RINGMQ_TOPIC_MESSAGE_TIMESTAMP_TYPE"
        );
    }

    #[test]
    fn metrics_listen_takes_an_address_or_off() {
        let r = resolve_with(&[], &[]).unwrap();
        assert_eq!(
            source_of(&r, "metrics_listen"),
            ("127.0.0.1:9644".into(), Source::Default)
        );
        let r = resolve_with(&[], &[("RINGMQ_METRICS_LISTEN", "off")]).unwrap();
        assert_eq!(r.config.metrics_listen, None);
        assert_eq!(source_of(&r, "metrics_listen"), ("off".into(), Source::Env));
        let r = resolve_with(
            &["--metrics-listen", "0.0.0.0:9900"],
            &[("RINGMQ_METRICS_LISTEN", "off")],
        )
        .unwrap();
        assert_eq!(
            source_of(&r, "metrics_listen"),
            ("0.0.0.0:9900".into(), Source::Flag)
        );
        let e = resolve_with(&[], &[("RINGMQ_METRICS_LISTEN", "nowhere")]).unwrap_err();
        assert!(e.starts_with("RINGMQ_METRICS_LISTEN nowhere"), "{e}");
    }

    #[test]
    fn node_settings_resolve_and_derive_the_rpc_address() {
        let r = resolve_with(&["--listen", "10.1.2.3:9092"], &[]).unwrap();
        assert_eq!(source_of(&r, "node_id"), ("0".into(), Source::Default));
        assert!(!r.config.node_id_set && !r.config.cluster_id_set);
        assert_eq!(source_of(&r, "rpc_listen").0, "10.1.2.3:33145");
        assert_eq!(source_of(&r, "rpc_advertise").0, "10.1.2.3:33145");
        let r = resolve_with(
            &[
                "--node-id",
                "4",
                "--seeds",
                "a:1, b:2",
                "--rpc-listen",
                "0.0.0.0:4000",
            ],
            &[
                ("RINGMQ_RACK", "r1"),
                ("RINGMQ_CLUSTER_ID", "prod-1"),
                ("RINGMQ_ADVERTISE", "node4.example:9092"),
            ],
        )
        .unwrap();
        assert_eq!((r.config.node_id, r.config.node_id_set), (4, true));
        assert_eq!(r.config.seeds, vec!["a:1".to_string(), "b:2".to_string()]);
        assert_eq!(source_of(&r, "seeds"), ("a:1,b:2".into(), Source::Flag));
        assert_eq!(source_of(&r, "rack"), ("r1".into(), Source::Env));
        assert_eq!(source_of(&r, "cluster_id"), ("prod-1".into(), Source::Env));
        assert_eq!(r.config.rpc_advertise(), "node4.example:4000");
        let r = resolve_with(&[], &[("RINGMQ_SEEDS", "x:1,y:2,z:3")]).unwrap();
        assert_eq!(r.config.seeds.len(), 3);
        let e = resolve_with(&["--node-id=-1"], &[]).unwrap_err();
        assert!(e.contains("node_id"), "{e}");
        let e = resolve_with(&["--seeds", "nohost"], &[]).unwrap_err();
        assert!(e.starts_with("seeds:"), "{e}");
        let e = resolve_with(&["--cluster-id", "a b"], &[]).unwrap_err();
        assert!(e.starts_with("cluster_id:"), "{e}");
        let e = resolve_with(&[], &[("RINGMQ_NODE_ID", "x")]).unwrap_err();
        assert!(e.starts_with("RINGMQ_NODE_ID='x'"), "{e}");
    }

    #[test]
    fn default_replication_factor_resolves() {
        let r = resolve_with(&[], &[]).unwrap();
        assert_eq!(r.config.default_replication_factor, None);
        assert_eq!(
            source_of(&r, "default_replication_factor"),
            ("-".into(), Source::Default)
        );
        let env = [("RINGMQ_DEFAULT_REPLICATION_FACTOR", "2")];
        let r = resolve_with(&[], &env).unwrap();
        assert_eq!(r.config.default_replication_factor, Some(2));
        let r = resolve_with(&["--default-replication-factor", "3"], &env).unwrap();
        assert_eq!(
            source_of(&r, "default_replication_factor"),
            ("3".into(), Source::Flag)
        );
        assert!(resolve_with(&["--default-replication-factor", "0"], &[]).is_err());
    }

    #[test]
    fn listen_from_env_derives_the_advertised_address() {
        let r = resolve_with(&[], &[("RINGMQ_LISTEN", "127.0.0.1:19999")]).unwrap();
        assert_eq!(
            source_of(&r, "listen"),
            ("127.0.0.1:19999".into(), Source::Env)
        );
        assert_eq!(
            source_of(&r, "advertise"),
            ("127.0.0.1:19999".into(), Source::Default)
        );
        assert_eq!(r.config.listen.port(), 19999);
    }

    #[test]
    fn listeners_and_security_settings_resolve() {
        let r = resolve_with(&[], &[]).unwrap();
        assert_eq!(
            source_of(&r, "listeners"),
            ("PLAINTEXT://0.0.0.0:9092".into(), Source::Default)
        );
        assert_eq!(
            source_of(&r, "sasl_mechanisms").0,
            "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
        );
        assert_eq!(
            source_of(&r, "bootstrap_user"),
            ("-".into(), Source::Default)
        );
        let r = resolve_with(
            &[
                "--listeners",
                "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19093",
                "--advertised-listeners",
                "SASL_PLAINTEXT://kafka.example:9093",
                "--super-users",
                "User:admin,User:ops",
            ],
            &[
                ("RINGMQ_LISTEN", "127.0.0.1:1"),
                ("RINGMQ_SASL_MECHANISMS", "SCRAM-SHA-256"),
                ("RINGMQ_CONNECTIONS_MAX_REAUTH_MS", "60000"),
                ("RINGMQ_BOOTSTRAP_USER", "admin:hunter2"),
            ],
        )
        .unwrap();
        assert_eq!(r.config.listeners.len(), 2);
        assert_eq!(r.config.listen.port(), 19092);
        assert_eq!(
            source_of(&r, "advertised_listeners").0,
            "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://kafka.example:9093"
        );
        assert_eq!(r.config.sasl_mechanisms, vec!["SCRAM-SHA-256".to_string()]);
        assert_eq!(r.config.super_users.len(), 2);
        assert_eq!(r.config.connections_max_reauth_ms, 60000);
        let (shown, source) = source_of(&r, "bootstrap_user");
        assert_eq!(
            (shown.as_str(), source),
            ("admin:****:SCRAM-SHA-512", Source::Env)
        );
        assert!(r.settings.iter().all(|s| !s.value.contains("hunter2")));
        let e = resolve_with(&["--listeners", "SSL://127.0.0.1:9094"], &[]).unwrap_err();
        assert!(e.contains("needs tls_cert and tls_key"), "{e}");
        let r = resolve_with(
            &[
                "--listeners",
                "SSL://127.0.0.1:9094",
                "--tls-cert",
                "/c.pem",
            ],
            &[("RINGMQ_TLS_KEY", "/k.pem")],
        )
        .unwrap();
        assert_eq!(source_of(&r, "tls_cert"), ("/c.pem".into(), Source::Flag));
        assert_eq!(source_of(&r, "tls_key"), ("/k.pem".into(), Source::Env));
        assert_eq!(
            source_of(&r, "tls_client_ca"),
            ("-".into(), Source::Default)
        );
        assert_eq!(r.config.tls_key.as_deref(), Some(Path::new("/k.pem")));
        let e = resolve_with(
            &[
                "--listen",
                "127.0.0.1:1",
                "--listeners",
                "PLAINTEXT://127.0.0.1:2",
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.contains("give one"), "{e}");
        let e = resolve_with(&[], &[("RINGMQ_BOOTSTRAP_USER", "nopassword")]).unwrap_err();
        assert!(e.starts_with("RINGMQ_BOOTSTRAP_USER"), "{e}");
    }
}
