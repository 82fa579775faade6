//! Open-loop send schedule: when each record *should* be sent.
//!
//! With a fixed total rate `R` records/s spread over `n` producers, the run's records are
//! numbered globally `g = 0, 1, 2, …` and record `g` is intended at `ceil(g · 10⁹ / R)` ns
//! after the start. Producer `p` owns the records `g = p + k·n` (its `k`-th record), so the
//! producers interleave evenly and together keep exactly the total rate. Latency is measured
//! from this intended time, not from when the record was actually handed to the socket, so a
//! broker that stalls is charged for every record that should have been sent during the
//! stall (no coordinated omission). Integer arithmetic only: no drift over long runs.

const NS_PER_S: u128 = 1_000_000_000;

/// The schedule of one producer. `rate_per_s == 0` means closed loop (as fast as possible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate_per_s: u64,
    producer: u64,
    producers: u64,
}

impl Schedule {
    /// Schedule of producer `producer` of `producers` sharing `rate_per_s` records/s.
    pub fn new(rate_per_s: u64, producer: u64, producers: u64) -> Self {
        let producers = producers.max(1);
        Schedule {
            rate_per_s,
            producer: producer.min(producers - 1),
            producers,
        }
    }

    pub fn is_open_loop(&self) -> bool {
        self.rate_per_s > 0
    }

    /// Global sequence number of this producer's `k`-th record.
    pub fn global_seq(&self, k: u64) -> u64 {
        self.producer + k * self.producers
    }

    /// Intended send time of this producer's `k`-th record, in ns after the start.
    /// Closed loop: always 0 (the caller uses the actual append time instead).
    pub fn intended_ns(&self, k: u64) -> u64 {
        if self.rate_per_s == 0 {
            return 0;
        }
        let num = u128::from(self.global_seq(k)) * NS_PER_S;
        let rate = u128::from(self.rate_per_s);
        num.div_ceil(rate).min(u128::from(u64::MAX)) as u64
    }

    /// How many of this producer's records are due by `elapsed_ns` (intended time ≤ it).
    /// Closed loop: unbounded.
    pub fn due_by(&self, elapsed_ns: u64) -> u64 {
        if self.rate_per_s == 0 {
            return u64::MAX;
        }
        // Record g is due iff g·10⁹ ≤ elapsed·R, i.e. g ≤ floor(elapsed·R / 10⁹).
        let g_max = u128::from(elapsed_ns) * u128::from(self.rate_per_s) / NS_PER_S;
        let g_max = g_max.min(u128::from(u64::MAX / 2)) as u64;
        if g_max < self.producer {
            return 0;
        }
        (g_max - self.producer) / self.producers + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_producer_is_evenly_spaced() {
        let s = Schedule::new(1000, 0, 1);
        assert_eq!(s.intended_ns(0), 0);
        assert_eq!(s.intended_ns(1), 1_000_000);
        assert_eq!(s.intended_ns(1000), 1_000_000_000);
        assert_eq!(s.due_by(0), 1);
        assert_eq!(s.due_by(999_999), 1);
        assert_eq!(s.due_by(1_000_000), 2);
        assert_eq!(s.due_by(10_000_000_000), 10_001);
    }

    #[test]
    fn due_by_and_intended_agree_exactly() {
        for (rate, n) in [(3u64, 1u64), (7, 3), (1_000_000, 4), (999_983, 7), (1, 2)] {
            for p in 0..n {
                let s = Schedule::new(rate, p, n);
                for k in 0..500 {
                    let t = s.intended_ns(k);
                    assert!(
                        s.due_by(t) > k,
                        "rate {rate} p {p} k {k}: due at its own time"
                    );
                    if t > 0 {
                        assert!(
                            s.due_by(t - 1) <= k,
                            "rate {rate} p {p} k {k}: not due 1 ns early"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn producers_interleave_to_the_total_rate() {
        let n = 4;
        let all: Vec<Schedule> = (0..n).map(|p| Schedule::new(1000, p, n)).collect();
        let one_s = 1_000_000_000 - 1;
        let total: u64 = all.iter().map(|s| s.due_by(one_s)).sum();
        assert_eq!(
            total, 1000,
            "records due within the first second, over all producers"
        );
        let mut times: Vec<u64> = all
            .iter()
            .flat_map(|s| (0..10).map(|k| s.intended_ns(k)))
            .collect();
        times.sort_unstable();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] == 1_000_000),
            "{times:?}"
        );
    }

    #[test]
    fn closed_loop_is_unbounded_and_long_runs_do_not_overflow() {
        let s = Schedule::new(0, 0, 1);
        assert!(!s.is_open_loop());
        assert_eq!(s.due_by(5), u64::MAX);
        let fast = Schedule::new(u64::MAX, 0, 1);
        assert_eq!(fast.due_by(u64::MAX), u64::MAX / 2 + 1);
        let slow = Schedule::new(1, 0, 1);
        assert_eq!(slow.intended_ns(u64::MAX), u64::MAX);
    }
}
