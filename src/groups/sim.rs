//! Randomized simulation of clients against the coordinator, from a seed.
//!
//! Invariants checked after every step:
//! * every ticket is answered exactly once (never twice, never for an unknown ticket), and
//!   once time runs far ahead every ticket has been answered;
//! * Stable groups have no waiting join or sync; CompletingRebalance no waiting join;
//!   PreparingRebalance no waiting sync; Empty groups have no members;
//! * a Stable or CompletingRebalance group has a protocol every member supports;
//! * the leader is a member whenever there are members, and none otherwise;
//! * every static instance maps to a member that carries that instance id;
//! * nothing panics, whatever the order of requests and the clock.
//!
//! A failure prints the seed; rerun with it to replay.

#![cfg(test)]

use super::group::GroupState;
use super::testkit::*;
use super::{Coordinator, Outcome, Reply, Ticket};
use crate::protocol::api::testkit::XorShift;
use crate::protocol::join_group::JoinGroupProtocol;
use crate::protocol::leave_group::{LeaveGroupRequest, MemberIdentity};
use crate::protocol::ErrorCode;
use std::collections::HashMap;

#[derive(Default, Clone)]
struct Client {
    member_id: String,
    generation: i32,
    leader: bool,
    members: Vec<String>,
    instance: Option<String>,
    /// The member id before a restart, to play the stale instance.
    previous_member_id: String,
}

struct Sim {
    c: Coordinator,
    rng: XorShift,
    now_ms: i64,
    clients: Vec<Client>,
    /// ticket → client index, for every unanswered ticket.
    waiting: HashMap<Ticket, usize>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let clients = (0..5)
            .map(|i| Client {
                instance: (i < 2).then(|| format!("host-{i}")),
                ..Client::default()
            })
            .collect();
        Sim {
            c: Coordinator::new(config()),
            rng: XorShift(seed | 1),
            now_ms: 1_000_000,
            clients,
            waiting: HashMap::new(),
        }
    }

    fn busy(&self, i: usize) -> bool {
        self.waiting.values().any(|&w| w == i)
    }

    fn step(&mut self) {
        let i = (self.rng.next() % 5) as usize;
        let action = self.rng.next() % 10;
        if action < 2 {
            self.now_ms += (self.rng.next() % 6_000) as i64;
            let done = self.c.tick(self.now_ms);
            self.absorb(done);
        } else if !self.busy(i) || self.rng.next().is_multiple_of(8) {
            // Mostly one request at a time per client, sometimes a retry over a new
            // connection while the first still waits.
            self.request(i, action);
        }
        let done = self.c.take_completions();
        self.absorb(done);
        check_invariants(&self.c);
    }

    fn request(&mut self, i: usize, action: u64) {
        let cl = self.clients[i].clone();
        let t = self.now_ms;
        match action {
            2..=4 => {
                let version = [3, 4, 9][(self.rng.next() % 3) as usize];
                let mut req = join_req(&cl.member_id, cl.instance.as_deref());
                // Mostly the usual assignor; sometimes a change of preference, sometimes
                // one no other member supports.
                let names: &[&str] = match self.rng.next() % 8 {
                    0 => &["roundrobin", "range"],
                    1 => &["sticky"],
                    _ => &["range"],
                };
                req.protocols = names
                    .iter()
                    .map(|n| JoinGroupProtocol {
                        name: (*n).into(),
                        metadata: subscription(&["orders"]),
                    })
                    .collect();
                let outcome = self.c.join(t, version, &client(&format!("c{i}")), &req);
                self.outcome(i, outcome.map_reply(Reply::Join));
            }
            5 | 6 => {
                let assignments: Vec<(&str, &str)> = if cl.leader {
                    cl.members.iter().map(|m| (m.as_str(), "x")).collect()
                } else {
                    Vec::new()
                };
                let outcome = self
                    .c
                    .sync(t, &sync_req(&cl.member_id, cl.generation, &assignments));
                self.outcome(i, outcome.map_reply(Reply::Sync));
            }
            7 => {
                self.c.heartbeat(
                    t,
                    &heartbeat_req(&cl.member_id, cl.generation, cl.instance.as_deref()),
                );
            }
            8 if cl.instance.is_some() && self.rng.next().is_multiple_of(2) => {
                // A static member restarts (loses its member id without leaving), or its
                // stale former self speaks up.
                if self.rng.next().is_multiple_of(2) {
                    self.clients[i].previous_member_id =
                        std::mem::take(&mut self.clients[i].member_id);
                } else {
                    let stale = heartbeat_req(
                        &cl.previous_member_id,
                        cl.generation,
                        cl.instance.as_deref(),
                    );
                    let code = ErrorCode(self.c.heartbeat(t, &stale).error_code);
                    let instance = cl.instance.clone().unwrap_or_default();
                    let current = self
                        .c
                        .groups
                        .get(GROUP)
                        .and_then(|g| g.static_members.get(&instance).cloned());
                    if current.is_some_and(|id| id != cl.previous_member_id) {
                        assert_eq!(code, ErrorCode::FENCED_INSTANCE_ID);
                    }
                }
            }
            8 => {
                let members = vec![MemberIdentity {
                    member_id: cl.member_id.clone(),
                    group_instance_id: cl.instance.clone(),
                    reason: None,
                }];
                let req = LeaveGroupRequest {
                    group_id: GROUP.into(),
                    member_id: cl.member_id.clone(),
                    members,
                };
                let _ = self.c.leave(t, 5, &req);
                self.clients[i].member_id.clear();
            }
            _ => {
                let _ = self
                    .c
                    .commit_offsets(t, &commit_req(&cl.member_id, cl.generation, i as i32, t));
            }
        }
    }

    fn outcome(&mut self, i: usize, outcome: Outcome<Reply>) {
        match outcome {
            Outcome::Respond(reply) => self.learn(i, reply),
            Outcome::Pending(ticket) => {
                assert!(
                    self.waiting.insert(ticket, i).is_none(),
                    "ticket {ticket:?} issued twice"
                );
            }
        }
    }

    fn absorb(&mut self, done: Vec<(Ticket, Reply)>) {
        for (ticket, reply) in done {
            let i = self
                .waiting
                .remove(&ticket)
                .unwrap_or_else(|| panic!("{ticket:?} answered twice or unknown"));
            self.learn(i, reply);
        }
    }

    fn learn(&mut self, i: usize, reply: Reply) {
        let cl = &mut self.clients[i];
        match reply {
            Reply::Join(j) => match ErrorCode(j.error_code) {
                ErrorCode::NONE => {
                    cl.member_id = j.member_id.clone();
                    cl.generation = j.generation_id;
                    cl.leader = j.leader == j.member_id;
                    cl.members = j.members.iter().map(|m| m.member_id.clone()).collect();
                }
                ErrorCode::MEMBER_ID_REQUIRED => cl.member_id = j.member_id,
                ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::FENCED_INSTANCE_ID => {
                    cl.member_id.clear()
                }
                _ => {}
            },
            Reply::Sync(s) => {
                if ErrorCode(s.error_code) == ErrorCode::UNKNOWN_MEMBER_ID {
                    cl.member_id.clear();
                }
            }
        }
    }
}

impl<R> Outcome<R> {
    fn map_reply(self, f: impl FnOnce(R) -> Reply) -> Outcome<Reply> {
        match self {
            Outcome::Respond(r) => Outcome::Respond(f(r)),
            Outcome::Pending(t) => Outcome::Pending(t),
        }
    }
}

fn check_invariants(c: &Coordinator) {
    for g in c.groups.values() {
        let joins = g
            .members
            .values()
            .filter(|m| m.join_ticket.is_some())
            .count();
        let syncs = g
            .members
            .values()
            .filter(|m| m.sync_ticket.is_some())
            .count();
        match g.state {
            GroupState::Stable => assert_eq!((joins, syncs), (0, 0), "{g:?}"),
            GroupState::CompletingRebalance => assert_eq!(joins, 0, "{g:?}"),
            GroupState::PreparingRebalance => assert_eq!(syncs, 0, "{g:?}"),
            GroupState::Empty => assert!(g.members.is_empty(), "{g:?}"),
            GroupState::Dead => {}
        }
        if matches!(
            g.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            let protocol = g
                .protocol_name
                .as_deref()
                .unwrap_or_else(|| panic!("no protocol: {g:?}"));
            assert!(
                g.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == protocol)),
                "{g:?}"
            );
        }
        match &g.leader_id {
            Some(leader) => assert!(g.members.contains_key(leader), "{g:?}"),
            None => assert!(g.members.is_empty(), "{g:?}"),
        }
        for (instance, member_id) in &g.static_members {
            let member = g
                .members
                .get(member_id)
                .unwrap_or_else(|| panic!("{instance} -> {member_id}: {g:?}"));
            assert_eq!(member.group_instance_id.as_deref(), Some(instance.as_str()));
        }
    }
}

#[test]
fn random_clients_keep_every_invariant() {
    for seed in 1..=40u64 {
        let mut sim = Sim::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for _ in 0..400 {
            sim.step();
        }
        // Let every deadline pass; each waiting request must get its answer.
        for _ in 0..4 {
            sim.now_ms += 3_600_000;
            let done = sim.c.tick(sim.now_ms);
            sim.absorb(done);
            check_invariants(&sim.c);
        }
        assert!(
            sim.waiting.is_empty(),
            "seed {seed}: unanswered {:?}",
            sim.waiting
        );
    }
}

#[test]
fn a_full_cycle_happens_under_random_load() {
    // Not only invariants: the simulation must actually reach Stable sometimes.
    let mut reached_stable = false;
    for seed in 1..=20u64 {
        let mut sim = Sim::new(seed);
        for _ in 0..400 {
            sim.step();
            reached_stable |= sim.c.group_state(GROUP) == Some(GroupState::Stable);
        }
    }
    assert!(reached_stable);
}
