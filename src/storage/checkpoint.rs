//! The partition checkpoint: log start offset, recovery point and producer state.
//! Byte layout in the `storage` module docs.

use super::format::{frame, unframe, Reader};
use super::producer::ProducerStates;
use crate::model::Offset;

const CHECKPOINT_MAGIC: &[u8; 4] = b"RMQC";
/// File name of the checkpoint inside the partition directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";

/// A point in the log: everything before it is written (or synced, depending on use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub segment_base: Offset,
    pub position: u64,
    pub next_offset: Offset,
}

/// Decoded checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub log_start_offset: Offset,
    /// Everything before this point was fdatasync'ed and verified when it was written.
    pub recovery_point: Mark,
    /// Producer state; may include batches at or after the recovery point (they are
    /// forgotten and replayed from the log at recovery).
    pub producers: ProducerStates,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(64);
        p.extend_from_slice(&self.log_start_offset.to_be_bytes());
        p.extend_from_slice(&self.recovery_point.segment_base.to_be_bytes());
        p.extend_from_slice(&self.recovery_point.position.to_be_bytes());
        p.extend_from_slice(&self.recovery_point.next_offset.to_be_bytes());
        self.producers.encode(&mut p);
        frame(CHECKPOINT_MAGIC, &p)
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(unframe(CHECKPOINT_MAGIC, bytes)?);
        let log_start_offset = r.i64()?;
        let recovery_point = Mark {
            segment_base: r.i64()?,
            position: r.u64()?,
            next_offset: r.i64()?,
        };
        let producers = ProducerStates::decode(&mut r, crate::base::now_ms())?;
        r.is_done().then_some(Checkpoint {
            log_start_offset,
            recovery_point,
            producers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProducerEpoch, ProducerId, Sequence};
    use crate::storage::producer::ProducerBatch;

    #[test]
    fn round_trip_and_damage() {
        let mut producers = ProducerStates::default();
        let b = ProducerBatch {
            first_seq: Sequence(0),
            last_seq: Sequence(1),
            base_offset: 5,
            last_offset: 6,
        };
        producers.record(ProducerId(3), ProducerEpoch(1), b, 0);
        let cp = Checkpoint {
            log_start_offset: 4,
            recovery_point: Mark {
                segment_base: 0,
                position: 4096,
                next_offset: 7,
            },
            producers,
        };
        let bytes = cp.encode();
        assert_eq!(Checkpoint::decode(&bytes), Some(cp));
        let mut bad = bytes;
        bad[20] ^= 1;
        assert_eq!(Checkpoint::decode(&bad), None);
    }
}
