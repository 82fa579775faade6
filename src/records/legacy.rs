//! Message sets v0/v1, the record format before RecordBatch v2 (KIP-98), for old clients:
//! Produce v0–2 carry them and Fetch v0–3 answer them (segmentio/kafka-go 0.2 speaks only
//! these). ringmq stores RecordBatch v2 only, so, as Kafka does:
//!
//! * [`to_record_batch`] converts a produced message set into one uncompressed RecordBatch v2
//!   on append: every message's CRC-32 is checked, compressed wrapper messages (gzip, snappy,
//!   lz4) are inflated under the same [`MAX_DECOMPRESSED_BYTES`] cap as any batch, inner
//!   messages keep their key, value and timestamp (the wrapper's when it says LogAppendTime;
//!   −1 for magic 0), and the broker assigns offsets as for any batch (client offsets are
//!   ignored, inner relative offsets too).
//! * [`to_message_set`] down-converts stored batches for a fetch: one uncompressed message per
//!   record from the fetch offset on, magic 0 or 1, absolute offsets, headers dropped (the old
//!   formats have none), control batches skipped, stopping before `max_bytes` (one message
//!   always goes, so a large record cannot stall an old consumer).
//!
//! Everything here reads untrusted bytes: lengths are checked against what remains, counts
//! are bounded by the input, and nothing panics.

use super::{decompress, each_record, RecordsError, MAX_DECOMPRESSED_BYTES};
use crate::model::{build_batch_timed, BatchHeader, Offset, TimedRecord, TimestampMs};

/// Bytes before a message's body: offset (8) and message size (4).
const LOG_OVERHEAD: usize = 12;
/// Smallest message body: crc (4), magic (1), attributes (1), key length (4), value length (4).
const MIN_BODY_V0: usize = 14;
/// Attribute bits holding the compression codec.
const CODEC_MASK: i8 = 0x07;
/// Attribute bit of magic 1: the timestamp is LogAppendTime.
const LOG_APPEND_TIME: i8 = 0x08;

/// One message of a message set, borrowing its key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message<'a> {
    magic: i8,
    attributes: i8,
    /// −1 for magic 0.
    timestamp: TimestampMs,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn take<'a>(b: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], RecordsError> {
    if b.len() < n {
        return Err(RecordsError::Malformed(what));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn be_i32(b: &mut &[u8], what: &'static str) -> Result<i32, RecordsError> {
    let raw = take(b, 4, what)?;
    Ok(i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn be_i64(b: &mut &[u8], what: &'static str) -> Result<i64, RecordsError> {
    let raw = take(b, 8, what)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(raw);
    Ok(i64::from_be_bytes(a))
}

fn nullable<'a>(b: &mut &'a [u8], what: &'static str) -> Result<Option<&'a [u8]>, RecordsError> {
    match be_i32(b, what)? {
        -1 => Ok(None),
        n => {
            let n = usize::try_from(n).map_err(|_| RecordsError::Malformed(what))?;
            take(b, n, what).map(Some)
        }
    }
}

/// One message's body (from the CRC on), whose size the caller has checked.
fn parse_message(body: &[u8]) -> Result<Message<'_>, RecordsError> {
    let mut b = body;
    let crc = be_i32(&mut b, "message crc")? as u32;
    if crc32fast::hash(b) != crc {
        return Err(RecordsError::Corrupt);
    }
    let magic = take(&mut b, 1, "message magic")?[0] as i8;
    if !(0..=1).contains(&magic) {
        return Err(RecordsError::Malformed("message magic"));
    }
    let attributes = take(&mut b, 1, "message attributes")?[0] as i8;
    let timestamp = if magic == 1 {
        be_i64(&mut b, "message timestamp")?
    } else {
        -1
    };
    let key = nullable(&mut b, "message key")?;
    let value = nullable(&mut b, "message value")?;
    if !b.is_empty() {
        return Err(RecordsError::Malformed("message size"));
    }
    Ok(Message {
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

/// Every message of a message set, which must end on a message boundary.
fn parse_set(set: &[u8]) -> Result<Vec<Message<'_>>, RecordsError> {
    let mut out = Vec::with_capacity(set.len() / (LOG_OVERHEAD + MIN_BODY_V0));
    let mut rest = set;
    while !rest.is_empty() {
        let _client_offset = be_i64(&mut rest, "message offset")?;
        let size = be_i32(&mut rest, "message size")?;
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s >= MIN_BODY_V0)
            .ok_or(RecordsError::Malformed("message size"))?;
        out.push(parse_message(take(&mut rest, size, "message size")?)?);
    }
    Ok(out)
}

/// Convert a produced message set v0/v1 into one uncompressed RecordBatch v2 (offsets from
/// 0, to be stamped on append). An empty set, a bad CRC, a nested wrapper or a bomb is an
/// error; nothing is kept from a set that fails.
pub fn to_record_batch(set: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let outer = parse_set(set)?;
    let mut inflated: Vec<Option<Vec<u8>>> = Vec::with_capacity(outer.len());
    let mut inflated_bytes = 0usize;
    for m in &outer {
        let codec = (m.attributes & CODEC_MASK) as u8;
        if codec == 0 {
            inflated.push(None);
            continue;
        }
        let data = decompress(codec, m.value.unwrap_or_default())?;
        inflated_bytes += data.len();
        if inflated_bytes > MAX_DECOMPRESSED_BYTES {
            return Err(RecordsError::TooLarge);
        }
        inflated.push(Some(data));
    }
    let mut records: Vec<TimedRecord<'_>> = Vec::with_capacity(outer.len());
    for (m, data) in outer.iter().zip(&inflated) {
        let Some(data) = data else {
            records.push((m.key, m.value, m.timestamp));
            continue;
        };
        for inner in parse_set(data)? {
            if inner.attributes & CODEC_MASK != 0 {
                return Err(RecordsError::Malformed("nested compressed message"));
            }
            if inner.magic != m.magic {
                return Err(RecordsError::Malformed("inner message magic"));
            }
            let log_append = m.magic == 1 && m.attributes & LOG_APPEND_TIME != 0;
            let ts = if log_append {
                m.timestamp
            } else {
                inner.timestamp
            };
            records.push((inner.key, inner.value, ts));
        }
    }
    if records.is_empty() || records.len() > i32::MAX as usize {
        return Err(RecordsError::Malformed("message set holds no message"));
    }
    Ok(build_batch_timed(records.iter().copied()))
}

/// Append one uncompressed message of `magic` to `out`.
fn put_message(out: &mut Vec<u8>, magic: i8, offset: Offset, m: &Message<'_>) {
    let field_len = |f: Option<&[u8]>| 4 + f.map_or(0, <[u8]>::len);
    let ts_len = if magic == 1 { 8 } else { 0 };
    let body = 4 + 2 + ts_len + field_len(m.key) + field_len(m.value);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(body as i32).to_be_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(magic as u8);
    out.push(m.attributes as u8);
    if magic == 1 {
        out.extend_from_slice(&m.timestamp.to_be_bytes());
    }
    for f in [m.key, m.value] {
        match f {
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Size of one message of `magic` as [`put_message`] writes it.
fn message_len(magic: i8, key: Option<&[u8]>, value: Option<&[u8]>) -> usize {
    let ts_len = if magic == 1 { 8 } else { 0 };
    LOG_OVERHEAD + MIN_BODY_V0 + ts_len + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len)
}

/// Down-convert whole stored batches (possibly several per chunk) into a message set of
/// `magic` 0 or 1: every record at or after `fetch_offset`, in order, until the next message
/// would pass `max_bytes` (the first always goes). A batch that cannot be read ends the set
/// there (what came before is still answered); an error only if nothing could be converted.
pub fn to_message_set(
    chunks: &[impl AsRef<[u8]>],
    fetch_offset: Offset,
    magic: i8,
    max_bytes: usize,
) -> Result<Vec<u8>, RecordsError> {
    assert!((0..=1).contains(&magic), "message sets are magic 0 or 1");
    let mut out = Vec::new();
    let mut full = false;
    'chunks: for chunk in chunks {
        let mut rest = chunk.as_ref();
        while !rest.is_empty() && !full {
            let h = BatchHeader::parse(rest).map_err(|_| RecordsError::Malformed("short batch"));
            let total = h.and_then(|h| {
                h.total_bytes()
                    .map_err(|_| RecordsError::Malformed("batch length"))
            });
            let total = match total {
                Ok(t) if t <= rest.len() => t,
                _ if !out.is_empty() => break 'chunks,
                Ok(_) => return Err(RecordsError::Malformed("batch length")),
                Err(e) => return Err(e),
            };
            let (batch, after) = rest.split_at(total);
            rest = after;
            match convert_batch(batch, fetch_offset, magic, max_bytes, &mut out) {
                Ok(stopped) => full = stopped,
                Err(_) if !out.is_empty() => break 'chunks,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Append the records of one batch to `out`; true once `max_bytes` stops the set.
fn convert_batch(
    batch: &[u8],
    fetch_offset: Offset,
    magic: i8,
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<bool, RecordsError> {
    let h = BatchHeader::parse(batch).map_err(|_| RecordsError::Malformed("short batch"))?;
    if h.is_control() || h.last_offset() < fetch_offset {
        return Ok(false);
    }
    let mut full = false;
    each_record(batch, |h, mut r| {
        let offset = h.base_offset().saturating_add(r.offset_delta);
        let key = r.rest.nullable_slice()?;
        let value = r.rest.nullable_slice()?;
        if full || offset < fetch_offset {
            return Ok(());
        }
        if !out.is_empty() && out.len() + message_len(magic, key, value) > max_bytes {
            full = true;
            return Ok(());
        }
        let log_append = h.is_log_append_time();
        let timestamp = if log_append {
            h.max_timestamp()
        } else {
            h.base_timestamp().saturating_add(r.timestamp_delta)
        };
        let attributes = if magic == 1 && log_append {
            LOG_APPEND_TIME
        } else {
            0
        };
        let m = Message {
            magic,
            attributes,
            timestamp,
            key,
            value,
        };
        put_message(out, magic, offset, &m);
        Ok(())
    })?;
    Ok(full)
}

#[cfg(test)]
mod tests;
