//! One client connection: admit it, read frames, take their memory as their bytes arrive,
//! run each request as a task, and write the responses in request order.
//!
//! Bounds, each against a client that is slow or hostile on purpose:
//! - At accept, a connection past `--max-connections` (node) or `--max-connections-per-ip` is
//!   closed before anything is read ([`super::limits`]; counted in `/metrics`).
//! - A frame larger than `--max-request-bytes` closes the connection. A frame's memory is taken
//!   from the shard's request budget (`ServerCtx::requests`) as its bytes arrive: its buffer
//!   starts at [`FRAME_FIRST_STEP_BYTES`] and at most doubles when full, so a size prefix alone
//!   takes nothing and a slow sender holds about what it sent. The budget goes back when the
//!   request has been handled (not when its response is written: response memory is the
//!   fetch read budget's, `storage::ReadMemory`).
//! - A started frame must arrive whole within `--request-read-timeout-ms` of client time (the
//!   time spent waiting for the budget does not count).
//! - A connection with no request in flight that sends nothing for `--connections-max-idle-ms`
//!   is closed (Kafka's `connections.max.idle.ms`).
//! - A response of which the client takes no byte for `--response-write-timeout-ms` closes the
//!   connection, which drops what its requests hold.
//! - A connection has at most [`MAX_INFLIGHT_PER_CONNECTION`] requests in flight.
//!
//! On an SSL or SASL_SSL listener the TLS handshake comes first ([`crate::tls::accept`]); it
//! must end within `--request-read-timeout-ms`, and bytes that are not TLS fail it, which
//! closes that connection only. Everything after it reads and writes through the TLS
//! stream; rustls bounds its own buffers.
//!
//! On a SASL listener every frame first passes the connection's SASL session
//! ([`super::sasl`]): before authentication only ApiVersions, SaslHandshake and
//! SaslAuthenticate are served and anything else closes the connection; SASL requests are
//! answered here, in order, before the next frame is read.

use super::admission::Grant;
use super::{handle_request, sasl, RequestError, ServerCtx};
use crate::auth::session::{Gate, Session};
use crate::config::Listener;
use crate::protocol::header::RequestHeader;
use crate::protocol::Reader;
use crate::tls::Stream;
use bytes::{Bytes, BytesMut};
use futures_lite::io::{BufReader, ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Requests of one connection being handled at once (pipelining depth).
pub const MAX_INFLIGHT_PER_CONNECTION: usize = 32;
/// A frame's buffer (and budget) starts at this size and at most doubles as bytes arrive.
pub const FRAME_FIRST_STEP_BYTES: usize = 64 << 10;
/// Responses up to this size are coalesced into one buffer (one send); larger ones are
/// written part by part, record bytes straight from the log's buffers.
const COALESCE_BYTES: usize = 64 * 1024;

type Pending = glommio::task::JoinHandle<Result<Option<Vec<Bytes>>, RequestError>>;

/// Why a connection is closed on the broker's initiative.
enum Close {
    /// The client broke the protocol or a limit (logged, rate-limited).
    Client(String),
    /// A timeout ([`crate::metrics::CONNECTION_TIMEOUTS`] reason), with what timed out.
    TimedOut(&'static str, String),
}

/// What a request's handler knows about its connection.
pub struct Conn {
    /// The client's address, for logs and group member hosts.
    pub peer: Rc<str>,
    /// The listener the client came in on (Metadata advertises this listener's address).
    pub listener: Rc<Listener>,
    /// `User:<CN>` of the client's verified TLS certificate (mutual TLS).
    pub tls_principal: Option<Rc<str>>,
}

/// Admit a connection accepted on this shard and serve it, or close it at once when the node
/// or its address already holds as many connections as allowed.
pub fn accepted(ctx: &Rc<ServerCtx>, listener: Rc<Listener>, stream: TcpStream) {
    let ip = match stream.peer_addr() {
        Ok(a) => a.ip(),
        Err(_) => return, // gone already
    };
    match ctx.limits.admit(ip) {
        Ok(slot) => {
            glommio::spawn_local(serve(ctx.clone(), listener, stream, slot)).detach();
        }
        Err(why) => {
            crate::metrics::count_reason(
                &ctx.metrics.connections_refused,
                &crate::metrics::CONNECTION_REFUSALS,
                why.label(),
            );
            ctx.log_client_error(
                &ip.to_string(),
                &format!("refused at accept: {}", why.label()),
            );
            drop(stream);
        }
    }
}

async fn serve(
    ctx: Rc<ServerCtx>,
    listener: Rc<Listener>,
    stream: TcpStream,
    _slot: super::limits::ConnectionSlot,
) {
    let _ = stream.set_nodelay(true);
    // glommio fails a write that makes no progress for this long: a client that stopped
    // reading is dropped.
    let write_timeout = Duration::from_millis(ctx.config.response_write_timeout_ms);
    let _ = stream.set_write_timeout(Some(write_timeout));
    let peer: Rc<str> = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
        .into();
    ctx.connections.set(ctx.connections.get() + 1);
    ctx.metrics.connections.set(ctx.connections.get() as u64);
    match secure(&ctx, &listener, stream).await {
        Ok((stream, tls_principal)) => {
            let conn = Rc::new(Conn {
                peer: peer.clone(),
                listener,
                tls_principal,
            });
            converse(&ctx, &conn, stream).await;
        }
        Err(e) => {
            let failures = &ctx.metrics.tls_handshake_failures;
            failures.set(failures.get() + 1);
            ctx.log_client_error(&peer, &e.to_string());
        }
    }
    ctx.connections.set(ctx.connections.get() - 1);
    ctx.metrics.connections.set(ctx.connections.get() as u64);
}

/// The connection's stream: TLS after its handshake on an SSL or SASL_SSL listener (with the
/// principal of a client certificate), else the TCP connection itself.
async fn secure(
    ctx: &ServerCtx,
    listener: &Listener,
    stream: TcpStream,
) -> Result<(Stream, Option<Rc<str>>), crate::tls::TlsError> {
    if !listener.protocol.is_tls() {
        return Ok((Stream::Plain(stream), None));
    }
    let tls = ctx.tls.as_ref().ok_or_else(|| {
        crate::tls::TlsError::Config("a TLS listener without TLS settings".into())
    })?;
    let timeout = Duration::from_millis(ctx.config.request_read_timeout_ms);
    let accepted = crate::tls::accept(tls, stream, timeout).await?;
    Ok((accepted.stream, accepted.principal.map(Rc::from)))
}

/// Read requests and write responses until either side ends the connection.
async fn converse(ctx: &Rc<ServerCtx>, conn: &Rc<Conn>, stream: Stream) {
    let (read_half, write_half) = futures_lite::io::split(stream);
    let (tx, rx) =
        glommio::channels::local_channel::new_bounded::<Pending>(MAX_INFLIGHT_PER_CONNECTION);
    let in_flight = Rc::new(Cell::new(0usize));
    // When the client stops sending, the writer still answers what was read; a read or
    // protocol error ends both at once.
    let reader = async {
        read_frames(ctx, conn, read_half, tx, &in_flight).await?;
        futures_lite::future::pending::<Result<(), Close>>().await
    };
    let writer = write_responses(ctx, write_half, rx, &in_flight);
    match futures_lite::future::race(reader, writer).await {
        Ok(()) => {}
        Err(Close::Client(why)) => ctx.log_client_error(&conn.peer, &why),
        Err(Close::TimedOut(reason, why)) => {
            crate::metrics::count_reason(
                &ctx.metrics.connections_timed_out,
                &crate::metrics::CONNECTION_TIMEOUTS,
                reason,
            );
            ctx.log_client_error(&conn.peer, &why);
        }
    }
}

async fn read_frames(
    ctx: &Rc<ServerCtx>,
    conn: &Rc<Conn>,
    read_half: ReadHalf<Stream>,
    tx: LocalSender<Pending>,
    in_flight: &Rc<Cell<usize>>,
) -> Result<(), Close> {
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut session = conn
        .listener
        .protocol
        .is_sasl()
        .then(|| Session::new(sasl::enabled_mechanisms(ctx)));
    let started = Instant::now();
    loop {
        // A raw SASL token (after SaslHandshake v0) may be shorter than a request header.
        let raw = session.as_ref().is_some_and(Session::expects_raw_token);
        let Some((frame, grant)) = read_frame(ctx, &mut reader, in_flight, raw).await? else {
            return Ok(()); // closed by the client between frames
        };
        let now_ms = started.elapsed().as_millis() as u64;
        if let Some(s) = session.as_mut().filter(|s| s.expects_raw_token()) {
            let answer = sasl::raw_token(ctx, s, frame, now_ms).await;
            drop(grant);
            if !send_answer(&tx, answer, in_flight).await {
                return Ok(());
            }
            continue;
        }
        let mut r = Reader::new(frame);
        let header = RequestHeader::decode_any(&mut r)
            .map_err(|e| Close::Client(format!("bad request header: {e}")))?;
        if let Some(s) = session.as_mut() {
            match s.gate(sasl::kind_of(header.api_key), now_ms) {
                Gate::Serve => {}
                Gate::Close(why) => {
                    return Err(Close::Client(format!("{why} (api {})", header.api_key)))
                }
                Gate::Sasl => {
                    let answer = sasl::handle(ctx, s, &header, r, now_ms)
                        .await
                        .map_err(|e| Close::Client(e.to_string()))?;
                    drop(grant);
                    if !send_answer(&tx, answer, in_flight).await {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        let (ctx2, conn2) = (ctx.clone(), conn.clone());
        let task = glommio::spawn_local(async move {
            let answer = handle_request(&ctx2, header, &conn2, r).await;
            drop(grant); // the frame is handled: its memory is free
            answer
        })
        .detach();
        in_flight.set(in_flight.get() + 1);
        if tx.send(task).await.is_err() {
            return Ok(());
        }
    }
}

/// Read one frame: the size, then the body as it arrives, its memory taken from the request
/// budget. `None`: the client closed the connection between frames. `raw`: a raw SASL token
/// (after SaslHandshake v0), which may be shorter than a request header.
async fn read_frame(
    ctx: &ServerCtx,
    reader: &mut BufReader<ReadHalf<Stream>>,
    in_flight: &Cell<usize>,
    raw: bool,
) -> Result<Option<(Bytes, Grant)>, Close> {
    let Some(first) = first_byte(ctx, reader, in_flight).await? else {
        return Ok(None);
    };
    let mut clock = ReadClock::new(ctx.config.request_read_timeout_ms);
    let mut size_buf = [first, 0, 0, 0];
    clock.read_exact(reader, &mut size_buf[1..]).await?;
    let size = i32::from_be_bytes(size_buf);
    let min_size = if raw { 1 } else { 8 };
    if size < min_size || size as usize > ctx.config.max_request_bytes {
        return Err(Close::Client(format!(
            "frame of {size} bytes refused (max {})",
            ctx.config.max_request_bytes
        )));
    }
    let mut grant = ctx.requests.grant();
    let frame = read_body(reader, size as usize, &mut grant, &mut clock).await?;
    Ok(Some((frame, grant)))
}

/// Queue a SASL answer behind the responses before it; `false` if the connection must end
/// (the answer closes it, or the writer is gone). Ending the reader lets the writer send
/// what is queued, the answer included, before the connection closes.
async fn send_answer(
    tx: &LocalSender<Pending>,
    answer: sasl::Answer,
    in_flight: &Cell<usize>,
) -> bool {
    if let Some(parts) = answer.parts {
        let task = glommio::spawn_local(async move { Ok(Some(parts)) }).detach();
        in_flight.set(in_flight.get() + 1);
        if tx.send(task).await.is_err() {
            return false;
        }
    }
    !answer.close
}

/// The first byte of the next frame; `None` when the client closed. With nothing in flight,
/// a connection silent for `connections_max_idle_ms` is closed.
async fn first_byte(
    ctx: &ServerCtx,
    reader: &mut BufReader<ReadHalf<Stream>>,
    in_flight: &Cell<usize>,
) -> Result<Option<u8>, Close> {
    let idle = Duration::from_millis(ctx.config.connections_max_idle_ms);
    let mut byte = [0u8; 1];
    if !reader.buffer().is_empty() {
        // A pipelined frame already received: no wait, no timer.
        return Ok(reader.read(&mut byte).await.ok().map(|_| byte[0]));
    }
    loop {
        let read = glommio::timer::timeout(idle, async { Ok(reader.read(&mut byte).await) });
        match read.await {
            Ok(Ok(1)) => return Ok(Some(byte[0])),
            Ok(_) => return Ok(None), // EOF or reset between frames
            Err(_) if in_flight.get() == 0 => {
                return Err(Close::TimedOut(
                    "idle",
                    format!("idle for {} ms", idle.as_millis()),
                ))
            }
            Err(_) => {} // a request is being answered: not idle
        }
    }
}

/// The client time left for one frame to arrive.
struct ReadClock {
    left: Duration,
    limit_ms: u64,
}

impl ReadClock {
    fn new(limit_ms: u64) -> Self {
        ReadClock {
            left: Duration::from_millis(limit_ms),
            limit_ms,
        }
    }

    /// One read into `buf` within the time left; 0 means the client closed.
    async fn read(
        &mut self,
        reader: &mut BufReader<ReadHalf<Stream>>,
        buf: &mut [u8],
    ) -> Result<usize, Close> {
        if !reader.buffer().is_empty() {
            // Already received: no wait, no timer.
            return reader
                .read(buf)
                .await
                .map_err(|e| Close::Client(e.to_string()));
        }
        let started = Instant::now();
        let read = glommio::timer::timeout(self.left, async { Ok(reader.read(buf).await) }).await;
        self.left = self.left.saturating_sub(started.elapsed());
        match read {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(Close::Client(format!("read failed inside a frame: {e}"))),
            Err(_) => Err(Close::TimedOut(
                "request_read",
                format!("request not received whole within {} ms", self.limit_ms),
            )),
        }
    }

    async fn read_exact(
        &mut self,
        reader: &mut BufReader<ReadHalf<Stream>>,
        buf: &mut [u8],
    ) -> Result<(), Close> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read(reader, &mut buf[filled..]).await? {
                0 => return Err(Close::Client("closed inside a frame".into())),
                n => filled += n,
            }
        }
        Ok(())
    }
}

/// Read a frame body of `size` bytes, growing its buffer (and `grant`) only as bytes arrive:
/// from [`FRAME_FIRST_STEP_BYTES`], doubling when full.
async fn read_body(
    reader: &mut BufReader<ReadHalf<Stream>>,
    size: usize,
    grant: &mut Grant,
    clock: &mut ReadClock,
) -> Result<Bytes, Close> {
    let mut body: Vec<u8> = Vec::new();
    let mut filled = 0;
    while filled < size {
        if filled == body.len() {
            let next = (2 * body.len()).max(FRAME_FIRST_STEP_BYTES).min(size);
            grant
                .grow((next - body.len()) as u64)
                .await
                .map_err(|_| Close::Client("shutting down".into()))?;
            body.reserve_exact(next - body.len());
            body.resize(next, 0);
        }
        match clock.read(reader, &mut body[filled..]).await? {
            0 => return Err(Close::Client(format!("frame of {size} bytes cut off"))),
            n => filled += n,
        }
    }
    Ok(Bytes::from(body))
}

async fn write_responses(
    ctx: &ServerCtx,
    mut write_half: WriteHalf<Stream>,
    rx: LocalReceiver<Pending>,
    in_flight: &Cell<usize>,
) -> Result<(), Close> {
    while let Some(task) = rx.recv().await {
        let parts = match task.await {
            Some(Ok(Some(parts))) => Some(parts),
            Some(Ok(None)) => None, // acks=0 produce: no response
            Some(Err(e)) => return Err(Close::Client(e.to_string())),
            None => return Err(Close::Client("request task cancelled".into())),
        };
        if let Some(parts) = parts {
            write_frame(&mut write_half, parts)
                .await
                .map_err(|e| write_error(ctx, e))?;
        }
        in_flight.set(in_flight.get() - 1);
    }
    Ok(())
}

fn write_error(ctx: &ServerCtx, e: std::io::Error) -> Close {
    if e.kind() == std::io::ErrorKind::TimedOut {
        let ms = ctx.config.response_write_timeout_ms;
        Close::TimedOut(
            "response_write",
            format!("the client took no response byte for {ms} ms"),
        )
    } else {
        Close::Client(format!("write failed: {e}"))
    }
}

/// Write one response frame: size prefix, then the parts (header and body).
async fn write_frame(w: &mut WriteHalf<Stream>, parts: Vec<Bytes>) -> std::io::Result<()> {
    let total: usize = parts.iter().map(Bytes::len).sum();
    let size = (total as u32).to_be_bytes();
    if total <= COALESCE_BYTES {
        let mut buf = BytesMut::with_capacity(total + 4);
        buf.extend_from_slice(&size);
        for p in &parts {
            buf.extend_from_slice(p);
        }
        w.write_all(&buf).await?;
    } else {
        w.write_all(&size).await?;
        for p in &parts {
            w.write_all(p).await?;
        }
    }
    w.flush().await
}
