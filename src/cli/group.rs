//! `ringmq group list|describe|delete|reset-offsets`, and the group-offset helpers that
//! `consume --group` shares.
//!
//! Group requests other than ListGroups go to the group's coordinator, found with
//! FindCoordinator (on single-node ringmq that is the bootstrap broker itself; if the
//! advertised address cannot be reached, the bootstrap connection is tried).
//!
//! `reset-offsets` is a dry run that prints the plan unless `--execute` is given; it commits
//! as a "simple" consumer (generation −1, no member id), which Kafka and ringmq accept only
//! while the group has no members, so it refuses up front when the group is active.

use super::admin::require_topic;
use super::consume::{start_offsets, StartAt};
use super::output::{Json, Table};
use super::time::parse_datetime_ms;
use super::{check_code, connect, emit, error_name, CliError, ConnArgs};
use crate::client::conn::Connection;
use crate::protocol::delete_groups::DeleteGroupsRequest;
use crate::protocol::describe_groups::{DescribeGroupsRequest, DescribedGroup};
use crate::protocol::find_coordinator::{FindCoordinatorRequest, KEY_TYPE_GROUP};
use crate::protocol::list_groups::ListGroupsRequest;
use crate::protocol::list_offsets::LATEST_TIMESTAMP;
use crate::protocol::offset_commit::{
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic,
};
use crate::protocol::offset_fetch::{OffsetFetchGroup, OffsetFetchRequest, OffsetFetchTopic};
use crate::protocol::{ErrorCode, Reader};
use bytes::Bytes;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;

/// `ringmq group ...`
#[derive(Subcommand, Debug, Clone)]
pub enum GroupCommand {
    /// List consumer groups and their states.
    List(ConnArgs),
    /// State, members, committed offsets and lag of a group.
    Describe(GroupNameArgs),
    /// Delete groups (they must have no members).
    Delete(GroupDeleteArgs),
    /// Move a group's committed offsets (a dry run unless --execute).
    ResetOffsets(ResetOffsetsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GroupNameArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Group id.
    pub group: String,
}

#[derive(Args, Debug, Clone)]
pub struct GroupDeleteArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Group ids.
    #[arg(required = true)]
    pub groups: Vec<String>,
}

#[derive(Args, Debug, Clone)]
#[group(id = "target", required = true, multiple = false)]
pub struct ResetOffsetsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Group id.
    pub group: String,
    /// Topic whose offsets to move (default: every topic the group has offsets for).
    #[arg(short, long)]
    pub topic: Option<String>,
    /// To each partition's first offset.
    #[arg(long, group = "target")]
    pub to_earliest: bool,
    /// To each partition's end.
    #[arg(long, group = "target")]
    pub to_latest: bool,
    /// To this offset (clamped to each partition's range).
    #[arg(long, group = "target", value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// To the first record at or after this UTC date-time (e.g. 2024-05-01T12:00:00Z).
    #[arg(long, group = "target", value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// Commit the new offsets (otherwise only print them).
    #[arg(long)]
    pub execute: bool,
}

/// Run one `group` subcommand.
pub async fn run_group(cmd: GroupCommand) -> Result<(), CliError> {
    match cmd {
        GroupCommand::List(a) => list(a).await,
        GroupCommand::Describe(a) => describe(a).await,
        GroupCommand::Delete(a) => delete(a).await,
        GroupCommand::ResetOffsets(a) => reset_offsets(a).await,
    }
}

/// A connection to `group`'s coordinator.
pub async fn coordinator(
    conn: &mut Connection,
    bootstrap: &str,
    group: &str,
) -> Result<Connection, CliError> {
    let req = FindCoordinatorRequest {
        key: group.to_string(),
        key_type: KEY_TYPE_GROUP,
        coordinator_keys: vec![group.to_string()],
    };
    let resp = conn.call(&req).await?;
    let (code, message, host, port) = match resp.coordinators.first() {
        Some(c) => (
            c.error_code,
            c.error_message.clone(),
            c.host.clone(),
            c.port,
        ),
        None => (resp.error_code, resp.error_message, resp.host, resp.port),
    };
    check_code(
        &format!("find the coordinator of group '{group}'"),
        code,
        message.as_deref(),
    )?;
    match connect(&format!("{host}:{port}")).await {
        Ok(c) => Ok(c),
        Err(_) => connect(bootstrap).await,
    }
}

/// Committed offsets of `group` for `topic` (partitions without a commit are absent).
pub async fn committed_offsets(
    conn: &mut Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, CliError> {
    let topics = Some(vec![OffsetFetchTopic {
        name: topic.to_string(),
        partition_indexes: partitions.to_vec(),
    }]);
    let all = fetch_offsets(conn, group, topics).await?;
    Ok(all
        .into_iter()
        .filter(|((t, _), _)| t == topic)
        .map(|((_, p), o)| (p, o))
        .collect())
}

/// Committed offsets of `group`: all topics when `topics` is None.
async fn fetch_offsets(
    conn: &mut Connection,
    group: &str,
    topics: Option<Vec<OffsetFetchTopic>>,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    let req = OffsetFetchRequest {
        group_id: group.to_string(),
        topics: topics.clone(),
        groups: vec![OffsetFetchGroup {
            group_id: group.to_string(),
            member_id: None,
            member_epoch: -1,
            topics,
        }],
        require_stable: false,
    };
    let resp = conn.call(&req).await?;
    let what = format!("fetch offsets of group '{group}'");
    let (code, topics) = match resp.groups.into_iter().next() {
        Some(g) => (g.error_code, g.topics),
        None => (resp.error_code, resp.topics),
    };
    check_code(&what, code, None)?;
    let mut out = BTreeMap::new();
    for t in topics {
        for p in t.partitions {
            check_code(&what, p.error_code, None)?;
            if p.committed_offset >= 0 {
                out.insert((t.name.clone(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Commit `offsets` (partition, next offset) for `group` as a simple consumer.
pub async fn commit_offsets(
    conn: &mut Connection,
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> Result<(), CliError> {
    let req = OffsetCommitRequest {
        group_id: group.to_string(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitTopic {
            name: topic.to_string(),
            partitions: offsets
                .iter()
                .map(
                    |&(partition_index, committed_offset)| OffsetCommitPartition {
                        partition_index,
                        committed_offset,
                        committed_leader_epoch: -1,
                        commit_timestamp: -1,
                        committed_metadata: None,
                    },
                )
                .collect(),
        }],
    };
    let resp = conn.call(&req).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code == ErrorCode::UNKNOWN_MEMBER_ID.0
                || p.error_code == ErrorCode::ILLEGAL_GENERATION.0
            {
                return Err(CliError::Usage(format!(
                    "group '{group}' has active members, so its offsets cannot be committed from here; stop its consumers first"
                )));
            }
            let what = format!(
                "commit offsets of group '{group}' for {topic}-{}",
                p.partition_index
            );
            check_code(&what, p.error_code, None)?;
        }
    }
    Ok(())
}

async fn list(a: ConnArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.bootstrap).await?;
    let req = ListGroupsRequest {
        states_filter: Vec::new(),
        types_filter: Vec::new(),
    };
    let resp = conn.call(&req).await?;
    check_code("list groups", resp.error_code, None)?;
    let mut groups = resp.groups;
    groups.sort_by(|x, y| x.group_id.cmp(&y.group_id));
    let value = Json::Arr(
        groups
            .iter()
            .map(|g| {
                Json::obj([
                    ("group", Json::str(&g.group_id)),
                    ("state", Json::str(&g.group_state)),
                    ("protocol_type", Json::str(&g.protocol_type)),
                ])
            })
            .collect(),
    );
    emit(a.json, &value, || {
        let mut t = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
        for g in &groups {
            let state = if g.group_state.is_empty() {
                "-"
            } else {
                &g.group_state
            };
            t.row(vec![
                g.group_id.clone(),
                state.into(),
                g.protocol_type.clone(),
            ]);
        }
        t.render()
    });
    Ok(())
}

async fn describe_group(conn: &mut Connection, group: &str) -> Result<DescribedGroup, CliError> {
    let req = DescribeGroupsRequest {
        groups: vec![group.to_string()],
        include_authorized_operations: false,
    };
    let resp = conn.call(&req).await?;
    let g = resp
        .groups
        .into_iter()
        .find(|g| g.group_id == group)
        .ok_or_else(|| CliError::Client(format!("no answer for group '{group}'")))?;
    check_code(&format!("describe group '{group}'"), g.error_code, None)?;
    Ok(g)
}

/// The (topic, partition)s of a "consumer" protocol member assignment
/// (ConsumerProtocolAssignment: version, [topic, [partition]], user data). Untrusted bytes:
/// anything that does not decode is an empty assignment.
pub fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut r = Reader::new(Bytes::copy_from_slice(bytes));
    let decoded = r.i16("version").and_then(|_| {
        r.array(false, 6, "assigned_partitions", |r| {
            let topic = r.string(false, "topic")?;
            let partitions = r.array(false, 4, "partitions", |r| r.i32("partition"))?;
            Ok((topic, partitions))
        })
    });
    decoded
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(t, parts)| parts.into_iter().map(move |p| (t.clone(), p)))
        .collect()
}

/// (topic, partition, committed or -1, log end or -1, owning member or "-") rows of a group.
type LagRow = (String, i32, i64, i64, String);

async fn lag_rows(
    conn: &mut Connection,
    offsets: &BTreeMap<(String, i32), i64>,
    owners: &BTreeMap<(String, i32), String>,
) -> Result<Vec<LagRow>, CliError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in offsets.keys().chain(owners.keys()) {
        let parts = by_topic.entry(t).or_default();
        if !parts.contains(p) {
            parts.push(*p);
        }
    }
    let mut rows = Vec::new();
    for (topic, parts) in by_topic {
        let ends = match crate::client::list_offsets(conn, topic, &parts, LATEST_TIMESTAMP).await {
            Ok(ends) => ends,
            // A topic deleted since the commit: show its offsets without an end.
            Err(_) => vec![-1; parts.len()],
        };
        for (p, end) in parts.iter().zip(ends) {
            let key = (topic.to_string(), *p);
            let committed = offsets.get(&key).copied().unwrap_or(-1);
            let owner = owners.get(&key).cloned().unwrap_or_else(|| "-".into());
            rows.push((topic.to_string(), *p, committed, end, owner));
        }
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    }
    Ok(rows)
}

async fn describe(a: GroupNameArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.conn.bootstrap).await?;
    let mut gc = coordinator(&mut conn, &a.conn.bootstrap, &a.group).await?;
    let g = describe_group(&mut gc, &a.group).await?;
    let offsets = fetch_offsets(&mut gc, &a.group, None).await?;
    if g.group_state == "Dead" && offsets.is_empty() {
        return Err(CliError::NotFound(format!("group '{}'", a.group)));
    }
    let mut owners = BTreeMap::new();
    if g.protocol_type == "consumer" {
        for m in &g.members {
            for tp in decode_assignment(&m.member_assignment) {
                owners.insert(tp, m.member_id.clone());
            }
        }
    }
    let rows = lag_rows(&mut conn, &offsets, &owners).await?;
    let value = describe_json(&g, &rows);
    emit(a.conn.json, &value, || describe_text(&g, &rows));
    Ok(())
}

/// Records between the committed offset and the log end; -1 when either is unknown.
fn lag(committed: i64, end: i64) -> i64 {
    if end >= 0 && committed >= 0 {
        (end - committed).max(0)
    } else {
        -1
    }
}

fn describe_json(g: &DescribedGroup, rows: &[LagRow]) -> Json {
    let members = g.members.iter().map(|m| {
        Json::obj([
            ("member_id", Json::str(&m.member_id)),
            ("client_id", Json::str(&m.client_id)),
            ("host", Json::str(&m.client_host)),
        ])
    });
    let offsets = rows.iter().map(|(t, p, c, e, owner)| {
        Json::obj([
            ("topic", Json::str(t)),
            ("partition", Json::Int((*p).into())),
            ("committed_offset", Json::Int(*c)),
            ("log_end_offset", Json::Int(*e)),
            ("lag", Json::Int(lag(*c, *e))),
            ("member_id", Json::str(owner)),
        ])
    });
    Json::obj([
        ("group", Json::str(&g.group_id)),
        ("state", Json::str(&g.group_state)),
        ("protocol_type", Json::str(&g.protocol_type)),
        ("protocol", Json::str(&g.protocol_data)),
        ("members", Json::Arr(members.collect())),
        ("offsets", Json::Arr(offsets.collect())),
    ])
}

fn describe_text(g: &DescribedGroup, rows: &[LagRow]) -> String {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let dash = |v: i64| {
        if v < 0 {
            "-".to_string()
        } else {
            v.to_string()
        }
    };
    let mut out = format!(
        "group {}: state {}, {} member(s), protocol {}/{}\n\n",
        g.group_id,
        g.group_state,
        g.members.len(),
        or_dash(&g.protocol_type),
        or_dash(&g.protocol_data),
    );
    let mut t = Table::new(&[
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "LOG-END",
        "LAG",
        "MEMBER",
    ]);
    for (topic, p, c, e, owner) in rows {
        let cells = [dash(*c), dash(*e), dash(lag(*c, *e)), owner.clone()];
        let mut row = vec![topic.clone(), p.to_string()];
        row.extend(cells);
        t.row(row);
    }
    out.push_str(&t.render());
    if !g.members.is_empty() {
        out.push('\n');
        let mut t = Table::new(&["MEMBER", "CLIENT-ID", "HOST"]);
        for m in &g.members {
            t.row(vec![
                m.member_id.clone(),
                m.client_id.clone(),
                m.client_host.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

async fn delete(a: GroupDeleteArgs) -> Result<(), CliError> {
    let mut conn = connect(&a.conn.bootstrap).await?;
    for group in &a.groups {
        let mut gc = coordinator(&mut conn, &a.conn.bootstrap, group).await?;
        let resp = gc
            .call(&DeleteGroupsRequest {
                groups_names: vec![group.clone()],
            })
            .await?;
        for r in &resp.results {
            match ErrorCode(r.error_code) {
                ErrorCode::NONE => {}
                ErrorCode::GROUP_ID_NOT_FOUND => {
                    return Err(CliError::NotFound(format!("group '{}'", r.group_id)))
                }
                ErrorCode::NON_EMPTY_GROUP => {
                    return Err(CliError::Usage(format!(
                        "group '{}' still has members ({}); stop its consumers first",
                        r.group_id,
                        error_name(r.error_code)
                    )))
                }
                _ => check_code(
                    &format!("delete group '{}'", r.group_id),
                    r.error_code,
                    None,
                )?,
            }
        }
    }
    let value = Json::obj([(
        "deleted",
        Json::Arr(a.groups.iter().map(Json::str).collect()),
    )]);
    emit(a.conn.json, &value, || {
        a.groups
            .iter()
            .map(|g| format!("deleted group '{g}'\n"))
            .collect()
    });
    Ok(())
}

fn reset_target(a: &ResetOffsetsArgs) -> Result<StartAt, CliError> {
    Ok(match (&a.to_offset, &a.to_datetime) {
        (Some(o), _) => StartAt::Offset(*o),
        (None, Some(dt)) => StartAt::TimestampMs(
            parse_datetime_ms(dt).map_err(|e| CliError::Usage(format!("--to-datetime: {e}")))?,
        ),
        (None, None) if a.to_latest => StartAt::End,
        (None, None) if a.to_earliest => StartAt::Beginning,
        (None, None) => {
            return Err(CliError::Usage(
                "give one of --to-earliest, --to-latest, --to-offset or --to-datetime".into(),
            ))
        }
    })
}

/// (topic, partition, current committed or -1, new) rows of a reset plan.
type PlanRow = (String, i32, i64, i64);

async fn reset_offsets(a: ResetOffsetsArgs) -> Result<(), CliError> {
    let target = reset_target(&a)?;
    let mut conn = connect(&a.conn.bootstrap).await?;
    let mut gc = coordinator(&mut conn, &a.conn.bootstrap, &a.group).await?;
    let g = describe_group(&mut gc, &a.group).await?;
    if !g.members.is_empty() {
        return Err(CliError::Usage(format!(
            "group '{}' has {} active member(s) (state {}); stop its consumers before resetting offsets",
            a.group,
            g.members.len(),
            g.group_state
        )));
    }
    let current = fetch_offsets(&mut gc, &a.group, None).await?;
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    match &a.topic {
        Some(t) => {
            topics.insert(t.clone(), require_topic(&mut conn, t).await?);
        }
        None => {
            for (t, p) in current.keys() {
                topics.entry(t.clone()).or_default().push(*p);
            }
            if topics.is_empty() {
                return Err(CliError::Usage(format!(
                    "group '{}' has no committed offsets; name a topic with --topic",
                    a.group
                )));
            }
        }
    }
    let mut plan: Vec<PlanRow> = Vec::new();
    for (topic, parts) in &topics {
        let new = clamped_targets(&mut conn, topic, parts, target).await?;
        for (p, n) in parts.iter().zip(new) {
            let cur = current.get(&(topic.clone(), *p)).copied().unwrap_or(-1);
            plan.push((topic.clone(), *p, cur, n));
        }
    }
    if a.execute {
        for (topic, parts) in &topics {
            let offsets: Vec<(i32, i64)> = plan
                .iter()
                .filter(|r| &r.0 == topic && parts.contains(&r.1))
                .map(|r| (r.1, r.3))
                .collect();
            commit_offsets(&mut gc, &a.group, topic, &offsets).await?;
        }
    }
    print_plan(&a, &plan);
    Ok(())
}

/// The target offsets, clamped into each partition's [earliest, latest].
async fn clamped_targets(
    conn: &mut Connection,
    topic: &str,
    parts: &[i32],
    target: StartAt,
) -> Result<Vec<i64>, CliError> {
    let wanted = start_offsets(conn, topic, parts, target).await?;
    let earliest = start_offsets(conn, topic, parts, StartAt::Beginning).await?;
    let latest = start_offsets(conn, topic, parts, StartAt::End).await?;
    Ok(wanted
        .iter()
        .zip(earliest.iter().zip(&latest))
        .map(|(&w, (&e, &l))| w.clamp(e, l.max(e)))
        .collect())
}

fn print_plan(a: &ResetOffsetsArgs, plan: &[PlanRow]) {
    let value = Json::obj([
        ("group", Json::str(&a.group)),
        ("executed", Json::Bool(a.execute)),
        (
            "offsets",
            Json::Arr(
                plan.iter()
                    .map(|(t, p, cur, new)| {
                        Json::obj([
                            ("topic", Json::str(t)),
                            ("partition", Json::Int((*p).into())),
                            ("current_offset", Json::Int(*cur)),
                            ("new_offset", Json::Int(*new)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ]);
    emit(a.conn.json, &value, || {
        let mut t = Table::new(&["TOPIC", "PARTITION", "CURRENT", "NEW"]);
        for (topic, p, cur, new) in plan {
            let cur = if *cur < 0 {
                "-".to_string()
            } else {
                cur.to_string()
            };
            t.row(vec![topic.clone(), p.to_string(), cur, new.to_string()]);
        }
        let mut out = t.render();
        if a.execute {
            out.push_str(&format!(
                "\ncommitted new offsets for group '{}'\n",
                a.group
            ));
        } else {
            out.push_str("\ndry run: nothing changed; add --execute to commit these offsets\n");
        }
        out
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: GroupCommand,
    }

    fn reset_args(args: &[&str]) -> Result<ResetOffsetsArgs, String> {
        let mut argv = vec!["x", "reset-offsets", "g"];
        argv.extend_from_slice(args);
        match Wrap::try_parse_from(argv).map_err(|e| e.to_string())?.cmd {
            GroupCommand::ResetOffsets(a) => Ok(a),
            _ => Err("wrong command".into()),
        }
    }

    #[test]
    fn consumer_assignments_decode_and_garbage_is_empty() {
        let mut w = crate::protocol::Writer::new();
        w.i16(3);
        w.i32(2);
        w.string("a", false);
        w.i32(2);
        w.i32(0);
        w.i32(5);
        w.string("b", false);
        w.i32(1);
        w.i32(7);
        w.i32(-1); // null user data
        let bytes = w.finish_contiguous();
        assert_eq!(
            decode_assignment(&bytes),
            vec![("a".into(), 0), ("a".into(), 5), ("b".into(), 7)]
        );
        assert!(decode_assignment(&bytes[..9]).is_empty());
        assert!(decode_assignment(&[0xff; 3]).is_empty());
        assert!(decode_assignment(&[]).is_empty());
    }

    #[test]
    fn reset_needs_exactly_one_target() {
        assert!(reset_args(&[]).is_err());
        assert!(reset_args(&["--to-earliest", "--to-latest"]).is_err());
        let a = reset_args(&["--to-offset", "5"]).unwrap();
        assert_eq!(reset_target(&a).unwrap(), StartAt::Offset(5));
        let a = reset_args(&["--to-datetime", "1970-01-01T00:00:02Z"]).unwrap();
        assert_eq!(reset_target(&a).unwrap(), StartAt::TimestampMs(2000));
        let a = reset_args(&["--to-datetime", "soon"]).unwrap();
        assert!(reset_target(&a).is_err());
        let a = reset_args(&["--to-latest", "--execute"]).unwrap();
        assert!(a.execute);
        assert_eq!(reset_target(&a).unwrap(), StartAt::End);
    }
}
