//! Group requests as they travel to the shard that owns the group (see `router`), and their
//! answers. Owned and `Send`: decoded protocol structs.

use super::ClientInfo;
use crate::protocol::{
    delete_groups::*, describe_groups::*, heartbeat::*, join_group::*, leave_group::*,
    list_groups::*, offset_commit::*, offset_delete::*, offset_fetch::*, sync_group::*, ErrorCode,
};

#[derive(Debug)]
pub enum GroupCall {
    Join {
        version: i16,
        client: ClientInfo,
        req: JoinGroupRequest,
    },
    Sync {
        req: SyncGroupRequest,
    },
    Heartbeat {
        req: HeartbeatRequest,
    },
    Leave {
        version: i16,
        req: LeaveGroupRequest,
    },
    Commit {
        req: OffsetCommitRequest,
    },
    Fetch {
        version: i16,
        req: OffsetFetchRequest,
    },
    DeleteOffsets {
        req: OffsetDeleteRequest,
    },
    List {
        req: ListGroupsRequest,
    },
    Describe {
        req: DescribeGroupsRequest,
    },
    Delete {
        req: DeleteGroupsRequest,
    },
}

#[derive(Debug)]
pub enum GroupAnswer {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    Commit(OffsetCommitResponse),
    Fetch(OffsetFetchResponse),
    DeleteOffsets(OffsetDeleteResponse),
    List(ListGroupsResponse),
    Describe(DescribeGroupsResponse),
    Delete(DeleteGroupsResponse),
}

impl GroupCall {
    /// The group the call is about, for the single-group calls (the multi-group ones,
    /// List, Describe, Delete and batched Fetch, are split by group before routing).
    pub fn group_id(&self) -> Option<&str> {
        match self {
            GroupCall::Join { req, .. } => Some(&req.group_id),
            GroupCall::Sync { req } => Some(&req.group_id),
            GroupCall::Heartbeat { req } => Some(&req.group_id),
            GroupCall::Leave { req, .. } => Some(&req.group_id),
            GroupCall::Commit { req } => Some(&req.group_id),
            GroupCall::DeleteOffsets { req } => Some(&req.group_id),
            _ => None,
        }
    }

    /// The answer `code` (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) for a single-group
    /// call (and OffsetFetch, every group of it), without asking a coordinator; `None` for
    /// the other multi-group calls.
    pub fn refuse(&self, code: crate::protocol::ErrorCode) -> Option<GroupAnswer> {
        Some(match self {
            GroupCall::Join { req, .. } => {
                GroupAnswer::Join(super::group::join_error(code, &req.member_id))
            }
            GroupCall::Sync { .. } => GroupAnswer::Sync(super::coordinator::sync_error(code)),
            GroupCall::Heartbeat { .. } => GroupAnswer::Heartbeat(HeartbeatResponse {
                throttle_time_ms: 0,
                error_code: code.0,
            }),
            GroupCall::Leave { .. } => GroupAnswer::Leave(LeaveGroupResponse {
                throttle_time_ms: 0,
                error_code: code.0,
                members: Vec::new(),
            }),
            GroupCall::Commit { req } => {
                GroupAnswer::Commit(super::offsets::commit_response(req, |_, _| code))
            }
            GroupCall::DeleteOffsets { .. } => GroupAnswer::DeleteOffsets(OffsetDeleteResponse {
                error_code: code.0,
                throttle_time_ms: 0,
                topics: Vec::new(),
            }),
            GroupCall::Fetch { version, req } => {
                let groups = req.groups(*version);
                let refused = groups.iter().map(|g| refused_fetch(g, *version, code));
                GroupAnswer::Fetch(OffsetFetchResponse::for_groups(*version, refused.collect()))
            }
            _ => return None,
        })
    }
}

/// OffsetFetch's answer for a group this node does not coordinate, as Kafka gives it: the
/// group's error `code` and no topics; v1 has no group-level error, so there every partition
/// asked for carries it (offset -1, no metadata).
pub fn refused_fetch(
    asked: &OffsetFetchGroup,
    version: i16,
    code: ErrorCode,
) -> OffsetFetchGroupResponse {
    let topics = asked.topics.iter().flatten().filter(|_| version < 2);
    let topics = topics.map(|t| OffsetFetchTopicResponse {
        name: t.name.clone(),
        partitions: t
            .partition_indexes
            .iter()
            .map(|&partition_index| OffsetFetchPartitionResponse {
                partition_index,
                committed_offset: -1,
                committed_leader_epoch: -1,
                metadata: Some(String::new()),
                error_code: code.0,
            })
            .collect(),
    });
    OffsetFetchGroupResponse {
        group_id: asked.group_id.clone(),
        topics: topics.collect(),
        error_code: code.0,
    }
}

/// Why a call's group-log records were not persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpersisted {
    /// The records were larger than the group log's max.message.bytes.
    TooLarge,
    /// The append or its fdatasync failed.
    Failed,
}

impl GroupAnswer {
    /// A commit whose records did not reach the group log is not acknowledged: every
    /// partition it would have answered NONE gets INVALID_COMMIT_OFFSET_SIZE (records larger
    /// than max.message.bytes, as Kafka answers) or COORDINATOR_NOT_AVAILABLE (the client
    /// retries). The offsets stay in the coordinator's memory until the next start. Other
    /// answers are unchanged (their records are group generations, rewritten on the next
    /// rebalance).
    pub fn not_persisted(self, why: Unpersisted) -> GroupAnswer {
        let code = match why {
            Unpersisted::TooLarge => ErrorCode::INVALID_COMMIT_OFFSET_SIZE,
            Unpersisted::Failed => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        };
        match self {
            GroupAnswer::Commit(mut resp) => {
                for p in resp.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    if p.error_code == 0 {
                        p.error_code = code.0;
                    }
                }
                GroupAnswer::Commit(resp)
            }
            other => other,
        }
    }
}
