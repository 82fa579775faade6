//! Independent client implementations against the real binary (issue 2, "Done means": kcat and
//! kafka-python). `.ci/run` installs both; a missing one FAILS these tests, unless the
//! environment sets RINGMQ_SKIP_EXTERNAL=1 (then they print why and pass without running).
//!
//! - kcat (Debian's, librdkafka 2.0.2, which chokes on default-valued tagged fields):
//!   `-L` lists the broker at its address and the topic with its partition count; `-P` with
//!   keys and a header produces 500 lines; `-C -o beginning -e` reads back exactly those, each
//!   once, with key, value and header, offsets dense per partition and input order kept within
//!   each partition.
//! - kafka-python: tests/clients/kafka_python_roundtrip.py produces 1,000 records
//!   (idempotent, acks=all) and consumes them, checking everything; it must exit 0 and say OK.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{kafka, Broker};

const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn skipped(test: &str) -> bool {
    let skip = std::env::var("RINGMQ_SKIP_EXTERNAL").as_deref() == Ok("1");
    if skip {
        eprintln!("{test}: SKIPPED because RINGMQ_SKIP_EXTERNAL=1");
    }
    skip
}

/// Panics loudly unless `program args` runs and exits 0.
fn require(program: &str, args: &[&str], install_hint: &str) {
    let out = Command::new(program).args(args).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{program} {}` failed ({}): {}\n{install_hint} (or set RINGMQ_SKIP_EXTERNAL=1)",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            panic!("cannot run {program}: {e}\n{install_hint} (or set RINGMQ_SKIP_EXTERNAL=1)")
        }
    }
}

/// Runs `cmd` with `stdin` fed in, killing it after [`TOOL_TIMEOUT`].
fn run(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which the waiter thread has not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("{cmd:?} did not finish within {TOOL_TIMEOUT:?}");
        }
    }
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kcat(addr: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("kcat");
    cmd.args(["-b", addr, "-X", "broker.address.family=v4"])
        .args(args);
    cmd
}

#[test]
fn kcat_list_produce_consume() {
    if skipped("kcat_list_produce_consume") {
        return;
    }
    require("kcat", &["-V"], "install kcat: apt-get install -y kcat");
    let mut broker = Broker::start("kcat", 2, &[]);
    let addr = broker.addr();
    let topic = "kcat-topic";
    kafka::create_topic(&addr, topic, 3, &[]);

    let out = run(kcat(&addr, &["-L"]), b"");
    assert_success("kcat -L", &out);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(&format!(" at {addr}")),
        "kcat -L does not show {addr}:\n{listing}"
    );
    assert!(
        listing.contains(&format!("topic \"{topic}\" with 3 partitions")),
        "kcat -L does not show the topic:\n{listing}"
    );

    const N: usize = 500;
    let input: String = (0..N).map(|i| format!("key-{i}:value-{i}\n")).collect();
    let produce = kcat(
        &addr,
        &[
            "-P",
            "-t",
            topic,
            "-K",
            ":",
            "-H",
            "origin=kcat",
            "-X",
            "acks=all",
        ],
    );
    assert_success("kcat -P", &run(produce, input.as_bytes()));

    let consume = kcat(
        &addr,
        &[
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o %k=%s|%h\\n",
        ],
    );
    let out = run(consume, b"");
    assert_success("kcat -C", &out);
    check_kcat_output(&String::from_utf8_lossy(&out.stdout), N);
    broker.stop();
}

/// Lines `PARTITION OFFSET key-I=value-I|origin=kcat`: each I in 0..n once, offsets dense from 0
/// per partition, I increasing with the offset within a partition.
fn check_kcat_output(stdout: &str, n: usize) {
    let mut seen = vec![false; n];
    let mut next: HashMap<i32, (i64, Option<usize>)> = HashMap::new();
    for line in stdout.lines() {
        let parse = || -> Option<(i32, i64, usize)> {
            let (p, rest) = line.split_once(' ')?;
            let (o, rest) = rest.split_once(' ')?;
            let i: usize = rest.strip_prefix("key-")?.split_once('=')?.0.parse().ok()?;
            (rest == format!("key-{i}=value-{i}|origin=kcat")).then_some(())?;
            Some((p.parse().ok()?, o.parse().ok()?, i))
        };
        let (p, o, i) = parse().unwrap_or_else(|| panic!("unexpected kcat line {line:?}"));
        assert!(i < n && !seen[i], "record {i} unexpected or twice");
        seen[i] = true;
        let (expected_offset, last_i) = next.entry(p).or_insert((0, None));
        assert_eq!(o, *expected_offset, "partition {p}: offsets not dense");
        assert!(
            last_i.is_none_or(|j| j < i),
            "partition {p}: record {i} after {last_i:?}"
        );
        *expected_offset += 1;
        *last_i = Some(i);
    }
    let missing: Vec<usize> = (0..n).filter(|&i| !seen[i]).collect();
    assert!(
        missing.is_empty(),
        "kcat did not read back {} records: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
}

#[test]
fn kafka_python_roundtrip() {
    if skipped("kafka_python_roundtrip") {
        return;
    }
    require(
        "python3",
        &["-c", "import kafka"],
        "install kafka-python: python3 -m pip install kafka-python",
    );
    let mut broker = Broker::start("kafka-python", 2, &[]);
    let topic = "kafka-python-topic";
    kafka::create_topic(&broker.addr(), topic, 3, &[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/kafka_python_roundtrip.py"
    );
    let mut cmd = Command::new("python3");
    cmd.args([
        script,
        "--bootstrap",
        &broker.addr(),
        "--topic",
        topic,
        "--partitions",
        "3",
        "--count",
        "1000",
    ]);
    let out = run(cmd, b"");
    assert_success("kafka_python_roundtrip.py", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("OK: kafka-python round trip of 1000 records"),
        "script said: {stdout}"
    );
    broker.stop();
}
