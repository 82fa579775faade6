//! SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd` in one message, checked against
//! the user's SCRAM-stored credential (the password is hashed with the stored salt and
//! iterations and compared with StoredKey in constant time; it is never stored or logged).
//! PLAIN sends the password in the clear: use it only where the network is trusted (TLS is
//! a later step).

use super::scram::ScramCredential;

/// Longest PLAIN message accepted.
pub const MESSAGE_BYTES_MAX: usize = 1024;

/// Why a PLAIN message was refused. Never holds the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainError {
    Malformed(&'static str),
    /// Unknown user or wrong password (not told apart).
    InvalidCredentials,
}

/// The parsed message: (user, password).
pub fn parse(msg: &[u8]) -> Result<(&str, &[u8]), PlainError> {
    if msg.len() > MESSAGE_BYTES_MAX {
        return Err(PlainError::Malformed("message too long"));
    }
    let mut parts = msg.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Malformed(
            "expected authzid NUL user NUL password",
        ));
    };
    let user = std::str::from_utf8(user).map_err(|_| PlainError::Malformed("user not UTF-8"))?;
    if super::validate_user_name(user).is_err() || password.is_empty() {
        return Err(PlainError::Malformed("empty or invalid user or password"));
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(PlainError::Malformed(
            "authorization id differs from the user",
        ));
    }
    Ok((user, password))
}

/// Check a PLAIN message with the user's stored credentials (`lookup` gives the first SCRAM
/// credential the user has). Returns the user name. An unknown user costs the same PBKDF2
/// run as a known one, so timing does not tell them apart.
pub fn authenticate(
    msg: &[u8],
    lookup: impl FnOnce(&str) -> Option<ScramCredential>,
) -> Result<String, PlainError> {
    let (user, password) = parse(msg)?;
    match lookup(user) {
        Some(cred) if cred.verify_password(password) => Ok(user.to_string()),
        Some(_) => Err(PlainError::InvalidCredentials),
        None => {
            let decoy = ScramCredential {
                mechanism: super::Mechanism::ScramSha512,
                salt: vec![0; 16],
                iterations: super::scram::MIN_ITERATIONS,
                stored_key: vec![0; 64],
                server_key: vec![0; 64],
            };
            let _ = decoy.verify_password(password);
            Err(PlainError::InvalidCredentials)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Mechanism;

    #[test]
    fn plain_checks_the_scram_credential() {
        let cred = ScramCredential::from_password(Mechanism::ScramSha256, b"pw", vec![3; 16], 4096);
        let lookup = |u: &str| (u == "bob").then(|| cred.clone());
        assert_eq!(authenticate(b"\0bob\0pw", lookup), Ok("bob".into()));
        assert_eq!(authenticate(b"bob\0bob\0pw", lookup), Ok("bob".into()));
        assert_eq!(
            authenticate(b"\0bob\0pX", lookup),
            Err(PlainError::InvalidCredentials)
        );
        assert_eq!(
            authenticate(b"\0eve\0pw", lookup),
            Err(PlainError::InvalidCredentials)
        );
        for bad in [
            &b""[..],
            b"bob",
            b"\0bob",
            b"\0\0pw",
            b"eve\0bob\0pw",
            b"\0bob\0",
        ] {
            assert!(
                matches!(authenticate(bad, lookup), Err(PlainError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(authenticate(&vec![b'a'; 2000], lookup).is_err());
    }
}
