//! Cluster membership by gossip: SWIM with suspicion and infection-style dissemination
//! (the `foca` crate), over UDP on each node's RPC address, run by shard 0.
//!
//! # Design
//! - [`Gossip`] ([`core`]) is sans-IO: packets in (`handle_packet`), time in (`tick`), packets
//!   out (`drain_outbox`), the view out (`view`). It never reads a clock or a socket, so the
//!   seeded simulation ([`sim`]) runs it exactly as the broker does.
//! - [`driver`] is the small glommio part: one UDP socket on the RPC address, a receive loop
//!   and a timer loop, both on shard 0.
//! - A member's identity ([`Peer`]) is its gossip address, a *generation* (larger at every
//!   start of the node: a restarted node is a new identity that wins over its old one, so it
//!   rejoins by itself) and its [`NodeCard`]: node id, Kafka endpoint, RPC endpoint, rack.
//!   Seeds are known only by address: the node announces itself to a placeholder identity
//!   with the seed's address and generation 0, which the seed's real identity replaces.
//! - Health (and, later, soft state such as partition leader hints) travels as a custom
//!   broadcast ([`Status`]), versioned per node so a stale one never replaces a newer one.
//! - Our own wire format ([`codec`]): every length and count from the network is checked
//!   against what remains and bounded; a bad packet is dropped and counted, never a panic.
//!
//! Gossip carries liveness and endpoints only: the authoritative node registry, topics and
//! placement live in the controller (Raft group 0). Shards get a [`MembershipView`] (node id
//! → card, state, health) pushed to them like the metadata image ([`LocalMembership`]).
//!
//! Timing with the defaults ([`GossipConfig::default`]): a node that stops answering is
//! pinged within one probe round, suspected after `probe_period`, declared dead
//! `suspect_to_down_after` later by every node that heard the suspicion: well under 2 s.

pub mod codec;
pub mod core;
pub mod driver;
#[cfg(test)]
mod sim;

pub use self::core::{Change, Gossip, GossipStats};
pub use codec::{Peer, Status};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a node tells the cluster about itself. Fixed for one run of the node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeCard {
    pub node_id: i32,
    /// The Kafka endpoint clients are given (`--advertise`).
    pub kafka_host: String,
    pub kafka_port: u16,
    /// `HOST:PORT` other nodes dial for RPC (`--rpc-advertise`).
    pub rpc: String,
    pub rack: Option<String>,
}

/// A node as its peers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    /// Answers probes.
    Alive,
    /// Someone failed to reach it; it has `suspect_to_down_after` to refute. Still served.
    Suspect,
    /// Declared down (or never heard of).
    Dead,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Alive => "alive",
            NodeState::Suspect => "suspect",
            NodeState::Dead => "dead",
        }
    }
}

/// A node's own account of itself, disseminated with its status broadcasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Health {
    /// Recovering partitions, not yet listening.
    #[default]
    Starting,
    /// Every shard listens.
    Ready,
    /// Shutting down.
    Stopping,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Ready => "ready",
            Health::Stopping => "stopping",
        }
    }
}

/// One node in a [`MembershipView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub card: Arc<NodeCard>,
    /// Which start of the node this is (larger is newer).
    pub generation: u64,
    pub gossip_addr: SocketAddr,
    pub state: NodeState,
    pub health: Health,
}

/// The membership as one node sees it, by node id. Immutable; shared through `Arc`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipView {
    /// Increases with every change on the node that built it.
    pub version: u64,
    /// The node that built the view (it is always in `members`, alive).
    pub me: i32,
    pub members: BTreeMap<i32, MemberInfo>,
}

impl MembershipView {
    /// A view of one node: itself (the view a broker starts with, before any gossip).
    pub fn solo(card: NodeCard, gossip_addr: SocketAddr) -> MembershipView {
        let me = card.node_id;
        let info = MemberInfo {
            card: Arc::new(card),
            generation: 0,
            gossip_addr,
            state: NodeState::Alive,
            health: Health::Starting,
        };
        MembershipView {
            version: 0,
            me,
            members: BTreeMap::from([(me, info)]),
        }
    }

    /// The state of `node_id`; a node never heard of is [`NodeState::Dead`].
    pub fn state(&self, node_id: i32) -> NodeState {
        self.members
            .get(&node_id)
            .map_or(NodeState::Dead, |m| m.state)
    }

    /// Alive or suspect: still given to clients and still led by its partitions.
    pub fn is_live(&self, node_id: i32) -> bool {
        self.state(node_id) != NodeState::Dead
    }

    /// The live members, by node id.
    pub fn live(&self) -> impl Iterator<Item = &MemberInfo> {
        self.members.values().filter(|m| m.state != NodeState::Dead)
    }

    /// How many members are in `state`.
    pub fn count(&self, state: NodeState) -> usize {
        self.members.values().filter(|m| m.state == state).count()
    }
}

/// A shard's copy of the newest [`MembershipView`] it was given. `!Send`: one per shard.
pub struct LocalMembership {
    view: RefCell<Arc<MembershipView>>,
}

impl LocalMembership {
    pub fn new(view: Arc<MembershipView>) -> Self {
        LocalMembership {
            view: RefCell::new(view),
        }
    }
    pub fn get(&self) -> Arc<MembershipView> {
        self.view.borrow().clone()
    }
    /// Keep `view` if it is at least as new as the one held; returns whether it was kept.
    pub fn apply(&self, view: Arc<MembershipView>) -> bool {
        let mut held = self.view.borrow_mut();
        if view.version < held.version {
            return false;
        }
        *held = view;
        true
    }
}

/// Gossip timing and sizes. The defaults detect a dead node within 2 s on a LAN.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// One member is probed per period (round-robin over a shuffled member list).
    pub probe_period: Duration,
    /// Without an ack within this, indirect probes go out through other members.
    pub probe_rtt: Duration,
    pub indirect_probes: usize,
    /// A suspected member that does not refute within this is declared dead.
    pub suspect_to_down_after: Duration,
    /// How many times each update is piggybacked before it is dropped, at least: a larger
    /// cluster gets more ([`core::max_transmissions_for`]).
    pub max_transmissions: u8,
    /// Dissemination rounds: every `gossip_interval`, pending updates go to
    /// `gossip_fanout` members.
    pub gossip_interval: Duration,
    pub gossip_fanout: usize,
    /// While the node knows no other member, it announces itself to the seeds this often.
    pub seed_announce_interval: Duration,
    /// Every `announce_interval`, the node announces itself to one live member (a member
    /// that missed it learns it from the answer).
    pub announce_interval: Duration,
    /// Every `announce_to_down_interval`, the node announces itself to
    /// `announce_to_down_fanout` members it holds down: after a partition heals, that is how
    /// the two sides find each other again.
    pub announce_to_down_interval: Duration,
    pub announce_to_down_fanout: usize,
    /// Largest packet sent or accepted (fits a 1500-byte Ethernet MTU).
    pub max_packet_bytes: usize,
    /// Most members kept; packets naming more are ignored beyond it.
    pub max_members: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            probe_period: Duration::from_millis(120),
            probe_rtt: Duration::from_millis(45),
            indirect_probes: 3,
            suspect_to_down_after: Duration::from_millis(500),
            max_transmissions: 10,
            gossip_interval: Duration::from_millis(40),
            gossip_fanout: 3,
            seed_announce_interval: Duration::from_millis(500),
            announce_interval: Duration::from_secs(10),
            announce_to_down_interval: Duration::from_secs(1),
            announce_to_down_fanout: 3,
            max_packet_bytes: 1400,
            max_members: 1024,
        }
    }
}

/// Why a gossip packet or operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipError {
    /// A packet from the network does not parse; it is dropped.
    BadPacket(String),
    /// A packet larger than [`GossipConfig::max_packet_bytes`].
    TooLarge(usize),
    /// foca refused the input (stale, from ourselves, ...).
    Protocol(String),
}

impl fmt::Display for GossipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GossipError::BadPacket(why) => write!(f, "bad gossip packet: {why}"),
            GossipError::TooLarge(n) => write!(f, "gossip packet of {n} bytes is too large"),
            GossipError::Protocol(why) => write!(f, "gossip: {why}"),
        }
    }
}

impl std::error::Error for GossipError {}
