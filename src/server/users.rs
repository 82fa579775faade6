//! DescribeUserScramCredentials (50) and AlterUserScramCredentials (51): SASL users' SCRAM
//! credentials, kept in the cluster metadata and changed through the controller (one
//! committed command per credential change, applied on every node).
//!
//! Validation follows Kafka's: a user named twice for the same mechanism in one request is
//! DUPLICATE_RESOURCE, an unknown mechanism UNSUPPORTED_SASL_MECHANISM, a bad name, salt,
//! SaltedPassword or iteration count UNACCEPTABLE_CREDENTIAL, deleting or describing a
//! missing credential RESOURCE_NOT_FOUND. One result per user, the first error wins.

use super::errors::admin_error_code;
use super::{RequestError, ServerCtx};
use crate::auth::scram::{self, ScramCredential};
use crate::auth::Mechanism;
use crate::cluster::Command;
use crate::protocol::alter_user_scram_credentials::{self as alter, *};
use crate::protocol::describe_user_scram_credentials::{self as describe, *};
use crate::protocol::{ErrorCode, Reader, Writer};
use crate::router::{AdminCall, AdminReply};

/// Decode, answer and encode a user API request; `Ok(false)` if `key` is not one.
pub async fn handle(
    ctx: &ServerCtx,
    key: i16,
    version: i16,
    r: &mut Reader,
    w: &mut Writer,
) -> Result<bool, RequestError> {
    let de = |error| RequestError::Decode {
        api_key: key,
        api_version: version,
        error,
    };
    match key {
        describe::API_KEY => {
            let req = DescribeUserScramCredentialsRequest::decode(r, version).map_err(de)?;
            describe_users(ctx, &req).encode(w, version);
        }
        alter::API_KEY => {
            let req = AlterUserScramCredentialsRequest::decode(r, version).map_err(de)?;
            alter_users(ctx, req).await?.encode(w, version);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn describe_users(
    ctx: &ServerCtx,
    req: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let image = ctx.image();
    let names: Vec<String> = match &req.users {
        None => image.users.keys().cloned().collect(),
        Some(users) => users.iter().map(|u| u.name.clone()).collect(),
    };
    let results = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let result = |code: ErrorCode, message: Option<String>, infos| {
                DescribeUserScramCredentialsResult {
                    user: name.clone(),
                    error_code: code.0,
                    error_message: message,
                    credential_infos: infos,
                }
            };
            if names[..i].contains(name) {
                return result(
                    ErrorCode::DUPLICATE_RESOURCE,
                    Some(format!("user '{name}' is named twice")),
                    Vec::new(),
                );
            }
            match image.users.get(name) {
                None => result(
                    ErrorCode::RESOURCE_NOT_FOUND,
                    Some(format!("attempt to describe nonexistent user '{name}'")),
                    Vec::new(),
                ),
                Some(creds) => {
                    let infos = creds
                        .values()
                        .map(|c| CredentialInfo {
                            mechanism: c.mechanism.scram_type(),
                            iterations: c.iterations,
                        })
                        .collect();
                    result(ErrorCode::NONE, None, infos)
                }
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse {
        throttle_time_ms: 0,
        error_code: 0,
        error_message: None,
        results,
    }
}

/// One requested change, checked: the command to commit, or the user's error.
type Change = (String, Result<Command, (ErrorCode, String)>);

fn check_upsertion(u: &ScramCredentialUpsertion) -> Result<Command, (ErrorCode, String)> {
    let mechanism = mechanism_of(u.mechanism)?;
    let unacceptable = |m: String| (ErrorCode::UNACCEPTABLE_CREDENTIAL, m);
    crate::auth::validate_user_name(&u.name).map_err(unacceptable)?;
    if u.salted_password.len() != scram::hash_len(mechanism) {
        return Err(unacceptable(format!(
            "a {mechanism} salted password is {} bytes",
            scram::hash_len(mechanism)
        )));
    }
    let credential = ScramCredential::from_salted_password(
        mechanism,
        u.salt.to_vec(),
        u.iterations,
        &u.salted_password,
    );
    credential.validate().map_err(unacceptable)?;
    Ok(Command::UpsertScram {
        user: u.name.clone(),
        credential,
    })
}

fn mechanism_of(t: i8) -> Result<Mechanism, (ErrorCode, String)> {
    Mechanism::from_scram_type(t).ok_or_else(|| {
        (
            ErrorCode::UNSUPPORTED_SASL_MECHANISM,
            format!("unknown SCRAM mechanism type {t}"),
        )
    })
}

/// Every change of the request with its user, duplicates of (user, mechanism) marked.
fn checked_changes(req: AlterUserScramCredentialsRequest) -> Vec<Change> {
    let mut seen: Vec<(String, i8)> = Vec::new();
    let mut out: Vec<Change> = Vec::new();
    let deletions = req.deletions.into_iter().map(|d| {
        let cmd = mechanism_of(d.mechanism).map(|mechanism| Command::DeleteScram {
            user: d.name.clone(),
            mechanism,
        });
        (d.name, d.mechanism, cmd)
    });
    let upsertions = req.upsertions.iter().map(|u| {
        let cmd = check_upsertion(u);
        (u.name.clone(), u.mechanism, cmd)
    });
    for (user, mechanism, cmd) in deletions.chain(upsertions) {
        let key = (user.clone(), mechanism);
        let cmd = if seen.contains(&key) {
            Err((
                ErrorCode::DUPLICATE_RESOURCE,
                format!("user '{user}' names one mechanism twice"),
            ))
        } else {
            cmd
        };
        seen.push(key);
        out.push((user, cmd));
    }
    out
}

async fn alter_users(
    ctx: &ServerCtx,
    req: AlterUserScramCredentialsRequest,
) -> Result<AlterUserScramCredentialsResponse, RequestError> {
    let changes = checked_changes(req);
    let mut users: Vec<String> = Vec::new();
    for (user, _) in &changes {
        if !users.contains(user) {
            users.push(user.clone());
        }
    }
    let mut results = Vec::with_capacity(users.len());
    for user in users {
        let mine = changes.iter().filter(|(u, _)| *u == user);
        let mut outcome = mine.clone().find_map(|(_, c)| c.as_ref().err().cloned());
        if outcome.is_none() {
            for (_, cmd) in mine {
                let cmd = cmd.as_ref().expect("checked").clone();
                match ctx.admin(AdminCall::AlterScram(cmd)).await? {
                    Ok(AdminReply::Done(image)) => {
                        ctx.metadata.apply(image);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        outcome = Some(admin_error_code(&e));
                        break;
                    }
                }
            }
        }
        let (code, message) = outcome.map_or((ErrorCode::NONE, None), |(c, m)| (c, Some(m)));
        results.push(AlterUserScramCredentialsResult {
            user,
            error_code: code.0,
            error_message: message,
        });
    }
    Ok(AlterUserScramCredentialsResponse {
        throttle_time_ms: 0,
        results,
    })
}
