//! Per-shard counters and latency histograms, rendered as Prometheus text.
//!
//! Each shard owns one [`ShardMetrics`] (plain `Cell`s: only its executor touches it). A
//! scrape of `/metrics` (served by shard 0, see `server::http`) asks every shard for a
//! [`Snapshot`] through the router and renders them all, one `shard` label per shard.
//! Nothing here allocates on the produce or fetch path except the first time a topic is seen.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in microseconds.
pub const LATENCY_BUCKETS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// A fixed-bucket latency histogram.
pub struct Histogram {
    counts: [Cell<u64>; LATENCY_BUCKETS_US.len() + 1],
    sum_us: Cell<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| Cell::new(0)),
            sum_us: Cell::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US.partition_point(|&b| b < us);
        self.counts[i].set(self.counts[i].get() + 1);
        self.sum_us.set(self.sum_us.get().saturating_add(us));
    }
    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.iter().map(Cell::get).collect(),
            sum_us: self.sum_us.get(),
        }
    }
}

/// Bytes and records in and out of one topic on one shard.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct TopicCounters {
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
    pub records_out: u64,
}

/// One shard's metrics. `!Send`: owned by the shard's executor.
#[derive(Default)]
pub struct ShardMetrics {
    topics: RefCell<HashMap<Arc<str>, TopicCounters>>,
    requests: RefCell<BTreeMap<i16, u64>>,
    errors: RefCell<BTreeMap<(i16, i16), u64>>,
    pub produce_latency: Histogram,
    pub fetch_latency: Histogram,
    pub fsync_latency: Histogram,
    pub cache_hits: Cell<u64>,
    pub cache_misses: Cell<u64>,
    pub connections: Cell<u64>,
    pub partitions: Cell<u64>,
    /// Unsynced torn tails cut when partitions were opened (a crash's normal residue).
    pub recovery_cut: Cell<u64>,
    /// Unreadable synced data set aside (quarantined or a gap) when partitions were opened.
    pub recovery_quarantined: Cell<u64>,
    /// Connections closed at accept, by [`CONNECTION_REFUSALS`] reason.
    pub connections_refused: [Cell<u64>; 2],
    /// Connections closed by a timeout, by [`CONNECTION_TIMEOUTS`] reason.
    pub connections_timed_out: [Cell<u64>; 3],
    /// Successful SASL authentications (and re-authentications).
    pub sasl_authentications: Cell<u64>,
    /// Failed SASL authentications (wrong credentials, malformed or out-of-order exchanges).
    pub sasl_authentication_failures: Cell<u64>,
    /// TLS handshakes that failed (bytes that are not TLS, a refused certificate, too slow).
    pub tls_handshake_failures: Cell<u64>,
}

/// The `reason` labels of `ringmq_connections_refused_total`.
pub const CONNECTION_REFUSALS: [&str; 2] = ["max_connections", "max_connections_per_ip"];
/// The `reason` labels of `ringmq_connections_timed_out_total`.
pub const CONNECTION_TIMEOUTS: [&str; 3] = ["idle", "request_read", "response_write"];

/// Add one to the counter of `reason` among `labels`.
pub fn count_reason<const N: usize>(cells: &[Cell<u64>; N], labels: &[&str; N], reason: &str) {
    if let Some(i) = labels.iter().position(|l| *l == reason) {
        cells[i].set(cells[i].get() + 1);
    }
}

impl ShardMetrics {
    fn topic(&self, topic: &Arc<str>, f: impl FnOnce(&mut TopicCounters)) {
        let mut topics = self.topics.borrow_mut();
        match topics.get_mut(topic) {
            Some(c) => f(c),
            None => f(topics.entry(topic.clone()).or_default()),
        }
    }
    pub fn appended(&self, topic: &Arc<str>, bytes: usize, records: u64) {
        self.topic(topic, |c| {
            c.bytes_in += bytes as u64;
            c.records_in += records;
        });
    }
    pub fn fetched(&self, topic: &Arc<str>, bytes: usize, records: u64) {
        self.topic(topic, |c| {
            c.bytes_out += bytes as u64;
            c.records_out += records;
        });
    }
    pub fn request(&self, api_key: i16) {
        *self.requests.borrow_mut().entry(api_key).or_default() += 1;
    }
    pub fn error(&self, api_key: i16, code: i16) {
        *self.errors.borrow_mut().entry((api_key, code)).or_default() += 1;
    }
    pub fn snapshot(&self, shard: u16) -> Snapshot {
        Snapshot {
            shard,
            topics: self
                .topics
                .borrow()
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            requests: self
                .requests
                .borrow()
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect(),
            errors: self.errors.borrow().iter().map(|(k, v)| (*k, *v)).collect(),
            produce_latency: self.produce_latency.snapshot(),
            fetch_latency: self.fetch_latency.snapshot(),
            fsync_latency: self.fsync_latency.snapshot(),
            cache_hits: self.cache_hits.get(),
            cache_misses: self.cache_misses.get(),
            connections: self.connections.get(),
            partitions: self.partitions.get(),
            recovery_cut: self.recovery_cut.get(),
            recovery_quarantined: self.recovery_quarantined.get(),
            connections_refused: self.connections_refused.each_ref().map(Cell::get),
            connections_timed_out: self.connections_timed_out.each_ref().map(Cell::get),
            sasl_authentications: self.sasl_authentications.get(),
            sasl_authentication_failures: self.sasl_authentication_failures.get(),
            tls_handshake_failures: self.tls_handshake_failures.get(),
            log_ends: Vec::new(),
            committed: Vec::new(),
            cluster: None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct HistogramSnapshot {
    pub counts: Vec<u64>,
    pub sum_us: u64,
}

/// A copy of one shard's metrics, sent to the shard that renders them.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub shard: u16,
    pub topics: Vec<(String, TopicCounters)>,
    pub requests: Vec<(i16, u64)>,
    pub errors: Vec<((i16, i16), u64)>,
    pub produce_latency: HistogramSnapshot,
    pub fetch_latency: HistogramSnapshot,
    pub fsync_latency: HistogramSnapshot,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub connections: u64,
    pub partitions: u64,
    pub recovery_cut: u64,
    pub recovery_quarantined: u64,
    pub connections_refused: [u64; 2],
    pub connections_timed_out: [u64; 3],
    pub sasl_authentications: u64,
    pub sasl_authentication_failures: u64,
    pub tls_handshake_failures: u64,
    /// (topic, partition, high watermark) of the partitions this shard owns.
    pub log_ends: Vec<(String, i32, i64)>,
    /// (group, topic, partition, committed offset) of the groups this shard coordinates.
    pub committed: Vec<(String, String, i32, i64)>,
    /// Node-wide cluster state: only in the snapshot of shard 0, which runs gossip and the
    /// controller.
    pub cluster: Option<ClusterGauges>,
}

/// This node's view of the cluster, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterGauges {
    /// Nodes known (the controller's registry and gossip) that are alive, suspect, dead.
    pub nodes: [u64; 3],
    /// The controller leader's node id; -1: none known.
    pub controller_leader: i64,
    pub controller_term: u64,
    pub controller_commit_index: u64,
    /// Gossip (UDP) packets sent, received, and received but dropped as malformed.
    pub gossip_sent: u64,
    pub gossip_received: u64,
    pub gossip_bad: u64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    snaps: &[Snapshot],
    pick: fn(&Snapshot) -> &HistogramSnapshot,
) {
    family(out, name, "histogram", help);
    for s in snaps {
        let h = pick(s);
        let mut cumulative = 0;
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count;
            let le = LATENCY_BUCKETS_US
                .get(i)
                .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(
                out,
                "{name}_bucket{{shard=\"{}\",le=\"{le}\"}} {cumulative}",
                s.shard
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{shard=\"{}\"}} {}",
            s.shard,
            h.sum_us as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{shard=\"{}\"}} {cumulative}", s.shard);
    }
}

/// Prometheus text exposition (format 0.0.4) of every shard's snapshot.
pub fn render(snaps: &[Snapshot]) -> String {
    let mut out = String::new();
    topic_counters(&mut out, snaps);
    request_counters(&mut out, snaps);
    latency_histograms(&mut out, snaps);
    shard_gauges(&mut out, snaps);
    connection_counters(&mut out, snaps);
    cluster_gauges(&mut out, snaps);
    group_lag(&mut out, snaps);
    out
}

/// Bytes and records in and out, per shard and topic.
fn topic_counters(out: &mut String, snaps: &[Snapshot]) {
    let topic_counters: [(&str, &str, fn(&TopicCounters) -> u64); 4] = [
        (
            "ringmq_topic_bytes_in_total",
            "Record batch bytes appended",
            |c| c.bytes_in,
        ),
        ("ringmq_topic_records_in_total", "Records appended", |c| {
            c.records_in
        }),
        (
            "ringmq_topic_bytes_out_total",
            "Record batch bytes served to fetches",
            |c| c.bytes_out,
        ),
        (
            "ringmq_topic_records_out_total",
            "Records served to fetches (whole batches)",
            |c| c.records_out,
        ),
    ];
    for (name, help, get) in topic_counters {
        family(out, name, "counter", help);
        for s in snaps {
            for (topic, c) in &s.topics {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{}\",topic=\"{}\"}} {}",
                    s.shard,
                    escape(topic),
                    get(c)
                );
            }
        }
    }
}

/// Requests and error codes answered, per shard and API key.
fn request_counters(out: &mut String, snaps: &[Snapshot]) {
    family(
        out,
        "ringmq_requests_total",
        "counter",
        "Requests handled, by Kafka API key",
    );
    for s in snaps {
        for (api, n) in &s.requests {
            let _ = writeln!(
                out,
                "ringmq_requests_total{{shard=\"{}\",api_key=\"{api}\"}} {n}",
                s.shard
            );
        }
    }
    family(
        out,
        "ringmq_errors_total",
        "counter",
        "Partition-level error codes answered, by API key and code",
    );
    for s in snaps {
        for ((api, code), n) in &s.errors {
            let _ = writeln!(
                out,
                "ringmq_errors_total{{shard=\"{}\",api_key=\"{api}\",code=\"{code}\"}} {n}",
                s.shard
            );
        }
    }
}

/// Produce, fetch and fsync latencies, per shard.
fn latency_histograms(out: &mut String, snaps: &[Snapshot]) {
    histogram(
        out,
        "ringmq_produce_latency_seconds",
        "Produce request handling time",
        snaps,
        |s| &s.produce_latency,
    );
    histogram(
        out,
        "ringmq_fetch_latency_seconds",
        "Fetch request handling time, long-poll wait included",
        snaps,
        |s| &s.fetch_latency,
    );
    histogram(
        out,
        "ringmq_fsync_latency_seconds",
        "Group commit (write + fdatasync) wait of acks=-1 produces",
        snaps,
        |s| &s.fsync_latency,
    );
}

/// Batch cache hits and misses, connections, partitions and recovery actions, per shard.
fn shard_gauges(out: &mut String, snaps: &[Snapshot]) {
    let gauges: [(&str, &str, &str, fn(&Snapshot) -> u64); 9] = [
        (
            "ringmq_batch_cache_hits_total",
            "counter",
            "Fetch reads served from the batch cache",
            |s| s.cache_hits,
        ),
        (
            "ringmq_batch_cache_misses_total",
            "counter",
            "Fetch reads served from disk",
            |s| s.cache_misses,
        ),
        (
            "ringmq_connections",
            "gauge",
            "Open client connections",
            |s| s.connections,
        ),
        (
            "ringmq_partitions",
            "gauge",
            "Partitions owned and open",
            |s| s.partitions,
        ),
        (
            "ringmq_storage_recovery_cut_total",
            "counter",
            "Unsynced torn log tails truncated when partitions were opened",
            |s| s.recovery_cut,
        ),
        (
            "ringmq_storage_recovery_quarantined_total",
            "counter",
            "Unreadable synced log data quarantined (or found missing) when partitions were opened",
            |s| s.recovery_quarantined,
        ),
        (
            "ringmq_sasl_authentications_total",
            "counter",
            "Successful SASL authentications and re-authentications",
            |s| s.sasl_authentications,
        ),
        (
            "ringmq_sasl_authentication_failures_total",
            "counter",
            "Failed SASL authentications (each answered after a delay, then closed)",
            |s| s.sasl_authentication_failures,
        ),
        (
            "ringmq_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed (not TLS, a refused certificate, or too slow); each closed its connection",
            |s| s.tls_handshake_failures,
        ),
    ];
    for (name, kind, help, get) in gauges {
        family(out, name, kind, help);
        for s in snaps {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, get(s));
        }
    }
}

/// Connections refused at accept and closed by a timeout, per shard and reason.
fn connection_counters(out: &mut String, snaps: &[Snapshot]) {
    let name = "ringmq_connections_refused_total";
    let help = "Connections closed at accept: past --max-connections or --max-connections-per-ip";
    family(out, name, "counter", help);
    for s in snaps {
        for (reason, n) in CONNECTION_REFUSALS.iter().zip(s.connections_refused) {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{}\",reason=\"{reason}\"}} {n}",
                s.shard
            );
        }
    }
    let name = "ringmq_connections_timed_out_total";
    let help = "Connections closed by --connections-max-idle-ms, --request-read-timeout-ms or --response-write-timeout-ms";
    family(out, name, "counter", help);
    for s in snaps {
        for (reason, n) in CONNECTION_TIMEOUTS.iter().zip(s.connections_timed_out) {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{}\",reason=\"{reason}\"}} {n}",
                s.shard
            );
        }
    }
}

/// Node-wide gauges of gossip and the controller, from the snapshot that carries them.
fn cluster_gauges(out: &mut String, snaps: &[Snapshot]) {
    let Some(g) = snaps.iter().find_map(|s| s.cluster) else {
        return;
    };
    let help = "Nodes this node knows (controller registry and gossip), by gossip state";
    family(out, "ringmq_cluster_nodes", "gauge", help);
    for (state, n) in ["alive", "suspect", "dead"].into_iter().zip(g.nodes) {
        let _ = writeln!(out, "ringmq_cluster_nodes{{state=\"{state}\"}} {n}");
    }
    let single: [(&str, &str, &str, i64); 6] = [
        (
            "ringmq_controller_leader_id",
            "gauge",
            "Node id of the controller leader this node knows (-1: none)",
            g.controller_leader,
        ),
        (
            "ringmq_controller_term",
            "gauge",
            "Raft term of the controller group on this node",
            g.controller_term as i64,
        ),
        (
            "ringmq_controller_commit_index",
            "gauge",
            "Raft commit index of the controller log on this node",
            g.controller_commit_index as i64,
        ),
        (
            "ringmq_gossip_packets_sent_total",
            "counter",
            "Gossip (UDP) packets sent",
            g.gossip_sent as i64,
        ),
        (
            "ringmq_gossip_packets_received_total",
            "counter",
            "Gossip (UDP) packets received",
            g.gossip_received as i64,
        ),
        (
            "ringmq_gossip_bad_packets_total",
            "counter",
            "Gossip packets received and dropped as malformed",
            g.gossip_bad as i64,
        ),
    ];
    for (name, kind, help, value) in single {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// `ringmq_consumer_group_lag`: high watermark minus committed offset, per group partition
/// (the two come from different shards: the partition's owner and the group's coordinator).
fn group_lag(out: &mut String, snaps: &[Snapshot]) {
    let ends: HashMap<(&str, i32), i64> = snaps
        .iter()
        .flat_map(|s| s.log_ends.iter().map(|(t, p, e)| ((t.as_str(), *p), *e)))
        .collect();
    family(
        out,
        "ringmq_consumer_group_lag",
        "gauge",
        "Records between a group's committed offset and the high watermark",
    );
    let mut rows: Vec<&(String, String, i32, i64)> =
        snaps.iter().flat_map(|s| s.committed.iter()).collect();
    rows.sort();
    for (group, topic, partition, committed) in rows {
        if let Some(end) = ends.get(&(topic.as_str(), *partition)) {
            let lag = (end - committed).max(0);
            let (group, topic) = (escape(group), escape(topic));
            let _ = writeln!(
                out,
                "ringmq_consumer_group_lag{{group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\"}} {lag}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = ShardMetrics::default();
        let t: Arc<str> = Arc::from("orders");
        m.appended(&t, 100, 3);
        m.appended(&t, 50, 2);
        m.request(0);
        m.error(0, 2);
        m.produce_latency.record(Duration::from_micros(120));
        let text = render(&[m.snapshot(0)]);
        assert!(text.contains("ringmq_topic_records_in_total{shard=\"0\",topic=\"orders\"} 5"));
        assert!(text.contains("ringmq_topic_bytes_in_total{shard=\"0\",topic=\"orders\"} 150"));
        assert!(text.contains("ringmq_errors_total{shard=\"0\",api_key=\"0\",code=\"2\"} 1"));
        assert!(
            text.contains("ringmq_produce_latency_seconds_bucket{shard=\"0\",le=\"0.00025\"} 1")
        );
        assert!(text.contains("ringmq_produce_latency_seconds_bucket{shard=\"0\",le=\"0.0001\"} 0"));
        assert!(text.contains("ringmq_produce_latency_seconds_count{shard=\"0\"} 1"));
    }

    #[test]
    fn cluster_gauges_come_from_the_snapshot_that_has_them() {
        let mut s0 = ShardMetrics::default().snapshot(0);
        s0.cluster = Some(ClusterGauges {
            nodes: [2, 1, 4],
            controller_leader: 3,
            controller_term: 7,
            controller_commit_index: 17,
            gossip_sent: 5,
            gossip_received: 6,
            gossip_bad: 1,
        });
        let text = render(&[ShardMetrics::default().snapshot(1), s0]);
        for line in [
            "ringmq_cluster_nodes{state=\"alive\"} 2\n",
            "ringmq_cluster_nodes{state=\"suspect\"} 1\n",
            "ringmq_cluster_nodes{state=\"dead\"} 4\n",
            "ringmq_controller_leader_id 3\n",
            "ringmq_controller_term 7\n",
            "ringmq_controller_commit_index 17\n",
            "ringmq_gossip_packets_sent_total 5\n",
            "ringmq_gossip_packets_received_total 6\n",
            "ringmq_gossip_bad_packets_total 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let without = render(&[ShardMetrics::default().snapshot(0)]);
        assert!(!without.contains("ringmq_cluster_nodes"));
    }

    #[test]
    fn lag_joins_log_ends_and_commits_across_shards() {
        let mut owner = ShardMetrics::default().snapshot(0);
        owner.log_ends = vec![("t".into(), 0, 100), ("t".into(), 1, 5)];
        let mut coordinator = ShardMetrics::default().snapshot(1);
        coordinator.committed = vec![
            ("g".into(), "t".into(), 0, 40),
            ("g".into(), "t".into(), 1, 5),
        ];
        let text = render(&[owner, coordinator]);
        assert!(
            text.contains("ringmq_consumer_group_lag{group=\"g\",topic=\"t\",partition=\"0\"} 60"),
            "{text}"
        );
        assert!(
            text.contains("ringmq_consumer_group_lag{group=\"g\",topic=\"t\",partition=\"1\"} 0")
        );
    }
}
