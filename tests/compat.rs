//! The compatibility suite (issue 15): real Kafka clients against the real binary, each
//! driven by a program in `tests/clients/compat/` (Python, Node) or `tests/clients/go/` (Go,
//! built by `scripts/test` from Debian's sources). Every program checks, where its client has
//! the feature: admin create/delete, produce with every codec (none, gzip, snappy, lz4, zstd)
//! verifying every delivery, consuming everything back in order, offsets for a timestamp
//! (exact, inside a batch), a consumer group that commits and resumes, the idempotent
//! producer, and a transactional producer that must fail at once with a clear error.
//!
//! Each program prints `CLIENT\tname\tversion` and one `RESULT\tfeature\tstate\tdetail` per
//! feature; a test fails on any `fail`, on a feature missing from the output, or on a program
//! that does not finish in time. The lines are saved to `<target>/tmp/compat/<client>.tsv`;
//! `scripts/compat-doc` turns them into `docs/compatibility.md`.
//!
//! The clients live under `$RINGMQ_TEST_CACHE` (default `~/.cache/ringmq-test`), installed by
//! `scripts/test`; a missing client FAILS the test (unless RINGMQ_SKIP_EXTERNAL=1).

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;

/// Longest a client program may run (each check inside has its own 90 s bound).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(300);

/// Every feature a program reports, in the order of the page's columns.
pub const FEATURES: &[&str] = &[
    "admin.create_delete",
    "produce.none",
    "consume.none",
    "offsets_for_time.none",
    "produce.gzip",
    "consume.gzip",
    "offsets_for_time.gzip",
    "produce.snappy",
    "consume.snappy",
    "offsets_for_time.snappy",
    "produce.lz4",
    "consume.lz4",
    "offsets_for_time.lz4",
    "produce.zstd",
    "consume.zstd",
    "offsets_for_time.zstd",
    "group.commit_resume",
    "idempotent",
    "transactions.clear_error",
];

fn cache() -> PathBuf {
    match std::env::var_os("RINGMQ_TEST_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/ringmq-test"),
    }
}

fn skipped(test: &str) -> bool {
    let skip = std::env::var("RINGMQ_SKIP_EXTERNAL").as_deref() == Ok("1");
    if skip {
        eprintln!("{test}: SKIPPED because RINGMQ_SKIP_EXTERNAL=1");
    }
    skip
}

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/compat")
}

/// The program's path, or a panic that says how to install it.
fn installed(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `scripts/test setup` (it installs the compatibility clients)",
        path.display()
    );
    path
}

/// Runs `cmd BOOTSTRAP PREFIX` against a fresh broker and checks its report.
fn run_suite(client: &str, mut cmd: Command, not_applicable: &[&str]) {
    let mut broker = Broker::start(&format!("compat-{client}"), 2, &[]);
    // cargo puts its build dirs on LD_LIBRARY_PATH; a librdkafka built there (rdkafka-sys,
    // without zstd) must not replace the system one under Debian's kcat.
    cmd.args([broker.addr(), format!("compat-{client}")])
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > PROGRAM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{client}: no result within {PROGRAM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    broker.stop();
    eprintln!(
        "{client} ({:.1} s, {status}):\n{out}",
        started.elapsed().as_secs_f64()
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat");
    std::fs::create_dir_all(&dir).expect("results dir");
    std::fs::write(dir.join(format!("{client}.tsv")), &out).expect("write results");
    check_report(client, &out, &err, not_applicable);
    assert!(status.success(), "{client} exited {status}; stderr:\n{err}");
}

fn check_report(client: &str, out: &str, err: &str, not_applicable: &[&str]) {
    assert!(
        out.lines()
            .next()
            .is_some_and(|l| l.starts_with("CLIENT\t")),
        "{client}: no CLIENT line; stderr:\n{err}"
    );
    let mut problems = Vec::new();
    for feature in FEATURES {
        let line = out
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(feature) && l.starts_with("RESULT\t"));
        let Some(line) = line else {
            problems.push(format!("{feature}: not reported"));
            continue;
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let want = if not_applicable.contains(feature) {
            "n/a"
        } else {
            "pass"
        };
        if fields.get(2) != Some(&want) {
            problems.push(format!(
                "{feature}: {} (expected {want})",
                fields[2..].join(" ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{client}:\n  {}\nstderr:\n{err}",
        problems.join("\n  ")
    );
}

fn python(script: &str) -> Command {
    let py = installed(cache().join("venv/bin/python"));
    let mut cmd = Command::new(py);
    cmd.arg(client_dir().join(script));
    cmd
}

#[test]
fn kafka_python() {
    if skipped("kafka_python") {
        return;
    }
    run_suite("kafka-python", python("kafka_python.py"), &[]);
}

#[test]
fn aiokafka() {
    if skipped("aiokafka") {
        return;
    }
    run_suite("aiokafka", python("aiokafka_client.py"), &[]);
}

#[test]
fn kafkajs() {
    if skipped("kafkajs") {
        return;
    }
    let modules = installed(cache().join("node/node_modules/kafkajs")).join("..");
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", modules)
        .arg(client_dir().join("kafkajs.js"));
    run_suite("kafkajs", cmd, &[]);
}

#[test]
fn kafka_javascript() {
    if skipped("kafka_javascript") {
        return;
    }
    // Built from the npm package by scripts/test (no prebuilt binary can be downloaded).
    let modules = installed(cache().join("node-ckjs/node_modules/@confluentinc/kafka-javascript"));
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", modules.join("../.."))
        .env("RINGMQ_KAFKAJS_LIBRARY", "confluent")
        .arg(client_dir().join("kafkajs.js"));
    run_suite("kafka-javascript", cmd, &[]);
}

#[test]
fn sarama() {
    if skipped("sarama") {
        return;
    }
    let cmd = Command::new(installed(cache().join("go-bin/sarama")));
    run_suite("sarama", cmd, &["transactions.clear_error"]);
}

#[test]
fn kafka_go() {
    if skipped("kafka_go") {
        return;
    }
    // kafka-go 0.2 speaks Produce v2 / Fetch v2 (message sets v1), CreateTopics v0.
    let cmd = Command::new(installed(cache().join("go-bin/kafkago")));
    run_suite(
        "kafka-go",
        cmd,
        &[
            "produce.zstd",
            "consume.zstd",
            "offsets_for_time.zstd",
            "idempotent",
            "transactions.clear_error",
        ],
    );
}

#[test]
fn kcat() {
    if skipped("kcat") {
        return;
    }
    let found = Command::new("kcat").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "kcat is missing: run `scripts/test setup` (apt-get install kcat)"
    );
    run_suite(
        "kcat",
        python("kcat_client.py"),
        &["admin.create_delete", "transactions.clear_error"],
    );
}
