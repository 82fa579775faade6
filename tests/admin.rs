//! Admin APIs and topic flags of the real binary, through librdkafka's admin client (issue 2:
//! CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, Metadata auto-creation;
//! issue 3: DeleteRecords, deleting a topic removes its files).
//!
//! Invariants:
//! - CreateTopics creates with the asked partition count and per-topic configs; a second create
//!   is TOPIC_ALREADY_EXISTS; replication factor 3 is refused (INVALID_REPLICATION_FACTOR).
//! - CreatePartitions grows a topic (and the new partition takes records); shrinking is
//!   INVALID_PARTITIONS.
//! - DescribeConfigs lists the topic's configs with values: the one set at creation is not a
//!   default, standard ones (retention.ms, segment.bytes, max.message.bytes, cleanup.policy)
//!   are present with values.
//! - DeleteTopics removes the topic from Metadata and its files from the data dir.
//! - With --auto-create-topics true --default-partitions 3, producing to an unknown topic
//!   creates it with 3 partitions; with false, the topic stays unknown and delivery fails.
//! - DeleteRecords moves the log start offset; consumers from the beginning start there; the
//!   log start offset survives a restart.

mod common;

use std::time::{Duration, Instant};

use common::kafka::{self, CLIENT_TIMEOUT};
use common::Broker;
use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT))
}

/// Partition count from Metadata, or the topic's error code.
fn partition_count(addr: &str, topic: &str) -> Result<usize, RDKafkaErrorCode> {
    let md = kafka::consumer(addr)
        .fetch_metadata(Some(topic), CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("Metadata for {topic}: {e}"));
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .unwrap_or_else(|| panic!("{topic} missing from the Metadata answer"));
    if let Some(err) = t.error() {
        return Err(err.into());
    }
    for p in t.partitions() {
        assert_eq!(p.error(), None, "{topic}/{}: partition error", p.id());
        assert!(p.leader() >= 0, "{topic}/{}: no leader", p.id());
    }
    Ok(t.partitions().len())
}

#[test]
fn create_grow_describe_delete() {
    let mut broker = Broker::start("admin", 2, &["--auto-create-topics", "false"]);
    let addr = broker.addr();
    let admin = kafka::admin(&addr);
    let topic = "admin-topic";
    kafka::create_topic(&addr, topic, 4, &[("retention.ms", "86400000")]);
    assert_eq!(partition_count(&addr, topic), Ok(4));

    let again = NewTopic::new(topic, 4, TopicReplication::Fixed(1));
    let r =
        futures_executor::block_on(admin.create_topics([&again], &opts())).expect("CreateTopics");
    assert_eq!(
        r,
        [Err((
            topic.to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    let replicated = NewTopic::new("admin-replicated", 1, TopicReplication::Fixed(3));
    let r = futures_executor::block_on(admin.create_topics([&replicated], &opts()))
        .expect("CreateTopics");
    assert_eq!(
        r,
        [Err((
            "admin-replicated".to_string(),
            RDKafkaErrorCode::InvalidReplicationFactor
        ))]
    );

    let grow = NewPartitions::new(topic, 6);
    let r = futures_executor::block_on(admin.create_partitions([&grow], &opts()))
        .expect("CreatePartitions");
    assert_eq!(r, [Ok(topic.to_string())]);
    assert_eq!(partition_count(&addr, topic), Ok(6));
    let acked = kafka::produce_all(&addr, topic, 6, 0..600, "none", 16);
    assert!(
        acked.values().any(|&(p, _)| p == 5),
        "the new partition took no records"
    );

    let shrink = NewPartitions::new(topic, 3);
    let r = futures_executor::block_on(admin.create_partitions([&shrink], &opts()))
        .expect("CreatePartitions");
    assert_eq!(
        r,
        [Err((
            topic.to_string(),
            RDKafkaErrorCode::InvalidPartitions
        ))]
    );

    check_describe_configs(&admin, topic);

    let r =
        futures_executor::block_on(admin.delete_topics(&[topic], &opts())).expect("DeleteTopics");
    assert_eq!(r, [Ok(topic.to_string())]);
    assert_eq!(
        partition_count(&addr, topic),
        Err(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = common::walk_files(&broker.data_dir)
            .into_iter()
            .filter(|p| {
                p.strip_prefix(&broker.data_dir)
                    .is_ok_and(|rel| rel.to_string_lossy().contains(topic))
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "files of a deleted topic remain: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.stop();
}

fn check_describe_configs(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    topic: &str,
) {
    let spec = ResourceSpecifier::Topic(topic);
    let r = futures_executor::block_on(admin.describe_configs([&spec], &opts()))
        .expect("DescribeConfigs");
    assert_eq!(r.len(), 1);
    let resource = r[0]
        .as_ref()
        .unwrap_or_else(|e| panic!("DescribeConfigs {topic}: {e:?}"));
    let retention = resource
        .get("retention.ms")
        .expect("retention.ms described");
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert!(
        !retention.is_default,
        "retention.ms was set at creation: {retention:?}"
    );
    for name in ["segment.bytes", "max.message.bytes", "cleanup.policy"] {
        let e = resource
            .get(name)
            .unwrap_or_else(|| panic!("{name} not described"));
        assert!(e.value.is_some(), "{name} has no value");
        assert!(e.is_default, "{name} was never set: {e:?}");
    }
}

#[test]
fn auto_create_on_and_off() {
    let mut on = Broker::start(
        "auto-on",
        2,
        &["--auto-create-topics", "true", "--default-partitions", "3"],
    );
    let p = kafka::producer(&on.addr(), "none", &[]);
    kafka::send_record(&p, "auto-made", 1, 0, 16);
    p.flush(CLIENT_TIMEOUT)
        .expect("flush to an auto-created topic");
    {
        let log = p.context().log.lock().expect("ack log");
        assert!(log.failed.is_empty(), "{:?}", log.failed);
        assert_eq!(log.acked.len(), 1);
    }
    assert_eq!(partition_count(&on.addr(), "auto-made"), Ok(3));
    on.stop();

    let mut off = Broker::start("auto-off", 2, &["--auto-create-topics", "false"]);
    let p = kafka::producer(&off.addr(), "none", &[("message.timeout.ms", "5000")]);
    kafka::send_record(&p, "never-made", 1, 0, 16);
    let _ = p.flush(Duration::from_secs(20));
    {
        let log = p.context().log.lock().expect("ack log");
        assert!(
            log.acked.is_empty(),
            "a record was acknowledged for an unknown topic"
        );
        assert_eq!(
            log.failed.len(),
            1,
            "delivery must fail for an unknown topic"
        );
    }
    assert_eq!(
        partition_count(&off.addr(), "never-made"),
        Err(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    off.stop();
}

#[test]
fn delete_records_moves_log_start() {
    let mut broker = Broker::start("delete-records", 1, &[]);
    let addr = broker.addr();
    let topic = "trim-me";
    kafka::create_topic(&addr, topic, 1, &[]);
    let small_batches = [("linger.ms", "0"), ("batch.num.messages", "20")];
    let acked = kafka::produce_all_with(&addr, topic, 1, 0..1_000, "none", 16, &small_batches);

    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(400))
        .expect("tpl");
    let admin = kafka::admin(&addr);
    let r = futures_executor::block_on(admin.delete_records(&tpl, &opts())).expect("DeleteRecords");
    let e = r.find_partition(topic, 0).expect("partition in answer");
    e.error()
        .unwrap_or_else(|err| panic!("DeleteRecords: {err}"));
    assert_eq!(
        e.offset(),
        Offset::Offset(400),
        "low watermark after DeleteRecords"
    );

    for round in 0..2 {
        let c = kafka::consumer(&addr);
        assert_eq!(
            kafka::watermarks(&c, topic, 0),
            (400, 1_000),
            "round {round}"
        );
        let got = kafka::consume_all(&addr, topic, 1, 600, 16);
        let kept = acked
            .iter()
            .filter(|(_, (_, o))| *o >= 400)
            .map(|(&i, &a)| (i, a))
            .collect();
        kafka::verify_exactly_once(topic, &kept, &got);
        broker.stop();
        broker.restart();
    }
    broker.stop();
}

/// One config of a DescribeConfigs v0 answer: (name, value, is_default).
fn describe_configs_v0(addr: &str, topic: &str, keys: &[&str]) -> Vec<(String, String, bool)> {
    let mut body = common::wire::Writer::default();
    body.i32(1).i8(2).string(topic).i32(keys.len() as i32);
    for k in keys {
        body.string(k);
    }
    let mut conn = common::RawConn::connect(addr);
    conn.send(&common::wire::request_frame(
        32,
        0,
        7,
        Some("v0"),
        false,
        &body.buf,
    ));
    let common::ReadOutcome::Frame(frame) = conn.read_frame(CLIENT_TIMEOUT) else {
        panic!("no DescribeConfigs v0 answer");
    };
    let mut r = common::wire::Reader::new(&frame);
    assert_eq!(r.i32(), 7, "correlation id");
    assert_eq!(r.i32(), 0, "throttle_time_ms");
    assert_eq!(r.i32(), 1, "one result");
    assert_eq!(r.i16(), 0, "result error code");
    assert_eq!(r.i16(), -1, "null error message");
    assert_eq!(r.take(1), [2], "resource type");
    assert_eq!(r.string(), topic);
    let n = r.i32();
    let mut configs = Vec::new();
    for _ in 0..n {
        let name = r.string();
        let value = r.string();
        let flags = r.take(3); // read_only, is_default, is_sensitive
        assert_eq!(
            (flags[0], flags[2]),
            (0, 0),
            "{name}: read_only/is_sensitive"
        );
        configs.push((name, value, flags[1] == 1));
    }
    assert_eq!(r.remaining(), 0, "trailing bytes after the v0 answer");
    configs
}

#[test]
fn describe_configs_v0_answers_is_default() {
    let broker = Broker::start("admin-dc-v0", 1, &["--auto-create-topics", "false"]);
    let addr = broker.addr();
    let admin = kafka::admin(&addr);
    let topic = "dc-v0";
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("retention.ms", "1234");
    let created =
        futures_executor::block_on(admin.create_topics([&new], &opts())).expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let got = describe_configs_v0(&addr, topic, &["retention.ms", "segment.bytes"]);
    assert_eq!(got.len(), 2, "{got:?}");
    let find = |k: &str| {
        got.iter()
            .find(|c| c.0 == k)
            .unwrap_or_else(|| panic!("{k}: {got:?}"))
    };
    assert_eq!(
        find("retention.ms"),
        &("retention.ms".into(), "1234".into(), false)
    );
    let segment = find("segment.bytes");
    assert!(
        segment.2,
        "segment.bytes was never set: is_default, got {got:?}"
    );
}
