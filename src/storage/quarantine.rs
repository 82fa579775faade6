//! Setting aside what recovery cannot read. Bytes that were synced (below the checkpoint's
//! recovery point) are never deleted: they are copied into a quarantine file next to the
//! segment, made durable, and only then cut from the segment. A segment that overlaps the
//! one before it is renamed into quarantine whole. `ringmq check --data-dir` lists these
//! files; nothing reads them back.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::partition::FileOf;
use super::segment::{segment_paths, segment_stem};
use super::StorageError;
use crate::io::{align_up, Disk, DiskFile, IoBuffer};
use crate::model::Offset;

/// Bytes copied per step.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// File names of quarantined bytes start with this (and never parse as a segment's).
pub const QUARANTINE_PREFIX: &str = "quarantine-";

/// Whether a file name in a partition directory is a quarantine file.
pub fn is_quarantine_file(name: &str) -> bool {
    name.starts_with(QUARANTINE_PREFIX) && name.ends_with(".bad")
}

/// Where bytes of segment `base` from file position `position` are set aside.
pub fn quarantine_path(dir: &Path, base: Offset, position: u64) -> PathBuf {
    dir.join(format!(
        "{QUARANTINE_PREFIX}{}-{position}.bad",
        segment_stem(base)
    ))
}

/// Copy `[from, to)` of the log file of segment `base` into its quarantine file, durably.
pub(super) async fn copy_out<D: Disk>(
    disk: &D,
    dir: &Path,
    src: &FileOf<D>,
    base: Offset,
    from: u64,
    to: u64,
) -> Result<PathBuf, StorageError> {
    let path = quarantine_path(dir, base, from);
    let io_err = |op| {
        let path = path.clone();
        move |e| StorageError::io(op, path, e)
    };
    let dst = disk.open(&path, true).await.map_err(io_err("create"))?;
    dst.truncate(0).await.map_err(io_err("truncate"))?;
    let align = dst.alignment();
    let (mut at, mut written) = (from, 0u64);
    while at < to {
        let want = ((to - at) as usize).min(COPY_CHUNK_BYTES);
        let data = src.read_at(at, want).await.map_err(io_err("read"))?;
        if data.is_empty() {
            break;
        }
        let mut buf = dst.alloc_buffer(align_up(data.len() as u64, align) as usize);
        buf.as_bytes_mut()[..data.len()].copy_from_slice(&data);
        buf.as_bytes_mut()[data.len()..].fill(0);
        dst.write_at(Rc::new(buf), written)
            .await
            .map_err(io_err("write"))?;
        written += data.len() as u64;
        at += data.len() as u64;
        if data.len() < want {
            break;
        }
    }
    dst.truncate(written).await.map_err(io_err("truncate"))?;
    dst.fdatasync().await.map_err(io_err("fdatasync"))?;
    disk.sync_dir(dir)
        .await
        .map_err(|e| StorageError::io("sync dir", dir, e))?;
    Ok(path)
}

/// Rename the whole log file of segment `base` into quarantine; its indexes (derived data)
/// are removed.
pub(super) async fn move_out<D: Disk>(
    disk: &D,
    dir: &Path,
    base: Offset,
) -> Result<PathBuf, StorageError> {
    let [log, index, time_index] = segment_paths(dir, base);
    let path = quarantine_path(dir, base, 0);
    disk.rename(&log, &path)
        .await
        .map_err(|e| StorageError::io("rename", &log, e))?;
    for p in [index, time_index] {
        if let Err(e) = disk.remove(&p).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(StorageError::io("remove", p, e));
            }
        }
    }
    disk.sync_dir(dir)
        .await
        .map_err(|e| StorageError::io("sync dir", dir, e))?;
    Ok(path)
}
