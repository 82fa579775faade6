//! TLS for the Kafka listeners (`SSL`, `SASL_SSL`) and for ringmq's own client: rustls 0.23
//! with the `ring` provider (pure Rust and a little C/asm through `cc`; the default
//! aws-lc-rs provider needs a long C build), TLS 1.3 and 1.2 with rustls' default suites
//! (AEAD only: AES-GCM and ChaCha20-Poly1305, ECDHE key exchange; no CBC, RC4, RSA key
//! exchange or renegotiation).
//!
//! A connection is a [`Stream`]: plain TCP, or rustls over glommio's `TcpStream`, driven
//! by futures-rustls (rustls' sans-IO `ServerConnection` fed through the stream's
//! `AsyncRead`/`AsyncWrite`; no runtime of its own). Buffers are bounded by rustls: a
//! handshake message is at most 64 KiB, received TLS records are read at most one record
//! ahead, and written records wait in a bounded send buffer, so a peer can make a
//! connection hold little more than the plaintext limits of [`crate::server::conn`].
//!
//! Mutual TLS: with a client CA, a client must present a certificate that CA signed; its
//! principal is `User:<subject CN>` ([`subject_cn`]).
//!
//! Under TLS, record bytes are encrypted into TLS records as they are written: the fetch
//! path's zero-copy send (log buffers written straight to the socket) becomes one copy
//! into the TLS record plus its encryption.

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why TLS could not be set up, or a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// A PEM file that cannot be read or holds nothing usable.
    File { path: String, why: String },
    /// rustls refused the settings (a key that does not fit the certificate, ...).
    Config(String),
    /// The handshake with a peer failed: bad bytes, a refused certificate, or too slow.
    Handshake(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File { path, why } => write!(f, "{path}: {why}"),
            TlsError::Config(why) => write!(f, "TLS settings refused: {why}"),
            TlsError::Handshake(why) => write!(f, "TLS handshake failed: {why}"),
        }
    }
}

/// rustls 0.23.48 marks the ring provider deprecated because it has no post-quantum key
/// exchange (X25519MLKEM768, which aws-lc-rs has); its classical ECDHE groups (X25519,
/// P-256, P-384) are what Kafka's clients negotiate today. ring is kept for its build (no
/// long C build); see `Cargo.toml`.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn file_error(path: &Path, why: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

fn config_error(e: impl fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

/// Every certificate of a PEM file, in order (the leaf first for a chain); at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1; not encrypted).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn root_store(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// The server side of the TLS listeners: the certificate chain and key (PEM), and with
/// `client_ca` mutual TLS (a client certificate signed by that CA is required).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(config_error)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(root_store(ca)?);
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(config_error)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(read_certs(cert)?, read_key(key)?)
        .map_err(config_error)?;
    Ok(Arc::new(config))
}

/// Where a client finds the CAs it trusts when none is given (Debian's bundle).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The client side: trust the CAs of the PEM file `ca` (default [`SYSTEM_CA_BUNDLE`]).
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = root_store(ca.unwrap_or(Path::new(SYSTEM_CA_BUNDLE)))?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(config_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One connection's byte stream: plain TCP or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Server(Box<futures_rustls::server::TlsStream<TcpStream>>),
    Client(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

/// An accepted TLS connection and the principal of its client certificate, if any.
pub struct Accepted {
    pub stream: Stream,
    /// `User:<CN>` of a verified client certificate (mutual TLS).
    pub principal: Option<String>,
}

/// Run the server handshake on an accepted TCP connection within `timeout`.
pub async fn accept(
    config: &Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<Accepted, TlsError> {
    let acceptor = futures_rustls::TlsAcceptor::from(config.clone());
    let handshake = glommio::timer::timeout(timeout, async { Ok(acceptor.accept(tcp).await) });
    let tls = handshake
        .await
        .map_err(|_| TlsError::Handshake(format!("not done within {} ms", timeout.as_millis())))?
        .map_err(|e| TlsError::Handshake(e.to_string()))?;
    let principal = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| subject_cn(leaf))
        .map(|cn| format!("User:{cn}"));
    Ok(Accepted {
        stream: Stream::Server(Box::new(tls)),
        principal,
    })
}

/// Run the client handshake with the broker `host` (a DNS name or an IP address, as its
/// certificate names it).
pub async fn connect(
    config: &Arc<rustls::ClientConfig>,
    tcp: TcpStream,
    host: &str,
) -> Result<Stream, TlsError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| TlsError::Handshake(format!("'{host}' as a server name: {e}")))?;
    let connector = futures_rustls::TlsConnector::from(config.clone());
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| TlsError::Handshake(e.to_string()))?;
    Ok(Stream::Client(Box::new(tls)))
}

impl Stream {
    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Server(s) => s.get_ref().0,
            Stream::Client(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Server(s) => Pin::new(s.as_mut()).poll_close(cx),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// One DER element: (tag, content, what follows). `None` if the length runs past the bytes
/// or uses more than 4 length bytes.
fn der_next(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x));
        (len, &b[n..])
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// X.509 version, `[0] EXPLICIT`.
const VERSION_TAG: u8 = 0xa0;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// The subject's common name (CN) of a DER certificate, if it has one (the first, as UTF-8;
/// UTF8String, PrintableString, IA5String or TeletexString).
pub fn subject_cn(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, cert, _) = der_next(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der_next(cert)? else {
        return None;
    };
    let mut rest = tbs;
    if der_next(rest)?.0 == VERSION_TAG {
        rest = der_next(rest)?.2;
    }
    // serialNumber, signature, issuer, validity; then the subject.
    for _ in 0..4 {
        rest = der_next(rest)?.2;
    }
    let (SEQUENCE, mut names, _) = der_next(rest)? else {
        return None;
    };
    while !names.is_empty() {
        let (SET, mut set, next) = der_next(names)? else {
            return None;
        };
        names = next;
        while !set.is_empty() {
            let (SEQUENCE, pair, next) = der_next(set)? else {
                return None;
            };
            set = next;
            let (OID, oid, value) = der_next(pair)? else {
                return None;
            };
            if oid == COMMON_NAME {
                let (tag, text, _) = der_next(value)?;
                return matches!(tag, 0x0c | 0x13 | 0x14 | 0x16)
                    .then(|| String::from_utf8(text.to_vec()).ok())
                    .flatten();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed test certificate, subject `O=ringmq test, CN=alice` (made with
    /// `openssl req -x509 -newkey ec ... -subj "/O=ringmq test/CN=alice"`; its key is not kept).
    const ALICE: &str = "-----BEGIN CERTIFICATE-----
MIIBoTCCAUegAwIBAgIUFvHKuvk3uGUhZWDiMN3b5Jk8zbowCgYIKoZIzj0EAwIw
JjEUMBIGA1UECgwLcmluZ21xIHRlc3QxDjAMBgNVBAMMBWFsaWNlMB4XDTI2MTIw
NzE1MTYxMloXDTM2MTIwNDE1MTYxMlowJjEUMBIGA1UECgwLcmluZ21xIHRlc3Qx
DjAMBgNVBAMMBWFsaWNlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/A5BjQln
t0uMqcQgESzE+tqsP+LcVWLJbPJUKPeADhnZimUzvZzqd5gMRtsSvkREPBnLJ0TO
p179gk0BCWfEPKNTMFEwHQYDVR0OBBYEFMXktigmbHApeBmDJOu98/GqSkIUMB8G
A1UdIwQYMBaAFMXktigmbHApeBmDJOu98/GqSkIUMA8GA1UdEwEB/wQFMAMBAf8w
CgYIKoZIzj0EAwIDSAAwRQIgB26wHxzv+uv/CbIlsLLkpTlGvvkDpD2bzjdwJsjk
+coCIQDsTG/JgKxi+NNLLamBYt1JvQyVBlPHzBFjCtMX/JZtPw==
-----END CERTIFICATE-----
";

    #[test]
    fn the_common_name_is_read_from_the_subject_not_the_issuer_or_junk() {
        let der = CertificateDer::from_pem_slice(ALICE.as_bytes()).expect("pem");
        assert_eq!(subject_cn(&der).as_deref(), Some("alice"));
        // Every cut of the certificate, and every flipped byte, answers without a panic.
        for n in 0..der.len() {
            let _ = subject_cn(&der[..n]);
            let mut bad = der.to_vec();
            bad[n] ^= 0xff;
            let _ = subject_cn(&bad);
        }
        assert_eq!(subject_cn(&[]), None);
        assert_eq!(subject_cn(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn missing_or_empty_files_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("ringmq-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        let err = read_certs(&empty).unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let err = server_config(&dir.join("none.pem"), &empty, None).unwrap_err();
        assert!(err.to_string().contains("none.pem"), "{err}");
        let alice = dir.join("alice.pem");
        std::fs::write(&alice, ALICE).unwrap();
        // A certificate without its key is refused.
        assert!(server_config(&alice, &alice, None).is_err());
        assert!(client_config(Some(&alice)).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
