//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) without channel binding, as Kafka
//! uses them.
//!
//! ```text
//! SaltedPassword  = PBKDF2-HMAC-H(password, salt, iterations)
//! ClientKey       = HMAC(SaltedPassword, "Client Key")     StoredKey = H(ClientKey)
//! ServerKey       = HMAC(SaltedPassword, "Server Key")
//! AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
//! ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
//! ServerSignature = HMAC(ServerKey, AuthMessage)
//! ```
//!
//! The broker keeps only [`ScramCredential`] (salt, iterations, StoredKey, ServerKey): it
//! recovers ClientKey from the proof and compares H(ClientKey) with StoredKey in constant
//! time. Every message is bounded ([`MESSAGE_BYTES_MAX`]) and parsed without panicking.

use super::Mechanism;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use std::fmt;
use subtle::ConstantTimeEq;

/// Fewest PBKDF2 iterations accepted for a stored credential (Kafka's minimum).
pub const MIN_ITERATIONS: i32 = 4096;
/// Most PBKDF2 iterations accepted (Kafka's maximum; bounds the cost of a PLAIN login).
pub const MAX_ITERATIONS: i32 = 16384;
/// Salt length bounds for a stored credential.
pub const SALT_BYTES_MIN: usize = 8;
pub const SALT_BYTES_MAX: usize = 128;
/// Iterations of credentials ringmq creates itself (Kafka's default).
pub const DEFAULT_ITERATIONS: i32 = 4096;
/// Salt length of credentials ringmq creates itself.
pub const DEFAULT_SALT_BYTES: usize = 32;
/// Longest SCRAM message accepted from a peer.
pub const MESSAGE_BYTES_MAX: usize = 2048;

/// Why a SCRAM exchange failed. Never holds a password, key or proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The peer's message does not follow RFC 5802.
    Malformed(&'static str),
    /// No credential for the user and mechanism.
    UnknownUser,
    /// The client's proof (or, on the client, the server's signature) does not match.
    BadProof,
    /// The server answered with `e=...`, or a message the client does not accept.
    ServerError(String),
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramError::Malformed(why) => write!(f, "malformed SCRAM message: {why}"),
            ScramError::UnknownUser => write!(f, "unknown user"),
            ScramError::BadProof => write!(f, "invalid credentials"),
            ScramError::ServerError(e) => write!(f, "server error: {e}"),
        }
    }
}

/// A stored SCRAM credential: what the broker keeps instead of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub mechanism: Mechanism,
    pub salt: Vec<u8>,
    pub iterations: i32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ScramCredential({}, {} iterations)",
            self.mechanism, self.iterations
        )
    }
}

fn hmac(m: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match m {
        Mechanism::ScramSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key size");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(m: Mechanism, data: &[u8]) -> Vec<u8> {
    match m {
        Mechanism::ScramSha256 => Sha256::digest(data).to_vec(),
        _ => Sha512::digest(data).to_vec(),
    }
}

/// Digest length of the mechanism's hash.
pub fn hash_len(m: Mechanism) -> usize {
    match m {
        Mechanism::ScramSha256 => 32,
        _ => 64,
    }
}

/// `Hi(password, salt, iterations)`: PBKDF2 with HMAC of the mechanism's hash.
pub fn salted_password(m: Mechanism, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
    let mut out = vec![0u8; hash_len(m)];
    let rounds = iterations.max(1) as u32;
    match m {
        Mechanism::ScramSha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out),
        _ => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out),
    }
    out
}

impl ScramCredential {
    /// The stored credential for a SaltedPassword (what AlterUserScramCredentials carries).
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: Vec<u8>,
        iterations: i32,
        salted: &[u8],
    ) -> ScramCredential {
        let client_key = hmac(mechanism, salted, b"Client Key");
        ScramCredential {
            mechanism,
            stored_key: hash(mechanism, &client_key),
            server_key: hmac(mechanism, salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// The stored credential for a password, salt and iteration count.
    pub fn from_password(
        mechanism: Mechanism,
        password: &[u8],
        salt: Vec<u8>,
        iterations: i32,
    ) -> ScramCredential {
        let salted = salted_password(mechanism, password, &salt, iterations);
        Self::from_salted_password(mechanism, salt, iterations, &salted)
    }

    /// Whether `password` is the one this credential was made from (PLAIN). Costs one
    /// PBKDF2 run of `iterations`; the comparison is constant-time.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let salted = salted_password(self.mechanism, password, &self.salt, self.iterations);
        let client_key = hmac(self.mechanism, &salted, b"Client Key");
        bool::from(hash(self.mechanism, &client_key).ct_eq(&self.stored_key))
    }

    /// Whether the credential's shape is one the broker stores: a SCRAM mechanism, iterations
    /// within bounds, salt and keys of sane lengths.
    pub fn validate(&self) -> Result<(), String> {
        if !self.mechanism.is_scram() {
            return Err("only SCRAM mechanisms have stored credentials".into());
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(format!(
                "iterations {} must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}",
                self.iterations
            ));
        }
        if !(SALT_BYTES_MIN..=SALT_BYTES_MAX).contains(&self.salt.len()) {
            return Err(format!(
                "a salt must be {SALT_BYTES_MIN} to {SALT_BYTES_MAX} bytes, not {}",
                self.salt.len()
            ));
        }
        let n = hash_len(self.mechanism);
        if self.stored_key.len() != n || self.server_key.len() != n {
            return Err(format!("{} keys must be {n} bytes", self.mechanism));
        }
        Ok(())
    }
}

/// `saslname` decoding: `=2C` is `,`, `=3D` is `=`; any other `=` is malformed.
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn text(bytes: &[u8]) -> Result<&str, ScramError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(ScramError::Malformed("message too long"));
    }
    std::str::from_utf8(bytes).map_err(|_| ScramError::Malformed("not UTF-8"))
}

/// The parsed client-first message.
struct ClientFirst<'a> {
    /// `n,,` or `n,a=...,` (the c= attribute of the final message must repeat it).
    gs2_header: &'a str,
    user: String,
    nonce: &'a str,
    bare: &'a str,
}

fn parse_client_first(msg: &str) -> Result<ClientFirst<'_>, ScramError> {
    let malformed = ScramError::Malformed;
    let (flag, rest) = msg.split_once(',').ok_or(malformed("no GS2 header"))?;
    if flag != "n" && flag != "y" {
        return Err(malformed("channel binding is not supported"));
    }
    let (authzid, bare) = rest.split_once(',').ok_or(malformed("no GS2 header"))?;
    let gs2_header = &msg[..flag.len() + authzid.len() + 2];
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or(malformed("no user name"))?;
    let user = decode_saslname(user)?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or(malformed("no valid nonce"))?;
    for ext in attrs {
        if ext.starts_with("m=") {
            return Err(malformed("mandatory extension not supported"));
        }
        if ext.starts_with("tokenauth=") {
            return Err(malformed("delegation tokens are not supported"));
        }
    }
    if !authzid.is_empty() {
        let a = authzid.strip_prefix("a=").ok_or(malformed("bad authzid"))?;
        if decode_saslname(a)? != user {
            return Err(malformed("authorization id differs from the user"));
        }
    }
    if super::validate_user_name(&user).is_err() {
        return Err(malformed("bad user name"));
    }
    Ok(ClientFirst {
        gs2_header,
        user,
        nonce,
        bare,
    })
}

/// The server side after it sent server-first, waiting for client-final.
pub struct ScramServer {
    credential: ScramCredential,
    user: String,
    gs2_header: String,
    /// The client's nonce followed by ours (the `r=` of server-first).
    nonce: String,
    client_nonce: String,
    /// `client-first-bare "," server-first "," ` (the AuthMessage up to the client final).
    auth_prefix: String,
}

impl ScramServer {
    /// Read client-first; find the user's credential with `lookup`; answer server-first.
    /// `server_nonce` is the server's random part (printable, no `,`).
    pub fn start(
        client_first: &[u8],
        server_nonce: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<(ScramServer, String, Vec<u8>), ScramError> {
        let first = parse_client_first(text(client_first)?)?;
        let credential = lookup(&first.user).ok_or(ScramError::UnknownUser)?;
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let auth_prefix = format!("{},{server_first},", first.bare);
        let server = ScramServer {
            credential,
            user: first.user.clone(),
            gs2_header: first.gs2_header.to_string(),
            nonce,
            client_nonce: first.nonce.to_string(),
            auth_prefix,
        };
        Ok((server, first.user, server_first.into_bytes()))
    }

    /// Read client-final; check the nonce, the channel-binding echo and the proof. On success
    /// answer server-final (`v=ServerSignature`) and the authenticated user name.
    pub fn finish(self, client_final: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let msg = text(client_final)?;
        let malformed = ScramError::Malformed;
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(malformed("no proof"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(malformed("no channel binding attribute"))?;
        if B64.decode(cbind).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(malformed("channel binding attribute differs"));
        }
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(malformed("no nonce"))?;
        // librdkafka (up to at least 2.3) sends its own nonce again in front of the
        // combined one; Kafka accepts any nonce that ends with the combined one. Accept
        // exactly those two forms.
        let doubled = format!("{}{}", self.client_nonce, self.nonce);
        if nonce != self.nonce && nonce != doubled {
            return Err(malformed("nonce differs"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| malformed("proof not base64"))?;
        let m = self.credential.mechanism;
        if proof.len() != hash_len(m) {
            return Err(malformed("proof of the wrong length"));
        }
        let auth_message = format!("{}{without_proof}", self.auth_prefix);
        let signature = hmac(m, &self.credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if !bool::from(hash(m, &client_key).ct_eq(&self.credential.stored_key)) {
            return Err(ScramError::BadProof);
        }
        let server_sig = hmac(m, &self.credential.server_key, auth_message.as_bytes());
        Ok((
            self.user,
            format!("v={}", B64.encode(server_sig)).into_bytes(),
        ))
    }
}

/// The client side (ringmq's own CLI and bench): client-first, then client-final, then a
/// check of the server's signature.
pub struct ScramClient {
    mechanism: Mechanism,
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    /// Set by [`ScramClient::client_final`]: the ServerSignature the server must send.
    expected_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// Start an exchange for `user`; returns the client and the client-first message.
    pub fn new(mechanism: Mechanism, user: &str, password: &[u8], nonce: &str) -> (Self, Vec<u8>) {
        let bare = format!("n={},r={nonce}", encode_saslname(user));
        let first = format!("n,,{bare}").into_bytes();
        let client = ScramClient {
            mechanism,
            password: password.to_vec(),
            nonce: nonce.to_string(),
            client_first_bare: bare,
            expected_signature: None,
        };
        (client, first)
    }

    /// Read server-first and answer client-final (with the proof).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let msg = text(server_first)?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_string()));
        }
        let mut attrs = msg.split(',');
        let bad = |why: &str| ScramError::ServerError(why.to_string());
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| n.starts_with(&self.nonce) && n.len() > self.nonce.len())
            .ok_or_else(|| bad("server nonce does not extend ours"))?;
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| bad("no salt"))?;
        let iterations: i32 = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| bad("iterations missing or out of range"))?;
        let m = self.mechanism;
        let salted = salted_password(m, &self.password, &salt, iterations);
        let client_key = hmac(m, &salted, b"Client Key");
        let stored_key = hash(m, &client_key);
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth = format!("{},{msg},{without_proof}", self.client_first_bare);
        let sig = hmac(m, &stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_key = hmac(m, &salted, b"Server Key");
        self.expected_signature = Some(hmac(m, &server_key, auth.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Check server-final: the server proved it knows the credential.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let msg = text(server_final)?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_string()));
        }
        let sig = msg
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| ScramError::ServerError("no server signature".into()))?;
        match &self.expected_signature {
            Some(want) if bool::from(want.ct_eq(&sig)) => Ok(()),
            _ => Err(ScramError::BadProof),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
    const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const RFC7677_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
        s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677_credential() -> ScramCredential {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        ScramCredential::from_password(Mechanism::ScramSha256, b"pencil", salt, 4096)
    }

    #[test]
    fn rfc7677_server_side() {
        let cred = rfc7677_credential();
        let (server, user, first) =
            ScramServer::start(RFC7677_CLIENT_FIRST.as_bytes(), RFC7677_SERVER_NONCE, |u| {
                (u == "user").then(|| cred.clone())
            })
            .unwrap();
        assert_eq!(user, "user");
        assert_eq!(String::from_utf8(first).unwrap(), RFC7677_SERVER_FIRST);
        let (user, fin) = server.finish(RFC7677_CLIENT_FINAL.as_bytes()).unwrap();
        assert_eq!(user, "user");
        assert_eq!(String::from_utf8(fin).unwrap(), RFC7677_SERVER_FINAL);
    }

    #[test]
    fn rfc7677_client_side() {
        let (mut c, first) = ScramClient::new(
            Mechanism::ScramSha256,
            "user",
            b"pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(first, RFC7677_CLIENT_FIRST.as_bytes());
        let fin = c.client_final(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(fin).unwrap(), RFC7677_CLIENT_FINAL);
        c.verify_server_final(RFC7677_SERVER_FINAL.as_bytes())
            .unwrap();
        assert_eq!(
            c.verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadProof)
        );
    }

    /// SCRAM-SHA-512 has no RFC example: this vector was computed with Python's hashlib
    /// (pbkdf2_hmac, hmac) for password "pencil", the RFC 7677 salt and 4096 iterations.
    #[test]
    fn sha512_keys_match_an_independent_computation() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let c = ScramCredential::from_password(Mechanism::ScramSha512, b"pencil", salt, 4096);
        assert_eq!(B64.encode(&c.stored_key), SHA512_STORED_KEY);
        assert_eq!(B64.encode(&c.server_key), SHA512_SERVER_KEY);
    }
    const SHA512_STORED_KEY: &str =
        "6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==";
    const SHA512_SERVER_KEY: &str =
        "jZHbYjC1aHh0/hKbxyBuGFjDrgjgKTT1esA7awWiKcRZ0o/0b1yWEebBeSVkkCFewf91nLDfKF24mvD5nmE6rA==";

    fn exchange(m: Mechanism, stored_pw: &[u8], client_pw: &[u8]) -> Result<(), ScramError> {
        let cred = ScramCredential::from_password(m, stored_pw, vec![7; 16], 4096);
        let (mut client, first) = ScramClient::new(m, "al,i=ce", client_pw, "abc");
        let (server, user, sfirst) =
            ScramServer::start(&first, "XYZ", |u| (u == "al,i=ce").then(|| cred.clone()))?;
        assert_eq!(user, "al,i=ce");
        let fin = client.client_final(&sfirst)?;
        let (_, sfin) = server.finish(&fin)?;
        client.verify_server_final(&sfin)
    }

    /// librdkafka's client-final repeats its nonce before the combined one (Kafka accepts
    /// it); the AuthMessage then holds that form on both sides.
    #[test]
    fn librdkafka_doubled_nonce_is_accepted() {
        let m = Mechanism::ScramSha512;
        let cred = ScramCredential::from_password(m, b"pw", vec![7; 16], 4096);
        let (server, _, _) =
            ScramServer::start(b"n,,n=u,r=cn", "SN", |_| Some(cred.clone())).unwrap();
        let salted = salted_password(m, b"pw", &cred.salt, 4096);
        let client_key = hmac(m, &salted, b"Client Key");
        let without_proof = "c=biws,r=cncnSN";
        let auth = format!(
            "n=u,r=cn,r=cnSN,s={},i=4096,{without_proof}",
            B64.encode(&cred.salt)
        );
        let sig = hmac(m, &cred.stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let fin = format!("{without_proof},p={}", B64.encode(proof));
        server.finish(fin.as_bytes()).unwrap();
    }

    #[test]
    fn both_mechanisms_accept_the_password_and_refuse_others() {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            exchange(m, b"s3cret", b"s3cret").unwrap();
            assert_eq!(
                exchange(m, b"s3cret", b"s3cret!"),
                Err(ScramError::BadProof)
            );
            let c = ScramCredential::from_password(m, b"s3cret", vec![1; 16], 4096);
            assert!(c.verify_password(b"s3cret"));
            assert!(!c.verify_password(b"s3cre"));
            assert!(c.validate().is_ok());
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        let cred = rfc7677_credential();
        let lookup = |_: &str| Some(cred.clone());
        for bad in [
            "",
            "n,,",
            "p=tls-unique,,n=user,r=abc",
            "n,,n=user",
            "n,,n=us=er,r=abc",
            "n,,n=user,r=a,bc,m=x",
            "n,,n=user,r=abc,tokenauth=true",
            "n,a=other,n=user,r=abc",
            "n,,n=,r=abc",
        ] {
            assert!(
                ScramServer::start(bad.as_bytes(), "X", lookup).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(ScramServer::start(&[0xff, 0xfe], "X", lookup).is_err());
        let huge = format!("n,,n=user,r={}", "a".repeat(MESSAGE_BYTES_MAX));
        assert!(ScramServer::start(huge.as_bytes(), "X", lookup).is_err());
        assert!(matches!(
            ScramServer::start(RFC7677_CLIENT_FIRST.as_bytes(), "X", |_| None),
            Err(ScramError::UnknownUser)
        ));
        // A client-final with another nonce, another c= or a short proof.
        for fin in [
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=AAAA",
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        ] {
            let (server, _, _) = ScramServer::start(
                RFC7677_CLIENT_FIRST.as_bytes(),
                RFC7677_SERVER_NONCE,
                lookup,
            )
            .unwrap();
            assert!(server.finish(fin.as_bytes()).is_err(), "{fin} accepted");
        }
    }

    #[test]
    fn stored_credentials_are_validated() {
        let mut c = rfc7677_credential();
        assert!(c.validate().is_ok());
        c.iterations = 4095;
        assert!(c.validate().is_err());
        c.iterations = 4096;
        c.salt = vec![1; 4];
        assert!(c.validate().is_err());
        c.salt = vec![1; 16];
        c.stored_key.pop();
        assert!(c.validate().is_err());
        assert_eq!(
            format!("{c:?}"),
            "ScramCredential(SCRAM-SHA-256, 4096 iterations)"
        );
    }
}
