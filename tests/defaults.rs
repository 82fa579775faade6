//! The README's start command uses the defaults: data in the relative `./ringmq-data`. Start
//! the binary that way (in a fresh working directory, no --data-dir) and make a record go
//! round trip, then check the data landed under the working directory.

mod common;

use common::{free_port, kafka};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn default_relative_data_dir_serves() {
    let cwd = std::env::temp_dir().join(format!("ringmq-test-defaults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cwd);
    std::fs::create_dir_all(&cwd).expect("create working dir");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "off",
            "--shards",
            "2",
            // Tests never use the default RPC port (other brokers run on this machine).
            "--rpc-listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .current_dir(&cwd)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringmq");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[ringmq] {line}");
            if line.contains("ringmq ready") {
                let _ = tx.send(());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(30));
    let result = std::panic::catch_unwind(|| {
        ready.expect("broker printed `ringmq ready`");
        let addr = format!("127.0.0.1:{port}");
        kafka::create_topic(&addr, "defaults", 2, &[]);
        kafka::produce_all(&addr, "defaults", 2, 0..100, "none", 10);
        assert_eq!(kafka::consume_all(&addr, "defaults", 2, 100, 10).len(), 100);
    });
    let started = Instant::now();
    let _ = child.kill();
    let _ = child.wait();
    assert!(started.elapsed() < Duration::from_secs(10));
    let data = cwd.join("ringmq-data");
    let saw_partition = data.join("defaults-0").is_dir();
    let _ = std::fs::remove_dir_all(&cwd);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(saw_partition, "partition directory under ./ringmq-data");
}
