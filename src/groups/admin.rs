//! Group administration: ListGroups, DescribeGroups, DeleteGroups.
//!
//! DescribeGroups shows member metadata and assignments only when the group is Stable (as
//! Kafka does: while rebalancing they are in flux). An unknown group is described as Dead
//! with no error (DescribeGroups v0–5 has no "not found" answer).

use super::group::{Group, GroupState};
use super::group_log::GroupRecord;
use super::Coordinator;
use crate::protocol::delete_groups::{
    DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};
use crate::protocol::describe_groups::{
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
    AUTHORIZED_OPERATIONS_OMITTED,
};
use crate::protocol::list_groups::{ListGroupsRequest, ListGroupsResponse, ListedGroup};
use crate::protocol::ErrorCode;
use bytes::Bytes;

/// The only group type ringmq serves (KIP-848 "consumer" groups are not implemented).
const CLASSIC_GROUP_TYPE: &str = "classic";

/// Group operations allowed without an authorizer: READ (3), DELETE (6), DESCRIBE (8).
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

impl Coordinator {
    /// ListGroups, with the v4+ state filter and v5+ type filter (both case-insensitive).
    pub fn list_groups(&self, req: &ListGroupsRequest) -> ListGroupsResponse {
        if self.loading {
            return ListGroupsResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
                groups: Vec::new(),
            };
        }
        let state_ok = |g: &Group| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(g.state.as_str()))
        };
        let type_ok = req.types_filter.is_empty()
            || req
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
        let groups = self
            .groups
            .values()
            .filter(|g| type_ok && state_ok(g))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.as_str().to_owned(),
                group_type: CLASSIC_GROUP_TYPE.to_owned(),
            })
            .collect();
        ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            groups,
        }
    }

    /// DescribeGroups.
    pub fn describe_groups(&self, req: &DescribeGroupsRequest) -> DescribeGroupsResponse {
        let operations = if req.include_authorized_operations {
            GROUP_AUTHORIZED_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        let groups = req
            .groups
            .iter()
            .map(|id| {
                let error = if self.loading {
                    ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                } else if id.is_empty() {
                    ErrorCode::INVALID_GROUP_ID
                } else {
                    ErrorCode::NONE
                };
                match self.groups.get(id).filter(|_| !error.is_error()) {
                    Some(group) => describe(group, operations),
                    None => DescribedGroup {
                        error_code: error.0,
                        group_id: id.clone(),
                        group_state: GroupState::Dead.as_str().to_owned(),
                        protocol_type: String::new(),
                        protocol_data: String::new(),
                        members: Vec::new(),
                        authorized_operations: operations,
                    },
                }
            })
            .collect();
        DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups,
        }
    }

    /// DeleteGroups: only empty groups; their offsets go with them (tombstones for every
    /// offset and for the group come out of [`Coordinator::take_records`]).
    pub fn delete_groups(&mut self, req: &DeleteGroupsRequest) -> DeleteGroupsResponse {
        let results = req
            .groups_names
            .iter()
            .map(|id| DeletableGroupResult {
                group_id: id.clone(),
                error_code: self.delete_group(id).0,
            })
            .collect();
        DeleteGroupsResponse {
            throttle_time_ms: 0,
            results,
        }
    }

    fn delete_group(&mut self, group_id: &str) -> ErrorCode {
        if self.loading {
            return ErrorCode::COORDINATOR_LOAD_IN_PROGRESS;
        }
        match self.groups.get(group_id).map(|g| g.state) {
            None | Some(GroupState::Dead) => return ErrorCode::GROUP_ID_NOT_FOUND,
            Some(GroupState::Empty) => {}
            Some(_) => return ErrorCode::NON_EMPTY_GROUP,
        }
        let Some(group) = self.groups.remove(group_id) else {
            return ErrorCode::GROUP_ID_NOT_FOUND;
        };
        for (topic, partition) in group.offsets.into_keys() {
            self.fx.records.push(GroupRecord::OffsetCommit {
                group_id: group_id.to_owned(),
                topic,
                partition,
                value: None,
            });
        }
        self.fx.records.push(GroupRecord::GroupMetadata {
            group_id: group_id.to_owned(),
            value: None,
        });
        ErrorCode::NONE
    }
}

fn describe(group: &Group, authorized_operations: i32) -> DescribedGroup {
    let stable = group.state == GroupState::Stable;
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let members = group
        .members
        .values()
        .map(|m| DescribedGroupMember {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            member_metadata: if stable {
                m.metadata_for(&protocol)
            } else {
                Bytes::new()
            },
            member_assignment: if stable {
                m.assignment.clone()
            } else {
                Bytes::new()
            },
        })
        .collect();
    DescribedGroup {
        error_code: 0,
        group_id: group.group_id.clone(),
        group_state: group.state.as_str().to_owned(),
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol_data: if stable { protocol } else { String::new() },
        members,
        authorized_operations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::testkit::*;
    use crate::protocol::leave_group::LeaveGroupRequest;

    const T0: i64 = 1_000_000;

    fn describe_one(c: &Coordinator, id: &str) -> DescribedGroup {
        let req = DescribeGroupsRequest {
            groups: vec![id.into()],
            include_authorized_operations: false,
        };
        c.describe_groups(&req).groups.remove(0)
    }

    #[test]
    fn list_and_describe_show_the_group() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None, Some("host-b")]);
        c.commit_offsets(T0 + 4_000, &commit_req(&ids[0], generation, 0, 5));
        let d = describe_one(&c, GROUP);
        assert_eq!(
            (
                d.group_state.as_str(),
                d.protocol_data.as_str(),
                d.members.len()
            ),
            ("Stable", "range", 2)
        );
        assert_eq!(&d.members[0].member_assignment[..], b"a-0");
        assert_eq!(
            d.members
                .iter()
                .filter(|m| m.group_instance_id.as_deref() == Some("host-b"))
                .count(),
            1
        );
        let unknown = describe_one(&c, "nope");
        assert_eq!(
            (unknown.error_code, unknown.group_state.as_str()),
            (0, "Dead")
        );

        let all = c.list_groups(&ListGroupsRequest::default());
        assert_eq!(all.groups.len(), 1);
        assert_eq!(
            (
                all.groups[0].protocol_type.as_str(),
                all.groups[0].group_type.as_str()
            ),
            ("consumer", "classic")
        );
        let filter = |states: &[&str], types: &[&str]| ListGroupsRequest {
            states_filter: states.iter().map(|s| (*s).to_owned()).collect(),
            types_filter: types.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert_eq!(c.list_groups(&filter(&["stable"], &[])).groups.len(), 1);
        assert_eq!(c.list_groups(&filter(&["Empty"], &[])).groups.len(), 0);
        assert_eq!(c.list_groups(&filter(&[], &["consumer"])).groups.len(), 0);
    }

    #[test]
    fn delete_groups_takes_only_empty_groups_and_leaves_tombstones() {
        let mut c = Coordinator::new(config());
        let (ids, generation) = stable_group(&mut c, T0, &[None, Some("host-b")]);
        c.commit_offsets(T0 + 4_000, &commit_req(&ids[0], generation, 0, 5));
        let delete = DeleteGroupsRequest {
            groups_names: vec![GROUP.into(), "nope".into()],
        };
        let codes: Vec<i16> = c
            .delete_groups(&delete)
            .results
            .iter()
            .map(|r| r.error_code)
            .collect();
        assert_eq!(
            codes,
            vec![
                ErrorCode::NON_EMPTY_GROUP.0,
                ErrorCode::GROUP_ID_NOT_FOUND.0
            ]
        );

        for id in &ids {
            let leave = LeaveGroupRequest {
                group_id: GROUP.into(),
                member_id: id.clone(),
                members: Vec::new(),
            };
            assert_eq!(c.leave(T0 + 5_000, 0, &leave).error_code, 0);
        }
        assert_eq!(describe_one(&c, GROUP).group_state, "Empty");
        c.take_records();
        let codes: Vec<i16> = c
            .delete_groups(&delete)
            .results
            .iter()
            .map(|r| r.error_code)
            .collect();
        assert_eq!(codes, vec![0, ErrorCode::GROUP_ID_NOT_FOUND.0]);
        let tombstones = c.take_records();
        assert_eq!(tombstones.len(), 2, "one offset and the group");
        assert!(tombstones.iter().all(|r| r.value_bytes().is_none()));
        assert!(c
            .list_groups(&ListGroupsRequest::default())
            .groups
            .is_empty());
        // Replaying everything the group ever wrote, tombstones last, leaves nothing.
        assert!(crate::groups::replay(tombstones).is_empty());
    }

    #[test]
    fn describe_hides_metadata_while_rebalancing_and_reports_operations() {
        let mut c = Coordinator::new(config());
        let (ids, _) = stable_group(&mut c, T0, &[None, None]);
        pending(c.join(T0 + 4_000, VERSION, &client("c0"), &join_req(&ids[0], None)));
        let req = DescribeGroupsRequest {
            groups: vec![GROUP.into()],
            include_authorized_operations: true,
        };
        let d = c.describe_groups(&req).groups.remove(0);
        assert_eq!(d.group_state, "PreparingRebalance");
        assert!(d.protocol_data.is_empty());
        assert!(d
            .members
            .iter()
            .all(|m| m.member_assignment.is_empty() && m.member_metadata.is_empty()));
        assert_eq!(d.authorized_operations, GROUP_AUTHORIZED_OPERATIONS);
    }
}
