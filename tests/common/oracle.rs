//! Requests encoded, and responses decoded, by the kafka-protocol crate (an implementation
//! independent of ringmq's codec), one at a time on a fresh connection.

use super::{kafka, wire, RawConn, ReadOutcome};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::time::Duration;

/// One request through kafka-protocol's codec, on a fresh connection to `addr`; the response
/// must decode exactly.
pub fn call<R: Request>(addr: &str, version: i16, req: &R) -> R::Response {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("ringmq-test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, R::header_version(version))
        .expect("encode header");
    req.encode(&mut buf, version).expect("encode request");
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    let mut conn = RawConn::connect(addr);
    assert!(conn.send(&frame), "send to {addr}");
    let body = match conn.read_frame(Duration::from_secs(20)) {
        ReadOutcome::Frame(body) => body,
        other => panic!("api {} v{version} to {addr}: {other:?}", R::KEY),
    };
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .expect("response header");
    assert_eq!(header.correlation_id, 7, "correlation id");
    let resp = R::Response::decode(&mut body, version)
        .unwrap_or_else(|e| panic!("decode api {} v{version} from {addr}: {e}", R::KEY));
    assert!(body.is_empty(), "{} bytes after the response", body.len());
    resp
}

/// Produce one record to partition `p` of `topic` on `addr` at `version` (acks=all): (error
/// code, KIP-951 CurrentLeader (id, epoch), NodeEndpoints (id, host, port)).
pub fn produce_one(
    addr: &str,
    topic: &str,
    p: i32,
    version: i16,
) -> (i16, (i32, i32), Vec<(i32, String, i32)>) {
    let batch = wire::record_batch(b"k", b"kip-951", kafka::base_timestamp_ms());
    let part = PartitionProduceData::default()
        .with_index(p)
        .with_records(Some(Bytes::from(batch)));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![part]);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![topic]);
    let resp = call(addr, version, &req);
    let r = &resp.responses[0].partition_responses[0];
    let nodes = resp
        .node_endpoints
        .iter()
        .map(|n| (n.node_id.0, n.host.to_string(), n.port))
        .collect();
    let hint = (r.current_leader.leader_id.0, r.current_leader.leader_epoch);
    (r.error_code, hint, nodes)
}

/// Fetch v12 of partition `p` of `topic` from offset 0 on `addr`: (error code, KIP-951
/// CurrentLeader (id, epoch)).
pub fn fetch_from_start(addr: &str, topic: &str, p: i32) -> (i16, (i32, i32)) {
    let part = FetchPartition::default()
        .with_partition(p)
        .with_fetch_offset(0)
        .with_partition_max_bytes(1 << 20);
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partitions(vec![part]);
    let req = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![topic]);
    let resp = call(addr, 12, &req);
    let r = &resp.responses[0].partitions[0];
    (
        r.error_code,
        (r.current_leader.leader_id.0, r.current_leader.leader_epoch),
    )
}
