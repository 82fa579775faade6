//! [`ReadMemory`]: the bytes that disk reads for fetches hold, per shard, bounded.
//!
//! A fetch served from disk reads chunks (up to 16 MiB) into fresh buffers, and its response
//! holds slices of them until the connection has written it — on whichever shard, for as long
//! as the client takes. Each chunk is charged here before it is read and stays charged until
//! the last slice of it is dropped (the buffer's owner gives the charge back; the count is
//! atomic because that may happen on another shard). A read waits while the shard's limit is
//! reached (unless nothing is held, so one read always proceeds), in line behind earlier
//! waiters, at most [`READ_WAIT`]; then
//! the partition answers with what it read so far, possibly nothing, and the client fetches
//! again. Batches served from the batch cache are not charged: the cache holds them anyway.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
#[cfg(test)]
use std::time::Instant;

use bytes::Bytes;

/// Bytes of disk-read buffers one shard's fetch responses hold at most (but one read always
/// proceeds when nothing is held).
pub const READ_MEMORY_BYTES_PER_SHARD: usize = 128 << 20;
/// Longest a read waits for the shard's read memory.
pub const READ_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting read looks again (charges are given back on any shard, without a
/// wake-up).
const RECHECK: Duration = Duration::from_millis(1);

/// One shard's read memory. Clones share it.
#[derive(Clone, Debug)]
pub struct ReadMemory {
    held: Arc<AtomicUsize>,
    limit: usize,
    /// Waiting reads queue here; only the first looks at `held` (every [`RECHECK`]), so a
    /// crowd of waiting reads costs one timer, not one wake-up each per millisecond.
    turnstile: Rc<glommio::sync::Semaphore>,
}

/// Bytes charged to a [`ReadMemory`]; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    held: Arc<AtomicUsize>,
    bytes: usize,
}

impl ReadMemory {
    pub fn new(limit: usize) -> Self {
        ReadMemory {
            held: Arc::new(AtomicUsize::new(0)),
            limit,
            turnstile: Rc::new(glommio::sync::Semaphore::new(1)),
        }
    }

    /// Bytes held by responses now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    fn fits(&self, bytes: usize) -> bool {
        let held = self.held();
        held == 0 || held.saturating_add(bytes) <= self.limit
    }

    /// Only the owning shard charges, so the check and the charge cannot race with another
    /// charge (gives back may come from anywhere).
    fn take(&self, bytes: usize) -> Charge {
        self.held.fetch_add(bytes, Ordering::AcqRel);
        Charge {
            held: self.held.clone(),
            bytes,
        }
    }

    /// Charge `bytes`, waiting (behind earlier waiters) while they do not fit — nothing held
    /// always fits — at most [`READ_WAIT`]; `None` if they did not fit in time.
    pub async fn charge(&self, bytes: usize) -> Option<Charge> {
        if self.turnstile.available() > 0 && self.fits(bytes) {
            return Some(self.take(bytes));
        }
        glommio::timer::timeout(READ_WAIT, async {
            let _turn = self.turnstile.acquire_permit(1).await?;
            while !self.fits(bytes) {
                glommio::timer::sleep(RECHECK).await;
            }
            Ok(self.take(bytes))
        })
        .await
        .ok()
    }
}

impl Charge {
    /// Keep only `bytes` of the charge (a read that returned less than asked).
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.held.fetch_sub(self.bytes - bytes, Ordering::AcqRel);
            self.bytes = bytes;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A buffer read from disk, charged until its last slice is dropped.
struct Charged {
    data: Vec<u8>,
    _charge: Charge,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// `data` as `Bytes` that keep `charge` until every slice of them is dropped.
pub fn charged_bytes(data: Vec<u8>, mut charge: Charge) -> Bytes {
    charge.shrink_to(data.len());
    Bytes::from_owner(Charged {
        data,
        _charge: charge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_follow_the_last_slice_and_reads_wait_at_the_limit() {
        glommio::LocalExecutor::default().run(async {
            let mem = ReadMemory::new(100);
            let first = mem.charge(80).await.expect("nothing held: fits");
            let bytes = charged_bytes(vec![7u8; 60], first);
            assert_eq!(mem.held(), 60, "shrunk to what was read");
            let slice = bytes.slice(10..20);
            drop(bytes);
            assert_eq!(mem.held(), 60, "a slice keeps the whole buffer charged");
            let started = Instant::now();
            assert!(mem.charge(50).await.is_none(), "60 + 50 > 100");
            assert!(started.elapsed() >= READ_WAIT);
            let other = std::thread::spawn(move || drop(slice));
            other.join().unwrap();
            assert_eq!(mem.held(), 0, "given back from another thread");
            let big = mem
                .charge(500)
                .await
                .expect("nothing held: one read proceeds");
            drop(big);
            assert_eq!(mem.held(), 0);
        });
    }
}
