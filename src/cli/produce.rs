//! `ringmq produce TOPIC`: records from stdin, one a line.
//!
//! Each line is a record value (its `\n` or `\r\n` stripped); with `--key-separator SEP` the
//! text before the first SEP is the key. Every `--header K=V` is attached to every record.
//! The partition is `--partition`, else Kafka's default for a keyed record (murmur2 of the key
//! modulo the partition count, so keys land where Java and librdkafka clients put them), else
//! the partitions in turn, one per request.
//!
//! Lines are batched per partition and sent when stdin has nothing more buffered (so an
//! interactive line goes out at once, while a piped file goes out in large requests) or when
//! [`MAX_PENDING_BYTES`] is reached. Each request waits for its answer before the next one
//! (`acks` as given, default -1), so a broker error stops the command at the failing line.

use super::admin::{parse_kv, require_topic};
use super::output::Json;
use super::{check_code, connect, emit, CliError, ConnArgs};
use crate::base::now_ms;
use crate::client::batch::BatchBuilder;
use crate::client::conn::Connection;
use crate::protocol::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use clap::Args;
use std::collections::BTreeMap;
use std::io::BufRead as _;

/// Bytes of records held before a request is sent regardless of stdin.
pub const MAX_PENDING_BYTES: usize = 512 << 10;
/// Longest line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 8 << 20;

#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to write to.
    pub topic: String,
    /// Split each line into key and value at the first SEP.
    #[arg(short = 'K', long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Write every record to this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Acknowledgements: 0, 1 or -1 (all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub acks: i16,
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), for key partitioning.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's default partition of a keyed record.
pub fn key_partition(key: &[u8], partitions: usize) -> usize {
    ((murmur2(key) & 0x7fff_ffff) as usize) % partitions.max(1)
}

/// Split a line into (key, value).
pub fn split_line<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = separator.filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
        None => (None, line),
    }
}

struct Pending {
    builders: BTreeMap<i32, BatchBuilder>,
    bytes: usize,
}

/// Run `ringmq produce`.
pub async fn run(a: ProduceArgs) -> Result<(), CliError> {
    let headers = a
        .headers
        .iter()
        .map(|kv| parse_kv(kv, "--header"))
        .collect::<Result<Vec<_>, _>>()?;
    if ![-1, 0, 1].contains(&a.acks) {
        return Err(CliError::Usage(format!(
            "--acks {} is not 0, 1 or -1",
            a.acks
        )));
    }
    let (mut conn, partitions) = connect_to_topic(&a).await?;
    let header_refs: Vec<(&[u8], Option<&[u8]>)> = headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), Some(v.as_bytes())))
        .collect();
    let separator = a.key_separator.as_deref().map(str::as_bytes);
    let mut pending = Pending {
        builders: BTreeMap::new(),
        bytes: 0,
    };
    // Our own buffer over stdin, so `buffer()` tells whether more input is already here.
    let mut input = std::io::BufReader::with_capacity(64 << 10, std::io::stdin());
    let mut line = Vec::new();
    let (mut records, mut turn) = (0u64, 0usize);
    loop {
        line.clear();
        let n = std::io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::Io(format!("reading stdin failed: {e}")))?;
        if n == 0 {
            break;
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(CliError::Usage(format!(
                "line {} is longer than {MAX_LINE_BYTES} bytes",
                records + 1
            )));
        }
        let text = trim_newline(&line);
        let (key, value) = split_line(text, separator);
        let partition = match (a.partition, key) {
            (Some(p), _) => p,
            (None, Some(k)) => partitions[key_partition(k, partitions.len())],
            (None, None) => partitions[turn % partitions.len()],
        };
        let b = pending
            .builders
            .entry(partition)
            .or_insert_with(|| BatchBuilder::with_capacity(64 << 10));
        b.append(now_ms(), key, value, &header_refs);
        pending.bytes += text.len() + 16;
        records += 1;
        if input.buffer().is_empty() || pending.bytes >= MAX_PENDING_BYTES {
            send(&mut conn, &a, &mut pending).await?;
            turn += 1;
        }
    }
    send(&mut conn, &a, &mut pending).await?;
    let value = Json::obj([
        ("topic", Json::str(&a.topic)),
        ("records", Json::Int(records as i64)),
    ]);
    emit(a.conn.json, &value, || {
        format!("produced {records} record(s) to topic '{}'\n", a.topic)
    });
    Ok(())
}

/// A connection and the topic's partitions (the one of `--partition` must be among them).
async fn connect_to_topic(a: &ProduceArgs) -> Result<(Connection, Vec<i32>), CliError> {
    let mut conn = connect(&a.conn.bootstrap).await?;
    let partitions = require_topic(&mut conn, &a.topic).await?;
    if let Some(p) = a.partition {
        if !partitions.contains(&p) {
            return Err(CliError::NotFound(format!(
                "partition {p} of topic '{}'",
                a.topic
            )));
        }
    }
    Ok((conn, partitions))
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

async fn send(conn: &mut Connection, a: &ProduceArgs, p: &mut Pending) -> Result<(), CliError> {
    let partition_data: Vec<PartitionProduceData> = p
        .builders
        .iter_mut()
        .filter_map(|(&index, b)| {
            b.finish().map(|records| PartitionProduceData {
                index,
                records: Some(records),
            })
        })
        .collect();
    p.bytes = 0;
    if partition_data.is_empty() {
        return Ok(());
    }
    let req = ProduceRequest {
        transactional_id: None,
        acks: a.acks,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: a.topic.clone(),
            partition_data,
        }],
    };
    if a.acks == 0 {
        let version = conn.versions.pick::<ProduceRequest>()?;
        conn.writer.send(&req, version).await?;
        return Ok(());
    }
    let resp = conn.call(&req).await?;
    for t in &resp.responses {
        for r in &t.partition_responses {
            let what = format!("produce to {}-{}", a.topic, r.index);
            check_code(&what, r.error_code, r.error_message.as_deref())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
        assert!(key_partition(b"foobar", 3) < 3);
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(
            split_line(b"k:v:w", Some(b":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(split_line(b"novalue", Some(b":")), (None, &b"novalue"[..]));
        assert_eq!(
            split_line(b"k::v", Some(b"::")),
            (Some(&b"k"[..]), &b"v"[..])
        );
        assert_eq!(split_line(b"a:b", None), (None, &b"a:b"[..]));
        assert_eq!(trim_newline(b"x\r\n"), b"x");
        assert_eq!(trim_newline(b"x"), b"x");
    }
}
