//! Produce (key 0): advertised and decoded 0–12, flexible from 9 (Kafka 4.1 schema).
//!
//! Record batches stay zero-copy: `records` is a [`Bytes`] slice of the request frame, handed
//! to storage without copying. Produce v0–2 carry message sets v0/v1 (the same layout without
//! `transactional_id`); the server converts them into a RecordBatch v2 before routing
//! (`server::legacy`, as Kafka 3.x does), so only v[`MIN_STORED_VERSION`]+ records reach
//! storage as sent.
//! v13 names topics by id and is not served. The v10+ response tags of KIP-951 (CurrentLeader
//! per partition, tag 0; NodeEndpoints, tag 0 of the response) are encoded from v10 when set
//! (a NOT_LEADER_OR_FOLLOWER answer that knows the leader), and read back by the decoder.

use bytes::Bytes;

use super::leader_discovery::{read_one_tag, write_one_tag, LeaderIdAndEpoch, NodeEndpoint};
use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of Produce.
pub const API_KEY: i16 = 0;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 12;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 9;
/// Lowest version we can decode (all advertised ones).
pub const MIN_DECODABLE_VERSION: i16 = 0;
/// Lowest version whose records are stored: v3 is the first with RecordBatch v2 (magic 2).
pub const MIN_STORED_VERSION: i16 = 3;

/// First version with KIP-951's CurrentLeader and NodeEndpoints tags.
pub const LEADER_DISCOVERY_FROM: i16 = 10;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

/// Smallest encoding of an array element: used to bound counts before allocating.
fn min_topic_bytes(flex: bool) -> usize {
    if flex {
        3
    } else {
        6
    }
}
fn min_partition_bytes(flex: bool) -> usize {
    if flex {
        6
    } else {
        8
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRequest {
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topic_data: Vec<TopicProduceData>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicProduceData {
    pub name: String,
    pub partition_data: Vec<PartitionProduceData>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceData {
    pub index: i32,
    /// The record batches, a zero-copy slice of the frame; `None` if the client sent null.
    pub records: Option<Bytes>,
}

impl ProduceRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_DECODABLE_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let transactional_id = if version >= MIN_STORED_VERSION {
            r.nullable_string(flex, "transactional_id")?
        } else {
            None
        };
        let acks = r.i16("acks")?;
        let timeout_ms = r.i32("timeout_ms")?;
        let topic_data = r.array(flex, min_topic_bytes(flex), "topic_data", |r| {
            let name = r.string(flex, "name")?;
            let partition_data =
                r.array(flex, min_partition_bytes(flex), "partition_data", |r| {
                    let index = r.i32("index")?;
                    let records = r.nullable_bytes(flex, "records")?;
                    r.tags_if(flex)?;
                    Ok(PartitionProduceData { index, records })
                })?;
            r.tags_if(flex)?;
            Ok(TopicProduceData {
                name,
                partition_data,
            })
        })?;
        r.tags_if(flex)?;
        Ok(ProduceRequest {
            transactional_id,
            acks,
            timeout_ms,
            topic_data,
        })
    }

    /// Client side; records are appended by reference (no copy).
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= MIN_STORED_VERSION {
            w.nullable_string(self.transactional_id.as_deref(), flex);
        }
        w.i16(self.acks);
        w.i32(self.timeout_ms);
        w.array(&self.topic_data, flex, |w, t| {
            w.string(&t.name, flex);
            w.array(&t.partition_data, flex, |w, p| {
                w.i32(p.index);
                match &p.records {
                    Some(records) => w.bytes_shared(std::slice::from_ref(records), flex),
                    None => w.nullable_bytes(None, flex),
                }
                w.tags_if(flex);
            });
            w.tags_if(flex);
        });
        w.tags_if(flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResponse {
    pub responses: Vec<TopicProduceResponse>,
    /// v1+.
    pub throttle_time_ms: i32,
    /// v10+ (tag 0, KIP-951): the endpoints of the nodes named by `current_leader`.
    pub node_endpoints: Vec<NodeEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicProduceResponse {
    pub name: String,
    pub partition_responses: Vec<PartitionProduceResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceResponse {
    pub index: i32,
    pub error_code: i16,
    pub base_offset: i64,
    /// v2+; -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    /// v5+; -1 when absent.
    pub log_start_offset: i64,
    /// v8+: which batches of the request were invalid.
    pub record_errors: Vec<BatchIndexAndErrorMessage>,
    /// v8+.
    pub error_message: Option<String>,
    /// v10+ (tag 0, KIP-951): the partition's leader, with NOT_LEADER_OR_FOLLOWER.
    pub current_leader: Option<LeaderIdAndEpoch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchIndexAndErrorMessage {
    pub batch_index: i32,
    pub batch_index_error_message: Option<String>,
}

impl PartitionProduceResponse {
    /// A partition answer with the schema defaults for every optional field.
    pub fn new(index: i32, error_code: i16, base_offset: i64) -> Self {
        PartitionProduceResponse {
            index,
            error_code,
            base_offset,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
            error_message: None,
            current_leader: None,
        }
    }

    fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.i32(self.index);
        w.i16(self.error_code);
        w.i64(self.base_offset);
        if version >= 2 {
            w.i64(self.log_append_time_ms);
        }
        if version >= 5 {
            w.i64(self.log_start_offset);
        }
        if version >= 8 {
            w.array(&self.record_errors, flex, |w, e| {
                w.i32(e.batch_index);
                w.nullable_string(e.batch_index_error_message.as_deref(), flex);
                w.tags_if(flex);
            });
            w.nullable_string(self.error_message.as_deref(), flex);
        }
        if flex {
            let leader = self.current_leader.as_ref();
            let leader = leader.filter(|_| version >= LEADER_DISCOVERY_FROM);
            write_one_tag(w, 0, leader, version);
        }
    }

    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flex = flexible(version);
        let mut p = PartitionProduceResponse::new(
            r.i32("index")?,
            r.i16("error_code")?,
            r.i64("base_offset")?,
        );
        if version >= 2 {
            p.log_append_time_ms = r.i64("log_append_time_ms")?;
        }
        if version >= 5 {
            p.log_start_offset = r.i64("log_start_offset")?;
        }
        if version >= 8 {
            p.record_errors = r.array(flex, 5, "record_errors", |r| {
                let batch_index = r.i32("batch_index")?;
                let batch_index_error_message =
                    r.nullable_string(flex, "batch_index_error_message")?;
                r.tags_if(flex)?;
                Ok(BatchIndexAndErrorMessage {
                    batch_index,
                    batch_index_error_message,
                })
            })?;
            p.error_message = r.nullable_string(flex, "error_message")?;
        }
        if flex {
            p.current_leader = read_one_tag(r, 0, version, "current_leader")?
                .filter(|_| version >= LEADER_DISCOVERY_FROM);
        }
        Ok(p)
    }
}

impl ProduceResponse {
    /// Encodes any version 0–12 (the layout of v0–2 is known even though their requests
    /// are refused).
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        w.array(&self.responses, flex, |w, t| {
            w.string(&t.name, flex);
            w.array(&t.partition_responses, flex, |w, p| p.encode(w, version));
            w.tags_if(flex);
        });
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        if flex {
            let nodes = Some(&self.node_endpoints).filter(|n| !n.is_empty());
            let nodes = nodes.filter(|_| version >= LEADER_DISCOVERY_FROM);
            write_one_tag(w, 0, nodes, version);
        }
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_DECODABLE_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let responses = r.array(flex, min_topic_bytes(flex), "responses", |r| {
            let name = r.string(flex, "name")?;
            let partition_responses = r.array(flex, 14, "partition_responses", |r| {
                PartitionProduceResponse::decode(r, version)
            })?;
            r.tags_if(flex)?;
            Ok(TopicProduceResponse {
                name,
                partition_responses,
            })
        })?;
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let mut node_endpoints = Vec::new();
        if flex {
            let nodes = read_one_tag(r, 0, version, "node_endpoints")?;
            node_endpoints = nodes
                .filter(|_| version >= LEADER_DISCOVERY_FROM)
                .unwrap_or_default();
        }
        Ok(ProduceResponse {
            responses,
            throttle_time_ms,
            node_endpoints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use crate::protocol::wire::DecodeError;
    use kafka_protocol::messages as kp;

    fn sample_request() -> ProduceRequest {
        ProduceRequest {
            transactional_id: Some("txn".into()),
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![
                TopicProduceData {
                    name: "orders".into(),
                    partition_data: vec![
                        PartitionProduceData {
                            index: 0,
                            records: Some(Bytes::from_static(b"batch-bytes")),
                        },
                        PartitionProduceData {
                            index: 3,
                            records: None,
                        },
                    ],
                },
                TopicProduceData {
                    name: "empty".into(),
                    partition_data: vec![],
                },
            ],
        }
    }

    fn sample_response() -> ProduceResponse {
        let mut p = PartitionProduceResponse::new(0, 0, 1234);
        p.log_append_time_ms = 99;
        p.log_start_offset = 7;
        p.record_errors = vec![BatchIndexAndErrorMessage {
            batch_index: 2,
            batch_index_error_message: Some("bad".into()),
        }];
        p.error_message = Some("partly".into());
        let mut moved = PartitionProduceResponse::new(1, 6, -1);
        moved.current_leader = Some(LeaderIdAndEpoch {
            leader_id: 3,
            leader_epoch: 17,
        });
        ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "orders".into(),
                partition_responses: vec![p, moved],
            }],
            throttle_time_ms: 5,
            node_endpoints: vec![NodeEndpoint {
                node_id: 3,
                host: "10.0.0.3".into(),
                port: 9092,
                rack: Some("r1".into()),
            }],
        }
    }

    /// What a version can carry of [`sample_response`]: no KIP-951 tags before v10.
    fn sample_response_at(v: i16) -> ProduceResponse {
        let mut r = sample_response();
        if v < LEADER_DISCOVERY_FROM {
            r.node_endpoints.clear();
            r.responses[0].partition_responses[1].current_leader = None;
        }
        r
    }

    #[test]
    fn v3_request_known_bytes() {
        let wire: &'static [u8] = &[
            0xff, 0xff, // transactional_id: null
            0x00, 0x01, // acks 1
            0x00, 0x00, 0x03, 0xe8, // timeout_ms 1000
            0x00, 0x00, 0x00, 0x01, // 1 topic
            0x00, 0x01, b't', // name "t"
            0x00, 0x00, 0x00, 0x01, // 1 partition
            0x00, 0x00, 0x00, 0x02, // index 2
            0x00, 0x00, 0x00, 0x03, b'a', b'b', b'c', // records
        ];
        let req = decode_all(Bytes::from_static(wire), 3, ProduceRequest::decode).unwrap();
        let expected = ProduceRequest {
            transactional_id: None,
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 2,
                    records: Some(Bytes::from_static(b"abc")),
                }],
            }],
        };
        assert_eq!(req, expected);
        assert_eq!(&encode(&expected, 3, ProduceRequest::encode)[..], wire);
    }

    #[test]
    fn records_are_a_zero_copy_slice_of_the_frame() {
        let frame = encode(&sample_request(), 9, ProduceRequest::encode);
        let req = decode_all(frame.clone(), 9, ProduceRequest::decode).unwrap();
        let records = req.topic_data[0].partition_data[0].records.clone().unwrap();
        let start = frame.as_ptr() as usize;
        let at = records.as_ptr() as usize;
        assert!(at >= start && at + records.len() <= start + frame.len());
    }

    #[test]
    fn encode_appends_records_by_reference() {
        let mut w = Writer::new();
        sample_request().encode(&mut w, 3);
        let parts = w.finish();
        assert!(parts.iter().any(|p| &p[..] == b"batch-bytes"));
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_STORED_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                ProduceRequest::encode,
                ProduceRequest::decode,
            );
            assert_eq!(got, sample_request(), "v{v}");
            truncations_fail(&b, v, ProduceRequest::decode);
            oracle_agrees::<kp::ProduceRequest>(&b, v);

            let (got, b) = round_trip(
                &sample_response(),
                v,
                ProduceResponse::encode,
                ProduceResponse::decode,
            );
            let p = &got.responses[0].partition_responses[0];
            assert_eq!(p.base_offset, 1234);
            assert_eq!(p.log_start_offset, if v >= 5 { 7 } else { -1 });
            assert_eq!(p.error_message.is_some(), v >= 8);
            assert_eq!(got.throttle_time_ms, 5);
            if v >= 8 {
                assert_eq!(got, sample_response_at(v));
            }
            truncations_fail(&b, v, ProduceResponse::decode);
            oracle_agrees::<kp::ProduceResponse>(&b, v);
        }
    }

    /// KIP-951: from v10 the CurrentLeader and NodeEndpoints tags are what kafka-protocol
    /// reads (it re-encodes the same bytes in `round_trips_every_version`); at v9 they are not
    /// sent; an unset CurrentLeader or empty NodeEndpoints is not sent at all.
    #[test]
    fn leader_discovery_tags_from_v10() {
        use kafka_protocol::protocol::Decodable;
        for v in 9..=MAX_VERSION {
            let b = encode(&sample_response(), v, ProduceResponse::encode);
            let theirs = kp::ProduceResponse::decode(&mut b.clone(), v).expect("oracle decodes");
            let moved = &theirs.responses[0].partition_responses[1];
            let at_v10 = v >= LEADER_DISCOVERY_FROM;
            let (leader, epoch) = if at_v10 { (3, 17) } else { (-1, -1) };
            assert_eq!(moved.current_leader.leader_id.0, leader, "v{v}");
            assert_eq!(moved.current_leader.leader_epoch, epoch, "v{v}");
            let none = &theirs.responses[0].partition_responses[0].current_leader;
            assert_eq!(none.leader_id.0, -1, "no hint without one");
            let nodes: Vec<_> = theirs
                .node_endpoints
                .iter()
                .map(|n| {
                    (
                        n.node_id.0,
                        n.host.to_string(),
                        n.port,
                        n.rack.as_deref().map(str::to_owned),
                    )
                })
                .collect();
            let want = vec![(3, "10.0.0.3".to_string(), 9092, Some("r1".to_string()))];
            assert_eq!(nodes, if at_v10 { want } else { vec![] }, "v{v}");
            let bare = encode(&sample_response_at(9), v, ProduceResponse::encode);
            let plain = kp::ProduceResponse::decode(&mut bare.clone(), v).expect("decodes");
            assert!(plain.node_endpoints.is_empty());
            assert!(plain.unknown_tagged_fields.is_empty());
            if at_v10 {
                assert!(bare.len() < b.len(), "nothing sent for unset tags");
            }
        }
    }

    #[test]
    fn old_response_layouts_encode() {
        let b0 = encode(&sample_response(), 0, ProduceResponse::encode);
        let b2 = encode(&sample_response(), 2, ProduceResponse::encode);
        // v1 adds throttle_time_ms (4), v2 adds log_append_time_ms per partition (2 × 8).
        assert_eq!(b2.len(), b0.len() + 4 + 16);
    }

    #[test]
    fn old_versions_decode_without_transactional_id() {
        for v in 0..MIN_STORED_VERSION {
            let req = ProduceRequest {
                transactional_id: None,
                ..sample_request()
            };
            let b = encode(&req, v, ProduceRequest::encode);
            let got = ProduceRequest::decode(&mut Reader::new(b), v).unwrap();
            assert_eq!(got, req, "v{v}");
        }
    }

    #[test]
    fn unserved_versions_are_refused() {
        for v in [13, -1] {
            let got = ProduceRequest::decode(&mut Reader::new(Bytes::from_static(&[0; 32])), v);
            assert!(matches!(got, Err(DecodeError::Unsupported { .. })), "v{v}");
        }
    }

    #[test]
    fn fourteen_bytes_claiming_2_pow_31_topics_is_an_error() {
        let wire: &'static [u8] = &[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0];
        assert_eq!(wire.len(), 14);
        let got = ProduceRequest::decode(&mut Reader::new(Bytes::from_static(wire)), 3);
        assert!(
            matches!(
                got,
                Err(DecodeError::BadLength {
                    field: "topic_data",
                    ..
                })
            ),
            "{got:?}"
        );
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds = [
            encode(&sample_request(), 3, ProduceRequest::encode),
            encode(&sample_request(), 9, ProduceRequest::encode),
            encode(&sample_response(), 9, ProduceResponse::encode),
        ];
        random_bytes_never_panic(&seeds, 3..=12, ProduceRequest::decode, 3000);
        random_bytes_never_panic(&seeds, 3..=12, ProduceResponse::decode, 3000);
    }
}
