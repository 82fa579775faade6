//! [`Coordinator`]: every group of one group-log partition set, and the membership calls
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) plus time.
//!
//! Contract: single-threaded, owned by one shard; calls never block; `now_ms` must not go
//! backwards between calls (the caller passes one clock, wall-clock milliseconds). See the
//! module docs of [`crate::groups`] for how waiting calls are answered.

use super::group::{join_error, Effects, Group, GroupState, Member};
use super::group_log::{replay, GroupRecord};
use super::{
    valid_group_id, ClientInfo, GroupConfig, Outcome, Reply, Ticket, ASSIGNMENT_BYTES_MAX,
    MEMBER_METADATA_BYTES_MAX,
};
use crate::protocol::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use crate::protocol::join_group::{JoinGroupRequest, JoinGroupResponse};
use crate::protocol::leave_group::{
    LeaveGroupRequest, LeaveGroupResponse, MemberIdentity, MemberResponse,
};
use crate::protocol::sync_group::{SyncGroupRequest, SyncGroupResponse};
use crate::protocol::ErrorCode;
use bytes::Bytes;
use std::collections::BTreeMap;

/// First JoinGroup version where a dynamic member must rejoin with the id it was given
/// (KIP-394, MEMBER_ID_REQUIRED).
const MEMBER_ID_REQUIRED_FROM_VERSION: i16 = 4;

/// The group coordinator state machine. See [`crate::groups`].
#[derive(Debug)]
pub struct Coordinator {
    pub(crate) cfg: GroupConfig,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) fx: Effects,
    pub(crate) loading: bool,
    member_seq: u64,
}

impl Coordinator {
    /// A coordinator with no groups, ready to serve.
    pub fn new(cfg: GroupConfig) -> Self {
        Coordinator {
            cfg,
            groups: BTreeMap::new(),
            fx: Effects::default(),
            loading: false,
            member_seq: 0,
        }
    }

    /// A coordinator that answers COORDINATOR_LOAD_IN_PROGRESS until [`Coordinator::load`].
    pub fn new_loading(cfg: GroupConfig) -> Self {
        Coordinator {
            loading: true,
            ..Coordinator::new(cfg)
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loading
    }

    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    /// Replace all state with the replay of `records` (oldest first) and start serving.
    /// Groups with members come back Stable, their sessions starting at `now_ms`.
    pub fn load(&mut self, now_ms: i64, records: impl IntoIterator<Item = GroupRecord>) {
        self.groups = replay(records)
            .into_iter()
            .map(|(id, g)| {
                let group = Group::from_replay(&id, g.metadata, g.offsets, now_ms);
                (id, group)
            })
            .collect();
        self.loading = false;
    }

    /// The state of a group, if it exists.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// Answers to tickets completed since the last drain.
    pub fn take_completions(&mut self) -> Vec<(Ticket, Reply)> {
        std::mem::take(&mut self.fx.completions)
    }

    /// Records to append to the group log, oldest first, since the last drain.
    pub fn take_records(&mut self) -> Vec<GroupRecord> {
        std::mem::take(&mut self.fx.records)
    }

    /// The earliest time at which [`Coordinator::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups.values().filter_map(group_deadline).min()
    }

    /// Advance time: lapse KIP-394 pending ids, expire sessions, end join phases whose
    /// deadline passed, drop members that did not sync in time, forget groups left with
    /// nothing (no members, no offsets). Returns every answer
    /// completed so far (the same queue as [`Coordinator::take_completions`]).
    pub fn tick(&mut self, now_ms: i64) -> Vec<(Ticket, Reply)> {
        for group in self.groups.values_mut() {
            group
                .pending_members
                .retain(|_, lapse_ms| *lapse_ms > now_ms);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| m.can_expire() && now_ms >= m.session_deadline_ms())
                .map(|m| m.member_id.clone())
                .collect();
            let sync_late = group.state == GroupState::CompletingRebalance
                && group.sync_deadline_ms.is_some_and(|d| now_ms >= d);
            let unsynced: Vec<String> = if sync_late {
                group
                    .members
                    .values()
                    .filter(|m| m.sync_ticket.is_none())
                    .map(|m| m.member_id.clone())
                    .collect()
            } else {
                Vec::new()
            };
            let removed = !expired.is_empty() || !unsynced.is_empty();
            for member_id in expired.iter().chain(&unsynced) {
                group.remove_member(member_id, &mut self.fx);
            }
            if removed {
                members_removed(group, now_ms, &self.cfg, &mut self.fx);
            }
            group.maybe_complete_join(now_ms, &mut self.fx);
        }
        self.expire_offsets(now_ms);
        self.drop_abandoned_groups();
        self.take_completions()
    }

    /// Every committed offset: (group, topic, partition, offset). For metrics (lag).
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let mut out = Vec::new();
        for (group_id, g) in &self.groups {
            for ((topic, partition), v) in &g.offsets {
                out.push((group_id.clone(), topic.clone(), *partition, v.offset));
            }
        }
        out
    }

    /// KIP-211: offsets of an Empty group expire `offsets_retention_ms` after the later of
    /// the group becoming empty and the commit; each expiry is persisted as a tombstone.
    fn expire_offsets(&mut self, now_ms: i64) {
        let retention = self.cfg.offsets_retention_ms;
        for (group_id, g) in self
            .groups
            .iter_mut()
            .filter(|(_, g)| g.state == GroupState::Empty)
        {
            let since = g.state_timestamp_ms;
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(_, v)| {
                    now_ms >= since.max(v.commit_timestamp_ms).saturating_add(retention)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for (topic, partition) in expired {
                g.offsets.remove(&(topic.clone(), partition));
                self.fx.records.push(GroupRecord::OffsetCommit {
                    group_id: group_id.clone(),
                    topic,
                    partition,
                    value: None,
                });
            }
        }
    }

    /// Forget groups with nothing left: no members, no pending ids, no offsets (e.g. created
    /// by a MEMBER_ID_REQUIRED answer whose member never came back). A group that was ever
    /// persisted gets a tombstone so that replay forgets it too.
    fn drop_abandoned_groups(&mut self) {
        let fx = &mut self.fx;
        self.groups.retain(|group_id, g| {
            let abandoned = g.state == GroupState::Empty
                && g.members.is_empty()
                && g.pending_members.is_empty()
                && g.offsets.is_empty();
            if abandoned && g.generation_id > 0 {
                fx.records.push(GroupRecord::GroupMetadata {
                    group_id: group_id.clone(),
                    value: None,
                });
            }
            !abandoned
        });
    }

    fn new_member_id(&mut self, prefix: &str) -> String {
        self.member_seq += 1;
        let a = splitmix64(self.cfg.member_id_seed ^ self.member_seq.rotate_left(32));
        let b = splitmix64(a ^ self.member_seq);
        format!("{prefix}-{a:016x}{b:016x}")
    }

    /// Take the answer to `ticket` if this very call already produced it.
    fn resolve<R>(&mut self, ticket: Ticket, pick: fn(Reply) -> Option<R>) -> Outcome<R> {
        let Some(pos) = self.fx.completions.iter().position(|(t, _)| *t == ticket) else {
            return Outcome::Pending(ticket);
        };
        let (_, reply) = self.fx.completions.remove(pos);
        match pick(reply) {
            Some(r) => Outcome::Respond(r),
            None => Outcome::Pending(ticket),
        }
    }

    /// JoinGroup. `version` decides KIP-394 (v4+: a new dynamic member is first given an
    /// id with MEMBER_ID_REQUIRED and must rejoin with it).
    pub fn join(
        &mut self,
        now_ms: i64,
        version: i16,
        client: &ClientInfo,
        req: &JoinGroupRequest,
    ) -> Outcome<JoinGroupResponse> {
        let fail = |code: ErrorCode| Outcome::Respond(join_error(code, &req.member_id));
        if !valid_group_id(&req.group_id) {
            return fail(ErrorCode::INVALID_GROUP_ID);
        }
        if self.loading {
            return fail(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        }
        let metadata_bytes: usize = req.protocols.iter().map(|p| p.metadata.len()).sum();
        if metadata_bytes > MEMBER_METADATA_BYTES_MAX {
            return fail(ErrorCode::INVALID_REQUEST);
        }
        let timeout = req.session_timeout_ms;
        if timeout < self.cfg.min_session_timeout_ms || timeout > self.cfg.max_session_timeout_ms {
            return fail(ErrorCode::INVALID_SESSION_TIMEOUT);
        }
        let protocols: Vec<(String, Bytes)> = req
            .protocols
            .iter()
            // A copy: a slice would pin the whole request frame for the member's life.
            .map(|p| (p.name.clone(), Bytes::copy_from_slice(&p.metadata)))
            .collect();
        let fits = match self.groups.get(&req.group_id) {
            Some(group) => group.supports_protocols(&req.protocol_type, &protocols, &req.member_id),
            None => !req.protocol_type.is_empty() && !protocols.is_empty(),
        };
        if !fits {
            return fail(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        let joining = Joining {
            req,
            client,
            protocols,
            now_ms,
        };
        if req.member_id.is_empty() {
            self.join_new_member(version, joining)
        } else {
            self.join_known_member(joining)
        }
    }

    fn join_new_member(&mut self, version: i16, j: Joining<'_>) -> Outcome<JoinGroupResponse> {
        let group_id = &j.req.group_id;
        if !self.has_room_for(group_id) {
            return Outcome::Respond(join_error(ErrorCode::COORDINATOR_NOT_AVAILABLE, ""));
        }
        let group = self
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(group_id, j.now_ms));
        if let Some(instance) = &j.req.group_instance_id {
            if let Some(old_id) = group.static_members.get(instance).cloned() {
                return self.rejoin_static_member(&old_id, j);
            }
        }
        if group.members.len() + group.pending_members.len() >= self.cfg.max_size {
            return Outcome::Respond(join_error(ErrorCode::GROUP_MAX_SIZE_REACHED, ""));
        }
        let prefix = j
            .req
            .group_instance_id
            .as_deref()
            .unwrap_or(&j.client.client_id)
            .to_owned();
        let member_id = self.new_member_id(&prefix);
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::Respond(join_error(ErrorCode::UNKNOWN_MEMBER_ID, ""));
        };
        if j.req.group_instance_id.is_none() && version >= MEMBER_ID_REQUIRED_FROM_VERSION {
            let lapse_ms = j.now_ms + i64::from(j.req.session_timeout_ms);
            group.pending_members.insert(member_id.clone(), lapse_ms);
            return Outcome::Respond(join_error(ErrorCode::MEMBER_ID_REQUIRED, &member_id));
        }
        self.add_member_and_rebalance(member_id, j)
    }

    fn join_known_member(&mut self, j: Joining<'_>) -> Outcome<JoinGroupResponse> {
        let member_id = &j.req.member_id;
        let fail = |code: ErrorCode| Outcome::Respond(join_error(code, member_id));
        let Some(group) = self.groups.get_mut(&j.req.group_id) else {
            return fail(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        if group.pending_members.remove(member_id).is_some() {
            return self.add_member_and_rebalance(member_id.clone(), j);
        }
        if group.is_fenced(member_id, j.req.group_instance_id.as_deref()) {
            return fail(ErrorCode::FENCED_INSTANCE_ID);
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return fail(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        let unchanged = member.protocols == j.protocols;
        member.last_heartbeat_ms = j.now_ms;
        match group.state {
            GroupState::Empty | GroupState::Dead => fail(ErrorCode::UNKNOWN_MEMBER_ID),
            GroupState::CompletingRebalance if unchanged => {
                Outcome::Respond(group.join_response(member_id))
            }
            GroupState::Stable if unchanged && !group.is_leader(member_id) => {
                Outcome::Respond(group.join_response(member_id))
            }
            _ => self.update_member_and_rebalance(member_id, j),
        }
    }

    /// A known group.instance.id joined without a member id: a restarted static member.
    /// It takes over the old member's place under a new id (the old id is fenced). In a
    /// Stable group with unchanged protocols this needs no rebalance: the member gets the
    /// current generation and, on SyncGroup, its old assignment.
    fn rejoin_static_member(&mut self, old_id: &str, j: Joining<'_>) -> Outcome<JoinGroupResponse> {
        let prefix = j.req.group_instance_id.clone().unwrap_or_default();
        let new_id = self.new_member_id(&prefix);
        let Some(group) = self.groups.get_mut(&j.req.group_id) else {
            return Outcome::Respond(join_error(ErrorCode::UNKNOWN_MEMBER_ID, ""));
        };
        let Some(member) = group.replace_member_id(old_id, &new_id, &mut self.fx) else {
            return Outcome::Respond(join_error(ErrorCode::UNKNOWN_MEMBER_ID, ""));
        };
        let unchanged = member.protocols == j.protocols;
        member.client_id = j.client.client_id.clone();
        member.client_host = j.client.client_host.clone();
        member.session_timeout_ms = j.req.session_timeout_ms;
        member.rebalance_timeout_ms = j.req.rebalance_timeout_ms;
        member.last_heartbeat_ms = j.now_ms;
        if group.state == GroupState::Stable && unchanged {
            let mut response = group.join_response(&new_id);
            response.skip_assignment = group.is_leader(&new_id);
            self.fx.records.push(group.metadata_record());
            return Outcome::Respond(response);
        }
        self.update_member_and_rebalance(&new_id, j)
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        j: Joining<'_>,
    ) -> Outcome<JoinGroupResponse> {
        let ticket = self.fx.ticket();
        let Some(group) = self.groups.get_mut(&j.req.group_id) else {
            return Outcome::Respond(join_error(ErrorCode::UNKNOWN_MEMBER_ID, &member_id));
        };
        if group.members.is_empty() {
            group.protocol_type = Some(j.req.protocol_type.clone());
        }
        group.add_member(Member {
            member_id,
            group_instance_id: j.req.group_instance_id.clone(),
            client_id: j.client.client_id.clone(),
            client_host: j.client.client_host.clone(),
            session_timeout_ms: j.req.session_timeout_ms,
            rebalance_timeout_ms: j.req.rebalance_timeout_ms,
            protocols: j.protocols,
            assignment: Bytes::new(),
            join_ticket: Some(ticket),
            sync_ticket: None,
            last_heartbeat_ms: j.now_ms,
            joined_seq: 0,
        });
        if group.state == GroupState::PreparingRebalance {
            group.extend_initial_delay(j.now_ms, &self.cfg);
        } else {
            group.prepare_rebalance(j.now_ms, &self.cfg, &mut self.fx);
        }
        group.maybe_complete_join(j.now_ms, &mut self.fx);
        self.resolve(ticket, pick_join)
    }

    /// A known member rejoins with (maybe) new protocols: wait for the rebalance, starting
    /// one unless it is already under way.
    fn update_member_and_rebalance(
        &mut self,
        member_id: &str,
        j: Joining<'_>,
    ) -> Outcome<JoinGroupResponse> {
        let ticket = self.fx.ticket();
        let Some(group) = self.groups.get_mut(&j.req.group_id) else {
            return Outcome::Respond(join_error(ErrorCode::UNKNOWN_MEMBER_ID, member_id));
        };
        let Some(member) = group.members.get_mut(member_id) else {
            return Outcome::Respond(join_error(ErrorCode::UNKNOWN_MEMBER_ID, member_id));
        };
        member.protocols = j.protocols;
        member.session_timeout_ms = j.req.session_timeout_ms;
        member.rebalance_timeout_ms = j.req.rebalance_timeout_ms;
        member.last_heartbeat_ms = j.now_ms;
        if let Some(previous) = member.join_ticket.replace(ticket) {
            let superseded = join_error(ErrorCode::REBALANCE_IN_PROGRESS, member_id);
            self.fx
                .completions
                .push((previous, Reply::Join(superseded)));
        }
        if group.state != GroupState::PreparingRebalance {
            group.prepare_rebalance(j.now_ms, &self.cfg, &mut self.fx);
        }
        group.maybe_complete_join(j.now_ms, &mut self.fx);
        self.resolve(ticket, pick_join)
    }

    /// Whether `group_id` exists or one more group fits under `max_groups`.
    pub(crate) fn has_room_for(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id) || self.groups.len() < self.cfg.max_groups
    }

    /// SyncGroup. Followers wait for the leader; the leader's assignments answer everyone.
    pub fn sync(&mut self, now_ms: i64, req: &SyncGroupRequest) -> Outcome<SyncGroupResponse> {
        let fail = |code: ErrorCode| Outcome::Respond(sync_error(code));
        if self.loading {
            return fail(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        }
        if req
            .assignments
            .iter()
            .any(|a| a.assignment.len() > ASSIGNMENT_BYTES_MAX)
        {
            return fail(ErrorCode::INVALID_REQUEST);
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return fail(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        if let Err(code) = check_member(
            group,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        ) {
            return fail(code);
        }
        let type_differs = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| group.protocol_type.as_ref() != Some(t));
        let name_differs = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| group.protocol_name.as_ref() != Some(n));
        if type_differs || name_differs {
            return fail(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        let ticket = self.fx.ticket();
        let Some(member) = group.members.get_mut(&req.member_id) else {
            return fail(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        member.last_heartbeat_ms = now_ms;
        match group.state {
            GroupState::Empty | GroupState::Dead => fail(ErrorCode::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => fail(ErrorCode::REBALANCE_IN_PROGRESS),
            GroupState::Stable => Outcome::Respond(SyncGroupResponse {
                throttle_time_ms: 0,
                error_code: 0,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                assignment: member.assignment.clone(),
            }),
            GroupState::CompletingRebalance => {
                if let Some(previous) = member.sync_ticket.replace(ticket) {
                    // A second SyncGroup from the same member supersedes the first.
                    self.fx.completions.push((
                        previous,
                        Reply::Sync(sync_error(ErrorCode::REBALANCE_IN_PROGRESS)),
                    ));
                }
                if group.is_leader(&req.member_id) {
                    let assignments = req
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.clone(), Bytes::copy_from_slice(&a.assignment)))
                        .collect();
                    group.complete_sync(now_ms, assignments, &mut self.fx);
                }
                self.resolve(ticket, pick_sync)
            }
        }
    }

    /// Heartbeat: keeps the session alive; REBALANCE_IN_PROGRESS tells the member to rejoin.
    pub fn heartbeat(&mut self, now_ms: i64, req: &HeartbeatRequest) -> HeartbeatResponse {
        let error = self.heartbeat_error(now_ms, req);
        HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: error.0,
        }
    }

    fn heartbeat_error(&mut self, now_ms: i64, req: &HeartbeatRequest) -> ErrorCode {
        if self.loading {
            return ErrorCode::COORDINATOR_LOAD_IN_PROGRESS;
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        if let Err(code) = check_member(
            group,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        ) {
            return code;
        }
        let state = group.state;
        if let Some(member) = group.members.get_mut(&req.member_id) {
            member.last_heartbeat_ms = now_ms;
        }
        match state {
            GroupState::Empty | GroupState::Dead => ErrorCode::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::NONE,
        }
    }

    /// LeaveGroup, one member (v0–2) or a batch (v3+); the answer has the version's shape.
    pub fn leave(
        &mut self,
        now_ms: i64,
        version: i16,
        req: &LeaveGroupRequest,
    ) -> LeaveGroupResponse {
        let leaving = req.leaving(version);
        let (top_error, members) = self.leave_members(now_ms, &req.group_id, &leaving);
        let error_code = if version >= 3 {
            top_error
        } else {
            members.first().map_or(top_error, |m| m.error_code)
        };
        LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code,
            members: if version >= 3 { members } else { Vec::new() },
        }
    }

    fn leave_members(
        &mut self,
        now_ms: i64,
        group_id: &str,
        leaving: &[MemberIdentity],
    ) -> (i16, Vec<MemberResponse>) {
        if self.loading {
            return (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0, Vec::new());
        }
        let answer = |m: &MemberIdentity, code: ErrorCode| MemberResponse {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            error_code: code.0,
        };
        let Some(group) = self.groups.get_mut(group_id) else {
            return (
                0,
                leaving
                    .iter()
                    .map(|m| answer(m, ErrorCode::UNKNOWN_MEMBER_ID))
                    .collect(),
            );
        };
        let mut removed = false;
        let mut answers = Vec::with_capacity(leaving.len());
        for identity in leaving {
            let code = leave_one(group, identity, &mut self.fx);
            removed |= code == ErrorCode::NONE;
            answers.push(answer(identity, code));
        }
        if removed {
            members_removed(group, now_ms, &self.cfg, &mut self.fx);
        }
        (0, answers)
    }
}

/// What a JoinGroup brings, passed down the join paths.
struct Joining<'a> {
    req: &'a JoinGroupRequest,
    client: &'a ClientInfo,
    protocols: Vec<(String, Bytes)>,
    now_ms: i64,
}

fn pick_join(reply: Reply) -> Option<JoinGroupResponse> {
    match reply {
        Reply::Join(r) => Some(r),
        Reply::Sync(_) => None,
    }
}

fn pick_sync(reply: Reply) -> Option<SyncGroupResponse> {
    match reply {
        Reply::Sync(r) => Some(r),
        Reply::Join(_) => None,
    }
}

pub(crate) fn sync_error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        throttle_time_ms: 0,
        error_code: code.0,
        protocol_type: None,
        protocol_name: None,
        assignment: Bytes::new(),
    }
}

/// Kafka's order of checks for a request from a current member: fenced static member,
/// unknown member, wrong generation.
pub(crate) fn check_member(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
    generation_id: i32,
) -> Result<(), ErrorCode> {
    if group.state == GroupState::Dead {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    if group.is_fenced(member_id, instance_id) {
        return Err(ErrorCode::FENCED_INSTANCE_ID);
    }
    if !group.members.contains_key(member_id) {
        return Err(ErrorCode::UNKNOWN_MEMBER_ID);
    }
    if generation_id != group.generation_id {
        return Err(ErrorCode::ILLEGAL_GENERATION);
    }
    Ok(())
}

fn leave_one(group: &mut Group, identity: &MemberIdentity, fx: &mut Effects) -> ErrorCode {
    let instance = identity.group_instance_id.as_deref();
    let member_id = if identity.member_id.is_empty() {
        match instance.and_then(|i| group.static_members.get(i)) {
            Some(id) => id.clone(),
            None => return ErrorCode::UNKNOWN_MEMBER_ID,
        }
    } else {
        if group.is_fenced(&identity.member_id, instance) {
            return ErrorCode::FENCED_INSTANCE_ID;
        }
        identity.member_id.clone()
    };
    if group.pending_members.remove(&member_id).is_some() {
        return ErrorCode::NONE;
    }
    match group.remove_member(&member_id, fx) {
        Some(_) => ErrorCode::NONE,
        None => ErrorCode::UNKNOWN_MEMBER_ID,
    }
}

/// After members left or expired: a settled group rebalances; a group already rebalancing
/// may now have everyone it waits for.
fn members_removed(group: &mut Group, now_ms: i64, cfg: &GroupConfig, fx: &mut Effects) {
    if matches!(
        group.state,
        GroupState::Stable | GroupState::CompletingRebalance
    ) {
        group.prepare_rebalance(now_ms, cfg, fx);
    }
    group.maybe_complete_join(now_ms, fx);
}

fn group_deadline(group: &Group) -> Option<i64> {
    let sessions = group
        .members
        .values()
        .filter(|m| m.can_expire())
        .map(|m| m.session_deadline_ms());
    let pending = group.pending_members.values().copied();
    let join = if group.state == GroupState::PreparingRebalance {
        group.join_deadline_ms
    } else {
        None
    };
    let sync = if group.state == GroupState::CompletingRebalance {
        group.sync_deadline_ms
    } else {
        None
    };
    sessions.chain(pending).chain(join).chain(sync).min()
}

/// SplitMix64: spreads the seed and a counter into member id suffixes.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::testkit::*;
    use crate::protocol::join_group::JoinGroupProtocol;
    use crate::protocol::leave_group::MemberIdentity;

    const T0: i64 = 1_000_000;
    const DELAY: i64 = 3_000;

    #[test]
    fn offsets_of_an_empty_group_expire_after_retention() {
        let mut cfg = config();
        cfg.offsets_retention_ms = 10_000;
        let mut c = Coordinator::new(cfg);
        let resp = c.commit_offsets(T0, &commit_req("", -1, 0, 42));
        assert_eq!(commit_error(&resp), ErrorCode::NONE);
        let _ = c.take_records();
        c.tick(T0 + 9_999);
        assert!(
            c.take_records().is_empty(),
            "nothing expires before the retention"
        );
        assert_eq!(c.groups[GROUP].offsets.len(), 1);
        c.tick(T0 + 10_000);
        let records = c.take_records();
        assert!(
            records.iter().any(|r| matches!(
                r,
                GroupRecord::OffsetCommit {
                    value: None,
                    partition: 0,
                    ..
                }
            )),
            "expiry is persisted as a tombstone: {records:?}"
        );
        assert!(
            !c.groups.contains_key(GROUP),
            "a group left with nothing is forgotten"
        );
    }

    #[test]
    fn three_members_join_and_sync() {
        let mut c = Coordinator::new(config());
        let (a, ta) = join_dynamic(&mut c, T0, "a");
        let (b, tb) = join_dynamic(&mut c, T0 + 100, "b");
        let (cc, tc) = join_dynamic(&mut c, T0 + 200, "c");
        assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
        // The initial delay restarts with each new member: nothing completes at T0 + DELAY.
        assert!(c.tick(T0 + DELAY).is_empty());
        assert_eq!(c.next_deadline(), Some(T0 + 200 + DELAY));
        let done = c.tick(T0 + 200 + DELAY);
        assert_eq!(done.len(), 3);
        let (ja, jb, jc) = (
            join_reply(&done, ta),
            join_reply(&done, tb),
            join_reply(&done, tc),
        );
        for j in [&ja, &jb, &jc] {
            assert_eq!(
                (j.error_code, j.generation_id, j.leader.as_str()),
                (0, 1, a.as_str())
            );
            assert_eq!(j.protocol_name.as_deref(), Some("range"));
            assert_eq!(j.protocol_type.as_deref(), Some("consumer"));
        }
        assert_eq!(ja.members.len(), 3, "the leader gets every member");
        assert!(jb.members.is_empty() && jc.members.is_empty());
        assert_eq!(c.group_state(GROUP), Some(GroupState::CompletingRebalance));

        let now = T0 + 5_000;
        let sb = pending(c.sync(now, &sync_req(&b, 1, &[])));
        let sc = pending(c.sync(now, &sync_req(&cc, 1, &[])));
        let sa = respond(c.sync(
            now,
            &sync_req(&a, 1, &[(&a, "pa"), (&b, "pb"), (&cc, "pc")]),
        ));
        assert_eq!(&sa.assignment[..], b"pa");
        let done = c.take_completions();
        assert_eq!(&sync_reply(&done, sb).assignment[..], b"pb");
        assert_eq!(&sync_reply(&done, sc).assignment[..], b"pc");
        assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
        // A late follower sync in Stable gets its assignment at once.
        assert_eq!(
            &respond(c.sync(now, &sync_req(&b, 1, &[]))).assignment[..],
            b"pb"
        );
        let records = c.take_records();
        assert_eq!(records.len(), 1);
        let GroupRecord::GroupMetadata {
            value: Some(meta), ..
        } = &records[0]
        else {
            panic!("{records:?}")
        };
        assert_eq!((meta.generation_id, meta.members.len()), (1, 3));
        assert_eq!(c.heartbeat(now, &heartbeat_req(&b, 1, None)).error_code, 0);
    }

    #[test]
    fn session_expiry_removes_member_and_rebalances() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None, None, None]);
        let t = T0 + DELAY;
        // Members 1 and 2 heartbeat; member 0 (the leader) goes silent.
        for id in &ids[1..] {
            assert_eq!(
                c.heartbeat(t + 8_000, &heartbeat_req(id, generation, None))
                    .error_code,
                0
            );
        }
        assert_eq!(c.next_deadline(), Some(t + i64::from(SESSION_MS)));
        c.tick(t + i64::from(SESSION_MS));
        assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
        let hb = c.heartbeat(t + 10_500, &heartbeat_req(&ids[1], generation, None));
        assert_eq!(ErrorCode(hb.error_code), ErrorCode::REBALANCE_IN_PROGRESS);
        let gone = c.heartbeat(t + 10_500, &heartbeat_req(&ids[0], generation, None));
        assert_eq!(ErrorCode(gone.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
        let t1 = pending(c.join(t + 11_000, VERSION, &client("c1"), &join_req(&ids[1], None)));
        // The last missing member completes the join phase at once (no initial delay now).
        let j2 = respond(c.join(t + 11_000, VERSION, &client("c2"), &join_req(&ids[2], None)));
        let j1 = join_reply(&c.take_completions(), t1);
        assert_eq!(
            (j1.generation_id, j2.generation_id),
            (generation + 1, generation + 1)
        );
        assert_eq!(j1.leader, ids[1], "the longest-standing member leads");
        assert_eq!(j1.members.len(), 2);
    }

    #[test]
    fn static_member_restart_keeps_assignment_without_rebalance() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[Some("host-a"), Some("host-b")]);
        c.take_records();
        let t = T0 + DELAY + 1_000;
        // host-b restarts: it joins with no member id and the same protocols.
        let j = respond(c.join(t, VERSION, &client("c1"), &join_req("", Some("host-b"))));
        assert_eq!(j.error_code, 0);
        assert_eq!(j.generation_id, generation, "no new generation");
        assert_ne!(j.member_id, ids[1]);
        assert!(j.member_id.starts_with("host-b-"));
        assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
        let s = respond(c.sync(t, &sync_req(&j.member_id, generation, &[])));
        assert_eq!(&s.assignment[..], b"a-1", "the old assignment");
        assert_eq!(c.take_records().len(), 1, "the new member id is persisted");
        // The old instance is fenced everywhere.
        let hb = c.heartbeat(t, &heartbeat_req(&ids[1], generation, Some("host-b")));
        assert_eq!(ErrorCode(hb.error_code), ErrorCode::FENCED_INSTANCE_ID);
        let mut commit = commit_req(&ids[1], generation, 0, 5);
        commit.group_instance_id = Some("host-b".into());
        assert_eq!(
            commit_error(&c.commit_offsets(t, &commit)),
            ErrorCode::FENCED_INSTANCE_ID
        );
        let stale_join = respond(c.join(
            t,
            VERSION,
            &client("c1"),
            &join_req(&ids[1], Some("host-b")),
        ));
        assert_eq!(
            ErrorCode(stale_join.error_code),
            ErrorCode::FENCED_INSTANCE_ID
        );
        assert_eq!(
            c.heartbeat(t, &heartbeat_req(&ids[0], generation, Some("host-a")))
                .error_code,
            0
        );
    }

    #[test]
    fn static_leader_restart_is_told_to_skip_assignment() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[Some("host-a"), Some("host-b")]);
        let j = respond(c.join(
            T0 + 5_000,
            VERSION,
            &client("c0"),
            &join_req("", Some("host-a")),
        ));
        assert_eq!((j.generation_id, j.skip_assignment), (generation, true));
        assert_eq!(j.leader, j.member_id);
        assert_eq!(j.members.len(), 2);
        assert!(j.members.iter().any(|m| m.member_id == ids[1]));
        assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
    }

    #[test]
    fn leave_triggers_rebalance_and_batched_leave_answers_per_member() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None, None, Some("host-c")]);
        let t = T0 + DELAY + 1_000;
        let req = LeaveGroupRequest {
            group_id: GROUP.into(),
            member_id: String::new(),
            members: vec![
                MemberIdentity {
                    member_id: String::new(),
                    group_instance_id: Some("host-c".into()),
                    reason: None,
                },
                MemberIdentity {
                    member_id: "nobody".into(),
                    group_instance_id: None,
                    reason: None,
                },
            ],
        };
        let resp = c.leave(t, 5, &req);
        assert_eq!(resp.error_code, 0);
        let codes: Vec<i16> = resp.members.iter().map(|m| m.error_code).collect();
        assert_eq!(codes, vec![0, ErrorCode::UNKNOWN_MEMBER_ID.0]);
        assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
        let t0 = pending(c.join(t, VERSION, &client("c0"), &join_req(&ids[0], None)));
        let j1 = respond(c.join(t, VERSION, &client("c1"), &join_req(&ids[1], None)));
        let j0 = join_reply(&c.take_completions(), t0);
        assert_eq!(
            (j0.generation_id, j1.generation_id),
            (generation + 1, generation + 1)
        );
        assert_eq!(j0.members.len(), 2);
        // v0–2: one member, error at the top.
        let old = LeaveGroupRequest {
            group_id: GROUP.into(),
            member_id: "nobody".into(),
            members: Vec::new(),
        };
        assert_eq!(
            ErrorCode(c.leave(t, 1, &old).error_code),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
    }

    #[test]
    fn last_member_leaving_empties_the_group() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None]);
        c.take_records();
        let req = LeaveGroupRequest {
            group_id: GROUP.into(),
            member_id: ids[0].clone(),
            members: Vec::new(),
        };
        assert_eq!(c.leave(T0 + 5_000, 2, &req).error_code, 0);
        assert_eq!(c.group_state(GROUP), Some(GroupState::Empty));
        let records = c.take_records();
        let GroupRecord::GroupMetadata {
            value: Some(meta), ..
        } = &records[0]
        else {
            panic!("{records:?}")
        };
        assert_eq!(
            (meta.generation_id, meta.members.len()),
            (generation + 1, 0)
        );
    }

    #[test]
    fn rebalance_timeout_removes_members_that_do_not_rejoin() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None, None]);
        let t = T0 + DELAY + 1_000;
        // The leader rejoins (that alone starts a rebalance); the follower never does, but
        // keeps heartbeating so its session stays alive.
        let tl = pending(c.join(t, VERSION, &client("c0"), &join_req(&ids[0], None)));
        // The earliest deadline is the follower's session, not the join phase.
        assert_eq!(c.next_deadline(), Some(T0 + DELAY + i64::from(SESSION_MS)));
        for step in 1..=3 {
            let now = t + step * 9_000;
            let hb = c.heartbeat(now, &heartbeat_req(&ids[1], generation, None));
            assert_eq!(ErrorCode(hb.error_code), ErrorCode::REBALANCE_IN_PROGRESS);
            assert!(c.tick(now).is_empty());
        }
        let done = c.tick(t + i64::from(REBALANCE_MS));
        let j = join_reply(&done, tl);
        assert_eq!((j.generation_id, j.members.len()), (generation + 1, 1));
        let hb = c.heartbeat(t + 31_000, &heartbeat_req(&ids[1], generation, None));
        assert_eq!(ErrorCode(hb.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn followers_waiting_for_a_silent_leader_are_released() {
        let mut c = Coordinator::new(config());
        let (a, ta) = join_dynamic(&mut c, T0, "a");
        let (b, tb) = join_dynamic(&mut c, T0, "b");
        let done = c.tick(T0 + DELAY);
        let (ja, _) = (join_reply(&done, ta), join_reply(&done, tb));
        assert_eq!(ja.leader, a);
        let sb = pending(c.sync(T0 + DELAY, &sync_req(&b, 1, &[])));
        // The leader never syncs: at the sync deadline it is dropped and a rebalance starts;
        // the waiting follower is told REBALANCE_IN_PROGRESS.
        let done = c.tick(T0 + DELAY + i64::from(REBALANCE_MS));
        assert_eq!(
            ErrorCode(sync_reply(&done, sb).error_code),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
        assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
        let j = respond(c.join(T0 + 40_000, VERSION, &client("b"), &join_req(&b, None)));
        assert_eq!((j.generation_id, j.leader.as_str()), (2, b.as_str()));
    }

    #[test]
    fn pending_member_id_lapses_and_stops_blocking_the_join() {
        let mut c = Coordinator::new(config());
        let (ids, _) = stable_group(&mut c, T0, &[None]);
        let t = T0 + DELAY + 1_000;
        // A newcomer gets an id but never comes back; the existing member rejoins.
        let first = respond(c.join(t, VERSION, &client("x"), &join_req("", None)));
        assert_eq!(ErrorCode(first.error_code), ErrorCode::MEMBER_ID_REQUIRED);
        let t0 = pending(c.join(t, VERSION, &client("c0"), &join_req(&ids[0], None)));
        assert_eq!(
            c.group_state(GROUP),
            Some(GroupState::PreparingRebalance),
            "waits for the newcomer"
        );
        let done = c.tick(t + i64::from(SESSION_MS));
        assert_eq!(join_reply(&done, t0).members.len(), 1);
    }

    #[test]
    fn old_join_versions_get_a_member_id_without_a_round_trip() {
        let mut c = Coordinator::new(GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..config()
        });
        let j = respond(c.join(T0, 3, &client("old"), &join_req("", None)));
        assert_eq!((j.error_code, j.generation_id), (0, 1));
        assert!(j.member_id.starts_with("old-"));
        assert_eq!(j.leader, j.member_id);
    }

    #[test]
    fn groups_ids_and_member_metadata_are_bounded() {
        let mut c = Coordinator::new(GroupConfig {
            max_groups: 2,
            ..config()
        });
        let code = |r: Outcome<JoinGroupResponse>| ErrorCode(respond(r).error_code);
        let named = |g: &str| JoinGroupRequest {
            group_id: g.into(),
            ..join_req("", None)
        };
        for g in ["g1", "g2"] {
            let first = code(c.join(T0, VERSION, &client("x"), &named(g)));
            assert_eq!(first, ErrorCode::MEMBER_ID_REQUIRED, "{g}");
        }
        let third = code(c.join(T0, VERSION, &client("x"), &named("g3")));
        assert_eq!(third, ErrorCode::COORDINATOR_NOT_AVAILABLE);
        let mut commit = commit_req("", -1, 0, 5);
        commit.group_id = "g4".into();
        let resp = c.commit_offsets(T0, &commit);
        assert_eq!(
            ErrorCode(resp.topics[0].partitions[0].error_code),
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
            "a simple commit cannot create a group past the bound either"
        );
        let again = code(c.join(T0, VERSION, &client("x"), &named("g1")));
        assert_eq!(
            again,
            ErrorCode::MEMBER_ID_REQUIRED,
            "known groups still join"
        );
        let long = "g".repeat(crate::groups::GROUP_ID_BYTES_MAX + 1);
        let mut c = Coordinator::new(config());
        assert_eq!(
            code(c.join(T0, VERSION, &client("x"), &named(&long))),
            ErrorCode::INVALID_GROUP_ID
        );
        let mut big = join_req("", None);
        big.protocols[0].metadata = Bytes::from(vec![0u8; MEMBER_METADATA_BYTES_MAX + 1]);
        assert_eq!(
            code(c.join(T0, VERSION, &client("x"), &big)),
            ErrorCode::INVALID_REQUEST
        );
    }

    #[test]
    fn join_errors() {
        let mut c = Coordinator::new(GroupConfig {
            max_size: 1,
            ..config()
        });
        let mut req = join_req("", None);
        req.session_timeout_ms = 5_999;
        let code = |r: Outcome<JoinGroupResponse>| ErrorCode(respond(r).error_code);
        assert_eq!(
            code(c.join(T0, VERSION, &client("x"), &req)),
            ErrorCode::INVALID_SESSION_TIMEOUT
        );
        req.session_timeout_ms = 1_800_001;
        assert_eq!(
            code(c.join(T0, VERSION, &client("x"), &req)),
            ErrorCode::INVALID_SESSION_TIMEOUT
        );
        assert_eq!(
            code(c.join(T0, VERSION, &client("x"), &join_req("ghost", None))),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        let mut no_group = join_req("", None);
        no_group.group_id = String::new();
        assert_eq!(
            code(c.join(T0, VERSION, &client("x"), &no_group)),
            ErrorCode::INVALID_GROUP_ID
        );
        join_dynamic(&mut c, T0, "a");
        assert_eq!(
            code(c.join(T0, VERSION, &client("b"), &join_req("", None))),
            ErrorCode::GROUP_MAX_SIZE_REACHED
        );
        let mut other = join_req("", None);
        other.protocol_type = "connect".into();
        assert_eq!(
            code(c.join(T0, VERSION, &client("b"), &other)),
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL
        );
        let mut loading = Coordinator::new_loading(config());
        assert_eq!(
            code(loading.join(T0, VERSION, &client("x"), &join_req("", None))),
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        );
        let hb = loading.heartbeat(T0, &heartbeat_req("m", 1, None));
        assert_eq!(
            ErrorCode(hb.error_code),
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        );
        loading.load(T0, Vec::new());
        assert!(!loading.is_loading());
    }

    #[test]
    fn sync_and_heartbeat_errors() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None, None]);
        let t = T0 + DELAY;
        let sync_code =
            |c: &mut Coordinator, r: &SyncGroupRequest| ErrorCode(respond(c.sync(t, r)).error_code);
        assert_eq!(
            sync_code(&mut c, &sync_req(&ids[0], generation - 1, &[])),
            ErrorCode::ILLEGAL_GENERATION
        );
        assert_eq!(
            sync_code(&mut c, &sync_req("ghost", generation, &[])),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        let mut wrong = sync_req(&ids[0], generation, &[]);
        wrong.protocol_name = Some("roundrobin".into());
        assert_eq!(
            sync_code(&mut c, &wrong),
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL
        );
        let hb = c.heartbeat(t, &heartbeat_req(&ids[1], generation + 1, None));
        assert_eq!(ErrorCode(hb.error_code), ErrorCode::ILLEGAL_GENERATION);
        let mut missing = heartbeat_req(&ids[1], generation, None);
        missing.group_id = "nope".into();
        assert_eq!(
            ErrorCode(c.heartbeat(t, &missing).error_code),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        // During a rebalance a sync is refused.
        pending(c.join(t, VERSION, &client("c0"), &join_req(&ids[0], None)));
        assert_eq!(
            sync_code(&mut c, &sync_req(&ids[1], generation, &[])),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
    }

    #[test]
    fn protocol_is_chosen_by_votes_among_common_ones() {
        let mut c = Coordinator::new(config());
        let protocols = |names: &[&str]| -> Vec<JoinGroupProtocol> {
            names
                .iter()
                .map(|n| JoinGroupProtocol {
                    name: (*n).into(),
                    metadata: Bytes::new(),
                })
                .collect()
        };
        let prefs: [&[&str]; 3] = [
            &["range", "roundrobin", "sticky"],
            &["roundrobin", "range"],
            &["roundrobin", "range"],
        ];
        let mut tickets = Vec::new();
        for (i, p) in prefs.iter().enumerate() {
            let mut req = join_req("", Some(&format!("i{i}")));
            req.protocols = protocols(p);
            tickets.push(pending(c.join(T0, VERSION, &client("c"), &req)));
        }
        let done = c.tick(T0 + DELAY);
        assert_eq!(
            join_reply(&done, tickets[0]).protocol_name.as_deref(),
            Some("roundrobin")
        );
        let mut odd = join_req("", Some("i9"));
        odd.protocols = protocols(&["sticky"]);
        let r = respond(c.join(T0 + DELAY, VERSION, &client("c"), &odd));
        assert_eq!(
            ErrorCode(r.error_code),
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL
        );
    }

    #[test]
    fn member_ids_are_unique_and_depend_on_the_seed() {
        let mut a = Coordinator::new(config());
        let mut b = Coordinator::new(GroupConfig {
            member_id_seed: 7,
            ..config()
        });
        let ids_a: Vec<String> = (0..50).map(|_| a.new_member_id("x")).collect();
        let mut dedup = ids_a.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 50);
        assert_ne!(ids_a[0], b.new_member_id("x"));
    }
}
