//! SASL on a connection: the gate in front of every request of a SASL listener, and the
//! answers to SaslHandshake (17) and SaslAuthenticate (36). The exchange itself is the
//! sans-IO [`crate::auth::session::Session`]; this file adds the wire, the credential lookup
//! (the shard's metadata image), randomness, the failure delay and the counters.
//!
//! SASL requests are handled in the connection's reader, in order, before the next frame is
//! read, so a request that follows a successful SaslAuthenticate sees the new state. A
//! failed authentication is answered only after [`AUTH_FAILURE_DELAY`] and then closes the
//! connection: the delay holds only that connection's reader, never the shard.

use super::{RequestError, ServerCtx};
use crate::auth::session::{RequestKind, SaslError, Session, Step};
use crate::auth::Mechanism;
use crate::protocol::header::{response_header_version, RequestHeader, ResponseHeader};
use crate::protocol::sasl_authenticate::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use crate::protocol::sasl_handshake::{SaslHandshakeRequest, SaslHandshakeResponse};
use crate::protocol::{api_versions, sasl_authenticate, sasl_handshake};
use crate::protocol::{ErrorCode, Reader, Writer};
use bytes::Bytes;
use std::time::Duration;

/// How long a failed authentication waits before it is answered (and the connection closed).
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// What a SASL request produced.
pub struct Answer {
    /// The response frame (without its size prefix); `None`: nothing to send.
    pub parts: Option<Vec<Bytes>>,
    /// Close the connection once the answer is written.
    pub close: bool,
}

/// The session's view of a request key.
pub fn kind_of(api_key: i16) -> RequestKind {
    match api_key {
        api_versions::API_KEY => RequestKind::ApiVersions,
        sasl_handshake::API_KEY => RequestKind::SaslHandshake,
        sasl_authenticate::API_KEY => RequestKind::SaslAuthenticate,
        _ => RequestKind::Other,
    }
}

/// The mechanisms a SASL listener serves, from the configuration (validated at start).
pub fn enabled_mechanisms(ctx: &ServerCtx) -> Vec<Mechanism> {
    ctx.config
        .sasl_mechanisms
        .iter()
        .filter_map(|m| Mechanism::parse(m))
        .collect()
}

fn respond(header: &RequestHeader, body: impl FnOnce(&mut Writer)) -> Vec<Bytes> {
    let mut w = Writer::new();
    let version = response_header_version(header.api_key, header.api_version);
    ResponseHeader {
        correlation_id: header.correlation_id,
    }
    .encode(&mut w, version);
    body(&mut w);
    w.finish()
}

/// Handle SaslHandshake or SaslAuthenticate on a SASL listener's connection.
pub async fn handle(
    ctx: &ServerCtx,
    session: &mut Session,
    header: &RequestHeader,
    mut body: Reader,
    now_ms: u64,
) -> Result<Answer, RequestError> {
    let (key, version) = (header.api_key, header.api_version);
    let decode_err = |error| RequestError::Decode {
        api_key: key,
        api_version: version,
        error,
    };
    if !crate::protocol::api::supported(key, version) {
        return Err(RequestError::Unsupported {
            api_key: key,
            api_version: version,
        });
    }
    if key == sasl_handshake::API_KEY {
        let req = SaslHandshakeRequest::decode(&mut body, version).map_err(decode_err)?;
        return Ok(handshake(ctx, session, header, &req));
    }
    let req = SaslAuthenticateRequest::decode(&mut body, version).map_err(decode_err)?;
    let result = exchange(ctx, session, &req.auth_bytes, now_ms).await;
    let resp = authenticate_response(&result);
    Ok(Answer {
        parts: Some(respond(header, |w| resp.encode(w, version))),
        close: result.is_err(),
    })
}

fn handshake(
    ctx: &ServerCtx,
    session: &mut Session,
    header: &RequestHeader,
    req: &SaslHandshakeRequest,
) -> Answer {
    let result = session.handshake(&req.mechanism, header.api_version);
    let error = match &result {
        Ok(_) => ErrorCode::NONE,
        Err(e) => error_code(e),
    };
    let resp = SaslHandshakeResponse {
        error_code: error.0,
        mechanisms: session.mechanism_names(),
    };
    if let Err(e) = &result {
        ctx.log_client_error(
            &format!("SASL handshake ({})", req.mechanism),
            &e.to_string(),
        );
    }
    Answer {
        parts: Some(respond(header, |w| resp.encode(w, header.api_version))),
        close: result.is_err(),
    }
}

fn authenticate_response(result: &Result<Step, SaslError>) -> SaslAuthenticateResponse {
    match result {
        Ok(step) => {
            let (token, lifetime) = match step {
                Step::Challenge(t) => (t.clone(), 0),
                Step::Authenticated {
                    token,
                    session_lifetime_ms,
                    ..
                } => (token.clone(), *session_lifetime_ms),
            };
            SaslAuthenticateResponse {
                error_code: 0,
                error_message: None,
                auth_bytes: Bytes::from(token),
                session_lifetime_ms: lifetime,
            }
        }
        Err(e) => SaslAuthenticateResponse {
            error_code: error_code(e).0,
            error_message: Some(e.client_message()),
            auth_bytes: Bytes::new(),
            session_lifetime_ms: 0,
        },
    }
}

/// A raw token after SaslHandshake v0 (the frame holds only the token). The answer is the
/// raw server token; a failure closes the connection without one, as Kafka does.
pub async fn raw_token(
    ctx: &ServerCtx,
    session: &mut Session,
    frame: Bytes,
    now_ms: u64,
) -> Answer {
    match exchange(ctx, session, &frame, now_ms).await {
        Ok(Step::Challenge(t)) | Ok(Step::Authenticated { token: t, .. }) => Answer {
            parts: Some(vec![Bytes::from(t)]),
            close: false,
        },
        Err(_) => Answer {
            parts: None,
            close: true,
        },
    }
}

fn error_code(e: &SaslError) -> ErrorCode {
    match e {
        SaslError::IllegalState(_) => ErrorCode::ILLEGAL_SASL_STATE,
        SaslError::UnsupportedMechanism(_) => ErrorCode::UNSUPPORTED_SASL_MECHANISM,
        SaslError::Failed { .. } => ErrorCode::SASL_AUTHENTICATION_FAILED,
    }
}

/// One token through the session: count and delay failures, log them (never a secret).
async fn exchange(
    ctx: &ServerCtx,
    session: &mut Session,
    token: &[u8],
    now_ms: u64,
) -> Result<Step, SaslError> {
    let nonce = crate::auth::random_nonce().map_err(|e| SaslError::Failed {
        mechanism: Mechanism::ScramSha512,
        reason: e,
    })?;
    let image = ctx.image();
    let lookup = |user: &str, m: Mechanism| image.scram_credential(user, m);
    let lifetime = ctx.config.connections_max_reauth_ms;
    let result = session.authenticate(token, &lookup, &nonce, now_ms, lifetime);
    match &result {
        Ok(Step::Authenticated { user, .. }) => {
            ctx.metrics
                .sasl_authentications
                .set(ctx.metrics.sasl_authentications.get() + 1);
            crate::debug!("SASL: authenticated user '{user}'");
        }
        Ok(Step::Challenge(_)) => {}
        Err(e) => {
            let failures = &ctx.metrics.sasl_authentication_failures;
            failures.set(failures.get() + 1);
            ctx.log_client_error("SASL client", &e.to_string());
            glommio::timer::sleep(AUTH_FAILURE_DELAY).await;
        }
    }
    result
}

/// SaslHandshake or SaslAuthenticate on a PLAINTEXT listener: ILLEGAL_SASL_STATE, as Kafka.
pub fn not_a_sasl_listener(
    key: i16,
    version: i16,
    r: &mut Reader,
    w: &mut Writer,
) -> Result<(), RequestError> {
    let decode_err = |error| RequestError::Decode {
        api_key: key,
        api_version: version,
        error,
    };
    if key == sasl_handshake::API_KEY {
        SaslHandshakeRequest::decode(r, version).map_err(decode_err)?;
        SaslHandshakeResponse {
            error_code: ErrorCode::ILLEGAL_SASL_STATE.0,
            mechanisms: Vec::new(),
        }
        .encode(w, version);
    } else {
        SaslAuthenticateRequest::decode(r, version).map_err(decode_err)?;
        SaslAuthenticateResponse {
            error_code: ErrorCode::ILLEGAL_SASL_STATE.0,
            error_message: Some("this listener does not use SASL".into()),
            auth_bytes: Bytes::new(),
            session_lifetime_ms: 0,
        }
        .encode(w, version);
    }
    Ok(())
}
