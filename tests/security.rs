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
//! - TLS (SSL, SASL_SSL) with a throwaway CA made by openssl: kcat and kafka-python produce
//!   and consume (kafka-python in a group), `ringmq user create` and `topic list` connect over
//!   TLS; bytes that are not TLS, a garbage ClientHello and a silent client close only their
//!   connection; mutual TLS refuses clients without a certificate of the client CA.
//!
//! Raw frames are hand-encoded (tests/common/wire.rs), independent of ringmq's codec.

mod common;

use common::wire::{self, Reader};
use common::{free_port, fresh_data_dir, http_get, Broker, RawConn, ReadOutcome};
use std::io::Write;
use std::path::PathBuf;
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
        metric_sum(self.metrics_port, name)
    }
}

/// The sum of every series of the counter `name` on `/metrics` (one per shard).
fn metric_sum(metrics_port: u16, name: &str) -> u64 {
    let (_, body) = http_get(metrics_port, "/metrics");
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
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

/// A throwaway CA made with openssl (Debian), the broker's certificate it signed (for
/// `127.0.0.1` and `localhost`), and a client certificate with subject CN `alice`.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(name: &str) -> Certs {
        let dir = fresh_data_dir(&format!("certs-{name}"));
        std::fs::create_dir_all(&dir).expect("certs dir");
        let certs = Certs { dir };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        certs.openssl(
            &[
                &["req", "-x509"],
                &ec[..],
                &["-keyout", "ca.key", "-out", "ca.pem"],
            ]
            .concat(),
            "/CN=ringmq test CA",
        );
        certs.signed(
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        certs.signed(
            "alice",
            "/O=ringmq test/CN=alice",
            "extendedKeyUsage=clientAuth\n",
        );
        certs
    }

    /// `name.key` and `name.pem`, signed by the CA, with `extensions`.
    fn signed(&self, name: &str, subject: &str, extensions: &str) {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(self.dir.join(&ext), extensions).expect("ext file");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        self.openssl(
            &[&["req"], &ec[..], &["-keyout", &key, "-out", &csr]].concat(),
            subject,
        );
        let sign = [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ];
        self.openssl(&sign, "");
    }

    fn openssl(&self, args: &[&str], subject: &str) {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&self.dir).args(args);
        if !subject.is_empty() {
            cmd.args(["-subj", subject, "-days", "2"]);
        }
        let out = cmd.output().expect("openssl (Debian package openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

/// A broker with PLAINTEXT, SSL and SASL_SSL listeners and the bootstrap user.
struct TlsBroker {
    broker: Broker,
    ssl_port: u16,
    sasl_ssl_port: u16,
    metrics_port: u16,
}

impl TlsBroker {
    fn start(name: &str, certs: &Certs, extra: &[&str]) -> TlsBroker {
        let (plain, ssl, sasl_ssl, metrics) = (free_port(), free_port(), free_port(), free_port());
        let listeners = format!(
            "PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},SASL_SSL://127.0.0.1:{sasl_ssl}"
        );
        let mut args: Vec<String> = ["--shards", "2", "--listeners", &listeners, "--tls-cert"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(certs.path("server.pem"));
        args.push("--tls-key".into());
        args.push(certs.path("server.key"));
        args.extend(["--metrics-listen".into(), format!("127.0.0.1:{metrics}")]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let env = vec![(
            "RINGMQ_BOOTSTRAP_USER".to_string(),
            format!("{}:{}", ADMIN.0, ADMIN.1),
        )];
        let broker = Broker::start_in_with_env(fresh_data_dir(name), plain, args, env);
        TlsBroker {
            broker,
            ssl_port: ssl,
            sasl_ssl_port: sasl_ssl,
            metrics_port: metrics,
        }
    }
    fn ssl_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ssl_port)
    }
    fn sasl_ssl_addr(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_ssl_port)
    }
    fn metric(&self, name: &str) -> u64 {
        metric_sum(self.metrics_port, name)
    }
}

/// kcat settings for `protocol` (SSL or SASL_SSL) trusting the test CA; `sasl` adds a login.
fn kcat_tls(
    addr: &str,
    certs: &Certs,
    protocol: &str,
    sasl: Option<(&str, &str, &str)>,
    args: &[&str],
) -> Vec<String> {
    let mut settings = vec![
        ("security.protocol".to_string(), protocol.to_string()),
        ("ssl.ca.location".into(), certs.path("ca.pem")),
    ];
    if let Some((mechanism, user, password)) = sasl {
        settings.push(("sasl.mechanism".into(), mechanism.into()));
        settings.push(("sasl.username".into(), user.into()));
        settings.push(("sasl.password".into(), password.into()));
    }
    let mut v: Vec<String> = ["-b", addr, "-X", "broker.address.family=v4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (k, val) in settings {
        v.push("-X".into());
        v.push(format!("{k}={val}"));
    }
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Produce `n` records labelled `label` with kcat and read the topic back whole.
fn kcat_round_trip(
    settings: impl Fn(&[&str]) -> Vec<String>,
    topic: &str,
    label: &str,
    n: usize,
) -> String {
    let input: String = (0..n).map(|i| format!("{label}-{i}\n")).collect();
    let produce = settings(&["-P", "-t", topic, "-p", "0"]);
    assert_ok(
        &format!("kcat -P {label}"),
        &kcat(&produce, input.as_bytes()),
    );
    let consume = settings(&["-C", "-t", topic, "-o", "beginning", "-e"]);
    let out = assert_ok(&format!("kcat -C {label}"), &kcat(&consume, b""));
    let seen = (0..n)
        .filter(|i| out.lines().any(|l| l == format!("{label}-{i}")))
        .count();
    assert_eq!(seen, n, "kcat {label} read back {seen} of {n}:\n{out}");
    out
}

#[test]
fn ssl_and_sasl_ssl_serve_kcat_kafka_python_and_the_cli() {
    let certs = Certs::make("clients");
    let mut b = TlsBroker::start("tls-clients", &certs, &[]);
    let (ssl, sasl_ssl) = (b.ssl_addr(), b.sasl_ssl_addr());
    kcat_round_trip(
        |a| kcat_tls(&ssl, &certs, "SSL", None, a),
        "tls-kcat",
        "SSL",
        50,
    );
    let admin = Some(("SCRAM-SHA-512", ADMIN.0, ADMIN.1));
    let out = kcat_round_trip(
        |a| kcat_tls(&sasl_ssl, &certs, "SASL_SSL", admin, a),
        "tls-kcat",
        "SASL_SSL",
        50,
    );
    assert_eq!(
        out.lines().count(),
        100,
        "both protocols wrote one topic:\n{out}"
    );
    // ringmq's own CLI over SASL_SSL: a new user, then kafka-python logs in as it.
    let stdin = format!("{}\nbob-pw\n", ADMIN.1);
    let ca = certs.path("ca.pem");
    let args = [
        "user",
        "create",
        "bob",
        "--mechanism",
        "SCRAM-SHA-256",
        "--password-stdin",
        "--bootstrap",
        &sasl_ssl,
        "--security-protocol",
        "SASL_SSL",
        "--tls-ca",
        &ca,
        "--sasl-username",
        ADMIN.0,
        "--sasl-password-stdin",
    ];
    assert_ok(
        "ringmq user create over SASL_SSL",
        &run(env!("CARGO_BIN_EXE_ringmq"), &args, &[], stdin.as_bytes()),
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/kafka_python_sasl.py"
    );
    let logins: [(&str, &str, &[&str]); 2] = [
        ("SSL", &ssl, &[]),
        (
            "SASL_SSL",
            &sasl_ssl,
            &[
                "--mechanism",
                "SCRAM-SHA-256",
                "--user",
                "bob",
                "--password",
                "bob-pw",
            ],
        ),
    ];
    for (protocol, addr, login) in logins {
        let group = format!("py-{protocol}");
        let mut args = vec![
            script,
            "--bootstrap",
            addr,
            "--security-protocol",
            protocol,
            "--cafile",
            &ca,
            "--topic",
            "tls-python",
            "--group",
            &group,
            "--count",
            "100",
        ];
        args.extend_from_slice(login);
        let out = assert_ok(
            &format!("kafka_python_sasl.py {protocol}"),
            &run("python3", &args, &[], b""),
        );
        let label = if login.is_empty() {
            protocol
        } else {
            "SCRAM-SHA-256"
        };
        assert!(out.contains(&format!("OK {label} 100")), "{out}");
    }
    // The CLI over SSL lists what kafka-python wrote.
    let args = [
        "topic",
        "list",
        "--bootstrap",
        &ssl,
        "--security-protocol",
        "SSL",
        "--tls-ca",
        &ca,
    ];
    let listed = assert_ok(
        "ringmq topic list over SSL",
        &run(env!("CARGO_BIN_EXE_ringmq"), &args, &[], b""),
    );
    assert!(
        listed.contains("tls-python") && listed.contains("tls-kcat"),
        "{listed}"
    );
    // Without the CA the CLI refuses the broker's certificate.
    let args = [
        "topic",
        "list",
        "--bootstrap",
        &ssl,
        "--security-protocol",
        "SSL",
    ];
    let out = run(env!("CARGO_BIN_EXE_ringmq"), &args, &[], b"");
    assert!(!out.status.success(), "an unknown CA was trusted");
    assert!(
        !b.broker.log_text().contains(ADMIN.1),
        "a password reached the log"
    );
    b.broker.stop();
}

#[test]
fn bytes_that_are_not_tls_close_only_their_connection() {
    let certs = Certs::make("bad-bytes");
    let mut b = TlsBroker::start(
        "tls-bad-bytes",
        &certs,
        &["--request-read-timeout-ms", "1500"],
    );
    let ssl = b.ssl_addr();
    let list = |what: &str| {
        let args = kcat_tls(&ssl, &certs, "SSL", None, &["-L", "-m", "10"]);
        assert_ok(what, &kcat(&args, b""));
    };
    list("kcat -L over SSL before");
    // A plaintext Kafka request on the TLS port.
    let mut plain = RawConn::connect(&ssl);
    assert!(plain.send(&wire::api_versions_request(0, 1)));
    assert!(
        plain.wait_closed(Duration::from_secs(5)),
        "a plaintext request was kept on the TLS port"
    );
    // Garbage before the handshake, and a TLS handshake record whose content is garbage.
    let mut junk = RawConn::connect(&ssl);
    assert!(junk.send(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(
        junk.wait_closed(Duration::from_secs(5)),
        "garbage kept the connection"
    );
    let mut torn = RawConn::connect(&b.sasl_ssl_addr());
    let mut record = vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c];
    record.extend(std::iter::repeat_n(0xa5u8, 60));
    assert!(torn.send(&record));
    assert!(
        torn.wait_closed(Duration::from_secs(5)),
        "a garbage ClientHello kept the connection"
    );
    // A handshake that never comes is closed after the read timeout.
    let mut silent = RawConn::connect(&ssl);
    let t0 = Instant::now();
    assert!(
        silent.wait_closed(Duration::from_secs(10)),
        "a silent TLS client was kept"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1000),
        "closed after {:?}",
        t0.elapsed()
    );
    // A TLS ClientHello on the PLAINTEXT port reads as a frame of 369 MB: refused.
    let mut hello = RawConn::connect(&b.broker.addr());
    assert!(hello.send(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    assert!(hello.wait_closed(Duration::from_secs(5)));
    assert!(b.metric("ringmq_tls_handshake_failures_total") >= 4);
    list("kcat -L over SSL after");
    b.broker.assert_alive();
    b.broker.stop();
}

#[test]
fn mutual_tls_needs_a_certificate_the_client_ca_signed() {
    let certs = Certs::make("mtls");
    let other = Certs::make("mtls-other");
    let ca = certs.path("ca.pem");
    let mut b = TlsBroker::start("tls-mutual", &certs, &["--tls-client-ca", &ca]);
    let ssl = b.ssl_addr();
    let (ssl_ref, certs_ref) = (&ssl, &certs);
    let with_cert = |c: &Certs| {
        let (pem, key) = (c.path("alice.pem"), c.path("alice.key"));
        move |a: &[&str]| {
            let mut v = kcat_tls(ssl_ref, certs_ref, "SSL", None, &[]);
            v.extend([
                "-X".into(),
                format!("ssl.certificate.location={pem}"),
                "-X".into(),
                format!("ssl.key.location={key}"),
            ]);
            v.extend(a.iter().map(|s| s.to_string()));
            v
        }
    };
    kcat_round_trip(with_cert(&certs), "mtls", "alice", 20);
    for (what, args) in [
        (
            "no client certificate",
            kcat_tls(&ssl, &certs, "SSL", None, &["-L", "-m", "5"]),
        ),
        (
            "another CA's certificate",
            with_cert(&other)(&["-L", "-m", "5"]),
        ),
    ] {
        let out = kcat(&args, b"");
        assert!(!out.status.success(), "kcat with {what} was served");
    }
    assert!(b.metric("ringmq_tls_handshake_failures_total") >= 2);
    b.broker.stop();
}
