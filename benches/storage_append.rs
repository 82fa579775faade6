//! Storage benchmarks: the partition log against the raw disk, side by side in one run.
//!
//! `cargo bench --bench storage_append` (release). Writes under `$RINGMQ_BENCH_DIR` or the
//! system temp directory (must be a real filesystem: tmpfs disables O_DIRECT).
//! `RINGMQ_BENCH_MIB` sets the volume per run (default 512); `RINGMQ_BENCH_ONLY` picks sections
//! (comma-separated: raw, append16k, append1m, sync, durable, reads);
//! `RINGMQ_BENCH_IO_MEMORY_MIB` the executor's DMA buffer pool (default 32).
//!
//! Prints, per scenario, the cost per operation and a checksum of the data so a run that
//! did no work is visible. Measures:
//! 1. raw O_DIRECT sequential write (1 MiB blocks, queue depth 1 and 8), fresh vs preallocated file;
//! 2. `append` throughput with 1 KiB records in 16 KiB and 1 MiB batches, with and without
//!    preallocation (flush at the end, then one fdatasync);
//! 3. durability `always`: 1, 8 and 64 producers each appending one 1 KiB record and awaiting
//!    `sync_through`; records/s and ack latency next to the raw 4 KiB write+fdatasync latency;
//! 4. reads: tail from the batch cache, cold reads from disk, raw O_DIRECT read bandwidth;
//! 5. recovery time after a "crash" (no close) with and without a checkpoint.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::io::{DmaFile, OpenOptions};
use hdrhistogram::Histogram;
use ringmq::io::dma::DmaDisk;
use ringmq::model::LeaderEpoch;
use ringmq::storage::{BatchCache, LogConfig, PartitionLog};

const MIB: usize = 1 << 20;

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One uncompressed RecordBatch v2 of `records` records with `value_bytes`-byte values.
fn make_batch(records: usize, value_bytes: usize) -> Bytes {
    let value = vec![b'x'; value_bytes];
    let mut body = Vec::with_capacity(records * (value_bytes + 16));
    for i in 0..records {
        let mut rec = vec![0u8];
        put_varint(&mut rec, 0);
        put_varint(&mut rec, i as i64);
        put_varint(&mut rec, -1);
        put_varint(&mut rec, value_bytes as i64);
        rec.extend_from_slice(&value);
        put_varint(&mut rec, 0);
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let mut b = Vec::with_capacity(61 + body.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(records as i32 - 1).to_be_bytes());
    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(records as i32).to_be_bytes());
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn fresh_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

async fn raw_write(dir: &Path, total: usize, depth: usize, preallocate: bool) -> f64 {
    let path = dir.join(format!("raw-{depth}-{preallocate}"));
    let file = Rc::new(
        OpenOptions::new()
            .write(true)
            .read(true)
            .create(true)
            .dma_open(&path)
            .await
            .expect("open"),
    );
    if preallocate {
        file.pre_allocate(total as u64, false)
            .await
            .expect("fallocate");
        file.fdatasync().await.expect("sync");
    }
    let start = Instant::now();
    let blocks = total / MIB;
    let mut next = 0;
    while next < blocks {
        let wave: Vec<_> = (next..(next + depth).min(blocks))
            .map(|i| {
                let file = file.clone();
                glommio::spawn_local(async move {
                    let mut buf = file.alloc_dma_buffer(MIB);
                    buf.as_bytes_mut().fill(i as u8);
                    file.write_at(buf, (i * MIB) as u64).await.expect("write");
                })
            })
            .collect();
        next += wave.len();
        for w in wave {
            w.await;
        }
    }
    file.fdatasync().await.expect("sync");
    let elapsed = start.elapsed();
    let _ = std::fs::remove_file(&path);
    mb_per_s(total, elapsed)
}

async fn raw_read(path: &Path, total: usize) -> f64 {
    let file = DmaFile::open(path).await.expect("open");
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..total / MIB {
        let r = file
            .read_at_aligned((i * MIB) as u64, MIB)
            .await
            .expect("read");
        sum += u64::from(r[0]);
    }
    let elapsed = start.elapsed();
    println!("  (raw read checksum {sum})");
    mb_per_s(total, elapsed)
}

/// 4 KiB write + fdatasync latency: overwriting the same 1 MiB, or appending (the file grows,
/// so each fdatasync also commits the new size: what an unpreallocated log does).
async fn raw_sync_latency(dir: &Path, extending: bool) -> (u64, u64) {
    let path = dir.join("sync-probe");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .dma_open(&path)
        .await
        .expect("open");
    let mut hist = Histogram::<u64>::new(3).expect("hist");
    for i in 0..2000u64 {
        let buf = file.alloc_dma_buffer(4096);
        let t = Instant::now();
        let block = if extending { i } else { i % 256 };
        file.write_at(buf, block * 4096).await.expect("write");
        file.fdatasync().await.expect("sync");
        hist.record(t.elapsed().as_micros() as u64).expect("record");
    }
    let _ = std::fs::remove_file(&path);
    (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99))
}

async fn append_throughput(dir: &Path, total: usize, batch: &Bytes, preallocate: bool) -> f64 {
    let config = LogConfig {
        preallocate,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(DmaDisk, dir.to_path_buf(), config, BatchCache::new(0))
        .await
        .expect("open");
    let count = total / batch.len();
    let start = Instant::now();
    let mut last = 0;
    for _ in 0..count {
        last = log
            .append(batch.clone(), LeaderEpoch(0))
            .await
            .expect("append")
            .last_offset;
    }
    log.sync_through(last).await.expect("sync");
    let elapsed = start.elapsed();
    log.remove().await.expect("remove");
    mb_per_s(count * batch.len(), elapsed)
}

async fn durable_producers(dir: &Path, producers: usize, run_for: Duration) -> (f64, u64, u64) {
    let log = PartitionLog::open(
        DmaDisk,
        dir.to_path_buf(),
        LogConfig::default(),
        BatchCache::new(64 * MIB),
    )
    .await
    .expect("open");
    let batch = make_batch(1, 1024);
    let hist = Rc::new(RefCell::new(Histogram::<u64>::new(3).expect("hist")));
    let acked = Rc::new(RefCell::new(0usize));
    let deadline = Instant::now() + run_for;
    let tasks: Vec<_> = (0..producers)
        .map(|_| {
            let (log, batch, hist, acked) =
                (log.clone(), batch.clone(), hist.clone(), acked.clone());
            glommio::spawn_local(async move {
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let info = log
                        .append(batch.clone(), LeaderEpoch(0))
                        .await
                        .expect("append");
                    log.sync_through(info.last_offset).await.expect("sync");
                    hist.borrow_mut()
                        .record(t.elapsed().as_micros() as u64)
                        .expect("record");
                    *acked.borrow_mut() += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    log.remove().await.expect("remove");
    let h = hist.borrow();
    let records = *acked.borrow();
    (
        records as f64 / run_for.as_secs_f64(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
    )
}

async fn read_all(log: &PartitionLog<DmaDisk>) -> (usize, Duration, bool) {
    let start = Instant::now();
    let (mut at, mut bytes, mut all_cached) = (log.log_start_offset(), 0, true);
    while at < log.log_end_offset() {
        let r = log.read(at, MIB).await.expect("read");
        all_cached &= r.from_cache;
        bytes += r.total_bytes;
        let last = r.batches.last().expect("non-empty read");
        let last_offset_delta = i32::from_be_bytes(last[23..27].try_into().expect("4 bytes"));
        at = i64::from_be_bytes(last[0..8].try_into().expect("8 bytes"))
            + i64::from(last_offset_delta)
            + 1;
    }
    (bytes, start.elapsed(), all_cached)
}

async fn reads_and_recovery(dir: &Path, total: usize) {
    let batch = make_batch(16, 1024);
    let cache = BatchCache::new(total + 64 * MIB);
    let log = PartitionLog::open(DmaDisk, dir.to_path_buf(), LogConfig::default(), cache)
        .await
        .expect("open");
    for _ in 0..total / batch.len() {
        log.append(batch.clone(), LeaderEpoch(0))
            .await
            .expect("append");
    }
    log.flush().await.expect("flush");
    let (bytes, elapsed, cached) = read_all(&log).await;
    println!(
        "read tail from cache: {:8.0} MB/s ({bytes} bytes, all cached: {cached})",
        mb_per_s(bytes, elapsed)
    );
    log.sync_through(log.log_end_offset()).await.expect("sync");
    drop(log); // a crash as far as the files know: no close, no final checkpoint

    let t = Instant::now();
    let log = PartitionLog::open(
        DmaDisk,
        dir.to_path_buf(),
        LogConfig::default(),
        BatchCache::new(0),
    )
    .await
    .expect("reopen");
    println!(
        "recovery, {} MiB log, checkpoint every 64 MiB: {:?}",
        total / MIB,
        t.elapsed()
    );
    let (bytes, elapsed, cached) = read_all(&log).await;
    println!(
        "read cold from disk:   {:8.0} MB/s ({bytes} bytes, all cached: {cached})",
        mb_per_s(bytes, elapsed)
    );
    drop(log);
    let _ = std::fs::remove_file(dir.join("checkpoint"));
    let t = Instant::now();
    let log = PartitionLog::open(
        DmaDisk,
        dir.to_path_buf(),
        LogConfig::default(),
        BatchCache::new(0),
    )
    .await
    .expect("reopen");
    println!(
        "recovery without a checkpoint (full scan): {:?}",
        t.elapsed()
    );
    let segment = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("a segment");
    // Both again, now that the virtual disk's host cache holds the data: compare like with like.
    for pass in ["again", "third"] {
        let raw = raw_read(&segment, total.min(256 * MIB)).await;
        println!("raw O_DIRECT read 1 MiB qd1 ({pass}): {raw:8.0} MB/s");
        let (bytes, elapsed, _) = read_all(&log).await;
        println!(
            "read from disk ({pass}): {:8.0} MB/s",
            mb_per_s(bytes, elapsed)
        );
    }
    log.remove().await.expect("remove");
}

fn environment() {
    let sha = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output();
    let sha = sha
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .unwrap_or_default()
        .to_string();
    println!("git {sha} · kernel {} · {cpu}", kernel.trim());
}

fn main() {
    environment();
    let root = std::env::var_os("RINGMQ_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let total = std::env::var("RINGMQ_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
        * MIB;
    println!("bench dir {} · {} MiB per run", root.display(), total / MIB);
    glommio::LocalExecutorBuilder::default()
        .io_memory(std::env::var("RINGMQ_BENCH_IO_MEMORY_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(32) * MIB)
        .spawn(move || async move {
            let dir = fresh_dir(&root, "ringmq-bench");
            // Before any raw DmaFile: see ringmq::io::dma::probe_iopoll_once.
            ringmq::io::dma::probe_iopoll_once(&dir).await.expect("probe");
            let only = std::env::var("RINGMQ_BENCH_ONLY").unwrap_or_default();
            let on = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
            for (depth, prealloc) in [(1, false), (1, true), (8, false), (8, true)] {
                if !on("raw") {
                    break;
                }
                let speed = raw_write(&dir, total, depth, prealloc).await;
                println!("raw O_DIRECT write 1 MiB qd{depth} preallocated={prealloc}: {speed:8.0} MB/s");
            }
            for (batch_bytes, records) in [(16 * 1024, 15), (MIB, 1000)] {
                if !on(if batch_bytes == MIB { "append1m" } else { "append16k" }) {
                    continue;
                }
                let batch = make_batch(records, 1024);
                // Alternate twice: the machine is noisy, compare neighbours.
                for prealloc in [false, true, false, true] {
                    let log_dir = fresh_dir(&dir, "append");
                    let speed = append_throughput(&log_dir, total, &batch, prealloc).await;
                    println!(
                        "append {} KiB batches of 1 KiB records, preallocate={prealloc}: {speed:8.0} MB/s",
                        batch_bytes / 1024
                    );
                }
            }
            for extending in [false, true] {
                if !on("sync") {
                    break;
                }
                let (p50, p99) = raw_sync_latency(&dir, extending).await;
                println!("raw 4 KiB write + fdatasync, extending={extending}: p50 {p50} µs, p99 {p99} µs");
            }
            for producers in [1, 8, 64] {
                if !on("durable") {
                    break;
                }
                let log_dir = fresh_dir(&dir, "durable");
                let (rate, p50, p99) = durable_producers(&log_dir, producers, Duration::from_secs(3)).await;
                println!("durable acks, {producers:2} producers: {rate:9.0} records/s, ack p50 {p50} µs, p99 {p99} µs");
            }
            if on("reads") {
                reads_and_recovery(&fresh_dir(&dir, "reads"), total).await;
            }
            let _ = std::fs::remove_dir_all(&dir);
        })
        .expect("spawn")
        .join()
        .expect("bench executor");
}
