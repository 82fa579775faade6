//! The controller's driver on shard 0: runs the sans-IO [`Controller`] of this node.
//!
//! Every node runs one. The seed nodes are the voters; every other node is added as a raft
//! learner by the leader once it registered (it then receives the committed log like a voter
//! but does not vote): the same log, snapshot and apply path as the voters, so a follower's
//! image is exactly the leader's, and nothing else (no pull protocol) needs testing.
//!
//! The driver only moves things: a timer ticks the controller every [`TICK`] (glommio's timer
//! is monotonic, so a wall-clock jump changes no election), raft messages go out through
//! [`Rpc::send`] (one-way, kind [`KIND_RAFT`]; the transport batches what is queued per peer
//! into one frame) and come in from the kind's inbox, in batches of up to [`RAFT_BATCH`] per
//! step. After every step [`Controller::process`] persists (fdatasync) what raft asks for; each
//! new image is pushed to every shard (the `LocalMetadata` path), and so is every change of
//! controller leader. Everything that decides lives in `cluster` (controller, commands,
//! placement, forwarding codec) and runs in the seeded simulation there.
//!
//! A change ([`ControllerDriver::propose`]) is proposed here when this node leads, else
//! forwarded to the leader ([`KIND_FORWARD`]) and answered once committed and applied on this
//! node too. With no leader (a minority, or an election in progress) it retries until
//! [`COMMIT_TIMEOUT`] and then fails with a retriable error: never a change outside the log.

use super::admin_error;
use crate::cluster::controller::{
    node_of, Bootstrap, Controller, ControllerConfig, ControllerError, ProposalError, ProposalId,
};
use crate::cluster::forward::{ForwardReply, KIND_FORWARD, KIND_RAFT};
use crate::cluster::raft_store::DirFiles;
use crate::cluster::{Applied, Command, MetadataError, MetadataImage, NodeInfo};
use crate::config::BrokerConfig;
use crate::router::{AdminError, Router, ShardCall};
use crate::rpc::{Inbound, Rpc};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The controller's tick; [`ControllerConfig::new`]'s timing assumes it (elections after
/// 0.5–1 s without a heartbeat, heartbeats every 100 ms).
pub const TICK: Duration = Duration::from_millis(50);
/// How long a change waits for a leader and its commit before it fails (retriable).
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one forwarded change waits for the leader's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// Raft messages stepped before one `process` (and its single fdatasync).
const RAFT_BATCH: usize = 256;
/// Pause between attempts to find a leader.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

type Waiter = flume::Sender<Result<Applied, ProposalError>>;

/// Why one attempt of a change did not finish; the caller retries the retriable ones.
enum Attempt {
    /// Try again (at this leader, if known).
    Retry(Option<i32>),
    Failed(AdminError),
}

pub struct ControllerDriver {
    me: i32,
    ctl: RefCell<Option<Controller<DirFiles>>>,
    rpc: Rc<Rpc>,
    router: Rc<Router>,
    /// Seed RPC addresses (resolved): where to forward while no leader is known.
    seeds: Vec<SocketAddr>,
    waiters: RefCell<HashMap<ProposalId, Waiter>>,
    /// Woken after every step (applied index, leader or image may have moved).
    stepped: super::DataNotify,
    /// The newest image and leader not yet pushed to the shards, and its wake-up.
    to_publish: RefCell<(Option<Arc<MetadataImage>>, Option<Option<i32>>)>,
    publish: super::DataNotify,
    /// The leader last handed to the publisher (`None`: nothing yet).
    announced: Cell<Option<Option<i32>>>,
    /// Whether the publisher is pushing; woken when it finished a push.
    publishing: Cell<bool>,
    published: super::DataNotify,
    /// This node's block of producer ids: next, end.
    pids: Cell<(i64, i64)>,
    closed: Cell<bool>,
}

fn resolve(addr: &str) -> Option<SocketAddr> {
    addr.to_socket_addrs().ok()?.next()
}

fn unavailable(e: impl std::fmt::Display) -> AdminError {
    AdminError::Unavailable(e.to_string())
}

/// Why a proposal made here did not apply.
enum CommitError {
    Rejected(MetadataError),
    /// The outcome is unknown (leadership changed, or no commit in time).
    Unknown(String),
}

impl From<CommitError> for AdminError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Rejected(e) => admin_error(e),
            CommitError::Unknown(m) => AdminError::Unavailable(m),
        }
    }
}

impl ControllerDriver {
    /// Open this node's controller (at once when its files exist or it is a cluster of one;
    /// a fresh seed of a bigger cluster first learns the other seeds' node ids), and start
    /// its ticks, inboxes and publisher. Returns the image to start the shards with.
    pub fn start(
        config: &Arc<BrokerConfig>,
        rpc: Rc<Rpc>,
        router: Rc<Router>,
    ) -> Result<(Rc<Self>, Arc<MetadataImage>), String> {
        let me_addr = resolve(&config.rpc_advertise());
        let seeds: Vec<SocketAddr> = config.seeds.iter().filter_map(|s| resolve(s)).collect();
        let alone = seeds.iter().all(|&s| Some(s) == me_addr);
        let driver = Rc::new(ControllerDriver {
            me: config.node_id,
            ctl: RefCell::new(None),
            rpc,
            router,
            seeds: seeds.clone(),
            waiters: RefCell::new(HashMap::new()),
            stepped: Default::default(),
            to_publish: RefCell::new((None, None)),
            publish: Default::default(),
            announced: Cell::new(None),
            publishing: Cell::new(false),
            published: Default::default(),
            pids: Cell::new((0, 0)),
            closed: Cell::new(false),
        });
        let dir = &config.data_dir;
        let has_files = dir.join("controller.snap").exists() || dir.join("controller.log").exists();
        let is_seed = alone || seeds.iter().any(|&s| Some(s) == me_addr);
        let mut image = Arc::new(MetadataImage::default());
        if has_files || alone || !is_seed {
            let boot = if alone {
                Some(legacy_bootstrap(config)?)
            } else {
                None
            };
            let ctl = open(config, boot)?;
            image = ctl.image();
            *driver.ctl.borrow_mut() = Some(ctl);
        } else {
            glommio::spawn_local(driver.clone().open_when_seeds_known(config.clone())).detach();
        }
        driver.spawn_loops()?;
        driver.pump();
        Ok((driver, image))
    }

    fn spawn_loops(self: &Rc<Self>) -> Result<(), String> {
        let raft = self.rpc.subscribe(KIND_RAFT).map_err(|e| e.to_string())?;
        let forward = self
            .rpc
            .subscribe(KIND_FORWARD)
            .map_err(|e| e.to_string())?;
        let d = self.clone();
        glommio::spawn_local(async move { d.raft_loop(raft).await }).detach();
        let d = self.clone();
        glommio::spawn_local(async move { d.forward_loop(forward).await }).detach();
        let d = self.clone();
        glommio::spawn_local(async move { d.tick_loop().await }).detach();
        let d = self.clone();
        glommio::spawn_local(async move { d.publish_loop().await }).detach();
        Ok(())
    }

    /// A fresh seed: the voters are the seeds, by node id, which the transport's hellos tell.
    async fn open_when_seeds_known(self: Rc<Self>, config: Arc<BrokerConfig>) {
        let me_addr = resolve(&config.rpc_advertise());
        let mut logged = false;
        let voters = loop {
            let peers = self.rpc.peers();
            let mut ids = vec![self.me];
            for s in self.seeds.iter().filter(|&&s| Some(s) != me_addr) {
                if let Some((id, _)) = peers.iter().find(|(_, a)| a == s) {
                    ids.push(*id);
                }
            }
            if ids.len() == self.seeds.len() || self.closed.get() {
                break ids;
            }
            if !logged {
                crate::info!("controller: waiting for the seeds' node ids (known: {ids:?})");
                logged = true;
            }
            glommio::timer::sleep(RETRY_PAUSE).await;
        };
        let boot = Bootstrap {
            voters: voters.clone(),
            image: MetadataImage::default(),
        };
        match open(&config, Some(boot)) {
            Ok(ctl) => {
                crate::info!("controller: voters {voters:?}");
                *self.ctl.borrow_mut() = Some(ctl);
                self.pump();
            }
            Err(e) => crate::error!("controller: cannot open: {e}"),
        }
    }

    /// Resolves once every shard holds the newest image and leader (nothing left to push).
    pub async fn settled(&self) {
        loop {
            let pending = {
                let p = self.to_publish.borrow();
                p.0.is_some() || p.1.is_some()
            };
            if !pending && !self.publishing.get() {
                return;
            }
            self.published.changed().await;
        }
    }

    pub fn close(&self) {
        self.closed.set(true);
        self.publish.notify();
    }

    /// The controller group as this node knows it (`None` until the controller opened).
    pub fn status(&self) -> Option<crate::cluster::status::ControllerStatus> {
        self.ctl.borrow().as_ref().map(Controller::status)
    }

    /// The controller leader this node knows.
    pub fn leader(&self) -> Option<i32> {
        self.ctl.borrow().as_ref().and_then(|c| c.leader())
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.ctl
            .borrow()
            .as_ref()
            .map_or_else(|| Arc::new(MetadataImage::default()), |c| c.image())
    }

    async fn tick_loop(&self) {
        while !self.closed.get() {
            glommio::timer::sleep(TICK).await;
            if let Some(ctl) = self.ctl.borrow_mut().as_mut() {
                ctl.tick();
            }
            self.pump();
        }
    }

    async fn raft_loop(&self, inbox: crate::rpc::Inbox) {
        while let Some(first) = inbox.recv().await {
            self.step(first);
            for _ in 1..RAFT_BATCH {
                match inbox.try_recv() {
                    Some(m) => self.step(m),
                    None => break,
                }
            }
            self.pump();
        }
    }

    /// A raft message from node `from`; one that does not parse, or claims another sender
    /// or receiver than the connection it came on, is dropped.
    fn step(&self, inbound: Inbound) {
        let Ok(m) = Message::parse_from_bytes(&inbound.payload) else {
            crate::debug!("controller: unparsable raft message from {}", inbound.from);
            return;
        };
        if node_of(m.from) != Some(inbound.from) || node_of(m.to) != Some(self.me) {
            crate::debug!(
                "controller: misaddressed raft message from {}",
                inbound.from
            );
            return;
        }
        if let Some(ctl) = self.ctl.borrow_mut().as_mut() {
            ctl.step(m);
        }
    }

    /// Persist, send and apply what the controller has ready; wake whoever waits.
    fn pump(&self) {
        let mut guard = self.ctl.borrow_mut();
        let Some(ctl) = guard.as_mut() else {
            return;
        };
        let out = match ctl.process() {
            Ok(out) => out,
            Err(e) => {
                crate::error!("controller: {e}");
                return;
            }
        };
        for m in out.messages {
            self.send(ctl, m);
        }
        let mut publish = self.to_publish.borrow_mut();
        let leader = ctl.leader();
        let new_leader = self.announced.get() != Some(leader);
        if new_leader {
            crate::info!(
                "controller: leader is now {} (term {})",
                leader.map_or("none".into(), |l| format!("node {l}")),
                ctl.term()
            );
            self.announced.set(Some(leader));
            publish.1 = Some(leader);
        }
        if new_leader || out.image.is_some() {
            let image = ctl.image();
            self.learn(ctl, &image);
            publish.0 = Some(image);
            self.publish.notify();
        }
        drop((publish, guard));
        for (id, result) in out.results {
            if let Some(w) = self.waiters.borrow_mut().remove(&id) {
                let _ = w.try_send(result);
            }
        }
        self.stepped.notify();
    }

    fn send(&self, ctl: &mut Controller<DirFiles>, m: Message) {
        let Some(to) = node_of(m.to) else { return };
        let snapshot = m.get_msg_type() == MessageType::MsgSnapshot;
        let Ok(bytes) = m.write_to_bytes() else {
            return;
        };
        match self.rpc.send(to, KIND_RAFT, bytes.into()) {
            Ok(()) if snapshot => ctl.report_snapshot_sent(to),
            Ok(()) => {}
            Err(_) => ctl.report_unreachable(to),
        }
    }

    /// Dial registered nodes at their RPC address; as leader, add the non-voters as learners.
    fn learn(&self, ctl: &mut Controller<DirFiles>, image: &MetadataImage) {
        for n in image.nodes.values() {
            if n.id != self.me && self.rpc.peer_addr(n.id).is_none() {
                if let Some(addr) = resolve(&n.rpc) {
                    self.rpc.set_peer(n.id, addr);
                }
            }
        }
        if ctl.is_leader() {
            for &id in image.nodes.keys() {
                if let Err(e) = ctl.add_learner(id) {
                    crate::warn!("controller: cannot add node {id} as a learner: {e}");
                }
            }
        }
    }

    /// Push the newest image and leader to every shard, one push at a time.
    async fn publish_loop(&self) {
        while !self.closed.get() {
            let (image, leader) = std::mem::take(&mut *self.to_publish.borrow_mut());
            if image.is_none() && leader.is_none() {
                self.publishing.set(false);
                self.published.notify();
                self.publish.changed().await;
                continue;
            }
            self.publishing.set(true);
            if let Some(leader) = leader {
                super::broadcast(&self.router, || ShardCall::ControllerChanged(leader)).await;
            }
            if let Some(image) = image {
                super::broadcast(&self.router, || ShardCall::ApplyMetadata(image.clone())).await;
            }
        }
    }

    /// Commit `cmd` through the controller (here or at the leader) and return what it
    /// applied and this node's image once it holds the change.
    pub async fn propose(
        &self,
        cmd: &Command,
    ) -> Result<(Applied, Arc<MetadataImage>), AdminError> {
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        let mut hint = None;
        for attempt in 0usize.. {
            let target = match self.propose_local(cmd) {
                Ok((id, rx)) => {
                    let (_, applied) = self.wait_commit(id, rx, deadline).await?;
                    return Ok((applied, self.image()));
                }
                Err(ControllerError::NotLeader { leader }) => leader
                    .or(hint)
                    .filter(|&l| l != self.me)
                    .or_else(|| self.seed_id(attempt)),
                Err(_) => None,
            };
            if let Some(target) = target {
                match self.forward(target, cmd, deadline).await {
                    Ok(done) => return Ok(done),
                    Err(Attempt::Failed(e)) => return Err(e),
                    Err(Attempt::Retry(h)) => hint = h,
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            glommio::timer::sleep(RETRY_PAUSE).await;
        }
        Err(AdminError::Unavailable(format!(
            "no controller leader committed the change within {} s (no quorum of the controller voters is reachable, or an election is in progress); retry",
            COMMIT_TIMEOUT.as_secs()
        )))
    }

    /// A seed other than this node, in turn, to try while no leader is known.
    fn seed_id(&self, attempt: usize) -> Option<i32> {
        let peers = self.rpc.peers();
        let ids: Vec<i32> = peers
            .iter()
            .filter(|(id, a)| *id != self.me && self.seeds.contains(a))
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| ids[attempt % ids.len()])
    }

    fn propose_local(
        &self,
        cmd: &Command,
    ) -> Result<(ProposalId, flume::Receiver<Result<Applied, ProposalError>>), ControllerError>
    {
        let id = {
            let mut guard = self.ctl.borrow_mut();
            let ctl = guard
                .as_mut()
                .ok_or(ControllerError::NotLeader { leader: None })?;
            ctl.propose(cmd)?
        };
        let (tx, rx) = flume::bounded(1);
        self.waiters.borrow_mut().insert(id, tx);
        self.pump();
        Ok((id, rx))
    }

    async fn wait_commit(
        &self,
        id: ProposalId,
        rx: flume::Receiver<Result<Applied, ProposalError>>,
        deadline: Instant,
    ) -> Result<(ProposalId, Applied), CommitError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = futures_lite::future::race(async { rx.recv_async().await.ok() }, async {
            glommio::timer::sleep(left).await;
            None
        })
        .await;
        self.waiters.borrow_mut().remove(&id);
        match result {
            Some(Ok(applied)) => Ok((id, applied)),
            Some(Err(ProposalError::Rejected(e))) => Err(CommitError::Rejected(e)),
            Some(Err(ProposalError::Lost)) => Err(CommitError::Unknown(
                "the controller leader changed before the change committed; it may or may not have been applied: check and retry".into(),
            )),
            None => Err(CommitError::Unknown(
                "the change was not committed in time (no quorum of controller voters?); it may still be applied: check and retry".into(),
            )),
        }
    }

    async fn forward(
        &self,
        to: i32,
        cmd: &Command,
        deadline: Instant,
    ) -> Result<(Applied, Arc<MetadataImage>), Attempt> {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = left.min(FORWARD_TIMEOUT);
        let bytes = cmd.encode().into();
        let reply = match self.rpc.request(to, KIND_FORWARD, bytes, timeout).await {
            Ok(b) => ForwardReply::decode(&b).map_err(|e| Attempt::Failed(unavailable(e)))?,
            Err(e) => {
                crate::debug!("controller: forwarding to node {to}: {e}");
                return Err(Attempt::Retry(None));
            }
        };
        match reply {
            ForwardReply::Applied { index, applied } => {
                let image = self
                    .wait_applied(index, deadline)
                    .await
                    .map_err(Attempt::Failed)?;
                Ok((applied, image))
            }
            ForwardReply::Rejected(e) => Err(Attempt::Failed(admin_error(e))),
            ForwardReply::NotLeader(l) => Err(Attempt::Retry(l)),
            ForwardReply::Unavailable(m) => Err(Attempt::Failed(AdminError::Unavailable(m))),
        }
    }

    /// This node's image once its controller applied `index`.
    async fn wait_applied(
        &self,
        index: u64,
        deadline: Instant,
    ) -> Result<Arc<MetadataImage>, AdminError> {
        loop {
            if let Some(ctl) = self.ctl.borrow().as_ref() {
                if ctl.applied() >= index {
                    return Ok(ctl.image());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(unavailable(format!(
                    "the change committed at index {index} on the controller but is not applied on this node yet; retry"
                )));
            }
            futures_lite::future::race(self.stepped.changed(), glommio::timer::sleep(left)).await;
        }
    }

    /// Changes other nodes forward to this one: proposed if it leads, else redirected.
    async fn forward_loop(self: Rc<Self>, inbox: crate::rpc::Inbox) {
        while let Some(req) = inbox.recv().await {
            let d = self.clone();
            glommio::spawn_local(async move {
                let reply = d.serve_forward(&req.payload).await;
                let _ = d.rpc.reply(&req, reply.encode().into());
            })
            .detach();
        }
    }

    async fn serve_forward(&self, payload: &[u8]) -> ForwardReply {
        let cmd = match Command::decode(payload) {
            Ok(cmd) => cmd,
            Err(e) => return ForwardReply::Rejected(e),
        };
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        match self.propose_local(&cmd) {
            Ok((id, rx)) => match self.wait_commit(id, rx, deadline).await {
                Ok((id, applied)) => ForwardReply::Applied {
                    index: id.index,
                    applied,
                },
                Err(CommitError::Rejected(e)) => ForwardReply::Rejected(e),
                Err(CommitError::Unknown(m)) => ForwardReply::Unavailable(m),
            },
            Err(ControllerError::NotLeader { leader }) => ForwardReply::NotLeader(leader),
            Err(e) => ForwardReply::Unavailable(e.to_string()),
        }
    }

    /// Register this node (its addresses and rack) through the controller, retrying until it
    /// is in the committed image.
    pub async fn register(self: Rc<Self>, info: NodeInfo) {
        while !self.closed.get() {
            if self.image().nodes.get(&info.id) == Some(&info) {
                crate::info!("controller: node {} registered", info.id);
                return;
            }
            if let Err(e) = self.propose(&Command::RegisterNode(info.clone())).await {
                crate::debug!("controller: registering node {}: {e:?}", info.id);
                glommio::timer::sleep(RETRY_PAUSE * 5).await;
            }
        }
    }

    /// A producer id unique in the cluster: from this node's block, reserving the next block
    /// through the controller when it is used up.
    pub async fn allocate_producer_id(&self) -> Result<i64, AdminError> {
        let (next, end) = self.pids.get();
        if next < end {
            self.pids.set((next + 1, end));
            return Ok(next);
        }
        match self.propose(&Command::AllocateProducerIds).await? {
            (Applied::ProducerIds { start, end }, _) if start < end => {
                self.pids.set((start + 1, end));
                Ok(start)
            }
            other => Err(AdminError::Storage(format!(
                "the controller answered a producer-id block with {other:?}"
            ))),
        }
    }
}

/// A fresh cluster of one starts from the pre-controller `metadata.bin`, if there is one.
fn legacy_bootstrap(config: &BrokerConfig) -> Result<Bootstrap, String> {
    let store = crate::cluster::MetadataStore::open(&config.data_dir).map_err(|e| e.to_string())?;
    Ok(Bootstrap {
        voters: vec![config.node_id],
        image: (*store.image()).clone(),
    })
}

fn open(config: &BrokerConfig, boot: Option<Bootstrap>) -> Result<Controller<DirFiles>, String> {
    let files = DirFiles::new(config.data_dir.clone());
    let mut ctl = Controller::open(files, ControllerConfig::new(config.node_id), boot)
        .map_err(|e| format!("controller: {e}"))?;
    ctl.campaign_if_alone()
        .map_err(|e| format!("controller: {e}"))?;
    Ok(ctl)
}
