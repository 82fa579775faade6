//! The checker of the fault test, after Jepsen's Kafka checker
//! (`jepsen-io/jepsen`, `jepsen/src/jepsen/tests/kafka.clj`): a pure function of a recorded
//! [`History`], so it is tested here with histories that hold each anomaly.
//!
//! Every value is unique over the run: producer instance `i` writes `i * VALUE_STRIDE + n`
//! for n = 0, 1, 2, ... in send order, so a value also names its writer and its place in
//! that writer's order. What is checked (each count must be 0):
//!
//! - **lost**: a send acknowledged (ok) whose value the final read (every partition from
//!   its start to its high watermark, after the faults healed) does not hold;
//! - **duplicated**: one value at two or more positions (partition, offset), counting the
//!   offset an acknowledgement named and every read;
//! - **inconsistent offsets**: one position holding two or more values (likewise);
//! - **reordered**: within a partition, two values of one producer instance in the opposite
//!   order of their sends (in the final read, or in the offsets their acks named);
//! - **unexpected**: a value read that was never sent (or sent to another partition, or not
//!   a value of ours at all);
//! - **aborted reads**: a value read whose send surely failed (librdkafka: not persisted);
//! - **nonmonotonic polls**: a consumer by assignment (which never seeks) received a
//!   partition's offsets out of increasing order;
//! - **skipped polls**: such a consumer received offsets `a` then `b` of a partition while
//!   the final read holds a record strictly between them;
//! - **committed beyond the high watermark**: the group's committed offset of a partition is
//!   past that partition's final high watermark;
//! - **unavailable after heal**: a partition that acknowledged no send made after every
//!   fault had healed (liveness, not safety).
//!
//! Sends whose outcome is unknown (timed out, possibly persisted) may appear at most once,
//! or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// Values of producer instance `i` are `i * VALUE_STRIDE + n`.
pub const VALUE_STRIDE: u64 = 1 << 32;
/// How many examples of each anomaly the report prints.
const EXAMPLES: usize = 5;

/// What librdkafka reported for one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged at this offset.
    Ok(i64),
    /// Surely not persisted (`RD_KAFKA_MSG_STATUS_NOT_PERSISTED`).
    Failed,
    /// Possibly persisted: a timeout, a fatal error, or no report at all.
    Unknown,
}

/// One send: a unique value to one partition.
#[derive(Clone, Debug)]
pub struct Send {
    pub value: u64,
    pub partition: i32,
    /// When it was handed to librdkafka, in ms since the run started.
    pub sent_ms: u64,
    pub outcome: Outcome,
}

/// One record a consumer received. `value` is `None` when the payload is not one of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub value: Option<u64>,
}

/// One consumer's records in the order it received them. `ordered`: a consumer by
/// assignment from the beginning that never seeks, so its offsets must grow per partition;
/// a group member may be handed a partition back at an older committed offset.
#[derive(Clone, Debug)]
pub struct Stream {
    pub name: String,
    pub ordered: bool,
    pub reads: Vec<Read>,
}

/// Everything the run recorded.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub partitions: i32,
    pub sends: Vec<Send>,
    /// Consumers during the run.
    pub streams: Vec<Stream>,
    /// Every partition from its start to its end, after the faults healed.
    pub final_read: Vec<Read>,
    /// High watermark per partition when the final read began.
    pub high_watermarks: BTreeMap<i32, i64>,
    /// The consumer group's committed offsets after its members left.
    pub committed: BTreeMap<i32, i64>,
    /// When the last fault healed, in ms since the run started.
    pub healed_ms: u64,
}

type Position = (i32, i64);

/// Each anomaly found, with what shows it.
#[derive(Debug, Default)]
pub struct Report {
    pub lost: Vec<(u64, Position)>,
    pub duplicated: Vec<(u64, BTreeSet<Position>)>,
    pub inconsistent: Vec<(Position, BTreeSet<u64>)>,
    /// (partition, value sent earlier, value sent later) found in the opposite order.
    pub reordered: BTreeSet<(i32, u64, u64)>,
    pub unexpected: Vec<(Position, Option<u64>)>,
    pub aborted: Vec<(u64, Position)>,
    /// (consumer, partition, offset before, offset after).
    pub nonmonotonic: Vec<(String, i32, i64, i64)>,
    pub skipped: Vec<(String, i32, i64, i64)>,
    /// (partition, committed offset, high watermark).
    pub committed_beyond_hw: Vec<(i32, i64, i64)>,
    pub unavailable_after_heal: Vec<i32>,
}

impl Report {
    /// (name, count) of every check, in the order they are printed.
    pub fn counts(&self) -> [(&'static str, usize); 10] {
        [
            ("lost", self.lost.len()),
            ("duplicated", self.duplicated.len()),
            ("inconsistent offsets", self.inconsistent.len()),
            ("reordered", self.reordered.len()),
            ("unexpected", self.unexpected.len()),
            ("aborted reads", self.aborted.len()),
            ("nonmonotonic polls", self.nonmonotonic.len()),
            ("skipped polls", self.skipped.len()),
            ("committed beyond hw", self.committed_beyond_hw.len()),
            ("unavailable after heal", self.unavailable_after_heal.len()),
        ]
    }

    pub fn is_clean(&self) -> bool {
        self.counts().iter().all(|&(_, n)| n == 0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = self
            .counts()
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        writeln!(f, "checker: {}", counts.join(", "))?;
        let mut ex = |name: &str, items: Vec<String>| -> fmt::Result {
            if items.is_empty() {
                return Ok(());
            }
            writeln!(f, "  {name}: {}", items.join("; "))
        };
        ex("lost (value, acked at)", examples(&self.lost))?;
        ex("duplicated (value, at)", examples(&self.duplicated))?;
        ex("inconsistent (at, values)", examples(&self.inconsistent))?;
        ex(
            "reordered (partition, earlier, later)",
            examples(&self.reordered),
        )?;
        ex("unexpected (at, value)", examples(&self.unexpected))?;
        ex("aborted (value, read at)", examples(&self.aborted))?;
        ex(
            "nonmonotonic (consumer, partition, from, to)",
            examples(&self.nonmonotonic),
        )?;
        ex(
            "skipped (consumer, partition, from, to)",
            examples(&self.skipped),
        )?;
        ex(
            "committed beyond hw (partition, committed, hw)",
            examples(&self.committed_beyond_hw),
        )?;
        ex(
            "unavailable after heal (partition)",
            examples(&self.unavailable_after_heal),
        )
    }
}

fn examples<'a, T: fmt::Debug + 'a>(items: impl IntoIterator<Item = &'a T>) -> Vec<String> {
    items
        .into_iter()
        .take(EXAMPLES)
        .map(|i| format!("{i:?}"))
        .collect()
}

/// Producer instance and its sequence number of a value.
fn writer_of(value: u64) -> (u64, u64) {
    (value / VALUE_STRIDE, value % VALUE_STRIDE)
}

/// Runs every check over `h`.
pub fn check(h: &History) -> Report {
    let sent: HashMap<u64, &Send> = h.sends.iter().map(|s| (s.value, s)).collect();
    let all_reads = || {
        h.streams
            .iter()
            .flat_map(|s| s.reads.iter())
            .chain(h.final_read.iter())
    };
    let mut report = Report::default();
    positions(h, all_reads(), &mut report);
    for r in all_reads() {
        let at = (r.partition, r.offset);
        match r.value.and_then(|v| sent.get(&v)) {
            Some(s) if s.partition != r.partition => report.unexpected.push((at, r.value)),
            Some(s) if s.outcome == Outcome::Failed => report.aborted.push((s.value, at)),
            Some(_) => {}
            None => report.unexpected.push((at, r.value)),
        }
    }
    let finally: BTreeSet<u64> = h.final_read.iter().filter_map(|r| r.value).collect();
    for s in &h.sends {
        if let Outcome::Ok(offset) = s.outcome {
            if !finally.contains(&s.value) {
                report.lost.push((s.value, (s.partition, offset)));
            }
        }
    }
    reordering(h, &mut report);
    for stream in h.streams.iter().filter(|s| s.ordered) {
        polls(stream, &h.final_read, &mut report);
    }
    for (&p, &committed) in &h.committed {
        let hw = h.high_watermarks.get(&p).copied().unwrap_or(0);
        if committed > hw {
            report.committed_beyond_hw.push((p, committed, hw));
        }
    }
    report.unavailable_after_heal = unavailable_after_heal(h);
    report
}

/// Duplicates (a value at two positions) and inconsistent offsets (two values at one
/// position), over acknowledgements and reads.
fn positions<'a>(h: &History, reads: impl Iterator<Item = &'a Read>, report: &mut Report) {
    let mut at_of: BTreeMap<u64, BTreeSet<Position>> = BTreeMap::new();
    let mut values_at: BTreeMap<Position, BTreeSet<u64>> = BTreeMap::new();
    let acked = h.sends.iter().filter_map(|s| match s.outcome {
        Outcome::Ok(offset) => Some((s.value, (s.partition, offset))),
        _ => None,
    });
    let read = reads.filter_map(|r| r.value.map(|v| (v, (r.partition, r.offset))));
    for (value, at) in acked.chain(read) {
        at_of.entry(value).or_default().insert(at);
        values_at.entry(at).or_default().insert(value);
    }
    report.duplicated = at_of.into_iter().filter(|(_, a)| a.len() > 1).collect();
    report.inconsistent = values_at.into_iter().filter(|(_, v)| v.len() > 1).collect();
}

/// Within a partition, each producer instance's values in send order: in the final read
/// (by offset) and in the offsets their acknowledgements named.
fn reordering(h: &History, report: &mut Report) {
    let mut by_offset: Vec<&Read> = h.final_read.iter().collect();
    by_offset.sort_by_key(|r| (r.partition, r.offset));
    let in_log = by_offset
        .iter()
        .filter_map(|r| r.value.map(|v| (r.partition, v)));
    out_of_order(in_log, &mut report.reordered);
    let mut acks: Vec<(i32, i64, u64)> = h
        .sends
        .iter()
        .filter_map(|s| match s.outcome {
            Outcome::Ok(offset) => Some((s.partition, offset, s.value)),
            _ => None,
        })
        .collect();
    acks.sort_unstable();
    out_of_order(acks.iter().map(|&(p, _, v)| (p, v)), &mut report.reordered);
}

/// `seq` lists (partition, value) in log order; records every value that follows a later
/// send of the same producer instance in the same partition.
fn out_of_order(seq: impl Iterator<Item = (i32, u64)>, found: &mut BTreeSet<(i32, u64, u64)>) {
    let mut last: HashMap<(i32, u64), u64> = HashMap::new();
    for (p, value) in seq {
        let (writer, n) = writer_of(value);
        match last.get(&(p, writer)) {
            Some(&prev) if writer_of(prev).1 >= n => {
                found.insert((p, value, prev));
            }
            _ => {
                last.insert((p, writer), value);
            }
        }
    }
}

/// Nonmonotonic and skipped polls of one consumer by assignment.
fn polls(stream: &Stream, final_read: &[Read], report: &mut Report) {
    let mut offsets: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for r in final_read {
        offsets.entry(r.partition).or_default().insert(r.offset);
    }
    let mut last: HashMap<i32, i64> = HashMap::new();
    for r in &stream.reads {
        if let Some(&prev) = last.get(&r.partition) {
            let name = stream.name.clone();
            if r.offset <= prev {
                report
                    .nonmonotonic
                    .push((name, r.partition, prev, r.offset));
            } else if offsets
                .get(&r.partition)
                .is_some_and(|o| o.range(prev + 1..r.offset).next().is_some())
            {
                report.skipped.push((name, r.partition, prev, r.offset));
            }
        }
        last.insert(r.partition, r.offset);
    }
}

/// Partitions with no acknowledged send made after `healed_ms`.
fn unavailable_after_heal(h: &History) -> Vec<i32> {
    let served: BTreeSet<i32> = h
        .sends
        .iter()
        .filter(|s| s.sent_ms >= h.healed_ms && matches!(s.outcome, Outcome::Ok(_)))
        .map(|s| s.partition)
        .collect();
    (0..h.partitions).filter(|p| !served.contains(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = VALUE_STRIDE;
    const B: u64 = 2 * VALUE_STRIDE;

    fn read(partition: i32, offset: i64, value: u64) -> Read {
        Read {
            partition,
            offset,
            value: Some(value),
        }
    }

    fn send(value: u64, partition: i32, sent_ms: u64, outcome: Outcome) -> Send {
        Send {
            value,
            partition,
            sent_ms,
            outcome,
        }
    }

    /// Two producers (A, B), two partitions, three records each; everything acknowledged
    /// and read back in order by one assigned consumer and by the final read, one unknown
    /// send that never landed, one failed send never read; the group committed the ends.
    fn clean() -> History {
        let log = [
            read(0, 0, A),
            read(0, 1, B),
            read(0, 2, A + 2),
            read(1, 0, A + 1),
            read(1, 1, B + 1),
            read(1, 2, B + 2),
        ];
        let mut sends: Vec<Send> = log
            .iter()
            .map(|r| {
                send(
                    r.value.unwrap(),
                    r.partition,
                    10 * r.offset as u64,
                    Outcome::Ok(r.offset),
                )
            })
            .collect();
        sends.push(send(A + 3, 0, 30, Outcome::Unknown));
        sends.push(send(B + 3, 1, 30, Outcome::Failed));
        History {
            partitions: 2,
            sends,
            streams: vec![Stream {
                name: "assigned".into(),
                ordered: true,
                reads: log.to_vec(),
            }],
            final_read: log.to_vec(),
            high_watermarks: BTreeMap::from([(0, 3), (1, 3)]),
            committed: BTreeMap::from([(0, 3), (1, 2)]),
            healed_ms: 20,
        }
    }

    /// The report's counts, by name, that are not 0.
    fn found(h: &History) -> Vec<(&'static str, usize)> {
        let report = check(h);
        eprintln!("{report}");
        report
            .counts()
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    #[test]
    fn a_clean_history_passes() {
        assert_eq!(found(&clean()), []);
        assert!(check(&clean()).is_clean());
    }

    #[test]
    fn an_unknown_send_may_land_once() {
        let mut h = clean();
        h.final_read.push(read(0, 3, A + 3));
        h.high_watermarks.insert(0, 4);
        assert_eq!(found(&h), []);
    }

    #[test]
    fn an_acked_value_missing_from_the_final_read_is_lost() {
        let mut h = clean();
        h.final_read.retain(|r| r.value != Some(B + 1));
        // The assigned consumer did read it during the run: it still is lost.
        assert_eq!(found(&h), [("lost", 1)]);
        assert_eq!(check(&h).lost, [(B + 1, (1, 1))]);
    }

    #[test]
    fn a_value_at_two_offsets_is_duplicated() {
        let mut h = clean();
        h.final_read.push(read(0, 3, A));
        h.high_watermarks.insert(0, 4);
        // A is also older than A+2, which precedes it: reordered as well.
        assert_eq!(found(&h), [("duplicated", 1), ("reordered", 1)]);
        let report = check(&h);
        assert_eq!(report.duplicated[0].0, A);
    }

    #[test]
    fn an_unknown_send_read_twice_is_duplicated() {
        let mut h = clean();
        h.final_read.push(read(0, 3, A + 3));
        h.final_read.push(read(0, 4, A + 3));
        h.high_watermarks.insert(0, 5);
        assert_eq!(found(&h), [("duplicated", 1), ("reordered", 1)]);
    }

    #[test]
    fn two_values_at_one_offset_are_inconsistent() {
        let mut h = clean();
        // During the run the consumer saw another (unknown) value at 0/2.
        h.streams[0].reads[2] = read(0, 2, A + 3);
        assert_eq!(found(&h), [("inconsistent offsets", 1)]);
        assert_eq!(check(&h).inconsistent[0].0, (0, 2));
    }

    #[test]
    fn an_ack_naming_another_offset_is_inconsistent() {
        let mut h = clean();
        h.sends[0].outcome = Outcome::Ok(2);
        assert_eq!(found(&h), [("duplicated", 1), ("inconsistent offsets", 1)]);
    }

    #[test]
    fn a_producer_order_swapped_in_the_log_is_reordered() {
        let mut h = clean();
        // A's first and third values exchange places in partition 0 (acks and log agree).
        for r in &mut h.final_read {
            if r.value == Some(A) {
                r.value = Some(A + 2);
            } else if r.value == Some(A + 2) {
                r.value = Some(A);
            }
        }
        h.streams[0].reads = h.final_read.clone();
        for s in &mut h.sends {
            if s.value == A {
                s.outcome = Outcome::Ok(2);
            } else if s.value == A + 2 {
                s.outcome = Outcome::Ok(0);
            }
        }
        assert_eq!(found(&h), [("reordered", 1)]);
        assert_eq!(
            check(&h).reordered.into_iter().collect::<Vec<_>>(),
            [(0, A, A + 2)]
        );
    }

    #[test]
    fn a_value_never_sent_is_unexpected() {
        let mut h = clean();
        h.final_read.push(read(1, 3, B + 99));
        h.final_read.push(Read {
            partition: 1,
            offset: 4,
            value: None,
        });
        h.high_watermarks.insert(1, 5);
        assert_eq!(found(&h), [("unexpected", 2)]);
    }

    #[test]
    fn a_value_read_in_another_partition_is_unexpected() {
        let mut h = clean();
        h.final_read.push(read(1, 3, A + 3));
        assert_eq!(found(&h), [("unexpected", 1)]);
    }

    #[test]
    fn a_failed_send_that_is_read_is_an_aborted_read() {
        let mut h = clean();
        h.streams[0].reads.push(read(1, 3, B + 3));
        h.final_read.push(read(1, 3, B + 3));
        assert_eq!(found(&h), [("aborted reads", 2)]);
    }

    #[test]
    fn offsets_going_back_in_an_assigned_consumer_are_nonmonotonic() {
        let mut h = clean();
        h.streams[0].reads.push(read(0, 1, B));
        assert_eq!(found(&h), [("nonmonotonic polls", 1)]);
        // A group member may legitimately read again from its committed offset.
        h.streams[0].ordered = false;
        assert_eq!(found(&h), []);
    }

    #[test]
    fn a_record_jumped_over_by_an_assigned_consumer_is_skipped() {
        let mut h = clean();
        h.streams[0]
            .reads
            .retain(|r| (r.partition, r.offset) != (1, 1));
        assert_eq!(found(&h), [("skipped polls", 1)]);
        assert_eq!(check(&h).skipped, [("assigned".to_string(), 1, 0, 2)]);
    }

    #[test]
    fn a_committed_offset_past_the_high_watermark_is_found() {
        let mut h = clean();
        h.committed.insert(1, 4);
        assert_eq!(found(&h), [("committed beyond hw", 1)]);
    }

    #[test]
    fn a_partition_without_acks_after_the_heal_is_unavailable() {
        let mut h = clean();
        // The last acknowledged sends of both partitions were made at 20 ms.
        h.healed_ms = 25;
        assert_eq!(found(&h), [("unavailable after heal", 2)]);
        h.healed_ms = 15;
        assert_eq!(found(&h), []);
        let b2 = h.sends.iter_mut().find(|s| s.value == B + 2).unwrap();
        b2.sent_ms = 14;
        assert_eq!(check(&h).unavailable_after_heal, [1]);
    }
}
