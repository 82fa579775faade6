//! The glommio side of gossip, on shard 0: one UDP socket on the RPC address, a receive
//! loop and a timer loop around the sans-IO [`Gossip`]. Every view change is handed to the
//! `on_view` callback (the composition root pushes it to every shard) and logged once.

use super::{Change, Gossip, Health, MembershipView};
use glommio::net::UdpSocket;
use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The timer loop wakes at least this often (foca's timers are coarse; this bounds drift).
const TICK_MAX: Duration = Duration::from_millis(25);
/// While alone, unresolvable seed names are looked up again this often.
const SEED_RESOLVE_INTERVAL: Duration = Duration::from_secs(5);
/// A received datagram larger than this is cut (and then refused as malformed).
const RECV_BUFFER_BYTES: usize = 2048;

/// The generation of this start of the node: larger than every earlier one (persisted in
/// `data_dir/gossip.generation`) and than the wall clock in ms, so a wiped data dir also
/// comes back newer than its old identity.
pub fn next_generation(data_dir: &Path) -> std::io::Result<u64> {
    let path = data_dir.join("gossip.generation");
    let old = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let generation = (old + 1).max(crate::base::now_ms().max(1) as u64);
    let tmp = data_dir.join("gossip.generation.tmp");
    std::fs::write(&tmp, generation.to_string())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(generation)
}

/// Resolve `HOST:PORT` names to socket addresses; names that do not resolve are skipped.
pub fn resolve(names: &[String]) -> Vec<SocketAddr> {
    names
        .iter()
        .filter_map(|n| n.to_socket_addrs().ok().and_then(|mut a| a.next()))
        .collect()
}

/// Runs one node's gossip.
pub struct GossipDriver {
    gossip: RefCell<Gossip>,
    socket: UdpSocket,
    start: Instant,
    seed_names: Vec<String>,
    on_view: Box<dyn Fn(Arc<MembershipView>)>,
    closed: Cell<bool>,
}

impl GossipDriver {
    pub fn new(
        gossip: Gossip,
        socket: UdpSocket,
        seed_names: Vec<String>,
        on_view: Box<dyn Fn(Arc<MembershipView>)>,
    ) -> Rc<GossipDriver> {
        Rc::new(GossipDriver {
            gossip: RefCell::new(gossip),
            socket,
            start: Instant::now(),
            seed_names,
            on_view,
            closed: Cell::new(false),
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The current view (also pushed through `on_view` at every change).
    pub fn view(&self) -> Arc<MembershipView> {
        Arc::new(self.gossip.borrow_mut().view())
    }

    /// (packets sent, packets received, bad packets).
    pub fn packet_counts(&self) -> (u64, u64, u64) {
        let g = self.gossip.borrow();
        let s = &g.stats;
        (
            s.packets_sent.get(),
            s.packets_received.get(),
            s.bad_packets.get(),
        )
    }

    pub async fn set_health(&self, health: Health) {
        self.gossip.borrow_mut().set_health(health);
        self.flush().await;
    }

    /// Tell the cluster we leave (peers mark us down at once), then stop the loops.
    pub async fn leave(&self) {
        self.gossip.borrow_mut().leave();
        self.flush().await;
        self.closed.set(true);
    }

    /// Run the receive and timer loops until [`GossipDriver::leave`].
    pub async fn run(self: Rc<Self>) {
        self.publish();
        futures_lite::future::race(self.clone().receive_loop(), self.clone().timer_loop()).await;
    }

    async fn receive_loop(self: Rc<Self>) {
        let mut buf = vec![0u8; RECV_BUFFER_BYTES];
        while !self.closed.get() {
            match self.socket.recv_from(&mut buf).await {
                Ok((n, _from)) => {
                    let now = self.now();
                    let r = self.gossip.borrow_mut().handle_packet(now, &buf[..n]);
                    if let Err(e) = r {
                        crate::debug!("gossip: packet dropped: {e}");
                    }
                    self.flush().await;
                    self.publish();
                }
                Err(e) => {
                    crate::debug!("gossip: receive failed: {e}");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn timer_loop(self: Rc<Self>) {
        let mut next_resolve = Duration::ZERO;
        while !self.closed.get() {
            let now = self.now();
            if now >= next_resolve && self.gossip.borrow().identity_alone() {
                next_resolve = now + SEED_RESOLVE_INTERVAL;
                self.gossip
                    .borrow_mut()
                    .set_seeds(resolve(&self.seed_names));
            }
            self.gossip.borrow_mut().tick(now);
            self.flush().await;
            self.publish();
            let deadline = self.gossip.borrow().next_deadline();
            let wait = deadline.saturating_sub(self.now()).min(TICK_MAX);
            glommio::timer::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    async fn flush(&self) {
        let out: Vec<_> = self.gossip.borrow_mut().drain_outbox().collect();
        for (to, data) in out {
            if let Err(e) = self.socket.send_to(&data, to).await {
                crate::debug!("gossip: send to {to} failed: {e}");
            }
        }
    }

    fn publish(&self) {
        let (changes, view) = {
            let mut g = self.gossip.borrow_mut();
            if !g.view_changed() {
                return;
            }
            (g.take_changes(), Arc::new(g.view()))
        };
        for c in &changes {
            log_change(c);
        }
        (self.on_view)(view);
    }
}

fn log_change(c: &Change) {
    match c {
        Change::Up { node_id, addr } => crate::info!("membership: node {node_id} ({addr}) is up"),
        Change::Down { node_id, addr } => {
            crate::info!("membership: node {node_id} ({addr}) is down")
        }
        Change::Renamed {
            node_id,
            generation,
        } => crate::info!("membership: node {node_id} is back as generation {generation}"),
        Change::Rejoined { generation } => {
            crate::info!(
                "membership: this node was declared down; rejoining as generation {generation}"
            )
        }
    }
}
