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
use crate::tls::Stream;
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
    half: WriteHalf<Stream>,
    buf: Vec<u8>,
    next_correlation_id: i32,
    client_id: String,
}

/// Reads responses in request order.
pub struct ConnReader {
    half: BufReader<ReadHalf<Stream>>,
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
    /// Connect (over TLS when the process's security says so), negotiate versions with
    /// ApiVersions, then authenticate with the process's SASL identity if one is set
    /// ([`super::security::set_default`]).
    pub async fn connect(bootstrap: &str, client_id: &str) -> Result<Self, ClientError> {
        let tcp = TcpStream::connect(bootstrap)
            .await
            .map_err(|e| ClientError::Io(format!("connect {bootstrap}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let stream = match super::security::default_tls() {
            None => Stream::Plain(tcp),
            Some(config) => crate::tls::connect(config, tcp, host_of(bootstrap))
                .await
                .map_err(|e| ClientError::Io(format!("{bootstrap}: {e}")))?,
        };
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
        if let Some(sasl) = super::security::default_sasl() {
            super::security::authenticate(&mut conn, sasl).await?;
        }
        Ok(conn)
    }

    async fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, ClientError> {
        let req = ApiVersionsRequest {
            client_software_name: self.writer.client_id.clone(),
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
        Ok(ApiVersionsResponse::decode_with_fallback(&mut r, version)?.0)
    }

    /// Send one request at the highest common version and wait for its response.
    pub async fn call<A: Api>(&mut self, req: &A) -> Result<A::Response, ClientError> {
        let version = self.versions.pick::<A>()?;
        let id = self.writer.send(req, version).await?;
        self.reader.recv::<A>(version, id).await
    }
}

/// The host of `HOST:PORT` (`[v6]:PORT` without its brackets): the name the broker's
/// certificate must carry.
fn host_of(bootstrap: &str) -> &str {
    let host = bootstrap.rsplit_once(':').map_or(bootstrap, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    //! Wire tests against a scripted broker on 127.0.0.1:0 (our codec on the server side):
    //! version negotiation, pipelined requests answered in order, and a wrong correlation
    //! id refused.
    use super::*;
    use crate::protocol::header::RequestHeader;
    use crate::protocol::produce::{
        self, PartitionProduceData, PartitionProduceResponse, ProduceRequest, ProduceResponse,
        TopicProduceData, TopicProduceResponse,
    };
    use glommio::net::TcpListener;

    /// Answer ApiVersions and Produce; the Produce answer's base offset is the request's
    /// correlation id, and `skew` is added to every Produce correlation id it echoes.
    async fn scripted_broker(listener: TcpListener, skew: i32) {
        let Ok(stream) = listener.accept().await else {
            return;
        };
        let (read, mut write) = futures_lite::io::split(Stream::Plain(stream));
        let mut reader = ConnReader {
            half: BufReader::new(read),
        };
        while let Ok(frame) = reader.read_frame().await {
            let mut r = Reader::new(frame);
            let Ok(h) = RequestHeader::decode_any(&mut r) else {
                return;
            };
            let mut w = Writer::new();
            let resp_header_version = response_header_version(h.api_key, h.api_version);
            if h.api_key == api_versions::API_KEY {
                ResponseHeader {
                    correlation_id: h.correlation_id,
                }
                .encode(&mut w, 0);
                ApiVersionsResponse::from_advertised().encode(&mut w, h.api_version);
            } else {
                let Ok(req) = ProduceRequest::decode(&mut r, h.api_version) else {
                    return;
                };
                let correlation_id = h.correlation_id + skew;
                ResponseHeader { correlation_id }.encode(&mut w, resp_header_version);
                let partition_responses = req.topic_data[0]
                    .partition_data
                    .iter()
                    .map(|p| PartitionProduceResponse::new(p.index, 0, i64::from(h.correlation_id)))
                    .collect();
                let name = req.topic_data[0].name.clone();
                ProduceResponse {
                    responses: vec![TopicProduceResponse {
                        name,
                        partition_responses,
                    }],
                    throttle_time_ms: 0,
                    node_endpoints: Vec::new(),
                }
                .encode(&mut w, h.api_version);
            }
            let Ok(parts) = frame::into_frame(w) else {
                return;
            };
            for p in parts {
                if write.write_all(&p).await.is_err() {
                    return;
                }
            }
        }
    }

    fn produce_request() -> ProduceRequest {
        let mut b = crate::client::batch::BatchBuilder::with_capacity(128);
        b.append(1, None, b"v", &[]);
        ProduceRequest {
            transactional_id: None,
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: b.finish(),
                }],
            }],
        }
    }

    fn with_broker<T: Send + 'static>(
        skew: i32,
        client: impl FnOnce(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>>
            + Send
            + 'static,
    ) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().expect("addr").to_string();
                glommio::spawn_local(scripted_broker(listener, skew)).detach();
                client(addr).await
            })
            .expect("executor")
            .join()
            .expect("join")
    }

    #[test]
    fn pipelined_produce_answers_arrive_in_order() {
        let offsets = with_broker(0, |addr| {
            Box::pin(async move {
                let mut conn = Connection::connect(&addr, "test").await.expect("connect");
                let version = conn.versions.pick::<ProduceRequest>().expect("version");
                assert_eq!(version, produce::MAX_VERSION);
                let req = produce_request();
                let mut ids = Vec::new();
                for _ in 0..5 {
                    ids.push(conn.writer.send(&req, version).await.expect("send"));
                }
                let mut offsets = Vec::new();
                for id in ids {
                    let resp = conn
                        .reader
                        .recv::<ProduceRequest>(version, id)
                        .await
                        .expect("recv");
                    offsets.push(resp.responses[0].partition_responses[0].base_offset);
                }
                offsets
            })
        });
        // ApiVersions took correlation id 0.
        assert_eq!(offsets, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_certificate_name_is_the_bootstrap_host() {
        assert_eq!(host_of("kafka1.example:9093"), "kafka1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("noport"), "noport");
    }

    #[test]
    fn wrong_correlation_id_is_a_protocol_error() {
        let err = with_broker(1, |addr| {
            Box::pin(async move {
                let mut conn = Connection::connect(&addr, "test").await.expect("connect");
                conn.call(&produce_request()).await.err()
            })
        });
        assert!(
            matches!(err, Some(ClientError::Protocol(ref m)) if m.contains("correlation")),
            "{err:?}"
        );
    }
}
