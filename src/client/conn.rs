//! One connection to a broker, on the current glommio executor.
//!
//! A connection splits into a [`ConnWriter`] and a [`ConnReader`] so requests can be
//! pipelined: one task writes requests while another reads responses. Kafka answers the
//! requests of a connection in order, so the reader is told which correlation id to expect
//! next and checks it; a mismatch is a protocol error that ends the connection. Each request
//! is encoded into one reused buffer and written with a single `write_all`.
//!
//! Bounds: a response frame larger than [`MAX_RESPONSE_BYTES`] is refused before its body is
//! read.

use super::api::{Api, VersionTable};
use super::ClientError;
use crate::protocol::api_versions::{self, ApiVersionsRequest, ApiVersionsResponse};
use crate::protocol::frame::{self, FrameStatus};
use crate::protocol::header::{response_header_version, RequestHeader, ResponseHeader};
use crate::protocol::{ErrorCode, Reader, Writer};
use bytes::{Bytes, BytesMut};
use futures_lite::io::{BufReader, ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

/// Largest response frame accepted (a Fetch answer is capped by its `max_bytes`, which the
/// bench keeps well below this).
pub const MAX_RESPONSE_BYTES: usize = 128 << 20;
/// Read buffer per connection.
const READ_BUFFER_BYTES: usize = 256 << 10;
/// ApiVersions version tried first (flexible); the broker answers UNSUPPORTED_VERSION with
/// its table if it is older, and we retry at v0.
const API_VERSIONS_VERSION: i16 = 3;

/// Writes requests; owns the correlation-id counter.
pub struct ConnWriter {
    half: WriteHalf<TcpStream>,
    buf: Vec<u8>,
    next_correlation_id: i32,
    client_id: String,
}

/// Reads responses in request order.
pub struct ConnReader {
    half: BufReader<ReadHalf<TcpStream>>,
}

/// A connected, version-negotiated connection.
pub struct Connection {
    pub writer: ConnWriter,
    pub reader: ConnReader,
    pub versions: VersionTable,
}

impl ConnWriter {
    /// The correlation id the next request will carry.
    pub fn next_correlation_id(&self) -> i32 {
        self.next_correlation_id
    }

    /// Encode and write one request; returns its correlation id.
    pub async fn send_raw(
        &mut self,
        api_key: i16,
        api_version: i16,
        body: impl FnOnce(&mut Writer),
    ) -> Result<i32, ClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id: Some(self.client_id.clone()),
        };
        let mut w = Writer::new();
        header.encode(&mut w, header.header_version());
        body(&mut w);
        let parts = frame::into_frame(w).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.buf.clear();
        for p in &parts {
            self.buf.extend_from_slice(p);
        }
        self.half
            .write_all(&self.buf)
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        Ok(correlation_id)
    }

    pub async fn send<A: Api>(&mut self, req: &A, version: i16) -> Result<i32, ClientError> {
        self.send_raw(A::KEY, version, |w| req.encode(w, version))
            .await
    }
}

impl ConnReader {
    /// Read the next whole frame (without its size prefix).
    pub async fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        let mut prefix = [0u8; frame::SIZE_PREFIX_BYTES];
        self.half
            .read_exact(&mut prefix)
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let size = match frame::check_frame(&prefix, MAX_RESPONSE_BYTES) {
            FrameStatus::Incomplete { needed } => needed,
            FrameStatus::Complete { .. } => 0,
            FrameStatus::TooLarge { claimed } => {
                return Err(ClientError::Protocol(format!(
                    "response frame of {claimed} bytes refused"
                )))
            }
            FrameStatus::Invalid => {
                return Err(ClientError::Protocol("invalid response frame size".into()))
            }
        };
        let mut body = BytesMut::zeroed(size);
        self.half
            .read_exact(&mut body)
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        Ok(body.freeze())
    }

    /// Read the response to the request `correlation_id` of `A` at `version`.
    pub async fn recv<A: Api>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> Result<A::Response, ClientError> {
        let mut r = self.expect(A::KEY, version, correlation_id).await?;
        Ok(A::decode_response(&mut r, version)?)
    }

    async fn expect(
        &mut self,
        api_key: i16,
        version: i16,
        correlation_id: i32,
    ) -> Result<Reader, ClientError> {
        let frame = self.read_frame().await?;
        let mut r = Reader::new(frame);
        let header = ResponseHeader::decode(&mut r, response_header_version(api_key, version))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Protocol(format!(
                "expected correlation id {correlation_id}, got {}",
                header.correlation_id
            )));
        }
        Ok(r)
    }
}

impl Connection {
    /// Connect, then negotiate versions with ApiVersions.
    pub async fn connect(bootstrap: &str, client_id: &str) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(bootstrap)
            .await
            .map_err(|e| ClientError::Io(format!("connect {bootstrap}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let (read, write) = futures_lite::io::split(stream);
        let mut conn = Connection {
            writer: ConnWriter {
                half: write,
                buf: Vec::new(),
                next_correlation_id: 0,
                client_id: client_id.into(),
            },
            reader: ConnReader {
                half: BufReader::with_capacity(READ_BUFFER_BYTES, read),
            },
            versions: VersionTable::default(),
        };
        let mut resp = conn.api_versions(API_VERSIONS_VERSION).await?;
        if resp.error_code == ErrorCode::UNSUPPORTED_VERSION.0 {
            resp = conn.api_versions(0).await?;
        }
        if resp.error_code != 0 {
            return Err(ClientError::Broker {
                what: "ApiVersions".into(),
                code: resp.error_code,
            });
        }
        conn.versions = VersionTable::from_response(&resp);
        Ok(conn)
    }

    async fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, ClientError> {
        let req = ApiVersionsRequest {
            client_software_name: "ringmq-bench".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
        };
        let id = self
            .writer
            .send_raw(api_versions::API_KEY, version, |w| req.encode(w, version))
            .await?;
        let mut r = self
            .reader
            .expect(api_versions::API_KEY, version, id)
            .await?;
        // An UNSUPPORTED_VERSION answer carries a v0 body whatever version was asked.
        let mut peek = r.clone();
        let body_version = if peek.i16("error_code")? == ErrorCode::UNSUPPORTED_VERSION.0 {
            0
        } else {
            version
        };
        Ok(ApiVersionsResponse::decode(&mut r, body_version)?)
    }

    /// Send one request at the highest common version and wait for its response.
    pub async fn call<A: Api>(&mut self, req: &A) -> Result<A::Response, ClientError> {
        let version = self.versions.pick::<A>()?;
        let id = self.writer.send(req, version).await?;
        self.reader.recv::<A>(version, id).await
    }
}
