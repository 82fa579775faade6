//! The glommio TCP transport behind [`Rpc`] (see the module docs of [`crate::rpc`]).

use super::codec::{self, decode_frame, encode_frame};
use super::{
    Envelope, Hello, NodeId, RpcError, FIRST_USER_KIND, KIND_HELLO, KIND_NO_HANDLER, KIND_PING,
    KIND_RESPONSE,
};
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Largest frame accepted before a connection has said hello.
const MAX_HELLO_FRAME: usize = 4096;
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Transport settings; [`RpcConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// `HOST:PORT` this node is dialed at (sent in the hello).
    pub advertise: String,
    /// Envelopes queued per peer before [`Rpc::send`] says [`RpcError::QueueFull`].
    pub queue_envelopes: usize,
    /// Envelopes held per subscribed kind before new ones are dropped.
    pub inbox_envelopes: usize,
    /// Largest frame body written or accepted.
    pub max_frame_bytes: usize,
    /// A writer stops adding envelopes to a frame past this many bytes.
    pub batch_bytes: usize,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    /// An inbound connection with no frame for this long is closed.
    pub idle_timeout: Duration,
    /// An idle outbound connection sends a ping this often.
    pub ping_interval: Duration,
    /// Inbound connections accepted at once.
    pub max_inbound: usize,
}

impl RpcConfig {
    pub fn new(node_id: NodeId, cluster_id: &str, advertise: &str) -> RpcConfig {
        RpcConfig {
            node_id,
            cluster_id: cluster_id.to_string(),
            advertise: advertise.to_string(),
            queue_envelopes: 8192,
            inbox_envelopes: 8192,
            max_frame_bytes: codec::MAX_FRAME_BYTES,
            batch_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(2),
            max_inbound: 1024,
        }
    }
}

/// Counters for `/metrics` and tests.
#[derive(Default, Debug)]
pub struct RpcStats {
    pub frames_sent: Cell<u64>,
    pub envelopes_sent: Cell<u64>,
    pub frames_received: Cell<u64>,
    pub envelopes_received: Cell<u64>,
    /// Inbound connections closed for a bad frame, a bad hello or silence.
    pub bad_connections: Cell<u64>,
    pub connects: Cell<u64>,
    pub connect_failures: Cell<u64>,
    /// Envelopes refused by [`Rpc::send`] because the peer's queue was full.
    pub queue_full: Cell<u64>,
    /// Envelopes dropped because no writer could deliver them (peer unreachable).
    pub dropped_unreachable: Cell<u64>,
    /// Envelopes dropped because the subscriber's inbox was full.
    pub inbox_dropped: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

/// An envelope received from node `from`.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub from: NodeId,
    pub kind: u16,
    /// Non-zero for a request: answer it with [`Rpc::reply`].
    pub correlation: u64,
    pub payload: Bytes,
}

/// The envelopes of one kind, in arrival order.
pub struct Inbox {
    rx: flume::Receiver<Inbound>,
}

impl Inbox {
    /// The next envelope; `None` once the transport has closed.
    pub async fn recv(&self) -> Option<Inbound> {
        self.rx.recv_async().await.ok()
    }
    pub fn try_recv(&self) -> Option<Inbound> {
        self.rx.try_recv().ok()
    }
}

struct Peer {
    addr: SocketAddr,
    tx: flume::Sender<Envelope>,
}

/// The node's transport. One per node, on shard 0.
pub struct Rpc {
    config: Rc<RpcConfig>,
    hello: Bytes,
    peers: RefCell<HashMap<NodeId, Peer>>,
    inboxes: RefCell<HashMap<u16, flume::Sender<Inbound>>>,
    pending: RefCell<HashMap<u64, flume::Sender<Result<Bytes, RpcError>>>>,
    next_correlation: Cell<u64>,
    inbound: Cell<usize>,
    closed: Cell<bool>,
    /// Wakes the accept loop at [`Rpc::close`].
    stop: (flume::Sender<()>, flume::Receiver<()>),
    pub stats: Rc<RpcStats>,
}

impl Rpc {
    pub fn new(config: RpcConfig) -> Rc<Rpc> {
        let hello = Hello {
            node_id: config.node_id,
            cluster_id: config.cluster_id.clone(),
            rpc_addr: config.advertise.clone(),
        }
        .encode();
        Rc::new(Rpc {
            config: Rc::new(config),
            hello,
            peers: RefCell::new(HashMap::new()),
            inboxes: RefCell::new(HashMap::new()),
            pending: RefCell::new(HashMap::new()),
            next_correlation: Cell::new(1),
            inbound: Cell::new(0),
            closed: Cell::new(false),
            stop: flume::bounded(1),
            stats: Rc::new(RpcStats::default()),
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// Where to dial node `id`. A changed address replaces the connection (and its queue).
    pub fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        if id == self.config.node_id || self.closed.get() {
            return;
        }
        let mut peers = self.peers.borrow_mut();
        if peers.get(&id).is_some_and(|p| p.addr == addr) {
            return;
        }
        let (tx, rx) = flume::bounded(self.config.queue_envelopes);
        let ctx = WriterCtx {
            config: self.config.clone(),
            stats: self.stats.clone(),
            hello: self.hello.clone(),
        };
        glommio::spawn_local(writer(ctx, id, addr, rx)).detach();
        peers.insert(id, Peer { addr, tx });
    }

    /// Forget node `id` (its queue and connection go away).
    pub fn remove_peer(&self, id: NodeId) {
        self.peers.borrow_mut().remove(&id);
    }

    /// The address known for node `id`.
    pub fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.peers.borrow().get(&id).map(|p| p.addr)
    }

    /// Every peer with a known address.
    pub fn peers(&self) -> Vec<(NodeId, SocketAddr)> {
        let mut out: Vec<_> = self
            .peers
            .borrow()
            .iter()
            .map(|(id, p)| (*id, p.addr))
            .collect();
        out.sort();
        out
    }

    /// Say hello to the seeds (`HOST:PORT` RPC addresses) until each is a known peer: a seed
    /// learns our address from the hello and dials back with its own, so both sides learn
    /// each other's node id. Runs until the transport closes; one attempt per seed a second.
    pub async fn bootstrap(self: Rc<Self>, seeds: Vec<String>) {
        let me = resolve(&self.config.advertise);
        while !self.closed.get() {
            for seed in &seeds {
                let Some(addr) = resolve(seed) else { continue };
                let known = self.peers.borrow().values().any(|p| p.addr == addr);
                if known || Some(addr) == me {
                    continue;
                }
                if let Err(e) = self.say_hello(addr).await {
                    crate::debug!("rpc: seed {seed} not reached: {e}");
                }
            }
            glommio::timer::sleep(Duration::from_secs(1)).await;
        }
    }

    /// One short connection that only says hello (and pings, so the peer keeps it a moment).
    async fn say_hello(&self, addr: SocketAddr) -> std::io::Result<()> {
        let mut stream = glommio::timer::timeout(self.config.connect_timeout, async {
            TcpStream::connect(addr).await
        })
        .await?;
        stream.set_write_timeout(Some(self.config.write_timeout))?;
        let mut out = BytesMut::new();
        encode_frame(
            &[Envelope::one_way(KIND_HELLO, self.hello.clone())],
            &mut out,
        );
        encode_frame(&[Envelope::one_way(KIND_PING, Bytes::new())], &mut out);
        stream.write_all(&out).await?;
        stream.close().await
    }

    /// The envelopes of `kind` sent to this node. A second subscription replaces the first.
    pub fn subscribe(&self, kind: u16) -> Result<Inbox, RpcError> {
        if kind < FIRST_USER_KIND {
            return Err(RpcError::ReservedKind(kind));
        }
        let (tx, rx) = flume::bounded(self.config.inbox_envelopes);
        self.inboxes.borrow_mut().insert(kind, tx);
        Ok(Inbox { rx })
    }

    /// Queue a one-way message to node `to`.
    pub fn send(&self, to: NodeId, kind: u16, payload: Bytes) -> Result<(), RpcError> {
        if kind < FIRST_USER_KIND {
            return Err(RpcError::ReservedKind(kind));
        }
        self.send_envelope(to, Envelope::one_way(kind, payload))
    }

    /// Send a request to node `to` and wait at most `timeout` for its answer.
    pub async fn request(
        &self,
        to: NodeId,
        kind: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RpcError> {
        if kind < FIRST_USER_KIND {
            return Err(RpcError::ReservedKind(kind));
        }
        let correlation = self.next_correlation.get();
        self.next_correlation
            .set(correlation.wrapping_add(1).max(1));
        let (tx, rx) = flume::bounded(1);
        self.pending.borrow_mut().insert(correlation, tx);
        let envelope = Envelope {
            kind,
            correlation,
            payload,
        };
        if let Err(e) = self.send_envelope(to, envelope) {
            self.pending.borrow_mut().remove(&correlation);
            return Err(e);
        }
        let answer = glommio::timer::timeout(timeout, async {
            Ok(rx.recv_async().await.unwrap_or(Err(RpcError::Closed)))
        })
        .await;
        self.pending.borrow_mut().remove(&correlation);
        answer.unwrap_or(Err(RpcError::Timeout))
    }

    /// Answer the request `to` (no-op for a one-way message).
    pub fn reply(&self, to: &Inbound, payload: Bytes) -> Result<(), RpcError> {
        if to.correlation == 0 {
            return Ok(());
        }
        let envelope = Envelope {
            kind: KIND_RESPONSE,
            correlation: to.correlation,
            payload,
        };
        self.send_envelope(to.from, envelope)
    }

    fn send_envelope(&self, to: NodeId, e: Envelope) -> Result<(), RpcError> {
        if self.closed.get() {
            return Err(RpcError::Closed);
        }
        let limit = self.config.max_frame_bytes - codec::ENVELOPE_HEADER_BYTES - 2;
        if e.payload.len() > limit {
            return Err(RpcError::TooLarge(e.payload.len()));
        }
        if to == self.config.node_id {
            self.dispatch(to, e);
            return Ok(());
        }
        let peers = self.peers.borrow();
        let peer = peers.get(&to).ok_or(RpcError::UnknownPeer(to))?;
        peer.tx.try_send(e).map_err(|_| {
            bump(&self.stats.queue_full, 1);
            RpcError::QueueFull
        })
    }

    /// Hand one received envelope to its waiter or subscriber.
    fn dispatch(&self, from: NodeId, e: Envelope) {
        match e.kind {
            KIND_PING => {}
            KIND_RESPONSE | KIND_NO_HANDLER => {
                if let Some(tx) = self.pending.borrow_mut().remove(&e.correlation) {
                    let answer = match e.kind {
                        KIND_RESPONSE => Ok(e.payload),
                        _ => Err(RpcError::NoHandler(kind_of(&e.payload))),
                    };
                    let _ = tx.try_send(answer);
                }
            }
            kind => self.deliver(from, kind, e),
        }
    }

    fn deliver(&self, from: NodeId, kind: u16, e: Envelope) {
        let inbound = Inbound {
            from,
            kind,
            correlation: e.correlation,
            payload: e.payload,
        };
        let sent = self
            .inboxes
            .borrow()
            .get(&kind)
            .map(|tx| tx.try_send(inbound));
        match sent {
            Some(Ok(())) => {}
            Some(Err(flume::TrySendError::Full(_))) => bump(&self.stats.inbox_dropped, 1),
            None | Some(Err(flume::TrySendError::Disconnected(_))) => {
                if e.correlation != 0 {
                    let answer = Envelope {
                        kind: KIND_NO_HANDLER,
                        correlation: e.correlation,
                        payload: Bytes::copy_from_slice(&kind.to_be_bytes()),
                    };
                    let _ = self.send_envelope(from, answer);
                }
            }
        }
    }

    /// Accept node-to-node connections on `listener` until the transport closes.
    pub async fn serve(self: Rc<Self>, listener: TcpListener) {
        let stop = async {
            let _ = self.stop.1.recv_async().await;
            Err(std::io::Error::other("closed"))
        };
        let mut stop = std::pin::pin!(stop);
        while !self.closed.get() {
            let accepted = futures_lite::future::or(
                async { listener.accept().await.map_err(std::io::Error::from) },
                &mut stop,
            )
            .await;
            if self.closed.get() {
                return;
            }
            match accepted {
                Ok(stream) if self.inbound.get() < self.config.max_inbound => {
                    self.inbound.set(self.inbound.get() + 1);
                    let me = self.clone();
                    glommio::spawn_local(async move {
                        if let Err(e) = me.read_connection(stream).await {
                            bump(&me.stats.bad_connections, 1);
                            crate::debug!("rpc: inbound connection closed: {e}");
                        }
                        me.inbound.set(me.inbound.get() - 1);
                    })
                    .detach();
                }
                Ok(stream) => drop(stream),
                Err(e) => {
                    crate::warn!("rpc: accept failed: {e}");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Read one inbound connection: a hello, then frames until EOF, an error or silence.
    async fn read_connection(&self, mut stream: TcpStream) -> Result<(), RpcError> {
        stream
            .set_read_timeout(Some(self.config.idle_timeout))
            .map_err(|e| RpcError::BadFrame(format!("read timeout: {e}")))?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let Some(first) = read_frame(&mut stream, &mut buf, MAX_HELLO_FRAME).await? else {
            return Ok(());
        };
        let from = self.accept_hello(first)?;
        while let Some(envelopes) =
            read_frame(&mut stream, &mut buf, self.config.max_frame_bytes).await?
        {
            bump(&self.stats.frames_received, 1);
            bump(&self.stats.envelopes_received, envelopes.len() as u64);
            if self.closed.get() {
                return Ok(());
            }
            for e in envelopes {
                if e.kind == KIND_HELLO {
                    return Err(RpcError::BadFrame("second hello".into()));
                }
                self.dispatch(from, e);
            }
        }
        Ok(())
    }

    fn accept_hello(&self, first: Vec<Envelope>) -> Result<NodeId, RpcError> {
        let [hello] = <[Envelope; 1]>::try_from(first)
            .map_err(|_| RpcError::BadFrame("first frame is not one hello".into()))?;
        if hello.kind != KIND_HELLO {
            return Err(RpcError::BadFrame("first frame is not a hello".into()));
        }
        let hello = Hello::decode(hello.payload)?;
        if hello.cluster_id != self.config.cluster_id {
            crate::warn!(
                "rpc: refused node {} of cluster '{}' (this is cluster '{}')",
                hello.node_id,
                hello.cluster_id,
                self.config.cluster_id
            );
            return Err(RpcError::BadFrame("another cluster".into()));
        }
        if hello.node_id == self.config.node_id {
            return Err(RpcError::BadFrame("hello from our own node id".into()));
        }
        if self.peer_addr(hello.node_id).is_none() {
            if let Ok(addr) = hello.rpc_addr.parse() {
                self.set_peer(hello.node_id, addr);
                // Dial back at once, so the caller learns our id from our hello too.
                let _ =
                    self.send_envelope(hello.node_id, Envelope::one_way(KIND_PING, Bytes::new()));
            }
        }
        Ok(hello.node_id)
    }

    /// Stop: writers exit, inboxes end, requests fail.
    pub fn close(&self) {
        self.closed.set(true);
        let _ = self.stop.0.try_send(());
        self.peers.borrow_mut().clear();
        self.inboxes.borrow_mut().clear();
        self.pending.borrow_mut().clear();
    }
}

/// The first address `HOST:PORT` resolves to (a blocking lookup for names; seeds are few).
fn resolve(hostport: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = hostport.parse() {
        return Some(addr);
    }
    hostport.to_socket_addrs().ok()?.next()
}

fn kind_of(payload: &Bytes) -> u16 {
    match payload.as_ref() {
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// Read until one whole frame is buffered. `Ok(None)` at a clean EOF between frames.
async fn read_frame(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Vec<Envelope>>, RpcError> {
    loop {
        if let Some(frame) = decode_frame(buf, max)? {
            return Ok(Some(frame));
        }
        let len = buf.len();
        buf.resize(len + READ_CHUNK, 0);
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| RpcError::BadFrame(format!("read: {e}")))?;
        buf.truncate(len + n);
        if n == 0 {
            return match len {
                0 => Ok(None),
                _ => Err(RpcError::BadFrame(
                    "connection closed inside a frame".into(),
                )),
            };
        }
    }
}

struct WriterCtx {
    config: Rc<RpcConfig>,
    stats: Rc<RpcStats>,
    hello: Bytes,
}

/// One peer's writer: connect on demand, send queued envelopes in frames, reconnect with
/// backoff; exits when the peer is removed (its queue's sender dropped).
async fn writer(ctx: WriterCtx, id: NodeId, addr: SocketAddr, rx: flume::Receiver<Envelope>) {
    let mut backoff = BACKOFF_MIN;
    let mut reported = false;
    while let Ok(first) = rx.recv_async().await {
        let stream = match glommio::timer::timeout(ctx.config.connect_timeout, async {
            TcpStream::connect(addr).await
        })
        .await
        {
            Ok(s) => s,
            Err(e) => {
                bump(&ctx.stats.connect_failures, 1);
                if !reported {
                    crate::warn!("rpc: cannot reach node {id} at {addr}: {e}");
                    reported = true;
                }
                bump(&ctx.stats.dropped_unreachable, 1 + rx.drain().len() as u64);
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        bump(&ctx.stats.connects, 1);
        if reported {
            crate::info!("rpc: reached node {id} at {addr}");
            reported = false;
        }
        backoff = BACKOFF_MIN;
        if let Err(e) = write_connection(&ctx, stream, first, &rx).await {
            crate::debug!("rpc: connection to node {id} at {addr} ended: {e}");
        }
    }
}

/// Write frames on one connection until it fails or the queue closes.
async fn write_connection(
    ctx: &WriterCtx,
    mut stream: TcpStream,
    first: Envelope,
    rx: &flume::Receiver<Envelope>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(ctx.config.write_timeout))?;
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    encode_frame(
        &[Envelope::one_way(KIND_HELLO, ctx.hello.clone())],
        &mut out,
    );
    let mut batch = vec![first];
    loop {
        let mut bytes = codec::frame_len(&batch);
        while bytes < ctx.config.batch_bytes && batch.len() < usize::from(u16::MAX) {
            let Ok(e) = rx.try_recv() else { break };
            if bytes + codec::ENVELOPE_HEADER_BYTES + e.payload.len() > ctx.config.max_frame_bytes {
                encode_frame(&batch, &mut out);
                batch.clear();
                bytes = codec::frame_len(&batch);
            }
            bytes += codec::ENVELOPE_HEADER_BYTES + e.payload.len();
            batch.push(e);
        }
        if !batch.is_empty() {
            encode_frame(&batch, &mut out);
            bump(&ctx.stats.frames_sent, 1);
            bump(&ctx.stats.envelopes_sent, batch.len() as u64);
            batch.clear();
        }
        stream.write_all(&out).await?;
        out.clear();
        match glommio::timer::timeout(ctx.config.ping_interval, async {
            Ok(rx.recv_async().await)
        })
        .await
        {
            Ok(Ok(e)) => batch.push(e),
            Ok(Err(_)) => return Ok(()),
            Err(_) => batch.push(Envelope::one_way(KIND_PING, Bytes::new())),
        }
    }
}
