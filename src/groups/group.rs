//! One classic group: its members, its generation, and the transitions between states.
//!
//! ```text
//!            first join                 all rejoined / timeout            leader's sync
//!   Empty ─────────────▶ PreparingRebalance ─────────────▶ CompletingRebalance ─────────▶ Stable
//!     ▲                    ▲   │ no member left                  │ member lost / new join   │
//!     └────────────────────┼───┘                                 ▼                          │
//!                          └──────────────────────── (rebalance) ◀──────────────────────────┘
//! ```
//!
//! Side effects (answers to waiting tickets, records to persist) go to [`Effects`], which the
//! coordinator drains; the group itself never sees a clock, only `now_ms` arguments.

use super::group_log::{GroupMetadataValue, GroupRecord, MemberMetadataValue, OffsetCommitValue};
use super::{GroupConfig, Reply, Ticket};
use crate::protocol::join_group::{JoinGroupMember, JoinGroupResponse};
use crate::protocol::sync_group::SyncGroupResponse;
use crate::protocol::ErrorCode;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

/// The classic group states, named as Kafka names them on the wire (ListGroups,
/// DescribeGroups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Answers and records produced by transitions, drained by the coordinator's caller.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub completions: Vec<(Ticket, Reply)>,
    pub records: Vec<GroupRecord>,
    next_ticket: u64,
}

impl Effects {
    pub fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }
    fn complete_join(&mut self, ticket: Ticket, response: JoinGroupResponse) {
        self.completions.push((ticket, Reply::Join(response)));
    }
    fn complete_sync(
        &mut self,
        ticket: Ticket,
        error: ErrorCode,
        assignment: Bytes,
        group: &Group,
    ) {
        let ok = !error.is_error();
        let response = SyncGroupResponse {
            throttle_time_ms: 0,
            error_code: error.0,
            protocol_type: if ok {
                group.protocol_type.clone()
            } else {
                None
            },
            protocol_name: if ok {
                group.protocol_name.clone()
            } else {
                None
            },
            assignment,
        };
        self.completions.push((ticket, Reply::Sync(response)));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Set while its JoinGroup waits for the rebalance to complete.
    pub join_ticket: Option<Ticket>,
    /// Set while its SyncGroup waits for the leader's assignment.
    pub sync_ticket: Option<Ticket>,
    /// Last heartbeat (or join/sync/commit) time; the session expires
    /// `session_timeout_ms` after it.
    pub last_heartbeat_ms: i64,
    /// Order of arrival, to elect the longest-standing member leader.
    pub joined_seq: u64,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }
    pub fn session_deadline_ms(&self) -> i64 {
        self.last_heartbeat_ms
            .saturating_add(i64::from(self.session_timeout_ms))
    }
    /// Members waiting in a join or sync do not expire (the rebalance deadlines bound them).
    pub fn can_expire(&self) -> bool {
        self.join_ticket.is_none() && self.sync_ticket.is_none()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id → current member id (static members, KIP-345).
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) → when they lapse.
    pub pending_members: BTreeMap<String, i64>,
    /// PreparingRebalance: when the join phase ends whoever has rejoined.
    pub join_deadline_ms: Option<i64>,
    /// The first rebalance of an empty group waits `initial_rebalance_delay_ms` per new
    /// member, but never past this.
    pub initial_join_cap_ms: Option<i64>,
    /// CompletingRebalance: when members that have not synced are dropped.
    pub sync_deadline_ms: Option<i64>,
    pub state_timestamp_ms: i64,
    pub offsets: BTreeMap<(String, i32), OffsetCommitValue>,
    next_join_seq: u64,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        Group {
            group_id: group_id.to_owned(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: BTreeMap::new(),
            join_deadline_ms: None,
            initial_join_cap_ms: None,
            sync_deadline_ms: None,
            state_timestamp_ms: now_ms,
            offsets: BTreeMap::new(),
            next_join_seq: 0,
        }
    }

    fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// Whether a request naming `member_id` and `instance_id` comes from a member replaced
    /// by a newer instance of the same static member.
    pub fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|id| self.static_members.get(id))
            .is_some_and(|current| current != member_id)
    }

    /// Whether `protocol_type` and `protocols` fit the group: anything fits an empty group,
    /// otherwise the type must match and one protocol must be supported by every member.
    /// `except` is the joining member itself, whose old protocols do not count.
    pub fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: &str,
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.member_id != except)
            .collect();
        if others.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| others.iter().all(|m| m.supports(name)))
    }

    pub fn add_member(&mut self, mut member: Member) {
        self.next_join_seq += 1;
        member.joined_seq = self.next_join_seq;
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Remove a member; its waiting join/sync (if any) is answered UNKNOWN_MEMBER_ID.
    pub fn remove_member(&mut self, member_id: &str, fx: &mut Effects) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(ticket) = member.join_ticket {
            fx.complete_join(ticket, join_error(ErrorCode::UNKNOWN_MEMBER_ID, member_id));
        }
        if let Some(ticket) = member.sync_ticket {
            fx.complete_sync(ticket, ErrorCode::UNKNOWN_MEMBER_ID, Bytes::new(), self);
        }
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self
                .members
                .values()
                .min_by_key(|m| m.joined_seq)
                .map(|m| m.member_id.clone());
        }
        Some(member)
    }

    /// Give a static member's entry a new member id (a restarted instance). Waiting requests
    /// of the old id are answered FENCED_INSTANCE_ID.
    pub fn replace_member_id(
        &mut self,
        old_id: &str,
        new_id: &str,
        fx: &mut Effects,
    ) -> Option<&mut Member> {
        let mut member = self.members.remove(old_id)?;
        if let Some(ticket) = member.join_ticket.take() {
            fx.complete_join(ticket, join_error(ErrorCode::FENCED_INSTANCE_ID, old_id));
        }
        if let Some(ticket) = member.sync_ticket.take() {
            fx.complete_sync(ticket, ErrorCode::FENCED_INSTANCE_ID, Bytes::new(), self);
        }
        member.member_id = new_id.to_owned();
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), new_id.to_owned());
        }
        if self.is_leader(old_id) {
            self.leader_id = Some(new_id.to_owned());
        }
        self.members.insert(new_id.to_owned(), member);
        self.members.get_mut(new_id)
    }

    /// Enter PreparingRebalance: waiting syncs are told REBALANCE_IN_PROGRESS and the join
    /// phase gets its deadline (the initial delay for a group that was empty).
    pub fn prepare_rebalance(&mut self, now_ms: i64, cfg: &GroupConfig, fx: &mut Effects) {
        if self.state == GroupState::CompletingRebalance {
            let waiting: Vec<Ticket> = self
                .members
                .values_mut()
                .filter_map(|m| m.sync_ticket.take())
                .collect();
            for ticket in waiting {
                fx.complete_sync(ticket, ErrorCode::REBALANCE_IN_PROGRESS, Bytes::new(), self);
            }
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
            }
        }
        let rebalance_timeout_ms = self.max_rebalance_timeout_ms();
        if self.state == GroupState::Empty {
            let delay_ms = i64::from(cfg.initial_rebalance_delay_ms.max(0));
            let cap_ms = now_ms + rebalance_timeout_ms;
            self.initial_join_cap_ms = Some(cap_ms);
            self.join_deadline_ms = Some((now_ms + delay_ms).min(cap_ms));
        } else {
            self.initial_join_cap_ms = None;
            self.join_deadline_ms = Some(now_ms + rebalance_timeout_ms);
        }
        self.sync_deadline_ms = None;
        self.set_state(GroupState::PreparingRebalance, now_ms);
    }

    /// A new member arrived during the initial delay: wait one more delay (up to the cap).
    pub fn extend_initial_delay(&mut self, now_ms: i64, cfg: &GroupConfig) {
        if let Some(cap_ms) = self.initial_join_cap_ms {
            let delay_ms = i64::from(cfg.initial_rebalance_delay_ms.max(0));
            self.join_deadline_ms = Some((now_ms + delay_ms).min(cap_ms));
        }
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_ticket.is_some())
    }

    /// Complete the join phase if it can end now: everyone (no pending KIP-394 member
    /// included) has rejoined, or the deadline passed. During the initial delay only the
    /// deadline ends it.
    pub fn maybe_complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = self.join_deadline_ms.is_some_and(|d| now_ms >= d);
        let early = self.initial_join_cap_ms.is_none() && self.all_members_joined();
        if deadline_passed || early {
            self.complete_join(now_ms, fx);
        }
    }

    /// End the join phase: drop members that did not rejoin, start the next generation, pick
    /// the protocol, and answer every waiting join (the leader gets the member list).
    fn complete_join(&mut self, now_ms: i64, fx: &mut Effects) {
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_ticket.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in missing {
            self.remove_member(&member_id, fx);
        }
        self.join_deadline_ms = None;
        self.initial_join_cap_ms = None;
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.set_state(GroupState::Empty, now_ms);
            fx.records.push(self.metadata_record());
            return;
        }
        self.protocol_name = self.select_protocol();
        self.set_state(GroupState::CompletingRebalance, now_ms);
        self.sync_deadline_ms = Some(now_ms + self.max_rebalance_timeout_ms());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in ids {
            let response = self.join_response(&member_id);
            if let Some(member) = self.members.get_mut(&member_id) {
                member.last_heartbeat_ms = now_ms;
                if let Some(ticket) = member.join_ticket.take() {
                    fx.complete_join(ticket, response);
                }
            }
        }
    }

    /// The protocol every member supports that most members prefer (ties go to the
    /// leader's preference order).
    fn select_protocol(&self) -> Option<String> {
        let leader = self
            .leader_id
            .as_ref()
            .and_then(|id| self.members.get(id))?;
        let candidates: Vec<&str> = leader
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let votes = |name: &str| {
            self.members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .find(|n| candidates.contains(n))
                        == Some(name)
                })
                .count()
        };
        let mut best: Option<(&str, usize)> = None;
        for name in &candidates {
            let v = votes(name);
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((name, v));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// The JoinGroup answer of the current generation for `member_id`.
    pub fn join_response(&self, member_id: &str) -> JoinGroupResponse {
        let is_leader = self.is_leader(member_id);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if is_leader {
            self.members
                .values()
                .map(|m| JoinGroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// The leader's SyncGroup arrived: store every assignment (members it forgot get an
    /// empty one), answer every waiting sync, go Stable, and persist the generation.
    pub fn complete_sync(
        &mut self,
        now_ms: i64,
        assignments: Vec<(String, Bytes)>,
        fx: &mut Effects,
    ) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        for member in self.members.values_mut() {
            member.assignment = by_member.remove(&member.member_id).unwrap_or_default();
        }
        self.sync_deadline_ms = None;
        self.set_state(GroupState::Stable, now_ms);
        let waiting: Vec<(Ticket, Bytes)> = self
            .members
            .values_mut()
            .filter_map(|m| m.sync_ticket.take().map(|t| (t, m.assignment.clone())))
            .collect();
        for (ticket, assignment) in waiting {
            fx.complete_sync(ticket, ErrorCode::NONE, assignment, self);
        }
        fx.records.push(self.metadata_record());
    }

    /// The record that persists the current generation.
    pub fn metadata_record(&self) -> GroupRecord {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|m| MemberMetadataValue {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect();
        GroupRecord::GroupMetadata {
            group_id: self.group_id.clone(),
            value: Some(GroupMetadataValue {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation_id: self.generation_id,
                protocol_name: self.protocol_name.clone(),
                leader_id: self.leader_id.clone(),
                current_state_timestamp_ms: self.state_timestamp_ms,
                members,
            }),
        }
    }

    /// Rebuild a group from its replayed generation and offsets. Members come back with a
    /// fresh session starting at `now_ms` (they must heartbeat to stay).
    pub fn from_replay(
        group_id: &str,
        metadata: Option<GroupMetadataValue>,
        offsets: BTreeMap<(String, i32), OffsetCommitValue>,
        now_ms: i64,
    ) -> Self {
        let mut group = Group::new(group_id, now_ms);
        group.offsets = offsets;
        let Some(meta) = metadata else { return group };
        group.generation_id = meta.generation_id;
        let protocol = meta.protocol_name.clone().unwrap_or_default();
        for m in meta.members {
            group.add_member(Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                join_ticket: None,
                sync_ticket: None,
                last_heartbeat_ms: now_ms,
                joined_seq: 0,
            });
        }
        group.protocol_type = (!meta.protocol_type.is_empty()).then_some(meta.protocol_type);
        group.protocol_name = meta.protocol_name;
        group.leader_id = meta
            .leader_id
            .filter(|id| group.members.contains_key(id))
            .or(group.leader_id);
        let state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group.set_state(state, now_ms);
        group
    }
}

/// A JoinGroup error answer.
pub(crate) fn join_error(error: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: error.0,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        skip_assignment: false,
        member_id: member_id.to_owned(),
        members: Vec::new(),
    }
}
