//! SASL against the real binary (issue 14): listeners, users and SASL_PLAINTEXT with real
//! clients (kcat = librdkafka 2.0.2, kafka-python) and hand-made frames.
//!
//! - Every mechanism (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) produces and consumes with kcat
//!   and with kafka-python (which also runs a consumer group); users are created with
//!   `ringmq user create` (AlterUserScramCredentials) by the bootstrap user
//!   (`RINGMQ_BOOTSTRAP_USER`); a PLAINTEXT listener alongside keeps serving.
//! - A wrong password gets SASL_AUTHENTICATION_FAILED after the failure delay, is counted in
//!   /metrics and gets no access (the connection closes).
//! - An unauthenticated Metadata, or an exchange out of order, closes only that connection;
//!   an authenticated connection keeps being served.
//! - KIP-368: the session lifetime is answered, a request after it expired closes the
//!   connection, a re-authentication renews it.
//!
//! Raw frames are hand-encoded (tests/common/wire.rs), independent of ringmq's codec.

mod common;

use common::wire::{self, Reader};
use common::{free_port, fresh_data_dir, http_get, Broker, RawConn, ReadOutcome};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("admin", "admin-secret");
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;

/// A broker with a PLAINTEXT and a SASL_PLAINTEXT listener and the bootstrap user.
struct SaslBroker {
    broker: Broker,
    sasl_port: u16,
    metrics_port: u16,
}

impl SaslBroker {
    fn start(name: &str, extra: &[&str]) -> SaslBroker {
        let (plain, sasl, metrics) = (free_port(), free_port(), free_port());
        let listeners = format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
        let mut args: Vec<String> = vec![
            "--shards".into(),
            "2".into(),
            "--listeners".into(),
            listeners,
        ];
        args.extend(["--metrics-listen".into(), format!("127.0.0.1:{metrics}")]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let env = vec![(
            "RINGMQ_BOOTSTRAP_USER".to_string(),
            format!("{}:{}", ADMIN.0, ADMIN.1),
        )];
        let broker = Broker::start_in_with_env(fresh_data_dir(name), plain, args, env);
        SaslBroker {
            broker,
            sasl_port: sasl,
            metrics_port: metrics,
        }
    }
    fn sasl_addr(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_port)
    }
    fn metric(&self, name: &str) -> u64 {
        let (_, body) = http_get(self.metrics_port, "/metrics");
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

fn run(program: &str, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    // cargo test puts the rdkafka crate's own librdkafka (built without SCRAM) on
    // LD_LIBRARY_PATH; kcat must load Debian's.
    let mut child = Command::new(program)
        .env_remove("LD_LIBRARY_PATH")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e} (is it installed? scripts/test setup)"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn assert_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kcat_sasl(
    addr: &str,
    mechanism: &str,
    user: &str,
    password: &str,
    args: &[&str],
) -> Vec<String> {
    let mut v: Vec<String> = ["-b", addr, "-X", "broker.address.family=v4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (k, val) in [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", mechanism),
        ("sasl.username", user),
        ("sasl.password", password),
    ] {
        v.push("-X".into());
        v.push(format!("{k}={val}"));
    }
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

fn kcat(args: &[String], stdin: &[u8]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("kcat", &args, &[], stdin)
}

/// `ringmq user create NAME` over SASL as the bootstrap user (both passwords on stdin).
fn create_user(b: &SaslBroker, name: &str, mechanism: &str, password: &str) {
    let stdin = format!("{}\n{password}\n", ADMIN.1);
    let addr = b.sasl_addr();
    let args = [
        "user",
        "create",
        name,
        "--mechanism",
        mechanism,
        "--password-stdin",
        "--bootstrap",
        &addr,
        "--security-protocol",
        "SASL_PLAINTEXT",
        "--sasl-username",
        ADMIN.0,
        "--sasl-password-stdin",
    ];
    assert_ok(
        "ringmq user create",
        &run(env!("CARGO_BIN_EXE_ringmq"), &args, &[], stdin.as_bytes()),
    );
}

#[test]
fn every_mechanism_produces_and_consumes_with_kcat_and_kafka_python() {
    let mut b = SaslBroker::start("sasl-clients", &[]);
    create_user(&b, "bob", "SCRAM-SHA-256", "bob-pw");
    create_user(&b, "carol", "SCRAM-SHA-512", "carol-pw");
    let users = [
        ("SCRAM-SHA-512", ADMIN.0, ADMIN.1),
        ("SCRAM-SHA-256", "bob", "bob-pw"),
        ("PLAIN", "carol", "carol-pw"),
    ];
    let addr = b.sasl_addr();
    for (m, user, pw) in users {
        let input: String = (0..50).map(|i| format!("{m}-{i}\n")).collect();
        let produce = kcat_sasl(&addr, m, user, pw, &["-P", "-t", "sasl-kcat", "-p", "0"]);
        assert_ok(&format!("kcat -P {m}"), &kcat(&produce, input.as_bytes()));
    }
    for (m, user, pw) in users {
        let consume = kcat_sasl(
            &addr,
            m,
            user,
            pw,
            &["-C", "-t", "sasl-kcat", "-o", "beginning", "-e"],
        );
        let out = assert_ok(&format!("kcat -C {m}"), &kcat(&consume, b""));
        for (other, _, _) in users {
            let n = (0..50)
                .filter(|i| out.lines().any(|l| l == format!("{other}-{i}")))
                .count();
            assert_eq!(
                n, 50,
                "kcat with {m} read {n} of {other}'s 50 records:\n{out}"
            );
        }
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/kafka_python_sasl.py"
    );
    for (m, user, pw) in users {
        let group = format!("py-{m}");
        let args = [
            script,
            "--bootstrap",
            &addr,
            "--mechanism",
            m,
            "--user",
            user,
            "--password",
            pw,
            "--topic",
            "sasl-python",
            "--group",
            &group,
            "--count",
            "100",
        ];
        let out = assert_ok(
            &format!("kafka_python_sasl.py {m}"),
            &run("python3", &args, &[], b""),
        );
        assert!(out.contains(&format!("OK {m} 100")), "{out}");
    }
    // The PLAINTEXT listener alongside serves without SASL.
    let plain = b.broker.addr();
    let args = [
        "-b",
        plain.as_str(),
        "-X",
        "broker.address.family=v4",
        "-C",
        "-t",
        "sasl-kcat",
        "-o",
        "beginning",
        "-e",
    ];
    let out = assert_ok("kcat on PLAINTEXT", &run("kcat", &args, &[], b""));
    assert_eq!(out.lines().count(), 150, "{out}");
    let listed = run(
        env!("CARGO_BIN_EXE_ringmq"),
        &["user", "list", "--json", "--bootstrap", plain.as_str()],
        &[],
        b"",
    );
    let listed = assert_ok("ringmq user list", &listed);
    for u in ["\"admin\"", "\"bob\"", "\"carol\"", "SCRAM-SHA-256"] {
        assert!(listed.contains(u), "{u} missing from {listed}");
    }
    assert!(b.metric("ringmq_sasl_authentications_total") >= 9);
    assert_eq!(b.metric("ringmq_sasl_authentication_failures_total"), 0);
    assert!(
        !b.broker.log_text().contains(ADMIN.1) && !b.broker.log_text().contains("bob-pw"),
        "a password reached the log"
    );
    b.broker.stop();
}

fn handshake(c: &mut RawConn, mechanism: &str, correlation_id: i32) -> (i16, Vec<String>) {
    let mut body = wire::Writer::default();
    body.string(mechanism);
    let frame = wire::request_frame(
        SASL_HANDSHAKE,
        1,
        correlation_id,
        Some("t"),
        false,
        &body.buf,
    );
    assert!(c.send(&frame));
    let ReadOutcome::Frame(resp) = c.read_frame(Duration::from_secs(10)) else {
        panic!("no SaslHandshake answer");
    };
    let mut r = Reader::new(&resp);
    assert_eq!(r.i32(), correlation_id);
    let code = r.i16();
    let n = r.i32();
    (code, (0..n).map(|_| r.string()).collect())
}

/// SaslAuthenticate v1: (error code, message, session lifetime), or `None` if closed.
fn authenticate(c: &mut RawConn, token: &[u8], correlation_id: i32) -> Option<(i16, String, i64)> {
    let mut body = wire::Writer::default();
    body.bytes(token);
    let frame = wire::request_frame(
        SASL_AUTHENTICATE,
        1,
        correlation_id,
        Some("t"),
        false,
        &body.buf,
    );
    assert!(c.send(&frame));
    let ReadOutcome::Frame(resp) = c.read_frame(Duration::from_secs(10)) else {
        return None;
    };
    let mut r = Reader::new(&resp);
    assert_eq!(r.i32(), correlation_id);
    let code = r.i16();
    let len = r.i16();
    let message = if len < 0 {
        String::new()
    } else {
        String::from_utf8_lossy(r.take(len as usize)).into_owned()
    };
    let n = r.i32();
    r.take(n.max(0) as usize);
    Some((code, message, r.i64()))
}

fn plain_login(c: &mut RawConn, user: &str, password: &str) -> Option<(i16, String, i64)> {
    let (code, mechanisms) = handshake(c, "PLAIN", 1);
    assert_eq!(code, 0, "handshake refused; broker offers {mechanisms:?}");
    authenticate(c, format!("\0{user}\0{password}").as_bytes(), 2)
}

fn metadata_served(c: &mut RawConn, correlation_id: i32) -> bool {
    if !c.send(&wire::metadata_v1_all_topics(correlation_id)) {
        return false;
    }
    matches!(c.read_frame(Duration::from_secs(10)), ReadOutcome::Frame(_))
}

#[test]
fn a_wrong_password_is_refused_after_a_delay_and_gets_no_access() {
    let mut b = SaslBroker::start("sasl-wrong", &[]);
    let addr = b.sasl_addr();
    let out = kcat(
        &kcat_sasl(&addr, "SCRAM-SHA-512", ADMIN.0, "wrong", &["-L"]),
        b"",
    );
    assert!(
        !out.status.success(),
        "kcat with a wrong password listed metadata"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Authentication failed"), "{stderr}");

    let mut c = RawConn::connect(&addr);
    let t0 = Instant::now();
    let (code, message, _) =
        plain_login(&mut c, ADMIN.0, "wrong").expect("an answer before the close");
    let waited = t0.elapsed();
    assert_eq!(code, 58, "SASL_AUTHENTICATION_FAILED: {message}");
    assert!(message.contains("Authentication failed"), "{message}");
    assert!(
        waited >= Duration::from_millis(900),
        "answered after {waited:?}"
    );
    assert!(
        c.wait_closed(Duration::from_secs(5)),
        "the connection stayed open"
    );
    // An unknown user gets the same answer.
    let mut c = RawConn::connect(&addr);
    let (code, message2, _) = plain_login(&mut c, "mallory", "x").expect("answer");
    assert_eq!((code, message2), (58, message));
    assert!(b.metric("ringmq_sasl_authentication_failures_total") >= 3);
    assert!(!b.broker.log_text().contains("wrong\n"));
    b.broker.stop();
}

#[test]
fn unauthenticated_or_out_of_order_requests_close_only_their_connection() {
    let mut b = SaslBroker::start("sasl-gate", &[]);
    let addr = b.sasl_addr();
    let mut good = RawConn::connect(&addr);
    let (code, _, _) = plain_login(&mut good, ADMIN.0, ADMIN.1).expect("answer");
    assert_eq!(code, 0);
    assert!(metadata_served(&mut good, 3));

    // ApiVersions is served before authentication; Metadata closes the connection.
    let mut raw = RawConn::connect(&addr);
    assert!(raw.send(&wire::api_versions_request(0, 1)));
    assert!(matches!(
        raw.read_frame(Duration::from_secs(10)),
        ReadOutcome::Frame(_)
    ));
    assert!(
        !metadata_served(&mut raw, 2),
        "Metadata served before authentication"
    );
    assert!(raw.wait_closed(Duration::from_secs(5)));

    // SaslAuthenticate before SaslHandshake: ILLEGAL_SASL_STATE, then closed.
    let mut early = RawConn::connect(&addr);
    let (code, _, _) = authenticate(&mut early, b"\0admin\0x", 1).expect("answer");
    assert_eq!(code, 34);
    assert!(early.wait_closed(Duration::from_secs(5)));
    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled list, then closed.
    let mut odd = RawConn::connect(&addr);
    let (code, offered) = handshake(&mut odd, "GSSAPI", 1);
    assert_eq!(code, 33);
    assert_eq!(offered, ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]);
    assert!(odd.wait_closed(Duration::from_secs(5)));
    // SaslHandshake on the PLAINTEXT listener: ILLEGAL_SASL_STATE, connection kept.
    let mut plain = RawConn::connect(&b.broker.addr());
    assert_eq!(handshake(&mut plain, "PLAIN", 1).0, 34);
    assert!(metadata_served(&mut plain, 2));

    assert!(
        metadata_served(&mut good, 4),
        "the authenticated connection was dropped"
    );
    b.broker.stop();
}

#[test]
fn an_expired_session_closes_unless_it_reauthenticates() {
    let mut b = SaslBroker::start("sasl-reauth", &["--connections-max-reauth-ms", "1500"]);
    let addr = b.sasl_addr();
    let mut lapsing = RawConn::connect(&addr);
    let mut renewing = RawConn::connect(&addr);
    for c in [&mut lapsing, &mut renewing] {
        let (code, _, lifetime) = plain_login(c, ADMIN.0, ADMIN.1).expect("answer");
        assert_eq!((code, lifetime), (0, 1500));
        assert!(metadata_served(c, 3));
    }
    std::thread::sleep(Duration::from_millis(900));
    let (code, _, lifetime) = plain_login(&mut renewing, ADMIN.0, ADMIN.1).expect("answer");
    assert_eq!((code, lifetime), (0, 1500), "re-authentication");
    std::thread::sleep(Duration::from_millis(900));
    assert!(
        metadata_served(&mut renewing, 5),
        "a renewed session was closed"
    );
    assert!(
        !metadata_served(&mut lapsing, 4),
        "an expired session was served"
    );
    assert!(lapsing.wait_closed(Duration::from_secs(5)));
    b.broker.stop();
}
