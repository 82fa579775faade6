//! `ringmq bench`: load generator and latency meter, on our own client ([`crate::client`]).
//!
//! Shape of a run:
//! 1. Setup, on a throwaway glommio executor: connect, create the topic if `--partitions`
//!    is given and it is missing, learn its partitions, and fix the consumers' start offsets
//!    (latest for `e2e`, earliest for `consume`).
//! 2. Worker threads, thread-per-core like the broker: each is one glommio executor pinned to
//!    a CPU counted from the *last* one (the broker's shards are pinned from CPU 0), running
//!    its share of the producer and consumer tasks. Thread count: one per two CPUs, at most
//!    one per task, so the load generator uses fewer cores than it measures.
//! 3. Every second each thread ships its interval counts and histograms to the main thread,
//!    which merges them and prints a progress line; at the end the main thread prints the
//!    summary and writes `--json`.
//!
//! Time: all threads share one [`Clock`] (a monotonic base plus the wall-clock time at that
//! base). The run is `[0, warmup)` warm-up, then `[warmup, warmup + duration)` measured;
//! only records whose intended send time falls in the measured window count.
//!
//! See [`schedule`] for the open-loop math, [`stats`] for the histograms, [`micro`] for the
//! microbenchmarks that `benches/` run.

pub mod consume;
pub mod micro;
pub mod produce;
pub mod schedule;
pub mod stats;

use crate::client::{self, conn::Connection, ClientError};
use crate::protocol::list_offsets;
use stats::{Aggregate, Role, Sample};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the bench does.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Producers only; latency is intended send time → acknowledgement.
    Produce,
    /// Consumers only, from the earliest offset; latency is the fetch round trip.
    Consume,
    /// Producers and consumers; latency is the send time in the record → receipt.
    E2e,
}

/// How records are keyed (and so partitioned).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Null keys; each producer fills one partition's batch, then moves to the next.
    None,
    /// Random 8-byte keys, partition by key hash.
    Random,
    /// 8-byte keys counting up; partition = record number mod partitions.
    RoundRobin,
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("acks must be 0, 1 or all, not {s:?}")),
    }
}

/// Flags of `ringmq bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// produce, consume or e2e.
    #[arg(value_enum)]
    pub mode: Mode,
    /// Broker to connect to.
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    pub bootstrap: String,
    #[arg(long, default_value = "ringmq-bench", value_name = "NAME")]
    pub topic: String,
    /// Create the topic with N partitions if it is missing.
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub producers: u32,
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub consumers: u32,
    /// Value size of each record.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub record_bytes: usize,
    /// A batch is sent once it would exceed this size.
    #[arg(long, default_value_t = 16384, value_name = "N")]
    pub batch_bytes: usize,
    /// A batch is sent at the latest this long after its first record.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub linger_ms: u64,
    /// 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    pub acks: i16,
    /// Total records/s over all producers; 0 = as fast as possible (closed loop).
    #[arg(long, default_value_t = 0, value_name = "RECORDS_PER_S")]
    pub rate: u64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub warmup: f64,
    #[arg(long, value_enum, default_value_t = Keys::None)]
    pub keys: Keys,
    /// Write the summary, timeline and percentile spectrum here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Each bench thread polls this long for work before it parks (0 = park at once).
    /// Waking a parked vCPU costs tens of µs, which an open-loop latency run would charge
    /// to the broker; spinning keeps send times and reply pick-up prompt at the cost of
    /// one busy client core. Meant for low-rate latency runs.
    #[arg(long, default_value_t = 0, value_name = "MICROSECONDS")]
    pub spin_us: u64,
}

/// The run's shared time base.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_epoch_ns: u64,
}

impl Clock {
    /// A clock whose zero is `lead` from now.
    pub fn starting_in(lead: Duration) -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            base: Instant::now() + lead,
            base_epoch_ns: (epoch + lead).as_nanos() as u64,
        }
    }
    /// Nanoseconds since zero (0 before it).
    pub fn elapsed_ns(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.base)
            .as_nanos() as u64
    }
    /// Wall-clock ns since the Unix epoch of a run time.
    pub fn epoch_ns(&self, elapsed_ns: u64) -> u64 {
        self.base_epoch_ns + elapsed_ns
    }
    pub async fn sleep_until(&self, elapsed_ns: u64) {
        let at = self.base + Duration::from_nanos(elapsed_ns);
        let now = Instant::now();
        if at > now {
            glommio::timer::sleep(at - now).await;
        }
    }
}

/// Everything the worker tasks need, fixed before they start.
pub struct Plan {
    pub args: BenchArgs,
    /// The topic's partition indexes.
    pub partitions: Vec<i32>,
    /// Consumers' start offset per entry of `partitions`.
    pub start_offsets: Vec<i64>,
    /// `consume` mode: the log end per partition at setup; a consumer stops once it has
    /// read up to it (a catch-up read of the backlog). `i64::MAX` in other modes.
    pub end_offsets: Vec<i64>,
    /// Consumers that have read their whole backlog (`consume` mode).
    pub consumers_caught_up: AtomicU64,
    /// Latest time at which a consumer caught up (ns of run time).
    pub caught_up_ns: AtomicU64,
    pub clock: Clock,
    pub warmup_ns: u64,
    pub end_ns: u64,
    /// Consumers keep reading this long after producers stop (e2e), to collect stragglers.
    pub consume_stop_ns: u64,
}

impl Plan {
    /// Whether a run time falls in the measured window.
    pub fn in_window(&self, t_ns: u64) -> bool {
        t_ns >= self.warmup_ns && t_ns < self.end_ns
    }

    /// Seconds the throughput of `role` is divided by: the measured window, or for a
    /// catch-up read that finished early, the time from the warm-up's end to the last
    /// consumer catching up.
    pub fn measured_s(&self, role: Role) -> f64 {
        let window_s = (self.end_ns - self.warmup_ns) as f64 / 1e9;
        let all_caught_up =
            self.consumers_caught_up.load(Ordering::Relaxed) >= u64::from(self.args.consumers);
        if role == Role::Consume && self.args.mode == Mode::Consume && all_caught_up {
            let done_ns = self
                .caught_up_ns
                .load(Ordering::Relaxed)
                .clamp(self.warmup_ns, self.end_ns);
            return ((done_ns - self.warmup_ns) as f64 / 1e9).clamp(1e-3, window_s);
        }
        window_s
    }
}

/// How long after the run's end e2e consumers keep reading.
const E2E_DRAIN: Duration = Duration::from_secs(2);
/// Time between the plan being fixed and the run's zero, for connections to open.
const START_LEAD: Duration = Duration::from_millis(500);

fn validate(a: &BenchArgs) -> Result<(), String> {
    if a.duration <= 0.0 || a.warmup < 0.0 || !a.duration.is_finite() || !a.warmup.is_finite() {
        return Err("--duration must be positive and --warmup not negative".into());
    }
    if a.partitions.is_some_and(|p| p <= 0) {
        return Err("--partitions must be positive".into());
    }
    let producers_needed = a.mode != Mode::Consume;
    let consumers_needed = a.mode != Mode::Produce;
    if (producers_needed && a.producers == 0) || (consumers_needed && a.consumers == 0) {
        return Err(format!("{:?} needs at least one producer/consumer", a.mode));
    }
    if a.mode == Mode::E2e && a.record_bytes < 8 {
        return Err("e2e needs --record-bytes of at least 8 (the send time)".into());
    }
    if a.batch_bytes == 0 || a.record_bytes > 64 << 20 {
        return Err("--batch-bytes must be positive and --record-bytes at most 64 MiB".into());
    }
    Ok(())
}

/// Run the bench; prints progress and the summary to stdout.
pub fn run(args: BenchArgs) -> Result<(), String> {
    validate(&args)?;
    let (partitions, start_offsets, end_offsets) = on_executor({
        let args = args.clone();
        move || async move {
            setup(&args)
                .await
                .map_err(|e| format!("setup against {}: {e}", args.bootstrap))
        }
    })??;
    let clock = Clock::starting_in(START_LEAD);
    let warmup_ns = (args.warmup * 1e9) as u64;
    let end_ns = warmup_ns + (args.duration * 1e9) as u64;
    let consume_stop_ns = if args.mode == Mode::E2e {
        end_ns + E2E_DRAIN.as_nanos() as u64
    } else {
        end_ns
    };
    let plan = Arc::new(Plan {
        args,
        partitions,
        start_offsets,
        end_offsets,
        consumers_caught_up: AtomicU64::new(0),
        caught_up_ns: AtomicU64::new(0),
        clock,
        warmup_ns,
        end_ns,
        consume_stop_ns,
    });
    println!(
        "bench {:?}: topic {} ({} partitions), {} producers, {} consumers, rate {}, {} B records, acks {}",
        plan.args.mode,
        plan.args.topic,
        plan.partitions.len(),
        producers_of(&plan.args),
        consumers_of(&plan.args),
        if plan.args.rate == 0 { "max".to_string() } else { format!("{}/s", plan.args.rate) },
        plan.args.record_bytes,
        plan.args.acks
    );
    let (tx, rx) = flume::unbounded::<Sample>();
    let handles = spawn_workers(&plan, tx)?;
    // On Err the worker threads are left behind: joining a stuck one would hang.
    let (produce, consume) = collect(&plan, rx)?;
    for h in handles {
        h.join()
            .map_err(|_| "bench worker thread panicked".to_string())?;
    }
    report(&plan, &produce, &consume)
}

fn producers_of(a: &BenchArgs) -> u32 {
    if a.mode == Mode::Consume {
        0
    } else {
        a.producers
    }
}

fn consumers_of(a: &BenchArgs) -> u32 {
    if a.mode == Mode::Produce {
        0
    } else {
        a.consumers
    }
}

/// Run one future to completion on a fresh glommio executor on this thread's behalf.
fn on_executor<T, F, Fut>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("bench-setup")
        .spawn(f)
        .map_err(|e| format!("start executor: {e}"))?
        .join()
        .map_err(|e| format!("setup executor: {e:?}"))
}

/// The topic's partitions, the consumers' start offsets and (catch-up reads) end offsets.
async fn setup(a: &BenchArgs) -> Result<(Vec<i32>, Vec<i64>, Vec<i64>), ClientError> {
    let mut conn = Connection::connect(&a.bootstrap, "ringmq-bench-setup").await?;
    let mut partitions = client::topic_partitions(&mut conn, &a.topic).await?;
    if partitions.is_none() {
        if let Some(n) = a.partitions {
            client::create_topic(&mut conn, &a.topic, n).await?;
            for _ in 0..50 {
                partitions = client::topic_partitions(&mut conn, &a.topic).await?;
                if partitions.as_ref().is_some_and(|p| p.len() == n as usize) {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let partitions = match partitions {
        Some(p) if !p.is_empty() => p,
        _ => {
            return Err(ClientError::Protocol(format!(
                "topic {} is missing; pass --partitions to create it",
                a.topic
            )))
        }
    };
    let n = partitions.len();
    let (latest, earliest) = (
        list_offsets::LATEST_TIMESTAMP,
        list_offsets::EARLIEST_TIMESTAMP,
    );
    let (start, end) = match a.mode {
        Mode::Produce => (vec![0; n], vec![i64::MAX; n]),
        Mode::E2e => {
            let start = client::list_offsets(&mut conn, &a.topic, &partitions, latest).await?;
            (start, vec![i64::MAX; n])
        }
        Mode::Consume => (
            client::list_offsets(&mut conn, &a.topic, &partitions, earliest).await?,
            client::list_offsets(&mut conn, &a.topic, &partitions, latest).await?,
        ),
    };
    Ok((partitions, start, end))
}

/// (kind, index) of each task; kinds alternate so threads get a mix.
fn tasks(a: &BenchArgs) -> Vec<(Role, u64)> {
    let p = (0..producers_of(a)).map(|i| (Role::Produce, u64::from(i)));
    let c = (0..consumers_of(a)).map(|i| (Role::Consume, u64::from(i)));
    p.chain(c).collect()
}

fn spawn_workers(
    plan: &Arc<Plan>,
    tx: flume::Sender<Sample>,
) -> Result<Vec<glommio::ExecutorJoinHandle<()>>, String> {
    let all = tasks(&plan.args);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cpus / 2).max(1).min(all.len().max(1));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let mine: Vec<(Role, u64)> = all.iter().copied().skip(t).step_by(threads).collect();
        let (plan, tx) = (plan.clone(), tx.clone());
        let cpu = cpus - 1 - (t % cpus);
        let mut builder = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu))
            .name(&format!("bench-{t}"));
        if plan.args.spin_us > 0 {
            builder = builder.spin_before_park(Duration::from_micros(plan.args.spin_us));
        }
        let h = builder
            .spawn(move || worker(plan, mine, tx))
            .map_err(|e| format!("start bench thread {t}: {e}"))?;
        handles.push(h);
    }
    Ok(handles)
}

/// Linux lets a sleeping thread's timer fire up to its "timer slack" late (50 µs by
/// default), which an open-loop sender would charge to the broker. Ask for 1 ns.
fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects this thread.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

async fn worker(plan: Arc<Plan>, mine: Vec<(Role, u64)>, tx: flume::Sender<Sample>) {
    tighten_timer_slack();
    let produce_rec = Rc::new(RefCell::new(stats::Recorder::default()));
    let consume_rec = Rc::new(RefCell::new(stats::Recorder::default()));
    let ship = {
        let (p, c, tx) = (produce_rec.clone(), consume_rec.clone(), tx.clone());
        move || {
            let _ = tx.send(p.borrow_mut().take(Role::Produce));
            let _ = tx.send(c.borrow_mut().take(Role::Consume));
        }
    };
    let ticker = {
        let ship = ship.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_secs(1)).await;
                ship();
            }
        })
    };
    let mut joins = Vec::new();
    for (role, i) in mine {
        joins.push(match role {
            Role::Produce => {
                glommio::spawn_local(produce::run(plan.clone(), i, produce_rec.clone()))
            }
            Role::Consume => {
                glommio::spawn_local(consume::run(plan.clone(), i, consume_rec.clone()))
            }
        });
    }
    for j in joins {
        j.await;
    }
    drop(ticker.cancel());
    ship();
}

/// Merge samples until every worker is done, printing a progress line each second.
/// Gives up on workers this long after the consumers' stop time (producers drain for at
/// most [`produce::DRAIN_TIMEOUT`]); a worker that has not finished by then is stuck.
const WORKER_GIVE_UP: Duration = Duration::from_secs(30);

fn collect(plan: &Plan, rx: flume::Receiver<Sample>) -> Result<(Aggregate, Aggregate), String> {
    let (mut produce, mut consume) = (Aggregate::default(), Aggregate::default());
    let tick = Duration::from_secs(1);
    let mut last = Instant::now();
    let give_up_ns = plan.consume_stop_ns + WORKER_GIVE_UP.as_nanos() as u64;
    loop {
        if plan.clock.elapsed_ns() > give_up_ns {
            return Err("bench workers did not finish in time (a worker panicked or hung)".into());
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(s) => match s.role {
                Role::Produce => produce.absorb(&s),
                Role::Consume => consume.absorb(&s),
            },
            Err(flume::RecvTimeoutError::Timeout) => {}
            Err(flume::RecvTimeoutError::Disconnected) => break,
        }
        if last.elapsed() >= tick {
            let interval_s = last.elapsed().as_secs_f64();
            last = Instant::now();
            let run_s = plan.clock.elapsed_ns() as f64 / 1e9;
            let mut line = format!("[{run_s:6.1}s]");
            for (name, agg, active) in [
                ("produce", &mut produce, producers_of(&plan.args) > 0),
                ("consume", &mut consume, consumers_of(&plan.args) > 0),
            ] {
                let t = agg.tick(run_s, interval_s);
                if active {
                    line.push_str(&format!(
                        "  {name} {:.0} rec/s {:.2} MB/s p99 {}",
                        t.records_per_s,
                        t.mb_per_s,
                        stats::human_ns(t.p99_ns)
                    ));
                }
            }
            if plan.clock.elapsed_ns() < plan.warmup_ns {
                line.push_str("  (warm-up)");
            }
            println!("{line}");
        }
    }
    Ok((produce, consume))
}

fn latency_kind(role: Role, mode: Mode) -> &'static str {
    match (role, mode) {
        (Role::Produce, _) => "intended send time to acknowledgement",
        (Role::Consume, Mode::E2e) => {
            "intended send time (in the record) to receipt by the consumer"
        }
        (Role::Consume, _) => "fetch round trip",
    }
}

fn report(plan: &Plan, produce: &Aggregate, consume: &Aggregate) -> Result<(), String> {
    let mut roles = Vec::new();
    if producers_of(&plan.args) > 0 {
        roles.push(("produce", Role::Produce, produce));
    }
    if consumers_of(&plan.args) > 0 {
        roles.push(("consume", Role::Consume, consume));
    }
    for (name, role, agg) in &roles {
        println!("{name}: {}", agg.summary(plan.measured_s(*role)).line());
    }
    if let Some(path) = &plan.args.json {
        let json = run_json(plan, &roles);
        std::fs::write(path, json).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    let errors: u64 = roles.iter().map(|(_, _, a)| a.errors.total()).sum();
    let records: u64 = roles.iter().map(|(_, _, a)| a.records).sum();
    if records == 0 {
        return Err(format!("no records measured ({errors} errors)"));
    }
    Ok(())
}

/// The flag spelling of an enum value ("round-robin").
fn value_name(v: &impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

fn run_json(plan: &Plan, roles: &[(&str, Role, &Aggregate)]) -> String {
    let a = &plan.args;
    let mut s = format!(
        "{{\"tool\":\"ringmq bench\",\"version\":{},\"mode\":{},\"args\":{{\"bootstrap\":{},\"topic\":{},\
         \"partitions\":{},\"producers\":{},\"consumers\":{},\"record_bytes\":{},\"batch_bytes\":{},\
         \"linger_ms\":{},\"acks\":{},\"rate\":{},\"duration_s\":{},\"warmup_s\":{},\"keys\":{}}}",
        stats::json_str(env!("CARGO_PKG_VERSION")),
        stats::json_str(&value_name(&a.mode)),
        stats::json_str(&a.bootstrap),
        stats::json_str(&a.topic),
        plan.partitions.len(),
        producers_of(a),
        consumers_of(a),
        a.record_bytes,
        a.batch_bytes,
        a.linger_ms,
        a.acks,
        a.rate,
        a.duration,
        a.warmup,
        stats::json_str(&value_name(&a.keys)),
    );
    for (name, role, agg) in roles {
        let json = stats::role_json(agg, plan.measured_s(*role), latency_kind(*role, a.mode));
        s.push_str(&format!(",\"{name}\":{json}"));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn flags_parse_with_the_issue_names_and_defaults() {
        let a = parse(&[
            "e2e",
            "--acks",
            "all",
            "--keys",
            "round-robin",
            "--rate",
            "5000",
            "--partitions",
            "16",
        ])
        .unwrap();
        assert_eq!(
            (a.mode, a.acks, a.keys, a.rate, a.partitions),
            (Mode::E2e, -1, Keys::RoundRobin, 5000, Some(16))
        );
        assert_eq!(
            (a.bootstrap.as_str(), a.record_bytes, a.producers),
            ("127.0.0.1:9092", 1024, 1)
        );
        assert!(parse(&["produce", "--acks", "2"]).is_err());
        assert!(parse(&["sideways"]).is_err());
        let a = parse(&[
            "produce",
            "--json",
            "/tmp/x.json",
            "--duration",
            "0.5",
            "--warmup",
            "0",
        ])
        .unwrap();
        assert!(validate(&a).is_ok());
        let bad = parse(&["e2e", "--record-bytes", "4"]).unwrap();
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn tasks_cover_every_producer_and_consumer() {
        let a = parse(&["e2e", "--producers", "3", "--consumers", "2"]).unwrap();
        assert_eq!(tasks(&a).len(), 5);
        let a = parse(&["produce", "--producers", "3", "--consumers", "2"]).unwrap();
        assert_eq!(tasks(&a).len(), 3);
    }

    #[test]
    fn clock_maps_run_time_to_wall_time() {
        let c = Clock::starting_in(Duration::from_millis(50));
        assert_eq!(c.elapsed_ns(), 0, "before zero");
        assert_eq!(c.epoch_ns(1_000) - c.epoch_ns(0), 1_000);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let zero = c.epoch_ns(0);
        assert!(zero > wall && zero - wall < 100_000_000);
    }
}
