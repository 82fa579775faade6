//! The hand-made frames and response readers of tests/common/wire.rs, checked against an
//! independent implementation: the kafka-protocol crate (generated from the Kafka 4.1 JSON
//! schemas). Needs no broker. The huge-count Produce frames are not given to kafka-protocol:
//! it would try to allocate for 2^31-1 topics and abort (dependencies.md); their bytes are
//! checked by hand in bad_input.rs instead.
//!
//! Invariants: kafka-protocol decodes each request frame we send to exactly the fields we
//! meant, consuming every byte; our RecordBatch passes its CRC-32C check and yields the record;
//! our response readers read responses that kafka-protocol encodes, at the versions we use.

mod common;

use bytes::{Bytes, BytesMut};
use common::wire;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

/// Strips the size prefix (checking it) and decodes the header.
fn header_of(frame: &[u8]) -> (RequestHeader, Bytes) {
    let size = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
    assert_eq!(size as usize, frame.len() - 4, "size prefix");
    let mut buf = Bytes::copy_from_slice(&frame[4..]);
    let header = decode_request_header_from_buffer(&mut buf).expect("header decodes");
    (header, buf)
}

#[test]
fn produce_v3_frame_decodes() {
    let batch = wire::record_batch(b"raw-key", b"raw-value", 1_700_000_000_000);
    let frame = wire::produce_v3(21, "crc-check", 0, &batch);
    let (header, mut body) = header_of(&frame);
    assert_eq!((header.request_api_key, header.request_api_version), (0, 3));
    assert_eq!(header.correlation_id, 21);
    assert_eq!(header.client_id.as_deref(), Some("raw-test"));
    let req = ProduceRequest::decode(&mut body, 3).expect("ProduceRequest v3 decodes");
    assert!(body.is_empty(), "{} bytes left over", body.len());
    assert_eq!(
        (req.transactional_id, req.acks, req.timeout_ms),
        (None, -1, 30_000)
    );
    assert_eq!(req.topic_data.len(), 1);
    assert_eq!(&*req.topic_data[0].name.0, "crc-check");
    let part = &req.topic_data[0].partition_data;
    assert_eq!(part.len(), 1);
    assert_eq!(part[0].index, 0);
    assert_eq!(part[0].records.as_deref(), Some(&batch[..]));
}

#[test]
fn record_batch_decodes_with_valid_crc() {
    let batch = wire::record_batch(b"raw-key", b"raw-value", 1_700_000_000_000);
    let set = RecordBatchDecoder::decode(&mut Bytes::from(batch.clone())).expect("batch decodes");
    assert_eq!(set.records.len(), 1);
    let r = &set.records[0];
    assert_eq!(r.key.as_deref(), Some(&b"raw-key"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"raw-value"[..]));
    assert_eq!((r.offset, r.timestamp), (0, 1_700_000_000_000));
    assert_eq!(r.timestamp_type, TimestampType::Creation);
    assert!(r.headers.is_empty());

    let mut bad = batch;
    bad[wire::BATCH_CRC_OFFSET + 3] ^= 0x01;
    assert!(
        RecordBatchDecoder::decode(&mut Bytes::from(bad)).is_err(),
        "wrong CRC accepted"
    );
}

#[test]
fn metadata_and_api_versions_frames_decode() {
    let (header, mut body) = header_of(&wire::metadata_v1_all_topics(5));
    assert_eq!(
        (
            header.request_api_key,
            header.request_api_version,
            header.correlation_id
        ),
        (3, 1, 5)
    );
    let req = MetadataRequest::decode(&mut body, 1).expect("MetadataRequest v1");
    assert!(body.is_empty());
    assert_eq!(req.topics, None, "null topics = all topics");

    let (header, mut body) = header_of(&wire::api_versions_request(3, 6));
    assert_eq!(
        (
            header.request_api_key,
            header.request_api_version,
            header.correlation_id
        ),
        (18, 3, 6)
    );
    let req = ApiVersionsRequest::decode(&mut body, 3).expect("ApiVersionsRequest v3");
    assert!(body.is_empty());
    assert_eq!(&*req.client_software_name, "raw-test");
    assert_eq!(&*req.client_software_version, "0.1");
}

#[test]
fn unknown_version_frame_has_a_readable_v2_header() {
    // The KIP-511 probe at version 127 still starts with a header any broker can read.
    let frame = wire::api_versions_request(127, 42);
    let mut r = wire::Reader::new(&frame[4..]);
    assert_eq!((r.i16(), r.i16(), r.i32()), (18, 127, 42));
    assert_eq!(r.string(), "raw-test");
}

fn encode_response<M: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &M,
    version: i16,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .expect("header encodes");
    body.encode(&mut buf, version).expect("body encodes");
    buf.to_vec()
}

#[test]
fn produce_v3_response_reader_matches_oracle() {
    let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_static_str("crc-check")))
        .with_partition_responses(vec![PartitionProduceResponse::default()
            .with_index(0)
            .with_error_code(2)
            .with_base_offset(-1)])]);
    let frame = encode_response(21, 0, &resp, 3);
    let (corr, parts) = wire::parse_produce_v3_response(&frame);
    assert_eq!(corr, 21);
    assert_eq!(
        parts,
        [wire::ProducePartition {
            topic: "crc-check".into(),
            partition: 0,
            error_code: 2,
            base_offset: -1
        }]
    );
}

#[test]
fn api_versions_v0_reader_matches_oracle() {
    let keys = vec![
        ApiVersion::default()
            .with_api_key(0)
            .with_min_version(0)
            .with_max_version(12),
        ApiVersion::default()
            .with_api_key(18)
            .with_min_version(0)
            .with_max_version(4),
    ];
    let resp = ApiVersionsResponse::default()
        .with_error_code(35)
        .with_api_keys(keys);
    let frame = encode_response(42, 0, &resp, 0);
    let (corr, error_code, keys) = wire::parse_api_versions_v0_response(&frame);
    assert_eq!((corr, error_code), (42, 35));
    assert_eq!(keys, [(0, 0, 12), (18, 0, 4)]);
}

#[test]
fn api_versions_v3_reader_matches_oracle() {
    use kafka_protocol::messages::api_versions_response::SupportedFeatureKey;
    let keys = vec![
        ApiVersion::default()
            .with_api_key(0)
            .with_min_version(0)
            .with_max_version(12),
        ApiVersion::default()
            .with_api_key(18)
            .with_min_version(0)
            .with_max_version(4),
    ];
    let features = vec![SupportedFeatureKey::default()
        .with_name(StrBytes::from_static_str("x"))
        .with_min_version(0)
        .with_max_version(1)];
    let resp = ApiVersionsResponse::default()
        .with_api_keys(keys)
        .with_supported_features(features);
    // Header v0 even though the body is flexible (KIP-511).
    let frame = encode_response(43, 0, &resp, 3);
    let (corr, error_code, keys) = wire::parse_api_versions_v3_response(&frame);
    assert_eq!((corr, error_code), (43, 0));
    assert_eq!(keys, [(0, 0, 12), (18, 0, 4)]);

    // With a (wrong) v1 header the reader must notice the extra byte.
    let bad = encode_response(43, 1, &resp, 3);
    assert!(std::panic::catch_unwind(|| wire::parse_api_versions_v3_response(&bad)).is_err());
}
