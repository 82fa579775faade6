//! The leader-epoch cache of a replica's log: `term → first index` of every epoch in the log,
//! ascending (the Kafka leader epoch is the raft term). Truncated with the log, rebuilt by
//! recovery as batches are read back; it answers OffsetForLeaderEpoch.

use crate::model::Offset;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    /// `(term, first index)`, strictly ascending in both.
    epochs: Vec<(u64, u64)>,
}

impl EpochCache {
    /// Entry `index` (the next one) has `term`.
    pub fn push(&mut self, term: u64, index: u64) {
        if self.epochs.last().is_none_or(|&(t, _)| t < term) {
            self.epochs.push((term, index));
        }
    }

    /// Entries from `index` on are gone.
    pub fn truncate_from(&mut self, index: u64) {
        while self.epochs.last().is_some_and(|&(_, first)| first >= index) {
            self.epochs.pop();
        }
    }

    /// The term of the last entry (0 when empty).
    pub fn last_term(&self) -> u64 {
        self.epochs.last().map_or(0, |&(t, _)| t)
    }

    /// The term of entry `index` (which the log holds).
    pub fn term_of(&self, index: u64) -> u64 {
        let at = self.epochs.partition_point(|&(_, first)| first <= index);
        at.checked_sub(1).map_or(0, |i| self.epochs[i].0)
    }

    /// The largest epoch `<= epoch` and the offset where it ends: the first offset of the
    /// next higher epoch (`end_offset(first index - 1)`), or `log_end`.
    pub fn end_of(
        &self,
        epoch: u64,
        end_offset: impl Fn(u64) -> Option<Offset>,
        log_end: Offset,
    ) -> Option<(u64, Offset)> {
        let at = self.epochs.partition_point(|&(t, _)| t <= epoch);
        let &(term, _) = self.epochs.get(at.checked_sub(1)?)?;
        let end = match self.epochs.get(at) {
            Some(&(_, next_first)) => end_offset(next_first - 1)?,
            None => log_end,
        };
        Some((term, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_by_index_and_truncation() {
        let mut c = EpochCache::default();
        for (i, t) in [(1, 1), (2, 1), (3, 3), (4, 3), (5, 4)] {
            c.push(t, i);
        }
        let terms: Vec<u64> = (1..=5).map(|i| c.term_of(i)).collect();
        assert_eq!(terms, vec![1, 1, 3, 3, 4]);
        assert_eq!(c.term_of(0), 0);
        let ends = |i: u64| Some(i as Offset * 2);
        assert_eq!(c.end_of(2, ends, 10), Some((1, 4)));
        assert_eq!(c.end_of(9, ends, 10), Some((4, 10)));
        assert_eq!(c.end_of(0, ends, 10), None);
        c.truncate_from(4);
        assert_eq!((c.last_term(), c.end_of(9, ends, 6)), (3, Some((3, 6))));
        c.truncate_from(3);
        assert_eq!(c.last_term(), 1);
    }
}
