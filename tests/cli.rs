//! The operator CLI (`ringmq topic|group|produce|consume|cluster`) driven as a user drives it:
//! the real binary as a subprocess against a real broker (issue 6).
//!
//! Invariants:
//! - The README round trip: `topic create`, `produce` from stdin, `consume` prints the record.
//! - Every command answers a table for people and one parseable JSON document with `--json`.
//! - Topic commands change what Metadata/DescribeConfigs/ListOffsets report, as read back
//!   through the CLI itself (`describe`), and librdkafka-produced (compressed) records read back.
//! - `group reset-offsets` changes nothing without `--execute`; with it, `group describe` shows
//!   the new offsets; an active group (a librdkafka member) is refused.
//! - Errors (unknown topic or group, broker down, bad value) are one line on stderr starting
//!   `ringmq: ` and exit status 1; a bad flag is clap's usage error with status 2.

mod common;

use common::kafka;
use common::{free_port, Broker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `ringmq ARGS --bootstrap ADDR` (when `addr` is given) with `stdin` piped in.
fn ringmq(addr: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringmq"));
    cmd.args(args);
    if let Some(addr) = addr {
        cmd.args(["--bootstrap", addr]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringmq");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait ringmq")
}

/// Stdout of a command that must succeed.
fn ok(addr: &str, args: &[&str]) -> String {
    ok_in(addr, args, "")
}

fn ok_in(addr: &str, args: &[&str], stdin: &str) -> String {
    let out = ringmq(Some(addr), args, stdin);
    assert!(
        out.status.success(),
        "ringmq {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The one-line stderr of a command that must fail with status 1.
fn fails(addr: Option<&str>, args: &[&str]) -> String {
    let out = ringmq(addr, args, "");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "ringmq {args:?} should fail with 1; stdout {} stderr {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.starts_with("ringmq: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn readme_round_trip() {
    let broker = Broker::start("cli-readme", 1, &[]);
    let addr = broker.addr();
    let out = ok(&addr, &["topic", "create", "hello", "--partitions", "1"]);
    assert!(out.contains("created topic 'hello'"), "{out}");
    let out = ok_in(&addr, &["produce", "hello"], "hello, ringmq\n");
    assert!(out.contains("produced 1 record(s)"), "{out}");
    let out = ok(
        &addr,
        &["consume", "hello", "--from", "beginning", "--count", "1"],
    );
    assert_eq!(out, "hello, ringmq\n");
}

#[test]
fn topic_commands_change_what_describe_reports() {
    let broker = Broker::start("cli-topic", 2, &[]);
    let addr = broker.addr();
    ok(
        &addr,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
    );
    let err = fails(Some(&addr), &["topic", "create", "orders"]);
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let out = ok(&addr, &["topic", "create", "orders", "--if-not-exists"]);
    assert!(out.contains("already exists"), "{out}");
    ok(&addr, &["topic", "create", "audit"]);

    let table = ok(&addr, &["topic", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TOPIC", "PARTITIONS"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().eq(["orders", "3"])),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().eq(["audit", "1"])),
        "{table}"
    );
    let json = ok(&addr, &["topic", "list", "--json"]);
    assert!(
        json.contains(r#"{"topic":"orders","partitions":3,"internal":false,"topic_id":""#),
        "{json}"
    );

    let desc = ok(&addr, &["topic", "describe", "orders", "--json"]);
    assert!(
        desc.contains(r#""retention.ms":{"value":"3600000","source":"topic"}"#),
        "{desc}"
    );
    assert_eq!(desc.matches(r#""partition":"#).count(), 3, "{desc}");

    ok(
        &addr,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=1000",
            "--set",
            "segment.ms=60000",
        ],
    );
    let desc = ok(&addr, &["topic", "describe", "orders", "--json"]);
    assert!(
        desc.contains(r#""retention.ms":{"value":"1000","source":"topic"}"#),
        "{desc}"
    );
    assert!(
        desc.contains(r#""segment.ms":{"value":"60000","source":"topic"}"#),
        "{desc}"
    );
    ok(
        &addr,
        &[
            "topic",
            "alter-config",
            "orders",
            "--delete",
            "retention.ms",
        ],
    );
    let desc = ok(&addr, &["topic", "describe", "orders"]);
    let row = desc
        .lines()
        .find(|l| l.starts_with("retention.ms"))
        .expect("retention.ms row");
    assert!(row.ends_with("default"), "{row}");
    let err = fails(
        Some(&addr),
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=soon",
        ],
    );
    assert!(err.contains("INVALID_CONFIG"), "{err}");
    let err = fails(Some(&addr), &["topic", "alter-config", "orders"]);
    assert!(err.contains("nothing to change"), "{err}");

    let out = ok(&addr, &["topic", "add-partitions", "orders", "--add", "2"]);
    assert!(out.contains("now has 5 partitions (was 3)"), "{out}");
    let out = ok(
        &addr,
        &[
            "topic",
            "add-partitions",
            "orders",
            "--total",
            "6",
            "--json",
        ],
    );
    assert_eq!(
        out.trim(),
        r#"{"topic":"orders","partitions_before":5,"partitions":6}"#
    );
    let err = fails(
        Some(&addr),
        &["topic", "add-partitions", "orders", "--total", "2"],
    );
    assert!(err.contains("INVALID_PARTITIONS"), "{err}");
    let desc = ok(&addr, &["topic", "describe", "orders"]);
    assert!(desc.starts_with("topic orders: 6 partition(s)"), "{desc}");

    let out = ok(&addr, &["topic", "delete", "orders", "audit"]);
    assert!(
        out.contains("deleted topic 'orders'") && out.contains("deleted topic 'audit'"),
        "{out}"
    );
    let json = ok(&addr, &["topic", "list", "--json"]);
    assert_eq!(json.trim(), "[]");
}

#[test]
fn produce_and_consume_keys_headers_positions_and_formats() {
    let broker = Broker::start("cli-records", 2, &[]);
    let addr = broker.addr();
    ok(&addr, &["topic", "create", "events", "-p", "2"]);
    let lines: String = (0..10).map(|i| format!("k{i}|v{i}\n")).collect();
    let out = ok_in(
        &addr,
        &[
            "produce", "events", "-K", "|", "-H", "src=cli", "-H", "n=1", "--json",
        ],
        &lines,
    );
    assert_eq!(out.trim(), r#"{"topic":"events","records":10}"#);

    // Every record comes back once, key and headers intact, each key on one partition.
    let out = ok(
        &addr,
        &[
            "consume",
            "events",
            "--exit",
            "--format",
            "%p %o %k %s %h\n",
        ],
    );
    let mut got: Vec<(String, String, String, String)> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].into(), f[2].into(), f[3].into(), f[4].into())
        })
        .collect();
    assert_eq!(got.len(), 10, "{out}");
    got.sort_by(|a, b| a.1.cmp(&b.1));
    for (i, (_, k, v, h)) in got.iter().enumerate() {
        assert_eq!(
            (k.as_str(), v.as_str(), h.as_str()),
            (&*format!("k{i}"), &*format!("v{i}"), "src=cli,n=1")
        );
    }
    let again = ok(
        &addr,
        &[
            "consume",
            "events",
            "--exit",
            "--format",
            "%p %o %k %s %h\n",
        ],
    );
    assert_eq!(
        sorted_lines(&again),
        sorted_lines(&out),
        "keyed partitioning is stable"
    );

    // Positions on one partition.
    ok_in(
        &addr,
        &["produce", "events", "--partition", "1"],
        "a\nb\nc\n",
    );
    let p1 = ok(
        &addr,
        &[
            "consume", "events", "-p", "1", "--exit", "--format", "%o:%s\n",
        ],
    );
    let end = p1.lines().count() as i64;
    assert!(
        p1.ends_with(&format!("{}:a\n{}:b\n{}:c\n", end - 3, end - 2, end - 1)),
        "{p1}"
    );
    let tail = ok(
        &addr,
        &[
            "consume", "events", "-p", "1", "--from", "-2", "--exit", "--format", "%s\n",
        ],
    );
    assert_eq!(tail, "b\nc\n");
    let at = (end - 2).to_string();
    let from_offset = ok(
        &addr,
        &[
            "consume", "events", "-p", "1", "--from", &at, "-c", "1", "--format", "%s\n",
        ],
    );
    assert_eq!(from_offset, "b\n");
    let from_end = ok(&addr, &["consume", "events", "--from", "end", "--exit"]);
    assert_eq!(from_end, "");
    let future = ok(
        &addr,
        &[
            "consume",
            "events",
            "--from",
            "2999-01-01T00:00:00Z",
            "--exit",
        ],
    );
    assert_eq!(future, "");
    let past = ok(
        &addr,
        &[
            "consume", "events", "--from", "@0", "--exit", "--format", "x\n",
        ],
    );
    assert_eq!(past.lines().count(), 13);
    let json = ok(
        &addr,
        &[
            "consume", "events", "-p", "1", "--from", &at, "-c", "1", "--json",
        ],
    );
    assert!(
        json.starts_with(&format!(
            r#"{{"topic":"events","partition":1,"offset":{at},"#
        )),
        "{json}"
    );
    assert!(
        json.contains(r#""key":null,"value":"b","headers":{}}"#),
        "{json}"
    );

    // Batches written by librdkafka, lz4-compressed, read back through the CLI.
    let producer = kafka::producer(&addr, "lz4", &[]);
    for i in 0..5 {
        kafka::send_record(&producer, "events", 2, i, 32);
    }
    rdkafka::producer::Producer::flush(&producer, kafka::CLIENT_TIMEOUT).expect("flush");
    let all = ok(&addr, &["consume", "events", "--exit", "--format", "x\n"]);
    assert_eq!(all.lines().count(), 18);
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

/// Committed offsets of `group` by partition, read through `group describe --json`.
fn committed(addr: &str, group: &str) -> Vec<(i64, i64, i64)> {
    let json = ok(addr, &["group", "describe", group, "--json"]);
    json.split(r#"{"topic":"#)
        .skip(1)
        .map(|row| {
            let num = |field: &str| -> i64 {
                let at = row.find(field).expect("field") + field.len();
                let digits: String = row[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '-')
                    .collect();
                digits.parse().expect("number")
            };
            (
                num(r#""partition":"#),
                num(r#""committed_offset":"#),
                num(r#""lag":"#),
            )
        })
        .collect()
}

#[test]
fn group_commands_and_offset_resets() {
    let broker = Broker::start("cli-groups", 2, &[]);
    let addr = broker.addr();
    ok(&addr, &["topic", "create", "jobs", "-p", "2"]);
    ok_in(&addr, &["produce", "jobs", "-p", "0"], "a\nb\nc\nd\n");
    ok_in(&addr, &["produce", "jobs", "-p", "1"], "e\nf\n");

    // consume --group commits where it stopped and resumes there.
    let first = ok(
        &addr,
        &[
            "consume", "jobs", "-p", "0", "-g", "workers", "-c", "3", "--format", "%s",
        ],
    );
    assert_eq!(first, "abc");
    let next = ok(
        &addr,
        &[
            "consume", "jobs", "-p", "0", "-g", "workers", "-c", "1", "--format", "%s",
        ],
    );
    assert_eq!(next, "d");
    let list = ok(&addr, &["group", "list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().eq(["workers", "Empty"])),
        "{list}"
    );
    assert!(
        ok(&addr, &["group", "list", "--json"]).contains(r#"{"group":"workers","state":"Empty""#)
    );
    assert_eq!(committed(&addr, "workers"), vec![(0, 4, 0)]);
    let human = ok(&addr, &["group", "describe", "workers"]);
    assert!(
        human.starts_with("group workers: state Empty, 0 member(s)"),
        "{human}"
    );

    // A dry run changes nothing; --execute does.
    let plan = ok(
        &addr,
        &["group", "reset-offsets", "workers", "--to-earliest"],
    );
    assert!(plan.contains("dry run"), "{plan}");
    assert_eq!(committed(&addr, "workers"), vec![(0, 4, 0)]);
    ok(
        &addr,
        &[
            "group",
            "reset-offsets",
            "workers",
            "-t",
            "jobs",
            "--to-offset",
            "1",
            "--execute",
        ],
    );
    assert_eq!(committed(&addr, "workers"), vec![(0, 1, 3), (1, 1, 1)]);
    ok(
        &addr,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(committed(&addr, "workers"), vec![(0, 4, 0), (1, 2, 0)]);
    ok(
        &addr,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--to-datetime",
            "2000-01-01T00:00:00Z",
            "--execute",
        ],
    );
    assert_eq!(committed(&addr, "workers"), vec![(0, 0, 4), (1, 0, 2)]);
    let json = ok(
        &addr,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--to-offset",
            "99",
            "--json",
        ],
    );
    assert!(
        json.contains(r#""executed":false"#) && json.contains(r#""new_offset":4"#),
        "{json}"
    );
    let resumed = ok(
        &addr,
        &[
            "consume", "jobs", "-p", "1", "-g", "workers", "--exit", "--format", "%s",
        ],
    );
    assert_eq!(resumed, "ef");

    // An active member blocks resets and deletion.
    let member = join_group(&addr, "busy", "jobs");
    let desc = ok(&addr, &["group", "describe", "busy"]);
    assert!(desc.contains("1 member(s)"), "{desc}");
    let json = ok(&addr, &["group", "describe", "busy", "--json"]);
    assert_eq!(
        json.matches(r#""committed_offset":-1"#).count(),
        2,
        "both partitions listed: {json}"
    );
    assert!(
        !json.contains(r#""member_id":"-""#),
        "both partitions owned by the member: {json}"
    );
    let err = fails(
        Some(&addr),
        &[
            "group",
            "reset-offsets",
            "busy",
            "-t",
            "jobs",
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(err.contains("active member"), "{err}");
    let err = fails(Some(&addr), &["group", "delete", "busy"]);
    assert!(err.contains("still has members"), "{err}");
    drop(member);

    ok(&addr, &["group", "delete", "workers"]);
    let err = fails(Some(&addr), &["group", "describe", "workers"]);
    assert!(err.contains("group 'workers' does not exist"), "{err}");
    let err = fails(Some(&addr), &["group", "delete", "workers"]);
    assert!(err.contains("does not exist"), "{err}");
}

/// A librdkafka consumer that has joined `group` (subscribed to `topic`) and got its assignment.
fn join_group(addr: &str, group: &str, topic: &str) -> BaseConsumer {
    let mut c = kafka::base_config(addr);
    c.set("group.id", group)
        .set("session.timeout.ms", "10000")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "consumer never got an assignment"
        );
        let _ = consumer.poll(Duration::from_millis(100));
    }
    consumer
}

#[test]
fn cluster_info_names_the_broker() {
    let broker = Broker::start("cli-cluster", 1, &[]);
    let addr = broker.addr();
    ok(&addr, &["topic", "create", "t", "-p", "4"]);
    let out = ok(&addr, &["cluster", "info"]);
    assert!(out.contains("topics:      1 (4 partitions)"), "{out}");
    let row = format!("127.0.0.1  {}", broker.port);
    assert!(out.contains(&row), "{out}");
    let json = ok(&addr, &["cluster", "info", "--json"]);
    assert!(
        json.contains(&format!(r#""host":"127.0.0.1","port":{}"#, broker.port)),
        "{json}"
    );
    assert!(
        json.contains(r#""api_key":18"#),
        "ApiVersions is listed: {json}"
    );
}

#[test]
fn errors_are_one_sentence_and_a_status() {
    let broker = Broker::start("cli-errors", 1, &[]);
    let addr = broker.addr();
    let a = Some(addr.as_str());
    for args in [
        &["topic", "describe", "ghost"][..],
        &["topic", "delete", "ghost"],
        &["topic", "alter-config", "ghost", "--set", "retention.ms=1"],
        &["topic", "add-partitions", "ghost", "--add", "1"],
        &["consume", "ghost"],
        &["produce", "ghost"],
    ] {
        let err = fails(a, args);
        assert!(
            err.contains("topic 'ghost' does not exist"),
            "{args:?}: {err}"
        );
    }
    ok(&addr, &["topic", "create", "real"]);
    let err = fails(a, &["consume", "real", "-p", "7"]);
    assert!(
        err.contains("partition 7 of topic 'real' does not exist"),
        "{err}"
    );
    let err = fails(a, &["consume", "real", "--from", "yesterday"]);
    assert!(err.contains("--from yesterday"), "{err}");
    let err = fails(a, &["topic", "create", "x", "-c", "novalue"]);
    assert!(err.contains("KEY=VALUE"), "{err}");
    let err = fails(a, &["group", "reset-offsets", "g", "--to-datetime", "noon"]);
    assert!(err.contains("--to-datetime"), "{err}");

    // Broker down: nothing listens on a fresh port.
    let down = format!("127.0.0.1:{}", free_port());
    for args in [
        &["topic", "list"][..],
        &["group", "list"],
        &["cluster", "info"],
        &["consume", "t"],
        &["produce", "t"],
    ] {
        let err = fails(Some(&down), args);
        assert!(
            err.contains(&format!("cannot reach a broker at {down}")),
            "{args:?}: {err}"
        );
    }

    // Bad flags are usage errors (status 2) naming the flag.
    for args in [
        &["topic", "list", "--bogus"][..],
        &["consume"],
        &["topic", "create", "t", "-p", "many"],
    ] {
        let out = ringmq(Some(&addr), args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    let out = ringmq(
        Some(&addr),
        &[
            "group",
            "reset-offsets",
            "g",
            "--to-earliest",
            "--to-latest",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
}

/// Runs `ringmq ARGS` with extra environment variables and no stdin.
fn ringmq_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run ringmq")
}

#[test]
fn config_print_shows_each_layer_and_serve_obeys_the_environment() {
    let dir = common::fresh_data_dir("cli-config");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("ringmq.toml");
    std::fs::write(
        &file,
        "shards = 3\ndefault_partitions = 4\nmax_request_bytes = 3000000\n",
    )
    .expect("write toml");
    let file_arg = file.to_string_lossy().into_owned();
    let env = [
        ("RINGMQ_DEFAULT_PARTITIONS", "6"),
        ("RINGMQ_TOPIC_RETENTION_MS", "5000"),
    ];
    let out = ringmq_env(
        &[
            "config", "print", "--config", &file_arg, "--shards", "1", "--json",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    for expected in [
        r#""shards":{"value":"1","source":"flag"}"#,
        r#""default_partitions":{"value":"6","source":"env"}"#,
        r#""max_request_bytes":{"value":"3000000","source":"file"}"#,
        r#""auto_create_topics":{"value":"true","source":"default"}"#,
        r#""topic.retention.ms":{"value":"5000","source":"env"}"#,
    ] {
        assert!(json.contains(expected), "{expected} in {json}");
    }
    let table = ringmq_env(&["config", "print", "--config", &file_arg], &env);
    let text = String::from_utf8_lossy(&table.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("shards"))
        .expect("shards row");
    assert!(row.split_whitespace().eq(["shards", "3", "file"]), "{row}");

    // `serve` resolves the same layers: a bad environment value stops it, naming the variable.
    let data = dir.join("data").to_string_lossy().into_owned();
    let port = format!("127.0.0.1:{}", free_port());
    let out = ringmq_env(
        &["serve", "--listen", &port, "--data-dir", &data],
        &[("RINGMQ_SHARDS", "lots")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RINGMQ_SHARDS='lots'"), "{stderr}");
    let out = ringmq_env(
        &["config", "print"],
        &[("RINGMQ_TOPIC_DURABILITY", "sometimes")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RINGMQ_TOPIC_DURABILITY"));
    std::fs::remove_dir_all(&dir).expect("remove dir");
}

#[test]
fn check_reports_every_host_check() {
    let dir = common::fresh_data_dir("cli-check");
    std::fs::create_dir_all(&dir).expect("dir");
    let d = dir.to_string_lossy().into_owned();
    let out = ringmq_env(
        &["check", "--data-dir", &d, "--disk-test-mib", "4", "--json"],
        &[],
    );
    let json = String::from_utf8_lossy(&out.stdout);
    for check in [
        "io_uring",
        "kernel",
        "memlock",
        "open files",
        "cpus",
        "filesystem",
        "free space",
        "O_DIRECT",
    ] {
        assert!(
            json.contains(&format!(r#""check":"{check}""#)),
            "{check} in {json}"
        );
    }
    assert!(
        json.contains(r#""check":"io_uring","status":"ok""#),
        "the broker runs here: {json}"
    );
    assert!(json.contains(r#""check":"disk write""#), "{json}");
    // The exit status says whether any check failed.
    assert_eq!(out.status.success(), !json.contains(r#""status":"fail""#));
    let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("read dir").collect();
    assert!(
        leftovers.is_empty(),
        "the disk test cleans up: {leftovers:?}"
    );
    std::fs::remove_dir_all(&dir).expect("remove dir");
}

#[test]
fn consume_below_the_log_start_moves_to_it() {
    let broker = Broker::start("cli-trim", 1, &[]);
    let addr = broker.addr();
    ok(&addr, &["topic", "create", "trim"]);
    for i in 0..5 {
        ok_in(&addr, &["produce", "trim"], &format!("v{i}\n"));
    }
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("trim", 0, rdkafka::Offset::Offset(3))
        .expect("tpl");
    let admin = kafka::admin(&addr);
    let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(kafka::CLIENT_TIMEOUT));
    let r = futures_executor::block_on(admin.delete_records(&tpl, &opts)).expect("DeleteRecords");
    r.find_partition("trim", 0)
        .expect("partition")
        .error()
        .expect("DeleteRecords succeeded");
    let out = ok(
        &addr,
        &[
            "consume", "trim", "--from", "0", "--exit", "--format", "%o:%s\n",
        ],
    );
    assert_eq!(out, "3:v3\n4:v4\n");
    let desc = ok(&addr, &["topic", "describe", "trim", "--json"]);
    assert!(
        desc.contains(r#""earliest_offset":3,"latest_offset":5"#),
        "{desc}"
    );
    let err = fails(Some(&addr), &["consume", "trim", "--from", "9", "--exit"]);
    assert!(err.contains("OFFSET_OUT_OF_RANGE"), "{err}");
}
