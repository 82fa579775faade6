//! [`Gossip`]: foca driven with injected time, packets and randomness; no I/O.
//!
//! Contract: the caller feeds every received packet to [`Gossip::handle_packet`], calls
//! [`Gossip::tick`] no later than [`Gossip::next_deadline`], sends everything
//! [`Gossip::drain_outbox`] returns, and reads [`Gossip::view`] after
//! [`Gossip::take_changes`] reports something. Time is a monotonic `Duration` since any
//! fixed start; it must never go backwards.

use super::codec::{Peer, Status, WireCodec};
use super::{GossipConfig, GossipError, Health, MemberInfo, MembershipView, NodeCard, NodeState};
use crate::io::sim::SimRng;
use bytes::Bytes;
use foca::{
    AccumulatingRuntime, BroadcastHandler, Codec, Config, Foca, Invalidates, OwnedNotification,
    PeriodicParams, State, Timer,
};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// foca's randomness: our seeded generator (the simulation replays from the seed).
pub struct GossipRng(SimRng);

impl rand_core::TryRng for GossipRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.0.next_u64() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let r = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        Ok(())
    }
}

/// The newest status broadcast heard from each node, bounded by `max_members`.
type StatusTable = Rc<RefCell<BTreeMap<i32, Status>>>;

/// Identifies a status broadcast in foca's backlog: a newer one of the same node replaces it.
pub struct StatusKey {
    node_id: i32,
    version: (u64, u64),
}

impl Invalidates for StatusKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node_id == other.node_id && self.version >= other.version
    }
}

/// Keeps a status only if it is newer than the one held for its node.
pub struct StatusHandler {
    table: StatusTable,
    max_members: usize,
}

impl BroadcastHandler<Peer> for StatusHandler {
    type Key = StatusKey;
    type Error = GossipError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&Peer>,
    ) -> Result<Option<StatusKey>, GossipError> {
        let status = Status::decode(data)?;
        let mut table = self.table.borrow_mut();
        let newer = table
            .get(&status.node_id)
            .is_none_or(|held| status.version() > held.version());
        if !newer || (table.len() >= self.max_members && !table.contains_key(&status.node_id)) {
            return Ok(None);
        }
        let key = StatusKey {
            node_id: status.node_id,
            version: status.version(),
        };
        table.insert(status.node_id, status);
        Ok(Some(key))
    }
}

/// A membership change, for the one log line each gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Up {
        node_id: i32,
        addr: SocketAddr,
    },
    Down {
        node_id: i32,
        addr: SocketAddr,
    },
    /// A node came back as a new generation (restart, or renewed after being declared down).
    Renamed {
        node_id: i32,
        generation: u64,
    },
    /// This node was declared down and rejoins as `generation`.
    Rejoined {
        generation: u64,
    },
}

/// Packet counters (for `/metrics`).
#[derive(Default, Debug)]
pub struct GossipStats {
    pub packets_sent: Cell<u64>,
    pub packets_received: Cell<u64>,
    pub bad_packets: Cell<u64>,
    /// Packets for an earlier identity of this node, answered with an announce.
    pub stale_destinations: Cell<u64>,
}

type Swim = Foca<Peer, WireCodec, GossipRng, StatusHandler>;

/// One node's gossip state machine.
pub struct Gossip {
    foca: Swim,
    rt: AccumulatingRuntime<Peer>,
    config: GossipConfig,
    now: Duration,
    /// Pending foca timers by (deadline, sequence number).
    timers: BTreeMap<(Duration, u64), Timer<Peer>>,
    timer_seq: u64,
    seeds: Vec<SocketAddr>,
    next_seed_announce: Duration,
    outbox: Vec<(SocketAddr, Bytes)>,
    changes: Vec<Change>,
    statuses: StatusTable,
    my_status: Status,
    view_version: u64,
    view_dirty: bool,
    /// foca's `max_transmissions` now (it grows with the members known).
    max_transmissions: u8,
    pub stats: GossipStats,
}

/// foca's `max_transmissions` for a cluster of `members` nodes: memberlist's retransmit
/// rule with multiplier 4, ceil(4·ln(members + 1)), never below `floor` (nor 1).
pub fn max_transmissions_for(floor: u8, members: usize) -> u8 {
    let wanted = (4.0 * (members as f64 + 1.0).ln()).ceil();
    (wanted.min(f64::from(u8::MAX)) as u8).max(floor).max(1)
}

/// foca's configuration for a cluster of `members` nodes (every member known, in any state,
/// and this one).
fn foca_config(c: &GossipConfig, members: usize) -> Config {
    let nz = |n: usize| NonZeroUsize::new(n.max(1)).expect("at least 1");
    let max_transmissions = max_transmissions_for(c.max_transmissions, members);
    Config {
        probe_period: c.probe_period,
        probe_rtt: c.probe_rtt,
        num_indirect_probes: nz(c.indirect_probes),
        max_transmissions: NonZeroU8::new(max_transmissions).expect("at least 1"),
        suspect_to_down_after: c.suspect_to_down_after,
        remove_down_after: Some(Duration::from_secs(3600)),
        max_packet_size: nz(c.max_packet_bytes),
        notify_down_members: true,
        periodic_announce: Some(PeriodicParams {
            frequency: c.announce_interval,
            num_members: nz(1),
        }),
        // Heals partitions: both sides declared each other down, and only an announce to a
        // down member starts the renewals that bring them back.
        periodic_announce_to_down_members: Some(PeriodicParams {
            frequency: c.announce_to_down_interval,
            num_members: nz(c.announce_to_down_fanout),
        }),
        periodic_gossip: Some(PeriodicParams {
            frequency: c.gossip_interval,
            num_members: nz(c.gossip_fanout),
        }),
    }
}

impl Gossip {
    /// `generation` must be larger at every start of the node (see `driver::next_generation`).
    pub fn new(
        card: NodeCard,
        addr: SocketAddr,
        generation: u64,
        config: GossipConfig,
        rng_seed: u64,
        seeds: Vec<SocketAddr>,
    ) -> Gossip {
        assert!(generation > 0, "generation 0 is the seed placeholder's");
        let me = Peer {
            addr,
            generation,
            card: Arc::new(card),
        };
        let statuses = StatusTable::default();
        let handler = StatusHandler {
            table: statuses.clone(),
            max_members: config.max_members,
        };
        let rng = GossipRng(SimRng::new(rng_seed));
        let foca =
            Foca::with_custom_broadcast(me, foca_config(&config, 1), rng, WireCodec, handler);
        let max_transmissions = max_transmissions_for(config.max_transmissions, 1);
        let my_status = Status {
            node_id: foca.identity().card.node_id,
            generation,
            seq: 0,
            health: Health::Starting,
        };
        let seeds = seeds.into_iter().filter(|s| *s != addr).collect();
        let mut g = Gossip {
            foca,
            rt: AccumulatingRuntime::new(),
            config,
            now: Duration::ZERO,
            timers: BTreeMap::new(),
            timer_seq: 0,
            seeds,
            next_seed_announce: Duration::ZERO,
            outbox: Vec::new(),
            changes: Vec::new(),
            statuses,
            my_status,
            view_version: 1,
            view_dirty: true,
            max_transmissions,
            stats: GossipStats::default(),
        };
        g.publish_status();
        g
    }

    pub fn identity(&self) -> &Peer {
        self.foca.identity()
    }

    /// Whether this node knows no other live member (it keeps announcing to the seeds).
    pub fn identity_alone(&self) -> bool {
        self.foca.num_members() == 0
    }

    /// Replace the seed addresses (names resolved again by the driver).
    pub fn set_seeds(&mut self, seeds: Vec<SocketAddr>) {
        let me = self.identity().addr;
        self.seeds = seeds.into_iter().filter(|s| *s != me).collect();
    }

    /// Set this node's health and disseminate it.
    pub fn set_health(&mut self, health: Health) {
        if self.my_status.health != health {
            self.my_status.health = health;
            self.publish_status();
        }
    }

    fn publish_status(&mut self) {
        self.my_status.seq += 1;
        self.my_status.generation = self.identity().generation;
        let bytes = self.my_status.encode();
        if let Err(e) = self.foca.add_broadcast(&bytes) {
            crate::warn!("gossip: cannot queue our status: {e}");
        }
        self.view_dirty = true;
    }

    /// A packet from `from`. Bad packets are dropped and counted; the error says why.
    pub fn handle_packet(&mut self, now: Duration, data: &[u8]) -> Result<(), GossipError> {
        self.advance_clock(now);
        self.stats
            .packets_received
            .set(self.stats.packets_received.get() + 1);
        if data.len() > self.config.max_packet_bytes {
            self.count_bad();
            return Err(GossipError::TooLarge(data.len()));
        }
        let result = self.foca.handle_data(data, &mut self.rt);
        if result.is_ok() {
            self.answer_stale_destination(data);
        }
        self.collect();
        result.map_err(|e| {
            if !matches!(e, foca::Error::DataFromOurselves) {
                self.count_bad();
            }
            GossipError::Protocol(e.to_string())
        })
    }

    /// foca drops a packet addressed to an earlier identity of this node (same address, an
    /// older generation: sent by a node that missed our renewal after a partition or a
    /// pause), and that node would go on probing the old identity, failing, suspecting it,
    /// until its next announce. Announce the current identity to it instead: it learns the
    /// renewal from the header and answers with a feed. One small packet per stale packet.
    fn answer_stale_destination(&mut self, data: &[u8]) {
        let Ok(header) = WireCodec.decode_header(data) else {
            return;
        };
        let me = self.foca.identity();
        let stale = header.dst.addr == me.addr && header.dst.generation < me.generation;
        if stale && header.message != foca::Message::Announce {
            self.stats
                .stale_destinations
                .set(self.stats.stale_destinations.get() + 1);
            if let Err(e) = self.foca.announce(header.src, &mut self.rt) {
                crate::debug!("gossip: announce to a stale sender: {e}");
            }
        }
    }

    fn count_bad(&self) {
        self.stats.bad_packets.set(self.stats.bad_packets.get() + 1);
    }

    /// Fire every timer due at `now`, and announce to the seeds while alone.
    pub fn tick(&mut self, now: Duration) {
        self.advance_clock(now);
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            if let Err(e) = self.foca.handle_timer(timer, &mut self.rt) {
                crate::debug!("gossip: timer: {e}");
            }
            self.collect();
        }
        if self.foca.num_members() == 0 && now >= self.next_seed_announce {
            self.next_seed_announce = now + self.config.seed_announce_interval;
            for seed in self.seeds.clone() {
                let _ = self.foca.announce(Peer::placeholder(seed), &mut self.rt);
            }
            self.collect();
        }
    }

    fn advance_clock(&mut self, now: Duration) {
        debug_assert!(now >= self.now, "gossip time went backwards");
        self.now = self.now.max(now);
    }

    /// When [`Gossip::tick`] must run next.
    pub fn next_deadline(&self) -> Duration {
        let timer = self.timers.keys().next().map(|k| k.0);
        let announce = (self.foca.num_members() == 0 && !self.seeds.is_empty())
            .then_some(self.next_seed_announce);
        [timer, announce]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + self.config.probe_period)
    }

    /// Packets to send, with their destination.
    pub fn drain_outbox(&mut self) -> std::vec::Drain<'_, (SocketAddr, Bytes)> {
        self.outbox.drain(..)
    }

    /// Membership changes since the last call (each gets one log line).
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Leave the cluster on shutdown: peers mark this node down at once.
    pub fn leave(&mut self) {
        self.set_health(Health::Stopping);
        if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
            crate::debug!("gossip: leave: {e}");
        }
        self.collect();
    }

    /// Move what foca produced into our queues.
    fn collect(&mut self) {
        while let Some((to, data)) = self.rt.to_send() {
            self.stats
                .packets_sent
                .set(self.stats.packets_sent.get() + 1);
            self.outbox.push((to.addr, data));
        }
        while let Some((after, timer)) = self.rt.to_schedule() {
            self.timer_seq += 1;
            self.timers
                .insert((self.now + after, self.timer_seq), timer);
        }
        let mut members_changed = false;
        while let Some(n) = self.rt.to_notify() {
            self.view_dirty = true;
            members_changed = true;
            self.note(n);
        }
        if members_changed {
            self.fit_to_members();
        }
    }

    /// Retransmit updates as often as the cluster size wants ([`max_transmissions_for`]),
    /// the size being every member foca holds (down ones too: a partition does not shrink
    /// the cluster the updates must reach) and this node.
    fn fit_to_members(&mut self) {
        let members = self.foca.iter_membership_state().len() + 1;
        let wanted = max_transmissions_for(self.config.max_transmissions, members);
        if wanted == self.max_transmissions {
            return;
        }
        match self.foca.set_config(foca_config(&self.config, members)) {
            Ok(()) => self.max_transmissions = wanted,
            Err(e) => crate::warn!("gossip: cannot set max transmissions to {wanted}: {e}"),
        }
    }

    fn note(&mut self, n: OwnedNotification<Peer>) {
        let change = match n {
            OwnedNotification::MemberUp(p) => {
                // A newcomer missed our status broadcast: send a fresh one.
                self.publish_status();
                Change::Up {
                    node_id: p.card.node_id,
                    addr: p.addr,
                }
            }
            OwnedNotification::MemberDown(p) => Change::Down {
                node_id: p.card.node_id,
                addr: p.addr,
            },
            OwnedNotification::Rename(_, p) => Change::Renamed {
                node_id: p.card.node_id,
                generation: p.generation,
            },
            OwnedNotification::Rejoin(p) => {
                self.publish_status();
                Change::Rejoined {
                    generation: p.generation,
                }
            }
            _ => return,
        };
        self.changes.push(change);
    }

    /// Whether the view changed since the last [`Gossip::view`].
    pub fn view_changed(&self) -> bool {
        self.view_dirty
    }

    /// The membership now: every member foca knows (the newest generation per node id) and
    /// this node, with the health each last broadcast.
    pub fn view(&mut self) -> MembershipView {
        if self.view_dirty {
            self.view_dirty = false;
            self.view_version += 1;
        }
        let statuses = self.statuses.borrow();
        let health = |id: i32, generation: u64| {
            statuses
                .get(&id)
                .filter(|s| s.generation == generation)
                .map_or(Health::Starting, |s| s.health)
        };
        let mut members: BTreeMap<i32, MemberInfo> = BTreeMap::new();
        let me = self.foca.identity();
        let mine = std::iter::once((me, NodeState::Alive));
        let others = self.foca.iter_membership_state().map(|m| {
            let state = match m.state() {
                State::Alive => NodeState::Alive,
                State::Suspect => NodeState::Suspect,
                State::Down => NodeState::Dead,
            };
            (m.id(), state)
        });
        for (peer, state) in mine.chain(others) {
            if peer.is_placeholder() {
                continue;
            }
            let id = peer.card.node_id;
            if members
                .get(&id)
                .is_some_and(|m| m.generation >= peer.generation)
            {
                continue;
            }
            let info = MemberInfo {
                card: peer.card.clone(),
                generation: peer.generation,
                gossip_addr: peer.addr,
                state,
                health: health(id, peer.generation),
            };
            members.insert(id, info);
        }
        MembershipView {
            version: self.view_version,
            me: me.card.node_id,
            members,
        }
    }
}
