//! Scatter-gather: split a request's items by owning shard, send one call per shard (all at
//! once), and put the answers back in request order.
//!
//! Items are added in request order, each either sent to its owner ([`Scatter::send`]) or
//! answered without a call ([`Scatter::skip`]: unknown partition, invalid field, ...).
//! [`Scatter::gather`] returns one slot per item in that order: `Some(answer)` for an item
//! its shard answered, `None` for a skipped item (or one a shard left unanswered). The caller
//! walks its request in the same order and takes the slots one by one.

use crate::base::join_all;
use crate::model::ShardId;
use std::collections::BTreeMap;
use std::future::Future;

/// A request's items grouped by the shard that owns them, with their positions.
pub struct Scatter<P> {
    /// Per shard: the items to send and the position of each in the request.
    by_shard: BTreeMap<ShardId, (Vec<P>, Vec<usize>)>,
    /// Items added so far (sent or skipped).
    len: usize,
}

impl<P> Default for Scatter<P> {
    fn default() -> Self {
        Scatter {
            by_shard: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<P> Scatter<P> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next item goes to `owner`.
    pub fn send(&mut self, owner: ShardId, item: P) {
        let entry = self.by_shard.entry(owner).or_default();
        entry.0.push(item);
        entry.1.push(self.len);
        self.len += 1;
    }

    /// The next item is answered without a call: its slot stays `None`.
    pub fn skip(&mut self) {
        self.len += 1;
    }

    /// Items added (sent or skipped).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `call(shard, items)` once per shard, concurrently, and returns the answers in
    /// request order. `call` answers one result per item it was given, in the given order.
    /// The first failed call (a shard gone) fails the whole gather.
    pub async fn gather<R, E, F, Fut>(self, mut call: F) -> Result<Vec<Option<R>>, E>
    where
        F: FnMut(ShardId, Vec<P>) -> Fut,
        Fut: Future<Output = Result<Vec<R>, E>>,
    {
        let mut slots: Vec<Option<R>> = (0..self.len).map(|_| None).collect();
        let calls = self
            .by_shard
            .into_iter()
            .map(|(shard, (items, positions))| {
                let answer = call(shard, items);
                async move { (answer.await, positions) }
            });
        for (answer, positions) in join_all(calls).await {
            for (position, result) in positions.into_iter().zip(answer?) {
                slots[position] = Some(result);
            }
        }
        Ok(slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        futures_lite::future::block_on(f)
    }

    #[test]
    fn answers_come_back_in_request_order() {
        let mut s = Scatter::new();
        // Items 0..6 owned round-robin by 3 shards, item 3 skipped.
        for i in 0..6u32 {
            if i == 3 {
                s.skip();
            } else {
                s.send(ShardId((i % 3) as u16), i);
            }
        }
        assert_eq!(s.len(), 6);
        let mut calls = Vec::new();
        let out = block_on(s.gather(|shard, items: Vec<u32>| {
            calls.push((shard, items.clone()));
            async move { Ok::<_, ()>(items.into_iter().map(|i| i * 10).collect()) }
        }))
        .unwrap();
        assert_eq!(out, [Some(0), Some(10), Some(20), None, Some(40), Some(50)]);
        // One call per shard, each with its items in request order.
        assert_eq!(
            calls,
            [
                (ShardId(0), vec![0]),
                (ShardId(1), vec![1, 4]),
                (ShardId(2), vec![2, 5])
            ]
        );
    }

    #[test]
    fn a_failed_call_fails_the_gather_and_short_answers_leave_none() {
        let mut s = Scatter::new();
        s.send(ShardId(0), 1u8);
        s.send(ShardId(1), 2u8);
        let failed = block_on(s.gather(|shard, _items| async move {
            if shard == ShardId(1) {
                Err("gone")
            } else {
                Ok(vec![()])
            }
        }));
        assert_eq!(failed, Err("gone"));
        let mut s = Scatter::new();
        s.send(ShardId(0), 1u8);
        s.send(ShardId(0), 2u8);
        let short = block_on(s.gather(|_, _| async { Ok::<_, ()>(vec!['a']) }));
        assert_eq!(short, Ok(vec![Some('a'), None]));
        let empty =
            block_on(Scatter::<u8>::new().gather(|_, _| async { Ok::<Vec<u8>, ()>(vec![]) }));
        assert_eq!(empty, Ok(vec![]));
    }
}
