//! `PartitionLog::open`: create a new log or recover one from its directory (see the
//! Recovery section of the `storage` module docs).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::sync::Semaphore;

use super::cache::BatchCache;
use super::checkpoint::{Checkpoint, Mark, CHECKPOINT_FILE};
use super::format::read_whole;
use super::partition::{
    FileOf, PartitionLog, Shared, State, Writer, DEFAULT_CHECKPOINT_INTERVAL_BYTES,
    WRITE_BUFFER_BYTES,
};
use super::producer::{ProducerBatch, ProducerStates};
use super::quarantine::{copy_out, is_quarantine_file, move_out, quarantine_path};
use super::segment::{
    decode_index, decode_time_index, scan, segment_paths, Segment, MAX_SEGMENT_BYTES,
};
use super::{LogConfig, RecoveryAction, RecoveryEvent, StorageError};
use crate::base::now_ms;
use crate::io::{align_down, align_up, Disk, DiskFile, IoBuffer};
use crate::model::{BatchHeader, Offset};

/// Create (or reset) the log file of a new segment, preallocated if configured.
pub(super) async fn create_segment<D: Disk>(
    disk: &D,
    dir: &Path,
    base: Offset,
    config: &LogConfig,
) -> Result<Segment<FileOf<D>>, StorageError> {
    let segment = create_segment_file(disk, dir, base, config).await?;
    disk.sync_dir(dir)
        .await
        .map_err(|e| StorageError::io("sync dir", dir, e))?;
    Ok(segment)
}

/// As [`create_segment`] without syncing the directory: the caller must sync it before
/// anything written to the new segment is reported durable.
pub(super) async fn create_segment_file<D: Disk>(
    disk: &D,
    dir: &Path,
    base: Offset,
    config: &LogConfig,
) -> Result<Segment<FileOf<D>>, StorageError> {
    let path = segment_paths(dir, base)[0].clone();
    let file = disk
        .open(&path, true)
        .await
        .map_err(|e| StorageError::io("create", &path, e))?;
    file.truncate(0)
        .await
        .map_err(|e| StorageError::io("truncate", &path, e))?;
    preallocate(&file, &path, config).await;
    Ok(Segment::new(base, Rc::new(file), now_ms()))
}

async fn preallocate<F: DiskFile>(file: &F, path: &Path, config: &LogConfig) {
    if config.preallocate {
        let bytes = config.segment_bytes.min(MAX_SEGMENT_BYTES);
        if let Err(e) = file.allocate(0, bytes).await {
            crate::warn!(
                "ringmq storage: {}: preallocation failed: {e}",
                path.display()
            );
        }
    }
}

/// What the directory holds, after removing leftovers: segment bases and quarantine files.
async fn list_segments<D: Disk>(
    disk: &D,
    dir: &Path,
) -> Result<(Vec<Offset>, Vec<PathBuf>), StorageError> {
    let entries = disk
        .list_dir(dir)
        .await
        .map_err(|e| StorageError::io("list", dir, e))?;
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    let mut quarantines = Vec::new();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = name.split_once('.').and_then(|(stem, ext)| {
            let ok = stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| (stem.parse::<Offset>().ok(), ext.to_string()))
        });
        match parsed {
            _ if name.ends_with(".tmp") => remove_quietly(disk, &path).await,
            _ if is_quarantine_file(&name) => quarantines.push(path),
            Some((Some(base), ext)) if ext == "log" => bases.push(base),
            Some((Some(base), _)) => indexes.push((base, path)),
            _ => {}
        }
    }
    for (base, path) in indexes {
        if !bases.contains(&base) {
            remove_quietly(disk, &path).await;
        }
    }
    bases.sort_unstable();
    Ok((bases, quarantines))
}

async fn remove_quietly<D: Disk>(disk: &D, path: &Path) {
    if let Err(e) = disk.remove(path).await {
        crate::warn!(
            "ringmq storage: {}: could not remove leftover: {e}",
            path.display()
        );
    }
}

/// How one segment is brought back.
enum Start {
    /// Trust the saved index, which covers the whole file.
    Trusted(super::segment::IndexFile, Vec<(i64, u32)>),
    /// Adopt the saved index up to the checkpoint, scan the rest.
    FromCheckpoint(super::segment::IndexFile, Vec<(i64, u32)>),
    /// Scan the whole file.
    Scan,
}

async fn choose_start<D: Disk>(
    disk: &D,
    dir: &Path,
    base: Offset,
    is_last: bool,
    file_size: u64,
    checkpoint: Option<&Checkpoint>,
) -> Start {
    let [_, index_path, time_path] = segment_paths(dir, base);
    let index = read_whole(disk, &index_path).await.ok().flatten();
    let Some(index) = index.and_then(|b| decode_index(&b, base)) else {
        return Start::Scan;
    };
    let times = read_whole(disk, &time_path).await.ok().flatten();
    let times = times
        .and_then(|b| decode_time_index(&b, base))
        .unwrap_or_default();
    let point = checkpoint.map(|c| c.recovery_point);
    match point {
        Some(p)
            if p.segment_base == base
                && p.position == index.covered_bytes
                && p.next_offset == index.next_offset
                && p.position <= file_size =>
        {
            Start::FromCheckpoint(index, times)
        }
        Some(p) if base >= p.segment_base => Start::Scan,
        // Without a checkpoint there is no producer state for unscanned segments: scan all.
        Some(_) if !is_last && index.covered_bytes == file_size => Start::Trusted(index, times),
        _ => Start::Scan,
    }
}

/// Recovered segments plus the state derived while scanning them.
struct Recovered<F> {
    segments: BTreeMap<Offset, Segment<F>>,
    producers: ProducerStates,
    tail_block: Vec<u8>,
    events: Vec<RecoveryEvent>,
    /// The log must end at least here: synced offsets that were quarantined from the active
    /// segment are never given out again.
    floor: Offset,
    /// Quarantine files found in (or added to) the directory.
    quarantines: Vec<PathBuf>,
}

/// Bytes of segment `base`'s file known to be fdatasync'ed, by the checkpoint: all of a
/// segment sealed before the recovery point, the recovery point's prefix of its own segment.
/// Without a checkpoint nothing is known synced (a crash during the first seal leaves none).
fn synced_bytes(base: Offset, file_size: u64, checkpoint: Option<&Checkpoint>) -> u64 {
    match checkpoint.map(|c| c.recovery_point) {
        Some(p) if base < p.segment_base => file_size,
        Some(p) if base == p.segment_base => p.position.min(file_size),
        _ => 0,
    }
}

impl<D: Disk> PartitionLog<D> {
    /// Open the partition log in `dir`, creating it if empty, recovering it otherwise.
    pub async fn open(
        disk: D,
        dir: PathBuf,
        config: LogConfig,
        cache: BatchCache,
    ) -> Result<Self, StorageError> {
        disk.create_dir_all(&dir)
            .await
            .map_err(|e| StorageError::io("create dir", &dir, e))?;
        let (bases, quarantines) = list_segments(&disk, &dir).await?;
        let cp_bytes = read_whole(&disk, &dir.join(CHECKPOINT_FILE)).await;
        let cp_bytes =
            cp_bytes.map_err(|e| StorageError::io("read", dir.join(CHECKPOINT_FILE), e))?;
        let checkpoint = cp_bytes.and_then(|b| Checkpoint::decode(&b));
        let mut rec = Recovered {
            segments: BTreeMap::new(),
            producers: ProducerStates::default(),
            tail_block: Vec::new(),
            events: Vec::new(),
            floor: Offset::MIN,
            quarantines,
        };
        recover_segments(&disk, &dir, &bases, checkpoint.as_ref(), &config, &mut rec).await?;
        let end = rec.segments.values().next_back().map(|s| s.next_offset);
        if end.is_none_or(|end| end < rec.floor) {
            let start = checkpoint.as_ref().map_or(0, |c| c.log_start_offset.max(0));
            let base = rec.floor.max(start);
            let seg = create_segment(&disk, &dir, base, &config).await?;
            rec.segments.insert(base, seg);
            rec.tail_block.clear();
        }
        let state = resume_state::<D>(&dir, config, checkpoint.as_ref(), &mut rec).await?;
        let log_id = cache.register();
        let shared = Shared {
            disk,
            dir,
            recovery: rec.events,
            cache,
            log_id,
            write_lock: Semaphore::new(1),
            writing_queued: Default::default(),
            rounds: Default::default(),
            state: RefCell::new(state),
        };
        let log = PartitionLog {
            shared: Rc::new(shared),
        };
        if let Err(e) = log.remove_segments_below_start().await {
            crate::warn!("ringmq storage: {}: {e}", log.dir().display());
        }
        Ok(log)
    }
}

/// The state a recovered log resumes with: the log start (the checkpoint's, within the
/// segments kept), a writer at the end of the active segment (synced first, so everything
/// recovery kept counts as written and synced), and the checkpoint's recovery point if it
/// lies in the active segment.
async fn resume_state<D: Disk>(
    dir: &Path,
    config: LogConfig,
    checkpoint: Option<&Checkpoint>,
    rec: &mut Recovered<FileOf<D>>,
) -> Result<State<D>, StorageError> {
    let first_base = *rec.segments.keys().next().expect("at least one segment");
    let last = rec
        .segments
        .values()
        .next_back()
        .expect("at least one segment");
    let log_end = last.next_offset;
    let cp_start = checkpoint.map_or(first_base, |c| c.log_start_offset);
    let log_start = cp_start.max(first_base).min(log_end);
    let end = Mark {
        segment_base: last.base_offset,
        position: last.size_bytes,
        next_offset: log_end,
    };
    let last_path = segment_paths(dir, last.base_offset)[0].clone();
    let tail = std::mem::take(&mut rec.tail_block);
    let writer = make_writer::<D>(&last.file, &last_path, end.position, tail).await?;
    preallocate(&*last.file, &last_path, &config).await;
    last.file
        .fdatasync()
        .await
        .map_err(|e| StorageError::io("fdatasync", &last_path, e))?;
    let checkpointed = match checkpoint {
        Some(c) if c.recovery_point.segment_base == end.segment_base => c.recovery_point,
        _ => Mark {
            segment_base: end.segment_base,
            position: 0,
            next_offset: end.segment_base,
        },
    };
    Ok(State {
        config,
        closed: false,
        log_start,
        segments: std::mem::take(&mut rec.segments),
        writer,
        producers: std::mem::take(&mut rec.producers),
        written: end,
        synced: end,
        checkpointed,
        checkpoint_interval_bytes: DEFAULT_CHECKPOINT_INTERVAL_BYTES,
        rolling: false,
        faulted: false,
        sealing: None,
    })
}

/// A write buffer for the active segment holding its partially filled last block.
async fn make_writer<D: Disk>(
    file: &FileOf<D>,
    path: &Path,
    end: u64,
    scanned_tail: Vec<u8>,
) -> Result<Writer<D>, StorageError> {
    let pos = align_down(end, file.alignment());
    let len = (end - pos) as usize;
    // The scan hands over the tail block; a segment that was not scanned (it became the last
    // one because a later segment was dropped) has it read here.
    let tail = if scanned_tail.len() == len {
        scanned_tail
    } else {
        file.read_at(pos, len)
            .await
            .map_err(|e| StorageError::io("read", path, e))?
    };
    if tail.len() != len {
        let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short tail block");
        return Err(StorageError::io("read", path, e));
    }
    let capacity = align_up(WRITE_BUFFER_BYTES as u64, file.alignment()) as usize;
    let mut buf = file.alloc_buffer(capacity);
    buf.as_bytes_mut()[..len].copy_from_slice(&tail);
    Ok(Writer {
        buf,
        pos,
        len,
        pending: Default::default(),
        unsynced: Default::default(),
        unsynced_bytes: 0,
        allocated: 0,
    })
}

async fn recover_segments<D: Disk>(
    disk: &D,
    dir: &Path,
    bases: &[Offset],
    checkpoint: Option<&Checkpoint>,
    config: &LogConfig,
    rec: &mut Recovered<FileOf<D>>,
) -> Result<(), StorageError> {
    let replay_from = checkpoint.map_or(Offset::MIN, |c| c.recovery_point.next_offset);
    let mut producers = checkpoint.map(|c| c.producers.clone()).unwrap_or_default();
    producers.forget_from(replay_from);
    rec.producers = producers;
    for (i, &base) in bases.iter().enumerate() {
        let expected = rec
            .segments
            .values()
            .next_back()
            .map(|s: &Segment<_>| s.next_offset);
        match expected {
            Some(n) if base < n => {
                overlapping(disk, dir, base, n, rec).await?;
                continue;
            }
            Some(n) if base > n && synced_bytes(base, 1, checkpoint) == 0 => {
                crate::warn!(
                    "ringmq storage: {}: unsynced segment {base} does not follow offset {n}; \
                     dropping it and every later segment",
                    dir.display()
                );
                drop_segments(disk, dir, &bases[i..]).await;
                break;
            }
            Some(n) if base > n => gap(dir, base, n, rec),
            _ => {}
        }
        let is_last = i + 1 == bases.len();
        let ctx = SegmentCtx {
            disk,
            dir,
            base,
            is_last,
            checkpoint,
            config,
            replay_from,
        };
        let (seg, outcome) = recover_one(ctx, rec).await?;
        rec.segments.insert(base, seg);
        if outcome == Outcome::CutUnsynced && !is_last {
            drop_segments(disk, dir, &bases[i + 1..]).await;
            break;
        }
    }
    Ok(())
}

/// Segment `base` starts below the end `n` of the one before it: quarantine it whole.
async fn overlapping<D: Disk>(
    disk: &D,
    dir: &Path,
    base: Offset,
    n: Offset,
    rec: &mut Recovered<FileOf<D>>,
) -> Result<(), StorageError> {
    let path = move_out(disk, dir, base).await?;
    rec.quarantines.push(path.clone());
    crate::warn!(
        "ringmq storage: {}: segment {base} overlaps offsets before {n}; quarantined to {}",
        dir.display(),
        path.display()
    );
    rec.events.push(RecoveryEvent {
        segment_base: base,
        position: 0,
        bytes: 0,
        reason: format!("segment starts at {base}, inside the previous one (ends at {n})"),
        action: RecoveryAction::Quarantined(path),
    });
    Ok(())
}

/// Synced segment `base` follows a gap after offset `n`: keep it, and say so (unless a
/// quarantine file of the previous segment, cut where it now ends, explains the gap).
fn gap<F>(dir: &Path, base: Offset, n: Offset, rec: &mut Recovered<F>) {
    let explained = rec.segments.values().next_back().is_some_and(|prev| {
        let q = quarantine_path(dir, prev.base_offset, prev.size_bytes);
        rec.quarantines.contains(&q)
    });
    if explained {
        crate::info!(
            "ringmq storage: {}: offsets {n}..{base} are quarantined",
            dir.display()
        );
        return;
    }
    crate::warn!(
        "ringmq storage: {}: offsets {n}..{base} are missing (a segment is lost); keeping \
         segment {base} and every later one",
        dir.display()
    );
    rec.events.push(RecoveryEvent {
        segment_base: base,
        position: 0,
        bytes: 0,
        reason: format!("offsets {n}..{base} missing"),
        action: RecoveryAction::Gap { from: n, to: base },
    });
}

/// What recovering one segment found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Clean,
    /// An unsynced torn tail was truncated: later segments cannot hold synced data.
    CutUnsynced,
    /// Synced bytes were quarantined: later segments are kept.
    Quarantined,
}

/// Where one segment sits, for [`recover_one`].
struct SegmentCtx<'a, D> {
    disk: &'a D,
    dir: &'a Path,
    base: Offset,
    is_last: bool,
    checkpoint: Option<&'a Checkpoint>,
    config: &'a LogConfig,
    replay_from: Offset,
}

/// Open an existing segment file and read its size.
async fn open_with_size<D: Disk>(disk: &D, path: &Path) -> Result<(FileOf<D>, u64), StorageError> {
    let file = disk
        .open(path, false)
        .await
        .map_err(|e| StorageError::io("open", path, e))?;
    let file_size = file
        .size()
        .await
        .map_err(|e| StorageError::io("stat", path, e))?;
    Ok((file, file_size))
}

/// Record the producer state of a batch read back from a segment.
fn replay_producer(producers: &mut ProducerStates, h: &BatchHeader<'_>, now: i64) {
    let batch = ProducerBatch::of(h, h.base_offset(), h.last_offset());
    producers.record(h.producer_id(), h.producer_epoch(), batch, now);
}

/// What a segment's outcome means for the rest of recovery (`next_offset`: the segment's end
/// after the cut).
fn after_cut<F>(
    rec: &mut Recovered<F>,
    result: Outcome,
    next_offset: Offset,
    is_last: bool,
    checkpoint: Option<&Checkpoint>,
) {
    match result {
        // Batches cut off here may sit in the checkpointed producer state.
        Outcome::CutUnsynced => rec.producers.forget_from(next_offset),
        // Offsets up to the recovery point were given out and synced: never reuse them.
        Outcome::Quarantined if is_last => {
            let floor = checkpoint.map_or(next_offset, |c| c.recovery_point.next_offset);
            rec.floor = rec.floor.max(floor);
        }
        _ => {}
    }
}

async fn recover_one<D: Disk>(
    ctx: SegmentCtx<'_, D>,
    rec: &mut Recovered<FileOf<D>>,
) -> Result<(Segment<FileOf<D>>, Outcome), StorageError> {
    let SegmentCtx {
        disk,
        dir,
        base,
        is_last,
        checkpoint,
        config,
        replay_from,
    } = ctx;
    let path = segment_paths(dir, base)[0].clone();
    let (file, file_size) = open_with_size(disk, &path).await?;
    let mut seg = Segment::new(base, Rc::new(file), now_ms());
    match choose_start(disk, dir, base, is_last, file_size, checkpoint).await {
        Start::Trusted(index, times) => {
            seg.adopt(index, times);
            return Ok((seg, Outcome::Clean));
        }
        Start::FromCheckpoint(mut index, mut times) => {
            if is_last {
                rewind_for_verification(&mut index, &mut times, base);
            }
            seg.adopt(index, times)
        }
        Start::Scan => {}
    }
    let from = (seg.size_bytes, seg.next_offset);
    let producers = &mut rec.producers;
    let now = now_ms();
    let mut replay = |h: &BatchHeader<'_>| {
        if h.base_offset() >= replay_from {
            replay_producer(producers, h, now);
        }
    };
    let outcome = scan(&mut seg, config.index_interval_bytes, &mut replay)
        .await
        .map_err(|e| StorageError::io("scan", &path, e))?;
    let end = seg.size_bytes;
    let result = match outcome.stop_reason {
        None => Outcome::Clean,
        Some(reason) => {
            let cut = Cut {
                end,
                file_size,
                from,
                reason,
            };
            set_aside(&place_of(disk, dir, base, checkpoint), &seg, cut, rec).await?
        }
    };
    if file_size != end {
        seg.file
            .truncate(end)
            .await
            .map_err(|e| StorageError::io("truncate", &path, e))?;
    }
    after_cut(rec, result, seg.next_offset, is_last, checkpoint);
    if is_last || result != Outcome::Clean {
        rec.tail_block = outcome.tail_block;
    }
    Ok((seg, result))
}

/// The unreadable tail of a scanned segment.
struct Cut {
    end: u64,
    file_size: u64,
    /// (position, offset) the scan started at.
    from: (u64, Offset),
    reason: String,
}

/// What [`set_aside`] needs to know about the segment's place.
struct Place<'a, D> {
    disk: &'a D,
    dir: &'a Path,
    base: Offset,
    checkpoint: Option<&'a Checkpoint>,
}

fn place_of<'a, D>(
    disk: &'a D,
    dir: &'a Path,
    base: Offset,
    checkpoint: Option<&'a Checkpoint>,
) -> Place<'a, D> {
    Place {
        disk,
        dir,
        base,
        checkpoint,
    }
}

/// Quarantine the tail `cut` of `seg` if it was synced, else mark it for cutting; log it and
/// record the event. The caller truncates the segment.
async fn set_aside<D: Disk>(
    place: &Place<'_, D>,
    seg: &Segment<FileOf<D>>,
    cut: Cut,
    rec: &mut Recovered<FileOf<D>>,
) -> Result<Outcome, StorageError> {
    let (disk, dir, base, checkpoint) = (place.disk, place.dir, place.base, place.checkpoint);
    let Cut {
        end,
        file_size,
        from,
        reason,
    } = cut;
    let synced = synced_bytes(base, file_size, checkpoint);
    let action = if end < synced {
        let q = copy_out(disk, dir, &seg.file, base, end, file_size).await?;
        rec.quarantines.push(q.clone());
        RecoveryAction::Quarantined(q)
    } else {
        RecoveryAction::Cut
    };
    let done = match &action {
        RecoveryAction::Quarantined(q) => format!("quarantined to {}", q.display()),
        _ => "cut (unsynced)".to_string(),
    };
    crate::warn!(
        "ringmq storage: {} segment {base}: truncated at offset {} (position {end}), \
         {} bytes {done}: {reason} (scan started at position {}, offset {})",
        dir.display(),
        seg.next_offset,
        file_size - end,
        from.0,
        from.1
    );
    let outcome = if matches!(action, RecoveryAction::Cut) {
        Outcome::CutUnsynced
    } else {
        Outcome::Quarantined
    };
    rec.events.push(RecoveryEvent {
        segment_base: base,
        position: end,
        bytes: file_size - end,
        reason,
        action,
    });
    Ok(outcome)
}

/// Bytes at the end of the active segment that are scanned again at every start, even after
/// a clean stop, so that damage done while the broker was down (a flipped byte, a torn
/// copy) is found and truncated at start rather than met by a reader. Costs a few ms.
pub const VERIFY_TAIL_BYTES: u64 = 4 << 20;

/// Move the adopted index of the active segment back to its last entry at least
/// [`VERIFY_TAIL_BYTES`] before the end it covers, so that the scan re-checks that tail.
fn rewind_for_verification(
    index: &mut super::segment::IndexFile,
    times: &mut Vec<(i64, u32)>,
    base: Offset,
) {
    let limit = index.covered_bytes.saturating_sub(VERIFY_TAIL_BYTES);
    let keep = index
        .entries
        .partition_point(|&(_, position)| u64::from(position) <= limit);
    let (rel, position) = match keep {
        0 => (0, 0),
        k => index.entries[k - 1],
    };
    // The entry itself is re-added by the scan.
    index.entries.truncate(keep.saturating_sub(1));
    index.covered_bytes = u64::from(position);
    index.next_offset = base + i64::from(rel);
    times.retain(|&(_, t_rel)| t_rel < rel);
}

async fn drop_segments<D: Disk>(disk: &D, dir: &Path, bases: &[Offset]) {
    for &base in bases {
        for path in segment_paths(dir, base) {
            if let Err(e) = disk.remove(&path).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    crate::warn!("ringmq storage: {}: could not remove: {e}", path.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;
    use crate::model::LeaderEpoch;
    use crate::storage::test_util::{batch, run};

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 256,
            ..LogConfig::default()
        }
    }

    async fn open(disk: &SimDisk) -> PartitionLog<SimDisk> {
        let dir = PathBuf::from("/d/p-0");
        PartitionLog::open(disk.clone(), dir, config(), BatchCache::new(0))
            .await
            .unwrap()
    }

    async fn read_all(log: &PartitionLog<SimDisk>) -> Offset {
        let mut at = log.log_start_offset();
        while at < log.log_end_offset() {
            let r = log.read(at, 1 << 20).await.unwrap();
            for b in &r.batches {
                let h = BatchHeader::parse(b).unwrap();
                h.validate().unwrap();
                assert_eq!(h.base_offset(), at, "dense offsets");
                at = h.last_offset() + 1;
            }
        }
        at
    }

    /// Every batch readable from the log start on, allowing gaps between segments; returns
    /// the base offsets seen.
    async fn read_all_bases(log: &PartitionLog<SimDisk>) -> Vec<Offset> {
        let mut at = log.log_start_offset();
        let mut bases = Vec::new();
        while at < log.log_end_offset() {
            let r = log.read(at, 1 << 20).await.unwrap();
            assert!(!r.batches.is_empty(), "empty read at {at}");
            for b in &r.batches {
                let h = BatchHeader::parse(b).unwrap();
                h.validate().unwrap();
                assert!(h.last_offset() >= at, "offsets increase");
                bases.push(h.base_offset());
                at = h.last_offset() + 1;
            }
        }
        bases
    }

    fn quarantined(log: &PartitionLog<SimDisk>) -> Vec<&RecoveryEvent> {
        log.recovery_events()
            .iter()
            .filter(|e| matches!(e.action, RecoveryAction::Quarantined(_)))
            .collect()
    }

    #[test]
    fn a_clean_stop_leaves_no_torn_tail_even_with_short_padding() {
        // Issue 13: padding shorter than a batch header after a clean stop was cut as a
        // "torn header", and the bytes cut grew at every stop.
        for seed in 0..4 {
            run(move || async move {
                let disk = SimDisk::new(seed);
                let align = disk.alignment() as u64;
                for round in 0..5 {
                    let log = open(&disk).await;
                    assert_eq!(log.recovery_events(), &[], "seed {seed} round {round}");
                    let mut value = 10;
                    loop {
                        let info = log
                            .append(batch(1, value, 7), LeaderEpoch(0))
                            .await
                            .unwrap();
                        value += 1;
                        let end = log.state().active().size_bytes;
                        let pad = align_up(end, align as usize) - end;
                        if info.last_offset > 3 && pad > 0 && pad < 61 {
                            break;
                        }
                    }
                    log.close().await.unwrap();
                }
                let log = open(&disk).await;
                assert_eq!(log.recovery_events(), &[]);
                assert_eq!(read_all(&log).await, log.log_end_offset());
            });
        }
    }

    #[test]
    fn a_missing_middle_segment_keeps_the_later_ones() {
        run(|| async {
            let disk = SimDisk::new(9);
            let log = open(&disk).await;
            for i in 0..60 {
                log.append(batch(1, 200, i), LeaderEpoch(0)).await.unwrap();
            }
            log.close().await.unwrap();
            let end = log.log_end_offset();
            let bases: Vec<Offset> = log.state().segments.keys().copied().collect();
            assert!(bases.len() >= 4);
            let (missing, next) = (bases[2], bases[3]);
            for path in segment_paths(Path::new("/d/p-0"), missing) {
                disk.remove(&path).await.unwrap();
            }
            let log = open(&disk).await;
            assert_eq!(log.log_end_offset(), end, "synced later segments are kept");
            assert_eq!(
                log.recovery_events()[0].action,
                RecoveryAction::Gap {
                    from: missing,
                    to: next
                }
            );
            let r = log.read(missing, 1 << 20).await.unwrap();
            let first = BatchHeader::parse(&r.batches[0]).unwrap().base_offset();
            assert_eq!(
                first, next,
                "a read in the gap is served from the next segment"
            );
            let seen = read_all_bases(&log).await;
            assert_eq!(seen.len() as i64, end - (next - missing));
            let info = log.append(batch(1, 10, 0), LeaderEpoch(0)).await.unwrap();
            assert_eq!(info.base_offset, end);
        });
    }

    #[test]
    fn a_corrupt_batch_in_a_synced_segment_is_quarantined_and_later_segments_kept() {
        run(|| async {
            let disk = SimDisk::new(11);
            let log = open(&disk).await;
            for i in 0..60 {
                log.append(batch(1, 200, i), LeaderEpoch(0)).await.unwrap();
            }
            log.close().await.unwrap();
            let end = log.log_end_offset();
            let bases: Vec<Offset> = log.state().segments.keys().copied().collect();
            let dir = Path::new("/d/p-0");
            let [seg_log, seg_index, _] = segment_paths(dir, bases[1]);
            // Lose the index so that recovery scans the segment, and flip a byte in the
            // records of its third batch.
            disk.remove(&seg_index).await.unwrap();
            let mut bytes = disk.file_bytes(&seg_log).unwrap();
            let size = BatchHeader::parse(&bytes).unwrap().total_bytes().unwrap();
            bytes[2 * size + 100] ^= 0x10;
            disk.set_file_bytes(&seg_log, bytes.clone());
            let log = open(&disk).await;
            assert_eq!(
                log.log_end_offset(),
                end,
                "nothing after the corruption is lost"
            );
            let q = quarantined(&log);
            assert_eq!(q.len(), 1, "{:?}", log.recovery_events());
            assert_eq!(
                (q[0].segment_base, q[0].position),
                (bases[1], 2 * size as u64)
            );
            let RecoveryAction::Quarantined(path) = &q[0].action else {
                panic!("{q:?}")
            };
            assert!(crate::storage::is_quarantine_file(
                &path.file_name().unwrap().to_string_lossy()
            ));
            assert_eq!(disk.file_bytes(path).unwrap(), bytes[2 * size..]);
            let seen = read_all_bases(&log).await;
            assert!(seen.contains(&bases[2]) && seen.contains(&(end - 1)));
            log.close().await.unwrap();
            let log = open(&disk).await;
            assert_eq!(log.recovery_events(), &[], "the quarantine is done once");
            assert_eq!(log.log_end_offset(), end);
        });
    }

    #[test]
    fn a_zeroed_header_in_the_synced_tail_is_not_a_clean_end() {
        run(|| async {
            let disk = SimDisk::new(12);
            let log = open(&disk).await;
            for i in 0..10 {
                log.append(batch(1, 100, i), LeaderEpoch(0)).await.unwrap();
            }
            log.close().await.unwrap();
            let end = log.log_end_offset();
            let active = log.state().active().base_offset;
            let seg_log = segment_paths(Path::new("/d/p-0"), active)[0].clone();
            let mut bytes = disk.file_bytes(&seg_log).unwrap();
            let size = BatchHeader::parse(&bytes).unwrap().total_bytes().unwrap();
            bytes[3 * size..3 * size + 61].fill(0);
            disk.set_file_bytes(&seg_log, bytes);
            let log = open(&disk).await;
            let q = quarantined(&log);
            assert_eq!(q.len(), 1, "{:?}", log.recovery_events());
            assert!(q[0].reason.contains("zeroed header"), "{}", q[0].reason);
            assert_eq!(
                log.log_end_offset(),
                end,
                "synced offsets are not given out again"
            );
            let r = log.read(3, 1 << 20).await.unwrap();
            assert!(
                r.batches.is_empty(),
                "a read in the gap before the end finds nothing"
            );
            let info = log.append(batch(1, 10, 0), LeaderEpoch(0)).await.unwrap();
            assert_eq!(info.base_offset, end);
            assert_eq!(read_all_bases(&log).await.len(), 3 + 1);
        });
    }

    #[test]
    fn damaged_checkpoint_and_indexes_are_rebuilt_by_scanning() {
        run(|| async {
            let disk = SimDisk::new(10);
            let log = open(&disk).await;
            for i in 0..40 {
                log.append(batch(2, 150, i), LeaderEpoch(0)).await.unwrap();
            }
            log.close().await.unwrap();
            let dir = Path::new("/d/p-0");
            for path in disk.list_dir(dir).await.unwrap() {
                if path.extension().is_some_and(|e| e != "log") {
                    let mut bytes = disk.file_bytes(&path).unwrap();
                    bytes[9] ^= 0xff;
                    disk.set_file_bytes(&path, bytes);
                }
            }
            let log = open(&disk).await;
            assert_eq!(log.log_end_offset(), 80);
            assert_eq!(read_all(&log).await, 80);
            assert_eq!(log.offset_for_timestamp(30).await.unwrap(), Some((60, 30)));
        });
    }
}
