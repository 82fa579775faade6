//! The `ringmq` binary: `ringmq serve` starts the broker; `bench` measures one; `topic`,
//! `group`, `produce`, `consume` and `cluster` manage one over the Kafka protocol.

use clap::{Parser, Subcommand};
use ringmq::cli;
use ringmq::config::{BrokerConfig, FileConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ringmq",
    version,
    about = "A persistent, Kafka-compatible message broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the broker (defaults: port 9092, data in ./ringmq-data, one shard per CPU).
    Serve(ServeArgs),
    /// Measure a Kafka-compatible broker: produce, consume or end-to-end.
    Bench(ringmq::bench::BenchArgs),
    /// Create, list, describe, delete and alter topics.
    Topic {
        #[command(subcommand)]
        command: cli::admin::TopicCommand,
    },
    /// List, describe, delete consumer groups and reset their offsets.
    Group {
        #[command(subcommand)]
        command: cli::group::GroupCommand,
    },
    /// Write records read from stdin, one a line.
    Produce(cli::produce::ProduceArgs),
    /// Read records and print them.
    Consume(cli::consume::ConsumeArgs),
    /// Show the cluster's id, controller and brokers.
    Cluster {
        #[command(subcommand)]
        command: cli::ClusterCommand,
    },
}

#[derive(Parser)]
struct ServeArgs {
    /// Address to accept Kafka clients on.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address Metadata tells clients (default: the --listen address; loopback if wildcard).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Directory for partition logs and metadata.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Number of shards (glommio executors, one per CPU).
    #[arg(long, value_name = "N")]
    shards: Option<u16>,
    /// TOML configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Create unknown topics on Metadata requests that allow it.
    #[arg(long, value_name = "BOOL")]
    auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic.
    #[arg(long, value_name = "N")]
    default_partitions: Option<i32>,
    /// Largest request frame accepted, in bytes.
    #[arg(long, value_name = "N")]
    max_request_bytes: Option<usize>,
    /// Broker default for a topic config, e.g. `--topic-default durability=never` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    topic_default: Vec<String>,
    /// Measurement aid: only shard N accepts connections.
    #[arg(long, value_name = "N", hide = true)]
    bench_accept_shard: Option<u16>,
    /// Measurement aid: shard N owns every data partition (measures the router's cost).
    #[arg(long, value_name = "N", hide = true)]
    bench_owner_shard: Option<u16>,
}

fn load_config(args: &ServeArgs) -> Result<BrokerConfig, String> {
    let file = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            toml::from_str::<FileConfig>(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut c = BrokerConfig::defaults();
    let listen = args
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| c.listen.to_string());
    let advertise = args.advertise.clone().or(file.advertise);
    c.set_listen(&listen, advertise.as_deref())?;
    if let Some(d) = args.data_dir.clone().or(file.data_dir) {
        c.data_dir = d;
    }
    c.shards = args.shards.or(file.shards).unwrap_or(c.shards);
    c.auto_create_topics = args
        .auto_create_topics
        .or(file.auto_create_topics)
        .unwrap_or(c.auto_create_topics);
    c.default_partitions = args
        .default_partitions
        .or(file.default_partitions)
        .unwrap_or(c.default_partitions);
    c.max_request_bytes = args
        .max_request_bytes
        .or(file.max_request_bytes)
        .unwrap_or(c.max_request_bytes);
    c.inflight_bytes_per_shard = c.inflight_bytes_per_shard.max(2 * c.max_request_bytes);
    let mut defaults: Vec<(String, String)> = file.topic_defaults.into_iter().collect();
    for kv in &args.topic_default {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--topic-default {kv}: expected KEY=VALUE"))?;
        defaults.push((k.to_string(), v.to_string()));
    }
    c.topic_defaults = c
        .topic_defaults
        .with_overrides(defaults.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| e.to_string())?;
    c.bench_accept_shard = args.bench_accept_shard;
    c.bench_owner_shard = args.bench_owner_shard;
    c.validate()?;
    Ok(c)
}

fn exit(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => exit(load_config(&args).and_then(ringmq::app::run)),
        Command::Bench(args) => exit(ringmq::bench::run(args)),
        Command::Topic { command } => exit(cli::run(|| cli::admin::run_topic(command))),
        Command::Group { command } => exit(cli::run(|| cli::group::run_group(command))),
        Command::Produce(args) => exit(cli::run(|| cli::produce::run(args))),
        Command::Consume(args) => exit(cli::run(|| cli::consume::run(args))),
        Command::Cluster { command } => match command {
            cli::ClusterCommand::Info(args) => exit(cli::run(|| cli::admin::cluster_info(args))),
        },
    }
}
