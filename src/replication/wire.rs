//! The replication envelope: everything one node's groups send to one other node in one loop.
//!
//! Payload of an rpc envelope of kind [`super::KIND_REPLICATION`], big-endian:
//! `version u8 (1)` ·
//! `beats u32` × `(group u64 · term u64 · commit u64 · flags u8)` ·
//! `wakes u32` × `group u64` ·
//! `messages u32` × `(group u64 · len u32 · protobuf eraftpb::Message)`.
//!
//! A beat is a raft heartbeat (flags bit 0 clear) or its response (bit 0 set) in 25 bytes:
//! raft ids are implied by the node pair (one replica per node per group), and raft-rs needs
//! nothing else of a heartbeat without a read-index context. Bit 1 on a heartbeat means "the
//! leader hibernates this group". A wake asks the group's leader to resume ticking. An empty
//! batch is a keep-alive. Decoding checks every count against the bytes left before it
//! allocates, and parses messages without copying their entries' data.

use super::{GroupId, ReplicationError};
use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::Message;

pub const VERSION: u8 = 1;
/// The beat answers a heartbeat.
pub const BEAT_RESPONSE: u8 = 1;
/// The leader hibernates the group (on a heartbeat).
pub const BEAT_HIBERNATE: u8 = 2;
const BEAT_BYTES: usize = 25;
const MESSAGE_MIN_BYTES: usize = 12;

/// A compact heartbeat or heartbeat response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    pub group: GroupId,
    pub term: u64,
    pub commit: u64,
    pub flags: u8,
}

/// One envelope's content.
#[derive(Default, Debug)]
pub struct Batch {
    pub beats: Vec<Beat>,
    pub wakes: Vec<GroupId>,
    pub messages: Vec<(GroupId, Message)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.beats.is_empty() && self.wakes.is_empty() && self.messages.is_empty()
    }

    /// Bytes [`Batch::encode`] will write (message sizes as last computed).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.beats.len() * BEAT_BYTES);
        out.push(VERSION);
        out.extend_from_slice(&(self.beats.len() as u32).to_be_bytes());
        for b in &self.beats {
            out.extend_from_slice(&b.group.0.to_be_bytes());
            out.extend_from_slice(&b.term.to_be_bytes());
            out.extend_from_slice(&b.commit.to_be_bytes());
            out.push(b.flags);
        }
        out.extend_from_slice(&(self.wakes.len() as u32).to_be_bytes());
        for g in &self.wakes {
            out.extend_from_slice(&g.0.to_be_bytes());
        }
        out.extend_from_slice(&(self.messages.len() as u32).to_be_bytes());
        for (g, m) in &self.messages {
            out.extend_from_slice(&g.0.to_be_bytes());
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            // Writing a valid message into a Vec cannot fail.
            let _ = m.write_to_vec(&mut out);
            let len = (out.len() - len_at - 4) as u32;
            out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        }
        out
    }

    /// Decode a peer's envelope.
    pub fn decode(bytes: &Bytes) -> Result<Batch, ReplicationError> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.u8()? != VERSION {
            return Err(bad("unknown version"));
        }
        let mut batch = Batch::default();
        let n = r.count(BEAT_BYTES)?;
        batch.beats.reserve_exact(n);
        for _ in 0..n {
            let (group, term, commit) = (GroupId(r.u64()?), r.u64()?, r.u64()?);
            let flags = r.u8()?;
            batch.beats.push(Beat {
                group,
                term,
                commit,
                flags,
            });
        }
        let n = r.count(8)?;
        batch.wakes.reserve_exact(n);
        for _ in 0..n {
            batch.wakes.push(GroupId(r.u64()?));
        }
        let n = r.count(MESSAGE_MIN_BYTES)?;
        batch.messages.reserve_exact(n);
        for _ in 0..n {
            let group = GroupId(r.u64()?);
            let len = r.u32()? as usize;
            let body = r.take(len)?;
            let m = Message::parse_from_carllerche_bytes(&body)
                .map_err(|e| bad(&format!("raft message: {e}")))?;
            batch.messages.push((group, m));
        }
        if r.at != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(batch)
    }
}

fn bad(why: &str) -> ReplicationError {
    ReplicationError::BadEnvelope(why.to_string())
}

struct Reader<'a> {
    b: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<Bytes, ReplicationError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| bad("truncated"))?;
        let s = self.b.slice(self.at..end);
        self.at = end;
        Ok(s)
    }
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ReplicationError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ReplicationError> {
        Ok(self.fixed::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, ReplicationError> {
        Ok(u32::from_be_bytes(self.fixed()?))
    }
    fn u64(&mut self) -> Result<u64, ReplicationError> {
        Ok(u64::from_be_bytes(self.fixed()?))
    }
    /// A count of items of at least `min_bytes` each, checked against the bytes left.
    fn count(&mut self, min_bytes: usize) -> Result<usize, ReplicationError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes) > self.b.len() - self.at {
            return Err(bad("count larger than the envelope"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimRng;
    use raft::eraftpb::{Entry, MessageType};

    fn sample() -> Batch {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.from = 1;
        m.to = 2;
        m.term = 5;
        m.set_entries(
            vec![Entry {
                index: 3,
                term: 5,
                data: Bytes::from_static(b"batch bytes"),
                ..Default::default()
            }]
            .into(),
        );
        Batch {
            beats: vec![Beat {
                group: GroupId(7),
                term: 5,
                commit: 2,
                flags: BEAT_HIBERNATE,
            }],
            wakes: vec![GroupId(9)],
            messages: vec![(GroupId(7), m)],
        }
    }

    #[test]
    fn round_trip_and_truncations_refused() {
        let bytes = Bytes::from(sample().encode());
        let back = Batch::decode(&bytes).unwrap();
        assert_eq!(back.beats, sample().beats);
        assert_eq!(back.wakes, sample().wakes);
        assert_eq!(back.messages.len(), 1);
        assert_eq!(back.messages[0].1, sample().messages[0].1);
        for cut in 0..bytes.len() {
            assert!(
                Batch::decode(&bytes.slice(..cut)).is_err(),
                "prefix of {cut} bytes"
            );
        }
        let empty = Bytes::from(Batch::default().encode());
        assert!(Batch::decode(&empty).unwrap().is_empty());
    }

    #[test]
    fn random_bytes_never_panic_nor_allocate_beyond_the_envelope() {
        let mut rng = SimRng::new(3);
        let good = sample().encode();
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = rng.next_u64() as u8;
            }
            let _ = Batch::decode(&Bytes::from(b));
        }
        let mut huge = vec![VERSION];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(Batch::decode(&Bytes::from(huge)).is_err());
    }
}
