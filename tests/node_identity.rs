//! Node identity and placement of shards, with the real binary: `--node-id` is persisted in the
//! data dir at the first start and a restart with another node id or another cluster id is
//! refused with a clear message; a data dir from before node ids is node 0; Metadata names the
//! node id; shard i runs on the i-th CPU of the process's affinity mask.

mod common;

use common::{kafka, Broker};
use rdkafka::consumer::Consumer;
use std::process::{Command, Stdio};

/// Starts `ringmq serve` over `dir` with `args` and expects it to refuse: returns its stderr.
fn refused_start(dir: &std::path::Path, args: &[&str]) -> String {
    let port = common::free_port().to_string();
    let rpc = format!("127.0.0.1:{}", common::free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--rpc-listen",
            &rpc,
            "--metrics-listen",
            "off",
            "--shards",
            "1",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ringmq");
    assert_eq!(out.status.code(), Some(1), "ringmq should refuse to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn node_id_is_persisted_and_a_different_one_is_refused() {
    let args = [
        "--metrics-listen",
        "off",
        "--node-id",
        "3",
        "--cluster-id",
        "c-one",
    ];
    let mut b = Broker::start("identity", 1, &args);
    assert_eq!(kafka::broker_ids(&b.addr()), vec![3]);
    b.stop();
    let e = refused_start(&b.data_dir, &["--node-id", "4"]);
    assert!(e.contains("belongs to node 3"), "{e}");
    let e = refused_start(&b.data_dir, &["--cluster-id", "c-two"]);
    assert!(e.contains("belongs to cluster 'c-one'"), "{e}");
    b.restart();
    assert_eq!(kafka::broker_ids(&b.addr()), vec![3]);
}

#[test]
fn restart_keeps_the_node_id_without_the_flag() {
    let mut b = Broker::start(
        "identity-keep",
        1,
        &["--metrics-listen", "off", "--node-id", "5"],
    );
    b.stop();
    b.restart_with(vec!["--metrics-listen".into(), "off".into()]);
    assert_eq!(kafka::broker_ids(&b.addr()), vec![5]);
}

#[test]
fn legacy_data_dir_is_node_zero() {
    let mut b = Broker::start("identity-legacy", 1, &["--metrics-listen", "off"]);
    kafka::create_topic(&b.addr(), "legacy", 1, &[]);
    b.stop();
    // A data dir written before node ids and the controller: metadata.bin (the NameServer
    // image) and partitions; no node.id, no controller log or snapshot.
    let mut image = ringmq::cluster::MetadataImage::default();
    let create = ringmq::cluster::Command::CreateTopic {
        name: "legacy".into(),
        topic_id: [7; 16],
        configs: Default::default(),
        replicas: vec![vec![0]],
    };
    ringmq::cluster::apply(&mut image, &create).expect("legacy image");
    image.version = 3;
    let bin = ringmq::cluster::encode_file(&image);
    std::fs::write(b.data_dir.join("metadata.bin"), bin).expect("metadata.bin");
    for f in ["node.id", "controller.log", "controller.snap"] {
        std::fs::remove_file(b.data_dir.join(f)).expect("written by the first start");
    }
    let e = refused_start(&b.data_dir, &["--node-id", "2"]);
    assert!(e.contains("predates node ids"), "{e}");
    b.restart();
    assert_eq!(kafka::broker_ids(&b.addr()), vec![0]);
    assert!(b.data_dir.join("node.id").is_file());
    // metadata.bin became the controller's first snapshot: the topic is served.
    let consumer = kafka::consumer(&b.addr());
    let md = consumer
        .fetch_metadata(Some("legacy"), std::time::Duration::from_secs(10))
        .expect("metadata");
    let t = &md.topics()[0];
    assert!(
        t.error().is_none() && t.partitions().len() == 1,
        "{:?}",
        t.error()
    );
    assert!(b.data_dir.join("controller.snap").is_file());
}

/// Affinity lists of the broker threads whose name starts with `prefix` (glommio names a
/// shard's threads `shard-I-N`).
fn thread_cpus(pid: u32, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let cpus = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string());
            out.extend(cpus);
        }
    }
    out
}

#[test]
fn shards_run_on_the_allowed_cpus() {
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| {
            // SAFETY: plain-data cpu_set_t read for this thread.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0
                    && libc::CPU_ISSET(c, &set)
            }
        })
        .collect();
    let last = *cpus.last().expect("a CPU");
    // Spawn the broker from a thread restricted to the last CPU, as `taskset -c N` would.
    let broker = std::thread::spawn(move || {
        // SAFETY: plain-data cpu_set_t, applied to this thread only (the child inherits it).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(last, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
        Broker::start("affinity", 2, &["--metrics-listen", "off"])
    })
    .join()
    .expect("spawn thread");
    let want = last.to_string();
    for shard in ["shard-0-", "shard-1-"] {
        let seen = thread_cpus(broker.pid(), shard);
        assert!(!seen.is_empty(), "no {shard} thread");
        assert!(
            seen.iter().all(|c| *c == want),
            "{shard}: {seen:?}, want {want}"
        );
    }
}
