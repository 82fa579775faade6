//! Domain types shared by every layer: Kafka's nouns with units on the names.
//!
//! `protocol` and `storage` never import each other; both read record batches through
//! [`BatchHeader`], the zero-copy view of a RecordBatch v2 header defined here.

use std::fmt;

/// A Kafka offset (position of a record in a partition log). Dense and increasing per partition.
pub type Offset = i64;

/// Milliseconds since the Unix epoch, as Kafka timestamps are.
pub type TimestampMs = i64;

/// The id of an idempotent producer (KIP-98); a negative id is not idempotent (no checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProducerId(pub i64);

/// A producer id's epoch: a higher one fences every lower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProducerEpoch(pub i16);

/// A producer's sequence number of a record in one partition (a batch carries the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sequence(pub i32);

impl Sequence {
    /// The sequence `delta` records later, wrapping as two's complement.
    pub fn plus(self, delta: i32) -> Sequence {
        Sequence(self.0.wrapping_add(delta))
    }
    /// The sequence after this one: after i32::MAX comes 0, as in Kafka.
    pub fn next(self) -> Sequence {
        Sequence(if self.0 == i32::MAX { 0 } else { self.0 + 1 })
    }
}

/// The epoch of a partition's leader, stamped into every batch it appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaderEpoch(pub i32);

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
display_inner!(ProducerId, ProducerEpoch, Sequence, LeaderEpoch);

/// Index of a shard (one glommio executor pinned to one CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

/// A topic partition. The topic name is shared, so cloning is cheap.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Topics the broker keeps for itself: the group log (`__consumer_offsets`), and the names
/// Kafka reserves for the transaction log and the cluster metadata log. Clients may read
/// them but never create, delete, produce to, reconfigure or repartition them.
pub const INTERNAL_TOPICS: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__cluster_metadata",
];

/// Whether `topic` is one of [`INTERNAL_TOPICS`].
pub fn is_internal_topic(topic: &str) -> bool {
    INTERNAL_TOPICS.contains(&topic)
}

/// The shard that owns a partition: a deterministic function every shard computes alike
/// (FNV-1a of the topic name, plus the partition index, modulo the shard count).
/// Consecutive partitions of one topic land on consecutive shards.
pub fn owner_shard(topic: &str, partition: i32, shard_count: u16) -> ShardId {
    assert!(shard_count > 0, "shard_count must be positive");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let slot = hash.wrapping_add(partition as u64) % u64::from(shard_count);
    ShardId(slot as u16)
}

/// Size of the RecordBatch v2 header that precedes the records.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes of a batch not counted by its `batchLength` field (baseOffset + batchLength).
pub const BATCH_LENGTH_PREFIX_BYTES: usize = 12;
/// Byte position where the CRC-32C coverage starts (attributes).
const CRC_START: usize = 21;

/// Why a record batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header, or than the header's batchLength claims.
    Truncated { needed: usize, available: usize },
    /// batchLength smaller than a header or otherwise impossible.
    BadLength(i32),
    /// Magic byte other than 2.
    UnsupportedMagic(i8),
    /// CRC-32C over attributes..end does not match.
    CrcMismatch { stored: u32, computed: u32 },
    /// lastOffsetDelta or recordsCount out of range.
    BadCounts {
        last_offset_delta: i32,
        records_count: i32,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated { needed, available } => {
                write!(f, "batch truncated: need {needed} bytes, have {available}")
            }
            BatchError::BadLength(len) => write!(f, "impossible batch length {len}"),
            BatchError::UnsupportedMagic(m) => write!(f, "unsupported record batch magic {m}"),
            BatchError::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            BatchError::BadCounts {
                last_offset_delta,
                records_count,
            } => write!(
                f,
                "bad counts: lastOffsetDelta {last_offset_delta}, recordsCount {records_count}"
            ),
        }
    }
}

impl std::error::Error for BatchError {}

/// Zero-copy view of a RecordBatch v2 header. Construct with [`BatchHeader::parse`], which
/// checks that the header is present; [`BatchHeader::validate`] checks length, magic and CRC.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl<'a> BatchHeader<'a> {
    /// View the header at the start of `bytes`. Fails only if fewer than 61 bytes remain.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_BYTES,
                available: bytes.len(),
            });
        }
        Ok(BatchHeader { bytes })
    }
    pub fn base_offset(&self) -> Offset {
        be_i64(self.bytes, 0)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.bytes, 8)
    }
    /// Total bytes of the batch on the wire and on disk (batchLength + 12).
    pub fn total_bytes(&self) -> Result<usize, BatchError> {
        let len = self.batch_length();
        if len < (BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES) as i32 {
            return Err(BatchError::BadLength(len));
        }
        Ok(len as usize + BATCH_LENGTH_PREFIX_BYTES)
    }
    pub fn partition_leader_epoch(&self) -> LeaderEpoch {
        LeaderEpoch(be_i32(self.bytes, 12))
    }
    pub fn magic(&self) -> i8 {
        self.bytes[16] as i8
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, 17) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, 21)
    }
    /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes() & 0x7) as u8
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & 0x8 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & 0x20 != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, 23)
    }
    pub fn base_timestamp(&self) -> TimestampMs {
        be_i64(self.bytes, 27)
    }
    pub fn max_timestamp(&self) -> TimestampMs {
        be_i64(self.bytes, 35)
    }
    pub fn producer_id(&self) -> ProducerId {
        ProducerId(be_i64(self.bytes, 43))
    }
    pub fn producer_epoch(&self) -> ProducerEpoch {
        ProducerEpoch(be_i16(self.bytes, 51))
    }
    pub fn base_sequence(&self) -> Sequence {
        Sequence(be_i32(self.bytes, 53))
    }
    /// Sequence of the batch's last record.
    pub fn last_sequence(&self) -> Sequence {
        self.base_sequence().plus(self.last_offset_delta())
    }
    pub fn records_count(&self) -> i32 {
        be_i32(self.bytes, 57)
    }
    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> Offset {
        self.base_offset() + i64::from(self.last_offset_delta())
    }

    /// Check length, magic, counts and the CRC-32C. `self` must view the batch's own bytes,
    /// possibly followed by more bytes (which are ignored). Returns the batch's total size.
    pub fn validate(&self) -> Result<usize, BatchError> {
        let total = self.total_bytes()?;
        if self.bytes.len() < total {
            return Err(BatchError::Truncated {
                needed: total,
                available: self.bytes.len(),
            });
        }
        if self.magic() != 2 {
            return Err(BatchError::UnsupportedMagic(self.magic()));
        }
        let (delta, count) = (self.last_offset_delta(), self.records_count());
        if delta < 0 || count < 0 || (count > 0 && delta < count - 1) {
            return Err(BatchError::BadCounts {
                last_offset_delta: delta,
                records_count: count,
            });
        }
        let computed = crc32c::crc32c(&self.bytes[CRC_START..total]);
        if computed != self.crc() {
            return Err(BatchError::CrcMismatch {
                stored: self.crc(),
                computed,
            });
        }
        Ok(total)
    }
}

/// Stamp the broker-owned fields (both outside the CRC) into a batch in place.
pub fn stamp_batch(batch: &mut [u8], base_offset: Offset, leader_epoch: LeaderEpoch) {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "stamp_batch on a short batch"
    );
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.0.to_be_bytes());
}

/// Switch a batch to LogAppendTime: set the timestamp-type attribute bit and maxTimestamp,
/// then recompute the CRC (both fields lie inside it).
pub fn set_log_append_time(batch: &mut [u8], append_time_ms: TimestampMs) {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "set_log_append_time on a short batch"
    );
    let attrs = be_i16(batch, 21) | 0x8;
    batch[21..23].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&append_time_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Append a zig-zag varint (Kafka record format).
fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Build an uncompressed RecordBatch v2 (no producer id) holding `records`, all stamped
/// `timestamp_ms`. Used for the broker's internal logs (consumer-group state).
pub fn build_batch(
    records: &[(Option<&[u8]>, Option<&[u8]>)],
    timestamp_ms: TimestampMs,
) -> Vec<u8> {
    build_batch_timed(records.iter().map(|&(k, v)| (k, v, timestamp_ms)))
}

/// One record for [`build_batch_timed`]: key, value and timestamp (−1 for none).
pub type TimedRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, TimestampMs);

/// Build an uncompressed RecordBatch v2 (no producer id) of records with their own
/// timestamps: the first record's is the base, maxTimestamp the largest. Used for internal
/// logs and for message sets v0/v1 converted on append (`records::legacy`).
pub fn build_batch_timed<'a>(
    records: impl ExactSizeIterator<Item = TimedRecord<'a>> + Clone,
) -> Vec<u8> {
    assert!(
        (1..=i32::MAX as usize).contains(&records.len()),
        "a record batch holds 1..=i32::MAX records"
    );
    let n = records.len() as i32;
    let base_ts = records.clone().next().map_or(-1, |r| r.2);
    let max_ts = records.clone().map(|r| r.2).max().unwrap_or(-1);
    let mut b = Vec::with_capacity(BATCH_HEADER_BYTES + records.len() * 16);
    b.resize(BATCH_HEADER_BYTES, 0);
    let mut rec = Vec::new();
    for (i, (key, value, ts)) in records.enumerate() {
        rec.clear();
        rec.push(0); // attributes
        put_varlong(&mut rec, ts.wrapping_sub(base_ts)); // timestamp delta
        put_varlong(&mut rec, i as i64); // offset delta
        for field in [key, value] {
            match field {
                Some(bytes) => {
                    put_varlong(&mut rec, bytes.len() as i64);
                    rec.extend_from_slice(bytes);
                }
                None => put_varlong(&mut rec, -1),
            }
        }
        put_varlong(&mut rec, 0); // headers
        put_varlong(&mut b, rec.len() as i64);
        b.extend_from_slice(&rec);
    }
    let batch_length = (b.len() - BATCH_LENGTH_PREFIX_BYTES) as i32;
    let mut h = Vec::with_capacity(BATCH_HEADER_BYTES);
    h.extend_from_slice(&0i64.to_be_bytes());
    h.extend_from_slice(&batch_length.to_be_bytes());
    h.extend_from_slice(&0i32.to_be_bytes());
    h.push(2);
    h.extend_from_slice(&0u32.to_be_bytes());
    h.extend_from_slice(&0i16.to_be_bytes());
    h.extend_from_slice(&(n - 1).to_be_bytes());
    h.extend_from_slice(&base_ts.to_be_bytes());
    h.extend_from_slice(&max_ts.to_be_bytes());
    h.extend_from_slice(&(-1i64).to_be_bytes());
    h.extend_from_slice(&(-1i16).to_be_bytes());
    h.extend_from_slice(&(-1i32).to_be_bytes());
    h.extend_from_slice(&n.to_be_bytes());
    b[..BATCH_HEADER_BYTES].copy_from_slice(&h);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
pub(crate) mod test_batches {
    //! Valid uncompressed RecordBatch v2 bytes for tests.
    use super::*;

    /// One batch of `values.len()` records with null keys, timestamps all `ts`.
    pub fn batch(values: &[&[u8]], ts: TimestampMs) -> Vec<u8> {
        let records: Vec<(Option<&[u8]>, Option<&[u8]>)> =
            values.iter().map(|v| (None, Some(*v))).collect();
        build_batch(&records, ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_batch_passes_and_flipped_bit_fails() {
        let mut b = test_batches::batch(&[b"a", b"bc"], 1000);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.validate().unwrap(), b.len());
        assert_eq!(h.records_count(), 2);
        assert_eq!(h.last_offset_delta(), 1);
        stamp_batch(&mut b, 42, LeaderEpoch(7));
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset(), 42);
        assert_eq!(h.last_offset(), 43);
        assert!(h.validate().is_ok(), "stamping must not disturb the CRC");
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            BatchHeader::parse(&b).unwrap().validate(),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn log_append_time_rewrites_crc() {
        let mut b = test_batches::batch(&[b"x"], 5);
        set_log_append_time(&mut b, 99);
        let h = BatchHeader::parse(&b).unwrap();
        assert!(h.validate().is_ok());
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp(), 99);
    }

    #[test]
    fn short_and_bad_length_are_errors() {
        assert!(BatchHeader::parse(&[0u8; 10]).is_err());
        let mut b = test_batches::batch(&[b"x"], 5);
        b[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            BatchHeader::parse(&b).unwrap().validate(),
            Err(BatchError::BadLength(-5))
        ));
        let b = test_batches::batch(&[b"x"], 5);
        let cut = &b[..b.len() - 1];
        assert!(matches!(
            BatchHeader::parse(cut).unwrap().validate(),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn ownership_is_deterministic_and_spreads() {
        let a: Vec<_> = (0..8).map(|p| owner_shard("t", p, 2)).collect();
        let b: Vec<_> = (0..8).map(|p| owner_shard("t", p, 2)).collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|s| s.0 == 0).count(), 4);
        assert_eq!(owner_shard("t", 3, 1), ShardId(0));
    }
}
