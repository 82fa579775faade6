//! Seeded simulation of partition replication (issue 12 item 11): 3 or 5 nodes, each a
//! [`MultiRaft`] with many groups over [`MemLog`]s on crashing [`MemDisk`]s, and a network of
//! envelopes that loses, duplicates, delays, reorders and partitions them; nodes crash with
//! power loss (unsynced writes lost, torn, bits flipped) and restart. Every run replays from
//! its seed. Checked after every step:
//! - a replica's applied (committed) prefix equals the cluster's committed entries, byte for
//!   byte, whenever it grows and after every restart: no replica diverges below its commit
//!   index, and an offset never holds two different committed batches (entries are dense in
//!   offset and each committed batch's base offset follows the previous one);
//! - an acknowledged proposal (acks=all) is the committed entry at its index and offsets;
//! - at most one leader per (group, term);
//! - a leader that serves (an entry of its term committed) has a high watermark at or above
//!   every acknowledged batch's end (consumers of a new leader see every acked record);
//! - each node sends at most one envelope per peer per tick (all groups batched).
//!
//! At the end, faults heal: every group must converge, every replica must hold every
//! committed batch and every acknowledged one (nothing lost), then the node leading the most
//! groups dies and each of its groups must elect another leader within a bound of ticks.
//!
//! CI runs a few dozen seeds; `RINGMQ_REPL_SEEDS=N [RINGMQ_REPL_SEED_START=S] cargo test --release --lib
//! replication_sim_many_seeds -- --ignored --nocapture` runs N (and prints seeds per second).

use super::mem_log::{MemDisk, MemLog};
use super::multi::{MultiConfig, MultiRaft};
use super::replica::{Event, ProposalId};
use super::{GroupId, ReplicaLog};
use crate::io::sim::SimRng;
use crate::model::{test_batches, BatchHeader, Offset};
use crate::rpc::NodeId;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Fault rates (per million, per tick or per envelope) and sizes of one run.
#[derive(Clone, Copy)]
struct Faults {
    loss: u32,
    dup: u32,
    max_delay: u64,
    crash: u32,
    partition: u32,
    propose: u32,
    fault_ticks: u64,
}

const FAULTS: Faults = Faults {
    loss: 80_000,
    dup: 40_000,
    max_delay: 4,
    crash: 6_000,
    partition: 8_000,
    propose: 400_000,
    fault_ticks: 700,
};

const ELECTION_TICK: u64 = 10;

struct Node {
    multi: Option<MultiRaft<MemLog>>,
    disks: BTreeMap<GroupId, MemDisk>,
    restart_at: u64,
}

struct Sim {
    seed: u64,
    rng: SimRng,
    nodes: Vec<Node>,
    placement: BTreeMap<GroupId, Vec<NodeId>>,
    now: u64,
    /// (deliver at, sequence, from, to, payload).
    net: Vec<(u64, u64, NodeId, NodeId, Bytes)>,
    sent: u64,
    side: Vec<u8>,
    /// The committed entries of every group, by index - 1.
    committed: BTreeMap<GroupId, Vec<Bytes>>,
    /// Per (node, group): the index up to which its log was checked against `committed`.
    checked: BTreeMap<(NodeId, GroupId), u64>,
    leaders: BTreeMap<(GroupId, u64), NodeId>,
    proposals: BTreeMap<(NodeId, GroupId, ProposalId), Bytes>,
    acked: Vec<(GroupId, ProposalId, Offset, Bytes)>,
    /// Per (group, term an ack happened in): the offset after the last acknowledged batch.
    acked_end: BTreeMap<(GroupId, u64), Offset>,
    next_value: u64,
    faults: Faults,
    /// Envelopes per (from, to) in the current tick, and the most seen in any tick.
    pair_sends: BTreeMap<(NodeId, NodeId), u64>,
    max_pair_sends: u64,
    crashes: u64,
}

impl Sim {
    fn new(seed: u64, nodes: usize, groups: u64, rf: usize, faults: Faults) -> Sim {
        let mut placement = BTreeMap::new();
        for g in 0..groups {
            let voters: Vec<NodeId> = (0..rf)
                .map(|k| ((g as usize + k) % nodes) as NodeId)
                .collect();
            placement.insert(GroupId(g), voters);
        }
        let mut sim = Sim {
            seed,
            rng: SimRng::new(seed),
            nodes: Vec::new(),
            placement,
            now: 0,
            net: Vec::new(),
            sent: 0,
            side: vec![0; nodes],
            committed: BTreeMap::new(),
            checked: BTreeMap::new(),
            leaders: BTreeMap::new(),
            proposals: BTreeMap::new(),
            acked: Vec::new(),
            acked_end: BTreeMap::new(),
            next_value: 0,
            faults,
            pair_sends: BTreeMap::new(),
            max_pair_sends: 0,
            crashes: 0,
        };
        for n in 0..nodes {
            let disks = sim
                .placement
                .iter()
                .filter(|(_, v)| v.contains(&(n as NodeId)))
                .map(|(&g, _)| (g, MemDisk::default()))
                .collect();
            sim.nodes.push(Node {
                multi: None,
                disks,
                restart_at: 0,
            });
        }
        for n in 0..nodes {
            sim.start(n);
        }
        sim
    }

    fn start(&mut self, n: usize) {
        let mut cfg = MultiConfig::new(n as NodeId);
        cfg.replica.election_seed = Some(self.rng.next_u64());
        let mut multi = MultiRaft::new(cfg);
        for (&g, disk) in &self.nodes[n].disks {
            let voters = &self.placement[&g];
            multi
                .add_group(g, voters, MemLog::open(disk.clone()))
                .expect("group opens");
        }
        self.nodes[n].multi = Some(multi);
        let groups: Vec<GroupId> = self.nodes[n].disks.keys().copied().collect();
        for g in groups {
            self.checked.insert((n as NodeId, g), 0);
            let applied = self.replica_applied(n, g);
            self.check_prefix(n, g, applied);
        }
    }

    fn replica_applied(&self, n: usize, g: GroupId) -> u64 {
        let m = self.nodes[n].multi.as_ref().expect("live");
        m.group(g).expect("hosted").applied_index()
    }

    fn crash(&mut self, n: usize, down_for: u64) {
        if self.nodes[n].multi.take().is_none() {
            return;
        }
        self.crashes += 1;
        self.proposals
            .retain(|&(node, _, _), _| node != n as NodeId);
        for disk in self.nodes[n].disks.values() {
            disk.crash(&mut self.rng);
        }
        self.nodes[n].restart_at = self.now + down_for;
    }

    /// Check node `n`'s log of `g` up to `upto` against the committed entries, extending them.
    fn check_prefix(&mut self, n: usize, g: GroupId, upto: u64) {
        let seed = self.seed;
        let from = self.checked[&(n as NodeId, g)];
        let log = self.nodes[n]
            .multi
            .as_ref()
            .unwrap()
            .group(g)
            .unwrap()
            .log();
        let committed = self.committed.entry(g).or_default();
        for i in from + 1..=upto {
            let batch = log
                .batch(i)
                .unwrap_or_else(|| panic!("seed {seed}: node {n} {g} lost entry {i}"));
            match committed.get(i as usize - 1) {
                Some(c) => assert_eq!(
                    c, &batch,
                    "seed {seed}: node {n} {g} holds another batch at committed index {i}"
                ),
                None => {
                    assert_eq!(committed.len() as u64 + 1, i, "seed {seed}: commit gap");
                    let base = BatchHeader::parse(&batch).unwrap().base_offset();
                    let expected = committed
                        .last()
                        .map_or(0, |b| BatchHeader::parse(b).unwrap().last_offset() + 1);
                    assert_eq!(
                        base, expected,
                        "seed {seed}: {g} committed offsets not dense"
                    );
                    committed.push(batch);
                }
            }
        }
        let c = self.checked.get_mut(&(n as NodeId, g)).unwrap();
        *c = (*c).max(upto);
    }

    fn linked(&self, a: NodeId, b: NodeId) -> bool {
        self.side[a as usize] == self.side[b as usize]
    }

    fn send(&mut self, from: NodeId, envelopes: Vec<(NodeId, Bytes)>, lossy: bool) {
        for (to, bytes) in envelopes {
            let count = self.pair_sends.entry((from, to)).or_default();
            *count += 1;
            self.max_pair_sends = self.max_pair_sends.max(*count);
            let copies = if lossy && self.rng.chance(self.faults.loss) {
                0
            } else if lossy && self.rng.chance(self.faults.dup) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = 1 + self.rng.below(self.faults.max_delay);
                self.sent += 1;
                self.net
                    .push((self.now + delay, self.sent, from, to, bytes.clone()));
            }
        }
    }

    fn deliver(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        self.net.retain(|m| {
            let is_due = m.0 <= now;
            if is_due {
                due.push(m.clone());
            }
            !is_due
        });
        for k in (1..due.len()).rev() {
            due.swap(k, self.rng.below(k as u64 + 1) as usize);
        }
        for (_, _, from, to, bytes) in due {
            if !self.linked(from, to) {
                continue;
            }
            if let Some(m) = self.nodes[to as usize].multi.as_mut() {
                m.receive(from, &bytes).expect("our own envelopes decode");
            }
        }
    }

    fn propose(&mut self) {
        let g = GroupId(self.rng.below(self.placement.len() as u64));
        let voters = self.placement[&g].clone();
        let n = voters[self.rng.below(voters.len() as u64) as usize] as usize;
        let Some(m) = self.nodes[n].multi.as_mut() else {
            return;
        };
        self.next_value += 1;
        let value = format!("{}:{}", g.0, self.next_value);
        let records = 1 + (self.next_value % 3) as usize;
        let values: Vec<&[u8]> = (0..records).map(|_| value.as_bytes()).collect();
        let batch = Bytes::from(test_batches::batch(&values, self.now as i64));
        if let Ok(id) = m.propose(g, batch.clone()) {
            self.proposals.insert((n as NodeId, g, id), batch);
        }
    }

    /// One node's loop iteration: ready, sync, persisted (twice, so that commits that the
    /// sync enables are applied in the same tick), events checked, envelopes sent.
    fn run_node(&mut self, n: usize, lossy: bool) {
        let mut events = Vec::new();
        let m = self.nodes[n].multi.as_mut().unwrap();
        for _ in 0..2 {
            let failed = m.process();
            assert!(failed.is_empty(), "seed {}: {:?}", self.seed, failed);
            let dirty = m.take_dirty();
            for &g in &dirty {
                m.log_mut(g).unwrap().sync().expect("sim disk syncs");
            }
            m.persisted(&dirty);
            events.extend(m.take_events());
        }
        let envelopes = m.flush();
        self.check_events(n, events);
        self.check_leaders(n);
        self.send(n as NodeId, envelopes, lossy);
    }

    fn check_events(&mut self, n: usize, events: Vec<(GroupId, Event)>) {
        for (g, e) in &events {
            if let Event::HighWatermark { commit_index, .. } = e {
                self.check_prefix(n, *g, *commit_index);
            }
        }
        for (g, e) in events {
            match e {
                Event::Committed {
                    id,
                    base_offset,
                    last_offset,
                } => {
                    let sent = self.proposals.remove(&(n as NodeId, g, id)).expect("ours");
                    let entry = &self.committed[&g][id.index as usize - 1];
                    let h = BatchHeader::parse(entry).unwrap();
                    assert_eq!(
                        &entry[16..],
                        &sent[16..],
                        "seed {}: acked batch is not the entry",
                        self.seed
                    );
                    assert_eq!(
                        (h.base_offset(), h.last_offset()),
                        (base_offset, last_offset)
                    );
                    self.acked.push((g, id, base_offset, sent));
                    let end = self.acked_end.entry((g, id.term)).or_default();
                    *end = (*end).max(last_offset + 1);
                }
                Event::Lost { id } => {
                    self.proposals.remove(&(n as NodeId, g, id));
                }
                Event::Leader {
                    leader: Some(l),
                    term,
                } if l == n as NodeId => {
                    let held = *self.leaders.entry((g, term)).or_insert(l);
                    assert_eq!(
                        held, l,
                        "seed {}: two leaders of {g} in term {term}",
                        self.seed
                    );
                }
                _ => {}
            }
        }
    }

    fn check_leaders(&mut self, n: usize) {
        let m = self.nodes[n].multi.as_ref().unwrap();
        for r in m.groups().filter(|r| r.is_leader()) {
            // Acks of this term or earlier ones: by Raft's leader completeness this leader
            // holds them (a deposed leader that does not know it yet may lag later terms').
            let g = r.group();
            let acked = self.acked_end.range((g, 0)..=(g, r.term()));
            let acked_end = acked.map(|(_, &e)| e).max().unwrap_or(0);
            assert!(
                !r.is_serving() || r.high_watermark() >= acked_end,
                "seed {}: serving leader {n} of {} has HW {} below acknowledged offset {acked_end}",
                self.seed,
                r.group(),
                r.high_watermark()
            );
            let held = *self
                .leaders
                .entry((r.group(), r.term()))
                .or_insert(n as NodeId);
            assert_eq!(
                held,
                n as NodeId,
                "seed {}: two leaders of {} in term {}",
                self.seed,
                r.group(),
                r.term()
            );
        }
    }

    fn step(&mut self, lossy: bool) {
        self.now += 1;
        self.pair_sends.clear();
        for n in 0..self.nodes.len() {
            if self.nodes[n].multi.is_none() && self.now >= self.nodes[n].restart_at {
                self.start(n);
            }
        }
        self.deliver();
        for node in self.nodes.iter_mut() {
            if let Some(m) = node.multi.as_mut() {
                m.tick();
            }
        }
        if self.rng.chance(self.faults.propose) {
            self.propose();
        }
        for n in 0..self.nodes.len() {
            if self.nodes[n].multi.is_some() {
                self.run_node(n, lossy);
            }
        }
        assert!(
            self.max_pair_sends <= 1,
            "seed {}: more than one envelope per pair per tick",
            self.seed
        );
    }

    fn inject_faults(&mut self) {
        let n = self.nodes.len();
        if self.rng.chance(self.faults.crash) {
            let i = self.rng.below(n as u64) as usize;
            let down = 1 + self.rng.below(6 * ELECTION_TICK);
            self.crash(i, down);
        }
        if self.rng.chance(self.faults.partition) {
            if self.side.iter().any(|&s| s != 0) {
                self.side.fill(0);
            } else {
                for s in self.side.iter_mut() {
                    *s = self.rng.below(2) as u8;
                }
            }
        }
    }

    fn heal(&mut self) {
        self.side.fill(0);
        for node in self.nodes.iter_mut() {
            if node.multi.is_none() {
                node.restart_at = self.now;
            }
        }
    }

    /// The live node leading `g`, if exactly one does.
    fn leader_of(&self, g: GroupId) -> Option<usize> {
        let mut it = (0..self.nodes.len()).filter(|&n| {
            let m = self.nodes[n].multi.as_ref();
            m.and_then(|m| m.group(g)).is_some_and(|r| r.is_leader())
        });
        let first = it.next();
        first.filter(|_| it.next().is_none())
    }

    /// True when every group has one serving leader and every live replica applied its log.
    fn converged(&self) -> bool {
        self.proposals.is_empty()
            && self.placement.iter().all(|(&g, voters)| {
                let Some(l) = self.leader_of(g) else {
                    return false;
                };
                let lr = self.nodes[l].multi.as_ref().unwrap().group(g).unwrap();
                let last = lr.log().last_index();
                lr.is_serving()
                    && voters.iter().all(|&v| {
                        let m = self.nodes[v as usize].multi.as_ref();
                        m.is_none_or(|m| m.group(g).unwrap().applied_index() == last)
                    })
            })
    }

    fn settle(&mut self, max_ticks: u64) -> bool {
        for _ in 0..max_ticks {
            self.step(false);
            if self.converged() {
                return true;
            }
        }
        false
    }

    fn summary(&self) -> String {
        let committed: usize = self.committed.values().map(|c| c.len()).sum();
        let mut stats = Vec::new();
        for node in self.nodes.iter().filter_map(|n| n.multi.as_ref()) {
            let s = node.stats();
            stats.push(format!(
                "env {} ka {} msgs {} beats {} gticks {} hib {} wake {} refused {}",
                s.envelopes_sent,
                s.keepalives_sent,
                s.messages_sent,
                s.beats_sent,
                s.group_ticks,
                s.hibernations,
                s.wakeups,
                s.refused_in
            ));
        }
        format!(
            "ticks {} committed {committed} acked {} terms-with-leader {} crashes {} | {}",
            self.now,
            self.acked.len(),
            self.leaders.len(),
            self.crashes,
            stats.join(" | ")
        )
    }

    fn states(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (n, node) in self.nodes.iter().enumerate() {
            match &node.multi {
                None => out.push(format!("node {n} down")),
                Some(m) => out.extend(m.groups().map(|r| format!("node {n}: {}", r.debug_state()))),
            }
        }
        out
    }

    /// Every live replica holds exactly the committed entries, and every acked batch.
    fn check_all_hold_everything(&mut self) {
        let seed = self.seed;
        for n in 0..self.nodes.len() {
            let Some(m) = self.nodes[n].multi.as_ref() else {
                continue;
            };
            for r in m.groups() {
                let c = &self.committed[&r.group()];
                assert_eq!(
                    r.applied_index(),
                    c.len() as u64,
                    "seed {seed}: node {n} {}",
                    r.debug_state()
                );
                for (i, b) in c.iter().enumerate() {
                    assert_eq!(
                        &r.log().batch(i as u64 + 1).unwrap(),
                        b,
                        "seed {seed}: node {n}"
                    );
                }
            }
        }
        for (g, id, base, sent) in &self.acked {
            let entry = &self.committed[g][id.index as usize - 1];
            assert_eq!(&entry[16..], &sent[16..], "seed {seed}: acked batch lost");
            assert_eq!(BatchHeader::parse(entry).unwrap().base_offset(), *base);
        }
    }

    /// Propose into every group until each acknowledged one more batch (healed network).
    fn propose_everywhere(&mut self, max_ticks: u64) {
        let before = self.acked.len();
        let want = before + self.placement.len();
        for _ in 0..max_ticks {
            if self.acked.len() >= want && self.proposals.is_empty() {
                return;
            }
            if self.proposals.is_empty() {
                for g in self.placement.keys().copied().collect::<Vec<_>>() {
                    if let Some(l) = self.leader_of(g) {
                        self.next_value += 1;
                        let v = format!("final:{}", self.next_value);
                        let batch = Bytes::from(test_batches::batch(&[v.as_bytes()], 1));
                        let m = self.nodes[l].multi.as_mut().unwrap();
                        if let Ok(id) = m.propose(g, batch.clone()) {
                            self.proposals.insert((l as NodeId, g, id), batch);
                        }
                    }
                }
            }
            self.step(false);
        }
        panic!(
            "seed {}: a healed cluster did not commit in every group: {:#?}",
            self.seed,
            self.states()
        );
    }
}

/// Ticks within which every group of a dead leader must have a new one: the survivors notice
/// the silence (`silence_ticks`), then elections run; a round takes at most the longest
/// randomized timeout plus a pre-vote and a vote round trip, and a few rounds may split.
fn election_bound_ticks(max_delay: u64) -> u64 {
    ELECTION_TICK + 6 * (2 * ELECTION_TICK + 4 * max_delay)
}

/// Kill the node leading the most groups; each of those groups elects a new leader in bound.
/// Returns the ticks the slowest took.
fn leader_death(sim: &mut Sim) -> u64 {
    let mut led: BTreeMap<usize, Vec<GroupId>> = BTreeMap::new();
    for &g in sim.placement.keys() {
        if let Some(l) = sim.leader_of(g) {
            led.entry(l).or_default().push(g);
        }
    }
    let (&victim, groups) = led
        .iter()
        .max_by_key(|(_, gs)| gs.len())
        .expect("leaders exist");
    let groups = groups.clone();
    sim.crash(victim, u64::MAX / 2);
    let bound = election_bound_ticks(sim.faults.max_delay);
    for t in 1..=bound {
        sim.step(false);
        let all = groups
            .iter()
            .all(|&g| sim.leader_of(g).is_some_and(|l| l != victim));
        if all {
            return t;
        }
    }
    panic!(
        "seed {}: no new leader within {bound} ticks of killing node {victim}: {:#?}",
        sim.seed,
        sim.states()
    );
}

/// One seeded run. Returns the ticks the elections after the leader's death took.
fn run(seed: u64, nodes: usize, groups: u64) -> u64 {
    let mut sim = Sim::new(seed, nodes, groups, 3.min(nodes), FAULTS);
    for _ in 0..sim.faults.fault_ticks {
        sim.inject_faults();
        sim.step(true);
    }
    sim.heal();
    assert!(
        sim.settle(3000),
        "seed {seed}: no convergence after healing: {:#?}",
        sim.states()
    );
    sim.propose_everywhere(3000);
    assert!(
        sim.settle(3000),
        "seed {seed}: no convergence: {:#?}",
        sim.states()
    );
    sim.check_all_hold_everything();
    assert!(
        sim.acked.len() > sim.placement.len(),
        "seed {seed}: too little acknowledged"
    );
    let took = leader_death(&mut sim);
    sim.propose_everywhere(3000);
    assert!(
        sim.settle(3000),
        "seed {seed}: no convergence after the death: {:#?}",
        sim.states()
    );
    sim.check_all_hold_everything();
    if std::env::var_os("RINGMQ_REPL_VERBOSE").is_some() {
        eprintln!("seed {seed}: {}", sim.summary());
    }
    took
}

#[test]
fn replication_sim_few_seeds() {
    for seed in 0..16 {
        run(seed, 3, 8);
    }
    for seed in 100..108 {
        run(seed, 5, 10);
    }
}

#[test]
fn replication_sim_is_replayable() {
    let trace = |seed| {
        let mut sim = Sim::new(seed, 3, 4, 3, FAULTS);
        for _ in 0..300 {
            sim.inject_faults();
            sim.step(true);
        }
        (sim.committed.clone(), sim.leaders.clone(), sim.acked.len())
    };
    assert_eq!(trace(11), trace(11));
}

#[test]
#[ignore = "long run: RINGMQ_REPL_SEEDS=N"]
fn replication_sim_many_seeds() {
    let n: u64 = std::env::var("RINGMQ_REPL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let first: u64 = std::env::var("RINGMQ_REPL_SEED_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let start = std::time::Instant::now();
    let mut ticks: Vec<u64> = (first..first + n)
        .map(|seed| {
            if seed % 4 == 3 {
                run(seed, 5, 10)
            } else {
                run(seed, 3, 8)
            }
        })
        .collect();
    let secs = start.elapsed().as_secs_f64();
    ticks.sort_unstable();
    let at = |q: f64| ticks[((ticks.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{n} seeds passed in {secs:.1} s ({:.2} seeds/s); new leaders after a leader's death: median {} p99 {} max {} ticks (bound {})",
        n as f64 / secs,
        at(0.5),
        at(0.99),
        at(1.0),
        election_bound_ticks(FAULTS.max_delay)
    );
}

/// Per directed node pair and tick, over `ticks` ticks: envelopes, bytes, raft messages and
/// beats, plus group ticks per node per tick and wall time per tick (all three nodes).
#[derive(Debug)]
struct Load {
    envelopes: f64,
    bytes: f64,
    messages: f64,
    beats: f64,
    group_ticks: f64,
    micros_per_tick: f64,
}

impl Sim {
    fn totals(&self) -> super::MultiStats {
        let mut t = super::MultiStats::default();
        for m in self.nodes.iter().filter_map(|n| n.multi.as_ref()) {
            let s = m.stats();
            t.envelopes_sent += s.envelopes_sent;
            t.bytes_sent += s.bytes_sent;
            t.messages_sent += s.messages_sent;
            t.beats_sent += s.beats_sent;
            t.group_ticks += s.group_ticks;
        }
        t
    }

    fn measure_load(&mut self, ticks: u64, busy: bool) -> Load {
        let before = self.totals();
        let start = std::time::Instant::now();
        let batch = Bytes::from(test_batches::batch(&[&b"0123456789abcdef"[..]], 1));
        for _ in 0..ticks {
            if busy {
                for g in self.placement.keys().copied().collect::<Vec<_>>() {
                    let Some(l) = self.leader_of(g) else { continue };
                    let m = self.nodes[l].multi.as_mut().unwrap();
                    let id = m.propose(g, batch.clone()).expect("the leader accepts");
                    self.proposals.insert((l as NodeId, g, id), batch.clone());
                }
            }
            self.step(false);
        }
        let micros = start.elapsed().as_secs_f64() * 1e6;
        let after = self.totals();
        let n = self.nodes.len() as f64;
        let per_pair = (n * (n - 1.0)) * ticks as f64;
        Load {
            envelopes: (after.envelopes_sent - before.envelopes_sent) as f64 / per_pair,
            bytes: (after.bytes_sent - before.bytes_sent) as f64 / per_pair,
            messages: (after.messages_sent - before.messages_sent) as f64 / per_pair,
            beats: (after.beats_sent - before.beats_sent) as f64 / per_pair,
            group_ticks: (after.group_ticks - before.group_ticks) as f64 / (n * ticks as f64),
            micros_per_tick: micros / ticks as f64,
        }
    }

    fn all_hibernating(&self) -> bool {
        self.nodes
            .iter()
            .filter_map(|n| n.multi.as_ref())
            .all(|m| m.groups().all(|r| r.is_hibernating()))
    }
}

/// `groups` groups on 3 nodes without faults: elect, let them hibernate, measure idle, then
/// propose one batch to every group every tick and measure busy.
fn idle_vs_busy(groups: u64, ticks: u64) -> (Load, Load) {
    let quiet = Faults {
        propose: 0,
        fault_ticks: 0,
        ..FAULTS
    };
    let mut sim = Sim::new(5, 3, groups, 3, quiet);
    assert!(
        sim.settle(5000),
        "{groups} groups did not elect: {:#?}",
        &sim.states()[..6]
    );
    for _ in 0..200 {
        if sim.all_hibernating() {
            break;
        }
        sim.step(false);
    }
    assert!(sim.all_hibernating(), "idle groups did not hibernate");
    let idle = sim.measure_load(ticks, false);
    let busy = sim.measure_load(ticks, true);
    assert!(sim.settle(2000), "busy groups did not settle");
    assert!(sim.proposals.is_empty(), "every busy proposal was answered");
    sim.check_all_hold_everything();
    assert!(
        sim.acked.len() as u64 >= groups * ticks,
        "every busy proposal committed"
    );
    for load in [&idle, &busy] {
        assert!(
            load.envelopes <= 1.0,
            "more than one envelope per pair per tick: {load:?}"
        );
    }
    assert_eq!(idle.group_ticks, 0.0, "hibernating groups are not ticked");
    assert!(idle.bytes < 16.0, "idle: only keep-alives travel: {idle:?}");
    assert!(
        busy.messages >= groups as f64 / 3.0,
        "busy: appends travel: {busy:?}"
    );
    (idle, busy)
}

#[test]
fn idle_groups_hibernate_and_busy_ones_share_one_envelope_per_pair() {
    idle_vs_busy(150, 20);
}

#[test]
#[ignore = "measurement: 1,000 groups x 3 replicas on 3 nodes"]
fn envelopes_per_pair_1000_groups_idle_vs_busy() {
    let (idle, busy) = idle_vs_busy(1000, 100);
    eprintln!("1000 groups x 3 replicas, 3 nodes, per directed node pair per tick:");
    for (name, l) in [("idle", idle), ("busy", busy)] {
        eprintln!(
            "  {name}: envelopes {:.2} bytes {:.1} raft messages {:.1} beats {:.1}; group ticks per node per tick {:.1}; wall time per tick (3 nodes) {:.0} us",
            l.envelopes, l.bytes, l.messages, l.beats, l.group_ticks, l.micros_per_tick
        );
    }
}
