//! Shared helpers for the integration tests: they start the real `ringmq` binary and talk to it
//! over TCP, exactly as a user's client would.
//!
//! - [`Broker`] owns one broker process: a free loopback port, a data dir on the real disk
//!   (`std::env::temp_dir()`, ext4 here; never tmpfs, where glommio turns direct I/O off), its
//!   stderr forwarded line by line to the test output and kept for assertions, and the life-cycle
//!   verbs the crash tests need (`kill_hard`, `stop`, `restart`).
//! - [`RawConn`] sends arbitrary bytes and reads one Kafka frame, with timeouts, for the
//!   bad-input tests; it never uses ringmq's own codec so the tests stay independent of it.
//! - [`wire`] hand-encodes the few request pieces the raw tests need.
//! - [`oracle`] sends one request through the kafka-protocol crate's codec.
//! - [`kafka`] wraps the rdkafka (librdkafka) client used as the "normal client" everywhere.
//!
//! Each test binary includes this module and uses a different subset of it.
#![allow(dead_code)]

pub mod kafka;
pub mod netns;
pub mod oracle;
pub mod wire;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a broker may take from spawn to its `ready` line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Stderr lines kept per broker for assertions (older ones are dropped).
const LOG_LINES_KEPT: usize = 20_000;

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// One `ringmq serve` process and the data dir it owns.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// The node-to-node (RPC and gossip) port, free like `port`; kept across restarts.
    pub rpc_port: u16,
    pub data_dir: PathBuf,
    args: Vec<String>,
    /// Environment variables set for the broker process (over the test's own).
    env: Vec<(String, String)>,
    log: Arc<Mutex<VecDeque<String>>>,
    starts: u32,
}

impl Broker {
    /// Starts a broker with `--shards shards` plus `extra` args, in a fresh data dir.
    pub fn start(name: &str, shards: usize, extra: &[&str]) -> Broker {
        let data_dir = fresh_data_dir(name);
        let mut args: Vec<String> = vec!["--shards".into(), shards.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Broker::start_in(data_dir, free_port(), args)
    }

    /// [`Broker::start`] with environment variables set for the broker process.
    pub fn start_with_env(
        name: &str,
        shards: usize,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Broker {
        let mut args: Vec<String> = vec!["--shards".into(), shards.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Broker::start_in_with_env(fresh_data_dir(name), free_port(), args, env)
    }

    /// Starts a broker on `port` over an existing (or new) `data_dir`.
    pub fn start_in(data_dir: PathBuf, port: u16, args: Vec<String>) -> Broker {
        Broker::start_in_with_env(data_dir, port, args, Vec::new())
    }

    /// [`Broker::start_in`] with environment variables for the broker process. With
    /// `--listeners` among `args`, `port` must be one of them (no `--listen` is added).
    pub fn start_in_with_env(
        data_dir: PathBuf,
        port: u16,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Broker {
        raise_nofile_limit();
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let mut broker = Broker {
            child: None,
            port,
            rpc_port: free_port(),
            data_dir,
            args,
            env,
            log: Arc::new(Mutex::new(VecDeque::new())),
            starts: 0,
        };
        broker.spawn();
        broker
    }

    /// `127.0.0.1:PORT`, the bootstrap address for clients.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is not running").id()
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let listen = self.addr();
        let data_dir = self.data_dir.to_string_lossy().into_owned();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringmq"));
        cmd.arg("serve").args(["--data-dir", &data_dir]);
        if !self.args.iter().any(|a| a == "--listeners") {
            cmd.args(["--listen", &listen]);
        }
        // Never the default RPC port: many brokers run on this machine at once.
        if !self.args.iter().any(|a| a == "--rpc-listen") {
            cmd.args(["--rpc-listen", &format!("127.0.0.1:{}", self.rpc_port)]);
        }
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Ok(mut log) = self.log.lock() {
            log.push_back(start_marker(self.starts));
        }
        let mut child = cmd.spawn().expect("spawn ringmq binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let log = Arc::clone(&self.log);
        let tag = format!("ringmq:{}#{}", self.port, self.starts);
        thread::spawn(move || forward_stderr(stderr, tag, log, ready_tx));
        self.child = Some(child);
        self.wait_ready(ready_rx);
    }

    fn wait_ready(&mut self, ready_rx: mpsc::Receiver<()>) {
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.kill_quietly();
                panic!(
                    "broker did not print `ready` within {READY_TIMEOUT:?}; log:\n{}",
                    self.log_text()
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.as_mut().and_then(|c| c.wait().ok());
                self.child = None;
                panic!(
                    "broker exited before `ready` (status {status:?}); log:\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// SIGKILL, then reap. The data dir is left as the crash left it.
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("kill_hard: broker is not running");
        signal(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }

    /// SIGTERM and wait; the broker must exit 0 within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("stop: broker is not running");
        signal(child.id(), libc::SIGTERM);
        match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(status) => assert!(
                status.success(),
                "broker exited with {status} after SIGTERM; log:\n{}",
                self.log_text()
            ),
            None => {
                signal(child.id(), libc::SIGKILL);
                let _ = child.wait();
                panic!(
                    "broker did not exit within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// Starts the binary again with the same args, port and data dir.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "restart: stop or kill the broker first"
        );
        self.spawn();
    }

    /// Waits up to `timeout` for the broker to exit by itself; `None` (after a SIGKILL) if it
    /// did not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("wait_exit: broker is not running");
        let status = wait_timeout(&mut child, timeout);
        if status.is_none() {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
        status
    }

    /// Replaces the environment variables set for the next start.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Starts the binary again on the same port and data dir, with other args.
    pub fn restart_with(&mut self, args: Vec<String>) {
        self.args = args;
        self.restart();
    }

    /// Panics with the log if the process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("broker is not running");
        if let Ok(Some(status)) = child.try_wait() {
            self.child = None;
            panic!("broker died ({status}); log:\n{}", self.log_text());
        }
    }

    /// Every stderr line seen so far, across restarts (bounded to the newest lines).
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The stderr lines of the current (latest) process only.
    pub fn log_since_last_start(&self) -> Vec<String> {
        let mut lines = self.log_lines();
        let marker = start_marker(self.starts);
        match lines.iter().rposition(|l| *l == marker) {
            Some(at) => lines.split_off(at + 1),
            None => lines,
        }
    }

    pub fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// Current resident set size of the broker process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:") * 1024
    }

    /// Peak resident set size of the current broker process, in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:") * 1024
    }

    fn kill_quietly(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill_quietly();
        if thread::panicking() {
            eprintln!(
                "keeping data dir of failed test: {}",
                self.data_dir.display()
            );
        } else {
            remove_dir_retrying(&self.data_dir);
        }
    }
}

/// `remove_dir_all`, retried for a second: I/O the killed broker left in flight (io_uring
/// requests finish after the process is reaped) can make one pass fail with ENOTEMPTY.
fn remove_dir_retrying(dir: &Path) {
    for _ in 0..10 {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove data dir {}: {e}", dir.display());
    }
}

fn forward_stderr(
    stderr: std::process::ChildStderr,
    tag: String,
    log: Arc<Mutex<VecDeque<String>>>,
    ready_tx: mpsc::Sender<()>,
) {
    let mut ready_sent = false;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        eprintln!("[{tag}] {line}");
        if !ready_sent && says_ready(&line) {
            ready_sent = true;
            let _ = ready_tx.send(());
        }
        if let Ok(mut log) = log.lock() {
            if log.len() == LOG_LINES_KEPT {
                log.pop_front();
            }
            log.push_back(line);
        }
    }
    // Dropping ready_tx here tells wait_ready the process ended before `ready`.
}

fn start_marker(start: u32) -> String {
    format!("===== ringmq test harness: start #{start} =====")
}

/// The line has the word `ready` (any case) on its own, not inside "already".
fn says_ready(line: &str) -> bool {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w.eq_ignore_ascii_case("ready"))
}

/// A unique directory under the system temp dir (ext4 on the CI machine).
pub fn fresh_data_dir(name: &str) -> PathBuf {
    let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringmq-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

static PORT_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A loopback port that was free a moment ago, chosen below the kernel's ephemeral range so
/// that no client connection (which takes its local port from that range) can grab it between
/// a kill and a restart. Distinct per call within this process; spread by pid across processes.
pub fn free_port() -> u16 {
    const LOWEST: u64 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|w| w.parse::<u64>().ok())
        })
        .unwrap_or(32_768);
    let span = ephemeral_low.saturating_sub(LOWEST).max(1_000);
    let start = u64::from(std::process::id()) * 7_919;
    for _ in 0..span {
        let n = PORT_COUNTER.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOWEST + (start + n * 37) % span).expect("port fits u16");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {ephemeral_low}");
}

fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory effects; the pid is our own unreaped child.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for broker: {e}"),
        }
    }
    None
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Lifts this process's soft open-files limit to the hard limit; the broker inherits it.
/// The idle-connections test holds 1,000 sockets on each side.
pub fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Every file under `dir`, recursively.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Small deterministic PRNG (xorshift64*) so failures replay from a printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Seed from `RINGMQ_TEST_SEED` if set, else from the clock; printed either way.
    pub fn from_env_or_time(what: &str) -> Rng {
        let seed = std::env::var("RINGMQ_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x5eed)
            });
        eprintln!("{what}: seed {seed} (replay with RINGMQ_TEST_SEED={seed})");
        Rng::new(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `lo..hi` (hi exclusive, hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// What a raw read saw.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// One whole response frame (without its 4-byte size).
    Frame(Vec<u8>),
    /// The broker closed (EOF or reset) before a whole frame arrived.
    Closed,
    /// Nothing conclusive within the timeout.
    TimedOut,
}

/// A plain TCP connection for hand-made bytes.
pub struct RawConn {
    pub stream: TcpStream,
}

impl RawConn {
    pub fn connect(addr: &str) -> RawConn {
        let sock_addr = addr.parse().expect("addr is IP:PORT");
        let stream = TcpStream::connect_timeout(&sock_addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("raw connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .expect("write timeout");
        RawConn { stream }
    }

    /// Writes all of `bytes`; returns false if the broker had already closed or reset.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Half-closes our side (the broker sees EOF).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads one size-prefixed frame. Frames over 64 MiB are refused as a test failure.
    pub fn read_frame(&mut self, timeout: Duration) -> ReadOutcome {
        let deadline = Instant::now() + timeout;
        let mut size = [0u8; 4];
        match self.read_exact_by(&mut size, deadline) {
            Ok(()) => {}
            Err(outcome) => return outcome,
        }
        let len = i32::from_be_bytes(size);
        assert!(
            (0..64 << 20).contains(&len),
            "broker sent a frame size of {len}"
        );
        let mut body = vec![0u8; len as usize];
        match self.read_exact_by(&mut body, deadline) {
            Ok(()) => ReadOutcome::Frame(body),
            Err(outcome) => outcome,
        }
    }

    /// Waits until the broker closes the connection, discarding anything it sends.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    fn read_exact_by(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), ReadOutcome> {
        let mut filled = 0;
        while filled < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadOutcome::TimedOut);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => return Err(ReadOutcome::Closed),
                Ok(n) => filled += n,
                Err(e) if is_timeout(&e) => return Err(ReadOutcome::TimedOut),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadOutcome::Closed),
            }
        }
        Ok(())
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// One HTTP/1.1 GET on loopback `port` (the broker's `--metrics-listen`): (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read response");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
