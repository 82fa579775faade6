//! The operator CLI in the `ringmq` binary: `topic`, `group`, `produce`, `consume`, `cluster`,
//! plus `config print` ([`config_print`]) and `check` ([`check`]), which need no broker.
//!
//! Every command speaks the Kafka protocol through [`crate::client`] (never broker internals),
//! so it manages Kafka and Redpanda as well as ringmq. A command runs on one glommio executor
//! on the calling thread's CPU set ([`on_executor`]), opens one connection to `--bootstrap`
//! (plus one to the group coordinator when that is another broker), and prints either a table
//! for people or, with `--json`, one JSON document for scripts ([`output`]).
//!
//! Errors are one sentence on stderr and exit status 1 ([`CliError`]); clap reports bad flags
//! with status 2. Broker error codes are named (`UNKNOWN_TOPIC_OR_PARTITION`), not numbered.
//!
//! Limits: every partition request goes to the bootstrap broker (right for single-node ringmq;
//! on a multi-broker Kafka cluster, produce and fetch to partitions led elsewhere fail with
//! NOT_LEADER_OR_FOLLOWER). `consume --group` commits offsets as a "simple" consumer
//! (generation −1) and does not join the group.

pub mod admin;
pub mod check;
pub mod config_print;
pub mod consume;
pub mod group;
pub mod output;
pub mod produce;
pub mod time;
pub mod user;

use crate::client::conn::Connection;
use crate::client::ClientError;
use crate::protocol::ErrorCode;
use clap::{Args, Subcommand};
use std::fmt;
use std::future::Future;

/// Default `--bootstrap`.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// client.id the CLI sends.
const CLIENT_ID: &str = "ringmq-cli";

/// Why a CLI command failed; its Display is the one sentence printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// The broker could not be reached.
    Connect { bootstrap: String, reason: String },
    /// The conversation with the broker failed after connecting.
    Client(String),
    /// The broker answered `what` with an error code.
    Broker {
        what: String,
        code: i16,
        message: Option<String>,
    },
    /// A topic or group that does not exist.
    NotFound(String),
    /// Arguments that parse but do not make sense together.
    Usage(String),
    /// Local input or output failed.
    Io(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Connect { bootstrap, reason } => {
                write!(f, "cannot reach a broker at {bootstrap}: {reason}")
            }
            CliError::Client(e) => write!(f, "talking to the broker failed: {e}"),
            CliError::Broker {
                what,
                code,
                message,
            } => {
                write!(f, "{what} failed: {}", error_name(*code))?;
                match message {
                    Some(m) if !m.is_empty() => write!(f, " ({m})"),
                    _ => Ok(()),
                }
            }
            CliError::NotFound(what) => write!(f, "{what} does not exist"),
            CliError::Usage(e) => write!(f, "{e}"),
            CliError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Broker { what, code } => CliError::Broker {
                what,
                code,
                message: None,
            },
            e => CliError::Client(e.to_string()),
        }
    }
}

/// Kafka's name for an error code (the ones an operator meets), or the number.
pub fn error_name(code: i16) -> String {
    let name = match ErrorCode(code) {
        ErrorCode::UNKNOWN_SERVER_ERROR => "UNKNOWN_SERVER_ERROR",
        ErrorCode::OFFSET_OUT_OF_RANGE => "OFFSET_OUT_OF_RANGE",
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
        ErrorCode::LEADER_NOT_AVAILABLE => "LEADER_NOT_AVAILABLE",
        ErrorCode::NOT_LEADER_OR_FOLLOWER => "NOT_LEADER_OR_FOLLOWER",
        ErrorCode::REQUEST_TIMED_OUT => "REQUEST_TIMED_OUT",
        ErrorCode::MESSAGE_TOO_LARGE => "MESSAGE_TOO_LARGE",
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
        ErrorCode::COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
        ErrorCode::NOT_COORDINATOR => "NOT_COORDINATOR",
        ErrorCode::INVALID_TOPIC_EXCEPTION => "INVALID_TOPIC_EXCEPTION",
        ErrorCode::INVALID_GROUP_ID => "INVALID_GROUP_ID",
        ErrorCode::UNKNOWN_MEMBER_ID => "UNKNOWN_MEMBER_ID",
        ErrorCode::REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
        ErrorCode::UNSUPPORTED_VERSION => "UNSUPPORTED_VERSION",
        ErrorCode::TOPIC_ALREADY_EXISTS => "TOPIC_ALREADY_EXISTS",
        ErrorCode::INVALID_PARTITIONS => "INVALID_PARTITIONS",
        ErrorCode::INVALID_REPLICATION_FACTOR => "INVALID_REPLICATION_FACTOR",
        ErrorCode::INVALID_CONFIG => "INVALID_CONFIG",
        ErrorCode::INVALID_REQUEST => "INVALID_REQUEST",
        ErrorCode::POLICY_VIOLATION => "POLICY_VIOLATION",
        ErrorCode::KAFKA_STORAGE_ERROR => "KAFKA_STORAGE_ERROR",
        ErrorCode::NON_EMPTY_GROUP => "NON_EMPTY_GROUP",
        ErrorCode::GROUP_ID_NOT_FOUND => "GROUP_ID_NOT_FOUND",
        ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC => "GROUP_SUBSCRIBED_TO_TOPIC",
        ErrorCode::UNKNOWN_TOPIC_ID => "UNKNOWN_TOPIC_ID",
        ErrorCode::INVALID_RECORD => "INVALID_RECORD",
        ErrorCode::UNSUPPORTED_SASL_MECHANISM => "UNSUPPORTED_SASL_MECHANISM",
        ErrorCode::ILLEGAL_SASL_STATE => "ILLEGAL_SASL_STATE",
        ErrorCode::SASL_AUTHENTICATION_FAILED => "SASL_AUTHENTICATION_FAILED",
        ErrorCode::RESOURCE_NOT_FOUND => "RESOURCE_NOT_FOUND",
        ErrorCode::DUPLICATE_RESOURCE => "DUPLICATE_RESOURCE",
        ErrorCode::UNACCEPTABLE_CREDENTIAL => "UNACCEPTABLE_CREDENTIAL",
        _ => return format!("error code {code}"),
    };
    name.to_string()
}

/// Turn a per-item error code into a [`CliError`] (Ok for NONE).
pub fn check_code(what: &str, code: i16, message: Option<&str>) -> Result<(), CliError> {
    if code == 0 {
        return Ok(());
    }
    Err(CliError::Broker {
        what: what.to_string(),
        code,
        message: message.map(str::to_string),
    })
}

/// The flags every network command takes.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Broker address to bootstrap from.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP)]
    pub bootstrap: String,
    /// Print JSON for scripts (one document; `consume`: one object per record).
    #[arg(long)]
    pub json: bool,
}

/// `ringmq cluster ...`
#[derive(Subcommand, Debug, Clone)]
pub enum ClusterCommand {
    /// Cluster id, controller and brokers, and the API versions the bootstrap broker serves.
    Info(ConnArgs),
}

/// Connect to `bootstrap` and negotiate versions.
pub async fn connect(bootstrap: &str) -> Result<Connection, CliError> {
    Connection::connect(bootstrap, CLIENT_ID)
        .await
        .map_err(|e| CliError::Connect {
            bootstrap: bootstrap.to_string(),
            reason: match e {
                ClientError::Io(m) => m
                    .strip_prefix(&format!("connect {bootstrap}: "))
                    .unwrap_or(&m)
                    .trim_start_matches("IO error occurred: ")
                    .to_string(),
                e => e.to_string(),
            },
        })
}

/// Run `f` to completion on a fresh glommio executor on this thread's CPUs.
pub fn on_executor<F, Fut, T>(f: F) -> Result<T, CliError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, CliError>> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("ringmq-cli")
        .spawn(f)
        .map_err(|e| CliError::Io(format!("cannot start the I/O executor: {e}")))?
        .join()
        .map_err(|e| CliError::Io(format!("the I/O executor failed: {e:?}")))?
}

/// Run one network command to completion; the error is its one-sentence message.
pub fn run<F, Fut>(f: F) -> Result<(), String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), CliError>> + 'static,
{
    on_executor(f).map_err(|e| e.to_string())
}

/// Print `json` (with `--json`) or the human text.
pub fn emit(json: bool, value: &output::Json, human: impl FnOnce() -> String) {
    if json {
        println!("{}", value.render());
    } else {
        print!("{}", human());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_named_sentence() {
        let e = CliError::Broker {
            what: "create topic 'a'".into(),
            code: 36,
            message: Some("exists".into()),
        };
        assert_eq!(
            e.to_string(),
            "create topic 'a' failed: TOPIC_ALREADY_EXISTS (exists)"
        );
        assert_eq!(error_name(9999), "error code 9999");
        assert!(check_code("x", 0, None).is_ok());
        assert!(!CliError::NotFound("topic 'a'".into())
            .to_string()
            .contains('\n'));
    }
}
