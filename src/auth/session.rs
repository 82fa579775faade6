//! One connection's SASL state (a SASL_PLAINTEXT listener): which requests it may send, and
//! what to answer to SaslHandshake and SaslAuthenticate.
//!
//! ```text
//! Idle --SaslHandshake(m)--> Handshaken(m) --first token--> (PLAIN: done)
//!                                                      \--> ScramSent --final token--> done
//! done: principal set, state Idle again; a later SaslHandshake starts a re-authentication
//! (KIP-368), which must name the same user.
//! ```
//!
//! Before the first success only ApiVersions, SaslHandshake and SaslAuthenticate pass
//! ([`Session::gate`]); anything else, or an exchange out of order, closes the connection.
//! After SaslHandshake v0 the tokens come as raw frames instead of SaslAuthenticate
//! requests ([`Session::expects_raw_token`]). With a session lifetime, a request other than
//! a re-authentication after expiry closes the connection.

use super::scram::{ScramCredential, ScramServer};
use super::{plain, Mechanism};
use std::fmt;

/// What kind of request arrived (the caller maps API keys; `auth` knows no protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    ApiVersions,
    SaslHandshake,
    SaslAuthenticate,
    Other,
}

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Handle it as usual.
    Serve,
    /// A SASL request: [`Session::handshake`] / [`Session::authenticate`] answer it.
    Sasl,
    /// Close the connection, for this reason.
    Close(&'static str),
}

/// Why a SASL request failed; each closes the connection after its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// A request out of order (ILLEGAL_SASL_STATE).
    IllegalState(&'static str),
    /// A mechanism that is unknown or not enabled (UNSUPPORTED_SASL_MECHANISM).
    UnsupportedMechanism(String),
    /// Wrong credentials or a malformed exchange (SASL_AUTHENTICATION_FAILED). `reason` is
    /// for the broker's log and never holds a secret.
    Failed {
        mechanism: Mechanism,
        reason: String,
    },
}

impl SaslError {
    /// The message the client is told (the same for an unknown user and a wrong password).
    pub fn client_message(&self) -> String {
        match self {
            SaslError::IllegalState(why) => format!("unexpected SASL request: {why}"),
            SaslError::UnsupportedMechanism(m) => format!("SASL mechanism '{m}' is not enabled"),
            SaslError::Failed { mechanism, .. } => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
            ),
        }
    }
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::Failed { mechanism, reason } => {
                write!(f, "{mechanism} authentication failed: {reason}")
            }
            other => f.write_str(&other.client_message()),
        }
    }
}

/// The answer to a successful SaslAuthenticate (or raw token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the next one (SCRAM server-first).
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send `token` (SCRAM server-final, empty for PLAIN).
    Authenticated {
        token: Vec<u8>,
        user: String,
        /// KIP-368 session lifetime to answer (0: none).
        session_lifetime_ms: i64,
    },
}

enum State {
    Idle,
    Handshaken {
        mechanism: Mechanism,
        raw: bool,
    },
    ScramSent {
        server: ScramServer,
        mechanism: Mechanism,
        raw: bool,
    },
    Failed,
}

/// The stored credentials, as the session reads them.
pub type Credentials<'a> = &'a dyn Fn(&str, Mechanism) -> Option<ScramCredential>;

/// One connection's SASL state. `!Sync`, owned by the connection's reader.
pub struct Session {
    enabled: Vec<Mechanism>,
    state: State,
    user: Option<String>,
    expires_at_ms: Option<u64>,
}

impl Session {
    /// A new connection on a SASL listener that serves `enabled` mechanisms.
    pub fn new(enabled: Vec<Mechanism>) -> Session {
        Session {
            enabled,
            state: State::Idle,
            user: None,
            expires_at_ms: None,
        }
    }

    /// The authenticated user, once an exchange succeeded.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The enabled mechanism names, for SaslHandshake's answer.
    pub fn mechanism_names(&self) -> Vec<String> {
        self.enabled.iter().map(|m| m.name().to_string()).collect()
    }

    /// Whether the next frame is a raw SASL token (after SaslHandshake v0), not a request.
    pub fn expects_raw_token(&self) -> bool {
        matches!(
            self.state,
            State::Handshaken { raw: true, .. } | State::ScramSent { raw: true, .. }
        )
    }

    /// What to do with a request of `kind` arriving at `now_ms`.
    pub fn gate(&self, kind: RequestKind, now_ms: u64) -> Gate {
        match kind {
            RequestKind::SaslHandshake | RequestKind::SaslAuthenticate => Gate::Sasl,
            RequestKind::ApiVersions => Gate::Serve,
            RequestKind::Other if self.user.is_none() => {
                Gate::Close("request before SASL authentication")
            }
            RequestKind::Other if self.expires_at_ms.is_some_and(|t| now_ms >= t) => {
                Gate::Close("SASL session expired without re-authentication")
            }
            RequestKind::Other => Gate::Serve,
        }
    }

    /// SaslHandshake: choose `mechanism`. `version` 0 means raw tokens follow.
    pub fn handshake(&mut self, mechanism: &str, version: i16) -> Result<Mechanism, SaslError> {
        if !matches!(self.state, State::Idle) {
            self.state = State::Failed;
            return Err(SaslError::IllegalState("SaslHandshake during an exchange"));
        }
        if version == 0 && self.user.is_some() {
            self.state = State::Failed;
            return Err(SaslError::IllegalState(
                "re-authentication needs SaslHandshake v1",
            ));
        }
        let Some(m) = Mechanism::parse(mechanism).filter(|m| self.enabled.contains(m)) else {
            self.state = State::Failed;
            return Err(SaslError::UnsupportedMechanism(mechanism.to_string()));
        };
        self.state = State::Handshaken {
            mechanism: m,
            raw: version == 0,
        };
        Ok(m)
    }

    /// A SaslAuthenticate token (or a raw token after SaslHandshake v0). `server_nonce` is
    /// used if SCRAM starts; `lifetime_ms` is the session lifetime (0: unlimited).
    pub fn authenticate(
        &mut self,
        token: &[u8],
        credentials: Credentials<'_>,
        server_nonce: &str,
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<Step, SaslError> {
        let (mechanism, user, token) = match std::mem::replace(&mut self.state, State::Failed) {
            State::Idle | State::Failed => {
                return Err(SaslError::IllegalState(
                    "SaslAuthenticate before SaslHandshake",
                ))
            }
            State::Handshaken {
                mechanism: Mechanism::Plain,
                ..
            } => {
                let first = |u: &str| {
                    super::SCRAM_MECHANISMS
                        .iter()
                        .find_map(|&m| credentials(u, m))
                };
                let user = plain::authenticate(token, first).map_err(|e| SaslError::Failed {
                    mechanism: Mechanism::Plain,
                    reason: format!("{e:?}"),
                })?;
                (Mechanism::Plain, user, Vec::new())
            }
            State::Handshaken { mechanism, raw } => {
                let (server, _, first) =
                    ScramServer::start(token, server_nonce, |u| credentials(u, mechanism))
                        .map_err(|e| SaslError::Failed {
                            mechanism,
                            reason: e.to_string(),
                        })?;
                self.state = State::ScramSent {
                    server,
                    mechanism,
                    raw,
                };
                return Ok(Step::Challenge(first));
            }
            State::ScramSent {
                server, mechanism, ..
            } => {
                let (user, token) = server.finish(token).map_err(|e| SaslError::Failed {
                    mechanism,
                    reason: e.to_string(),
                })?;
                (mechanism, user, token)
            }
        };
        self.authenticated(mechanism, user, token, now_ms, lifetime_ms)
    }

    fn authenticated(
        &mut self,
        mechanism: Mechanism,
        user: String,
        token: Vec<u8>,
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<Step, SaslError> {
        if self.user.as_ref().is_some_and(|u| *u != user) {
            return Err(SaslError::Failed {
                mechanism,
                reason: "re-authentication as another user".into(),
            });
        }
        self.state = State::Idle;
        self.user = Some(user.clone());
        self.expires_at_ms = (lifetime_ms > 0).then(|| now_ms.saturating_add(lifetime_ms));
        Ok(Step::Authenticated {
            token,
            user,
            session_lifetime_ms: lifetime_ms.min(i64::MAX as u64) as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scram::ScramClient;

    fn store() -> impl Fn(&str, Mechanism) -> Option<ScramCredential> {
        let a = ScramCredential::from_password(Mechanism::ScramSha512, b"pw", vec![5; 16], 4096);
        move |u, m| (u == "alice" && m == Mechanism::ScramSha512).then(|| a.clone())
    }

    fn all() -> Vec<Mechanism> {
        vec![
            Mechanism::ScramSha512,
            Mechanism::ScramSha256,
            Mechanism::Plain,
        ]
    }

    fn scram_login(s: &mut Session, pw: &[u8], now: u64) -> Result<Step, SaslError> {
        let creds = store();
        s.handshake("SCRAM-SHA-512", 1)?;
        let (mut c, first) = ScramClient::new(Mechanism::ScramSha512, "alice", pw, "cn");
        let Step::Challenge(sfirst) = s.authenticate(&first, &creds, "sn", now, 1000)? else {
            panic!("SCRAM starts with a challenge");
        };
        let fin = c.client_final(&sfirst).unwrap();
        s.authenticate(&fin, &creds, "unused", now, 1000)
    }

    #[test]
    fn only_sasl_and_api_versions_pass_before_authentication() {
        let mut s = Session::new(all());
        assert_eq!(s.gate(RequestKind::ApiVersions, 0), Gate::Serve);
        assert!(matches!(s.gate(RequestKind::Other, 0), Gate::Close(_)));
        assert_eq!(s.gate(RequestKind::SaslHandshake, 0), Gate::Sasl);
        let step = scram_login(&mut s, b"pw", 10).unwrap();
        assert!(matches!(
            step,
            Step::Authenticated { ref user, session_lifetime_ms: 1000, .. } if user == "alice"
        ));
        assert_eq!(s.gate(RequestKind::Other, 500), Gate::Serve);
        assert!(
            matches!(s.gate(RequestKind::Other, 1010), Gate::Close(_)),
            "expired"
        );
        // Re-authentication renews the session.
        scram_login(&mut s, b"pw", 1020).unwrap();
        assert_eq!(s.gate(RequestKind::Other, 1500), Gate::Serve);
    }

    #[test]
    fn wrong_password_and_disorder_fail() {
        let mut s = Session::new(all());
        let e = scram_login(&mut s, b"nope", 0).unwrap_err();
        assert!(matches!(e, SaslError::Failed { .. }), "{e:?}");
        assert!(!e.client_message().contains("nope"));
        assert_eq!(s.user(), None);

        let creds = store();
        let mut s = Session::new(all());
        assert!(matches!(
            s.authenticate(b"x", &creds, "n", 0, 0),
            Err(SaslError::IllegalState(_))
        ));
        let mut s = Session::new(all());
        s.handshake("PLAIN", 1).unwrap();
        assert!(matches!(
            s.handshake("PLAIN", 1),
            Err(SaslError::IllegalState(_))
        ));
        let mut s = Session::new(vec![Mechanism::ScramSha256]);
        assert!(matches!(
            s.handshake("PLAIN", 1),
            Err(SaslError::UnsupportedMechanism(_))
        ));
        let mut s = Session::new(all());
        assert!(matches!(
            s.handshake("GSSAPI", 1),
            Err(SaslError::UnsupportedMechanism(_))
        ));
    }

    #[test]
    fn plain_and_raw_tokens() {
        let creds = store();
        let mut s = Session::new(all());
        s.handshake("PLAIN", 0).unwrap();
        assert!(s.expects_raw_token());
        let step = s.authenticate(b"\0alice\0pw", &creds, "n", 0, 0).unwrap();
        assert_eq!(
            step,
            Step::Authenticated {
                token: Vec::new(),
                user: "alice".into(),
                session_lifetime_ms: 0
            }
        );
        assert!(!s.expects_raw_token());
        assert_eq!(s.gate(RequestKind::Other, u64::MAX), Gate::Serve);
        assert!(matches!(
            s.handshake("PLAIN", 0),
            Err(SaslError::IllegalState(_))
        ));
        let mut s = Session::new(all());
        s.handshake("PLAIN", 1).unwrap();
        assert!(s.authenticate(b"\0alice\0pX", &creds, "n", 0, 0).is_err());
        assert!(s.user().is_none());
    }
}
