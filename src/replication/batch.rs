//! Raft entries as Kafka RecordBatches, and back.
//!
//! A data entry's payload *is* a RecordBatch v2 (validated before it enters raft: at propose
//! and when it arrives from a peer). Raft's own entries become **control batches** (attributes
//! bit 5) of one record whose key is the control-record key (version 0, type) and whose value
//! is raft's payload: [`CONTROL_RAFT_NOOP`] for the empty entry a new leader appends,
//! [`CONTROL_RAFT_CONF`] / [`CONTROL_RAFT_CONF_V2`] for configuration changes. Clients skip
//! control batches of types they do not know. Every field of such a batch is fixed (timestamp
//! -1, no producer), so each replica builds the same bytes.

use crate::model::{build_batch, stamp_batch, BatchError, BatchHeader, LeaderEpoch, Offset};
use bytes::{Bytes, BytesMut};
use raft::eraftpb::{Entry, EntryType};

/// Control type of raft's empty entry (a new leader's no-op).
pub const CONTROL_RAFT_NOOP: i16 = 0x5200;
/// Control type of a raft `ConfChange`.
pub const CONTROL_RAFT_CONF: i16 = 0x5201;
/// Control type of a raft `ConfChangeV2`.
pub const CONTROL_RAFT_CONF_V2: i16 = 0x5202;

const ATTR_CONTROL: i16 = 0x20;
const CRC_START: usize = 21;

/// A valid batch's header, after checking the bytes hold exactly one whole batch.
pub fn check_batch(bytes: &[u8]) -> Result<BatchHeader<'_>, BatchError> {
    let h = BatchHeader::parse(bytes)?;
    let total = h.validate()?;
    if total != bytes.len() {
        return Err(BatchError::BadLength(h.batch_length()));
    }
    Ok(h)
}

/// The control batch holding a raft entry of control type `kind` with payload `value`
/// (unstamped: base offset 0, epoch 0).
pub fn control_batch(kind: i16, value: &[u8]) -> Vec<u8> {
    let mut key = [0u8; 4];
    key[2..4].copy_from_slice(&kind.to_be_bytes());
    let mut b = build_batch(&[(Some(&key[..]), Some(value))], -1);
    let attrs = i16::from_be_bytes([b[21], b[22]]) | ATTR_CONTROL;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn control_kind(t: EntryType) -> i16 {
    match t {
        EntryType::EntryNormal => CONTROL_RAFT_NOOP,
        EntryType::EntryConfChange => CONTROL_RAFT_CONF,
        EntryType::EntryConfChangeV2 => CONTROL_RAFT_CONF_V2,
    }
}

/// The batch a replica writes for raft entry `e`, stamped with `base_offset` and the entry's
/// term. A data entry keeps its bytes when they are stamped so already (zero copy; entries
/// that come from a peer's log are), otherwise one copy is stamped.
pub fn batch_for_entry(e: &Entry, base_offset: Offset) -> Result<Bytes, BatchError> {
    let epoch = LeaderEpoch(i32::try_from(e.term).map_err(|_| BatchError::BadLength(-1))?);
    let data_entry = e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty();
    if data_entry {
        let h = check_batch(&e.data)?;
        if h.base_offset() == base_offset && h.partition_leader_epoch() == epoch {
            return Ok(e.data.clone());
        }
        let mut b = BytesMut::from(&e.data[..]);
        stamp_batch(&mut b, base_offset, epoch);
        return Ok(b.freeze());
    }
    let mut b = control_batch(control_kind(e.get_entry_type()), &e.data);
    stamp_batch(&mut b, base_offset, epoch);
    Ok(Bytes::from(b))
}

/// Read a zig-zag varint at `*at`, advancing it; `None` past the end or over 10 bytes.
fn varint(b: &[u8], at: &mut usize) -> Option<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

/// `(control type, value range)` of a batch's single control record, if the batch is a
/// ringmq raft control batch.
fn raft_control(batch: &[u8], h: &BatchHeader<'_>) -> Option<(i16, std::ops::Range<usize>)> {
    if !h.is_control() || h.records_count() != 1 {
        return None;
    }
    let mut at = crate::model::BATCH_HEADER_BYTES;
    let _len = varint(batch, &mut at)?;
    at += 1; // record attributes
    varint(batch, &mut at)?; // timestamp delta
    varint(batch, &mut at)?; // offset delta
    let key_len = usize::try_from(varint(batch, &mut at)?).ok()?;
    let key = batch.get(at..at.checked_add(key_len)?)?;
    at += key_len;
    if key_len != 4 || key[0..2] != [0, 0] {
        return None;
    }
    let kind = i16::from_be_bytes([key[2], key[3]]);
    let value_len = usize::try_from(varint(batch, &mut at)?).ok()?;
    let end = at.checked_add(value_len)?;
    batch.get(at..end)?;
    matches!(
        kind,
        CONTROL_RAFT_NOOP | CONTROL_RAFT_CONF | CONTROL_RAFT_CONF_V2
    )
    .then_some((kind, at..end))
}

/// True if `batch` (already checked) is one of ringmq's raft control batches: such bytes can
/// never be a data entry's payload (they would read back as raft's own entry).
pub fn is_raft_control(batch: &[u8]) -> bool {
    BatchHeader::parse(batch).is_ok_and(|h| raft_control(batch, &h).is_some())
}

/// The raft entry at `index` stored as `batch` (a stamped batch from the log): a data entry
/// shares the batch's bytes; a raft control batch gives back raft's own entry.
pub fn entry_for_batch(index: u64, batch: &Bytes) -> Result<Entry, BatchError> {
    let h = check_batch(batch)?;
    let mut e = Entry {
        index,
        term: u64::try_from(h.partition_leader_epoch().0).map_err(|_| BatchError::BadLength(-1))?,
        ..Default::default()
    };
    match raft_control(batch, &h) {
        Some((kind, value)) => {
            e.set_entry_type(match kind {
                CONTROL_RAFT_CONF => EntryType::EntryConfChange,
                CONTROL_RAFT_CONF_V2 => EntryType::EntryConfChangeV2,
                _ => EntryType::EntryNormal,
            });
            e.data = batch.slice(value);
        }
        None => e.data = batch.clone(),
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_batches;

    #[test]
    fn data_entries_round_trip_and_are_stamped() {
        let raw = Bytes::from(test_batches::batch(&[b"a", b"bb", b"ccc"], 5));
        let e = Entry {
            index: 4,
            term: 7,
            data: raw.clone(),
            ..Default::default()
        };
        let b = batch_for_entry(&e, 100).unwrap();
        let h = check_batch(&b).unwrap();
        assert_eq!(
            (
                h.base_offset(),
                h.last_offset(),
                h.partition_leader_epoch().0
            ),
            (100, 102, 7)
        );
        assert_eq!(&b[16..], &raw[16..], "only the stamped fields change");
        let back = entry_for_batch(4, &b).unwrap();
        assert_eq!(
            (back.index, back.term, back.get_entry_type()),
            (4, 7, EntryType::EntryNormal)
        );
        assert_eq!(back.data, b);
        let again = batch_for_entry(&back, 100).unwrap();
        assert_eq!(
            again.as_ptr(),
            b.as_ptr(),
            "a stamped batch is kept without a copy"
        );
    }

    #[test]
    fn raft_entries_become_control_batches_and_back() {
        for (t, data) in [
            (EntryType::EntryNormal, Bytes::new()),
            (EntryType::EntryConfChange, Bytes::from_static(b"conf")),
            (
                EntryType::EntryConfChangeV2,
                Bytes::from_static(b"conf-v2-bytes"),
            ),
        ] {
            let mut e = Entry {
                index: 9,
                term: 3,
                data: data.clone(),
                ..Default::default()
            };
            e.set_entry_type(t);
            let b = batch_for_entry(&e, 41).unwrap();
            let h = check_batch(&b).unwrap();
            assert!(h.is_control());
            assert_eq!(
                (
                    h.base_offset(),
                    h.last_offset(),
                    h.partition_leader_epoch().0
                ),
                (41, 41, 3)
            );
            assert_eq!(
                b,
                batch_for_entry(&e, 41).unwrap(),
                "built the same everywhere"
            );
            let back = entry_for_batch(9, &b).unwrap();
            assert_eq!(
                (back.get_entry_type(), back.term, &back.data[..]),
                (t, 3, &data[..])
            );
        }
    }

    #[test]
    fn bad_bytes_are_refused_not_panicked_on() {
        let raw = test_batches::batch(&[b"x"], 1);
        let mut e = Entry {
            data: Bytes::from(raw[..raw.len() - 1].to_vec()),
            ..Default::default()
        };
        assert!(batch_for_entry(&e, 0).is_err());
        let mut flipped = raw.clone();
        flipped[40] ^= 1;
        e.data = Bytes::from(flipped);
        assert!(batch_for_entry(&e, 0).is_err());
        let mut ctl = control_batch(CONTROL_RAFT_NOOP, b"");
        let n = ctl.len();
        ctl[n - 3] = 0x7f; // a huge value length inside the record
        let crc = crc32c::crc32c(&ctl[CRC_START..]);
        ctl[17..21].copy_from_slice(&crc.to_be_bytes());
        let b = Bytes::from(ctl);
        let back = entry_for_batch(1, &b).unwrap();
        assert_eq!(
            back.data, b,
            "an unreadable control record is kept as plain data"
        );
    }
}
