//! Group requests as they travel to the shard that owns the group (see `router`), and their
//! answers. Owned and `Send`: decoded protocol structs.

use super::ClientInfo;
use crate::protocol::{
    delete_groups::*, describe_groups::*, heartbeat::*, join_group::*, leave_group::*,
    list_groups::*, offset_commit::*, offset_delete::*, offset_fetch::*, sync_group::*,
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
