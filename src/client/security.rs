//! How the client connects and authenticates: `--security-protocol`, `--tls-ca`,
//! `--sasl-mechanism`, `--sasl-username`, `--sasl-password-stdin` (or
//! `RINGMQ_SASL_PASSWORD`), and the SASL exchange itself (SaslHandshake v1, then SaslAuthenticate carrying PLAIN or SCRAM tokens
//! from the sans-IO [`crate::auth`] client).
//!
//! A `ringmq` client process (a CLI command, `ringmq bench`) has one [`Security`]: the
//! binary resolves the flags once and sets the process default ([`set_default`]); every
//! [`super::conn::Connection::connect`] of the process then uses TLS and authenticates
//! with it.

use super::api::Api;
use super::conn::Connection;
use super::ClientError;
use crate::auth::scram::ScramClient;
use crate::auth::Mechanism;
use crate::protocol::sasl_authenticate::SaslAuthenticateRequest;
use crate::protocol::sasl_handshake::SaslHandshakeRequest;
use bytes::Bytes;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Client security flags (global: every client subcommand takes them).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    /// PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, global = true, value_name = "PROTOCOL")]
    pub security_protocol: Option<String>,
    /// PEM CA certificates that signed the broker's (SSL, SASL_SSL; default: the system's
    /// bundle).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// SCRAM-SHA-512 (default), SCRAM-SHA-256 or PLAIN.
    #[arg(long, global = true, value_name = "MECHANISM")]
    pub sasl_mechanism: Option<String>,
    #[arg(long, global = true, value_name = "NAME")]
    pub sasl_username: Option<String>,
    /// Read the SASL password from the first line of stdin (else `RINGMQ_SASL_PASSWORD`).
    #[arg(long, global = true)]
    pub sasl_password_stdin: bool,
}

/// A SASL identity.
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sasl({}, {}, ****)", self.mechanism, self.username)
    }
}

/// How a client process connects: TLS (with the CAs it trusts) and a SASL identity.
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<Sasl>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Security(tls: {}, {:?})", self.tls.is_some(), self.sasl)
    }
}

impl SecurityArgs {
    /// Whether any security flag was given.
    pub fn is_set(&self) -> bool {
        self.security_protocol.is_some()
            || self.tls_ca.is_some()
            || self.sasl_mechanism.is_some()
            || self.sasl_username.is_some()
            || self.sasl_password_stdin
    }

    /// How to connect. `env` looks up `RINGMQ_SASL_PASSWORD`; `stdin_line` reads the
    /// password when `--sasl-password-stdin` is given.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        stdin_line: impl FnOnce() -> Result<String, String>,
    ) -> Result<Security, String> {
        let protocol = self.security_protocol.as_deref().unwrap_or("PLAINTEXT");
        let (sasl, tls) = match protocol.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (false, true),
            "SASL_PLAINTEXT" => (true, false),
            "SASL_SSL" => (true, true),
            other => {
                return Err(format!(
                    "--security-protocol {other}: not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ))
            }
        };
        if !sasl && (self.sasl_username.is_some() || self.sasl_mechanism.is_some()) {
            return Err(
                "--sasl-* flags need --security-protocol SASL_PLAINTEXT or SASL_SSL".into(),
            );
        }
        if !tls && self.tls_ca.is_some() {
            return Err("--tls-ca needs --security-protocol SSL or SASL_SSL".into());
        }
        let tls = match tls {
            true => {
                Some(crate::tls::client_config(self.tls_ca.as_deref()).map_err(|e| e.to_string())?)
            }
            false => None,
        };
        let sasl = match sasl {
            true => Some(self.identity(env, stdin_line)?),
            false => None,
        };
        Ok(Security { tls, sasl })
    }

    fn identity(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        stdin_line: impl FnOnce() -> Result<String, String>,
    ) -> Result<Sasl, String> {
        let name = self.sasl_mechanism.as_deref().unwrap_or("SCRAM-SHA-512");
        let mechanism = Mechanism::parse(&name.to_ascii_uppercase()).ok_or_else(|| {
            format!("--sasl-mechanism {name}: not SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
        })?;
        let username = self
            .sasl_username
            .clone()
            .ok_or("SASL needs --sasl-username")?;
        let password = if self.sasl_password_stdin {
            stdin_line()?
        } else {
            env("RINGMQ_SASL_PASSWORD")
                .ok_or("SASL needs --sasl-password-stdin or RINGMQ_SASL_PASSWORD")?
        };
        Ok(Sasl {
            mechanism,
            username,
            password,
        })
    }
}

static DEFAULT: OnceLock<Security> = OnceLock::new();

/// Set how every connection of this process connects (once; later calls are ignored).
pub fn set_default(security: Security) {
    let _ = DEFAULT.set(security);
}

/// The process's SASL identity, if one was set.
pub fn default_sasl() -> Option<&'static Sasl> {
    DEFAULT.get().and_then(|s| s.sasl.as_ref())
}

/// The process's TLS settings, if it connects over TLS.
pub fn default_tls() -> Option<&'static Arc<rustls::ClientConfig>> {
    DEFAULT.get().and_then(|s| s.tls.as_ref())
}

fn failed(what: &str, code: i16, message: Option<String>) -> ClientError {
    let what = match message {
        Some(m) if !m.is_empty() => format!("{what} ({m})"),
        _ => what.to_string(),
    };
    ClientError::Broker { what, code }
}

/// One SaslAuthenticate round trip: our token out, the broker's back.
async fn round_trip(conn: &mut Connection, token: Vec<u8>) -> Result<Bytes, ClientError> {
    let req = SaslAuthenticateRequest {
        auth_bytes: Bytes::from(token),
    };
    let resp = conn.call(&req).await?;
    if resp.error_code != 0 {
        return Err(failed(
            "SASL authentication",
            resp.error_code,
            resp.error_message,
        ));
    }
    Ok(resp.auth_bytes)
}

/// Authenticate `conn` (after ApiVersions) as `sasl`.
pub async fn authenticate(conn: &mut Connection, sasl: &Sasl) -> Result<(), ClientError> {
    let req = SaslHandshakeRequest {
        mechanism: sasl.mechanism.name().to_string(),
    };
    let version = conn.versions.pick::<SaslHandshakeRequest>()?;
    if version < 1 {
        return Err(ClientError::Unsupported {
            api_key: SaslHandshakeRequest::KEY,
        });
    }
    let resp = conn.call(&req).await?;
    if resp.error_code != 0 {
        let enabled = format!("broker offers {}", resp.mechanisms.join(", "));
        return Err(failed("SaslHandshake", resp.error_code, Some(enabled)));
    }
    if sasl.mechanism == Mechanism::Plain {
        let token = format!("\0{}\0{}", sasl.username, sasl.password).into_bytes();
        round_trip(conn, token).await?;
        return Ok(());
    }
    let nonce = crate::auth::random_nonce().map_err(ClientError::Io)?;
    let (mut client, first) = ScramClient::new(
        sasl.mechanism,
        &sasl.username,
        sasl.password.as_bytes(),
        &nonce,
    );
    let server_first = round_trip(conn, first).await?;
    let fin = client
        .client_final(&server_first)
        .map_err(|e| ClientError::Protocol(format!("SCRAM: {e}")))?;
    let server_final = round_trip(conn, fin).await?;
    client
        .verify_server_final(&server_final)
        .map_err(|e| ClientError::Protocol(format!("SCRAM: the broker's signature: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(p: &str, m: Option<&str>, u: Option<&str>, stdin: bool) -> SecurityArgs {
        SecurityArgs {
            security_protocol: Some(p.into()),
            tls_ca: None,
            sasl_mechanism: m.map(Into::into),
            sasl_username: u.map(Into::into),
            sasl_password_stdin: stdin,
        }
    }

    #[test]
    fn flags_resolve_to_an_identity() {
        let no_env = |_: &str| None;
        let env = |k: &str| (k == "RINGMQ_SASL_PASSWORD").then(|| "envpw".to_string());
        let stdin = || Ok("stdinpw".to_string());
        let none = SecurityArgs::default().resolve(&no_env, stdin).unwrap();
        assert!(none.sasl.is_none() && none.tls.is_none());
        let s = args("SASL_PLAINTEXT", None, Some("alice"), false)
            .resolve(&env, stdin)
            .unwrap();
        assert!(s.tls.is_none());
        let s = s.sasl.unwrap();
        assert_eq!(
            (s.mechanism, s.username.as_str(), s.password.as_str()),
            (Mechanism::ScramSha512, "alice", "envpw")
        );
        assert!(!format!("{s:?}").contains("envpw"));
        let s = args("sasl_plaintext", Some("PLAIN"), Some("a"), true)
            .resolve(&env, stdin)
            .unwrap()
            .sasl
            .unwrap();
        assert_eq!(
            (s.mechanism, s.password.as_str()),
            (Mechanism::Plain, "stdinpw")
        );
        for bad in [
            args("SASL_PLAINTEXT", None, None, false),
            args("SASL_PLAINTEXT", None, Some("a"), false),
            args("SASL_PLAINTEXT", Some("GSSAPI"), Some("a"), true),
            args("SSL", None, Some("a"), true),
            args("PLAINTEXT", None, Some("a"), true),
            args("SASL_TLS", None, Some("a"), true),
            SecurityArgs {
                tls_ca: Some("/ca.pem".into()),
                ..args("SASL_PLAINTEXT", None, Some("a"), true)
            },
            SecurityArgs {
                tls_ca: Some("/nonexistent/ca.pem".into()),
                ..args("SSL", None, None, false)
            },
        ] {
            assert!(bad.resolve(&no_env, stdin).is_err(), "{bad:?}");
        }
        // SASL_SSL: both, with the system's CA bundle by default.
        let s = args("SASL_SSL", None, Some("a"), true).resolve(&no_env, stdin);
        let s = s.unwrap();
        assert!(s.tls.is_some() && s.sasl.is_some());
    }
}
