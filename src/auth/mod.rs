//! SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and ACLs, sans-IO.
//!
//! * [`scram`]: RFC 5802 / RFC 7677 — deriving the stored credential from a salted password
//!   (only StoredKey, ServerKey, salt and iterations are ever kept, never the password), the
//!   server's two-step exchange and the client's (for ringmq's own CLI and bench).
//! * [`plain`]: RFC 4616 PLAIN, checked against the SCRAM-stored credential.
//! * [`acl`]: Kafka's ACL model (bindings, filters, LITERAL / PREFIXED patterns) and the
//!   decision of the authorizer (DENY over ALLOW, implied operations).
//! * [`session`]: one connection's SASL state machine (handshake, exchange, re-authentication
//!   per KIP-368), fed the bytes of SaslHandshake / SaslAuthenticate and answering what to send.
//!
//! Nothing here touches a socket, a file or a clock: the caller supplies the credential
//! lookup, the server nonce and the time. Every comparison of secret-derived bytes is
//! constant-time (`subtle`). Errors never carry the password or the proof.

pub mod acl;
pub mod plain;
pub mod scram;
pub mod session;

use std::fmt;

/// A SASL mechanism ringmq serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

/// The SCRAM mechanisms, in the order PLAIN looks for a stored credential.
pub const SCRAM_MECHANISMS: [Mechanism; 2] = [Mechanism::ScramSha512, Mechanism::ScramSha256];

impl Mechanism {
    /// The IANA / Kafka name (`SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
    /// Parse a mechanism name (exact, upper case, as Kafka clients send it).
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }
    /// Kafka's ScramMechanism type byte (AlterUserScramCredentials): 1 SHA-256, 2 SHA-512.
    pub fn scram_type(self) -> i8 {
        match self {
            Mechanism::Plain => 0,
            Mechanism::ScramSha256 => 1,
            Mechanism::ScramSha512 => 2,
        }
    }
    /// The SCRAM mechanism of Kafka's type byte.
    pub fn from_scram_type(t: i8) -> Option<Mechanism> {
        match t {
            1 => Some(Mechanism::ScramSha256),
            2 => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }
    pub fn is_scram(self) -> bool {
        self != Mechanism::Plain
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Longest user name accepted (in credentials and in SASL exchanges).
pub const USER_NAME_BYTES_MAX: usize = 256;

/// Whether `name` may be a user: 1 to [`USER_NAME_BYTES_MAX`] bytes of UTF-8 without control
/// characters (it travels in SASL messages, metadata files and principals).
pub fn validate_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > USER_NAME_BYTES_MAX {
        return Err(format!(
            "a user name must be 1 to {USER_NAME_BYTES_MAX} bytes, not {}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a user name may not hold control characters".into());
    }
    Ok(())
}

/// Fill `buf` from the kernel's random source (getrandom(2)). Used for salts and nonces.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into memory we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("getrandom: {e}"));
        }
        filled += n as usize;
    }
    Ok(())
}

/// A fresh SCRAM nonce: 24 random bytes as base64 (printable, no `,`).
pub fn random_nonce() -> Result<String, String> {
    use base64::Engine;
    let mut b = [0u8; 24];
    random_bytes(&mut b)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_and_types() {
        for m in [
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
        ] {
            assert_eq!(Mechanism::parse(m.name()), Some(m));
        }
        assert_eq!(Mechanism::parse("scram-sha-256"), None);
        assert_eq!(Mechanism::from_scram_type(2), Some(Mechanism::ScramSha512));
        assert_eq!(Mechanism::from_scram_type(0), None);
        assert!(validate_user_name("alice").is_ok());
        assert!(validate_user_name("").is_err());
        assert!(validate_user_name("a\nb").is_err());
        assert!(validate_user_name(&"x".repeat(257)).is_err());
        let (a, b) = (random_nonce().unwrap(), random_nonce().unwrap());
        assert_ne!(a, b);
        assert!(!a.contains(','));
    }
}
