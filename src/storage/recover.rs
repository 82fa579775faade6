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
use super::segment::{
    decode_index, decode_time_index, scan, segment_paths, Segment, MAX_SEGMENT_BYTES,
};
use super::{LogConfig, StorageError};
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

/// What the directory holds, after removing leftovers.
async fn list_segments<D: Disk>(disk: &D, dir: &Path) -> Result<Vec<Offset>, StorageError> {
    let entries = disk
        .list_dir(dir)
        .await
        .map_err(|e| StorageError::io("list", dir, e))?;
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
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
    Ok(bases)
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
        let bases = list_segments(&disk, &dir).await?;
        let cp_bytes = read_whole(&disk, &dir.join(CHECKPOINT_FILE)).await;
        let cp_bytes =
            cp_bytes.map_err(|e| StorageError::io("read", dir.join(CHECKPOINT_FILE), e))?;
        let checkpoint = cp_bytes.and_then(|b| Checkpoint::decode(&b));
        let mut rec = recover_segments(&disk, &dir, &bases, checkpoint.as_ref(), &config).await?;
        if rec.segments.is_empty() {
            let base = checkpoint.as_ref().map_or(0, |c| c.log_start_offset.max(0));
            let seg = create_segment(&disk, &dir, base, &config).await?;
            rec.segments.insert(base, seg);
        }
        let first_base = *rec.segments.keys().next().expect("at least one segment");
        let last = rec
            .segments
            .values()
            .next_back()
            .expect("at least one segment");
        let log_end = last.next_offset;
        let cp_start = checkpoint
            .as_ref()
            .map_or(first_base, |c| c.log_start_offset);
        let log_start = cp_start.max(first_base).min(log_end);
        let end = Mark {
            segment_base: last.base_offset,
            position: last.size_bytes,
            next_offset: log_end,
        };
        let last_path = segment_paths(&dir, last.base_offset)[0].clone();
        let tail = std::mem::take(&mut rec.tail_block);
        let writer = make_writer::<D>(&last.file, &last_path, end.position, tail).await?;
        preallocate(&*last.file, &last_path, &config).await;
        last.file
            .fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync", &last_path, e))?;
        let checkpointed = match &checkpoint {
            Some(c) if c.recovery_point.segment_base == end.segment_base => c.recovery_point,
            _ => Mark {
                segment_base: end.segment_base,
                position: 0,
                next_offset: end.segment_base,
            },
        };
        let state = State {
            config,
            closed: false,
            log_start,
            segments: rec.segments,
            writer,
            producers: rec.producers,
            written: end,
            synced: end,
            checkpointed,
            checkpoint_interval_bytes: DEFAULT_CHECKPOINT_INTERVAL_BYTES,
            rolling: false,
            sealing: None,
        };
        let log_id = cache.register();
        let shared = Shared {
            disk,
            dir,
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
) -> Result<Recovered<FileOf<D>>, StorageError> {
    let replay_from = checkpoint.map_or(Offset::MIN, |c| c.recovery_point.next_offset);
    let mut producers = checkpoint.map(|c| c.producers.clone()).unwrap_or_default();
    producers.forget_from(replay_from);
    let mut rec = Recovered {
        segments: BTreeMap::new(),
        producers,
        tail_block: Vec::new(),
    };
    for (i, &base) in bases.iter().enumerate() {
        let expected = rec
            .segments
            .values()
            .next_back()
            .map(|s: &Segment<_>| s.next_offset);
        if expected.is_some_and(|n| n != base) {
            crate::warn!(
                "ringmq storage: {}: segment {base} does not follow offset {expected:?}; \
                 dropping it and every later segment",
                dir.display()
            );
            drop_segments(disk, dir, &bases[i..]).await;
            break;
        }
        let is_last = i + 1 == bases.len();
        let (seg, clean) = recover_one(
            disk,
            dir,
            base,
            is_last,
            checkpoint,
            config,
            &mut rec,
            replay_from,
        )
        .await?;
        rec.segments.insert(base, seg);
        if !clean && !is_last {
            drop_segments(disk, dir, &bases[i + 1..]).await;
            break;
        }
    }
    Ok(rec)
}

#[allow(clippy::too_many_arguments)]
async fn recover_one<D: Disk>(
    disk: &D,
    dir: &Path,
    base: Offset,
    is_last: bool,
    checkpoint: Option<&Checkpoint>,
    config: &LogConfig,
    rec: &mut Recovered<FileOf<D>>,
    replay_from: Offset,
) -> Result<(Segment<FileOf<D>>, bool), StorageError> {
    let path = segment_paths(dir, base)[0].clone();
    let file = disk
        .open(&path, false)
        .await
        .map_err(|e| StorageError::io("open", &path, e))?;
    let file_size = file
        .size()
        .await
        .map_err(|e| StorageError::io("stat", &path, e))?;
    let mut seg = Segment::new(base, Rc::new(file), now_ms());
    match choose_start(disk, dir, base, is_last, file_size, checkpoint).await {
        Start::Trusted(index, times) => {
            seg.adopt(index, times);
            return Ok((seg, true));
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
    let mut replay = |h: &BatchHeader<'_>| {
        if h.base_offset() >= replay_from {
            let first_seq = h.base_sequence();
            let last_seq = first_seq.wrapping_add(h.last_offset_delta());
            let (base_offset, last_offset) = (h.base_offset(), h.last_offset());
            let batch = ProducerBatch {
                first_seq,
                last_seq,
                base_offset,
                last_offset,
            };
            producers.record(h.producer_id(), h.producer_epoch(), batch);
        }
    };
    let outcome = scan(&mut seg, config.index_interval_bytes, &mut replay)
        .await
        .map_err(|e| StorageError::io("scan", &path, e))?;
    let end = seg.size_bytes;
    let clean = outcome.stop_reason.is_none();
    if let Some(reason) = &outcome.stop_reason {
        crate::warn!(
            "ringmq storage: {} segment {base}: truncated at offset {} (position {end}), cutting {} \
             bytes: {reason} (scan started at position {}, offset {})",
            dir.display(),
            seg.next_offset,
            file_size - end,
            from.0,
            from.1
        );
    }
    if file_size != end {
        seg.file
            .truncate(end)
            .await
            .map_err(|e| StorageError::io("truncate", &path, e))?;
    }
    if !clean {
        // Batches cut off here may sit in the checkpointed producer state.
        rec.producers.forget_from(seg.next_offset);
    }
    if is_last || !clean {
        rec.tail_block = outcome.tail_block;
    }
    Ok((seg, clean))
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

    #[test]
    fn a_missing_middle_segment_drops_the_later_ones() {
        run(|| async {
            let disk = SimDisk::new(9);
            let log = open(&disk).await;
            for i in 0..60 {
                log.append(batch(1, 200, i), 0).await.unwrap();
            }
            log.close().await.unwrap();
            let bases: Vec<Offset> = log.state().segments.keys().copied().collect();
            assert!(bases.len() >= 4);
            let missing = bases[2];
            for path in segment_paths(Path::new("/d/p-0"), missing) {
                disk.remove(&path).await.unwrap();
            }
            let log = open(&disk).await;
            assert_eq!(
                log.log_end_offset(),
                missing,
                "the log ends where the gap starts"
            );
            assert_eq!(read_all(&log).await, missing);
            let info = log.append(batch(1, 10, 0), 0).await.unwrap();
            assert_eq!(info.base_offset, missing);
            log.sync_through(info.last_offset).await.unwrap();
            disk.crash();
            let log = open(&disk).await;
            assert_eq!(
                read_all(&log).await,
                missing + 1,
                "the rewritten tail block is intact"
            );
        });
    }

    #[test]
    fn damaged_checkpoint_and_indexes_are_rebuilt_by_scanning() {
        run(|| async {
            let disk = SimDisk::new(10);
            let log = open(&disk).await;
            for i in 0..40 {
                log.append(batch(2, 150, i), 0).await.unwrap();
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
