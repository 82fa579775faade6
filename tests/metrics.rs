//! `/metrics` and `/health` against the real broker: the record counters move by exactly the
//! number of records produced and consumed, and `promtool check metrics` accepts the text
//! (promtool comes from Debian's `prometheus` package, which `.ci/run` installs; the test
//! fails if it is missing unless RINGMQ_SKIP_EXTERNAL=1).

mod common;

use common::{free_port, http_get, kafka, Broker};
use std::io::Write;

/// Sum of a metric over all label sets whose labels contain `filter`.
fn sum(text: &str, name: &str, filter: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn record_counters_move_by_exactly_n_and_promtool_accepts() {
    const N: u64 = 5_000;
    let port = free_port();
    let port_arg = format!("127.0.0.1:{port}");
    let broker = Broker::start("metrics", 2, &["--metrics-listen", &port_arg]);
    assert_eq!(
        http_get(port, "/health").0,
        200,
        "ready broker answers /health with 200"
    );
    let topic = "metered";
    kafka::create_topic(&broker.addr(), topic, 4, &[]);
    let before = http_get(port, "/metrics").1;
    let filter = format!("topic=\"{topic}\"");
    assert_eq!(sum(&before, "ringmq_topic_records_in_total", &filter), 0);

    kafka::produce_all(&broker.addr(), topic, 4, 0..N, "none", 100);
    let after = http_get(port, "/metrics").1;
    assert_eq!(
        sum(&after, "ringmq_topic_records_in_total", &filter),
        N,
        "records in"
    );
    let got = kafka::consume_all(&broker.addr(), topic, 4, N as usize, 100);
    assert_eq!(got.len() as u64, N);
    let read = http_get(port, "/metrics").1;
    assert!(
        sum(&read, "ringmq_topic_records_out_total", &filter) >= N,
        "records out"
    );
    assert!(
        sum(&read, "ringmq_requests_total", "api_key=\"0\"") > 0,
        "produce requests"
    );
    assert_eq!(http_get(port, "/nope").0, 404);

    // Consumer-group lag: a group that committed offset 10 on partition 0 lags by end - 10.
    let mut cfg = kafka::base_config(&broker.addr());
    cfg.set("group.id", "lagger")
        .set("enable.auto.commit", "false");
    let c: rdkafka::consumer::BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset(10))
        .expect("tpl");
    rdkafka::consumer::Consumer::commit(&c, &tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    let (_, end0) = kafka::watermarks(&c, topic, 0);
    let text = http_get(port, "/metrics").1;
    let want = format!(
        "ringmq_consumer_group_lag{{group=\"lagger\",topic=\"{topic}\",partition=\"0\"}} {}",
        end0 - 10
    );
    assert!(text.contains(&want), "missing `{want}` in:\n{text}");
    let read = text;

    if std::env::var("RINGMQ_SKIP_EXTERNAL").as_deref() == Ok("1") {
        return;
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_after_write(&read);
    let out = child
        .take()
        .expect("promtool (Debian package prometheus) must be installed");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

trait OutputAfterWrite {
    fn output_after_write(&mut self, input: &str) -> Option<std::process::Output>;
}

impl OutputAfterWrite for std::process::Command {
    fn output_after_write(&mut self, input: &str) -> Option<std::process::Output> {
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(input.as_bytes()).ok()?;
        child.wait_with_output().ok()
    }
}
