//! Record-level reading of a RecordBatch v2, for the few places that need it (ListOffsets by
//! timestamp must name the exact record). The produce and fetch paths never come here: they
//! keep batches as opaque, checksummed bytes.
//!
//! Compressed batches are decompressed (gzip, snappy raw or xerial-framed, lz4 frame, zstd
//! frames) into a buffer capped at [`MAX_DECOMPRESSED_BYTES`], so a hostile batch (a
//! decompression bomb) cannot make us allocate without bound: decoding stops one byte past the
//! cap and the batch is refused as [`RecordsError::TooLarge`].

#[cfg(test)]
use crate::model::build_batch;
use crate::model::{BatchHeader, Offset, TimestampMs, BATCH_HEADER_BYTES};
use std::io::Read;

pub mod legacy;

/// Largest decompressed record set we inflate.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// Why records could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsError {
    Malformed(&'static str),
    /// A checksum does not match (message sets v0/v1).
    Corrupt,
    UnsupportedCompression(u8),
    TooLarge,
}

fn decompress(codec: u8, data: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    let limit = MAX_DECOMPRESSED_BYTES as u64 + 1;
    let read = match codec {
        1 => flate2::read::GzDecoder::new(data)
            .take(limit)
            .read_to_end(&mut out),
        2 => return snappy(data),
        3 => lz4_flex::frame::FrameDecoder::new(data)
            .take(limit)
            .read_to_end(&mut out),
        4 => return zstd(data),
        other => return Err(RecordsError::UnsupportedCompression(other)),
    };
    read.map_err(|_| RecordsError::Malformed("decompression failed"))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(RecordsError::TooLarge);
    }
    Ok(out)
}

/// zstd: one or more concatenated frames (the Java client and librdkafka write one), decoded
/// by the pure-Rust `ruzstd` with the output capped like every codec. ruzstd grows its window
/// buffer with the output, so the cap bounds its memory too.
fn zstd(data: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let mut rest = data;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let room = (MAX_DECOMPRESSED_BYTES - out.len()) as u64 + 1;
        let frame = ruzstd::decoding::StreamingDecoder::new(&mut rest)
            .map_err(|_| RecordsError::Malformed("zstd frame header"))?;
        frame
            .take(room)
            .read_to_end(&mut out)
            .map_err(|_| RecordsError::Malformed("zstd data"))?;
        if out.len() > MAX_DECOMPRESSED_BYTES {
            return Err(RecordsError::TooLarge);
        }
    }
    Ok(out)
}

/// Snappy as librdkafka writes it (raw) or as the Java client does (xerial framing:
/// magic, two version ints, then (u32 length, raw chunk)*).
fn snappy(data: &[u8]) -> Result<Vec<u8>, RecordsError> {
    const XERIAL: &[u8] = b"\x82SNAPPY\x00";
    let raw = |chunk: &[u8]| -> Result<Vec<u8>, RecordsError> {
        let len = snap::raw::decompress_len(chunk)
            .map_err(|_| RecordsError::Malformed("snappy length"))?;
        if len > MAX_DECOMPRESSED_BYTES {
            return Err(RecordsError::TooLarge);
        }
        snap::raw::Decoder::new()
            .decompress_vec(chunk)
            .map_err(|_| RecordsError::Malformed("snappy data"))
    };
    if !data.starts_with(XERIAL) {
        return raw(data);
    }
    let mut rest = data
        .get(16..)
        .ok_or(RecordsError::Malformed("xerial header"))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordsError::Malformed("xerial chunk"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let chunk = rest
            .get(4..4 + len)
            .ok_or(RecordsError::Malformed("xerial chunk"))?;
        out.extend_from_slice(&raw(chunk)?);
        if out.len() > MAX_DECOMPRESSED_BYTES {
            return Err(RecordsError::TooLarge);
        }
        rest = &rest[4 + len..];
    }
    Ok(out)
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn varlong(&mut self) -> Result<i64, RecordsError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let (&byte, rest) = self
                .b
                .split_first()
                .ok_or(RecordsError::Malformed("varint"))?;
            self.b = rest;
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(RecordsError::Malformed("varint too long"))
    }
    /// A varint-length nullable field, borrowed.
    fn nullable_slice(&mut self) -> Result<Option<&'a [u8]>, RecordsError> {
        let len = self.varlong()?;
        if len < 0 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| RecordsError::Malformed("length"))?;
        let b = self
            .b
            .get(..n)
            .ok_or(RecordsError::Malformed("field overruns record"))?;
        self.b = &self.b[n..];
        Ok(Some(b))
    }
    fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, RecordsError> {
        Ok(self.nullable_slice()?.map(<[u8]>::to_vec))
    }
    fn skip(&mut self, n: usize) -> Result<(), RecordsError> {
        self.b = self
            .b
            .get(n..)
            .ok_or(RecordsError::Malformed("record overruns batch"))?;
        Ok(())
    }
}

/// One record seen by [`each_record`]: its timestamp and offset deltas, and a cursor at its
/// key.
struct RecordView<'a> {
    timestamp_delta: i64,
    offset_delta: i64,
    rest: Cursor<'a>,
}

/// Walk the records of a batch whose bytes have been validated (decompressing them if
/// needed), collecting what `f` makes of each.
fn each_record<T>(
    batch: &[u8],
    mut f: impl FnMut(&BatchHeader<'_>, RecordView<'_>) -> Result<T, RecordsError>,
) -> Result<Vec<T>, RecordsError> {
    let h = BatchHeader::parse(batch).map_err(|_| RecordsError::Malformed("short batch"))?;
    let total = h
        .total_bytes()
        .map_err(|_| RecordsError::Malformed("batch length"))?;
    let body = batch
        .get(BATCH_HEADER_BYTES..total)
        .ok_or(RecordsError::Malformed("batch length"))?;
    let inflated;
    let records = match h.compression() {
        0 => body,
        codec => {
            inflated = decompress(codec, body)?;
            &inflated[..]
        }
    };
    let count = usize::try_from(h.records_count()).map_err(|_| RecordsError::Malformed("count"))?;
    let mut out = Vec::with_capacity(count.min(records.len()));
    let mut c = Cursor { b: records };
    for _ in 0..count {
        let len =
            usize::try_from(c.varlong()?).map_err(|_| RecordsError::Malformed("record length"))?;
        let mut rec = Cursor {
            b: c.b
                .get(..len)
                .ok_or(RecordsError::Malformed("record length"))?,
        };
        c.skip(len)?;
        rec.skip(1)?; // attributes
        let timestamp_delta = rec.varlong()?;
        let offset_delta = rec.varlong()?;
        out.push(f(
            &h,
            RecordView {
                timestamp_delta,
                offset_delta,
                rest: rec,
            },
        )?);
    }
    Ok(out)
}

/// (offset, timestamp) of each record of a batch whose bytes have been validated.
pub fn record_timestamps(batch: &[u8]) -> Result<Vec<(Offset, TimestampMs)>, RecordsError> {
    each_record(batch, |h, r| {
        let ts = if h.is_log_append_time() {
            h.max_timestamp()
        } else {
            h.base_timestamp()
                .checked_add(r.timestamp_delta)
                .ok_or(RecordsError::Malformed("timestamp delta overflows"))?
        };
        let offset = h
            .base_offset()
            .checked_add(r.offset_delta)
            .ok_or(RecordsError::Malformed("offset delta overflows"))?;
        Ok((offset, ts))
    })
}

/// Key and value of each record of an uncompressed or compressed batch (for internal logs).
pub type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The records of a batch whose bytes have been validated, as (key, value) pairs.
pub fn record_key_values(batch: &[u8]) -> Result<Vec<KeyValue>, RecordsError> {
    each_record(batch, |_, mut r| {
        let key = r.rest.nullable_bytes()?;
        let value = r.rest.nullable_bytes()?;
        Ok((key, value))
    })
}

/// The largest timestamp of a validated batch. The header's maxTimestamp is used when it is
/// consistent (LogAppendTime, or at least the batch's first timestamp); otherwise (Sarama
/// writes -1) the records are read, so an index built from this never skips a batch whose
/// header lies low. Unreadable records (a timestamp delta that overflows among them, as in
/// [`record_timestamps`]) fall back to the first timestamp.
pub fn batch_max_timestamp(batch: &[u8]) -> TimestampMs {
    let Ok(h) = BatchHeader::parse(batch) else {
        return -1;
    };
    if h.is_log_append_time() || h.max_timestamp() >= h.base_timestamp() {
        return h.max_timestamp();
    }
    let fallback = h.base_timestamp();
    let timestamp = |h: &BatchHeader<'_>, r: RecordView<'_>| {
        h.base_timestamp()
            .checked_add(r.timestamp_delta)
            .ok_or(RecordsError::Malformed("timestamp delta overflows"))
    };
    match each_record(batch, timestamp) {
        Ok(ts) => ts.into_iter().max().unwrap_or(fallback),
        Err(_) => fallback,
    }
}

/// The first record of `batch` with a timestamp at or after `target`.
pub fn first_at_or_after(
    batch: &[u8],
    target: TimestampMs,
) -> Result<Option<(Offset, TimestampMs)>, RecordsError> {
    Ok(record_timestamps(batch)?
        .into_iter()
        .find(|(_, ts)| *ts >= target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{stamp_batch, test_batches, LeaderEpoch};

    #[test]
    fn uncompressed_records_found_by_timestamp() {
        let mut b = test_batches::batch(&[b"a", b"b", b"c"], 1000);
        stamp_batch(&mut b, 10, LeaderEpoch(0));
        let all = record_timestamps(&b).unwrap();
        assert_eq!(all, vec![(10, 1000), (11, 1000), (12, 1000)]);
        assert_eq!(first_at_or_after(&b, 1000).unwrap(), Some((10, 1000)));
        assert_eq!(first_at_or_after(&b, 1001).unwrap(), None);
    }

    #[test]
    fn built_batches_validate_and_read_back() {
        let b = build_batch(&[(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)], 77);
        assert_eq!(BatchHeader::parse(&b).unwrap().validate().unwrap(), b.len());
        let kv = record_key_values(&b).unwrap();
        assert_eq!(
            kv,
            vec![
                (Some(b"k1".to_vec()), Some(b"v1".to_vec())),
                (Some(b"k2".to_vec()), None)
            ]
        );
        assert_eq!(record_timestamps(&b).unwrap(), vec![(0, 77), (1, 77)]);
    }

    /// A batch of one-byte records with the given timestamps (deltas from the first), its
    /// record set compressed with `codec` the way clients do it; header maxTimestamp is
    /// `max_ts` (clients differ: Sarama writes -1).
    pub(crate) fn batch_with(timestamps: &[i64], codec: u8, max_ts: i64) -> Vec<u8> {
        let plain = test_batches::batch(&vec![&b"x"[..]; timestamps.len()], timestamps[0]);
        let mut records = Vec::new();
        for (i, ts) in timestamps.iter().enumerate() {
            let mut rec = vec![0u8];
            for v in [ts - timestamps[0], i as i64] {
                put_varlong(&mut rec, v);
            }
            rec.extend_from_slice(&[1, 2, b'x', 0]); // null key, value "x", no headers
            put_varlong(&mut records, rec.len() as i64);
            records.extend_from_slice(&rec);
        }
        let body = compress(codec, &records);
        let mut b = plain[..BATCH_HEADER_BYTES].to_vec();
        b.extend_from_slice(&body);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[21..23].copy_from_slice(&i16::from(codec).to_be_bytes());
        b[35..43].copy_from_slice(&max_ts.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    pub(crate) fn compress(codec: u8, data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        match codec {
            0 => data.to_vec(),
            1 => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            2 => snap::raw::Encoder::new().compress_vec(data).unwrap(),
            3 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            4 => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
            other => panic!("codec {other}"),
        }
    }

    #[test]
    fn every_codec_finds_the_exact_record() {
        let ts: Vec<i64> = (0..200).map(|i| 1_000 + 3 * i).collect();
        for codec in 0..=4u8 {
            let mut b = batch_with(&ts, codec, *ts.last().unwrap());
            stamp_batch(&mut b, 100, LeaderEpoch(0));
            assert_eq!(BatchHeader::parse(&b).unwrap().validate().unwrap(), b.len());
            let all = record_timestamps(&b).unwrap();
            assert_eq!(all.len(), 200, "codec {codec}");
            assert_eq!(all[111], (211, 1_333), "codec {codec}");
            assert_eq!(first_at_or_after(&b, 1_332).unwrap(), Some((211, 1_333)));
            assert_eq!(first_at_or_after(&b, 1_598).unwrap(), None, "codec {codec}");
        }
    }

    #[test]
    fn max_timestamp_comes_from_records_when_the_header_lies_low() {
        let ts = [1_000, 1_500, 1_200];
        for codec in 0..=4u8 {
            assert_eq!(batch_max_timestamp(&batch_with(&ts, codec, -1)), 1_500);
            assert_eq!(batch_max_timestamp(&batch_with(&ts, codec, 1_500)), 1_500);
        }
        let mut broken = batch_with(&ts, 0, -1);
        let n = broken.len();
        broken[n - 9] = 0x7f; // the last record's length (9 bytes from the end) made negative
        assert_eq!(batch_max_timestamp(&broken), 1_000);
    }

    #[test]
    fn zstd_concatenated_frames_read_as_one_record_set() {
        let ts = [5, 6, 7];
        let one = batch_with(&ts, 0, 7);
        let records = &one[BATCH_HEADER_BYTES..];
        let (a, b) = records.split_at(5); // frames need not end at record boundaries
        let mut two = compress(4, a);
        two.extend_from_slice(&compress(4, b));
        assert_eq!(zstd(&two).unwrap(), records);
        assert!(
            zstd(&two[..two.len() - 1]).is_err(),
            "a truncated frame is malformed"
        );
    }

    #[test]
    fn zstd_bomb_is_refused_at_the_cap() {
        let big = vec![0u8; MAX_DECOMPRESSED_BYTES + 1];
        let bomb = compress(4, &big);
        assert!(
            bomb.len() < 1 << 20,
            "compressed bomb is {} bytes",
            bomb.len()
        );
        assert_eq!(zstd(&bomb), Err(RecordsError::TooLarge));
        let exact = compress(4, &big[..MAX_DECOMPRESSED_BYTES]);
        assert_eq!(zstd(&exact).map(|v| v.len()), Ok(MAX_DECOMPRESSED_BYTES));
        assert!(zstd(b"\x28\xb5\x2f\xfd garbage").is_err());
    }

    #[test]
    fn deltas_that_overflow_are_malformed_not_wrapped() {
        // Record 0's timestamp delta is the byte after its length and attributes.
        let ts_delta_at = BATCH_HEADER_BYTES + 2;
        let mut b = test_batches::batch(&[b"a"], i64::MAX);
        assert_eq!(b[ts_delta_at], 0);
        b[ts_delta_at] = 2; // zig-zag 1: i64::MAX + 1
        assert_eq!(
            record_timestamps(&b),
            Err(RecordsError::Malformed("timestamp delta overflows"))
        );
        let mut b = test_batches::batch(&[b"a", b"b"], 5);
        stamp_batch(&mut b, i64::MAX, LeaderEpoch(0)); // record 1 has offset delta 1
        assert_eq!(
            record_timestamps(&b),
            Err(RecordsError::Malformed("offset delta overflows"))
        );
    }

    #[test]
    fn max_timestamp_of_an_overflowing_delta_is_the_first_timestamp() {
        let ts_delta_at = BATCH_HEADER_BYTES + 2;
        let mut b = test_batches::batch(&[b"a"], i64::MAX);
        b[35..43].copy_from_slice(&(-1i64).to_be_bytes()); // maxTimestamp lies low
        b[ts_delta_at] = 2; // zig-zag 1: i64::MAX + 1
        assert_eq!(batch_max_timestamp(&b), i64::MAX);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut b = test_batches::batch(&[b"a", b"b"], 5);
        let n = b.len();
        for i in crate::model::BATCH_HEADER_BYTES..n {
            b[i] = 0xff;
            let _ = record_timestamps(&b);
        }
        assert!(decompress(1, b"not gzip").is_err());
        assert!(snappy(b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff").is_err());
    }
}
