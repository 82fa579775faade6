//! `ringmq consume TOPIC`: fetch records and print them, kcat-style.
//!
//! Start positions (`--from`): `beginning`, `end`, an offset `N`, `-N` (N before the end,
//! clamped to the start), `@MS` (first record at or after a Unix-milliseconds timestamp) or a
//! date-time (`2024-05-01T12:00:00Z`). With `--group G` a partition starts at G's committed
//! offset when it has one (`--from` covers the rest), and the position reached is committed
//! after every fetch as a "simple" consumer (generation −1); the group must have no active
//! members (an active group answers UNKNOWN_MEMBER_ID).
//!
//! A position below the log start (removed by retention since) moves to the log start, as a
//! Kafka consumer with `auto.offset.reset=earliest` would; one past the end is an error.
//!
//! Stops after `--count` records, at the end of every partition with `--exit`, or never.
//! Output is `--format` (default `%s\n`) or, with `--json`, one JSON object per record.
//! Compressed batches are inflated through [`crate::records`] (their headers are not shown);
//! control batches are skipped. A closed stdout (`| head`) ends the command quietly.

use super::admin::require_topic;
use super::group::{commit_offsets, committed_offsets, coordinator};
use super::output::{json_bytes, Json};
use super::time::parse_datetime_ms;
use super::{check_code, connect, CliError, ConnArgs};
use crate::client::batch::split_batches;
use crate::client::conn::Connection;
use crate::model::BatchHeader;
use crate::protocol::fetch::{FetchPartition, FetchRequest, FetchTopic};
use crate::protocol::list_offsets::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::protocol::ErrorCode;
use clap::Args;
use std::io::Write;

/// How long a fetch waits for data.
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Bytes per fetch response and per partition.
const FETCH_MAX_BYTES: i32 = 16 << 20;
const PARTITION_MAX_BYTES: i32 = 4 << 20;

#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to read.
    pub topic: String,
    /// Partitions to read (repeatable; default: all).
    #[arg(short, long = "partition")]
    pub partitions: Vec<i32>,
    /// Start: beginning, end, OFFSET, -N (N before the end), @UNIX_MS or a date-time.
    #[arg(
        short,
        long,
        default_value = "beginning",
        allow_hyphen_values = true,
        value_name = "WHERE"
    )]
    pub from: String,
    /// Consumer group whose committed offsets to start from and commit to.
    #[arg(short, long)]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(short, long)]
    pub count: Option<u64>,
    /// Stop once every partition's end (as of each fetch) is reached.
    #[arg(short, long)]
    pub exit: bool,
    /// Output format: %t topic, %p partition, %o offset, %T timestamp (ms), %k key, %s value,
    /// %h headers, %K/%S key/value length, %% and \n \t \\ escapes.
    #[arg(long, default_value = "%s\\n")]
    pub format: String,
}

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
    Offset(i64),
    FromEnd(i64),
    TimestampMs(i64),
}

impl StartAt {
    pub fn parse(s: &str) -> Result<StartAt, CliError> {
        match s {
            "beginning" | "earliest" => return Ok(StartAt::Beginning),
            "end" | "latest" => return Ok(StartAt::End),
            _ => {}
        }
        if let Some(ms) = s.strip_prefix('@') {
            return ms
                .parse()
                .map(StartAt::TimestampMs)
                .map_err(|_| CliError::Usage(format!("--from {s}: '{ms}' is not milliseconds")));
        }
        if let Ok(n) = s.parse::<i64>() {
            return Ok(if n < 0 {
                StartAt::FromEnd(-n)
            } else {
                StartAt::Offset(n)
            });
        }
        parse_datetime_ms(s).map(StartAt::TimestampMs).map_err(|e| {
            CliError::Usage(format!(
                "--from {s}: not beginning, end, an offset, @ms or a date-time ({e})"
            ))
        })
    }
}

/// One record, decoded, for formatting.
pub struct Rec<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Render `rec` with a kcat-like format string.
pub fn format_record(format: &str, rec: &Rec<'_>, out: &mut Vec<u8>) {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.extend_from_slice(rec.topic.as_bytes()),
                Some('p') => out.extend_from_slice(rec.partition.to_string().as_bytes()),
                Some('o') => out.extend_from_slice(rec.offset.to_string().as_bytes()),
                Some('T') => out.extend_from_slice(rec.timestamp_ms.to_string().as_bytes()),
                Some('k') => out.extend_from_slice(rec.key.unwrap_or_default()),
                Some('s') => out.extend_from_slice(rec.value.unwrap_or_default()),
                Some('K') => push_len(out, rec.key),
                Some('S') => push_len(out, rec.value),
                Some('h') => {
                    for (i, (k, v)) in rec.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(k);
                        out.push(b'=');
                        out.extend_from_slice(v.unwrap_or_default());
                    }
                }
                Some('%') => out.push(b'%'),
                Some(other) => {
                    out.push(b'%');
                    push_char(out, other);
                }
                None => out.push(b'%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('\\') => out.push(b'\\'),
                Some(other) => {
                    out.push(b'\\');
                    push_char(out, other);
                }
                None => out.push(b'\\'),
            },
            c => push_char(out, c),
        }
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn push_len(out: &mut Vec<u8>, b: Option<&[u8]>) {
    let len = b.map_or(-1, |b| b.len() as i64);
    out.extend_from_slice(len.to_string().as_bytes());
}

fn record_json(rec: &Rec<'_>) -> Json {
    Json::obj([
        ("topic", Json::str(rec.topic)),
        ("partition", Json::Int(rec.partition.into())),
        ("offset", Json::Int(rec.offset)),
        ("timestamp", Json::Int(rec.timestamp_ms)),
        ("key", json_bytes(rec.key)),
        ("value", json_bytes(rec.value)),
        (
            "headers",
            Json::Obj(
                rec.headers
                    .iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), json_bytes(*v)))
                    .collect(),
            ),
        ),
    ])
}

/// Offsets to start each of `partitions` at.
pub async fn start_offsets(
    conn: &mut Connection,
    topic: &str,
    partitions: &[i32],
    at: StartAt,
) -> Result<Vec<i64>, CliError> {
    let list = crate::client::list_offsets;
    Ok(match at {
        StartAt::Beginning => list(conn, topic, partitions, EARLIEST_TIMESTAMP).await?,
        StartAt::End => list(conn, topic, partitions, LATEST_TIMESTAMP).await?,
        StartAt::Offset(n) => vec![n; partitions.len()],
        StartAt::FromEnd(n) => {
            let earliest = list(conn, topic, partitions, EARLIEST_TIMESTAMP).await?;
            let latest = list(conn, topic, partitions, LATEST_TIMESTAMP).await?;
            earliest
                .iter()
                .zip(&latest)
                .map(|(&e, &l)| l.saturating_sub(n).max(e))
                .collect()
        }
        StartAt::TimestampMs(ms) => {
            // A timestamp after the last record answers offset -1: start at the end.
            let at = list(conn, topic, partitions, ms).await?;
            let latest = list(conn, topic, partitions, LATEST_TIMESTAMP).await?;
            at.iter()
                .zip(&latest)
                .map(|(&o, &l)| if o < 0 { l } else { o })
                .collect()
        }
    })
}

struct Position {
    partition: i32,
    next_offset: i64,
    high_watermark: i64,
}

/// The partitions to read and where each starts; with `--group`, also the connection to
/// the group's coordinator.
async fn initial_positions(
    conn: &mut Connection,
    a: &ConsumeArgs,
) -> Result<(Vec<Position>, Option<Connection>), CliError> {
    let at = StartAt::parse(&a.from)?;
    let all = require_topic(conn, &a.topic).await?;
    if let Some(p) = a.partitions.iter().find(|p| !all.contains(p)) {
        let what = format!("partition {p} of topic '{}'", a.topic);
        return Err(CliError::NotFound(what));
    }
    let partitions = if a.partitions.is_empty() {
        all
    } else {
        a.partitions.clone()
    };
    let mut offsets = start_offsets(conn, &a.topic, &partitions, at).await?;
    let mut group_conn = None;
    if let Some(g) = &a.group {
        let mut gc = coordinator(conn, &a.conn.bootstrap, g).await?;
        let committed = committed_offsets(&mut gc, g, &a.topic, &partitions).await?;
        for (p, o) in partitions.iter().zip(offsets.iter_mut()) {
            if let Some(&c) = committed.get(p) {
                *o = c;
            }
        }
        group_conn = Some(gc);
    }
    let positions = partitions
        .iter()
        .zip(&offsets)
        .map(|(&partition, &next_offset)| Position {
            partition,
            next_offset,
            high_watermark: i64::MAX,
        })
        .collect();
    Ok((positions, group_conn))
}

/// Run `ringmq consume`.
pub async fn run(a: ConsumeArgs) -> Result<(), CliError> {
    // Parse --from before connecting, so a bad value is reported even with no broker.
    StartAt::parse(&a.from)?;
    let mut conn = connect(&a.conn.bootstrap).await?;
    let (mut positions, mut group_conn) = initial_positions(&mut conn, &a).await?;
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut buf = Vec::new();
    loop {
        if a.count.is_some_and(|c| printed >= c) {
            break;
        }
        if a.exit && positions.iter().all(|p| p.next_offset >= p.high_watermark) {
            break;
        }
        let resp = conn.call(&fetch_request(&a.topic, &positions)).await?;
        check_code("fetch", resp.error_code, None)?;
        buf.clear();
        for t in &resp.responses {
            for pd in &t.partitions {
                let Some(pos) = positions
                    .iter_mut()
                    .find(|p| p.partition == pd.partition_index)
                else {
                    continue;
                };
                let what = format!(
                    "fetch {}-{} at offset {}",
                    a.topic, pos.partition, pos.next_offset
                );
                if pd.error_code == ErrorCode::OFFSET_OUT_OF_RANGE.0 {
                    let start =
                        start_offsets(&mut conn, &a.topic, &[pos.partition], StartAt::Beginning)
                            .await?;
                    if start.first().is_some_and(|&s| pos.next_offset < s) {
                        // Retention removed what we asked for: go on from the log start.
                        pos.next_offset = start[0];
                        continue;
                    }
                }
                check_code(&what, pd.error_code, None)?;
                pos.high_watermark = pd.high_watermark;
                let data: Vec<u8> = pd.records.iter().flat_map(|c| c.iter().copied()).collect();
                let left = a.count.map(|c| c - printed);
                printed += print_batches(&a, pos, &data, left, &mut buf)?;
            }
        }
        match out.write_all(&buf).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(CliError::Io(format!("writing stdout failed: {e}"))),
        }
        if let (Some(g), Some(gc)) = (&a.group, group_conn.as_mut()) {
            let done: Vec<(i32, i64)> = positions
                .iter()
                .map(|p| (p.partition, p.next_offset))
                .collect();
            commit_offsets(gc, g, &a.topic, &done).await?;
        }
    }
    Ok(())
}

fn fetch_request(topic: &str, positions: &[Position]) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: FETCH_MAX_WAIT_MS,
        min_bytes: 1,
        max_bytes: FETCH_MAX_BYTES,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: positions
                .iter()
                .map(|p| FetchPartition {
                    partition: p.partition,
                    current_leader_epoch: -1,
                    fetch_offset: p.next_offset,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: PARTITION_MAX_BYTES,
                })
                .collect(),
        }],
        forgotten_topics_data: Vec::new(),
        rack_id: String::new(),
    }
}

/// Format the records of `data` at or after `pos.next_offset` (at most `left`) into `buf`;
/// returns how many were printed and advances `pos`.
fn print_batches(
    a: &ConsumeArgs,
    pos: &mut Position,
    data: &[u8],
    left: Option<u64>,
    buf: &mut Vec<u8>,
) -> Result<u64, CliError> {
    let mut printed = 0u64;
    for batch in split_batches(data) {
        let Ok(h) = BatchHeader::parse(batch) else {
            break;
        };
        let bad = |e: String| {
            CliError::Client(format!(
                "batch at offset {} of {}-{} is unreadable: {e}",
                h.base_offset(),
                a.topic,
                pos.partition
            ))
        };
        if h.is_control() {
            pos.next_offset = pos.next_offset.max(h.last_offset() + 1);
            continue;
        }
        let records = decode_batch(batch, &h).map_err(bad)?;
        for (offset, timestamp_ms, key, value, headers) in &records {
            if *offset < pos.next_offset {
                continue;
            }
            if left.is_some_and(|l| printed >= l) {
                return Ok(printed);
            }
            let rec = Rec {
                topic: &a.topic,
                partition: pos.partition,
                offset: *offset,
                timestamp_ms: *timestamp_ms,
                key: key.as_deref(),
                value: value.as_deref(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (&k[..], v.as_deref()))
                    .collect(),
            };
            if a.conn.json {
                buf.extend_from_slice(record_json(&rec).render().as_bytes());
                buf.push(b'\n');
            } else {
                format_record(&a.format, &rec, buf);
            }
            printed += 1;
            pos.next_offset = offset + 1;
        }
        pos.next_offset = pos.next_offset.max(h.last_offset() + 1);
    }
    Ok(printed)
}

type OwnedHeader = (Vec<u8>, Option<Vec<u8>>);
type OwnedRecord = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<OwnedHeader>);

/// (offset, timestamp, key, value, headers) of every record of one batch.
fn decode_batch(batch: &[u8], h: &BatchHeader<'_>) -> Result<Vec<OwnedRecord>, String> {
    let ts = |delta: i64| {
        if h.is_log_append_time() {
            h.max_timestamp()
        } else {
            h.base_timestamp() + delta
        }
    };
    if h.compression() != 0 {
        let times = crate::records::record_timestamps(batch).map_err(|e| format!("{e:?}"))?;
        let kvs = crate::records::record_key_values(batch).map_err(|e| format!("{e:?}"))?;
        return Ok(times
            .into_iter()
            .zip(kvs)
            .map(|((o, t), (k, v))| (o, t, k, v, Vec::new()))
            .collect());
    }
    let mut out = Vec::new();
    for r in crate::client::batch::records(batch).map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        let headers = r
            .headers()
            .map(|h| h.map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        out.push((
            h.base_offset() + i64::from(r.offset_delta),
            ts(r.timestamp_delta_ms),
            r.key.map(<[u8]>::to_vec),
            r.value.map(<[u8]>::to_vec),
            headers,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Rec<'static> {
        Rec {
            topic: "t",
            partition: 2,
            offset: 41,
            timestamp_ms: 1_000,
            key: Some(b"k"),
            value: Some(b"v\xff"),
            headers: vec![(b"a", Some(b"1")), (b"b", None)],
        }
    }

    #[test]
    fn format_string_expands_kcat_fields() {
        let mut out = Vec::new();
        format_record(
            "%t/%p@%o %T %k=%s [%h] %K,%S 100%% %x\\t\\n",
            &rec(),
            &mut out,
        );
        assert_eq!(
            out,
            b"t/2@41 1000 k=v\xff [a=1,b=] 1,2 100% %x\t\n".to_vec()
        );
    }

    #[test]
    fn json_record_carries_every_field() {
        let j = record_json(&rec()).render();
        assert_eq!(
            j,
            r#"{"topic":"t","partition":2,"offset":41,"timestamp":1000,"key":"k","value":"v\u{fffd}","headers":{"a":"1","b":null}}"#
                .replace("\\u{fffd}", "\u{fffd}")
        );
    }

    #[test]
    fn start_positions_parse() {
        assert_eq!(StartAt::parse("beginning").unwrap(), StartAt::Beginning);
        assert_eq!(StartAt::parse("end").unwrap(), StartAt::End);
        assert_eq!(StartAt::parse("42").unwrap(), StartAt::Offset(42));
        assert_eq!(StartAt::parse("-5").unwrap(), StartAt::FromEnd(5));
        assert_eq!(StartAt::parse("@1000").unwrap(), StartAt::TimestampMs(1000));
        assert_eq!(
            StartAt::parse("1970-01-01T00:00:01Z").unwrap(),
            StartAt::TimestampMs(1000)
        );
        assert!(StartAt::parse("tomorrow").is_err());
        assert!(StartAt::parse("@x").is_err());
    }
}
