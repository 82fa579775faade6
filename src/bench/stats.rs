//! Latency histograms, counters, the per-second timeline and the final summary.
//!
//! Each worker thread records into its own [`Recorder`] (no sharing, no locks). Once a
//! second, and once at the end, it ships the interval as a [`Sample`] to the main thread,
//! which [`Aggregate`]s them: HdrHistograms merge exactly (same bounds everywhere), so the
//! merged percentiles are those of all records, not an average of per-thread percentiles.
//! Latencies are in nanoseconds, 1 ns to 1 hour, 3 significant digits.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Highest latency tracked; larger values are clamped to it (and still counted).
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; covered by a test.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, SIGNIFICANT_DIGITS)
        .expect("valid histogram bounds")
}

/// Merge `from` into `into`. Never fails for histograms made by [`new_histogram`].
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        // Different bounds: fall back to re-recording each value (clamped).
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// What went wrong, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// Records the broker answered with an error code.
    pub broker_records: u64,
    /// Connections that failed (connect, read, write, protocol); each ends its task.
    pub connections: u64,
    /// Records or batches that did not decode.
    pub malformed: u64,
}

impl ErrorCounts {
    pub fn add(&mut self, o: &ErrorCounts) {
        self.broker_records += o.broker_records;
        self.connections += o.connections;
        self.malformed += o.malformed;
    }
    pub fn total(&self) -> u64 {
        self.broker_records + self.connections + self.malformed
    }
}

/// Which side of the run a sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Produce acknowledgements (latency: intended send time → ack).
    Produce,
    /// Consumed records (latency: e2e send time → receipt, or fetch round trip).
    Consume,
}

/// One thread's counts since its last sample.
pub struct Recorder {
    pub hist: Histogram<u64>,
    /// Open-loop producers: how late the sender's timer woke it for a due record (the
    /// client's own scheduling delay: timer slack, a busy CPU). Waiting for the broker is
    /// not in it; that is charged to the latency. Large values mean the load generator lagged.
    pub wake_lag: Histogram<u64>,
    pub records: u64,
    pub bytes: u64,
    pub errors: ErrorCounts,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            hist: new_histogram(),
            wake_lag: new_histogram(),
            records: 0,
            bytes: 0,
            errors: ErrorCounts::default(),
        }
    }
}

impl Recorder {
    pub fn record_latency_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }
    pub fn record_wake_lag_ns(&mut self, ns: u64) {
        self.wake_lag.saturating_record(ns.max(1));
    }
    /// Hand the interval out and start a new one.
    pub fn take(&mut self, role: Role) -> Sample {
        let s = Sample {
            role,
            hist: self.hist.clone(),
            wake_lag: self.wake_lag.clone(),
            records: self.records,
            bytes: self.bytes,
            errors: self.errors,
        };
        self.hist.reset();
        self.wake_lag.reset();
        self.records = 0;
        self.bytes = 0;
        self.errors = ErrorCounts::default();
        s
    }
}

/// An interval of one thread and role, sent to the main thread.
pub struct Sample {
    pub role: Role,
    pub hist: Histogram<u64>,
    pub wake_lag: Histogram<u64>,
    pub records: u64,
    pub bytes: u64,
    pub errors: ErrorCounts,
}

/// One second of the run, as printed in the progress line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    /// Run time at the tick (s since the run's zero; 0 before it).
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    /// Cumulative p99 so far (ns).
    pub p99_ns: u64,
}

/// Everything measured for one role.
pub struct Aggregate {
    pub hist: Histogram<u64>,
    pub wake_lag: Histogram<u64>,
    pub records: u64,
    pub bytes: u64,
    pub errors: ErrorCounts,
    pub timeline: Vec<Tick>,
    since_tick_records: u64,
    since_tick_bytes: u64,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            hist: new_histogram(),
            wake_lag: new_histogram(),
            records: 0,
            bytes: 0,
            errors: ErrorCounts::default(),
            timeline: Vec::new(),
            since_tick_records: 0,
            since_tick_bytes: 0,
        }
    }
}

impl Aggregate {
    pub fn absorb(&mut self, s: &Sample) {
        merge(&mut self.hist, &s.hist);
        merge(&mut self.wake_lag, &s.wake_lag);
        self.records += s.records;
        self.bytes += s.bytes;
        self.since_tick_records += s.records;
        self.since_tick_bytes += s.bytes;
        self.errors.add(&s.errors);
    }

    /// Close the current tick of `interval_s` seconds ending at `elapsed_s`.
    pub fn tick(&mut self, elapsed_s: f64, interval_s: f64) -> Tick {
        let interval_s = interval_s.max(1e-9);
        let t = Tick {
            elapsed_s,
            records_per_s: self.since_tick_records as f64 / interval_s,
            mb_per_s: self.since_tick_bytes as f64 / interval_s / 1e6,
            p99_ns: self.hist.value_at_quantile(0.99),
        };
        self.since_tick_records = 0;
        self.since_tick_bytes = 0;
        self.timeline.push(t);
        t
    }

    pub fn summary(&self, measured_s: f64) -> Summary {
        let at = |h: &Histogram<u64>, x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        let q = |x: f64| at(&self.hist, x);
        let measured_s = measured_s.max(1e-9);
        Summary {
            records: self.records,
            bytes: self.bytes,
            records_per_s: self.records as f64 / measured_s,
            mb_per_s: self.bytes as f64 / measured_s / 1e6,
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            p9999_ns: q(0.9999),
            max_ns: self.hist.max(),
            latency_samples: self.hist.len(),
            wake_lag_p50_ns: at(&self.wake_lag, 0.5),
            wake_lag_p99_ns: at(&self.wake_lag, 0.99),
            wake_lag_max_ns: self.wake_lag.max(),
            errors: self.errors,
        }
    }

    /// The percentile spectrum: (percentile, latency ns, count) rows, HdrHistogram style.
    pub fn spectrum(&self) -> Vec<(f64, u64, u64)> {
        if self.hist.is_empty() {
            return Vec::new();
        }
        self.hist
            .iter_quantiles(5)
            .map(|v| {
                (
                    v.percentile(),
                    v.value_iterated_to(),
                    v.count_since_last_iteration(),
                )
            })
            .collect()
    }
}

/// The final figures of one role.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub records: u64,
    pub bytes: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub p9999_ns: u64,
    pub max_ns: u64,
    pub latency_samples: u64,
    /// Open-loop producers: planned wake-up → actual wake-up of the sender.
    pub wake_lag_p50_ns: u64,
    pub wake_lag_p99_ns: u64,
    pub wake_lag_max_ns: u64,
    pub errors: ErrorCounts,
}

/// Nanoseconds as a short human figure ("812 µs", "3.21 ms").
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

impl Summary {
    pub fn line(&self) -> String {
        let lag = if self.wake_lag_max_ns > 0 {
            format!(
                "; sender wake lag p50 {} p99 {} max {}",
                human_ns(self.wake_lag_p50_ns),
                human_ns(self.wake_lag_p99_ns),
                human_ns(self.wake_lag_max_ns)
            )
        } else {
            String::new()
        };
        format!(
            "{:.0} records/s, {:.2} MB/s; latency p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {}; \
             errors: broker {} connection {} malformed {}{lag}",
            self.records_per_s,
            self.mb_per_s,
            human_ns(self.p50_ns),
            human_ns(self.p90_ns),
            human_ns(self.p99_ns),
            human_ns(self.p999_ns),
            human_ns(self.p9999_ns),
            human_ns(self.max_ns),
            self.errors.broker_records,
            self.errors.connections,
            self.errors.malformed
        )
    }

    /// JSON object (no trailing newline).
    pub fn json(&self) -> String {
        format!(
            "{{\"records\":{},\"bytes\":{},\"records_per_s\":{:.3},\"mb_per_s\":{:.6},\
             \"latency_ns\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"p99_9\":{},\"p99_99\":{},\"max\":{},\"samples\":{}}},\
             \"wake_lag_ns\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\
             \"errors\":{{\"broker_records\":{},\"connections\":{},\"malformed\":{}}}}}",
            self.records,
            self.bytes,
            self.records_per_s,
            self.mb_per_s,
            self.p50_ns,
            self.p90_ns,
            self.p99_ns,
            self.p999_ns,
            self.p9999_ns,
            self.max_ns,
            self.latency_samples,
            self.wake_lag_p50_ns,
            self.wake_lag_p99_ns,
            self.wake_lag_max_ns,
            self.errors.broker_records,
            self.errors.connections,
            self.errors.malformed
        )
    }
}

/// JSON of one role: summary, timeline and spectrum.
pub fn role_json(agg: &Aggregate, measured_s: f64, latency_kind: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"latency_kind\":{},\"measured_s\":{measured_s:.6},\"summary\":{},\"timeline\":[",
        json_str(latency_kind),
        agg.summary(measured_s).json()
    );
    for (i, t) in agg.timeline.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            s,
            "{sep}{{\"elapsed_s\":{:.3},\"records_per_s\":{:.1},\"mb_per_s\":{:.4},\"p99_ns\":{}}}",
            t.elapsed_s, t.records_per_s, t.mb_per_s, t.p99_ns
        );
    }
    s.push_str("],\"percentile_spectrum\":[");
    for (i, (p, v, c)) in agg.spectrum().iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            s,
            "{sep}{{\"percentile\":{p:.6},\"latency_ns\":{v},\"count\":{c}}}"
        );
    }
    s.push_str("]}");
    s
}

/// A JSON string literal.
pub fn json_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_thread_histograms_equal_one_histogram_of_everything() {
        let mut threads: Vec<Recorder> = (0..3).map(|_| Recorder::default()).collect();
        let mut all = new_histogram();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..30_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = 1_000 + x % 5_000_000 + if i % 1000 == 0 { 50_000_000 } else { 0 };
            threads[(i % 3) as usize].record_latency_ns(v);
            all.saturating_record(v);
        }
        let mut agg = Aggregate::default();
        for t in &mut threads {
            t.records = 10_000;
            agg.absorb(&t.take(Role::Produce));
        }
        assert!(threads[0].hist.is_empty(), "take() starts a new interval");
        for q in [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(
                agg.hist.value_at_quantile(q),
                all.value_at_quantile(q),
                "q {q}"
            );
        }
        let s = agg.summary(1.0);
        assert_eq!(
            (s.records, s.latency_samples, s.max_ns),
            (30_000, 30_000, all.max())
        );
        assert!(s.p99_ns < s.p999_ns && s.p50_ns < s.p99_ns);
    }

    #[test]
    fn merge_with_other_bounds_falls_back_to_recording() {
        let mut other = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        other.record_n(500, 7).unwrap();
        let mut h = new_histogram();
        merge(&mut h, &other);
        assert_eq!(h.len(), 7);
        assert!(h.equivalent(h.max(), 500));
    }

    #[test]
    fn ticks_are_per_interval_and_p99_cumulative() {
        let mut agg = Aggregate::default();
        let mut r = Recorder {
            records: 500,
            bytes: 500_000,
            ..Default::default()
        };
        r.record_latency_ns(1_000_000);
        r.record_wake_lag_ns(20_000);
        r.record_wake_lag_ns(40_000);
        agg.absorb(&r.take(Role::Consume));
        let t = agg.tick(1.0, 0.5);
        assert_eq!((t.records_per_s, t.mb_per_s), (1000.0, 1.0));
        let t2 = agg.tick(2.0, 1.0);
        assert_eq!(t2.records_per_s, 0.0);
        assert!(agg.hist.equivalent(t2.p99_ns, 1_000_000));
        let json = role_json(&agg, 1.0, "e2e");
        assert!(
            json.starts_with(
                "{\"latency_kind\":\"e2e\",\"measured_s\":1.000000,\"summary\":{\"records\":500,"
            ),
            "{json}"
        );
        assert!(json.contains("\"percentile_spectrum\":[{\"percentile\":"));
        assert_eq!(json.matches("elapsed_s").count(), 2);
        let sum = agg.summary(1.0);
        assert!(agg.wake_lag.equivalent(sum.wake_lag_p50_ns, 20_000));
        assert!(agg.wake_lag.equivalent(sum.wake_lag_max_ns, 40_000));
        assert!(json.contains("\"wake_lag_ns\":{\"p50\":"), "{json}");
        assert!(
            sum.line().contains("sender wake lag p50 20.0 µs"),
            "{}",
            sum.line()
        );
    }

    #[test]
    fn empty_summary_and_formats() {
        let s = Aggregate::default().summary(0.0);
        assert_eq!((s.p99_ns, s.max_ns, s.records), (0, 0, 0));
        assert_eq!(human_ns(812), "812 ns");
        assert_eq!(human_ns(81_200), "81.2 µs");
        assert_eq!(human_ns(6_975_500), "6.98 ms");
        assert_eq!(human_ns(32_100_000), "32.10 ms");
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
