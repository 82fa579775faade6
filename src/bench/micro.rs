//! Microbenchmarks: plain timing loops shared by `benches/*.rs` (full size) and by this
//! file's tests (tiny size), so a benchmark that stops compiling or working fails `cargo test`.
//!
//! Run them with `cargo bench` (release) or `cargo bench --bench codec` etc.
//!
//! Every bench returns a [`MicroResult`] with the cost per operation and a checksum of the
//! work's results: printing the checksum keeps the optimizer from deleting the work, and the
//! smoke tests check it against the value the work must produce.
//!
//! * codec: decode a Produce request frame (16 partitions × one 16 KiB batch); encode a Fetch
//!   response of the same shape (record bytes by reference).
//! * CRC-32C over 1 KiB and 1 MiB.
//! * router hand-off: a call and its reply between two glommio executors over `channel_mesh`
//!   (the transport the broker's router uses), carrying a 1 KiB payload.

use crate::client::batch::BatchBuilder;
use crate::protocol::fetch::{FetchResponse, FetchableTopicResponse, PartitionData};
use crate::protocol::header::RequestHeader;
use crate::protocol::produce::{self, PartitionProduceData, ProduceRequest, TopicProduceData};
use crate::protocol::{Reader, Writer};
use bytes::Bytes;
use std::hint::black_box;
use std::time::Instant;

/// The outcome of one microbenchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroResult {
    pub name: String,
    pub iterations: u64,
    pub ns_per_op: f64,
    /// Work-dependent value (sum of results); printed so the work cannot be optimized out.
    pub checksum: u64,
}

impl MicroResult {
    pub fn line(&self) -> String {
        format!(
            "{:<32} {:>12.1} ns/op  {:>10} iterations  checksum {:#018x}",
            self.name, self.ns_per_op, self.iterations, self.checksum
        )
    }
}

/// Time `iterations` calls of `op` after a warm-up of a tenth as many.
pub fn time(name: &str, iterations: u64, mut op: impl FnMut() -> u64) -> MicroResult {
    let mut checksum = 0u64;
    for _ in 0..iterations / 10 {
        black_box(op());
    }
    let start = Instant::now();
    for _ in 0..iterations {
        checksum = checksum.wrapping_add(black_box(op()));
    }
    let ns = start.elapsed().as_nanos() as f64;
    MicroResult {
        name: name.into(),
        iterations,
        ns_per_op: ns / iterations.max(1) as f64,
        checksum,
    }
}

/// One batch of `records` records of `record_bytes` each.
pub fn sample_batch(records: usize, record_bytes: usize) -> Bytes {
    let mut b = BatchBuilder::with_capacity(records * (record_bytes + 16));
    for i in 0..records {
        b.append_with(1_700_000_000_000, None, record_bytes, &[], |v| {
            v.fill(i as u8)
        });
    }
    b.finish().unwrap_or_default()
}

/// A whole Produce request frame (header + body, no size prefix) at version 9.
pub fn produce_request_frame(partitions: i32, batch: &Bytes) -> Bytes {
    let req = ProduceRequest {
        transactional_id: None,
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench".into(),
            partition_data: (0..partitions)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(batch.clone()),
                })
                .collect(),
        }],
    };
    let header = RequestHeader {
        api_key: produce::API_KEY,
        api_version: 9,
        correlation_id: 1,
        client_id: Some("bench".into()),
    };
    let mut w = Writer::new();
    header.encode(&mut w, header.header_version());
    req.encode(&mut w, 9);
    w.finish_contiguous()
}

/// Decode the header and body of a Produce request; checksum = record bytes seen.
pub fn bench_decode_produce(iterations: u64) -> MicroResult {
    let frame = produce_request_frame(16, &sample_batch(16, 1000));
    time("codec/decode_produce_16x16KiB", iterations, || {
        let mut r = Reader::new(frame.clone());
        let Ok(h) = RequestHeader::decode_any(&mut r) else {
            return 0;
        };
        let Ok(req) = ProduceRequest::decode(&mut r, h.api_version) else {
            return 0;
        };
        req.topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .map(|p| p.records.as_ref().map_or(0, |b| b.len() as u64))
            .sum()
    })
}

/// Encode a Fetch v12 response with 16 partitions of one 16 KiB chunk each; checksum =
/// encoded bytes.
pub fn bench_encode_fetch(iterations: u64) -> MicroResult {
    let batch = sample_batch(16, 1000);
    let resp = FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        responses: vec![FetchableTopicResponse {
            topic: "bench".into(),
            partitions: (0..16)
                .map(|i| {
                    let mut p = PartitionData::new(i, 0, 1_000);
                    p.records = vec![batch.clone()];
                    p
                })
                .collect(),
        }],
    };
    time("codec/encode_fetch_16x16KiB", iterations, || {
        let mut w = Writer::new();
        resp.encode(&mut w, 12);
        w.len() as u64
    })
}

/// CRC-32C over `bytes` bytes; checksum = sum of CRCs.
pub fn bench_crc32c(bytes: usize, iterations: u64) -> MicroResult {
    let data: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
    let name = if bytes >= 1 << 20 {
        format!("crc32c/{}MiB", bytes >> 20)
    } else {
        format!("crc32c/{}KiB", bytes >> 10)
    };
    time(&name, iterations, || {
        u64::from(crc32c::crc32c(black_box(&data)))
    })
}

/// Messages of the router hand-off bench.
enum HandOff {
    Call(u64, Bytes),
    Reply(u64),
}

/// Round trips between two executors over a channel mesh, measured on executor 0;
/// checksum = sum of the echoed sequence numbers.
pub fn bench_router_round_trip(iterations: u64) -> Result<MicroResult, String> {
    use glommio::channels::channel_mesh::MeshBuilder;
    use glommio::{LocalExecutorBuilder, Placement};
    let mesh = MeshBuilder::<HandOff, _>::full(2, 1024);
    let payload = Bytes::from(vec![7u8; 1024]);
    let echo = {
        let mesh = mesh.clone();
        LocalExecutorBuilder::new(Placement::Unbound)
            .name("handoff-echo")
            .spawn(move || async move {
                let (senders, receivers) = mesh.join().await.map_err(|_| "mesh join")?;
                let caller = 1 - senders.peer_id(); // ids follow join order
                while let Ok(Some(msg)) = receivers.recv_from(caller).await {
                    let HandOff::Call(seq, body) = msg else {
                        continue;
                    };
                    let _ = senders
                        .send_to(caller, HandOff::Reply(seq + body.len() as u64))
                        .await;
                }
                Ok::<(), &'static str>(())
            })
    }
    .map_err(|e| format!("start echo executor: {e}"))?;
    let caller = LocalExecutorBuilder::new(Placement::Unbound)
        .name("handoff-call")
        .spawn(move || async move {
            let (senders, receivers) = mesh.join().await.map_err(|_| "mesh join")?;
            let echo = 1 - senders.peer_id();
            let mut checksum = 0u64;
            let warmup = iterations / 10;
            let mut start = Instant::now();
            for seq in 0..warmup + iterations {
                if seq == warmup {
                    start = Instant::now();
                }
                senders
                    .send_to(echo, HandOff::Call(seq, payload.clone()))
                    .await
                    .map_err(|_| "send")?;
                match receivers.recv_from(echo).await {
                    Ok(Some(HandOff::Reply(v))) if seq >= warmup => {
                        checksum = checksum.wrapping_add(v)
                    }
                    Ok(Some(_)) => {}
                    _ => return Err("echo executor gone"),
                }
            }
            let ns = start.elapsed().as_nanos() as f64;
            senders.close();
            Ok((ns, checksum))
        })
        .map_err(|e| format!("start caller executor: {e}"))?;
    let (ns, checksum) = caller.join().map_err(|e| format!("caller: {e:?}"))??;
    echo.join().map_err(|e| format!("echo: {e:?}"))??;
    Ok(MicroResult {
        name: "router/hand_off_round_trip_1KiB".into(),
        iterations,
        ns_per_op: ns / iterations.max(1) as f64,
        checksum,
    })
}

/// The CRC-32C of `data`, for checking bench checksums.
pub fn crc_of(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

#[cfg(test)]
mod tests {
    //! Smoke mode: each bench at a tiny size, checksums checked against the expected work.
    use super::*;

    #[test]
    fn codec_benches_do_the_work() {
        let batch_len = sample_batch(16, 1000).len() as u64;
        let r = bench_decode_produce(20);
        assert_eq!(r.checksum, 20 * 16 * batch_len, "{}", r.line());
        let e = bench_encode_fetch(20);
        assert!(e.checksum > 20 * 16 * batch_len, "{}", e.line());
        assert!(r.ns_per_op > 0.0 && e.ns_per_op > 0.0);
    }

    #[test]
    fn crc_bench_sums_the_real_crc() {
        let r = bench_crc32c(1024, 8);
        let data: Vec<u8> = (0..1024).map(|i| (i * 31 % 251) as u8).collect();
        assert_eq!(r.checksum, 8 * u64::from(crc_of(&data)));
        assert_eq!(r.name, "crc32c/1KiB");
        assert_eq!(bench_crc32c(1 << 20, 1).name, "crc32c/1MiB");
    }

    #[test]
    fn router_hand_off_round_trips() {
        let r = bench_router_round_trip(50).unwrap();
        let expected: u64 = (5..55).map(|seq| seq + 1024).sum();
        assert_eq!(r.checksum, expected, "{}", r.line());
    }
}
