//! [`BatchCache`]: the per-shard cache of recent batches that serves tail fetches from memory.
//!
//! Modelled on Redpanda's batch cache: one cache per shard, shared by every partition the
//! shard owns, bounded by bytes. Appends insert the stamped batch; reads take a run of
//! consecutive batches. Eviction is by insertion order (FIFO), which for a log is close to
//! LRU: consumers near the tail read what was appended last, and older data is read from disk.
//! A hit moves nothing, so a hit costs one B-tree lookup plus one `Bytes` clone per batch.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use bytes::Bytes;

use super::read_memory::{ReadMemory, READ_MEMORY_BYTES_PER_SHARD};
use crate::model::Offset;

/// Identifies one open log inside a cache.
pub(crate) type LogId = u64;

struct Entry {
    bytes: Bytes,
    last_offset: Offset,
}

struct Inner {
    capacity_bytes: usize,
    used_bytes: usize,
    next_log_id: LogId,
    logs: HashMap<LogId, BTreeMap<Offset, Entry>>,
    order: VecDeque<(LogId, Offset)>,
}

/// Per-shard cache of recent batches, bounded by bytes. Clones share the same cache. It
/// also carries the shard's [`ReadMemory`], the bound on what fetches read from disk hold
/// (both are the shard's memory for serving fetches).
#[derive(Clone)]
pub struct BatchCache {
    inner: Rc<RefCell<Inner>>,
    reads: ReadMemory,
}

impl BatchCache {
    /// A cache holding at most `capacity_bytes` of batches (0 disables it).
    pub fn new(capacity_bytes: usize) -> Self {
        let inner = Inner {
            capacity_bytes,
            used_bytes: 0,
            next_log_id: 0,
            logs: HashMap::new(),
            order: VecDeque::new(),
        };
        BatchCache {
            inner: Rc::new(RefCell::new(inner)),
            reads: ReadMemory::new(READ_MEMORY_BYTES_PER_SHARD),
        }
    }

    /// The shard's bound on disk reads held by fetch responses.
    pub fn read_memory(&self) -> &ReadMemory {
        &self.reads
    }

    /// Bytes of batches currently held.
    pub fn used_bytes(&self) -> usize {
        self.inner.borrow().used_bytes
    }

    /// The configured bound.
    pub fn capacity_bytes(&self) -> usize {
        self.inner.borrow().capacity_bytes
    }

    /// True if a batch of `len` bytes would be cached (saves the caller a copy otherwise).
    pub(crate) fn accepts(&self, len: usize) -> bool {
        len <= self.inner.borrow().capacity_bytes
    }

    pub(crate) fn register(&self) -> LogId {
        let mut inner = self.inner.borrow_mut();
        inner.next_log_id += 1;
        inner.next_log_id
    }

    /// Insert a stamped, validated batch. Evicts the oldest entries to stay within the bound.
    pub(crate) fn insert(
        &self,
        log: LogId,
        base_offset: Offset,
        last_offset: Offset,
        bytes: Bytes,
    ) {
        let mut inner = self.inner.borrow_mut();
        if bytes.len() > inner.capacity_bytes {
            return;
        }
        let size = bytes.len();
        let entry = Entry { bytes, last_offset };
        if let Some(old) = inner
            .logs
            .entry(log)
            .or_default()
            .insert(base_offset, entry)
        {
            inner.used_bytes -= old.bytes.len();
        }
        inner.used_bytes += size;
        inner.order.push_back((log, base_offset));
        while inner.used_bytes > inner.capacity_bytes {
            let Some((victim_log, victim_base)) = inner.order.pop_front() else {
                break;
            };
            inner.remove(victim_log, victim_base);
        }
    }

    /// Consecutive cached batches starting with the one containing `offset`: at least one,
    /// then stop before exceeding `max_bytes`, and never one that reaches `end` (the high
    /// watermark: batches past it are cached but not yet visible). `None` if the batch
    /// containing `offset` is not cached or reaches `end`.
    pub(crate) fn read(
        &self,
        log: LogId,
        offset: Offset,
        max_bytes: usize,
        end: Offset,
    ) -> Option<Vec<Bytes>> {
        let inner = self.inner.borrow();
        let batches = inner.logs.get(&log)?;
        let (first_base, first) = batches.range(..=offset).next_back()?;
        if first.last_offset < offset || first.last_offset >= end {
            return None;
        }
        let mut out = vec![first.bytes.clone()];
        let (mut total, mut next) = (first.bytes.len(), first.last_offset + 1);
        for (base, entry) in batches.range(first_base + 1..) {
            if *base != next || total + entry.bytes.len() > max_bytes || entry.last_offset >= end {
                break;
            }
            total += entry.bytes.len();
            next = entry.last_offset + 1;
            out.push(entry.bytes.clone());
        }
        Some(out)
    }

    /// Drop a log's batches wholly below `offset`.
    pub(crate) fn truncate_before(&self, log: LogId, offset: Offset) {
        let mut inner = self.inner.borrow_mut();
        let doomed: Vec<Offset> = match inner.logs.get(&log) {
            Some(b) => b
                .iter()
                .filter(|(_, e)| e.last_offset < offset)
                .map(|(k, _)| *k)
                .collect(),
            None => return,
        };
        for base in doomed {
            inner.remove(log, base);
        }
        inner.compact_order();
    }

    /// Drop every batch of a log (closed or removed).
    pub(crate) fn forget(&self, log: LogId) {
        let mut inner = self.inner.borrow_mut();
        if let Some(batches) = inner.logs.remove(&log) {
            inner.used_bytes -= batches.values().map(|e| e.bytes.len()).sum::<usize>();
        }
        inner.compact_order();
    }
}

impl Inner {
    fn remove(&mut self, log: LogId, base: Offset) {
        if let Some(batches) = self.logs.get_mut(&log) {
            if let Some(old) = batches.remove(&base) {
                self.used_bytes -= old.bytes.len();
            }
            if batches.is_empty() {
                self.logs.remove(&log);
            }
        }
    }

    /// Keep the eviction queue proportional to the live entries after bulk removals.
    fn compact_order(&mut self) {
        let live: usize = self.logs.values().map(BTreeMap::len).sum();
        if self.order.len() > 2 * live + 1024 {
            let logs = &self.logs;
            self.order
                .retain(|(l, b)| logs.get(l).is_some_and(|m| m.contains_key(b)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    #[test]
    fn runs_are_consecutive_and_bounded() {
        let cache = BatchCache::new(1000);
        let log = cache.register();
        cache.insert(log, 0, 4, b(100));
        cache.insert(log, 5, 5, b(100));
        cache.insert(log, 6, 9, b(100));
        assert_eq!(cache.read(log, 3, 250, i64::MAX).map(|v| v.len()), Some(2));
        assert_eq!(
            cache.read(log, 3, 10, i64::MAX).map(|v| v.len()),
            Some(1),
            "at least one batch"
        );
        assert_eq!(cache.read(log, 7, 1000, i64::MAX).map(|v| v.len()), Some(1));
        assert!(cache.read(log, 10, 1000, i64::MAX).is_none());
        assert!(cache.read(log + 1, 0, 1000, i64::MAX).is_none());
        assert_eq!(
            cache.read(log, 3, 1000, 9).map(|v| v.len()),
            Some(2),
            "a batch reaching the end is not served"
        );
        assert!(cache.read(log, 6, 1000, 9).is_none(), "nothing at the end");
        assert!(cache.read(log, 6, 1000, 6).is_none(), "nor past it");
        cache.truncate_before(log, 5);
        assert!(cache.read(log, 3, 1000, i64::MAX).is_none());
        assert_eq!(cache.used_bytes(), 200);
    }

    #[test]
    fn evicts_oldest_within_bound() {
        let cache = BatchCache::new(250);
        let a = cache.register();
        let c = cache.register();
        cache.insert(a, 0, 0, b(100));
        cache.insert(c, 0, 0, b(100));
        cache.insert(a, 1, 1, b(100));
        assert!(cache.used_bytes() <= 250);
        assert!(cache.read(a, 0, 1000, i64::MAX).is_none(), "oldest evicted");
        assert!(cache.read(c, 0, 1000, i64::MAX).is_some());
        cache.insert(a, 2, 2, b(1000)); // bigger than the cache: not cached
        assert!(cache.read(a, 2, 1000, i64::MAX).is_none());
        cache.forget(a);
        assert_eq!(cache.used_bytes(), 100);
    }
}
