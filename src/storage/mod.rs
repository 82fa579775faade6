//! One partition's log on direct-I/O segments: append, group commit, read, index, recover, retain.
//!
//! A [`PartitionLog`] is owned by one shard (one glommio executor). It is `!Send`, needs no
//! locks across threads, and is a cheap-clone handle (`Rc` inside): many tasks of the owning
//! executor may call it concurrently. No `RefCell` borrow is ever held across an `.await`;
//! the only waits are an async write lock (one write, roll or checkpoint in flight per
//! partition) and the group-commit rounds (one write + fdatasync round in flight per
//! partition).
//!
//! # Contract
//! - [`PartitionLog::append`] validates one RecordBatch v2 **once** (length, magic, counts,
//!   CRC-32C), checks `max_message_bytes` and the idempotent producer's sequence, assigns the
//!   base offset, stamps base offset and leader epoch (both outside the CRC), applies
//!   LogAppendTime if configured (which rewrites the CRC), and copies the batch into the
//!   partition's aligned write buffer: one `memcpy`, nothing per record (plus one copy into
//!   the [`BatchCache`] when the cache is enabled). It resolves when the batch is visible to
//!   readers (acks=1): in memory, **not** yet on disk. Appends are atomic with offset
//!   assignment and the producer-sequence check: that part never awaits.
//! - [`PartitionLog::sync_through`] resolves once every offset up to the given one is written
//!   and fdatasync'ed. It is a **group commit**: one write + fdatasync covers every caller
//!   waiting at that moment; callers arriving while a round is in flight wait for it to end
//!   and are covered by the next round, which one of them runs for all. (In the simulation,
//!   32 producers acknowledging 320 batches one at a time take about 20 fdatasyncs.)
//! - [`PartitionLog::flush`] writes buffered bytes without fdatasync (durability `never` /
//!   `interval`: the data survives a process crash once written — O_DIRECT bypasses the page
//!   cache — but not a power loss until the next sync).
//! - Reads return whole batches starting with the one containing the requested offset; at
//!   least one batch even if it exceeds `max_bytes` (KIP-74). The tail is served from the
//!   per-shard [`BatchCache`]; older data by direct-I/O reads located through the sparse
//!   index (a disk read stays within one segment). Batches read from disk are CRC-checked and
//!   their offsets checked for density again; a corrupt batch is never returned (the read
//!   serves the batches before it, or fails with `CorruptBatch`).
//! - Retention, DeleteRecords and segment rolls run while producers and consumers do.
//!
//! # Known limits
//! - After a failed fdatasync, the writes since the last good one are written again before
//!   the next sync (Linux may drop them, "fsyncgate"); up to 4 MiB of them are retained
//!   per partition (shared buffers, no copy). Beyond that, the oldest cannot be rewritten.
//!   (It was 16 MiB: up to 1.6 GB for a 100-partition topic written with acks=1; the broker's
//!   RSS reached 2.7 GB in `perf/results/2026-11-24-s2`'s first attempt, 1.2 GB at 4 MiB.)
//! - The partition leader epoch lies outside the CRC (as in Kafka): a bit flipped there on
//!   disk is not detected.
//! - `offset_for_timestamp` answers with the batch's base offset (the shard then reads that
//!   batch and finds the exact record, decompressing it if needed: `crate::records`).
//! - Rewriting the partially filled last block assumes that a torn sector write leaves each
//!   byte old or new; bytes the rewrite does not change are never corrupted.
//!
//! # On-disk layout
//! One directory per partition. Each segment is named by its base offset, zero-padded to 20
//! digits:
//!
//! | file | content |
//! |---|---|
//! | `{base}.log` | RecordBatch v2 exactly as produced, with baseOffset and partitionLeaderEpoch stamped. Batches are contiguous; the file may end in zero padding up to the direct-I/O alignment (and, if preallocated, zeros beyond) |
//! | `{base}.index` | sparse offset index: (relative offset u32, file position u32) per `index_interval_bytes` of log, plus the segment's covered size, next offset and max timestamp |
//! | `{base}.timeindex` | time index: (max timestamp of all earlier batches of the segment i64, relative offset u32), non-decreasing in timestamp |
//! | `checkpoint` | log start offset, the recovery point (active segment base, byte position, next offset — everything before it was fdatasync'ed and verified) and the idempotent-producer state as of that point |
//!
//! Every file of ours (indexes, checkpoint) is framed the same way, all integers big-endian:
//! `magic[4]` (`RMQI` offset index, `RMQT` time index, `RMQC` checkpoint) · `version u16`
//! (currently 1) · `reserved u16` · `payload_len u32` · `crc32 u32` (crc32fast, IEEE, over the
//! payload) · `payload` · zero padding to the alignment. A file whose magic, version, length or
//! checksum does not match is ignored and rebuilt. They are replaced atomically: written to
//! `name.tmp`, fdatasync'ed, renamed over, then the directory is synced.
//!
//! Index payload: `base i64 · covered_bytes u64 · next_offset i64 · max_timestamp i64 ·
//! max_timestamp_offset i64 · count u32 · count × (relative_offset u32, position u32)`.
//! Time index payload: `base i64 · count u32 · count × (timestamp i64, relative_offset u32)`.
//! Checkpoint payload: `log_start_offset i64 · active_base i64 · recovery_position u64 ·
//! recovery_next_offset i64 · producer_count u32 · per producer (producer_id i64 · epoch i16 ·
//! batch_count u8 · per batch (first_seq i32 · last_seq i32 · base_offset i64 · last_offset i64))`.
//!
//! # Writes
//! The active segment has one aligned write buffer (allocated from the disk, so glommio
//! writes it without another copy). A flush hands the filled buffer to the disk, padded with
//! zeros to the alignment, and starts a new buffer holding a copy of the partially filled
//! last block, which is therefore rewritten as it fills. At most one write is in flight per
//! partition, so a rewrite of the last block can never be overtaken by an older one. When an
//! append finds the buffer full, the buffer is queued for a background write and a fresh one
//! takes the append, so copying overlaps writing; with `MAX_QUEUED_WRITES` (3) queued the
//! append waits for the writes instead. Queued writes go out oldest first, one at a time. A failed
//! write keeps its buffer and is retried first on the next flush: ENOSPC or EIO fail the call
//! with a [`StorageError`], never panic, and the partition works again when the fault clears.
//! The buffer starts at 128 KiB and doubles up to 1 MiB while a partition keeps filling it
//! (larger direct-I/O writes at queue depth 1 run faster), and returns to 128 KiB when syncs
//! flush it mostly empty; a batch larger than the buffer gets one of its own size. Buffers
//! come from glommio's DMA pool (`io_memory`): size the pool for two buffers per busy
//! partition, or allocations fall back to the heap.
//!
//! Writes never extend the file: before a write would pass the active segment's size, the
//! file is grown with `fallocate` (mode 0: allocated, sized, reading as zeros) a quarter of
//! what it holds ahead (1-16 MiB, never past `segment.bytes`); the roll cuts it back to its
//! logical size, and recovery reads the zeros beyond the last batch as the clean end. Write
//! positions are aligned to the filesystem block (4 KiB on ext4) even where the device
//! accepts 512 bytes. Both because ext4 runs an extending or block-unaligned direct write
//! under the inode's exclusive lock, so io_uring's non-blocking attempt fails and the write
//! is handed to a kernel worker thread, which blocks on it (extending writes are waited for
//! synchronously) and inherits the shard's CPU. Traced with the `iomap_dio_rw_begin`
//! tracepoint during a 16-partition produce run (perf/README.md, "Tracing the write path"):
//! before, every log write ran on an `iou-wrk` thread and extended the file, 87% of them
//! starting inside a 4 KiB block; after, none extends and all are block-aligned. They still
//! run on worker threads: each write starts with the rewritten, already written last block
//! and continues into unwritten (fallocated) blocks, which ext4 does not treat as an
//! overwrite. Writing that block separately, or recycling written segment files, is what
//! remains to keep writes on the shard's own submission path.
//!
//! Preallocation (`preallocate`, `fallocate(KEEP_SIZE)` of the whole segment) reserves the
//! space of the whole segment up front; the growth above still sets the size.
//!
//! Segments roll when the next batch would take the active segment past `segment_bytes`, or
//! when the segment is older than `segment_ms`. Rolling writes out the old segment, cuts it to
//! its logical size, creates the new segment (preallocated with `fallocate(KEEP_SIZE)` when
//! `preallocate` is set) and switches appends to it. The rest, which only durability needs,
//! is "sealing" and runs in a background task: sync the directory (the new file's entry), the
//! old segment's fdatasync, its index files, the checkpoint. Until sealing is done, every
//! fdatasync of the new segment, every checkpoint, retention, the next roll and close finish it
//! first, so nothing of the new segment is reported durable before the old one is. Timed in
//! the code at ~1 GB/s into 16 partitions: a roll then held appends 1-6 ms, and sealing took
//! 15-44 ms in the background. A crash before sealing finishes leaves the checkpoint at or
//! before the old segment, so recovery scans it and drops anything after a torn end.
//!
//! # Recovery
//! `open` lists the directory, removes stray temporary files and orphan indexes, and opens
//! every segment. A sealed segment below the checkpoint's recovery point whose index covers
//! exactly its file size is trusted without reading it; otherwise it is scanned (all of them
//! if the checkpoint is missing or damaged, since the producer state must then be rebuilt). The active (last) segment is scanned from the
//! checkpoint's recovery point (or from its start if the checkpoint does not match), checking
//! each batch's length, magic, counts, CRC-32C and that offsets are dense and increasing;
//! the scan always starts at least `VERIFY_TAIL_BYTES` (4 MiB) before the end the checkpoint
//! covers, so damage done to the tail while the broker was stopped is found at start. The
//! log is truncated at the first torn or corrupt batch (zero padding included); each
//! truncation is logged on one line with the offset, position and bytes cut. Start-up time
//! therefore grows with the tail written since the last checkpoint (at most
//! [`CHECKPOINT_INTERVAL_BYTES`] plus what was unsynced), not with the size of the log.
//!
//! The idempotent-producer state (per producer id: epoch and its last 5 batches) comes from
//! the checkpoint and is rebuilt by replaying the headers of the scanned tail.
//!
//! # Retention
//! `retention_ms` and `retention_bytes` delete whole sealed segments, oldest first;
//! [`PartitionLog::delete_records_before`] advances the log start offset (made durable in the
//! checkpoint before it returns) and deletes the segments wholly below it. The log start
//! offset never goes back.

mod cache;
mod checkpoint;
mod format;
mod partition;
mod producer;
mod quarantine;
mod read_memory;
mod recover;
mod replica;
mod segment;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
pub(crate) mod test_util;

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::model::{BatchError, Offset, ProducerEpoch, ProducerId, Sequence};

pub use cache::BatchCache;
pub use partition::PartitionLog;
pub use producer::ProducerBatch;
pub use quarantine::{is_quarantine_file, QUARANTINE_PREFIX};
pub use read_memory::{ReadMemory, READ_MEMORY_BYTES_PER_SHARD};
pub use replica::RaftState;

/// Bytes of log between two checkpoints of the active segment: bounds the tail that
/// recovery must scan after a crash (≈ 10 ms of scanning at CRC-32C speed).
pub const CHECKPOINT_INTERVAL_BYTES: u64 = 64 * 1024 * 1024;

/// Which timestamp a partition keeps in each batch's maxTimestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps are kept.
    CreateTime,
    /// The broker stamps its clock at append.
    LogAppendTime,
}

/// Decode `bytes` as each of the files a partition reads back at start (checkpoint, offset
/// index, time index) and drop the results: an entry point for the fuzz targets in `fuzz/`.
#[doc(hidden)]
pub fn decode_state_files(bytes: &[u8]) {
    let _ = checkpoint::Checkpoint::decode(bytes);
    let _ = segment::decode_index(bytes, 0);
    let _ = segment::decode_time_index(bytes, 0);
}

/// Per-partition log settings (Kafka's topic configs, units last).
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// Roll the active segment before it exceeds this size (segment.bytes).
    pub segment_bytes: u64,
    /// Roll the active segment once it is this old (segment.ms).
    pub segment_ms: i64,
    /// Bytes of log between two sparse-index entries (index.interval.bytes).
    pub index_interval_bytes: u32,
    /// Delete sealed segments whose newest timestamp is older than this; -1 = forever.
    pub retention_ms: i64,
    /// Delete oldest sealed segments while the log is larger than this; -1 = unbounded.
    pub retention_bytes: i64,
    /// Largest batch accepted (max.message.bytes).
    pub max_message_bytes: u32,
    /// CreateTime or LogAppendTime (message.timestamp.type).
    pub timestamp_type: TimestampType,
    /// Reserve `segment_bytes` of disk when a segment is created (fallocate, KEEP_SIZE).
    pub preallocate: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            preallocate: false,
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: Offset,
    /// Offset of the batch's last record.
    pub last_offset: Offset,
    /// The broker's timestamp if the partition uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
    /// True if this was an exact retry of a batch already in the log (nothing appended).
    pub duplicate: bool,
}

/// Whole batches returned by a read.
#[derive(Clone, Debug, Default)]
pub struct ReadBatches {
    /// Complete RecordBatch v2 byte strings, in offset order.
    pub batches: Vec<bytes::Bytes>,
    /// Sum of the batches' lengths.
    pub total_bytes: usize,
    /// True if every batch came from the in-memory cache.
    pub from_cache: bool,
    /// The log start offset when the read was served.
    pub log_start_offset: Offset,
    /// The high watermark when the read was served.
    pub high_watermark: Offset,
}

/// Data that recovery could not read, and what it did about it (logged at open, counted in
/// `/metrics`, quarantine files listed by `ringmq check --data-dir`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryEvent {
    /// The segment concerned (its base offset).
    pub segment_base: Offset,
    /// Position in the segment's log file where the unreadable bytes start.
    pub position: u64,
    /// Bytes set aside or cut.
    pub bytes: u64,
    /// Why they could not be read.
    pub reason: String,
    /// What was done with them.
    pub action: RecoveryAction,
}

/// What recovery did with bytes it could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryAction {
    /// An unsynced tail (after the checkpoint's recovery point), torn by a crash: truncated,
    /// as Kafka does.
    Cut,
    /// Synced bytes: copied to this quarantine file, then cut from the segment. Later
    /// segments are kept; their offsets follow a gap.
    Quarantined(PathBuf),
    /// Offsets `[from, to)` are missing between two synced segments (a segment file lost);
    /// the later segments are kept.
    Gap { from: Offset, to: Offset },
}

impl RecoveryEvent {
    /// True if synced data was set aside (not an ordinary torn tail).
    pub fn is_quarantine(&self) -> bool {
        !matches!(self.action, RecoveryAction::Cut)
    }
}

/// Why a storage operation failed. The server maps these to Kafka error codes.
#[derive(Debug)]
pub enum StorageError {
    /// A disk operation failed (EIO and others): KAFKA_STORAGE_ERROR.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The disk is full (ENOSPC): KAFKA_STORAGE_ERROR; retried on the next call.
    NoSpace { op: &'static str, path: PathBuf },
    /// The requested offset is outside `[log_start, log_end]`: OFFSET_OUT_OF_RANGE.
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    /// The batch failed validation, or a batch read from disk is corrupt: CORRUPT_MESSAGE.
    CorruptBatch(BatchError),
    /// The batch exceeds max.message.bytes: MESSAGE_TOO_LARGE.
    MessageTooLarge { size: usize, max: u32 },
    /// Sequence gap for an idempotent producer: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrderSequence {
        producer_id: ProducerId,
        expected: Sequence,
        received: Sequence,
    },
    /// A stale producer epoch: INVALID_PRODUCER_EPOCH.
    InvalidProducerEpoch {
        producer_id: ProducerId,
        current: ProducerEpoch,
        received: ProducerEpoch,
    },
    /// The log was closed or removed: NOT_LEADER_OR_FOLLOWER (the partition moved).
    Closed,
    /// A replicated batch names another base offset than the log end (a replica bug or a
    /// damaged log under it): nothing was stored.
    Misplaced {
        base_offset: Offset,
        log_end: Offset,
    },
    /// A truncation point that is not a batch boundary inside the log.
    BadTruncation { offset: Offset, reason: String },
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if crate::io::is_no_space(&source) {
            StorageError::NoSpace { op, path }
        } else {
            StorageError::Io { op, path, source }
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            StorageError::NoSpace { op, path } => {
                write!(f, "{op} {}: no space left on device", path.display())
            }
            StorageError::OffsetOutOfRange {
                requested,
                log_start,
                log_end,
            } => write!(
                f,
                "offset {requested} out of range [{log_start}, {log_end}]"
            ),
            StorageError::CorruptBatch(e) => write!(f, "corrupt record batch: {e}"),
            StorageError::MessageTooLarge { size, max } => {
                write!(f, "batch of {size} bytes exceeds max.message.bytes {max}")
            }
            StorageError::OutOfOrderSequence {
                producer_id,
                expected,
                received,
            } => write!(
                f,
                "producer {producer_id}: expected sequence {expected}, received {received}"
            ),
            StorageError::InvalidProducerEpoch {
                producer_id,
                current,
                received,
            } => write!(
                f,
                "producer {producer_id}: epoch {received} is older than {current}"
            ),
            StorageError::Closed => write!(f, "partition log is closed"),
            StorageError::Misplaced {
                base_offset,
                log_end,
            } => write!(
                f,
                "replicated batch at offset {base_offset}, but the log ends at {log_end}"
            ),
            StorageError::BadTruncation { offset, reason } => {
                write!(f, "cannot truncate at offset {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            StorageError::CorruptBatch(e) => Some(e),
            _ => None,
        }
    }
}
