//! Measurement (ignored in CI): the node-to-node transport's request/response round trip
//! (`Rpc::request` to a handler that answers with `Rpc::reply`) between two network
//! namespaces, next to a plain TCP ping-pong of the same payload between the same two
//! namespaces, both on glommio, in one run:
//!
//! `cargo test --release --test rpc_rtt -- --ignored --nocapture`
//!
//! The test starts two copies of its own binary, one in each namespace (the role comes in
//! `RINGMQ_RTT_ROLE`): a server that answers both, and a client that alternates blocks of
//! RPC and TCP round trips (so both see the same machine load) and prints the medians and
//! 99th percentiles. A request that fails or a reply with other bytes fails the test.

mod common;

use common::netns::{self, NetCluster};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use ringmq::rpc::{Rpc, RpcConfig};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

const ROLE: &str = "RINGMQ_RTT_ROLE";
const SERVER_IP: &str = "RINGMQ_RTT_SERVER";
const CLIENT_IP: &str = "RINGMQ_RTT_CLIENT";
const TEST_NAME: &str = "rpc_round_trip_vs_tcp_ping_pong_measured";
/// Round trips of each kind, measured (after [`WARMUP`] unmeasured ones).
const ROUNDS: usize = 5_000;
const WARMUP: usize = 200;
/// Round trips of one kind before switching to the other.
const BLOCK: usize = 500;
const PAYLOAD_BYTES: usize = 64;
const KIND_ECHO: u16 = 300;
const RPC_PORT: u16 = 33145;
const TCP_PORT: u16 = 33146;
/// The server gives up after this long in any case.
const SERVER_LIFETIME: Duration = Duration::from_secs(120);

fn run_in_executor<F: std::future::Future<Output = ()> + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || async move { f().await })
        .expect("executor")
        .join()
        .expect("executor ran");
}

async fn server(ip: String) {
    let rpc = Rpc::new(RpcConfig::new(1, "rtt", &format!("{ip}:{RPC_PORT}")));
    let listener = glommio::net::TcpListener::bind(format!("{ip}:{RPC_PORT}")).expect("rpc bind");
    glommio::spawn_local(rpc.clone().serve(listener)).detach();
    let inbox = rpc.subscribe(KIND_ECHO).expect("subscribe");
    let echo = rpc.clone();
    glommio::spawn_local(async move {
        while let Some(m) = inbox.recv().await {
            let _ = echo.reply(&m, m.payload.clone());
        }
    })
    .detach();
    let tcp = glommio::net::TcpListener::bind(format!("{ip}:{TCP_PORT}")).expect("tcp bind");
    glommio::spawn_local(async move {
        while let Ok(mut s) = tcp.accept().await {
            let _ = s.set_nodelay(true);
            glommio::spawn_local(async move {
                let mut buf = [0u8; PAYLOAD_BYTES];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            })
            .detach();
        }
    })
    .detach();
    println!("server ready");
    glommio::timer::sleep(SERVER_LIFETIME).await;
}

/// Median and 99th percentile in µs.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

async fn rpc_round_trip(rpc: &Rpc, payload: &bytes::Bytes) -> Duration {
    let t = Instant::now();
    let got = rpc
        .request(1, KIND_ECHO, payload.clone(), Duration::from_secs(5))
        .await
        .expect("rpc round trip");
    let d = t.elapsed();
    assert_eq!(&got, payload, "rpc echo");
    d
}

async fn tcp_round_trip(s: &mut glommio::net::TcpStream, payload: &[u8]) -> Duration {
    let mut buf = [0u8; PAYLOAD_BYTES];
    let t = Instant::now();
    s.write_all(payload).await.expect("tcp write");
    s.read_exact(&mut buf).await.expect("tcp read");
    let d = t.elapsed();
    assert_eq!(&buf[..], payload, "tcp echo");
    d
}

async fn client(server_ip: String, ip: String) {
    let rpc = Rpc::new(RpcConfig::new(2, "rtt", &format!("{ip}:{RPC_PORT}")));
    let listener = glommio::net::TcpListener::bind(format!("{ip}:{RPC_PORT}")).expect("bind");
    glommio::spawn_local(Rc::clone(&rpc).serve(listener)).detach();
    rpc.set_peer(1, format!("{server_ip}:{RPC_PORT}").parse().unwrap());
    let mut tcp = glommio::net::TcpStream::connect(format!("{server_ip}:{TCP_PORT}"))
        .await
        .expect("tcp connect");
    tcp.set_nodelay(true).expect("nodelay");
    let payload = bytes::Bytes::from(vec![0x5a; PAYLOAD_BYTES]);
    for _ in 0..WARMUP {
        rpc_round_trip(&rpc, &payload).await;
        tcp_round_trip(&mut tcp, &payload).await;
    }
    let (mut rpc_times, mut tcp_times) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while rpc_times.len() < ROUNDS && started.elapsed() < Duration::from_secs(60) {
        for _ in 0..BLOCK {
            rpc_times.push(rpc_round_trip(&rpc, &payload).await);
        }
        for _ in 0..BLOCK {
            tcp_times.push(tcp_round_trip(&mut tcp, &payload).await);
        }
    }
    let n = (rpc_times.len(), tcp_times.len());
    let (rpc_p50, rpc_p99) = percentiles(rpc_times);
    let (tcp_p50, tcp_p99) = percentiles(tcp_times);
    println!(
        "RESULT rpc n={} median_us={rpc_p50:.1} p99_us={rpc_p99:.1} | tcp n={} median_us={tcp_p50:.1} p99_us={tcp_p99:.1}",
        n.0, n.1
    );
}

/// This test binary, in namespace `ns`, running only this test in `role`.
fn role_command(ns: &str, role: &str, server_ip: &str, client_ip: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(exe)
        .args([
            TEST_NAME,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ROLE, role)
        .env(SERVER_IP, server_ip)
        .env(CLIENT_IP, client_ip);
    cmd
}

#[test]
#[ignore = "measurement: about 10 s"]
fn rpc_round_trip_vs_tcp_ping_pong_measured() {
    if let Ok(role) = std::env::var(ROLE) {
        let server_ip = std::env::var(SERVER_IP).expect("server ip");
        let client_ip = std::env::var(CLIENT_IP).expect("client ip");
        match role.as_str() {
            "server" => run_in_executor(move || server(server_ip)),
            _ => run_in_executor(move || client(server_ip, client_ip)),
        }
        return;
    }
    assert!(
        netns::available(),
        "this measurement needs root, ip and iptables"
    );
    let c = NetCluster::create("rtt", 2);
    let (s_ip, c_ip) = (c.nodes[0].ip.clone(), c.nodes[1].ip.clone());
    let mut srv = role_command(&c.nodes[0].ns, "server", &s_ip, &c_ip)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server");
    let mut out = srv.stdout.take().unwrap();
    let ready = std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 256];
        while !text.contains("server ready") {
            match std::io::Read::read(&mut out, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        text.contains("server ready")
    });
    assert!(ready.join().unwrap(), "server started");
    let result = role_command(&c.nodes[1].ns, "client", &s_ip, &c_ip)
        .output()
        .expect("client");
    let _ = srv.kill();
    let _ = srv.wait();
    let text = String::from_utf8_lossy(&result.stdout);
    let line = text
        .lines()
        .find_map(|l| l.find("RESULT").map(|at| &l[at..]))
        .unwrap_or_else(|| {
            panic!(
                "no result: {text}{}",
                String::from_utf8_lossy(&result.stderr)
            )
        });
    println!("{line}");
    let counts: Vec<usize> = line
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("n=")?.parse().ok())
        .collect();
    assert!(
        counts.len() == 2 && counts.iter().all(|&n| n >= 1_000),
        "{line}"
    );
}
