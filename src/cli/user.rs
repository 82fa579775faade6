//! `ringmq user create | list | delete`: SASL users' SCRAM credentials, through Kafka's
//! AlterUserScramCredentials and DescribeUserScramCredentials (so it manages Kafka's users
//! too). The password never leaves this process: `create` salts and hashes it (PBKDF2) here
//! and sends the SaltedPassword, as Kafka's own tools do.
//!
//! `--password-stdin` reads the new user's password from a line of stdin (after the SASL
//! password's line when `--sasl-password-stdin` is given as well).

use super::output::{Json, Table};
use super::{check_code, connect, emit, CliError, ConnArgs};
use crate::auth::scram::{self, DEFAULT_ITERATIONS, DEFAULT_SALT_BYTES};
use crate::auth::Mechanism;
use crate::protocol::alter_user_scram_credentials::*;
use crate::protocol::describe_user_scram_credentials::*;
use bytes::Bytes;

/// `ringmq user ...`
#[derive(clap::Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Create a user, or set a new password for one (one SCRAM mechanism per call).
    Create(CreateArgs),
    /// List users and their SCRAM mechanisms.
    List(ConnArgs),
    /// Delete a user's credential of one mechanism (or of every mechanism with --all).
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    pub name: String,
    /// SCRAM-SHA-512 or SCRAM-SHA-256 (PLAIN logins check either).
    #[arg(long, default_value = "SCRAM-SHA-512")]
    pub mechanism: String,
    /// PBKDF2 iterations (4096 to 16384).
    #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
    pub iterations: i32,
    /// Read the password from a line of stdin (required: it is never a flag).
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    pub name: String,
    /// The mechanism whose credential goes; the user goes with its last one.
    #[arg(long, default_value = "SCRAM-SHA-512")]
    pub mechanism: String,
    /// Delete the credentials of every mechanism.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub async fn run_user(command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Create(a) => create(a).await,
        UserCommand::List(a) => list(a).await,
        UserCommand::Delete(a) => delete(a).await,
    }
}

fn scram_mechanism(name: &str) -> Result<Mechanism, CliError> {
    Mechanism::parse(&name.to_ascii_uppercase())
        .filter(|m| m.is_scram())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--mechanism {name}: not SCRAM-SHA-512 or SCRAM-SHA-256"
            ))
        })
}

/// One line of stdin, without its line end.
pub fn read_stdin_line(what: &str) -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the {what} from stdin: {e}"))?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        return Err(format!("the {what} read from stdin is empty"));
    }
    Ok(line)
}

async fn alter(
    a: &ConnArgs,
    req: AlterUserScramCredentialsRequest,
    what: &str,
) -> Result<(), CliError> {
    let mut conn = connect(&a.bootstrap).await?;
    let resp = conn.call(&req).await?;
    for r in &resp.results {
        check_code(
            &format!("{what} '{}'", r.user),
            r.error_code,
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}

async fn create(a: CreateArgs) -> Result<(), CliError> {
    let mechanism = scram_mechanism(&a.mechanism)?;
    if !a.password_stdin {
        return Err(CliError::Usage(
            "give the password with --password-stdin".into(),
        ));
    }
    let password = read_stdin_line("password").map_err(CliError::Io)?;
    let mut salt = vec![0u8; DEFAULT_SALT_BYTES];
    crate::auth::random_bytes(&mut salt).map_err(CliError::Io)?;
    let salted = scram::salted_password(mechanism, password.as_bytes(), &salt, a.iterations);
    let req = AlterUserScramCredentialsRequest {
        deletions: Vec::new(),
        upsertions: vec![ScramCredentialUpsertion {
            name: a.name.clone(),
            mechanism: mechanism.scram_type(),
            iterations: a.iterations,
            salt: Bytes::from(salt),
            salted_password: Bytes::from(salted),
        }],
    };
    alter(&a.conn, req, "create user").await?;
    let value = Json::obj([
        ("user", Json::str(&a.name)),
        ("mechanism", Json::str(mechanism.name())),
    ]);
    emit(a.conn.json, &value, || {
        format!("user '{}' set ({mechanism})\n", a.name)
    });
    Ok(())
}

async fn delete(a: DeleteArgs) -> Result<(), CliError> {
    let mechanisms = if a.all {
        crate::auth::SCRAM_MECHANISMS.to_vec()
    } else {
        vec![scram_mechanism(&a.mechanism)?]
    };
    let mut conn = connect(&a.conn.bootstrap).await?;
    let described = conn
        .call(&DescribeUserScramCredentialsRequest {
            users: Some(vec![UserName {
                name: a.name.clone(),
            }]),
        })
        .await?;
    let held: Vec<i8> = described
        .results
        .iter()
        .flat_map(|r| r.credential_infos.iter().map(|c| c.mechanism))
        .collect();
    let deletions: Vec<ScramCredentialDeletion> = mechanisms
        .iter()
        .filter(|m| !a.all || held.contains(&m.scram_type()))
        .map(|m| ScramCredentialDeletion {
            name: a.name.clone(),
            mechanism: m.scram_type(),
        })
        .collect();
    if deletions.is_empty() {
        return Err(CliError::NotFound(format!("user '{}'", a.name)));
    }
    drop(conn);
    let req = AlterUserScramCredentialsRequest {
        deletions,
        upsertions: Vec::new(),
    };
    alter(&a.conn, req, "delete user").await?;
    emit(
        a.conn.json,
        &Json::obj([("deleted", Json::str(&a.name))]),
        || format!("user '{}' deleted\n", a.name),
    );
    Ok(())
}

async fn list(a: ConnArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.bootstrap).await?;
    let resp = conn
        .call(&DescribeUserScramCredentialsRequest { users: None })
        .await?;
    check_code("list users", resp.error_code, resp.error_message.as_deref())?;
    let rows: Vec<(String, Vec<(String, i32)>)> = resp
        .results
        .iter()
        .map(|r| {
            let creds = r
                .credential_infos
                .iter()
                .map(|c| {
                    let name = Mechanism::from_scram_type(c.mechanism)
                        .map_or_else(|| format!("type {}", c.mechanism), |m| m.name().to_string());
                    (name, c.iterations)
                })
                .collect();
            (r.user.clone(), creds)
        })
        .collect();
    let value = Json::Arr(
        rows.iter()
            .map(|(user, creds)| {
                let creds = creds
                    .iter()
                    .map(|(m, i)| {
                        Json::obj([
                            ("mechanism", Json::str(m)),
                            ("iterations", Json::Int(i64::from(*i))),
                        ])
                    })
                    .collect();
                Json::obj([("user", Json::str(user)), ("credentials", Json::Arr(creds))])
            })
            .collect(),
    );
    emit(a.json, &value, || {
        let mut t = Table::new(&["USER", "MECHANISMS"]);
        for (user, creds) in &rows {
            let m: Vec<String> = creds
                .iter()
                .map(|(m, i)| format!("{m} ({i} iterations)"))
                .collect();
            t.row(vec![user.clone(), m.join(", ")]);
        }
        t.render()
    });
    Ok(())
}
