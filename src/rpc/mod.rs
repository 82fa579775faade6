//! Node-to-node transport: a framed, versioned, CRC-checked message protocol over TCP on the
//! RPC port (`--rpc-listen`, default port 33145).
//!
//! # The API (stable; the controller and, later, partition Raft build on it)
//!
//! Messages are [`Envelope`]s: `(kind: u16, correlation: u64, payload: Bytes)`. The transport
//! never looks inside a payload; the owner of a kind defines its encoding. Kind ranges:
//! 0..=99 the transport itself ([`KIND_HELLO`], [`KIND_RESPONSE`], [`KIND_PING`],
//! [`KIND_NO_HANDLER`]), 100..=199 the controller (Raft group 0), 200..=299 partition
//! replication, 300.. free.
//!
//! [`Rpc`] (one per node, on shard 0, an `Rc`):
//! - [`Rpc::send`]`(to, kind, payload)`: one-way, non-blocking. The envelope joins `to`'s
//!   bounded queue and the peer's writer sends everything queued as one frame (batching).
//!   A full queue is [`RpcError::QueueFull`]; an unknown peer [`RpcError::UnknownPeer`].
//! - [`Rpc::request`]`(to, kind, payload, timeout).await`: a request with a fresh correlation
//!   id; the peer's handler answers with [`Rpc::reply`]. Errors: timeout, no handler.
//! - [`Rpc::subscribe`]`(kind)`: a bounded [`Inbox`] of [`Inbound`] envelopes of that kind (one
//!   subscriber per kind). When an inbox is full the envelope is dropped and counted
//!   (Raft-style protocols retry); a request to a kind nobody subscribed is answered
//!   [`KIND_NO_HANDLER`] at once.
//! - [`Rpc::set_peer`]`(id, addr)`: where to dial node `id`. Membership calls it; a node that
//!   dials us announces its address in its hello, which also sets it.
//! - Sending to this node's own id delivers locally (a cluster of one takes the same path).
//!
//! # Connections
//! Every node dials every peer it sends to (outbound connections only write; inbound ones
//! only read), so each direction of a pair has its own ordered TCP stream. The first frame on
//! a connection is a hello (cluster id, node id, RPC address): another cluster's node, a bad
//! frame, a frame over the limit or a silent connection (no frame, not even a ping, for
//! [`RpcConfig::idle_timeout`]) closes that connection only. A writer that cannot connect
//! retries with exponential backoff (50 ms doubling to 2 s) and drops what was queued for the
//! dead peer, so a dead peer costs a bounded queue and nothing else. Delivery is at most
//! once, in order per direction; requests that get no answer time out.

pub mod codec;
pub mod transport;

#[cfg(test)]
mod transport_tests;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

pub use transport::{Inbound, Inbox, Rpc, RpcConfig, RpcStats};

/// A node's id in the cluster (`--node-id`).
pub type NodeId = i32;

/// The first envelope on every connection: who is calling.
pub const KIND_HELLO: u16 = 1;
/// The answer to a request; `correlation` is the request's.
pub const KIND_RESPONSE: u16 = 2;
/// Keeps an idle connection alive; ignored.
pub const KIND_PING: u16 = 3;
/// The answer to a request whose kind has no subscriber on the peer.
pub const KIND_NO_HANDLER: u16 = 4;
/// First kind free for users of the transport.
pub const FIRST_USER_KIND: u16 = 100;

/// One message between nodes. `correlation` is 0 for a one-way message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub kind: u16,
    pub correlation: u64,
    pub payload: Bytes,
}

impl Envelope {
    pub fn one_way(kind: u16, payload: Bytes) -> Envelope {
        Envelope {
            kind,
            correlation: 0,
            payload,
        }
    }
}

/// Why an RPC operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// The bytes from a peer do not parse; that connection is closed.
    BadFrame(String),
    /// The peer's outbound queue is full (it is slow or unreachable).
    QueueFull,
    /// No address is known for the node.
    UnknownPeer(NodeId),
    /// No answer within the timeout.
    Timeout,
    /// The peer has no handler for the request's kind.
    NoHandler(u16),
    /// The payload is larger than a frame may be.
    TooLarge(usize),
    /// A kind below [`FIRST_USER_KIND`] was used by a caller.
    ReservedKind(u16),
    /// The transport was shut down.
    Closed,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::BadFrame(why) => write!(f, "bad rpc frame: {why}"),
            RpcError::QueueFull => write!(f, "rpc queue to the peer is full"),
            RpcError::UnknownPeer(id) => write!(f, "no rpc address known for node {id}"),
            RpcError::Timeout => write!(f, "rpc request timed out"),
            RpcError::NoHandler(kind) => write!(f, "peer has no handler for rpc kind {kind}"),
            RpcError::TooLarge(n) => write!(f, "rpc payload of {n} bytes is too large"),
            RpcError::ReservedKind(k) => write!(f, "rpc kind {k} is reserved"),
            RpcError::Closed => write!(f, "rpc transport closed"),
        }
    }
}

impl std::error::Error for RpcError {}

/// The hello a dialer sends first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// `HOST:PORT` the sender can be dialed at.
    pub rpc_addr: String,
}

impl Hello {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(8 + self.cluster_id.len() + self.rpc_addr.len());
        b.put_i32(self.node_id);
        put_str(&mut b, &self.cluster_id);
        put_str(&mut b, &self.rpc_addr);
        b.freeze()
    }

    pub fn decode(mut b: Bytes) -> Result<Hello, RpcError> {
        if b.remaining() < 4 {
            return Err(RpcError::BadFrame("short hello".into()));
        }
        let node_id = b.get_i32();
        let cluster_id = get_str(&mut b)?;
        let rpc_addr = get_str(&mut b)?;
        if node_id < 0 || b.has_remaining() {
            return Err(RpcError::BadFrame("malformed hello".into()));
        }
        Ok(Hello {
            node_id,
            cluster_id,
            rpc_addr,
        })
    }
}

/// A string as `u16 length | UTF-8` (truncated to 255 bytes: ids and addresses are short).
pub fn put_str(b: &mut BytesMut, s: &str) {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    b.put_u16(end as u16);
    b.put_slice(&s.as_bytes()[..end]);
}

/// Read a [`put_str`] string; at most 255 bytes.
pub fn get_str(b: &mut Bytes) -> Result<String, RpcError> {
    if b.remaining() < 2 {
        return Err(RpcError::BadFrame("truncated string".into()));
    }
    let len = usize::from(b.get_u16());
    if len > 255 || len > b.remaining() {
        return Err(RpcError::BadFrame("bad string length".into()));
    }
    let raw = b.split_to(len);
    String::from_utf8(raw.to_vec()).map_err(|_| RpcError::BadFrame("string is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_rejects_garbage() {
        let h = Hello {
            node_id: 7,
            cluster_id: "c1".into(),
            rpc_addr: "10.88.0.11:33145".into(),
        };
        let wire = h.encode();
        assert_eq!(Hello::decode(wire.clone()).unwrap(), h);
        for cut in 0..wire.len() {
            assert!(Hello::decode(wire.slice(..cut)).is_err(), "cut {cut}");
        }
        let mut long = BytesMut::from(&wire[..]);
        long.put_u8(0);
        assert!(Hello::decode(long.freeze()).is_err());
    }
}
