//! [`PartitionLog`]: appends, group commit, reads, retention. Recovery lives in `recover.rs`.
//!
//! All mutable state sits in one `RefCell<State>`; every method borrows it only between
//! awaits. Two async locks order the I/O: `write_lock` (one write, roll or checkpoint at a
//! time, so a rewrite of the last block is never overtaken by an older write) and
//! the group-commit [`Rounds`] (one round at a time; every caller arriving meanwhile waits
//! for it to end, then finds itself covered or starts the next round, which covers them all).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use glommio::sync::{Permit, Semaphore};

use super::cache::{BatchCache, LogId};
use super::checkpoint::{Checkpoint, Mark, CHECKPOINT_FILE};
use super::format::write_atomic;
use super::producer::{ProducerBatch, ProducerStates, SequenceCheck};
use super::recover::create_segment_file;
use super::segment::{segment_paths, Segment, MAX_SEGMENT_BYTES};
use super::CHECKPOINT_INTERVAL_BYTES;
use super::{AppendInfo, LogConfig, ReadBatches, StorageError, TimestampType};
use crate::base::now_ms;
use crate::io::{align_down, align_up, Disk, DiskFile, IoBuffer};
use crate::model::{
    set_log_append_time, stamp_batch, BatchError, BatchHeader, LeaderEpoch, Offset,
};

/// Smallest capacity of a partition's write buffer: appends are copied here and flushed in
/// one write. Each partition holds one at all times (a shard with 1000 partitions: 128 MiB).
pub const WRITE_BUFFER_BYTES: usize = 128 * 1024;
/// Written but unsynced data kept per partition so that a failed fdatasync can be followed
/// by rewriting it (beyond this the oldest is released; `never` durability never syncs).
pub const MAX_UNSYNCED_RETAINED_BYTES: usize = 4 * 1024 * 1024;
/// A partition that keeps filling its buffer doubles it up to this: direct-I/O writes at
/// queue depth 1 run ~1.0 GB/s at 128 KiB and ~1.8-2.0 GB/s at 1 MiB on the development VM.
/// A batch larger than the buffer gets a buffer of its own size.
pub const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;
/// Full write buffers a partition may queue for a background write while appends go on into
/// a fresh buffer; with this many queued, an append waits for the writes. Bounds a
/// partition's buffers at (this + 1) × `MAX_WRITE_BUFFER_BYTES` (plus oversized batches).
pub const MAX_QUEUED_WRITES: usize = 3;
/// How far ahead of its writes the active segment's file is allocated and sized: a quarter
/// of the bytes written so far, within these bounds (and never past `segment.bytes`).
const MIN_ALLOCATE_AHEAD_BYTES: u64 = 1 << 20;
const MAX_ALLOCATE_AHEAD_BYTES: u64 = 16 << 20;
/// Largest single direct-I/O read issued by a fetch.
const MAX_READ_CHUNK_BYTES: usize = 16 << 20;
/// Smallest read issued by a fetch (read-ahead for small fetches).
const MIN_READ_CHUNK_BYTES: usize = 64 << 10;

pub(super) type FileOf<D> = <D as Disk>::File;
pub(super) type BufOf<D> = <FileOf<D> as DiskFile>::Buffer;

/// The aligned buffer of the active segment: `buf[..len]` are the bytes from file position
/// `pos` (aligned) on; the first `len % alignment` of the last block may already be on disk.
pub(super) struct Writer<D: Disk> {
    pub buf: BufOf<D>,
    pub pos: u64,
    pub len: usize,
    /// Writes to do before anything newer, in order: ones that failed, and written but
    /// unsynced ones requeued after a failed fdatasync. Retried with the same bytes.
    pub pending: VecDeque<WriteJob<D>>,
    /// Completed writes not yet covered by a successful fdatasync, kept (shared, no copy) so
    /// that a failed fdatasync can write them again: after one, Linux may have dropped them.
    pub unsynced: VecDeque<WriteJob<D>>,
    pub unsynced_bytes: usize,
    /// The active segment's file is allocated and sized at least this far (`extend_to`).
    pub allocated: u64,
}

pub(super) struct WriteJob<D: Disk> {
    file: Rc<FileOf<D>>,
    buf: Rc<BufOf<D>>,
    pos: u64,
    mark: Mark,
}

pub(super) struct State<D: Disk> {
    pub config: LogConfig,
    pub closed: bool,
    pub log_start: Offset,
    /// By base offset; the last one is the active segment.
    pub segments: BTreeMap<Offset, Segment<FileOf<D>>>,
    pub writer: Writer<D>,
    pub producers: ProducerStates,
    /// Data before this mark is written to the file.
    pub written: Mark,
    /// Data before this mark is fdatasync'ed.
    pub synced: Mark,
    /// The recovery point of the last checkpoint.
    pub checkpointed: Mark,
    pub checkpoint_interval_bytes: u64,
    pub rolling: bool,
    /// The last write or fdatasync failed and nothing has been written since: an append
    /// first retries the writes, and fails (storing nothing) if they fail again.
    pub faulted: bool,
    /// The segment sealed by the last roll, until it is fdatasync'ed and its indexes and
    /// the checkpoint are written. Appends go on into the new segment meanwhile; every
    /// fdatasync of the new segment and every checkpoint finishes this first, so `synced`
    /// never passes unsynced bytes of the sealed segment.
    pub sealing: Option<Sealing<D>>,
}

pub(super) struct Sealing<D: Disk> {
    file: Rc<FileOf<D>>,
    /// End of the sealed segment (its next offset is the new segment's base).
    mark: Mark,
    index: Vec<u8>,
    time_index: Vec<u8>,
}

pub(super) struct Shared<D: Disk> {
    pub disk: D,
    pub dir: PathBuf,
    /// What recovery could not read when the log was opened.
    pub recovery: Vec<super::RecoveryEvent>,
    pub cache: BatchCache,
    pub log_id: LogId,
    pub write_lock: Semaphore,
    /// A background task is writing the queued buffers (`Writer::pending`).
    pub writing_queued: Cell<bool>,
    pub rounds: Rounds,
    pub state: RefCell<State<D>>,
}

/// Group-commit rounds: at most one write + fdatasync in flight per partition. Waiters are
/// woken together when it ends. (Not a semaphore: glommio's lets the releasing task take the
/// permit again before the woken waiters run, which starved them and cost group commit.)
#[derive(Default)]
pub(super) struct Rounds {
    in_flight: Cell<bool>,
    finished: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Rounds {
    /// Resolves once a round has finished after the `seen`-th.
    fn wait_for_end(&self, seen: u64) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.finished.get() != seen {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// Marks a round in flight; ends it (waking every waiter) when dropped, even on error or
/// cancellation.
struct RoundGuard<'a>(&'a Rounds);

impl<'a> RoundGuard<'a> {
    fn start(rounds: &'a Rounds) -> Self {
        rounds.in_flight.set(true);
        RoundGuard(rounds)
    }
}

impl Drop for RoundGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(false);
        self.0.finished.set(self.0.finished.get() + 1);
        let waiters = std::mem::take(&mut *self.0.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }
}

/// One partition's log, owned by one shard. Cheap to clone (an `Rc`); clones are the same
/// log. Safe to call from many tasks of the owning executor at once; `!Send`.
pub struct PartitionLog<D: Disk> {
    pub(super) shared: Rc<Shared<D>>,
}

impl<D: Disk> Clone for PartitionLog<D> {
    fn clone(&self) -> Self {
        PartitionLog {
            shared: self.shared.clone(),
        }
    }
}

/// Who hands a batch to [`PartitionLog::append_as`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mode {
    /// A producer's batch: the sequence is checked, LogAppendTime applied, the offset given.
    Client,
    /// A raft entry, stamped already: stored exactly as given, at the offset it names (the
    /// log end), never refused for its producer sequence (every replica stores the same).
    Replicated,
}

enum Step {
    Done(AppendInfo),
    Roll(Offset),
    Flush,
}

/// What `make_room` did.
#[derive(PartialEq)]
enum Room {
    Ready,
    /// The full buffer was queued for a background write; a fresh one has room.
    Queued,
    /// Too many writes queued: flush before appending.
    Wait,
}

/// What [`next_batch`] found at the cursor of a disk read.
enum Next {
    /// A whole, valid batch at the expected offset, and its last offset.
    Batch(Bytes, Offset),
    /// A batch of this many bytes that continues past the bytes read.
    Partial(usize),
}

/// The batch at `cursor` of `data` (file position `pos`; its header `h`), which must start at
/// offset `at` and end by `limit`. The bytes come from disk, so nothing in them is trusted.
fn next_batch(
    data: &Bytes,
    cursor: usize,
    h: &BatchHeader<'_>,
    pos: u64,
    at: Offset,
    limit: u64,
) -> Result<Next, BatchError> {
    let size = h.total_bytes()?;
    if pos + size as u64 > limit {
        let available = (limit - pos) as usize;
        return Err(BatchError::Truncated {
            needed: size,
            available,
        });
    }
    if cursor + size > data.len() {
        return Ok(Next::Partial(size));
    }
    let batch = data.slice(cursor..cursor + size);
    let h = BatchHeader::parse(&batch)?;
    h.validate()?;
    if h.base_offset() != at {
        return Err(BatchError::BadCounts {
            last_offset_delta: (h.base_offset() - at) as i32,
            records_count: -1,
        });
    }
    let last = h.last_offset();
    Ok(Next::Batch(batch, last))
}

fn max_mark(a: Mark, b: Mark) -> Mark {
    if b.next_offset > a.next_offset {
        b
    } else {
        a
    }
}

impl<D: Disk> State<D> {
    pub fn active(&self) -> &Segment<FileOf<D>> {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// See [`PartitionLog::high_watermark`].
    pub fn high_watermark(&self) -> Offset {
        self.written.next_offset
    }

    pub fn log_end(&self) -> Offset {
        self.active().next_offset
    }
    /// The segment holding `offset`, or the next one if `offset` lies in a gap left by
    /// quarantine (served from the next segment on).
    fn segment_for(&self, offset: Offset) -> Option<&Segment<FileOf<D>>> {
        let seg = self.segments.range(..=offset).next_back()?.1;
        if offset < seg.next_offset {
            return Some(seg);
        }
        Some(
            self.segments
                .range(offset + 1..)
                .next()
                .map_or(seg, |(_, s)| s),
        )
    }
    fn out_of_range(&self, requested: Offset) -> StorageError {
        let (log_start, log_end) = (self.log_start, self.log_end());
        StorageError::OffsetOutOfRange {
            requested,
            log_start,
            log_end,
        }
    }
    /// Whether an append of `batch_bytes` at `now` must wait: roll the active segment first
    /// (full, too old, or a roll in progress), or flush because the disk failed (nothing more
    /// is stored until a write succeeds again).
    fn blocked(&self, batch_bytes: usize, now: i64) -> Option<Step> {
        let active = self.active();
        let segment_bytes = self.config.segment_bytes.min(MAX_SEGMENT_BYTES);
        let too_big = active.size_bytes + batch_bytes as u64 > segment_bytes;
        let too_old = now.saturating_sub(active.created_ms) >= self.config.segment_ms;
        if self.rolling || (active.size_bytes > 0 && (too_big || too_old)) {
            return Some(Step::Roll(active.base_offset));
        }
        self.faulted.then_some(Step::Flush)
    }
    fn check_open(&self) -> Result<(), StorageError> {
        if self.closed {
            Err(StorageError::Closed)
        } else {
            Ok(())
        }
    }
}

impl<D: Disk> PartitionLog<D> {
    pub(super) fn state(&self) -> std::cell::Ref<'_, State<D>> {
        self.shared.state.borrow()
    }
    pub(super) fn state_mut(&self) -> std::cell::RefMut<'_, State<D>> {
        self.shared.state.borrow_mut()
    }
    fn path_of(&self, base: Offset) -> PathBuf {
        segment_paths(&self.shared.dir, base)[0].clone()
    }
    pub(super) async fn lock_writes(&self) -> Result<Permit<'_>, StorageError> {
        self.shared
            .write_lock
            .acquire_permit(1)
            .await
            .map_err(|_| StorageError::Closed)
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// What recovery could not read when this log was opened (empty after a clean stop).
    pub fn recovery_events(&self) -> &[super::RecoveryEvent] {
        &self.shared.recovery
    }

    /// Append one RecordBatch v2 (see the module docs for what is checked and stamped).
    /// Resolves once the batch is visible to readers; not yet durable (see `sync_through`).
    pub async fn append(
        &self,
        batch: Bytes,
        leader_epoch: LeaderEpoch,
    ) -> Result<AppendInfo, StorageError> {
        let header = BatchHeader::parse(&batch).map_err(StorageError::CorruptBatch)?;
        let total = header.validate().map_err(StorageError::CorruptBatch)?;
        if total != batch.len() {
            return Err(StorageError::CorruptBatch(BatchError::BadLength(
                header.batch_length(),
            )));
        }
        let max = self.state().config.max_message_bytes;
        if total > max as usize {
            return Err(StorageError::MessageTooLarge { size: total, max });
        }
        self.append_as(batch, leader_epoch, Mode::Client).await
    }

    /// Append a validated batch in `mode` (the loop of [`Self::append`]).
    pub(super) async fn append_as(
        &self,
        batch: Bytes,
        leader_epoch: LeaderEpoch,
        mode: Mode,
    ) -> Result<AppendInfo, StorageError> {
        loop {
            match self.try_append(&batch, leader_epoch, mode)? {
                Step::Done(info) => return Ok(info),
                Step::Roll(seen_base) => self.roll(seen_base).await?,
                Step::Flush => self.flush().await?,
            }
        }
    }

    /// The synchronous part of an append: checks, offset assignment and the copy, atomically.
    fn try_append(
        &self,
        batch: &Bytes,
        leader_epoch: LeaderEpoch,
        mode: Mode,
    ) -> Result<Step, StorageError> {
        let mut st = self.state_mut();
        st.check_open()?;
        let now = now_ms();
        if let Some(step) = st.blocked(batch.len(), now) {
            return Ok(step);
        }
        let h = BatchHeader::parse(batch).map_err(StorageError::CorruptBatch)?;
        let (producer_id, epoch) = (h.producer_id(), h.producer_epoch());
        let (first_seq, last_seq) = (h.base_sequence(), h.last_sequence());
        if mode == Mode::Replicated && h.base_offset() != st.log_end() {
            return Err(StorageError::Misplaced {
                base_offset: h.base_offset(),
                log_end: st.log_end(),
            });
        }
        let check = match mode {
            Mode::Client => st
                .producers
                .check(producer_id, epoch, first_seq, last_seq)?,
            Mode::Replicated => SequenceCheck::Accept,
        };
        if let SequenceCheck::Duplicate(original) = check {
            return Ok(Step::Done(AppendInfo {
                base_offset: original.base_offset,
                last_offset: original.last_offset,
                log_append_time_ms: -1,
                log_start_offset: st.log_start,
                duplicate: true,
            }));
        }
        let room = self.make_room(&mut st, batch.len());
        if room == Room::Wait {
            return Ok(Step::Flush);
        }
        let (info, stamped) = self.copy_in(&mut st, batch, leader_epoch, now, mode)?;
        let pb = ProducerBatch::of(&h, info.base_offset, info.last_offset);
        st.producers.record(producer_id, epoch, pb, now);
        drop(st);
        if room == Room::Queued {
            self.write_queued_in_background();
        }
        if let Some(stamped) = stamped {
            let cache = &self.shared.cache;
            cache.insert(
                self.shared.log_id,
                info.base_offset,
                info.last_offset,
                stamped,
            );
        }
        Ok(Step::Done(info))
    }

    /// Copy `batch` into the write buffer at the log end, stamp its offset and leader epoch
    /// (and the append time under LogAppendTime) and index it. Returns the answer and, if the
    /// cache takes it, a copy of the stamped batch for the cache.
    fn copy_in(
        &self,
        st: &mut State<D>,
        batch: &[u8],
        leader_epoch: LeaderEpoch,
        now: i64,
        mode: Mode,
    ) -> Result<(AppendInfo, Option<Bytes>), StorageError> {
        let log_append =
            mode == Mode::Client && st.config.timestamp_type == TimestampType::LogAppendTime;
        let interval = st.config.index_interval_bytes;
        let base_offset = st.log_end();
        let State {
            writer,
            segments,
            log_start,
            ..
        } = st;
        let at = writer.len;
        let dst = &mut writer.buf.as_bytes_mut()[at..at + batch.len()];
        dst.copy_from_slice(batch);
        stamp_batch(dst, base_offset, leader_epoch);
        if log_append {
            set_log_append_time(dst, now);
        }
        let max_ts = crate::records::batch_max_timestamp(dst);
        let h = BatchHeader::parse(dst).map_err(StorageError::CorruptBatch)?;
        let last_offset = h.last_offset();
        let active = segments.values_mut().next_back().expect("active segment");
        active.note_batch(writer.pos + at as u64, &h, batch.len(), interval, max_ts);
        writer.len += batch.len();
        let cached = self.shared.cache.accepts(dst.len());
        let stamped = cached.then(|| Bytes::copy_from_slice(dst));
        let info = AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms: if log_append { now } else { -1 },
            log_start_offset: *log_start,
            duplicate: false,
        };
        Ok((info, stamped))
    }

    /// Ensure the write buffer can take `len` more bytes. A full buffer holding unwritten
    /// bytes is queued for writing (up to `MAX_QUEUED_WRITES`) and replaced by a fresh one,
    /// so that appending overlaps writing; past the bound the caller must flush first.
    fn make_room(&self, st: &mut State<D>, len: usize) -> Room {
        if st.writer.len + len <= st.writer.buf.as_bytes().len() {
            return Room::Ready;
        }
        let mut room = Room::Ready;
        let unwritten = st.written.next_offset != st.log_end();
        if unwritten || !st.writer.pending.is_empty() {
            if !unwritten || st.writer.pending.len() >= MAX_QUEUED_WRITES {
                return Room::Wait;
            }
            let job = Self::take_job(st);
            st.writer.pending.push_back(job);
            room = Room::Queued;
            if st.writer.len + len <= st.writer.buf.as_bytes().len() {
                return room;
            }
        }
        // Grow: the buffer holds nothing unwritten, or only the partial last block of a
        // queued write, so the copy is small.
        let file = st.active().file.clone();
        let needed = align_up((st.writer.len + len) as u64, file.alignment()) as usize;
        let mut bigger = file.alloc_buffer(needed.max(WRITE_BUFFER_BYTES));
        let kept = st.writer.len;
        bigger.as_bytes_mut()[..kept].copy_from_slice(&st.writer.buf.as_bytes()[..kept]);
        st.writer.buf = bigger;
        room
    }

    /// Start a task writing the queued buffers, unless one is running. A failed write stays
    /// queued: the next flush, sync or append past the bound retries it and reports the error.
    fn write_queued_in_background(&self) {
        if self.shared.writing_queued.replace(true) {
            return;
        }
        let log = self.clone();
        glommio::spawn_local(async move {
            let result = log.write_queued().await;
            log.shared.writing_queued.set(false);
            if let Err(e) = result {
                crate::warn!("ringmq storage: {}: queued write: {e}", log.dir().display());
            }
        })
        .detach();
    }

    /// Write the queued buffers, oldest first.
    async fn write_queued(&self) -> Result<(), StorageError> {
        let _write = self.lock_writes().await?;
        self.write_queued_locked().await
    }

    /// As `write_queued`; the caller holds `write_lock`.
    async fn write_queued_locked(&self) -> Result<(), StorageError> {
        loop {
            let job = self.state_mut().writer.pending.pop_front();
            match job {
                Some(job) => self.run_job(job).await?,
                None => return Ok(()),
            }
        }
    }

    /// Write buffered bytes to the file (no fdatasync).
    pub async fn flush(&self) -> Result<(), StorageError> {
        let _write = self.lock_writes().await?;
        self.flush_locked().await.map(|_| ())
    }

    /// Write everything appended so far; returns the active file and the written mark.
    /// The caller holds `write_lock`.
    pub(super) async fn flush_locked(&self) -> Result<(Rc<FileOf<D>>, Mark), StorageError> {
        self.write_queued_locked().await?;
        let job = {
            let mut st = self.state_mut();
            if st.written.next_offset == st.log_end() {
                st.faulted = false;
                return Ok((st.active().file.clone(), st.written));
            }
            Self::take_job(&mut st)
        };
        let result = (job.file.clone(), job.mark);
        self.run_job(job).await?;
        self.state_mut().faulted = false;
        Ok(result)
    }

    /// Hand the filled buffer over for writing (zero-padded to the alignment) and start a new
    /// one holding a copy of the partially filled last block.
    fn take_job(st: &mut State<D>) -> WriteJob<D> {
        let active = st.active();
        let (file, mark_base, size, next) = (
            active.file.clone(),
            active.base_offset,
            active.size_bytes,
            active.next_offset,
        );
        let align = file.alignment();
        let w = &mut st.writer;
        let tail_start = align_down(w.len as u64, align) as usize;
        let write_len = align_up(w.len as u64, align) as usize;
        // A partition that fills its buffer (streaming) gets a bigger one, for larger writes;
        // one flushed mostly empty (a sync per request) returns to the smallest.
        let old_capacity = w.buf.as_bytes().len();
        let capacity = if w.len * 2 >= old_capacity {
            (old_capacity * 2).clamp(WRITE_BUFFER_BYTES, MAX_WRITE_BUFFER_BYTES)
        } else {
            WRITE_BUFFER_BYTES
        };
        let mut fresh = file.alloc_buffer(align_up(capacity as u64, align) as usize);
        fresh.as_bytes_mut()[..w.len - tail_start]
            .copy_from_slice(&w.buf.as_bytes()[tail_start..w.len]);
        let mut old = std::mem::replace(&mut w.buf, fresh);
        old.as_bytes_mut()[w.len..write_len].fill(0);
        old.trim_to(write_len);
        let job_pos = w.pos;
        w.pos += tail_start as u64;
        w.len -= tail_start;
        let mark = Mark {
            segment_base: mark_base,
            position: size,
            next_offset: next,
        };
        WriteJob {
            file,
            buf: Rc::new(old),
            pos: job_pos,
            mark,
        }
    }

    /// Grow the active segment's file ahead of a write ending at `end`, so that the write
    /// lands inside the file's size in allocated blocks. A write that extends the file, or
    /// fills a hole, makes ext4 take the inode's exclusive lock, so io_uring's non-blocking
    /// attempt fails and the write runs on a kernel worker thread (which inherits the shard's
    /// CPU), synchronously, with the size change journalled. If growing fails (disk full),
    /// the write still goes ahead and extends the file itself, reporting its own error.
    async fn allocate_ahead(&self, job: &WriteJob<D>, end: u64) {
        let target = {
            let st = self.state();
            if end <= st.writer.allocated || job.mark.segment_base != st.active().base_offset {
                return;
            }
            let ahead = (end / 4).clamp(MIN_ALLOCATE_AHEAD_BYTES, MAX_ALLOCATE_AHEAD_BYTES);
            let limit = st.config.segment_bytes.min(MAX_SEGMENT_BYTES).max(end);
            align_up((end + ahead).min(limit), job.file.alignment())
        };
        if job.file.extend_to(target).await.is_ok() {
            let mut st = self.state_mut();
            if st.active().base_offset == job.mark.segment_base {
                st.writer.allocated = st.writer.allocated.max(target);
            }
        }
    }

    async fn run_job(&self, job: WriteJob<D>) -> Result<(), StorageError> {
        let end = job.pos + job.buf.as_bytes().len() as u64;
        self.allocate_ahead(&job, end).await;
        match job.file.write_at(job.buf.clone(), job.pos).await {
            Ok(()) => {
                let mut st = self.state_mut();
                st.written = max_mark(st.written, job.mark);
                let w = &mut st.writer;
                w.unsynced_bytes += job.buf.as_bytes().len();
                w.unsynced.push_back(job);
                while w.unsynced_bytes > MAX_UNSYNCED_RETAINED_BYTES {
                    match w.unsynced.pop_front() {
                        Some(old) => w.unsynced_bytes -= old.buf.as_bytes().len(),
                        None => break,
                    }
                }
                Ok(())
            }
            Err(e) => {
                let path = self.path_of(job.mark.segment_base);
                let mut st = self.state_mut();
                st.writer.pending.push_front(job);
                st.faulted = true;
                Err(StorageError::io("write", path, e))
            }
        }
    }

    /// Resolve once every offset up to `offset` (inclusive; clamped to the log end) is written
    /// and fdatasync'ed. Group commit: one round covers every waiter; see the module docs.
    pub async fn sync_through(&self, offset: Offset) -> Result<(), StorageError> {
        loop {
            if self.is_synced_through(offset)? {
                return Ok(());
            }
            let rounds = &self.shared.rounds;
            if rounds.in_flight.get() {
                // Covered by the round in flight, or by the next one: wait, then look again.
                rounds.wait_for_end(rounds.finished.get()).await;
                continue;
            }
            let _round = RoundGuard::start(rounds);
            self.sync_round().await?;
        }
    }

    fn is_synced_through(&self, offset: Offset) -> Result<bool, StorageError> {
        let st = self.state();
        st.check_open()?;
        Ok(offset.min(st.log_end() - 1) < st.synced.next_offset)
    }

    /// One group-commit round: write everything appended so far, then one fdatasync.
    async fn sync_round(&self) -> Result<(), StorageError> {
        let (file, mark) = {
            let _write = self.lock_writes().await?;
            self.finish_seal_locked().await?;
            self.flush_locked().await?
        };
        self.sync_file(&file, mark).await?;
        let due = {
            let st = self.state();
            let cp = st.checkpointed;
            let interval = st.checkpoint_interval_bytes;
            mark.segment_base != cp.segment_base || mark.position >= cp.position + interval
        };
        if due {
            let _write = self.lock_writes().await?;
            if let Err(e) = self.write_checkpoint_locked().await {
                crate::warn!(
                    "ringmq storage: {}: checkpoint failed: {e}",
                    self.shared.dir.display()
                );
            }
        }
        Ok(())
    }

    /// fdatasync `file`, whose writes cover everything before `mark`.
    async fn sync_file(&self, file: &FileOf<D>, mark: Mark) -> Result<(), StorageError> {
        match file.fdatasync().await {
            Ok(()) => {
                Self::synced_up_to(&mut self.state_mut(), mark);
                Ok(())
            }
            Err(e) => {
                let mut st = self.state_mut();
                Self::requeue_unsynced(&mut st);
                st.faulted = true;
                drop(st);
                let path = self.path_of(mark.segment_base);
                Err(StorageError::io("fdatasync", path, e))
            }
        }
    }

    /// A successful fdatasync covered everything before `mark`: forget those retained writes.
    fn synced_up_to(st: &mut State<D>, mark: Mark) {
        st.synced = max_mark(st.synced, mark);
        let synced = st.synced.next_offset;
        let w = &mut st.writer;
        while w
            .unsynced
            .front()
            .is_some_and(|job| job.mark.next_offset <= synced)
        {
            if let Some(job) = w.unsynced.pop_front() {
                w.unsynced_bytes -= job.buf.as_bytes().len();
            }
        }
    }

    /// An fdatasync failed: the kernel may have dropped every write since the last good one
    /// (as Linux does), so queue the retained writes again, before anything newer.
    fn requeue_unsynced(st: &mut State<D>) {
        let w = &mut st.writer;
        while let Some(job) = w.unsynced.pop_back() {
            w.pending.push_front(job);
        }
        w.unsynced_bytes = 0;
        if st.written.next_offset > st.synced.next_offset {
            st.written = st.synced;
        }
    }

    /// Write the active segment's indexes and the checkpoint, at the synced mark. The caller
    /// holds `write_lock`.
    pub(super) async fn write_checkpoint_locked(&self) -> Result<(), StorageError> {
        self.write_checkpoint_with_start(None).await
    }

    /// As `write_checkpoint_locked`, recording `log_start` (if given) instead of the current
    /// log start offset: the caller advances it in memory only once this is durable.
    async fn write_checkpoint_with_start(
        &self,
        log_start: Option<Offset>,
    ) -> Result<(), StorageError> {
        self.state_mut().producers.expire(now_ms());
        let (mark, index, time_index, checkpoint) = {
            let st = self.state();
            debug_assert!(
                st.sealing.is_none(),
                "a checkpoint must not pass a sealing segment"
            );
            let active = st.active();
            let mark = if st.synced.segment_base == active.base_offset {
                st.synced
            } else {
                Mark {
                    segment_base: active.base_offset,
                    position: 0,
                    next_offset: active.base_offset,
                }
            };
            let index = active.encode_index(mark.position, mark.next_offset);
            let time_index = active.encode_time_index(mark.next_offset);
            let producers = st.producers.clone();
            let cp = Checkpoint {
                log_start_offset: log_start.unwrap_or(st.log_start).max(st.log_start),
                recovery_point: mark,
                producers,
            };
            (mark, index, time_index, cp.encode())
        };
        let [_, index_path, time_path] = segment_paths(&self.shared.dir, mark.segment_base);
        let cp_path = self.shared.dir.join(CHECKPOINT_FILE);
        for (path, bytes) in [
            (&index_path, &index),
            (&time_path, &time_index),
            (&cp_path, &checkpoint),
        ] {
            write_atomic(&self.shared.disk, path, bytes)
                .await
                .map_err(|e| StorageError::io("write checkpoint", path.clone(), e))?;
        }
        self.state_mut().checkpointed = mark;
        Ok(())
    }

    /// Seal the active segment (if it is still `seen_base`) and start a new one. Returns
    /// once appends can go to the new segment; the sealed one is synced in the background.
    async fn roll(&self, seen_base: Offset) -> Result<(), StorageError> {
        let result = {
            let _write = self.lock_writes().await?;
            {
                let mut st = self.state_mut();
                st.check_open()?;
                if st.active().base_offset != seen_base {
                    return Ok(());
                }
                st.rolling = true;
            }
            let result = self.roll_locked().await;
            self.state_mut().rolling = false;
            result
        };
        if result.is_ok() {
            self.finish_seal_in_background();
        }
        result
    }

    /// Write out the active segment, truncate it to its logical size and switch appends
    /// to a new segment. What only durability needs (the fdatasync, indexes, checkpoint) is
    /// left in `sealing` for `finish_seal_locked`, so a roll does not stall producers.
    async fn roll_locked(&self) -> Result<(), StorageError> {
        self.finish_seal_locked().await?;
        let (file, mark) = self.flush_locked().await?;
        let path = self.path_of(mark.segment_base);
        file.truncate(mark.position)
            .await
            .map_err(|e| StorageError::io("truncate", &path, e))?;
        let (index, time_index) = {
            let st = self.state();
            let active = st.active();
            (
                active.encode_index(mark.position, mark.next_offset),
                active.encode_time_index(mark.next_offset),
            )
        };
        let new_base = mark.next_offset;
        let config = self.config();
        let segment =
            create_segment_file(&self.shared.disk, &self.shared.dir, new_base, &config).await?;
        let mut st = self.state_mut();
        debug_assert!(
            st.writer.pending.is_empty(),
            "flush_locked wrote everything"
        );
        let old = std::mem::replace(
            &mut st.writer,
            Writer {
                buf: segment.file.alloc_buffer(WRITE_BUFFER_BYTES),
                pos: 0,
                len: 0,
                pending: VecDeque::new(),
                unsynced: VecDeque::new(),
                unsynced_bytes: 0,
                allocated: 0,
            },
        );
        // Written but unsynced bytes of the sealed segment stay retained for a retry.
        st.writer.unsynced = old.unsynced;
        st.writer.unsynced_bytes = old.unsynced_bytes;
        st.segments.insert(new_base, segment);
        st.written = Mark {
            segment_base: new_base,
            position: 0,
            next_offset: new_base,
        };
        st.sealing = Some(Sealing {
            file,
            mark,
            index,
            time_index,
        });
        Ok(())
    }

    fn finish_seal_in_background(&self) {
        let log = self.clone();
        glommio::spawn_local(async move {
            let result = match log.lock_writes().await {
                Ok(_write) => log.finish_seal_locked().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) | Err(StorageError::Closed) => {}
                Err(e) => crate::warn!(
                    "ringmq storage: {}: sealing a segment: {e} (retried at the next sync)",
                    log.dir().display()
                ),
            }
        })
        .detach();
    }

    /// Make the sealed segment durable: the directory entry of its successor, its data, its
    /// indexes, then a checkpoint past it. On failure it stays sealing and the error is
    /// returned; the next sync, roll, checkpoint or close tries again. The caller holds
    /// `write_lock`.
    async fn finish_seal_locked(&self) -> Result<(), StorageError> {
        let Some(sealing) = self.state_mut().sealing.take() else {
            return Ok(());
        };
        let dir = &self.shared.dir;
        let synced = async {
            // Writes requeued after a failed fdatasync are rewritten whole blocks, which
            // re-extends the sealed file past its logical end: cut it again.
            self.write_queued_locked().await?;
            let (file, mark) = (&sealing.file, sealing.mark);
            file.truncate(mark.position)
                .await
                .map_err(|e| StorageError::io("truncate", self.path_of(mark.segment_base), e))?;
            self.shared
                .disk
                .sync_dir(dir)
                .await
                .map_err(|e| StorageError::io("sync dir", dir, e))?;
            self.sync_file(&sealing.file, sealing.mark).await
        }
        .await;
        if let Err(e) = synced {
            self.state_mut().sealing = Some(sealing);
            return Err(e);
        }
        let [_, index_path, time_path] = segment_paths(dir, sealing.mark.segment_base);
        for (p, bytes) in [
            (&index_path, &sealing.index),
            (&time_path, &sealing.time_index),
        ] {
            if let Err(e) = write_atomic(&self.shared.disk, p, bytes).await {
                crate::warn!(
                    "ringmq storage: {}: index write failed (rebuilt at recovery): {e}",
                    p.display()
                );
            }
        }
        if let Err(e) = self.write_checkpoint_locked().await {
            crate::warn!("ringmq storage: {}: checkpoint failed: {e}", dir.display());
        }
        Ok(())
    }

    /// Whole batches starting with the one containing `offset` (see the module docs).
    pub async fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<ReadBatches, StorageError> {
        self.read_with(offset, max_bytes, None).await
    }

    /// [`Self::read`] for a fetch response: what is read from disk is charged to the shard's
    /// [`super::ReadMemory`] until the response drops it, and a read that finds it taken for
    /// a second serves what it has (possibly nothing).
    pub async fn read_for_fetch(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<ReadBatches, StorageError> {
        let memory = self.shared.cache.read_memory();
        self.read_with(offset, max_bytes, Some(memory)).await
    }

    async fn read_with(
        &self,
        offset: Offset,
        max_bytes: usize,
        memory: Option<&super::ReadMemory>,
    ) -> Result<ReadBatches, StorageError> {
        let (log_start, high_watermark, from) = self.visible_bounds(offset).await?;
        let mut out = ReadBatches {
            log_start_offset: log_start,
            high_watermark,
            ..Default::default()
        };
        if from >= high_watermark {
            out.from_cache = true;
            return Ok(out);
        }
        let cache = &self.shared.cache;
        if let Some(batches) = cache.read(self.shared.log_id, offset, max_bytes, high_watermark) {
            out.total_bytes = batches.iter().map(Bytes::len).sum();
            out.batches = batches;
            out.from_cache = true;
            return Ok(out);
        }
        let plan = {
            let st = self.state();
            st.check_open()?;
            let Some(seg) = st.segment_for(offset) else {
                return Err(st.out_of_range(offset));
            };
            // Only what is written is read: up to the written mark in its segment (it can
            // move back into a sealed segment after a failed fdatasync), whole segments
            // before it, nothing after it.
            let written = st.written;
            let limit = match seg.base_offset.cmp(&written.segment_base) {
                std::cmp::Ordering::Less => seg.size_bytes,
                std::cmp::Ordering::Equal => written.position,
                std::cmp::Ordering::Greater => return Ok(out),
            };
            if offset.max(seg.base_offset) >= written.next_offset {
                return Ok(out);
            }
            let (pos, at) = seg.position_for(offset);
            (seg.file.clone(), pos, at, limit, seg.base_offset)
        };
        let (file, pos, at, limit, base) = plan;
        let batches = self
            .read_disk(&*file, (base, pos, at, limit), offset, max_bytes, memory)
            .await?;
        out.total_bytes = batches.iter().map(Bytes::len).sum();
        out.batches = batches;
        Ok(out)
    }

    /// The log start offset, the high watermark and the first offset at or after `offset`
    /// that the log holds (past a gap left by quarantine) for a read at `offset` (out of
    /// range unless within [log start, log end]). A read of what is appended but not yet
    /// written first writes it out, so that what a consumer sees is in the file and survives
    /// a crash of the process; when that write fails (disk full), what is written is served.
    async fn visible_bounds(
        &self,
        offset: Offset,
    ) -> Result<(Offset, Offset, Offset), StorageError> {
        let mut flushed = false;
        loop {
            let (log_start, log_end, high_watermark, from) = {
                let st = self.state();
                st.check_open()?;
                if offset < st.log_start || offset > st.log_end() {
                    return Err(st.out_of_range(offset));
                }
                let from = st
                    .segment_for(offset)
                    .map_or(offset, |seg| offset.max(seg.base_offset));
                (st.log_start, st.log_end(), st.high_watermark(), from)
            };
            if from < high_watermark || from >= log_end || flushed {
                return Ok((log_start, high_watermark, from));
            }
            flushed = true;
            if let Err(e) = self.flush().await {
                crate::debug!("ringmq storage: read at {offset} serves what is written: {e}");
            }
        }
    }

    /// Read batches from a segment file from `pos` (the batch at offset `at`), up to `limit`;
    /// with `memory`, each chunk read is charged to it (a chunk that cannot be ends the read).
    async fn read_disk(
        &self,
        file: &FileOf<D>,
        (base, mut pos, mut at, limit): (Offset, u64, Offset, u64),
        offset: Offset,
        max_bytes: usize,
        memory: Option<&super::ReadMemory>,
    ) -> Result<Vec<Bytes>, StorageError> {
        let mut out: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        let mut want = max_bytes.clamp(MIN_READ_CHUNK_BYTES, MAX_READ_CHUNK_BYTES);
        while pos < limit {
            let start = align_down(pos, file.alignment());
            let len = ((limit - start) as usize).min(want + (pos - start) as usize);
            let charge = match memory {
                Some(m) => match m.charge(len).await {
                    Some(c) => Some(c),
                    None => return Ok(out), // the shard's read memory is taken
                },
                None => None,
            };
            let data = file
                .read_at(start, len)
                .await
                .map_err(|e| StorageError::io("read", self.path_of(base), e))?;
            let data = match charge {
                Some(c) => super::read_memory::charged_bytes(data, c),
                None => Bytes::from(data),
            };
            let mut cursor = (pos - start) as usize;
            let mut progressed = false;
            while cursor + crate::model::BATCH_HEADER_BYTES <= data.len() {
                let h = BatchHeader::parse(&data[cursor..]).map_err(StorageError::CorruptBatch)?;
                let (batch, last) = match next_batch(&data, cursor, &h, pos, at, limit) {
                    Ok(Next::Batch(batch, last)) => (batch, last),
                    Ok(Next::Partial(size)) => {
                        if !out.is_empty() && total + size > max_bytes {
                            return Ok(out); // the next batch would not fit: no second read
                        }
                        if !progressed {
                            want = want.max(size + file.alignment());
                        }
                        break;
                    }
                    Err(e) => return self.corrupt(out, e, base, pos),
                };
                let size = batch.len();
                progressed = true;
                at = last + 1;
                pos += size as u64;
                cursor += size;
                if last < offset {
                    continue;
                }
                if !out.is_empty() && total + size > max_bytes {
                    return Ok(out);
                }
                total += size;
                out.push(batch);
                if total >= max_bytes {
                    return Ok(out);
                }
            }
            if !progressed && data.len() < len {
                break; // the file ends early: nothing more to serve
            }
        }
        Ok(out)
    }

    /// A corrupt batch on disk: serve what came before it, or fail if nothing did.
    fn corrupt(
        &self,
        out: Vec<Bytes>,
        e: BatchError,
        base: Offset,
        pos: u64,
    ) -> Result<Vec<Bytes>, StorageError> {
        crate::warn!(
            "ringmq storage: {} segment {base}: corrupt batch at position {pos}: {e}",
            self.shared.dir.display()
        );
        if out.is_empty() {
            Err(StorageError::CorruptBatch(e))
        } else {
            Ok(out)
        }
    }

    /// First offset of the log (advanced by retention and DeleteRecords; never goes back).
    pub fn log_start_offset(&self) -> Offset {
        self.state().log_start
    }

    /// One past the last offset appended.
    pub fn log_end_offset(&self) -> Offset {
        self.state().log_end()
    }

    /// The high watermark: one past the last offset consumers may read. On a single node,
    /// everything written to the segment file (not only appended to the write buffer): a
    /// SIGKILL cannot take back what a consumer was shown. Reads write out what they need
    /// (see `read`), so it trails the log end only between an append and the next read or
    /// flush.
    pub fn high_watermark(&self) -> Offset {
        self.state().high_watermark()
    }

    /// True when a read at `offset` can serve something now: it is written, or appended and
    /// the log's writes are not failing (the read writes it out). A long-poll fetch waits
    /// on this, so that a full disk leaves it waiting instead of spinning.
    pub fn readable_past(&self, offset: Offset) -> bool {
        let st = self.state();
        st.high_watermark() > offset || (!st.faulted && st.log_end() > offset)
    }

    /// Largest maxTimestamp in the log and the base offset of its batch.
    pub fn max_timestamp(&self) -> Option<(i64, Offset)> {
        let st = self.state();
        let best = st
            .segments
            .values()
            .filter(|s| s.max_timestamp >= 0)
            .max_by_key(|s| s.max_timestamp);
        best.map(|s| (s.max_timestamp, s.max_timestamp_offset))
    }

    /// The first record at or after the log start whose timestamp is >= `ts`: its offset and
    /// timestamp (Kafka's exact answer). The time index names where to start; each batch whose
    /// largest timestamp (read from its records when the header is inconsistent) reaches `ts`
    /// is read record by record, decompressed if needed. A batch whose records cannot be read
    /// (over the decompression cap) answers its base offset and largest timestamp.
    pub async fn offset_for_timestamp(
        &self,
        ts: i64,
    ) -> Result<Option<(Offset, i64)>, StorageError> {
        let mut at = {
            let st = self.state();
            st.check_open()?;
            let seg = st.segments.values().find(|s| s.max_timestamp >= ts);
            match seg {
                Some(seg) => seg.offset_for_timestamp(ts).max(st.log_start),
                None => return Ok(None),
            }
        };
        while at < self.log_end_offset() {
            let read = self.read(at, 1 << 20).await?;
            for batch in &read.batches {
                let h = BatchHeader::parse(batch).map_err(StorageError::CorruptBatch)?;
                let max_ts = crate::records::batch_max_timestamp(batch);
                if max_ts >= ts {
                    let start = read.log_start_offset;
                    let found = match crate::records::record_timestamps(batch) {
                        Ok(records) => records.into_iter().find(|(o, t)| *t >= ts && *o >= start),
                        Err(_) => Some((h.base_offset().max(start), max_ts)),
                    };
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                at = h.last_offset() + 1;
            }
            if read.batches.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    /// Replace the configuration; size and time limits apply from the next append.
    pub fn set_config(&self, config: LogConfig) {
        self.state_mut().config = config;
    }

    /// The configuration in force.
    pub fn config(&self) -> LogConfig {
        self.state().config.clone()
    }

    /// Advance the log start offset to `offset` (DeleteRecords), durably, and delete the
    /// segments wholly below it. Returns the new log start offset.
    pub async fn delete_records_before(&self, offset: Offset) -> Result<Offset, StorageError> {
        {
            let st = self.state();
            st.check_open()?;
            if offset > st.log_end() || offset < 0 {
                return Err(st.out_of_range(offset));
            }
            if offset <= st.log_start {
                return Ok(st.log_start);
            }
        }
        self.sync_through(offset - 1).await?;
        self.advance_log_start(offset).await?;
        Ok(self.log_start_offset())
    }

    /// Make a new log start offset durable (checkpoint), then apply it and delete the
    /// segments wholly below it.
    async fn advance_log_start(&self, offset: Offset) -> Result<(), StorageError> {
        {
            let _write = self.lock_writes().await?;
            self.finish_seal_locked().await?;
            self.write_checkpoint_with_start(Some(offset)).await?;
            let mut st = self.state_mut();
            st.log_start = st.log_start.max(offset);
        }
        self.shared
            .cache
            .truncate_before(self.shared.log_id, offset);
        self.remove_segments_below_start().await
    }

    /// Delete whole sealed segments, oldest first, while retention.ms or retention.bytes
    /// says so.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<(), StorageError> {
        let new_start = {
            let st = self.state();
            st.check_open()?;
            let (retention_ms, retention_bytes) =
                (st.config.retention_ms, st.config.retention_bytes);
            let mut total: u64 = st.segments.values().map(|s| s.size_bytes).sum();
            let mut new_start = None;
            // A segment still sealing may be chosen: `advance_log_start` finishes the seal
            // before its checkpoint and before anything is deleted.
            let sealed = st.segments.values().take(st.segments.len() - 1);
            for seg in sealed {
                let by_time = retention_ms >= 0
                    && seg.max_timestamp >= 0
                    && now_ms - seg.max_timestamp > retention_ms;
                let by_size =
                    retention_bytes >= 0 && total - seg.size_bytes >= retention_bytes as u64;
                if !(by_time || by_size) {
                    break;
                }
                total -= seg.size_bytes;
                new_start = Some(seg.next_offset);
            }
            new_start
        };
        match new_start {
            Some(new_start) => self.advance_log_start(new_start).await,
            None => Ok(()),
        }
    }

    /// Remove the sealed segments whose every offset is below the log start.
    pub(super) async fn remove_segments_below_start(&self) -> Result<(), StorageError> {
        let doomed: Vec<Offset> = {
            let mut st = self.state_mut();
            let (log_start, active) = (st.log_start, st.active().base_offset);
            let doomed: Vec<Offset> = st
                .segments
                .values()
                .filter(|s| s.base_offset != active && s.next_offset <= log_start)
                .map(|s| s.base_offset)
                .collect();
            for base in &doomed {
                st.segments.remove(base);
            }
            doomed
        };
        for base in doomed {
            for path in segment_paths(&self.shared.dir, base) {
                match self.shared.disk.remove(&path).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io("remove", path, e)),
                }
            }
        }
        let dir = &self.shared.dir;
        self.shared
            .disk
            .sync_dir(dir)
            .await
            .map_err(|e| StorageError::io("sync dir", dir, e))
    }

    /// Flush, fdatasync and write the indexes and checkpoint; later calls fail with `Closed`.
    pub async fn close(&self) -> Result<(), StorageError> {
        let _write = self.lock_writes().await?;
        if self.state().closed {
            return Ok(());
        }
        self.finish_seal_locked().await?;
        let (file, mark) = self.flush_locked().await?;
        self.sync_file(&file, mark).await?;
        self.write_checkpoint_locked().await?;
        self.state_mut().closed = true;
        self.shared.cache.forget(self.shared.log_id);
        Ok(())
    }

    /// Delete the partition: its directory and everything in it.
    pub async fn remove(self) -> Result<(), StorageError> {
        let _write = self.lock_writes().await?;
        self.state_mut().closed = true;
        self.state_mut().sealing = None;
        self.shared.cache.forget(self.shared.log_id);
        let dir = &self.shared.dir;
        self.shared
            .disk
            .remove_dir_all(dir)
            .await
            .map_err(|e| StorageError::io("remove dir", dir, e))
    }

    /// Test hook: checkpoint more often than [`CHECKPOINT_INTERVAL_BYTES`].
    #[cfg(test)]
    pub(crate) fn set_checkpoint_interval_bytes(&self, bytes: u64) {
        self.state_mut().checkpoint_interval_bytes = bytes;
    }
}

/// Default checkpoint interval, for `recover.rs`.
pub(super) const DEFAULT_CHECKPOINT_INTERVAL_BYTES: u64 = CHECKPOINT_INTERVAL_BYTES;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::dma::DmaDisk;
    use crate::io::sim::{SimDisk, SimFaults};
    use crate::storage::test_util::{batch, idempotent_batch, real_dir, run};

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 8 * 1024,
            index_interval_bytes: 512,
            ..LogConfig::default()
        }
    }

    async fn open_sim(disk: &SimDisk, config: LogConfig) -> PartitionLog<SimDisk> {
        let dir = PathBuf::from("/data/t-0");
        PartitionLog::open(disk.clone(), dir, config, BatchCache::new(1 << 20))
            .await
            .unwrap()
    }

    #[test]
    fn append_read_offsets_and_ranges() {
        run(|| async {
            let disk = SimDisk::new(1);
            let log = open_sim(&disk, small_config()).await;
            for i in 0..20 {
                let info = log
                    .append(batch(3, 100, 1000 + i), LeaderEpoch(5))
                    .await
                    .unwrap();
                assert_eq!((info.base_offset, info.last_offset), (i * 3, i * 3 + 2));
                assert_eq!(info.log_append_time_ms, -1);
            }
            assert_eq!(log.log_end_offset(), 60);
            let r = log.read(4, 1).await.unwrap();
            assert_eq!(r.batches.len(), 1, "at least one batch (KIP-74)");
            let h = BatchHeader::parse(&r.batches[0]).unwrap();
            assert_eq!(
                (h.base_offset(), h.partition_leader_epoch()),
                (3, LeaderEpoch(5))
            );
            let r = log.read(0, 10_000).await.unwrap();
            assert!(r.total_bytes <= 10_000 && r.batches.len() > 1);
            assert!(log.read(60, 100).await.unwrap().batches.is_empty());
            assert!(matches!(
                log.read(61, 100).await,
                Err(StorageError::OffsetOutOfRange { .. })
            ));
            let mut bad = batch(1, 10, 0).to_vec();
            bad[70] ^= 1;
            let err = log
                .append(Bytes::from(bad), LeaderEpoch(0))
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::CorruptBatch(_)));
            log.set_config(LogConfig {
                max_message_bytes: 100,
                ..small_config()
            });
            let err = log
                .append(batch(1, 200, 0), LeaderEpoch(0))
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::MessageTooLarge { .. }));
        });
    }

    #[test]
    fn group_commit_shares_one_sync_among_waiters() {
        run(|| async {
            let disk = SimDisk::new(2);
            let log = open_sim(&disk, LogConfig::default()).await;
            let before = disk.stats().syncs;
            // 32 producers, each acknowledging 10 batches one at a time: 320 durable acks.
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let log = log.clone();
                    glommio::spawn_local(async move {
                        for j in 0..10 {
                            let info = log
                                .append(batch(1, 50, i * 10 + j), LeaderEpoch(0))
                                .await
                                .unwrap();
                            log.sync_through(info.last_offset).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            let syncs = disk.stats().syncs - before;
            crate::warn!("group commit: 320 durable acks took {syncs} fdatasyncs");
            assert!(syncs <= 40, "320 durable acks took {syncs} fdatasyncs");
            disk.crash();
            let log = open_sim(&disk, LogConfig::default()).await;
            assert_eq!(log.log_end_offset(), 320, "every synced batch survives");
        });
    }

    #[test]
    fn idempotent_producer_dedups_and_survives_restart() {
        run(|| async {
            let disk = SimDisk::new(3);
            let log = open_sim(&disk, small_config()).await;
            log.append(batch(2, 10, 0), LeaderEpoch(0)).await.unwrap();
            let a = log
                .append(idempotent_batch(9, 0, 0, 3), LeaderEpoch(0))
                .await
                .unwrap();
            let b = log
                .append(idempotent_batch(9, 0, 3, 2), LeaderEpoch(0))
                .await
                .unwrap();
            let dup = log
                .append(idempotent_batch(9, 0, 0, 3), LeaderEpoch(0))
                .await
                .unwrap();
            assert!(dup.duplicate && dup.base_offset == a.base_offset && dup.last_offset == 4);
            assert_eq!(log.log_end_offset(), 7);
            let gap = log
                .append(idempotent_batch(9, 0, 9, 1), LeaderEpoch(0))
                .await;
            assert!(matches!(gap, Err(StorageError::OutOfOrderSequence { .. })));
            log.sync_through(b.last_offset).await.unwrap();
            disk.crash();
            let log = open_sim(&disk, small_config()).await;
            let dup = log
                .append(idempotent_batch(9, 0, 3, 2), LeaderEpoch(0))
                .await
                .unwrap();
            assert!(
                dup.duplicate && dup.base_offset == b.base_offset,
                "state rebuilt from the log"
            );
            let next = log
                .append(idempotent_batch(9, 0, 5, 1), LeaderEpoch(0))
                .await
                .unwrap();
            assert_eq!(next.base_offset, 7);
            log.close().await.unwrap();
            assert!(matches!(
                log.append(batch(1, 1, 0), LeaderEpoch(0)).await,
                Err(StorageError::Closed)
            ));
            let log = open_sim(&disk, small_config()).await;
            let stale = log
                .append(idempotent_batch(9, -1, 6, 1), LeaderEpoch(0))
                .await;
            assert!(matches!(
                stale,
                Err(StorageError::InvalidProducerEpoch { .. })
            ));
        });
    }

    #[test]
    fn segments_roll_index_and_retention() {
        run(|| async {
            let disk = SimDisk::new(4);
            let log = open_sim(&disk, small_config()).await;
            for i in 0..200 {
                log.append(batch(2, 100, 10_000 + i), LeaderEpoch(0))
                    .await
                    .unwrap();
            }
            let segments = log.state().segments.len();
            assert!(segments > 5, "rolled into {segments} segments");
            log.close().await.unwrap();
            let log = open_sim(&disk, small_config()).await;
            assert_eq!(log.state().segments.len(), segments);
            for offset in [0, 1, 151, 399] {
                let r = log.read(offset, 1).await.unwrap();
                let h = BatchHeader::parse(&r.batches[0]).unwrap();
                assert!(h.base_offset() <= offset && offset <= h.last_offset());
                assert!(!r.from_cache, "a reopened log reads from disk");
            }
            assert_eq!(
                log.offset_for_timestamp(10_050).await.unwrap(),
                Some((100, 10_050))
            );
            assert_eq!(log.offset_for_timestamp(99_999).await.unwrap(), None);
            assert_eq!(log.max_timestamp(), Some((10_199, 398)));
            assert_eq!(log.delete_records_before(101).await.unwrap(), 101);
            assert!(matches!(
                log.read(100, 1).await,
                Err(StorageError::OffsetOutOfRange { .. })
            ));
            assert_eq!(
                BatchHeader::parse(&log.read(101, 1).await.unwrap().batches[0])
                    .unwrap()
                    .base_offset(),
                100
            );
            assert!(log.state().segments.len() < segments);
            log.set_config(LogConfig {
                retention_bytes: 20_000,
                ..small_config()
            });
            log.enforce_retention(now_ms()).await.unwrap();
            let total: u64 = log.state().segments.values().map(|s| s.size_bytes).sum();
            assert!(total <= 20_000 + 8 * 1024, "retention.bytes kept {total}");
            let start = log.log_start_offset();
            assert!(start > 101);
            log.set_config(LogConfig {
                retention_ms: 1000,
                ..small_config()
            });
            log.enforce_retention(20_000).await.unwrap();
            assert_eq!(log.state().segments.len(), 1, "all sealed segments expired");
            disk.crash();
            let log = open_sim(&disk, small_config()).await;
            assert!(log.log_start_offset() >= start, "log start never goes back");
            assert_eq!(log.log_end_offset(), 400);
        });
    }

    #[test]
    fn segment_ms_rolls_by_age_and_reads_span_segments() {
        run(|| async {
            let disk = SimDisk::new(8);
            let log = open_sim(
                &disk,
                LogConfig {
                    segment_ms: 0,
                    ..small_config()
                },
            )
            .await;
            for i in 0..5 {
                log.append(batch(2, 10, i), LeaderEpoch(0)).await.unwrap();
            }
            assert_eq!(
                log.state().segments.len(),
                5,
                "every append found its segment too old"
            );
            log.close().await.unwrap();
            let log = open_sim(&disk, small_config()).await;
            let r = log.read(0, 1 << 20).await.unwrap();
            let bases: Vec<_> = r
                .batches
                .iter()
                .map(|b| BatchHeader::parse(b).unwrap().base_offset())
                .collect();
            assert_eq!(
                bases,
                vec![0],
                "a disk read stops at the end of its segment"
            );
            let r = log.read(2, 1 << 20).await.unwrap();
            assert_eq!(BatchHeader::parse(&r.batches[0]).unwrap().base_offset(), 2);
        });
    }

    #[test]
    fn log_append_time_is_stamped() {
        run(|| async {
            let disk = SimDisk::new(5);
            let config = LogConfig {
                timestamp_type: TimestampType::LogAppendTime,
                ..small_config()
            };
            let log = open_sim(&disk, config).await;
            let info = log.append(batch(1, 10, 5), LeaderEpoch(0)).await.unwrap();
            assert!(info.log_append_time_ms > 1_600_000_000_000);
            let r = log.read(0, 100).await.unwrap();
            let h = BatchHeader::parse(&r.batches[0]).unwrap();
            assert!(h.is_log_append_time() && h.validate().is_ok());
            assert_eq!(h.max_timestamp(), info.log_append_time_ms);
        });
    }

    /// Streaming appends fill write buffers faster than one write at a time drains them:
    /// full buffers are queued (bounded) and written in the background, segments roll while
    /// their predecessors are sealed in the background, and nothing is lost or reordered,
    /// with EIO injected into some writes and syncs along the way.
    #[test]
    fn queued_writes_and_background_seals_keep_every_batch() {
        run(|| async {
            let disk = SimDisk::new(11);
            let config = LogConfig {
                segment_bytes: 3 << 20,
                ..LogConfig::default()
            };
            let log = open_sim(&disk, config.clone()).await;
            let mut expected = Vec::new();
            for i in 0..400u32 {
                if i == 150 {
                    disk.set_faults(SimFaults {
                        io_error_per_million: 50_000,
                        ..Default::default()
                    });
                }
                if i == 250 {
                    disk.set_faults(SimFaults::default());
                }
                let b = batch(4, 8 * 1024 + i as usize, i64::from(i));
                match log.append(b.clone(), LeaderEpoch(0)).await {
                    Ok(info) => {
                        assert_eq!(info.base_offset, 4 * expected.len() as i64);
                        expected.push(b);
                    }
                    Err(e) => assert!(matches!(e, StorageError::Io { .. }), "{e}"),
                }
                if i % 97 == 0 {
                    // Let the background writes and seals run now and then.
                    glommio::executor().yield_task_queue_now().await;
                }
            }
            let last = log.log_end_offset() - 1;
            log.sync_through(last).await.unwrap();
            assert!(log.shared.state.borrow().segments.len() > 3, "rolled");
            disk.crash();
            let log = open_sim(&disk, config).await;
            assert_eq!(log.log_end_offset(), 4 * expected.len() as i64);
            let mut offset = 0;
            let mut got = Vec::new();
            while offset < log.log_end_offset() {
                let read = log.read(offset, 1 << 20).await.unwrap();
                for b in &read.batches {
                    offset = BatchHeader::parse(b).unwrap().last_offset() + 1;
                    got.push(b.clone());
                }
            }
            assert_eq!(got.len(), expected.len());
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                // Stored bytes differ only in the stamped baseOffset and leader epoch.
                assert_eq!(g[12..], e[12..], "batch {i}");
            }
        });
    }

    #[test]
    fn disk_full_fails_calls_then_recovers_without_loss() {
        run(|| async {
            let disk = SimDisk::new(6);
            let log = open_sim(&disk, small_config()).await;
            let a = log.append(batch(1, 10, 0), LeaderEpoch(0)).await.unwrap();
            disk.set_faults(SimFaults {
                no_space_per_million: 1_000_000,
                ..Default::default()
            });
            let b = log.append(batch(1, 10, 0), LeaderEpoch(0)).await.unwrap(); // buffered: no I/O yet
            let err = log.sync_through(b.last_offset).await.unwrap_err();
            assert!(matches!(err, StorageError::NoSpace { .. }), "{err}");
            assert!(log.flush().await.is_err());
            disk.set_faults(SimFaults::default());
            log.sync_through(b.last_offset).await.unwrap();
            disk.crash();
            let log = open_sim(&disk, small_config()).await;
            assert_eq!(log.log_end_offset(), b.last_offset + 1);
            assert_eq!(
                log.read(a.base_offset, 1 << 20)
                    .await
                    .unwrap()
                    .batches
                    .len(),
                2
            );
        });
    }

    /// The timestamps (used as batch identities) of every batch in the log.
    async fn stored_ids(log: &PartitionLog<SimDisk>) -> Vec<i64> {
        let mut at = log.log_start_offset();
        let mut ids = Vec::new();
        while at < log.log_end_offset() {
            let r = log.read(at, 1 << 20).await.unwrap();
            for b in &r.batches {
                let h = BatchHeader::parse(b).unwrap();
                ids.push(h.max_timestamp());
                at = h.last_offset() + 1;
            }
        }
        ids
    }

    #[test]
    fn after_a_failed_sync_appends_fail_and_store_nothing_until_a_write_succeeds() {
        run(|| async {
            let disk = SimDisk::new(7);
            let log = open_sim(&disk, small_config()).await;
            log.append(batch(1, 10, 1), LeaderEpoch(0)).await.unwrap();
            disk.set_faults(SimFaults {
                no_space_per_million: 1_000_000,
                ..Default::default()
            });
            let b = log.append(batch(1, 10, 2), LeaderEpoch(0)).await.unwrap(); // buffered: no I/O yet
            assert!(log.sync_through(b.last_offset).await.is_err());
            let refused = log
                .append(batch(1, 10, 3), LeaderEpoch(0))
                .await
                .unwrap_err();
            assert!(matches!(refused, StorageError::NoSpace { .. }), "{refused}");
            disk.set_faults(SimFaults::default());
            let d = log.append(batch(1, 10, 4), LeaderEpoch(0)).await.unwrap();
            log.sync_through(d.last_offset).await.unwrap();
            assert_eq!(stored_ids(&log).await, vec![1, 2, 4], "3 was refused");
        });
    }

    #[test]
    fn a_batch_whose_append_failed_is_never_stored() {
        // Appends and syncs through phases of ENOSPC and EIO. An append that fails stores
        // nothing; one that succeeded but whose sync failed is possibly stored (the server
        // answers REQUEST_TIMED_OUT); one synced survives a crash.
        for seed in 0..16u64 {
            run(move || async move {
                let disk = SimDisk::new(seed);
                let log = open_sim(&disk, small_config()).await;
                let (mut refused, mut acked) = (Vec::new(), Vec::new());
                for id in 0..150i64 {
                    let faults = match id % 50 {
                        10..=39 => SimFaults {
                            no_space_per_million: 300_000 + 20_000 * seed as u32,
                            io_error_per_million: 50_000,
                            ..Default::default()
                        },
                        _ => SimFaults::default(),
                    };
                    disk.set_faults(faults);
                    let value = 50 + (id as usize % 7) * 300;
                    match log.append(batch(1, value, id), LeaderEpoch(0)).await {
                        Err(_) => refused.push(id),
                        Ok(info) if log.sync_through(info.last_offset).await.is_ok() => {
                            acked.push(id)
                        }
                        Ok(_) => {}
                    }
                }
                disk.set_faults(SimFaults::default());
                log.sync_through(log.log_end_offset() - 1).await.unwrap();
                disk.crash();
                let log = open_sim(&disk, small_config()).await;
                let stored = stored_ids(&log).await;
                assert!(!refused.is_empty(), "seed {seed}: no append failed");
                for id in &refused {
                    assert!(!stored.contains(id), "seed {seed}: refused {id} was stored");
                }
                for id in &acked {
                    assert!(stored.contains(id), "seed {seed}: acknowledged {id} lost");
                }
            });
        }
    }

    #[test]
    fn real_disk_round_trip_and_damaged_tail_is_truncated() {
        let dir = real_dir("log");
        let d = dir.clone();
        run(move || async move {
            let cache = BatchCache::new(1 << 20);
            let config = LogConfig {
                preallocate: true,
                segment_bytes: 1 << 20,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(DmaDisk, d.clone(), config.clone(), cache.clone())
                .await
                .unwrap();
            for i in 0..300 {
                log.append(batch(4, 250, i), LeaderEpoch(1)).await.unwrap();
            }
            log.sync_through(1199).await.unwrap();
            log.close().await.unwrap();
            let log = PartitionLog::open(DmaDisk, d.clone(), config.clone(), cache.clone())
                .await
                .unwrap();
            assert_eq!(log.log_end_offset(), 1200);
            let r = log.read(600, 5000).await.unwrap();
            assert_eq!(
                BatchHeader::parse(&r.batches[0]).unwrap().base_offset(),
                600
            );
            // Stop, then damage the active segment: cut bytes off the end and flip one earlier.
            let segment = log.state().active().base_offset;
            let size = log.state().active().size_bytes;
            drop(log);
            let path = segment_paths(&d, segment)[0].clone();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.truncate(size as usize - 7);
            let flip = bytes.len() - 3000;
            bytes[flip] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            let log = PartitionLog::open(DmaDisk, d.clone(), config, cache)
                .await
                .unwrap();
            // The damage is below the recovery point (synced): quarantined, and the log end
            // stays where it was, so that no offset is given out twice.
            assert_eq!(log.log_end_offset(), 1200);
            let q = &log.recovery_events()[0];
            assert!(q.is_quarantine() && q.bytes > 3000, "{q:?}");
            let mut at = log.log_start_offset();
            loop {
                let r = log.read(at, 64 * 1024).await.unwrap();
                if r.batches.is_empty() {
                    break;
                }
                for b in &r.batches {
                    let h = BatchHeader::parse(b).unwrap();
                    h.validate().unwrap();
                    assert!(h.last_offset() >= at);
                    at = h.last_offset() + 1;
                }
            }
            assert!(
                at < 1200 && at > 1100,
                "served up to the flipped batch: {at}"
            );
            let info = log.append(batch(1, 10, 0), LeaderEpoch(1)).await.unwrap();
            assert_eq!(
                info.base_offset, 1200,
                "appends continue after the quarantine"
            );
            log.remove().await.unwrap();
        });
        assert!(!dir.exists());
    }
}
