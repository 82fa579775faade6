//! Helpers for storage tests: batches, executors, directories.

use std::future::Future;
use std::path::PathBuf;

use bytes::Bytes;

use crate::model::test_batches;

/// A valid batch of `records` records of `value_bytes` bytes each, timestamps `ts`.
pub fn batch(records: usize, value_bytes: usize, ts: i64) -> Bytes {
    let value = vec![0xabu8; value_bytes];
    let values: Vec<&[u8]> = (0..records.max(1)).map(|_| &value[..]).collect();
    Bytes::from(test_batches::batch(&values, ts))
}

/// A batch from an idempotent producer.
pub fn idempotent_batch(producer_id: i64, epoch: i16, base_seq: i32, records: usize) -> Bytes {
    let value = [7u8; 10];
    let values: Vec<&[u8]> = (0..records).map(|_| &value[..]).collect();
    let mut b = test_batches::batch(&values, 1_000);
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// Run `f` to completion on a fresh glommio executor.
pub fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move { f().await })
        .expect("spawn executor")
        .join()
        .expect("executor panicked");
}

/// A fresh directory on the real filesystem (not tmpfs: O_DIRECT needs a real one).
pub fn real_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringmq-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
