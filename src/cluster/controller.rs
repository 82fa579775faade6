//! The controller: cluster metadata as the state machine of a Raft group (group 0), sans-IO.
//!
//! [`Controller`] wraps a raft-rs `RawNode` over a [`LogStore`] and the state machine (a
//! [`MetadataImage`] changed only by committed [`Command`]s through [`apply`]). It does no I/O
//! of its own except through [`ControllerFiles`], and has no clock: its driver calls
//! [`Controller::tick`] at a fixed interval, hands it peers' messages with
//! [`Controller::step`], and after either calls [`Controller::process`], which persists what
//! Raft asks for (entries, hard state, snapshots; synced before anything that depends on them
//! leaves) and returns the messages to send, the new image, and the outcome of this node's
//! proposals. The broker's driver runs it on shard 0; the simulation in `sim` runs many.
//!
//! A change is answered only after it is committed (a majority of voters persisted it) and
//! applied here. A proposal whose leader steps down before it applies is reported
//! [`ProposalError::Lost`]: it may still commit later, as with any timed-out Kafka admin
//! request. Raft ids are Kafka node ids plus one (raft reserves id 0).
//!
//! A proposal is known by the (term, index) raft gave its entry ([`ProposalId`]), and a
//! committed entry answers the proposal with the same index only if its term matches too: by
//! Raft's log matching, equal index and term mean the same entry. A node leads a term at
//! most once (a restart must win a new election, in a higher term), so an id is never handed
//! out twice, not even across restarts, and an older entry can never answer a newer proposal.

use super::command::{apply, Applied, Command};
use super::image::{decode_file, encode_file};
use super::raft_store::{encode_records, ControllerFiles, FileKind, LogStore};
use super::{MetadataError, MetadataImage};
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType};
use raft::eraftpb::{Message, Snapshot};
use raft::{RawNode, StateRole, Storage as _};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Raft id of Kafka node `node`.
pub fn raft_id(node: i32) -> u64 {
    node as u64 + 1
}

/// Kafka node id of raft id `id` (`None` for raft's "no node", 0).
pub fn node_of(id: u64) -> Option<i32> {
    (id != 0).then(|| (id - 1) as i32)
}

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    pub node_id: i32,
    /// Ticks without a leader's heartbeat before an election (raft picks a random timeout in
    /// `[election_tick, 2 * election_tick)` unless `fixed_election_timeout` is set).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Seed for the election timeouts, for a replayable simulation: raft-rs draws them from
    /// an unseeded generator, so with a seed the controller redraws each one itself (in the
    /// same range) whenever raft resets it. `None` in the broker.
    pub election_seed: Option<u64>,
    /// Take a snapshot (and drop the log before it) after this many applied entries.
    pub snapshot_every: u64,
    /// At most this many of this node's proposals wait for their commit.
    pub max_pending: usize,
}

impl ControllerConfig {
    /// Defaults for a 50 ms tick: heartbeats every 100 ms, elections after 0.5–1 s.
    pub fn new(node_id: i32) -> Self {
        ControllerConfig {
            node_id,
            election_tick: 10,
            heartbeat_tick: 2,
            election_seed: None,
            snapshot_every: 1024,
            max_pending: 1024,
        }
    }
}

/// How a fresh data dir starts the group: the voters (the seed nodes; every one of them must
/// be given the same list) and the initial image (a pre-controller `metadata.bin`, only for a
/// cluster of one).
pub struct Bootstrap {
    pub voters: Vec<i32>,
    pub image: MetadataImage,
}

#[derive(Debug)]
pub enum ControllerError {
    /// This node is not the leader; `leader` is the one it knows, if any. Retriable.
    NotLeader {
        leader: Option<i32>,
    },
    /// Too many proposals wait for their commit. Retriable.
    Busy,
    Storage(MetadataError),
    Raft(raft::Error),
    /// The data dir cannot start or join this cluster.
    Refused(String),
}

impl fmt::Display for ControllerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControllerError::NotLeader { leader: Some(l) } => {
                write!(f, "this node is not the controller; node {l} is")
            }
            ControllerError::NotLeader { leader: None } => {
                write!(
                    f,
                    "no controller is elected (no quorum of voters reachable)"
                )
            }
            ControllerError::Busy => write!(f, "too many metadata changes in flight"),
            ControllerError::Storage(e) => write!(f, "controller storage: {e}"),
            ControllerError::Raft(e) => write!(f, "controller raft: {e}"),
            ControllerError::Refused(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for ControllerError {}

impl From<MetadataError> for ControllerError {
    fn from(e: MetadataError) -> Self {
        ControllerError::Storage(e)
    }
}

impl From<std::io::Error> for ControllerError {
    fn from(e: std::io::Error) -> Self {
        ControllerError::Storage(MetadataError::Io(e))
    }
}

/// Why a proposal did not apply.
#[derive(Debug)]
pub enum ProposalError {
    /// Committed, but the state machine refused it (e.g. the topic exists).
    Rejected(MetadataError),
    /// Leadership changed before it applied here; it may or may not commit. Retriable.
    Lost,
}

/// A proposal's entry: the term it was proposed in and the log index raft gave it. Unique
/// across the group's whole life (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalId {
    pub term: u64,
    pub index: u64,
}

/// What one [`Controller::process`] produced.
#[derive(Default)]
pub struct Output {
    /// To send to their `to` (raft id; see [`node_of`]), in order.
    pub messages: Vec<Message>,
    /// This node's proposals, by the id [`Controller::propose`] returned.
    pub results: Vec<(ProposalId, Result<Applied, ProposalError>)>,
    /// The image after this step's commits, when it changed.
    pub image: Option<Arc<MetadataImage>>,
    /// Committed entries applied in this step: `(index, term, data)`, for checkers.
    pub applied: Vec<(u64, u64, bytes::Bytes)>,
    /// The leader changed to this one (`None`: none known).
    pub leader_changed: Option<Option<i32>>,
}

pub struct Controller<F: ControllerFiles> {
    node: RawNode<LogStore>,
    files: F,
    cfg: ControllerConfig,
    image: MetadataImage,
    published: Arc<MetadataImage>,
    applied: u64,
    /// This node's proposals waiting for their entry to apply, by log index: the term.
    pending: BTreeMap<u64, u64>,
    leader: Option<i32>,
    /// With [`ControllerConfig::election_seed`]: the generator and the (term, role) the
    /// current timeout was drawn for.
    election_rng: Option<(crate::io::sim::SimRng, u64, StateRole)>,
}

/// raft-rs logs through slog; its warnings and errors go to ringmq's log.
struct RaftLogDrain;

impl slog::Drain for RaftLogDrain {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, r: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        match r.level() {
            slog::Level::Critical | slog::Level::Error => crate::error!("raft: {}", r.msg()),
            slog::Level::Warning => crate::warn!("raft: {}", r.msg()),
            _ => {}
        }
        Ok(())
    }
}

fn raft_config(cfg: &ControllerConfig, applied: u64) -> raft::Config {
    let mut c = raft::Config::new(raft_id(cfg.node_id));
    c.election_tick = cfg.election_tick;
    c.heartbeat_tick = cfg.heartbeat_tick;
    c.applied = applied;
    c.check_quorum = true;
    c.pre_vote = true;
    c.max_size_per_msg = 1 << 20;
    c.max_inflight_msgs = 256;
    c
}

fn snapshot_of(image: &MetadataImage, index: u64, term: u64, conf: ConfState) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut img = image.clone();
    img.version = index;
    snap.data = encode_file(&img).into();
    let meta = snap.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(conf);
    snap
}

fn image_of(snap: &Snapshot) -> Result<MetadataImage, MetadataError> {
    if snap.data.is_empty() {
        return Ok(MetadataImage::default());
    }
    let mut image = decode_file(&snap.data)?;
    image.version = snap.get_metadata().index;
    Ok(image)
}

impl<F: ControllerFiles> Controller<F> {
    /// Open the controller's files; a fresh data dir with a `bootstrap` starts the group (a
    /// node without one waits to be added as a learner and receives a snapshot).
    pub fn open(
        mut files: F,
        cfg: ControllerConfig,
        bootstrap: Option<Bootstrap>,
    ) -> Result<Self, ControllerError> {
        let mut store = LogStore::load(&mut files)?;
        let fresh = store.snap_index() == 0 && store.entries.is_empty() && store.hard.term == 0;
        if let (true, Some(b)) = (fresh, bootstrap) {
            if b.voters.len() > 1 && !b.image.topics.is_empty() {
                return Err(ControllerError::Refused(
                    "this data dir holds topics of a single-node broker; it can start a cluster of one only (no --seeds)".into(),
                ));
            }
            let conf = ConfState::from((b.voters.iter().map(|&v| raft_id(v)), Vec::new()));
            let index = b.image.version.max(1);
            store.install(snapshot_of(&b.image, index, 1, conf.clone()));
            store.conf = conf;
            files.replace(FileKind::Snapshot, &store.snapshot_file())?;
        }
        files.replace(FileKind::Log, &store.log_file())?;
        let image = image_of(&store.snap)?;
        let applied = store.snap_index();
        let logger = slog::Logger::root(RaftLogDrain, slog::o!());
        let cfg_seed = cfg.election_seed;
        let node = RawNode::new(&raft_config(&cfg, applied), store, &logger)
            .map_err(ControllerError::Raft)?;
        Ok(Controller {
            node,
            files,
            cfg,
            published: Arc::new(image.clone()),
            image,
            applied,
            pending: BTreeMap::new(),
            leader: None,
            election_rng: cfg_seed.map(|s| {
                (
                    crate::io::sim::SimRng::new(s),
                    u64::MAX,
                    StateRole::Follower,
                )
            }),
        })
    }

    /// A group whose only voter is this node elects it now (rather than after an election
    /// timeout), and applies what its log holds, so a cluster of one serves at once.
    pub fn campaign_if_alone(&mut self) -> Result<(), ControllerError> {
        let me = raft_id(self.cfg.node_id);
        let voters: Vec<u64> = self.node.raft.prs().conf().voters().ids().iter().collect();
        if voters == [me] && !self.is_leader() {
            self.node.campaign().map_err(ControllerError::Raft)?;
        }
        let out = self.process()?;
        self.leader = node_of(self.node.raft.leader_id);
        drop(out);
        Ok(())
    }

    pub fn tick(&mut self) {
        self.node.tick();
        self.redraw_election_timeout();
    }

    /// A message from a peer. A message raft refuses (e.g. for another group) is dropped.
    pub fn step(&mut self, msg: Message) {
        if let Err(e) = self.node.step(msg) {
            crate::debug!("controller dropped a message: {e}");
        }
        self.redraw_election_timeout();
    }

    /// Raft redraws the timeout on every change of term or role; so do we, from the seed.
    fn redraw_election_timeout(&mut self) {
        let Some((rng, term, role)) = self.election_rng.as_mut() else {
            return;
        };
        let r = &mut self.node.raft;
        if (*term, *role) != (r.term, r.state) {
            (*term, *role) = (r.term, r.state);
            let lo = self.cfg.election_tick; // raft's range: [election_tick, 2 * election_tick)
            let t = lo + rng.below(lo as u64) as usize;
            r.set_randomized_election_timeout(t);
        }
    }

    /// Role, term, vote, leader, commit and last index, for test failure messages.
    pub fn debug_state(&self) -> String {
        let r = &self.node.raft;
        format!(
            "{:?} term {} vote {} leader {} commit {} last {} elapsed {}",
            r.state,
            r.term,
            r.vote,
            r.leader_id,
            r.raft_log.committed,
            r.raft_log.last_index(),
            r.election_elapsed
        )
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }
    pub fn leader(&self) -> Option<i32> {
        node_of(self.node.raft.leader_id)
    }
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }
    /// The group as this node knows it: leader, term, commit index, voters and learners.
    pub fn status(&self) -> super::status::ControllerStatus {
        let conf = self.node.raft.prs().conf();
        let mut voters: Vec<i32> = conf.voters().ids().iter().filter_map(node_of).collect();
        let mut learners: Vec<i32> = conf
            .learners()
            .iter()
            .filter_map(|&id| node_of(id))
            .collect();
        voters.sort_unstable();
        learners.sort_unstable();
        super::status::ControllerStatus {
            leader: self.leader(),
            term: self.term(),
            commit_index: self.commit_index(),
            voters,
            learners,
        }
    }
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }
    pub fn applied(&self) -> u64 {
        self.applied
    }
    pub fn image(&self) -> Arc<MetadataImage> {
        self.published.clone()
    }
    pub fn node_id(&self) -> i32 {
        self.cfg.node_id
    }

    /// Propose `cmd`; its outcome arrives in a later [`Output::results`] under the returned id.
    pub fn propose(&mut self, cmd: &Command) -> Result<ProposalId, ControllerError> {
        if !self.is_leader() {
            return Err(ControllerError::NotLeader {
                leader: self.leader(),
            });
        }
        if self.pending.len() >= self.cfg.max_pending {
            return Err(ControllerError::Busy);
        }
        let before = self.node.raft.raft_log.last_index();
        self.node
            .propose(Vec::new(), cmd.encode())
            .map_err(|_| ControllerError::NotLeader {
                leader: self.leader(),
            })?;
        let id = ProposalId {
            term: self.node.raft.term,
            index: self.node.raft.raft_log.last_index(),
        };
        assert_eq!(id.index, before + 1, "a proposal appends exactly one entry");
        let stale = self.pending.insert(id.index, id.term);
        assert!(
            stale.is_none(),
            "two waiting proposals at index {}",
            id.index
        );
        Ok(id)
    }

    /// Add `node` as a learner: it receives the committed log but does not vote.
    pub fn add_learner(&mut self, node: i32) -> Result<(), ControllerError> {
        if !self.is_leader() {
            return Err(ControllerError::NotLeader {
                leader: self.leader(),
            });
        }
        let id = raft_id(node);
        let conf = self.node.raft.prs().conf();
        if conf.voters().contains(id) || conf.learners().contains(&id) {
            return Ok(());
        }
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::AddLearnerNode);
        cc.node_id = id;
        self.node
            .propose_conf_change(Vec::new(), cc)
            .map_err(ControllerError::Raft)
    }

    /// The transport could not reach `node`: raft probes it again instead of streaming.
    pub fn report_unreachable(&mut self, node: i32) {
        self.node.report_unreachable(raft_id(node));
    }

    /// A snapshot message to `node` was handed to the transport.
    pub fn report_snapshot_sent(&mut self, node: i32) {
        self.node
            .report_snapshot(raft_id(node), raft::SnapshotStatus::Finish);
    }

    /// Persist and apply whatever raft has ready; see the module docs.
    pub fn process(&mut self) -> Result<Output, ControllerError> {
        let mut out = Output::default();
        let before = self.published.version;
        for _ in 0..8 {
            if !self.node.has_ready() {
                break;
            }
            self.process_ready(&mut out)?;
        }
        self.maybe_snapshot()?;
        if self.image.version != before {
            self.published = Arc::new(self.image.clone());
            out.image = Some(self.published.clone());
        }
        Ok(out)
    }

    fn process_ready(&mut self, out: &mut Output) -> Result<(), ControllerError> {
        let mut rd = self.node.ready();
        if let Some(ss) = rd.ss() {
            self.on_role(node_of(ss.leader_id), ss.raft_state, out);
        }
        out.messages.extend(rd.take_messages());
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone(), out)?;
        }
        let entries = rd.take_entries();
        let hs = rd.hs().cloned();
        if !entries.is_empty() || hs.is_some() {
            let mut bytes = Vec::new();
            encode_records(&entries, hs.as_ref(), &mut bytes);
            self.files.append_log(&bytes)?;
            self.files.sync_log()?;
            let store = self.node.mut_store();
            store.append(&entries);
            if let Some(hs) = hs {
                store.hard = hs;
            }
        }
        self.apply_entries(rd.take_committed_entries(), out)?;
        out.messages.extend(rd.take_persisted_messages());
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().hard.commit = commit;
        }
        out.messages.extend(light.take_messages());
        self.apply_entries(light.take_committed_entries(), out)?;
        self.node.advance_apply();
        Ok(())
    }

    fn on_role(&mut self, leader: Option<i32>, role: StateRole, out: &mut Output) {
        if role != StateRole::Leader {
            for (index, term) in std::mem::take(&mut self.pending) {
                let id = ProposalId { term, index };
                out.results.push((id, Err(ProposalError::Lost)));
            }
        }
        if leader != self.leader {
            self.leader = leader;
            out.leader_changed = Some(leader);
        }
    }

    fn install_snapshot(
        &mut self,
        snap: Snapshot,
        out: &mut Output,
    ) -> Result<(), ControllerError> {
        let image = image_of(&snap)?;
        let index = snap.get_metadata().index;
        let rest = self.pending.split_off(&(index + 1));
        for (index, term) in std::mem::replace(&mut self.pending, rest) {
            let id = ProposalId { term, index };
            out.results.push((id, Err(ProposalError::Lost)));
        }
        let store = self.node.mut_store();
        store.conf = snap.get_metadata().get_conf_state().clone();
        store.install(snap);
        self.files
            .replace(FileKind::Snapshot, &store.snapshot_file())?;
        self.files.replace(FileKind::Log, &store.log_file())?;
        self.image = image;
        self.applied = index;
        Ok(())
    }

    fn apply_entries(
        &mut self,
        entries: Vec<Entry>,
        out: &mut Output,
    ) -> Result<(), ControllerError> {
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            out.applied.push((e.index, e.term, e.data.clone()));
            let result = match e.get_entry_type() {
                EntryType::EntryNormal => self.apply_command(&e),
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&e.data)
                        .map_err(|err| MetadataError::Corrupt(format!("conf change: {err}")))?;
                    let cs = self.node.apply_conf_change(&cc);
                    self.apply_conf(cs)?
                }
                EntryType::EntryConfChangeV2 => {
                    let cc = ConfChangeV2::parse_from_bytes(&e.data)
                        .map_err(|err| MetadataError::Corrupt(format!("conf change: {err}")))?;
                    let cs = self.node.apply_conf_change(&cc);
                    self.apply_conf(cs)?
                }
            };
            self.applied = e.index;
            self.answer(&e, result, out);
        }
        Ok(())
    }

    fn apply_conf(
        &mut self,
        cs: raft::Result<ConfState>,
    ) -> Result<Result<Applied, ProposalError>, ControllerError> {
        self.node.mut_store().conf = cs.map_err(ControllerError::Raft)?;
        Ok(Ok(Applied::Done))
    }

    /// The outcome of applying the (non-empty) command entry `e`.
    fn apply_command(&mut self, e: &Entry) -> Result<Applied, ProposalError> {
        if e.data.is_empty() {
            return Ok(Applied::Done); // a new leader's empty entry
        }
        let result = Command::decode(&e.data).and_then(|cmd| apply(&mut self.image, &cmd));
        if result.is_ok() {
            self.image.version = e.index;
        }
        result.map_err(ProposalError::Rejected)
    }

    /// Answer the proposal waiting at `e`'s index: with `result` if `e` is its entry (same
    /// term), else [`ProposalError::Lost`] (another leader's entry replaced it).
    fn answer(&mut self, e: &Entry, result: Result<Applied, ProposalError>, out: &mut Output) {
        let Some(term) = self.pending.remove(&e.index) else {
            return;
        };
        let id = ProposalId {
            term,
            index: e.index,
        };
        let result = if term == e.term {
            result
        } else {
            Err(ProposalError::Lost)
        };
        out.results.push((id, result));
    }

    /// Snapshot every [`ControllerConfig::snapshot_every`] applied entries, and after a
    /// membership change: the stored snapshot is what a new learner receives first, and
    /// raft-rs refuses one whose ConfState does not name it (the bootstrap snapshot names
    /// only the seeds), so a learner would never catch up.
    fn maybe_snapshot(&mut self) -> Result<(), ControllerError> {
        let store = self.node.store();
        let conf_changed = store.conf != *store.snap.get_metadata().get_conf_state();
        let due = self.applied >= store.snap_index() + self.cfg.snapshot_every.max(1);
        if self.applied <= store.snap_index() || !(due || conf_changed) {
            return Ok(());
        }
        let term = store.term(self.applied).map_err(ControllerError::Raft)?;
        let snap = snapshot_of(&self.image, self.applied, term, store.conf.clone());
        let store = self.node.mut_store();
        store.install(snap);
        self.files
            .replace(FileKind::Snapshot, &store.snapshot_file())?;
        self.files.replace(FileKind::Log, &store.log_file())?;
        Ok(())
    }
}
