//! What the controller's nodes say to each other over RPC, sans-IO: the RPC kinds and the
//! reply to a forwarded change.
//!
//! - [`KIND_RAFT`]: one raft message (protobuf, raft-rs's own encoding), one-way.
//! - [`KIND_FORWARD`]: a request whose payload is an encoded [`Command`]. A node that is not
//!   the controller leader sends the changes its clients ask for to the leader (Kafka's
//!   forwarding), which proposes it and answers a [`ForwardReply`] once it applied (or
//!   refused) the committed entry. The forwarder then waits until its own controller applied
//!   that index, so its clients see the change on the node they asked.
//!
//! Reply payload: `tag u8 | body`, big-endian; decoding checks every length (the bytes come
//! from another node).
//!
//! [`Command`]: super::Command

use super::codec::{put_str, Cursor};
use super::{Applied, MetadataError};

/// A raft message of the controller group.
pub const KIND_RAFT: u16 = 100;
/// A metadata change forwarded to the controller leader.
pub const KIND_FORWARD: u16 = 101;

/// The leader's answer to a forwarded change.
#[derive(Debug)]
pub enum ForwardReply {
    /// Committed at `index` and applied there. `Applied::Deleted` travels as `Done`.
    Applied { index: u64, applied: Applied },
    /// Committed, and the state machine refused it (e.g. the topic exists).
    Rejected(MetadataError),
    /// The receiver is not the leader; it names the one it knows.
    NotLeader(Option<i32>),
    /// The outcome is unknown (leadership changed, no quorum, storage failed). Retriable.
    Unavailable(String),
}

const APPLIED: u8 = 1;
const REJECTED: u8 = 2;
const NOT_LEADER: u8 = 3;
const UNAVAILABLE: u8 = 4;

const DONE: u8 = 0;
const PRODUCER_IDS: u8 = 1;

const TOPIC_EXISTS: u8 = 1;
const UNKNOWN_TOPIC: u8 = 2;
const INVALID_TOPIC_NAME: u8 = 3;
const INVALID_PARTITIONS: u8 = 4;
const INVALID_REPLICAS: u8 = 5;
const CORRUPT: u8 = 6;
const UNSTORABLE: u8 = 7;
const UNKNOWN_USER: u8 = 8;
const INVALID_CREDENTIAL: u8 = 9;
const INVALID_ACL: u8 = 10;

fn error_parts(e: &MetadataError) -> (u8, String) {
    match e {
        MetadataError::TopicExists(m) => (TOPIC_EXISTS, m.clone()),
        MetadataError::UnknownTopic(m) => (UNKNOWN_TOPIC, m.clone()),
        MetadataError::InvalidTopicName(m) => (INVALID_TOPIC_NAME, m.clone()),
        MetadataError::InvalidPartitions(m) => (INVALID_PARTITIONS, m.clone()),
        MetadataError::InvalidReplicas(m) => (INVALID_REPLICAS, m.clone()),
        MetadataError::Corrupt(m) => (CORRUPT, m.clone()),
        MetadataError::Unstorable(m) => (UNSTORABLE, m.clone()),
        MetadataError::UnknownUser(m) => (UNKNOWN_USER, m.clone()),
        MetadataError::InvalidCredential(m) => (INVALID_CREDENTIAL, m.clone()),
        MetadataError::InvalidAcl(m) => (INVALID_ACL, m.clone()),
        MetadataError::Io(e) => (CORRUPT, format!("I/O error on the controller: {e}")),
    }
}

fn error_of(tag: u8, m: String) -> Result<MetadataError, MetadataError> {
    Ok(match tag {
        TOPIC_EXISTS => MetadataError::TopicExists(m),
        UNKNOWN_TOPIC => MetadataError::UnknownTopic(m),
        INVALID_TOPIC_NAME => MetadataError::InvalidTopicName(m),
        INVALID_PARTITIONS => MetadataError::InvalidPartitions(m),
        INVALID_REPLICAS => MetadataError::InvalidReplicas(m),
        CORRUPT => MetadataError::Corrupt(m),
        UNSTORABLE => MetadataError::Unstorable(m),
        UNKNOWN_USER => MetadataError::UnknownUser(m),
        INVALID_CREDENTIAL => MetadataError::InvalidCredential(m),
        INVALID_ACL => MetadataError::InvalidAcl(m),
        t => return Err(MetadataError::Corrupt(format!("unknown error tag {t}"))),
    })
}

impl ForwardReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            ForwardReply::Applied { index, applied } => {
                out.push(APPLIED);
                out.extend_from_slice(&index.to_be_bytes());
                match applied {
                    Applied::ProducerIds { start, end } => {
                        out.push(PRODUCER_IDS);
                        out.extend_from_slice(&start.to_be_bytes());
                        out.extend_from_slice(&end.to_be_bytes());
                    }
                    Applied::Done | Applied::Deleted(_) => out.push(DONE),
                }
            }
            ForwardReply::Rejected(e) => {
                let (tag, m) = error_parts(e);
                out.extend_from_slice(&[REJECTED, tag]);
                put_str(&mut out, &m);
            }
            ForwardReply::NotLeader(leader) => {
                out.push(NOT_LEADER);
                out.extend_from_slice(&leader.unwrap_or(-1).to_be_bytes());
            }
            ForwardReply::Unavailable(m) => {
                out.push(UNAVAILABLE);
                put_str(&mut out, m);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ForwardReply, MetadataError> {
        let mut c = Cursor::new(bytes);
        let reply = match c.u8()? {
            APPLIED => {
                let index = c.u64()?;
                let applied = match c.u8()? {
                    DONE => Applied::Done,
                    PRODUCER_IDS => Applied::ProducerIds {
                        start: c.i64()?,
                        end: c.i64()?,
                    },
                    t => return Err(MetadataError::Corrupt(format!("unknown applied tag {t}"))),
                };
                ForwardReply::Applied { index, applied }
            }
            REJECTED => {
                let tag = c.u8()?;
                ForwardReply::Rejected(error_of(tag, c.string()?)?)
            }
            NOT_LEADER => ForwardReply::NotLeader(Some(c.i32()?).filter(|&l| l >= 0)),
            UNAVAILABLE => ForwardReply::Unavailable(c.string()?),
            t => return Err(MetadataError::Corrupt(format!("unknown reply tag {t}"))),
        };
        c.finish()?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<ForwardReply> {
        vec![
            ForwardReply::Applied {
                index: 42,
                applied: Applied::Done,
            },
            ForwardReply::Applied {
                index: 7,
                applied: Applied::ProducerIds {
                    start: 1000,
                    end: 2000,
                },
            },
            ForwardReply::Rejected(MetadataError::TopicExists("t".into())),
            ForwardReply::Rejected(MetadataError::InvalidPartitions("p".into())),
            ForwardReply::Rejected(MetadataError::Unstorable("u".into())),
            ForwardReply::Rejected(MetadataError::UnknownUser("alice".into())),
            ForwardReply::Rejected(MetadataError::InvalidCredential("c".into())),
            ForwardReply::Rejected(MetadataError::InvalidAcl("a".into())),
            ForwardReply::NotLeader(Some(2)),
            ForwardReply::NotLeader(None),
            ForwardReply::Unavailable("no quorum".into()),
        ]
    }

    #[test]
    fn replies_round_trip_and_damage_is_refused() {
        for reply in samples() {
            let bytes = reply.encode();
            let back = ForwardReply::decode(&bytes).expect("decodes");
            assert_eq!(back.encode(), bytes, "{reply:?}");
            for cut in 0..bytes.len() {
                assert!(
                    ForwardReply::decode(&bytes[..cut]).is_err(),
                    "{reply:?} cut {cut}"
                );
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(ForwardReply::decode(&long).is_err(), "{reply:?} + 1 byte");
        }
        assert!(ForwardReply::decode(&[9]).is_err());
        assert!(ForwardReply::decode(&[REJECTED, 99, 0, 0]).is_err());
    }
}
