//! The fault schedule of the fault test (Jepsen's "nemesis"), drawn from a seed, applied
//! through the namespace harness (`tests/common/netns.rs`). One fault at a time: it begins,
//! holds, ends (the node restarted, resumed or its links healed), then the cluster has a
//! quiet spell before the next. The first faults of a schedule are every kind once, in a
//! seeded order, so even a short schedule has each.
//!
//! A fault aimed at one node picks, half of the time, the leader of a random partition (as
//! Metadata names it at that moment, so that choice depends on the cluster, not only on the
//! seed), else a node drawn from the seed.

use crate::common::netns::NetCluster;
use crate::common::Rng;

/// Drop probabilities of a lossy link, and rates of a slow one (tc syntax).
const LOSS: [f64; 3] = [0.05, 0.2, 0.5];
const RATES: [&str; 3] = ["256kbit", "1mbit", "8mbit"];

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// SIGKILL; started again (same data dir) when the fault ends.
    Kill(usize),
    /// SIGSTOP; SIGCONT when it ends.
    Pause(usize),
    /// Cut off from every other node (clients still reach it).
    Isolate(usize),
    /// Majority/minority split: these nodes on one side, the others on the other.
    Split(Vec<usize>),
    /// Every packet the node receives dropped with this probability.
    Lossy(usize, f64),
    /// What the node sends limited to this rate.
    Slow(usize, &'static str),
    /// Every node SIGKILLed at once, and all started again at once.
    RestartAll,
}

impl Fault {
    /// The kind, for the summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill",
            Fault::Pause(_) => "pause",
            Fault::Isolate(_) => "isolate",
            Fault::Split(_) => "split",
            Fault::Lossy(..) => "lossy",
            Fault::Slow(..) => "slow",
            Fault::RestartAll => "restart-all",
        }
    }
}

const KINDS: usize = 7;

pub struct Nemesis {
    rng: Rng,
    nodes: usize,
    partitions: i32,
    /// Kinds still to be drawn before the schedule turns fully random.
    first: Vec<usize>,
}

impl Nemesis {
    pub fn new(seed: u64, nodes: usize, partitions: i32) -> Nemesis {
        assert!(nodes >= 3, "a split needs a majority and a minority");
        let mut rng = Rng::new(seed);
        let mut first: Vec<usize> = (0..KINDS).collect();
        for i in (1..first.len()).rev() {
            let j = rng.range(0, i as u64 + 1) as usize;
            first.swap(i, j);
        }
        Nemesis {
            rng,
            nodes,
            partitions,
            first,
        }
    }

    /// Milliseconds in `lo..hi`, from the seed.
    pub fn millis(&mut self, (lo, hi): (u64, u64)) -> u64 {
        self.rng.range(lo, hi)
    }

    /// The next fault; `leader_of(p)` is the node Metadata names leader of partition `p`.
    pub fn next_fault(&mut self, leader_of: &dyn Fn(i32) -> Option<usize>) -> Fault {
        let kind = match self.first.pop() {
            Some(k) => k,
            None => self.rng.range(0, KINDS as u64) as usize,
        };
        let node = self.target(leader_of);
        match kind {
            0 => Fault::Kill(node),
            1 => Fault::Pause(node),
            2 => Fault::Isolate(node),
            3 => Fault::Split(self.minority(node)),
            4 => Fault::Lossy(node, LOSS[self.rng.range(0, 3) as usize]),
            5 => Fault::Slow(node, RATES[self.rng.range(0, 3) as usize]),
            _ => Fault::RestartAll,
        }
    }

    fn target(&mut self, leader_of: &dyn Fn(i32) -> Option<usize>) -> usize {
        let partition = self.rng.range(0, self.partitions as u64) as i32;
        let drawn = 1 + self.rng.range(0, self.nodes as u64) as usize;
        let by_leader = self.rng.range(0, 2) == 0;
        let leader = by_leader.then(|| leader_of(partition)).flatten();
        leader
            .filter(|&n| (1..=self.nodes).contains(&n))
            .unwrap_or(drawn)
    }

    /// Fewer than half of the nodes, `node` among them.
    fn minority(&mut self, node: usize) -> Vec<usize> {
        let size = 1 + self.rng.range(0, ((self.nodes - 1) / 2) as u64) as usize;
        let mut side = vec![node];
        while side.len() < size {
            let j = 1 + self.rng.range(0, self.nodes as u64) as usize;
            if !side.contains(&j) {
                side.push(j);
            }
        }
        side
    }
}

/// Starts `f` on the cluster.
pub fn begin(c: &mut NetCluster, f: &Fault) {
    match f {
        Fault::Kill(i) => c.kill(*i),
        Fault::Pause(i) => c.pause(*i),
        Fault::Isolate(i) => c.cut_off(*i),
        Fault::Split(side) => {
            let rest = (1..=c.nodes.len()).filter(|j| !side.contains(j)).collect();
            c.partition(&[side.clone(), rest]);
        }
        Fault::Lossy(i, p) => c.lossy(*i, *p),
        Fault::Slow(i, rate) => c.slow(*i, rate),
        Fault::RestartAll => {
            for i in 1..=c.nodes.len() {
                c.kill(i);
            }
        }
    }
}

/// Ends `f`: the cluster is whole again (every node running, no link fault).
pub fn end(c: &mut NetCluster, f: &Fault, seeds: usize) {
    match f {
        Fault::Kill(i) => c.start(*i, seeds),
        Fault::Pause(i) => c.resume(*i),
        Fault::Isolate(_) | Fault::Split(_) | Fault::Lossy(..) | Fault::Slow(..) => c.heal_all(),
        Fault::RestartAll => {
            let all: Vec<usize> = (1..=c.nodes.len()).collect();
            c.start_many(&all, seeds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_starts_with_every_kind_and_replays_from_its_seed() {
        let draw = |seed| {
            let mut n = Nemesis::new(seed, 5, 6);
            (0..40).map(|_| n.next_fault(&|_| None)).collect::<Vec<_>>()
        };
        let a = draw(42);
        assert_eq!(a, draw(42));
        assert_ne!(
            a,
            draw(44),
            "seeds differ beyond the lowest bit (Rng::new sets it)"
        );
        let mut kinds: Vec<&str> = a[..KINDS].iter().map(Fault::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), KINDS, "{a:?}");
        for f in &a {
            if let Fault::Split(side) = f {
                assert!((1..=2).contains(&side.len()), "minority of 5: {side:?}");
            }
        }
    }

    #[test]
    fn a_leader_target_is_used_when_named() {
        let mut n = Nemesis::new(7, 3, 6);
        let faults: Vec<Fault> = (0..60).map(|_| n.next_fault(&|_| Some(2))).collect();
        let aimed_at = |f: &Fault| match f {
            Fault::Kill(i) | Fault::Pause(i) | Fault::Isolate(i) => Some(*i),
            _ => None,
        };
        let at_two = faults.iter().filter(|f| aimed_at(f) == Some(2)).count();
        let aimed = faults.iter().filter(|f| aimed_at(f).is_some()).count();
        // Half aimed at the leader, a third of the rest drawn as node 2 too.
        assert!(
            at_two * 3 > aimed * 3 / 2,
            "{at_two} of {aimed}: {faults:?}"
        );
    }
}
