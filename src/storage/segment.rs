//! One segment: its log file, its in-memory sparse offset and time indexes, their files, and
//! the recovery scan that checks every batch (length, magic, counts, CRC-32C, dense offsets).

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::format::{frame, unframe, Reader};
use crate::io::{align_down, DiskFile};
use crate::model::{BatchHeader, Offset, BATCH_HEADER_BYTES};

const INDEX_MAGIC: &[u8; 4] = b"RMQI";
const TIME_INDEX_MAGIC: &[u8; 4] = b"RMQT";
/// Bytes read per scan step during recovery.
const SCAN_CHUNK_BYTES: usize = 1 << 20;
/// A batch claiming more than this is treated as corrupt by the scan (far above any
/// max.message.bytes in use; bounds the memory a garbage length can make us read).
pub const MAX_SCAN_BATCH_BYTES: usize = 256 << 20;
/// Segment positions are u32 in the index: segments never grow past this.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 31;

/// File name stem of a segment: the base offset, zero-padded to 20 digits.
pub fn segment_stem(base_offset: Offset) -> String {
    format!("{base_offset:020}")
}

/// Paths of a segment's three files.
pub fn segment_paths(dir: &Path, base_offset: Offset) -> [PathBuf; 3] {
    let stem = segment_stem(base_offset);
    ["log", "index", "timeindex"].map(|ext| dir.join(format!("{stem}.{ext}")))
}

/// A segment of the log. The active segment's `size_bytes` includes buffered bytes.
pub struct Segment<F> {
    pub base_offset: Offset,
    pub file: Rc<F>,
    /// Logical size: bytes of whole batches.
    pub size_bytes: u64,
    /// One past the last offset in the segment (== base_offset when empty).
    pub next_offset: Offset,
    /// (offset - base_offset, position), increasing in both.
    pub index: Vec<(u32, u32)>,
    /// (max timestamp of every earlier batch of the segment, offset - base_offset).
    pub time_index: Vec<(i64, u32)>,
    pub bytes_since_index: u64,
    /// Largest batch maxTimestamp, -1 if empty.
    pub max_timestamp: i64,
    pub max_timestamp_offset: Offset,
    /// Wall clock when the segment was created or opened (segment.ms).
    pub created_ms: i64,
}

/// What a saved offset index says about its segment.
pub struct IndexFile {
    pub covered_bytes: u64,
    pub next_offset: Offset,
    pub max_timestamp: i64,
    pub max_timestamp_offset: Offset,
    pub entries: Vec<(u32, u32)>,
}

impl<F: DiskFile> Segment<F> {
    pub fn new(base_offset: Offset, file: Rc<F>, created_ms: i64) -> Self {
        Segment {
            base_offset,
            file,
            size_bytes: 0,
            next_offset: base_offset,
            index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
            max_timestamp: -1,
            max_timestamp_offset: base_offset,
            created_ms,
        }
    }

    /// Account for a batch appended at `pos` (appends and recovery scans alike); `max_ts` is
    /// its largest timestamp ([`crate::records::batch_max_timestamp`], not the header's).
    pub fn note_batch(
        &mut self,
        pos: u64,
        h: &BatchHeader<'_>,
        len: usize,
        interval: u32,
        max_ts: i64,
    ) {
        let rel = (h.base_offset() - self.base_offset) as u32;
        if self.index.is_empty() || self.bytes_since_index >= u64::from(interval) {
            self.index.push((rel, pos as u32));
            self.bytes_since_index = 0;
            let ts_before = self.max_timestamp;
            if self.time_index.last().is_none_or(|(ts, _)| ts_before > *ts) {
                self.time_index.push((ts_before, rel));
            }
        }
        self.bytes_since_index += len as u64;
        if max_ts > self.max_timestamp {
            self.max_timestamp = max_ts;
            self.max_timestamp_offset = h.base_offset();
        }
        self.size_bytes = pos + len as u64;
        self.next_offset = h.last_offset() + 1;
    }

    /// Where to start reading for `offset`: the position and base offset of the batch of the
    /// last index entry at or before it.
    pub fn position_for(&self, offset: Offset) -> (u64, Offset) {
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let i = self.index.partition_point(|(r, _)| *r <= rel);
        if i == 0 {
            (0, self.base_offset)
        } else {
            let (rel, pos) = self.index[i - 1];
            (u64::from(pos), self.base_offset + i64::from(rel))
        }
    }

    /// Offset to start scanning for the first batch with maxTimestamp >= `ts`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Offset {
        let i = self.time_index.partition_point(|(t, _)| *t < ts);
        if i == 0 {
            self.base_offset
        } else {
            self.base_offset + i64::from(self.time_index[i - 1].1)
        }
    }

    /// Framed offset index content for the first `covered_bytes` of the log (whose next
    /// offset is `next_offset`): entries beyond are left out.
    pub fn encode_index(&self, covered_bytes: u64, next_offset: Offset) -> Vec<u8> {
        let entries: Vec<_> = self
            .index
            .iter()
            .filter(|(_, pos)| u64::from(*pos) < covered_bytes)
            .collect();
        let mut p = Vec::with_capacity(44 + 8 * entries.len());
        p.extend_from_slice(&self.base_offset.to_be_bytes());
        p.extend_from_slice(&covered_bytes.to_be_bytes());
        p.extend_from_slice(&next_offset.to_be_bytes());
        p.extend_from_slice(&self.max_timestamp.to_be_bytes());
        p.extend_from_slice(&self.max_timestamp_offset.to_be_bytes());
        p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (rel, pos) in entries {
            p.extend_from_slice(&rel.to_be_bytes());
            p.extend_from_slice(&pos.to_be_bytes());
        }
        frame(INDEX_MAGIC, &p)
    }

    /// Framed time index content for the offsets before `next_offset`.
    pub fn encode_time_index(&self, next_offset: Offset) -> Vec<u8> {
        let limit = next_offset - self.base_offset;
        let entries: Vec<_> = self
            .time_index
            .iter()
            .filter(|(_, rel)| i64::from(*rel) < limit)
            .collect();
        let mut p = Vec::with_capacity(12 + 12 * entries.len());
        p.extend_from_slice(&self.base_offset.to_be_bytes());
        p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (ts, rel) in entries {
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&rel.to_be_bytes());
        }
        frame(TIME_INDEX_MAGIC, &p)
    }

    /// Adopt saved indexes (already checked against the file) instead of scanning.
    pub fn adopt(&mut self, index: IndexFile, time_index: Vec<(i64, u32)>) {
        self.size_bytes = index.covered_bytes;
        self.next_offset = index.next_offset;
        self.max_timestamp = index.max_timestamp;
        self.max_timestamp_offset = index.max_timestamp_offset;
        self.index = index.entries;
        self.time_index = time_index;
        // Conservative: the next append adds an entry.
        self.bytes_since_index = u64::MAX / 2;
    }
}

/// Decode a saved offset index of the segment at `base_offset`; `None` if invalid.
pub fn decode_index(bytes: &[u8], base_offset: Offset) -> Option<IndexFile> {
    let mut r = Reader::new(unframe(INDEX_MAGIC, bytes)?);
    if r.i64()? != base_offset {
        return None;
    }
    let covered_bytes = r.u64()?;
    let next_offset = r.i64()?;
    let (max_timestamp, max_timestamp_offset) = (r.i64()?, r.i64()?);
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        entries.push((r.u32()?, r.u32()?));
    }
    let sorted = entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
    let sane = next_offset >= base_offset && entries.iter().all(|e| u64::from(e.1) < covered_bytes);
    (r.is_done() && sorted && sane).then_some(IndexFile {
        covered_bytes,
        next_offset,
        max_timestamp,
        max_timestamp_offset,
        entries,
    })
}

/// Decode a saved time index; `None` if invalid.
pub fn decode_time_index(bytes: &[u8], base_offset: Offset) -> Option<Vec<(i64, u32)>> {
    let mut r = Reader::new(unframe(TIME_INDEX_MAGIC, bytes)?);
    if r.i64()? != base_offset {
        return None;
    }
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        entries.push((r.i64()?, r.u32()?));
    }
    r.is_done().then_some(entries)
}

/// How a recovery scan ended.
pub struct ScanOutcome {
    /// Why the scan stopped before the end of the file, if it did not end cleanly.
    pub stop_reason: Option<String>,
    /// The bytes of the last, partially filled block: `[align_down(end), end)`.
    pub tail_block: Vec<u8>,
}

/// A window of file bytes read during a scan.
struct Window {
    pos: u64,
    bytes: Vec<u8>,
}

impl Window {
    /// Make `[pos, pos + len)` available, reading from the file if needed. Returns false at
    /// end of file.
    async fn ensure<F: DiskFile>(&mut self, file: &F, pos: u64, len: usize) -> io::Result<bool> {
        let end = pos + len as u64;
        if pos >= self.pos && end <= self.pos + self.bytes.len() as u64 {
            return Ok(true);
        }
        let start = align_down(pos, file.alignment());
        let want = ((end - start) as usize).max(SCAN_CHUNK_BYTES);
        self.bytes = file.read_at(start, want).await?;
        self.pos = start;
        Ok(end <= self.pos + self.bytes.len() as u64)
    }

    fn slice(&self, pos: u64, len: usize) -> &[u8] {
        let at = (pos - self.pos) as usize;
        &self.bytes[at..at + len]
    }

    /// The bytes held from `pos` on (empty if `pos` is outside the window).
    fn rest(&self, pos: u64) -> &[u8] {
        let at = pos.saturating_sub(self.pos) as usize;
        if pos < self.pos {
            return &[];
        }
        self.bytes.get(at..).unwrap_or(&[])
    }
}

/// A zeroed header at `pos` (padding or preallocated space) ends the log cleanly only if
/// nothing but zeros follows it; otherwise it is the reason the scan stops.
async fn zeroed_header<F: DiskFile>(file: &F, pos: u64, end: u64) -> io::Result<Option<String>> {
    let at = first_nonzero(file, pos, end).await?;
    Ok(at.map(|at| format!("zeroed header followed by data at {at}")))
}

/// Position of the first non-zero byte of `file` in `[pos, end)`, read in chunks.
async fn first_nonzero<F: DiskFile>(file: &F, pos: u64, end: u64) -> io::Result<Option<u64>> {
    let mut at = align_down(pos, file.alignment());
    while at < end {
        let chunk = file.read_at(at, SCAN_CHUNK_BYTES).await?;
        if chunk.is_empty() {
            break;
        }
        let skip = pos.saturating_sub(at) as usize;
        if let Some(i) = chunk.iter().skip(skip).position(|b| *b != 0) {
            return Ok(Some(at + (skip + i) as u64));
        }
        at += chunk.len() as u64;
    }
    Ok(None)
}

/// Scan `seg` from `seg.size_bytes` (which must be a batch boundary, with `seg.next_offset`
/// the expected next offset) to the end of its file, checking every batch and extending the
/// segment's indexes. Stops at the first batch that is torn, corrupt or out of sequence.
pub async fn scan<F: DiskFile>(
    seg: &mut Segment<F>,
    interval: u32,
    on_batch: &mut dyn FnMut(&BatchHeader<'_>),
) -> io::Result<ScanOutcome> {
    let file_size = seg.file.size().await?;
    let file = seg.file.clone();
    let mut window = Window {
        pos: 0,
        bytes: Vec::new(),
    };
    let mut pos = seg.size_bytes;
    let stop_reason = loop {
        if pos >= file_size {
            break None;
        }
        if !window.ensure(&*file, pos, BATCH_HEADER_BYTES).await? {
            // Zero padding to the alignment, shorter than a header, is the clean end.
            let zeros = window.rest(pos).iter().all(|b| *b == 0);
            break (!zeros).then(|| format!("torn header ({} bytes)", file_size - pos));
        }
        let head = window.slice(pos, BATCH_HEADER_BYTES);
        if head.iter().all(|b| *b == 0) {
            break zeroed_header(&*file, pos, file_size).await?;
        }
        let header = BatchHeader::parse(head).map_err(|_| io::ErrorKind::InvalidData)?;
        let total = match header.total_bytes() {
            Ok(t) if t <= MAX_SCAN_BATCH_BYTES => t,
            Ok(t) => break Some(format!("impossible batch length {t}")),
            Err(e) => break Some(e.to_string()),
        };
        if pos + total as u64 > file_size || !window.ensure(&*file, pos, total).await? {
            break Some(format!("torn batch ({total} bytes claimed)"));
        }
        let bytes = window.slice(pos, total);
        let Ok(h) = BatchHeader::parse(bytes) else {
            break Some("short".into());
        };
        if let Err(e) = h.validate() {
            break Some(e.to_string());
        }
        if h.base_offset() != seg.next_offset {
            break Some(format!(
                "offset {} where {} was expected",
                h.base_offset(),
                seg.next_offset
            ));
        }
        on_batch(&h);
        let max_ts = crate::records::batch_max_timestamp(bytes);
        seg.note_batch(pos, &h, total, interval, max_ts);
        pos += total as u64;
    };
    let tail_start = align_down(pos, file.alignment());
    let tail_block = if window
        .ensure(&*file, tail_start, (pos - tail_start) as usize)
        .await?
    {
        window
            .slice(tail_start, (pos - tail_start) as usize)
            .to_vec()
    } else {
        Vec::new()
    };
    Ok(ScanOutcome {
        stop_reason,
        tail_block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;
    use crate::io::{Disk, IoBuffer};
    use crate::model::{stamp_batch, test_batches, LeaderEpoch};
    use futures_lite::future::block_on;

    fn log_bytes(n: usize, pad_to: usize) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        let mut offset = 10;
        for i in 0..n {
            let mut b = test_batches::batch(&[b"v1", b"value-2"], 1000 + i as i64);
            stamp_batch(&mut b, offset, LeaderEpoch(0));
            offset += 2;
            starts.push(out.len());
            out.extend_from_slice(&b);
        }
        out.resize(out.len().next_multiple_of(pad_to), 0);
        (out, starts)
    }

    async fn write_file(disk: &SimDisk, path: &Path, bytes: &[u8]) -> Rc<crate::io::sim::SimFile> {
        let f = disk.open(path, true).await.unwrap();
        let mut buf = f.alloc_buffer(bytes.len());
        buf.as_bytes_mut().copy_from_slice(bytes);
        f.write_at(Rc::new(buf), 0).await.unwrap();
        Rc::new(f)
    }

    #[test]
    fn scan_rebuilds_index_and_stops_at_corruption() {
        block_on(async {
            let disk = SimDisk::new(1);
            disk.create_dir_all(Path::new("/p")).await.unwrap();
            let (mut bytes, starts) = log_bytes(50, disk.alignment());
            let file = write_file(&disk, Path::new("/p/a.log"), &bytes).await;
            let mut seg = Segment::new(10, file, 0);
            let mut seen = 0;
            let out = scan(&mut seg, 256, &mut |_| seen += 1).await.unwrap();
            assert!(out.stop_reason.is_none());
            assert_eq!((seen, seg.next_offset), (50, 110));
            assert!(seg.index.len() > 5 && seg.time_index.len() > 1);
            assert_eq!(seg.position_for(10), (0, 10));
            let (pos, at) = seg.position_for(109);
            assert!(pos > 0 && pos as usize <= starts[49] && at <= 108);
            assert_eq!(
                starts.iter().position(|s| *s as u64 == pos),
                Some((at as usize - 10) / 2)
            );
            assert_eq!(seg.offset_for_timestamp(0), 10);
            assert!(seg.offset_for_timestamp(1040) <= 90);

            bytes[starts[20] + 70] ^= 4; // corrupt batch 20's records
            let file = write_file(&disk, Path::new("/p/b.log"), &bytes).await;
            let mut seg = Segment::new(10, file, 0);
            let out = scan(&mut seg, 256, &mut |_| {}).await.unwrap();
            assert!(out.stop_reason.unwrap().contains("CRC"));
            assert_eq!((seg.next_offset, seg.size_bytes as usize), (50, starts[20]));
            let tail_len = starts[20] - align_down(starts[20] as u64, disk.alignment()) as usize;
            assert_eq!(out.tail_block.len(), tail_len);
        });
    }

    #[test]
    fn index_files_round_trip_and_reject_damage() {
        block_on(async {
            let disk = SimDisk::new(2);
            disk.create_dir_all(Path::new("/p")).await.unwrap();
            let (bytes, _) = log_bytes(30, disk.alignment());
            let file = write_file(&disk, Path::new("/p/a.log"), &bytes).await;
            let mut seg = Segment::new(10, file, 0);
            scan(&mut seg, 100, &mut |_| {}).await.unwrap();
            let idx = seg.encode_index(seg.size_bytes, seg.next_offset);
            let back = decode_index(&idx, 10).unwrap();
            assert_eq!(back.entries, seg.index);
            assert_eq!(
                (back.covered_bytes, back.next_offset),
                (seg.size_bytes, seg.next_offset)
            );
            assert!(decode_index(&idx, 11).is_none(), "other segment");
            let t = seg.encode_time_index(seg.next_offset);
            assert_eq!(decode_time_index(&t, 10).unwrap(), seg.time_index);
            let mut bad = idx.clone();
            bad[30] ^= 1;
            assert!(decode_index(&bad, 10).is_none());
        });
    }
}
