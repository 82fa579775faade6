//! Records of the group log, byte-compatible with Kafka's `__consumer_offsets`.
//!
//! Every record is a (key, value) pair; a null value is a tombstone. The key starts with an
//! i16 that says what the record is, as in Kafka:
//!
//! | key version | key fields                 | value                                   |
//! |-------------|----------------------------|-----------------------------------------|
//! | 0 or 1      | group, topic, partition    | OffsetCommitValue v0–4 (we write v3)    |
//! | 2           | group                      | GroupMetadataValue v0–4 (we write v3)   |
//!
//! Values start with their own i16 version. Versions 4 are flexible (compact encodings and a
//! tagged-field section) and are read; ringmq writes v3 so that the bytes match what a
//! Kafka 3.x broker writes and need no tagged fields. Unknown key versions (e.g. Kafka 4.x
//! share/consumer-group records) are an error the caller may skip.
//!
//! [`replay`] folds a sequence of records into the state the coordinator restarts from:
//! the last value per key wins, tombstones delete.

use super::GroupState;
use crate::protocol::wire::{DecodeError, Reader, Writer};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;

/// Key version of an offset commit written by ringmq (Kafka writes 1).
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of group metadata.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value versions ringmq writes.
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// Highest value version ringmq reads (first flexible one).
const MAX_VALUE_VERSION: i16 = 4;

/// A record that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes do not decode.
    Decode(DecodeError),
    /// A key or value version this code does not know.
    UnknownVersion { what: &'static str, version: i16 },
    /// Bytes left after the value (a sign of a wrong schema).
    TrailingBytes { what: &'static str, len: usize },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Decode(e) => write!(f, "group record: {e}"),
            RecordError::UnknownVersion { what, version } => {
                write!(f, "unknown {what} version {version}")
            }
            RecordError::TrailingBytes { what, len } => write!(f, "{len} bytes after {what}"),
        }
    }
}

impl std::error::Error for RecordError {}

impl From<DecodeError> for RecordError {
    fn from(e: DecodeError) -> Self {
        RecordError::Decode(e)
    }
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// −1 when unknown (and in values older than v3).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// One member of a stored generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's generation as stored (written when a generation completes or the group
/// empties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadataValue>,
}

/// One record of the group log. `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    OffsetCommit {
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        group_id: String,
        value: Option<GroupMetadataValue>,
    },
}

impl GroupRecord {
    pub fn group_id(&self) -> &str {
        match self {
            GroupRecord::OffsetCommit { group_id, .. }
            | GroupRecord::GroupMetadata { group_id, .. } => group_id,
        }
    }

    /// The record key bytes.
    pub fn key_bytes(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            GroupRecord::OffsetCommit {
                group_id,
                topic,
                partition,
                ..
            } => {
                w.i16(OFFSET_COMMIT_KEY_VERSION);
                w.string(group_id, false);
                w.string(topic, false);
                w.i32(*partition);
            }
            GroupRecord::GroupMetadata { group_id, .. } => {
                w.i16(GROUP_METADATA_KEY_VERSION);
                w.string(group_id, false);
            }
        }
        w.finish_contiguous()
    }

    /// The record value bytes; `None` for a tombstone.
    pub fn value_bytes(&self) -> Option<Bytes> {
        let mut w = Writer::new();
        match self {
            GroupRecord::OffsetCommit { value: Some(v), .. } => encode_offset_value(v, &mut w),
            GroupRecord::GroupMetadata { value: Some(v), .. } => encode_group_value(v, &mut w),
            _ => return None,
        }
        Some(w.finish_contiguous())
    }

    /// Decode a record read back from the log. Never panics on any bytes.
    pub fn decode(key: Bytes, value: Option<Bytes>) -> Result<GroupRecord, RecordError> {
        let mut r = Reader::new(key);
        let key_version = r.i16("key_version")?;
        let record = match key_version {
            0 | 1 => {
                let group_id = r.string(false, "group")?;
                let topic = r.string(false, "topic")?;
                let partition = r.i32("partition")?;
                let value = value.map(decode_offset_value).transpose()?;
                GroupRecord::OffsetCommit {
                    group_id,
                    topic,
                    partition,
                    value,
                }
            }
            2 => {
                let group_id = r.string(false, "group")?;
                let value = value.map(decode_group_value).transpose()?;
                GroupRecord::GroupMetadata { group_id, value }
            }
            version => {
                return Err(RecordError::UnknownVersion {
                    what: "key",
                    version,
                })
            }
        };
        expect_end(&r, "key")?;
        Ok(record)
    }
}

fn expect_end(r: &Reader, what: &'static str) -> Result<(), RecordError> {
    match r.remaining() {
        0 => Ok(()),
        len => Err(RecordError::TrailingBytes { what, len }),
    }
}

fn value_version(r: &mut Reader, what: &'static str) -> Result<i16, RecordError> {
    let version = r.i16("value_version")?;
    if !(0..=MAX_VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnknownVersion { what, version });
    }
    Ok(version)
}

fn encode_offset_value(v: &OffsetCommitValue, w: &mut Writer) {
    w.i16(OFFSET_COMMIT_VALUE_VERSION);
    w.i64(v.offset);
    w.i32(v.leader_epoch);
    w.string(&v.metadata, false);
    w.i64(v.commit_timestamp_ms);
}

fn decode_offset_value(bytes: Bytes) -> Result<OffsetCommitValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = value_version(&mut r, "offset commit value")?;
    let flex = version >= 4;
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader_epoch")?
    } else {
        -1
    };
    let metadata = r.string(flex, "metadata")?;
    let commit_timestamp_ms = r.i64("commit_timestamp")?;
    if version == 1 {
        r.i64("expire_timestamp")?;
    }
    r.tags_if(flex)?;
    expect_end(&r, "offset commit value")?;
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn encode_group_value(v: &GroupMetadataValue, w: &mut Writer) {
    w.i16(GROUP_METADATA_VALUE_VERSION);
    w.string(&v.protocol_type, false);
    w.i32(v.generation_id);
    w.nullable_string(v.protocol_name.as_deref(), false);
    w.nullable_string(v.leader_id.as_deref(), false);
    w.i64(v.current_state_timestamp_ms);
    w.array(&v.members, false, |w, m| {
        w.string(&m.member_id, false);
        w.nullable_string(m.group_instance_id.as_deref(), false);
        w.string(&m.client_id, false);
        w.string(&m.client_host, false);
        w.i32(m.rebalance_timeout_ms);
        w.i32(m.session_timeout_ms);
        w.bytes(&m.subscription, false);
        w.bytes(&m.assignment, false);
    });
}

fn decode_group_value(bytes: Bytes) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = value_version(&mut r, "group metadata value")?;
    let flex = version >= 4;
    let protocol_type = r.string(flex, "protocol_type")?;
    let generation_id = r.i32("generation")?;
    let protocol_name = r.nullable_string(flex, "protocol")?;
    let leader_id = r.nullable_string(flex, "leader")?;
    let current_state_timestamp_ms = if version >= 2 {
        r.i64("current_state_timestamp")?
    } else {
        -1
    };
    let members = r.array(flex, 16, "members", |r| decode_member_value(r, version))?;
    r.tags_if(flex)?;
    expect_end(&r, "group metadata value")?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation_id,
        protocol_name,
        leader_id,
        current_state_timestamp_ms,
        members,
    })
}

fn decode_member_value(r: &mut Reader, version: i16) -> Result<MemberMetadataValue, DecodeError> {
    let flex = version >= 4;
    let member_id = r.string(flex, "member_id")?;
    let group_instance_id = if version >= 3 {
        r.nullable_string(flex, "group_instance_id")?
    } else {
        None
    };
    let client_id = r.string(flex, "client_id")?;
    let client_host = r.string(flex, "client_host")?;
    let session_or_rebalance = r.i32("rebalance_timeout")?;
    let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
        (session_or_rebalance, r.i32("session_timeout")?)
    } else {
        (session_or_rebalance, session_or_rebalance)
    };
    let subscription = r.bytes(flex, "subscription")?;
    let assignment = r.bytes(flex, "assignment")?;
    r.tags_if(flex)?;
    Ok(MemberMetadataValue {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        rebalance_timeout_ms,
        session_timeout_ms,
        subscription,
        assignment,
    })
}

/// What one group looks like after replay: its last stored generation (if any) and its
/// committed offsets by (topic, partition).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayedGroup {
    pub metadata: Option<GroupMetadataValue>,
    pub offsets: BTreeMap<(String, i32), OffsetCommitValue>,
}

impl ReplayedGroup {
    /// The state a group restarts in: Stable with members, Empty without.
    pub fn state(&self) -> GroupState {
        match &self.metadata {
            Some(m) if !m.members.is_empty() => GroupState::Stable,
            _ => GroupState::Empty,
        }
    }
}

/// Fold records, oldest first, into the state per group. The last record per key wins; a
/// tombstone removes the key; a group with neither metadata nor offsets left is dropped.
pub fn replay(records: impl IntoIterator<Item = GroupRecord>) -> BTreeMap<String, ReplayedGroup> {
    let mut groups: BTreeMap<String, ReplayedGroup> = BTreeMap::new();
    for record in records {
        match record {
            GroupRecord::OffsetCommit {
                group_id,
                topic,
                partition,
                value,
            } => {
                let group = groups.entry(group_id).or_default();
                match value {
                    Some(v) => group.offsets.insert((topic, partition), v),
                    None => group.offsets.remove(&(topic, partition)),
                };
            }
            GroupRecord::GroupMetadata { group_id, value } => {
                groups.entry(group_id).or_default().metadata = value;
            }
        }
    }
    groups.retain(|_, g| g.metadata.is_some() || !g.offsets.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::XorShift;

    fn offset(group: &str, topic: &str, partition: i32, offset: i64) -> GroupRecord {
        GroupRecord::OffsetCommit {
            group_id: group.into(),
            topic: topic.into(),
            partition,
            value: Some(OffsetCommitValue {
                offset,
                leader_epoch: 3,
                metadata: "meta".into(),
                commit_timestamp_ms: 1_700_000_000_000,
            }),
        }
    }

    fn metadata(group: &str) -> GroupRecord {
        GroupRecord::GroupMetadata {
            group_id: group.into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation_id: 5,
                protocol_name: Some("range".into()),
                leader_id: Some("m-1".into()),
                current_state_timestamp_ms: 1_700_000_000_000,
                members: vec![MemberMetadataValue {
                    member_id: "m-1".into(),
                    group_instance_id: Some("host-a".into()),
                    client_id: "rdkafka".into(),
                    client_host: "/10.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        }
    }

    fn round_trip(record: &GroupRecord) -> GroupRecord {
        GroupRecord::decode(record.key_bytes(), record.value_bytes()).expect("decodes")
    }

    #[test]
    fn records_round_trip_including_tombstones() {
        let tomb = GroupRecord::OffsetCommit {
            group_id: "g".into(),
            topic: "t".into(),
            partition: 1,
            value: None,
        };
        let group_tomb = GroupRecord::GroupMetadata {
            group_id: "g".into(),
            value: None,
        };
        for record in [
            offset("g", "orders", 7, 42),
            metadata("g"),
            tomb,
            group_tomb,
        ] {
            assert_eq!(round_trip(&record), record);
        }
    }

    #[test]
    fn offset_key_and_value_bytes_are_kafkas() {
        let record = offset("g", "t", 1, 2);
        let key = record.key_bytes();
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
        let value = record.value_bytes().unwrap();
        // version 3, offset 2, epoch 3, "meta", timestamp.
        assert_eq!(&value[..2], &[0, 3]);
        assert_eq!(&value[2..10], &2i64.to_be_bytes());
        assert_eq!(&value[10..14], &3i32.to_be_bytes());
        assert_eq!(&value[14..20], &[0, 4, b'm', b'e', b't', b'a']);
        assert_eq!(value.len(), 28);
    }

    #[test]
    fn old_and_flexible_value_versions_decode() {
        // OffsetCommitValue v1: offset, metadata, commit ts, expire ts.
        let mut w = Writer::new();
        w.i16(1);
        w.i64(9);
        w.string("", false);
        w.i64(100);
        w.i64(200);
        let key = offset("g", "t", 0, 0).key_bytes();
        let got = GroupRecord::decode(key.clone(), Some(w.finish_contiguous())).unwrap();
        let GroupRecord::OffsetCommit { value: Some(v), .. } = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            (v.offset, v.leader_epoch, v.commit_timestamp_ms),
            (9, -1, 100)
        );
        // v4 (flexible): compact string and an empty tag section.
        let mut w = Writer::new();
        w.i16(4);
        w.i64(11);
        w.i32(2);
        w.string("m", true);
        w.i64(5);
        w.tags_if(true);
        let got = GroupRecord::decode(key, Some(w.finish_contiguous())).unwrap();
        let GroupRecord::OffsetCommit { value: Some(v), .. } = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            (v.offset, v.leader_epoch, v.metadata.as_str()),
            (11, 2, "m")
        );
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors_not_panics() {
        let err = GroupRecord::decode(Bytes::from_static(&[0, 9, 0, 0]), None).unwrap_err();
        assert_eq!(
            err,
            RecordError::UnknownVersion {
                what: "key",
                version: 9
            }
        );
        let key = metadata("g").key_bytes();
        let bad_value = Bytes::from_static(&[0, 7, 1, 2]);
        assert!(GroupRecord::decode(key.clone(), Some(bad_value)).is_err());
        let valid = metadata("g").value_bytes().unwrap();
        for len in 0..valid.len() {
            assert!(
                GroupRecord::decode(key.clone(), Some(valid.slice(..len))).is_err(),
                "prefix {len}"
            );
        }
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for _ in 0..3000 {
            let mut k: Vec<u8> = (0..rng.next() % 24).map(|_| rng.next() as u8).collect();
            if k.len() >= 2 {
                k[0] = 0;
                k[1] = (rng.next() % 3) as u8;
            }
            let v: Vec<u8> = (0..rng.next() % 48).map(|_| rng.next() as u8).collect();
            let _ = GroupRecord::decode(Bytes::from(k), Some(Bytes::from(v)));
        }
    }

    #[test]
    fn replay_keeps_last_value_and_honours_tombstones() {
        let records = vec![
            offset("g", "t", 0, 1),
            offset("g", "t", 0, 5),
            offset("g", "t", 1, 3),
            GroupRecord::OffsetCommit {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 1,
                value: None,
            },
            metadata("g"),
            offset("gone", "t", 0, 1),
            GroupRecord::OffsetCommit {
                group_id: "gone".into(),
                topic: "t".into(),
                partition: 0,
                value: None,
            },
        ];
        let state = replay(records);
        assert_eq!(state.len(), 1, "{state:?}");
        let g = &state["g"];
        assert_eq!(g.offsets.len(), 1);
        assert_eq!(g.offsets[&("t".to_string(), 0)].offset, 5);
        assert_eq!(g.state(), GroupState::Stable);
        assert_eq!(g.metadata.as_ref().unwrap().generation_id, 5);
    }
}
