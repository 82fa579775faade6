//! The `ringmq` binary: `ringmq serve` starts the broker; `bench` measures one; `topic`,
//! `group`, `produce`, `consume` and `cluster` manage one over the Kafka protocol; `config print`
//! and `check` look at the settings and the host.

use clap::{Parser, Subcommand};
use ringmq::cli;
use ringmq::cli::config_print::ServeArgs;
use ringmq::config::BrokerConfig;
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
    /// How client commands and the bench authenticate (refused by serve, config and check).
    #[command(flatten)]
    security: ringmq::client::security::SecurityArgs,
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
    /// Create, list and delete SASL users (SCRAM credentials).
    User {
        #[command(subcommand)]
        command: cli::user::UserCommand,
    },
    /// Show the cluster's id, controller and brokers.
    Cluster {
        #[command(subcommand)]
        command: cli::ClusterCommand,
    },
    /// Show the effective broker settings and where each came from.
    Config {
        #[command(subcommand)]
        command: cli::config_print::ConfigCommand,
    },
    /// Check this host: io_uring, limits, filesystem, free space, CPUs, a short disk test.
    Check(cli::check::CheckArgs),
}

/// `ringmq serve`'s settings: flags over `RINGMQ_*` environment over the TOML file over
/// defaults (see `ringmq config print`).
fn load_config(args: &ServeArgs) -> Result<BrokerConfig, String> {
    cli::config_print::resolve(args, &|k| std::env::var(k).ok()).map(|r| r.config)
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

/// A panic in the broker is a crash: the default hook prints the message and its location,
/// then the process aborts (SIGABRT, a non-zero status) so that its supervisor restarts it and
/// recovery runs. Without this a panicking shard thread unwinds alone and leaves a half-alive
/// process whose other shards keep accepting requests for partitions nobody serves.
///
/// A hook in the binary rather than `panic = "abort"` in the release profile: the tests build
/// with that profile, and `#[should_panic]` tests and the harness's per-test failure report
/// need panics to unwind; only `ringmq serve` installs the hook.
fn abort_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("ringmq: a panic is a crash: aborting (restart to recover)");
        std::process::abort();
    }));
}

/// Resolve the client security flags once for this process (the SASL password is read
/// from stdin first, before any command reads its own input).
fn set_client_security(
    command: &Command,
    security: &ringmq::client::security::SecurityArgs,
) -> Result<(), String> {
    if matches!(
        command,
        Command::Serve(_) | Command::Config { .. } | Command::Check(_)
    ) {
        if security.is_set() {
            return Err(
                "--security-protocol and --sasl-* are client flags; the broker takes --listeners"
                    .into(),
            );
        }
        return Ok(());
    }
    let sasl = security.resolve(&|k| std::env::var(k).ok(), || {
        cli::user::read_stdin_line("SASL password")
    })?;
    ringmq::client::security::set_default(sasl);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = set_client_security(&cli.command, &cli.security) {
        return exit(Err(e));
    }
    match cli.command {
        Command::Serve(args) => {
            abort_on_panic();
            exit(load_config(&args).and_then(ringmq::app::run))
        }
        Command::Bench(args) => exit(ringmq::bench::run(args)),
        Command::Topic { command } => exit(cli::run(|| cli::admin::run_topic(command))),
        Command::Group { command } => exit(cli::run(|| cli::group::run_group(command))),
        Command::Produce(args) => exit(cli::run(|| cli::produce::run(args))),
        Command::Consume(args) => exit(cli::run(|| cli::consume::run(args))),
        Command::User { command } => exit(cli::run(|| cli::user::run_user(command))),
        Command::Cluster { command } => match command {
            cli::ClusterCommand::Info(args) => exit(cli::run(|| cli::admin::cluster_info(args))),
        },
        Command::Config { command } => match command {
            cli::config_print::ConfigCommand::Print(args) => exit(cli::config_print::print(&args)),
        },
        Command::Check(args) => exit(cli::check::run(&args)),
    }
}
