//! Idempotent-producer state: per producer id, its epoch and its last
//! [`CACHED_BATCHES_PER_PRODUCER`] batches' sequence ranges and offsets.
//!
//! Derived purely from batch headers, so storage owns it and rebuilds it by replaying the
//! headers of the recovered tail. The checks follow Kafka's `ProducerStateManager`:
//! producer id < 0 is not idempotent (no check); an unknown producer is accepted; a stale
//! epoch is refused; a new epoch must start at sequence 0; an exact retry of one of the
//! cached batches is answered with the original offsets; any other gap is out of order.
//!
//! Bounds (issue 13). A producer id is forgotten [`PRODUCER_ID_EXPIRATION_MS`] after its last
//! append (Kafka's `producer.id.expiration.ms`, 1 day; "last append" is the broker's clock at
//! append, or the time of recovery for state read back), checked whenever the checkpoint is
//! written. At most [`MAX_PRODUCERS_PER_PARTITION`] ids are kept per partition: past it the
//! least recently used sixteenth is forgotten at once (Kafka has no such cap; Redpanda bounds
//! producers per shard). A forgotten producer is treated as new, as Kafka treats an expired one.
//! The bound keeps the checkpoint far below its read cap: past the cap it could not be read
//! back, recovery rescanned everything and records removed by DeleteRecords came back.

use std::collections::{HashMap, VecDeque};

use super::format::Reader;
use super::StorageError;
use crate::model::{Offset, ProducerEpoch, ProducerId, Sequence};

/// Kafka keeps the last five batches per producer (max.in.flight.requests.per.connection).
pub const CACHED_BATCHES_PER_PRODUCER: usize = 5;
/// Kafka's `producer.id.expiration.ms` default: one day.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;
/// Producer ids kept per partition.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 100_000;
/// Checkpoint bytes of one producer at most: id, epoch, count, five batches, timestamp.
const MAX_ENCODED_PRODUCER_BYTES: usize = 8 + 2 + 1 + CACHED_BATCHES_PER_PRODUCER * 24 + 16;
const _: () = assert!(
    MAX_PRODUCERS_PER_PARTITION * MAX_ENCODED_PRODUCER_BYTES < super::format::MAX_OWN_FILE_BYTES,
    "a full producer table must fit the checkpoint's read cap"
);

/// One appended batch of an idempotent producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_seq: Sequence,
    pub last_seq: Sequence,
    pub base_offset: Offset,
    pub last_offset: Offset,
}

impl ProducerBatch {
    /// The sequence range of the batch `h` at the offsets it was (or is being) stored at.
    pub fn of(h: &crate::model::BatchHeader<'_>, base_offset: Offset, last_offset: Offset) -> Self {
        ProducerBatch {
            first_seq: h.base_sequence(),
            last_seq: h.last_sequence(),
            base_offset,
            last_offset,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct ProducerEntry {
    epoch: ProducerEpoch,
    batches: VecDeque<ProducerBatch>,
    /// Broker clock of the last append (or of recovery), for expiration.
    last_append_ms: i64,
}

/// The verdict on an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it (and record it with [`ProducerStates::record`]).
    Accept,
    /// An exact retry: answer with the original batch, append nothing.
    Duplicate(ProducerBatch),
}

/// Producer id → state, for one partition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProducerStates {
    producers: HashMap<ProducerId, ProducerEntry>,
}

impl ProducerStates {
    /// Check a batch from `producer_id` at `epoch` covering `[first_seq, last_seq]`.
    pub fn check(
        &self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        first_seq: Sequence,
        last_seq: Sequence,
    ) -> Result<SequenceCheck, StorageError> {
        let Some(entry) = self
            .producers
            .get(&producer_id)
            .filter(|_| producer_id.0 >= 0)
        else {
            return Ok(SequenceCheck::Accept);
        };
        if epoch < entry.epoch {
            let current = entry.epoch;
            return Err(StorageError::InvalidProducerEpoch {
                producer_id,
                current,
                received: epoch,
            });
        }
        if epoch > entry.epoch {
            if first_seq != Sequence(0) {
                let (expected, received) = (Sequence(0), first_seq);
                return Err(StorageError::OutOfOrderSequence {
                    producer_id,
                    expected,
                    received,
                });
            }
            return Ok(SequenceCheck::Accept);
        }
        let same = |b: &&ProducerBatch| b.first_seq == first_seq && b.last_seq == last_seq;
        if let Some(original) = entry.batches.iter().find(same) {
            return Ok(SequenceCheck::Duplicate(*original));
        }
        let expected = entry
            .batches
            .back()
            .map_or(first_seq, |b| b.last_seq.next());
        if first_seq != expected {
            return Err(StorageError::OutOfOrderSequence {
                producer_id,
                expected,
                received: first_seq,
            });
        }
        Ok(SequenceCheck::Accept)
    }

    /// Remember an appended batch at broker time `now_ms` (also used to replay headers at
    /// recovery; replaying a batch already known, or one of an older epoch, changes nothing).
    pub fn record(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        batch: ProducerBatch,
        now_ms: i64,
    ) {
        if producer_id.0 < 0 {
            return;
        }
        if self.producers.len() >= MAX_PRODUCERS_PER_PARTITION
            && !self.producers.contains_key(&producer_id)
        {
            self.evict_least_recent(MAX_PRODUCERS_PER_PARTITION / 16);
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                last_append_ms: now_ms,
            });
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        if epoch < entry.epoch
            || entry
                .batches
                .iter()
                .any(|b| b.base_offset == batch.base_offset)
        {
            return;
        }
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(batch);
        while entry.batches.len() > CACHED_BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
    }

    /// Forget the `n` producers whose last append is oldest.
    fn evict_least_recent(&mut self, n: usize) {
        let mut times: Vec<i64> = self.producers.values().map(|e| e.last_append_ms).collect();
        let n = n.clamp(1, times.len().max(1));
        if times.len() < n {
            return;
        }
        let (_, &mut cutoff, _) = times.select_nth_unstable(n - 1);
        let mut left = n;
        self.producers.retain(|_, e| {
            let evict = left > 0 && e.last_append_ms <= cutoff;
            left -= usize::from(evict);
            !evict
        });
    }

    /// Forget producers whose last append is [`PRODUCER_ID_EXPIRATION_MS`] or more before
    /// `now_ms`.
    pub fn expire(&mut self, now_ms: i64) {
        let limit = now_ms.saturating_sub(PRODUCER_ID_EXPIRATION_MS);
        self.producers.retain(|_, e| e.last_append_ms > limit);
    }

    /// Forget batches at or after `offset` (they are not in the recovered log).
    pub fn forget_from(&mut self, offset: Offset) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.base_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }

    /// Number of producers tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Append the checkpoint encoding (see the storage module docs).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for &id in &ids {
            let entry = &self.producers[&id];
            out.extend_from_slice(&id.0.to_be_bytes());
            out.extend_from_slice(&entry.epoch.0.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_seq.0.to_be_bytes());
                out.extend_from_slice(&b.last_seq.0.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        // Trailer (later addition; a checkpoint without it reads as "appended at recovery"):
        // the last append time of each producer, in the same order.
        for id in &ids {
            out.extend_from_slice(&self.producers[id].last_append_ms.to_be_bytes());
        }
    }

    /// Decode what [`ProducerStates::encode`] wrote; `None` if malformed. Producers without a
    /// recorded append time count as appended at `now_ms`.
    pub fn decode(r: &mut Reader<'_>, now_ms: i64) -> Option<Self> {
        let count = r.u32()? as usize;
        if count > MAX_PRODUCERS_PER_PARTITION {
            return None;
        }
        let mut producers = HashMap::with_capacity(count);
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let id = ProducerId(r.i64()?);
            let epoch = ProducerEpoch(r.i16()?);
            let n = usize::from(r.u8()?);
            if n > CACHED_BATCHES_PER_PRODUCER {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                let (first_seq, last_seq) = (Sequence(r.i32()?), Sequence(r.i32()?));
                let (base_offset, last_offset) = (r.i64()?, r.i64()?);
                batches.push_back(ProducerBatch {
                    first_seq,
                    last_seq,
                    base_offset,
                    last_offset,
                });
            }
            let entry = ProducerEntry {
                epoch,
                batches,
                last_append_ms: now_ms,
            };
            if producers.insert(id, entry).is_some() {
                return None;
            }
            ids.push(id);
        }
        if !r.is_done() {
            for id in &ids {
                let at = r.i64()?;
                if let Some(e) = producers.get_mut(id) {
                    e.last_append_ms = at.min(now_ms);
                }
            }
        }
        Some(ProducerStates { producers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first_seq: i32, last_seq: i32, base_offset: Offset) -> ProducerBatch {
        let last_offset = base_offset + i64::from(last_seq - first_seq);
        ProducerBatch {
            first_seq: Sequence(first_seq),
            last_seq: Sequence(last_seq),
            base_offset,
            last_offset,
        }
    }

    /// [`ProducerStates::check`] with plain integers: producer id, epoch, first and last seq.
    fn check(
        s: &ProducerStates,
        id: i64,
        epoch: i16,
        first: i32,
        last: i32,
    ) -> Result<SequenceCheck, StorageError> {
        let (id, epoch) = (ProducerId(id), ProducerEpoch(epoch));
        s.check(id, epoch, Sequence(first), Sequence(last))
    }

    /// [`ProducerStates::record`] with a plain producer id and epoch.
    fn record(s: &mut ProducerStates, id: i64, epoch: i16, batch: ProducerBatch, now_ms: i64) {
        s.record(ProducerId(id), ProducerEpoch(epoch), batch, now_ms);
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStates::default();
        assert_eq!(
            check(&s, -1, 0, 55, 55).unwrap(),
            SequenceCheck::Accept,
            "not idempotent"
        );
        assert_eq!(
            check(&s, 7, 0, 10, 12).unwrap(),
            SequenceCheck::Accept,
            "unknown producer"
        );
        record(&mut s, 7, 0, batch(0, 2, 100), 0);
        assert_eq!(check(&s, 7, 0, 3, 5).unwrap(), SequenceCheck::Accept);
        record(&mut s, 7, 0, batch(3, 5, 103), 0);
        assert_eq!(
            check(&s, 7, 0, 0, 2).unwrap(),
            SequenceCheck::Duplicate(batch(0, 2, 100))
        );
        assert!(matches!(
            check(&s, 7, 0, 7, 9),
            Err(StorageError::OutOfOrderSequence {
                expected: Sequence(6),
                received: Sequence(7),
                ..
            })
        ));
        assert!(matches!(
            check(&s, 7, -1, 6, 6),
            Err(StorageError::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            check(&s, 7, 1, 4, 4),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            check(&s, 7, 1, 0, 0).unwrap(),
            SequenceCheck::Accept,
            "new epoch at 0"
        );
        record(&mut s, 7, 1, batch(0, 0, 106), 0);
        assert!(matches!(
            check(&s, 7, 0, 6, 6),
            Err(StorageError::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn keeps_five_batches_and_wraps_sequences() {
        let mut s = ProducerStates::default();
        for i in 0..8 {
            record(&mut s, 1, 0, batch(i, i, i64::from(i)), 0);
        }
        assert!(matches!(
            check(&s, 1, 0, 2, 2),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            check(&s, 1, 0, 3, 3).unwrap(),
            SequenceCheck::Duplicate(batch(3, 3, 3))
        );
        record(
            &mut s,
            2,
            0,
            ProducerBatch {
                first_seq: Sequence(i32::MAX),
                last_seq: Sequence(i32::MAX),
                base_offset: 9,
                last_offset: 9,
            },
            0,
        );
        assert_eq!(check(&s, 2, 0, 0, 1).unwrap(), SequenceCheck::Accept);
    }

    #[test]
    fn producers_expire_after_a_day_and_their_number_is_bounded() {
        let mut s = ProducerStates::default();
        record(&mut s, 1, 0, batch(0, 0, 0), 1_000);
        record(&mut s, 2, 0, batch(0, 0, 1), 5_000);
        s.expire(1_000 + PRODUCER_ID_EXPIRATION_MS);
        assert_eq!(s.len(), 1, "producer 1 expired, 2 did not");
        assert_eq!(
            check(&s, 2, 0, 0, 0).unwrap(),
            SequenceCheck::Duplicate(batch(0, 0, 1))
        );
        let mut s = ProducerStates::default();
        let n = MAX_PRODUCERS_PER_PARTITION as i64 + 1_000;
        for id in 0..n {
            record(&mut s, id, 0, batch(0, 0, id), id);
        }
        assert!(s.len() <= MAX_PRODUCERS_PER_PARTITION, "{}", s.len());
        assert!(
            s.producers.contains_key(&ProducerId(n - 1)),
            "the newest is kept"
        );
        assert!(
            !s.producers.contains_key(&ProducerId(0)),
            "the least recent went first"
        );
        let mut bytes = Vec::new();
        s.encode(&mut bytes);
        assert!(bytes.len() < crate::storage::format::MAX_OWN_FILE_BYTES);
        assert_eq!(
            ProducerStates::decode(&mut Reader::new(&bytes), n).unwrap(),
            s
        );
    }

    #[test]
    fn encode_decode_and_forget() {
        let mut s = ProducerStates::default();
        record(&mut s, 1, 3, batch(0, 4, 10), 5);
        record(&mut s, 1, 3, batch(5, 5, 15), 6);
        record(&mut s, 9, 0, batch(0, 0, 16), 7);
        let mut bytes = Vec::new();
        s.encode(&mut bytes);
        let mut r = Reader::new(&bytes);
        assert_eq!(ProducerStates::decode(&mut r, 100).unwrap(), s);
        assert!(r.is_done());
        assert!(ProducerStates::decode(&mut Reader::new(&bytes[..bytes.len() - 1]), 100).is_none());
        // Written before the trailer existed: every producer counts as appended now.
        let old = &bytes[..bytes.len() - 8 * 2];
        let back = ProducerStates::decode(&mut Reader::new(old), 100).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.producers.values().all(|e| e.last_append_ms == 100));
        s.forget_from(15);
        assert_eq!(s.len(), 1);
        assert_eq!(
            check(&s, 1, 3, 5, 5).unwrap(),
            SequenceCheck::Accept,
            "forgotten batch"
        );
    }
}
