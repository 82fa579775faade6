//! RecordBatch v2 builder and record reader, for the client side.
//!
//! [`BatchBuilder`] writes records straight into one reused buffer: the 61-byte header is
//! reserved on the first append, each record's size is computed before it is written (so its
//! length varint goes first without a second pass), and [`BatchBuilder::finish`] fills in the
//! header and the CRC-32C, then splits the finished bytes off the buffer. Appending a record
//! allocates nothing; the buffer's capacity is reused batch after batch once the previous
//! batch's `Bytes` are dropped. Batches are uncompressed, non-transactional, with no producer
//! id (-1), CreateTime timestamps.
//!
//! [`records`] walks the records of a batch already checked by
//! [`crate::model::BatchHeader::validate`]; every varint and length is bounds-checked, since
//! the bytes come from the network.

use crate::model::{BatchError, BatchHeader, TimestampMs, BATCH_HEADER_BYTES};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// Where the CRC-32C coverage starts (attributes).
const CRC_START: usize = 21;

/// Bytes a zig-zag varint of `v` takes (also covers 32-bit varints).
pub fn varlong_bytes(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

fn put_varlong(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn nullable_len(b: Option<&[u8]>) -> i64 {
    b.map_or(-1, |b| b.len() as i64)
}

fn nullable_field_bytes(b: Option<&[u8]>) -> usize {
    varlong_bytes(nullable_len(b)) + b.map_or(0, <[u8]>::len)
}

/// One record header (key, nullable value).
pub type RecordHeader<'a> = (&'a [u8], Option<&'a [u8]>);

/// Builds one uncompressed RecordBatch v2 in a reused buffer. Not thread-safe; one per
/// (producer, partition).
pub struct BatchBuilder {
    buf: BytesMut,
    records_count: i32,
    base_timestamp_ms: TimestampMs,
    max_timestamp_ms: TimestampMs,
}

impl BatchBuilder {
    pub fn with_capacity(capacity_bytes: usize) -> Self {
        BatchBuilder {
            buf: BytesMut::with_capacity(capacity_bytes.max(BATCH_HEADER_BYTES)),
            records_count: 0,
            base_timestamp_ms: 0,
            max_timestamp_ms: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records_count == 0
    }

    pub fn records_count(&self) -> i32 {
        self.records_count
    }

    /// Bytes the batch would have if finished now (0 when empty).
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes one record with these sizes adds to a batch (length varint included), given its
    /// offset and timestamp deltas.
    pub fn record_bytes(
        offset_delta: i32,
        timestamp_delta_ms: i64,
        key: Option<&[u8]>,
        value_bytes: usize,
        headers: &[RecordHeader<'_>],
    ) -> usize {
        let body =
            Self::record_body_bytes(offset_delta, timestamp_delta_ms, key, value_bytes, headers);
        varlong_bytes(body as i64) + body
    }

    fn record_body_bytes(
        offset_delta: i32,
        timestamp_delta_ms: i64,
        key: Option<&[u8]>,
        value_bytes: usize,
        headers: &[RecordHeader<'_>],
    ) -> usize {
        let mut n = 1 + varlong_bytes(timestamp_delta_ms) + varlong_bytes(i64::from(offset_delta));
        n += nullable_field_bytes(key);
        n += varlong_bytes(value_bytes as i64) + value_bytes;
        n += varlong_bytes(headers.len() as i64);
        for (k, v) in headers {
            n += varlong_bytes(k.len() as i64) + k.len() + nullable_field_bytes(*v);
        }
        n
    }

    /// Append a record whose value is written in place by `fill` (given exactly
    /// `value_bytes` zeroed bytes). Allocation-free once the buffer has grown to batch size.
    pub fn append_with(
        &mut self,
        timestamp_ms: TimestampMs,
        key: Option<&[u8]>,
        value_bytes: usize,
        headers: &[RecordHeader<'_>],
        fill: impl FnOnce(&mut [u8]),
    ) {
        if self.records_count == 0 {
            self.buf.clear();
            self.buf.put_bytes(0, BATCH_HEADER_BYTES);
            self.base_timestamp_ms = timestamp_ms;
            self.max_timestamp_ms = timestamp_ms;
        }
        let offset_delta = self.records_count;
        let ts_delta = timestamp_ms - self.base_timestamp_ms;
        let body = Self::record_body_bytes(offset_delta, ts_delta, key, value_bytes, headers);
        self.buf.reserve(varlong_bytes(body as i64) + body);
        put_varlong(&mut self.buf, body as i64);
        self.buf.put_u8(0); // record attributes
        put_varlong(&mut self.buf, ts_delta);
        put_varlong(&mut self.buf, i64::from(offset_delta));
        self.put_nullable(key);
        put_varlong(&mut self.buf, value_bytes as i64);
        let at = self.buf.len();
        self.buf.put_bytes(0, value_bytes);
        fill(&mut self.buf[at..at + value_bytes]);
        put_varlong(&mut self.buf, headers.len() as i64);
        for (k, v) in headers {
            self.put_nullable(Some(k));
            self.put_nullable(*v);
        }
        self.records_count += 1;
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
    }

    /// Append a record with the given value bytes.
    pub fn append(
        &mut self,
        timestamp_ms: TimestampMs,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[RecordHeader<'_>],
    ) {
        self.append_with(timestamp_ms, key, value.len(), headers, |out| {
            out.copy_from_slice(value)
        });
    }

    fn put_nullable(&mut self, b: Option<&[u8]>) {
        put_varlong(&mut self.buf, nullable_len(b));
        if let Some(b) = b {
            self.buf.put_slice(b);
        }
    }

    /// Fill the header (base offset 0, producer id -1) and CRC, and hand the batch out.
    /// Returns `None` when no record was appended. The builder is empty afterwards.
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.records_count == 0 {
            return None;
        }
        let total = self.buf.len();
        let h = &mut self.buf[..BATCH_HEADER_BYTES];
        h[0..8].copy_from_slice(&0i64.to_be_bytes());
        h[8..12].copy_from_slice(&((total - 12) as i32).to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
        h[16] = 2; // magic
        h[21..23].copy_from_slice(&0i16.to_be_bytes()); // attributes
        h[23..27].copy_from_slice(&(self.records_count - 1).to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp_ms.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp_ms.to_be_bytes());
        h[43..51].copy_from_slice(&(-1i64).to_be_bytes()); // producerId
        h[51..53].copy_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
        h[53..57].copy_from_slice(&(-1i32).to_be_bytes()); // baseSequence
        h[57..61].copy_from_slice(&self.records_count.to_be_bytes());
        let crc = crc32c::crc32c(&self.buf[CRC_START..total]);
        self.buf[17..21].copy_from_slice(&crc.to_be_bytes());
        self.records_count = 0;
        Some(self.buf.split().freeze())
    }
}

/// A record that could not be read from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    Batch(BatchError),
    /// Compressed batches are not decoded by this client.
    Compressed(u8),
    /// A varint or length runs past the record or the batch.
    Malformed(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Batch(e) => write!(f, "{e}"),
            RecordError::Compressed(c) => write!(f, "compressed batch (codec {c}) not supported"),
            RecordError::Malformed(what) => write!(f, "malformed record: {what}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// A zero-copy view of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset_delta: i32,
    pub timestamp_delta_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    headers_count: usize,
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    pub fn headers_count(&self) -> usize {
        self.headers_count
    }
    /// The record's headers, each checked as it is read.
    pub fn headers(&self) -> impl Iterator<Item = Result<RecordHeader<'a>, RecordError>> + 'a {
        let mut cur = Cursor {
            b: self.headers,
            pos: 0,
        };
        (0..self.headers_count).map(move |_| {
            let k = cur
                .nullable("header key")?
                .ok_or(RecordError::Malformed("null header key"))?;
            let v = cur.nullable("header value")?;
            Ok((k, v))
        })
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varlong(&mut self, what: &'static str) -> Result<i64, RecordError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let byte = *self.b.get(self.pos).ok_or(RecordError::Malformed(what))?;
            self.pos += 1;
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(RecordError::Malformed(what))
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(RecordError::Malformed(what))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn nullable(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, RecordError> {
        let len = self.varlong(what)?;
        match len {
            -1 => Ok(None),
            n if n >= 0 => self.take(n as usize, what).map(Some),
            _ => Err(RecordError::Malformed(what)),
        }
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        i32::try_from(self.varlong(what)?).map_err(|_| RecordError::Malformed(what))
    }
}

/// Iterator over the records of one batch.
pub struct Records<'a> {
    cur: Cursor<'a>,
    left: i32,
}

/// Validate the batch at the start of `batch` (length, magic, CRC) and iterate its records.
pub fn records(batch: &[u8]) -> Result<Records<'_>, RecordError> {
    let header = BatchHeader::parse(batch).map_err(RecordError::Batch)?;
    let total = header.validate().map_err(RecordError::Batch)?;
    if header.compression() != 0 {
        return Err(RecordError::Compressed(header.compression()));
    }
    Ok(Records {
        cur: Cursor {
            b: &batch[BATCH_HEADER_BYTES..total],
            pos: 0,
        },
        left: header.records_count(),
    })
}

impl<'a> Records<'a> {
    fn read_one(&mut self) -> Result<RecordView<'a>, RecordError> {
        let len = self.cur.varlong("record length")?;
        let len = usize::try_from(len).map_err(|_| RecordError::Malformed("record length"))?;
        let body = self.cur.take(len, "record body")?;
        let mut c = Cursor { b: body, pos: 0 };
        c.take(1, "record attributes")?;
        let timestamp_delta_ms = c.varlong("timestamp delta")?;
        let offset_delta = c.i32("offset delta")?;
        let key = c.nullable("key")?;
        let value = c.nullable("value")?;
        let headers_count = c.i32("headers count")?;
        let headers_count =
            usize::try_from(headers_count).map_err(|_| RecordError::Malformed("headers count"))?;
        let headers = &body[c.pos..];
        let view = RecordView {
            offset_delta,
            timestamp_delta_ms,
            key,
            value,
            headers_count,
            headers,
        };
        // Walk the headers once so a malformed record is reported here, not later.
        for h in view.headers() {
            h?;
        }
        Ok(view)
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>, RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left <= 0 {
            return None;
        }
        self.left -= 1;
        let r = self.read_one();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

/// Split a run of concatenated batches (a Fetch response's records) into whole batches.
/// A trailing partial batch (a fetch may cut the last one) is skipped, not an error.
pub fn split_batches(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(bytes).ok()?;
        let total = header.total_bytes().ok()?;
        if total > bytes.len() {
            return None;
        }
        let (batch, rest) = bytes.split_at(total);
        bytes = rest;
        Some(batch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_sizes_match_encoding() {
        for v in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_bytes(v), "{v}");
            let mut c = Cursor { b: &b, pos: 0 };
            assert_eq!(c.varlong("v").unwrap(), v);
        }
    }

    #[test]
    fn built_batch_validates_and_reads_back_record_by_record() {
        let mut b = BatchBuilder::with_capacity(1024);
        assert!(b.finish().is_none());
        b.append(1_000, None, b"first", &[]);
        b.append(1_007, Some(b"k2"), b"", &[(b"h", Some(b"v")), (b"n", None)]);
        let big = vec![7u8; 300];
        b.append_with(999, Some(b""), 300, &[], |out| out.copy_from_slice(&big));
        let predicted = b.size_bytes();
        let batch = b.finish().unwrap();
        assert_eq!(batch.len(), predicted);
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!(h.validate().unwrap(), batch.len());
        assert_eq!((h.records_count(), h.last_offset_delta()), (3, 2));
        assert_eq!(
            (h.base_timestamp(), h.max_timestamp(), h.producer_id()),
            (1_000, 1_007, crate::model::ProducerId(-1))
        );
        let recs: Vec<_> = records(&batch).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(
            (recs[0].key, recs[0].value, recs[0].offset_delta),
            (None, Some(&b"first"[..]), 0)
        );
        assert_eq!(
            (recs[1].key, recs[1].timestamp_delta_ms),
            (Some(&b"k2"[..]), 7)
        );
        let hs: Vec<_> = recs[1].headers().collect::<Result<_, _>>().unwrap();
        assert_eq!(hs, vec![(&b"h"[..], Some(&b"v"[..])), (&b"n"[..], None)]);
        assert_eq!(
            (recs[2].key, recs[2].value, recs[2].timestamp_delta_ms),
            (Some(&b""[..]), Some(&big[..]), -1)
        );
        assert!(b.is_empty());
    }

    #[test]
    fn builder_is_reusable_and_sizes_are_predicted() {
        let mut b = BatchBuilder::with_capacity(64);
        for round in 0..3i64 {
            for i in 0..10 {
                let before = b.size_bytes().max(BATCH_HEADER_BYTES);
                let rec = BatchBuilder::record_bytes(i, round, Some(b"key"), 100, &[]);
                b.append_with(100 + round, Some(b"key"), 100, &[], |v| v[0] = i as u8);
                assert_eq!(b.size_bytes() - before, rec);
            }
            let batch = b.finish().unwrap();
            let vals: Vec<u8> = records(&batch)
                .unwrap()
                .map(|r| r.unwrap().value.unwrap()[0])
                .collect();
            assert_eq!(vals, (0..10).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn corrupt_and_truncated_batches_are_errors_not_panics() {
        let mut b = BatchBuilder::with_capacity(256);
        b.append(5, Some(b"key"), b"value", &[(b"a", Some(b"b"))]);
        let batch = b.finish().unwrap().to_vec();
        for len in 0..batch.len() {
            assert!(records(&batch[..len]).is_err(), "{len}");
        }
        let mut flipped = batch.clone();
        flipped[70] ^= 1;
        assert!(matches!(
            records(&flipped),
            Err(RecordError::Batch(BatchError::CrcMismatch { .. }))
        ));
        // A record length that overruns the batch, with a CRC that matches.
        let mut bad = batch.clone();
        bad[BATCH_HEADER_BYTES] = 0x7e;
        let crc = crc32c::crc32c(&bad[CRC_START..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        let got: Vec<_> = records(&bad).unwrap().collect();
        assert_eq!(got, vec![Err(RecordError::Malformed("record body"))]);
    }

    #[test]
    fn split_batches_skips_a_cut_tail() {
        let mut b = BatchBuilder::with_capacity(256);
        let mut all = Vec::new();
        for i in 0..3u8 {
            b.append(1, None, &[i; 10], &[]);
            all.extend_from_slice(&b.finish().unwrap());
        }
        let one = all.len() / 3;
        assert_eq!(split_batches(&all).count(), 3);
        assert_eq!(split_batches(&all[..all.len() - 1]).count(), 2);
        assert_eq!(
            split_batches(&all[..one]).next().map(<[u8]>::len),
            Some(one)
        );
        assert_eq!(split_batches(&[]).count(), 0);
    }

    #[test]
    fn kafka_protocol_oracle_reads_our_batches() {
        use kafka_protocol::records::RecordBatchDecoder;
        let mut b = BatchBuilder::with_capacity(256);
        b.append(
            1_000,
            Some(b"k"),
            b"one",
            &[(b"h1", Some(b"x")), (b"h2", None)],
        );
        b.append(1_003, None, b"", &[]);
        b.append_with(990, Some(b"key3"), 40, &[], |v| v.fill(3));
        let mut bytes = b.finish().unwrap();
        let set = RecordBatchDecoder::decode(&mut bytes).expect("oracle decodes our batch");
        assert_eq!(set.version, 2);
        let recs = &set.records;
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(
            recs.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            vec![1_000, 1_003, 990]
        );
        assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(recs[0].value.as_deref(), Some(&b"one"[..]));
        assert_eq!(recs[0].headers.len(), 2);
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[2].value.as_deref(), Some(&[3u8; 40][..]));
        assert_eq!((recs[0].producer_id, recs[0].sequence), (-1, -1));
    }
}
