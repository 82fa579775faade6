//! Hardening against hostile clients (issue 13), raw frames against the real binary.
//!
//! Requests are encoded, and responses decoded, by the kafka-protocol crate (generated from
//! Kafka's schemas, independent of ringmq's codec) and sent over a plain TCP connection.
//!
//! - `internal_topics_are_reserved`: CreateTopics, DeleteTopics, CreatePartitions,
//!   AlterConfigs, IncrementalAlterConfigs, Produce and DeleteRecords naming
//!   `__consumer_offsets` (or another internal name) are refused with Kafka's error
//!   (INVALID_TOPIC_EXCEPTION 17 / INVALID_REQUEST 42) and a message where the API has room
//!   for one; a Metadata request with auto-creation on does not create it; the group log's
//!   directories are untouched; the same requests on a normal topic succeed.
//! - `a_panicking_shard_crashes_the_broker`: a panic on a shard (the test hook
//!   `RINGMQ_FAILPOINT=panic-on-produce-topic:NAME`) ends the process with a non-zero status
//!   within seconds, and the restart serves every record acknowledged before it.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{kafka, wire, Broker, RawConn, ReadOutcome};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUEST: i16 = 42;

/// One request frame (size prefix included), encoded by kafka-protocol.
fn frame<R: Request>(version: i16, correlation_id: i32, req: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("hardening-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .expect("header encodes");
    req.encode(&mut body, version).expect("request encodes");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// One request and its response over `conn`, encoded and decoded by kafka-protocol.
fn call<R: Request>(conn: &mut RawConn, version: i16, correlation_id: i32, req: &R) -> R::Response {
    assert!(
        conn.send(&frame(version, correlation_id, req)),
        "send {}",
        R::KEY
    );
    let ReadOutcome::Frame(resp) = conn.read_frame(REPLY_TIMEOUT) else {
        panic!("no answer to api {} v{version}", R::KEY);
    };
    let mut buf = Bytes::from(resp);
    let rh = ResponseHeader::decode(&mut buf, R::Response::header_version(version))
        .expect("response header");
    assert_eq!(rh.correlation_id, correlation_id);
    let out = R::Response::decode(&mut buf, version).expect("response decodes");
    assert!(buf.is_empty(), "{} bytes after the response", buf.len());
    out
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn create(conn: &mut RawConn, name: &str) -> (i16, Option<String>) {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    let resp = call(conn, 5, 1, &req);
    let t = &resp.topics[0];
    (
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn delete(conn: &mut RawConn, name: &str) -> (i16, Option<String>) {
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topic_names(vec![topic(name)]);
    let resp = call(conn, 5, 2, &req);
    let t = &resp.responses[0];
    (
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn add_partitions(conn: &mut RawConn, name: &str) -> (i16, Option<String>) {
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic(name))
                .with_count(60)
                .with_assignments(None),
        ]);
    let resp = call(conn, 2, 3, &req);
    let t = &resp.results[0];
    (
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn alter_configs(conn: &mut RawConn, name: &str, value: &str) -> (i16, Option<String>) {
    let req = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_string(value.to_string())))]),
    ]);
    let resp = call(conn, 2, 4, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn incremental_alter(conn: &mut RawConn, name: &str, value: &str) -> (i16, Option<String>) {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.to_string()))),
            ]),
    ]);
    let resp = call(conn, 1, 5, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn produce_request(name: &str) -> ProduceRequest {
    let batch = wire::record_batch(b"k", b"v", 1_700_000_000_000);
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic(name))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch))),
            ])])
}

fn produce(conn: &mut RawConn, name: &str) -> (i16, Option<String>) {
    let resp = call(conn, 8, 6, &produce_request(name));
    let p = &resp.responses[0].partition_responses[0];
    (
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn delete_records(conn: &mut RawConn, name: &str) -> i16 {
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![
                delete_records_request::DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(-1),
            ])]);
    let resp = call(conn, 1, 7, &req);
    resp.topics[0].partitions[0].error_code
}

fn metadata_with_auto_create(conn: &mut RawConn, name: &str) -> i16 {
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(topic(name)))]));
    let resp = call(conn, 9, 8, &req);
    resp.topics[0].error_code
}

fn refused(what: &str, (code, msg): (i16, Option<String>), expected: i16, name: &str) {
    assert_eq!(
        code, expected,
        "{what} {name}: error code (message {msg:?})"
    );
    let msg = msg.unwrap_or_else(|| panic!("{what} {name}: no error message"));
    assert!(
        msg.contains(name),
        "{what}: message {msg:?} names the topic"
    );
}

#[test]
fn internal_topics_are_reserved() {
    let mut broker = Broker::start("hard-internal", 1, &[]);
    let mut conn = RawConn::connect(&broker.addr());
    let groups_dirs = |b: &Broker| {
        std::fs::read_dir(&b.data_dir)
            .expect("data dir")
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("__consumer_offsets-")
            })
            .count()
    };
    let before = groups_dirs(&broker);
    for name in ["__consumer_offsets", "__transaction_state"] {
        refused(
            "create",
            create(&mut conn, name),
            INVALID_TOPIC_EXCEPTION,
            name,
        );
        assert_ne!(
            metadata_with_auto_create(&mut conn, name),
            0,
            "{name} auto-created"
        );
        refused("delete", delete(&mut conn, name), INVALID_REQUEST, name);
        refused(
            "partitions",
            add_partitions(&mut conn, name),
            INVALID_REQUEST,
            name,
        );
        refused(
            "alter",
            alter_configs(&mut conn, name, "1000"),
            INVALID_REQUEST,
            name,
        );
        let inc = incremental_alter(&mut conn, name, "1000");
        refused("incremental alter", inc, INVALID_REQUEST, name);
        refused(
            "produce",
            produce(&mut conn, name),
            INVALID_TOPIC_EXCEPTION,
            name,
        );
        assert_eq!(delete_records(&mut conn, name), INVALID_TOPIC_EXCEPTION);
    }
    assert_eq!(
        groups_dirs(&broker),
        before,
        "group log directories untouched"
    );

    // The same requests on a normal topic work, so the refusals above are about the name.
    let name = "plain-topic";
    assert_eq!(create(&mut conn, name).0, 0);
    assert_eq!(produce(&mut conn, name).0, 0);
    assert_eq!(alter_configs(&mut conn, name, "1000").0, 0);
    assert_eq!(incremental_alter(&mut conn, name, "2000").0, 0);
    assert_eq!(add_partitions(&mut conn, name).0, 0);
    assert_eq!(delete_records(&mut conn, name), 0);
    assert_eq!(delete(&mut conn, name).0, 0);
    broker.assert_alive();
}

/// OffsetCommit v8 of `parts` (topic, partition, metadata) for `group`, as a simple consumer
/// (generation -1); the error code of every partition in request order.
fn commit(conn: &mut RawConn, group: &str, parts: &[(&str, i32, &str)]) -> Vec<i16> {
    let topics = parts
        .iter()
        .map(|(t, p, meta)| {
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic(t))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(*p)
                        .with_committed_offset(1)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(StrBytes::from_string(meta.to_string()))),
                ])
        })
        .collect();
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_retention_time_ms(-1)
        .with_topics(topics);
    let resp = call(conn, 8, 9, &req);
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// Values from the wire are bounded before they are stored (issue 13, item 2): a config
/// value longer than the metadata file's strings is refused and the broker restarts; offsets
/// for topics that do not exist are refused (UNKNOWN_TOPIC_OR_PARTITION 3); a group id over
/// 249 bytes gets INVALID_GROUP_ID (24); a commit whose records exceed the group log's
/// max.message.bytes (1 MiB: 300 partitions × 4,000 bytes of metadata) is answered
/// INVALID_COMMIT_OFFSET_SIZE (28), not NONE.
#[test]
fn values_from_the_wire_are_bounded() {
    let mut broker = Broker::start("hard-bounds", 1, &[]);
    let mut conn = RawConn::connect(&broker.addr());
    assert_eq!(create(&mut conn, "bounds").0, 0);
    let long = format!("{}86400000", "0".repeat(65_536));
    let (code, msg) = alter_configs(&mut conn, "bounds", &long);
    assert_eq!(code, 40, "INVALID_CONFIG for a 65,544-byte value ({msg:?})");
    assert_eq!(incremental_alter(&mut conn, "bounds", &long).0, 40);
    assert_eq!(alter_configs(&mut conn, "bounds", "86400000").0, 0);
    drop(conn);
    broker.stop();
    broker.restart();
    let mut conn = RawConn::connect(&broker.addr());

    let codes = commit(
        &mut conn,
        "g",
        &[
            ("bounds", 0, ""),
            ("no-such-topic", 0, ""),
            ("bounds", 7, ""),
        ],
    );
    assert_eq!(codes, [0, 3, 3], "offsets only for partitions that exist");
    let long_group = "g".repeat(250);
    assert_eq!(commit(&mut conn, &long_group, &[("bounds", 0, "")]), [24]);

    let meta = "m".repeat(4_000);
    let many: Vec<(&str, i32, &str)> = (0..300).map(|_| ("bounds", 0, meta.as_str())).collect();
    let codes = commit(&mut conn, "g", &many);
    assert!(
        codes.iter().all(|c| *c == 28),
        "a commit the group log cannot hold is not acknowledged: {:?}",
        &codes[..3]
    );
    assert_eq!(commit(&mut conn, "g", &[("bounds", 0, "small")]), [0]);
    broker.assert_alive();
}

/// A panic is a crash (issue 13, item 5): a shard that panics takes the process down at once
/// with a non-zero status (a supervisor restarts it), instead of leaving the other shards
/// serving; the restart on the same data dir serves every acknowledged record exactly once.
/// Before the panic hook the process stayed up, its main thread waiting to join the dead
/// shard's peers.
#[test]
fn a_panicking_shard_crashes_the_broker() {
    let failpoint = [("RINGMQ_FAILPOINT", "panic-on-produce-topic:boom")];
    let mut broker = Broker::start_with_env("hard-panic", 2, &[], &failpoint);
    let addr = broker.addr();
    kafka::create_topic(&addr, "kept", 4, &[]);
    kafka::create_topic(&addr, "boom", 1, &[]);
    let acked = kafka::produce_all(&addr, "kept", 4, 0..2_000, "none", 100);

    let mut conn = RawConn::connect(&addr);
    assert!(conn.send(&frame(8, 1, &produce_request("boom"))));
    let started = std::time::Instant::now();
    let status = broker
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("broker still running 15 s after the panic"));
    assert!(!status.success(), "a panic must exit non-zero: {status}");
    assert!(
        broker.log_lines().iter().any(|l| l.contains("failpoint")),
        "the panic message is logged"
    );
    eprintln!(
        "broker exited with {status} {:?} after the panic",
        started.elapsed()
    );
    assert!(
        conn.wait_closed(Duration::from_secs(5)),
        "connection closed"
    );

    broker.set_env(&[]);
    broker.restart();
    let got = kafka::consume_all(&addr, "kept", 4, acked.len(), 100);
    kafka::verify_exactly_once("kept", &acked, &got);
    broker.assert_alive();
}
