//! Fetch (key 1), versions 0–12, flexible from 12 (Kafka 4.1 schema; v0–3 from Kafka 3.x).
//!
//! v0–3 answer message sets v0/v1: the server down-converts the stored batches
//! (`records::legacy`) before encoding, so this codec only lays out the fields (v3 adds the
//! request's `max_bytes`, v4 `isolation_level` and the response's `last_stable_offset` and
//! `aborted_transactions`; v1 adds `throttle_time_ms`).
//!
//! The response is where the bytes are, so it is built to avoid copies: each partition's
//! `records` is a list of chunks held by the log (whole batches, possibly from several
//! segments), written as one length prefix followed by the chunks *by reference*
//! ([`Writer::bytes_shared`]); the connection sends them with a vectored write. Decoding (our
//! own client) returns the records as one zero-copy slice of the response frame.
//!
//! Topic ids (v13+) are not served. The v12 request tag ClusterId and the v12 response tags
//! DivergingEpoch and SnapshotId are skipped on decode and never emitted; CurrentLeader
//! (KIP-951, tag 1 of a partition, v12+) is encoded when set (a NOT_LEADER_OR_FOLLOWER answer
//! that knows the leader) and decoded. The response's NodeEndpoints tag exists from v16 only,
//! which is not served, so it is never sent.

use bytes::Bytes;

use super::leader_discovery::{read_one_tag, write_one_tag, LeaderIdAndEpoch};
use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of Fetch.
pub const API_KEY: i16 = 1;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// First version whose records are RecordBatch v2 (older ones get message sets).
pub const MIN_BATCH_VERSION: i16 = 4;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 12;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 12;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// −1 for consumers.
    pub replica_id: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    /// 0 = read_uncommitted, 1 = read_committed.
    pub isolation_level: i8,
    /// v7+; 0 = no session.
    pub session_id: i32,
    /// v7+; −1 = no session.
    pub session_epoch: i32,
    pub topics: Vec<FetchTopic>,
    /// v7+.
    pub forgotten_topics_data: Vec<ForgottenTopic>,
    /// v11+; "" when absent.
    pub rack_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopic {
    pub topic: String,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPartition {
    pub partition: i32,
    /// v9+; −1 when absent.
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    /// v12+; −1 when absent.
    pub last_fetched_epoch: i32,
    /// v5+; −1 when absent.
    pub log_start_offset: i64,
    pub partition_max_bytes: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgottenTopic {
    pub topic: String,
    pub partitions: Vec<i32>,
}

impl FetchPartition {
    fn encode(&self, w: &mut Writer, version: i16) {
        w.i32(self.partition);
        if version >= 9 {
            w.i32(self.current_leader_epoch);
        }
        w.i64(self.fetch_offset);
        if version >= 12 {
            w.i32(self.last_fetched_epoch);
        }
        if version >= 5 {
            w.i64(self.log_start_offset);
        }
        w.i32(self.partition_max_bytes);
        w.tags_if(flexible(version));
    }

    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let partition = r.i32("partition")?;
        let current_leader_epoch = if version >= 9 {
            r.i32("current_leader_epoch")?
        } else {
            -1
        };
        let fetch_offset = r.i64("fetch_offset")?;
        let last_fetched_epoch = if version >= 12 {
            r.i32("last_fetched_epoch")?
        } else {
            -1
        };
        let log_start_offset = if version >= 5 {
            r.i64("log_start_offset")?
        } else {
            -1
        };
        let partition_max_bytes = r.i32("partition_max_bytes")?;
        r.tags_if(flexible(version))?;
        Ok(FetchPartition {
            partition,
            current_leader_epoch,
            fetch_offset,
            last_fetched_epoch,
            log_start_offset,
            partition_max_bytes,
        })
    }
}

impl FetchRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let replica_id = r.i32("replica_id")?;
        let max_wait_ms = r.i32("max_wait_ms")?;
        let min_bytes = r.i32("min_bytes")?;
        let max_bytes = if version >= 3 {
            r.i32("max_bytes")?
        } else {
            i32::MAX
        };
        let isolation_level = if version >= 4 {
            r.i8("isolation_level")?
        } else {
            0
        };
        let (session_id, session_epoch) = if version >= 7 {
            (r.i32("session_id")?, r.i32("session_epoch")?)
        } else {
            (0, -1)
        };
        let topics = r.array(flex, 3, "topics", |r| {
            let topic = r.string(flex, "topic")?;
            let partitions = r.array(flex, 16, "partitions", |r| {
                FetchPartition::decode(r, version)
            })?;
            r.tags_if(flex)?;
            Ok(FetchTopic { topic, partitions })
        })?;
        let forgotten_topics_data = if version >= 7 {
            r.array(flex, 3, "forgotten_topics_data", |r| {
                let topic = r.string(flex, "topic")?;
                let partitions = r.array(flex, 4, "partitions", |r| r.i32("partition"))?;
                r.tags_if(flex)?;
                Ok(ForgottenTopic { topic, partitions })
            })?
        } else {
            Vec::new()
        };
        let rack_id = if version >= 11 {
            r.string(flex, "rack_id")?
        } else {
            String::new()
        };
        r.tags_if(flex)?; // v12 ClusterId (tag 0) is not used.
        Ok(FetchRequest {
            replica_id,
            max_wait_ms,
            min_bytes,
            max_bytes,
            isolation_level,
            session_id,
            session_epoch,
            topics,
            forgotten_topics_data,
            rack_id,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i32(self.replica_id);
        w.i32(self.max_wait_ms);
        w.i32(self.min_bytes);
        if version >= 3 {
            w.i32(self.max_bytes);
        }
        if version >= 4 {
            w.i8(self.isolation_level);
        }
        if version >= 7 {
            w.i32(self.session_id);
            w.i32(self.session_epoch);
        }
        w.array(&self.topics, flex, |w, t| {
            w.string(&t.topic, flex);
            w.array(&t.partitions, flex, |w, p| p.encode(w, version));
            w.tags_if(flex);
        });
        if version >= 7 {
            w.array(&self.forgotten_topics_data, flex, |w, t| {
                w.string(&t.topic, flex);
                w.array(&t.partitions, flex, |w, p| w.i32(*p));
                w.tags_if(flex);
            });
        }
        if version >= 11 {
            w.string(&self.rack_id, flex);
        }
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub throttle_time_ms: i32,
    /// v7+: top-level (session) error.
    pub error_code: i16,
    /// v7+; 0 = no session.
    pub session_id: i32,
    pub responses: Vec<FetchableTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchableTopicResponse {
    pub topic: String,
    pub partitions: Vec<PartitionData>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionData {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    /// −1 when unknown.
    pub last_stable_offset: i64,
    /// v5+; −1 when unknown.
    pub log_start_offset: i64,
    /// Aborted transactions in the returned range (read_committed); `None` is null.
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// v11+; −1 = none.
    pub preferred_read_replica: i32,
    /// Whole record batches as chunks held by the log, sent by reference. A decoded
    /// response holds at most one chunk (the slice of the frame); null decodes as empty.
    pub records: Vec<Bytes>,
    /// v12+ (tag 1, KIP-951): the partition's leader, with NOT_LEADER_OR_FOLLOWER.
    pub current_leader: Option<LeaderIdAndEpoch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

impl PartitionData {
    /// A partition answer with the schema defaults and no records.
    pub fn new(partition_index: i32, error_code: i16, high_watermark: i64) -> Self {
        PartitionData {
            partition_index,
            error_code,
            high_watermark,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: Vec::new(),
            current_leader: None,
        }
    }

    /// Total bytes of record data.
    pub fn records_len(&self) -> usize {
        self.records.iter().map(Bytes::len).sum()
    }

    fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i32(self.partition_index);
        w.i16(self.error_code);
        w.i64(self.high_watermark);
        if version >= 4 {
            w.i64(self.last_stable_offset);
        }
        if version >= 5 {
            w.i64(self.log_start_offset);
        }
        if version >= 4 {
            w.nullable_array(self.aborted_transactions.as_deref(), flex, |w, t| {
                w.i64(t.producer_id);
                w.i64(t.first_offset);
                w.tags_if(flex);
            });
        }
        if version >= 11 {
            w.i32(self.preferred_read_replica);
        }
        w.bytes_shared(&self.records, flex);
        if flex {
            write_one_tag(w, 1, self.current_leader.as_ref(), version);
        }
    }

    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flex = flexible(version);
        let mut p = PartitionData::new(
            r.i32("partition_index")?,
            r.i16("error_code")?,
            r.i64("high_watermark")?,
        );
        if version >= 4 {
            p.last_stable_offset = r.i64("last_stable_offset")?;
        }
        if version >= 5 {
            p.log_start_offset = r.i64("log_start_offset")?;
        }
        if version >= 4 {
            p.aborted_transactions = r.nullable_array(flex, 16, "aborted_transactions", |r| {
                let t = AbortedTransaction {
                    producer_id: r.i64("producer_id")?,
                    first_offset: r.i64("first_offset")?,
                };
                r.tags_if(flex)?;
                Ok(t)
            })?;
        }
        if version >= 11 {
            p.preferred_read_replica = r.i32("preferred_read_replica")?;
        }
        p.records = match r.nullable_bytes(flex, "records")? {
            Some(b) if !b.is_empty() => vec![b],
            _ => Vec::new(),
        };
        if flex {
            // DivergingEpoch (0) and SnapshotId (2) are skipped.
            p.current_leader = read_one_tag(r, 1, version, "current_leader")?;
        }
        Ok(p)
    }
}

impl FetchResponse {
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        if version >= 7 {
            w.i16(self.error_code);
            w.i32(self.session_id);
        }
        w.array(&self.responses, flex, |w, t| {
            w.string(&t.topic, flex);
            w.array(&t.partitions, flex, |w, p| p.encode(w, version));
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let (error_code, session_id) = if version >= 7 {
            (r.i16("error_code")?, r.i32("session_id")?)
        } else {
            (0, 0)
        };
        let responses = r.array(flex, 3, "responses", |r| {
            let topic = r.string(flex, "topic")?;
            let min_partition_bytes = if version >= 4 { 32 } else { 18 };
            let partitions = r.array(flex, min_partition_bytes, "partitions", |r| {
                PartitionData::decode(r, version)
            })?;
            r.tags_if(flex)?;
            Ok(FetchableTopicResponse { topic, partitions })
        })?;
        r.tags_if(flex)?;
        Ok(FetchResponse {
            throttle_time_ms,
            error_code,
            session_id,
            responses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use kafka_protocol::messages as kp;

    fn sample_request() -> FetchRequest {
        FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 52_428_800,
            isolation_level: 1,
            session_id: 12,
            session_epoch: 3,
            topics: vec![FetchTopic {
                topic: "orders".into(),
                partitions: vec![FetchPartition {
                    partition: 2,
                    current_leader_epoch: 5,
                    fetch_offset: 1000,
                    last_fetched_epoch: 4,
                    log_start_offset: 10,
                    partition_max_bytes: 1_048_576,
                }],
            }],
            forgotten_topics_data: vec![ForgottenTopic {
                topic: "old".into(),
                partitions: vec![0, 1],
            }],
            rack_id: "rack-a".into(),
        }
    }

    fn sample_response() -> FetchResponse {
        let mut p = PartitionData::new(2, 0, 2000);
        p.last_stable_offset = 1999;
        p.log_start_offset = 10;
        p.aborted_transactions = Some(vec![AbortedTransaction {
            producer_id: 77,
            first_offset: 1500,
        }]);
        p.preferred_read_replica = 1;
        p.records = vec![
            Bytes::from_static(b"batch-one|"),
            Bytes::from_static(b"batch-two"),
        ];
        let mut moved = PartitionData::new(3, 6, -1);
        moved.current_leader = Some(LeaderIdAndEpoch {
            leader_id: 2,
            leader_epoch: 9,
        });
        FetchResponse {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 12,
            responses: vec![FetchableTopicResponse {
                topic: "orders".into(),
                partitions: vec![p, moved],
            }],
        }
    }

    /// KIP-951: Fetch v12 carries CurrentLeader as tag 1 of the partition, which kafka-protocol
    /// reads (and re-encodes to the same bytes in `round_trips_every_version`); an unset one
    /// is not sent; older versions have no tags.
    #[test]
    fn current_leader_tag_at_v12() {
        use kafka_protocol::protocol::Decodable;
        let b = encode(&sample_response(), 12, FetchResponse::encode);
        let theirs = kp::FetchResponse::decode(&mut b.clone(), 12).expect("oracle decodes");
        let parts = &theirs.responses[0].partitions;
        assert_eq!(parts[1].current_leader.leader_id.0, 2);
        assert_eq!(parts[1].current_leader.leader_epoch, 9);
        assert_eq!(
            parts[0].current_leader.leader_id.0, -1,
            "no hint without one"
        );
        assert!(parts.iter().all(|p| p.unknown_tagged_fields.is_empty()));
        let got = FetchResponse::decode(&mut Reader::new(b), 12).unwrap();
        assert_eq!(
            got.responses[0].partitions[1].current_leader,
            sample_response().responses[0].partitions[1].current_leader
        );
        let old = encode(&sample_response(), 11, FetchResponse::encode);
        let got = FetchResponse::decode(&mut Reader::new(old), 11).unwrap();
        assert_eq!(got.responses[0].partitions[1].current_leader, None);
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                FetchRequest::encode,
                FetchRequest::decode,
            );
            let p = got.topics[0].partitions[0];
            assert_eq!(p.fetch_offset, 1000);
            assert_eq!(p.current_leader_epoch, if v >= 9 { 5 } else { -1 });
            assert_eq!(got.forgotten_topics_data.len(), usize::from(v >= 7));
            assert_eq!(got.isolation_level, if v >= 4 { 1 } else { 0 });
            assert_eq!(got.max_bytes, if v >= 3 { 52_428_800 } else { i32::MAX });
            if v == MAX_VERSION {
                assert_eq!(got, sample_request());
            }
            truncations_fail(&b, v, FetchRequest::decode);
            // The oracle has Kafka 4.1's schemas, which start at v4.
            if v >= MIN_BATCH_VERSION {
                oracle_agrees::<kp::FetchRequest>(&b, v);
            }

            let (got, b) = round_trip(
                &sample_response(),
                v,
                FetchResponse::encode,
                FetchResponse::decode,
            );
            let p = &got.responses[0].partitions[0];
            assert_eq!(p.records, vec![Bytes::from_static(b"batch-one|batch-two")]);
            let aborted = p.aborted_transactions.as_ref().map(Vec::len);
            assert_eq!(aborted, if v >= 4 { Some(1) } else { None });
            assert_eq!(p.last_stable_offset, if v >= 4 { 1999 } else { -1 });
            assert_eq!(got.responses[0].partitions[1].records, Vec::<Bytes>::new());
            assert_eq!(got.session_id, if v >= 7 { 12 } else { 0 });
            truncations_fail(&b, v, FetchResponse::decode);
            if v >= MIN_BATCH_VERSION {
                oracle_agrees::<kp::FetchResponse>(&b, v);
            }
        }
    }

    #[test]
    fn response_records_are_never_copied() {
        for v in [4, 12] {
            let resp = sample_response();
            let mut w = Writer::new();
            resp.encode(&mut w, v);
            let parts = w.finish();
            let chunks = &resp.responses[0].partitions[0].records;
            for chunk in chunks {
                assert!(
                    parts
                        .iter()
                        .any(|p| p.as_ptr() == chunk.as_ptr() && p.len() == chunk.len()),
                    "chunk was copied at v{v}"
                );
            }
        }
    }

    #[test]
    fn single_length_prefix_covers_all_chunks() {
        let mut p = PartitionData::new(0, 0, 0);
        p.records = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")];
        let resp = FetchResponse {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![p],
            }],
        };
        let b = encode(&resp, 4, FetchResponse::encode);
        // ... preferred_read_replica absent at v4, so records are the last field: i32 5 + "abcde".
        assert_eq!(
            &b[b.len() - 9..],
            &[0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e']
        );
        let b = encode(&resp, 12, FetchResponse::encode);
        // compact: uvarint 6, data, then partition/topic/response tag sections.
        assert_eq!(
            &b[b.len() - 9..],
            &[6, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]
        );
    }

    #[test]
    fn null_records_decode_as_empty_and_unknown_tags_skip() {
        // A v12 response from a real broker may carry tags we do not use: build one with the
        // oracle (CurrentLeader set) and null records, and check we read past both.
        let leader = kp::fetch_response::LeaderIdAndEpoch::default()
            .with_leader_id(kp::BrokerId(3))
            .with_leader_epoch(9);
        let part = kp::fetch_response::PartitionData::default()
            .with_partition_index(1)
            .with_high_watermark(5)
            .with_current_leader(leader)
            .with_records(None);
        let topic = kp::fetch_response::FetchableTopicResponse::default()
            .with_topic(kp::TopicName::from(
                kafka_protocol::protocol::StrBytes::from_static_str("t"),
            ))
            .with_partitions(vec![part]);
        let oracle = kp::FetchResponse::default().with_responses(vec![topic]);
        let mut buf = Vec::new();
        kafka_protocol::protocol::Encodable::encode(&oracle, &mut buf, 12).unwrap();
        let got = decode_all(Bytes::from(buf), 12, FetchResponse::decode).unwrap();
        let p = &got.responses[0].partitions[0];
        assert_eq!(
            (p.partition_index, p.high_watermark, p.records_len()),
            (1, 5, 0)
        );
    }

    #[test]
    fn oracle_encoded_request_decodes() {
        let part = kp::fetch_request::FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(42);
        let topic = kp::fetch_request::FetchTopic::default()
            .with_topic(kp::TopicName::from(
                kafka_protocol::protocol::StrBytes::from_static_str("t"),
            ))
            .with_partitions(vec![part]);
        let cluster = Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "cluster-x",
        ));
        let req = kp::FetchRequest::default()
            .with_topics(vec![topic])
            .with_cluster_id(cluster);
        for v in MIN_BATCH_VERSION..=MAX_VERSION {
            let mut theirs = Vec::new();
            kafka_protocol::protocol::Encodable::encode(&req, &mut theirs, v).unwrap();
            let got = decode_all(Bytes::from(theirs), v, FetchRequest::decode).unwrap();
            assert_eq!(got.topics[0].partitions[0].fetch_offset, 42, "v{v}");
        }
        let req = req.with_cluster_id(None);
        for v in MIN_BATCH_VERSION..=MAX_VERSION {
            ours_agree(&req, v, FetchRequest::encode, FetchRequest::decode);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = [4, 7, 11, 12]
            .iter()
            .flat_map(|&v| {
                [
                    encode(&sample_request(), v, FetchRequest::encode),
                    encode(&sample_response(), v, FetchResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(&seeds, 0..=12, FetchRequest::decode, 2000);
        random_bytes_never_panic(&seeds, 0..=12, FetchResponse::decode, 2000);
    }
}
