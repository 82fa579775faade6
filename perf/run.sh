#!/usr/bin/env bash
# Run one perf/ workload end to end and write a results folder (see perf/README.md):
# build release, start ringmq (or target --bootstrap), record the environment, measure the
# machine's limits (fio O_DIRECT write bandwidth and fdatasync latency, loopback TCP), run
# `ringmq bench` while sampling broker and bench CPU/RSS, then write report.md and SVG plots.
#
# usage: perf/run.sh WORKLOAD.env [--bootstrap HOST:PORT] [--out DIR] [--no-build]
#                                 [--quick] [--no-limits] [--data-dir DIR]
# env:   RINGMQ     broker binary (default: target/release/ringmq, built here)
#        BENCH_CMD  command that runs the bench (default: "$RINGMQ bench")
#        PERF_DURATION / PERF_WARMUP override the workload's seconds, PERF_RATE its rate,
#        PERF_BACKLOG_MB its backlog
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

WORKLOAD="" BOOTSTRAP="" OUT="" BUILD=1 QUICK=0 LIMITS=1 DATA_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bootstrap) BOOTSTRAP=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --quick) QUICK=1; shift ;;
    --no-limits) LIMITS=0; shift ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) WORKLOAD=$1; shift ;;
  esac
done
[ -n "$WORKLOAD" ] && [ -f "$WORKLOAD" ] || usage

# Defaults, then the workload file (plain KEY=value lines).
MODE=produce TOPICS=1 PARTITIONS=16 PRODUCERS=1 CONSUMERS=1 RECORD_BYTES=1024
BATCH_BYTES=16384 LINGER_MS=5 ACKS=1 RATE=0 KEYS=none DURATION=60 WARMUP=10
DURABILITY=always SHARDS=1 BACKLOG_MB=0 PORT=19092 BROKER_SPIN_US=50 BENCH_SPIN_US=0
# shellcheck disable=SC1090
. "$WORKLOAD"
NAME=$(basename "$WORKLOAD" .env)
DURATION=${PERF_DURATION:-$DURATION}
WARMUP=${PERF_WARMUP:-$WARMUP}
RATE=${PERF_RATE:-$RATE}
BACKLOG_MB=${PERF_BACKLOG_MB:-$BACKLOG_MB}
if [ "$QUICK" = 1 ]; then
  DURATION=5 WARMUP=1
  [ "$BACKLOG_MB" -gt 256 ] && BACKLOG_MB=256
fi

OUT=${OUT:-$ROOT/perf/results/$(date -u +%Y%m%d-%H%M%S)-$NAME}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DATA_DIR=${DATA_DIR:-$OUT/data}
log() { echo "[perf] $*" >&2; }
PIDS_TO_STOP=()
cleanup() {
  for p in "${PIDS_TO_STOP[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  # Let the broker finish its clean stop (it writes checkpoints) before its data goes.
  [ -n "${BROKER_PID:-}" ] && for _ in $(seq 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  rm -rf "$OUT/data" "$OUT/fio-scratch"
}
trap cleanup EXIT

# ---- build ---------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  log "building release"
  (cd "$ROOT" && cargo build --release --bin ringmq)
fi
RINGMQ=${RINGMQ:-$ROOT/target/release/ringmq}
BENCH_CMD=${BENCH_CMD:-"$RINGMQ bench"}

# ---- environment ---------------------------------------------------------------------
mkdir -p "$DATA_DIR"
FS=$(df -T "$DATA_DIR" | awk 'NR==2 {print $2}')
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
python3 - "$OUT/env.json" <<EOF
import json, sys
json.dump({
  "workload": "$NAME",
  "git_sha": "$(cd "$ROOT" && git rev-parse HEAD 2>/dev/null || echo unknown)",
  "git_dirty": $( (cd "$ROOT" && git diff --quiet HEAD 2>/dev/null) && echo False || echo True),
  "kernel": "$(uname -r)",
  "cpu_model": "$CPU_MODEL",
  "cpus": $(nproc),
  "mem_total_kb": $(awk '/MemTotal/ {print $2}' /proc/meminfo),
  "filesystem": "$FS",
  "data_dir": "$DATA_DIR",
  "shards": $SHARDS,
  "durability": "$DURABILITY",
  "broker_spin_before_park_us": $BROKER_SPIN_US,
  "bench_spin_us": $BENCH_SPIN_US,
  "broker": "${BOOTSTRAP:-ringmq (started by run.sh)}",
  "bench_cmd": "$BENCH_CMD",
  "date_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "workload_settings": {"mode": "$MODE", "topics": $TOPICS, "partitions": $PARTITIONS,
    "producers": $PRODUCERS, "consumers": $CONSUMERS, "record_bytes": $RECORD_BYTES,
    "batch_bytes": $BATCH_BYTES, "linger_ms": $LINGER_MS, "acks": "$ACKS", "rate": $RATE,
    "keys": "$KEYS", "duration_s": $DURATION, "warmup_s": $WARMUP, "backlog_mb": $BACKLOG_MB},
}, open(sys.argv[1], "w"), indent=2)
EOF

# ---- machine limits, measured in this run ----------------------------------------------
if [ "$LIMITS" = 1 ]; then
  log "measuring machine limits (fio, loopback TCP)"
  "$ROOT/perf/tools/limits.sh" "$OUT/fio-scratch" > "$OUT/limits.json" || log "limits measurement failed"
fi

# The CPU/RSS samplers fork a few processes a second. On a small machine whose cores are
# all busy (a polling broker and bench) they would preempt the measured processes, so they
# run as SCHED_IDLE: they take only CPU time nobody else wants.
SAMPLER="$ROOT/perf/tools/sample.sh"
command -v chrt >/dev/null && SAMPLER="chrt -i 0 $SAMPLER"

# ---- broker --------------------------------------------------------------------------
if [ -z "$BOOTSTRAP" ]; then
  BOOTSTRAP=127.0.0.1:$PORT
  log "starting ringmq on $BOOTSTRAP, data in $DATA_DIR"
  # Retention keeps a max-rate run from filling the disk (~1 GB/s here): PERF_SEGMENT_MB
  # (64) segments, at most PERF_RETENTION_MB per partition (raise it for a large backlog).
  "$RINGMQ" serve --listen "$BOOTSTRAP" --data-dir "$DATA_DIR" --shards "$SHARDS" \
    --topic-default "durability=$DURABILITY" --topic-default "segment.bytes=$(( ${PERF_SEGMENT_MB:-64} * 1048576 ))" \
    --topic-default "retention.bytes=$(( ${PERF_RETENTION_MB:-128} * 1048576 ))" \
    --spin-before-park-us "$BROKER_SPIN_US" \
    > "$OUT/broker.log" 2>&1 &
  BROKER_PID=$!
  PIDS_TO_STOP+=("$BROKER_PID")
  for _ in $(seq 100); do grep -q "ready" "$OUT/broker.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "ready" "$OUT/broker.log" || { log "broker did not start"; cat "$OUT/broker.log" >&2; exit 1; }
  $SAMPLER "$BROKER_PID" > "$OUT/broker-usage.csv" &
  PIDS_TO_STOP+=("$!")
fi

# ---- bench ---------------------------------------------------------------------------
bench() { # bench MODE TOPIC RATE JSON [extra flags...]
  local mode=$1 topic=$2 rate=$3 json=$4; shift 4
  # shellcheck disable=SC2086
  $BENCH_CMD "$mode" --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" \
    --producers "$PRODUCERS" --consumers "$CONSUMERS" --record-bytes "$RECORD_BYTES" \
    --batch-bytes "$BATCH_BYTES" --linger-ms "$LINGER_MS" --acks "$ACKS" --rate "$rate" \
    --keys "$KEYS" --spin-us "$BENCH_SPIN_US" --json "$json" "$@"
}

if [ "$BACKLOG_MB" -gt 0 ]; then
  # Produce the backlog at max rate for as long as it takes at the rate measured so far.
  BACKLOG_RECORDS=$((BACKLOG_MB * 1000000 / RECORD_BYTES))
  log "producing a backlog of ~${BACKLOG_MB} MB ($BACKLOG_RECORDS records)"
  bench produce "$NAME-1" 0 "$OUT/backlog-produce.json" --duration 5 --warmup 0 > "$OUT/backlog.log"
  RATE_SEEN=$(python3 -c "import json;print(max(1,int(json.load(open('$OUT/backlog-produce.json'))['produce']['summary']['records_per_s'])))")
  LEFT=$(( (BACKLOG_RECORDS - RATE_SEEN * 5) / RATE_SEEN + 1 ))
  [ "$LEFT" -gt 0 ] && bench produce "$NAME-1" 0 "$OUT/backlog-produce-2.json" --duration "$LEFT" --warmup 0 >> "$OUT/backlog.log"
fi

log "running $NAME: $MODE, $TOPICS topic(s) x $PARTITIONS partitions, rate $RATE, ${DURATION}s + ${WARMUP}s warm-up"
BENCH_PIDS=()
for i in $(seq "$TOPICS"); do
  TOPIC_RATE=$((RATE / TOPICS))
  [ "$RATE" -gt 0 ] && [ "$TOPIC_RATE" -eq 0 ] && TOPIC_RATE=1
  bench "$MODE" "$NAME-$i" "$TOPIC_RATE" "$OUT/bench-$i.json" --duration "$DURATION" --warmup "$WARMUP" \
    > "$OUT/bench-$i.log" 2>&1 &
  BENCH_PIDS+=("$!")
  $SAMPLER "$!" > "$OUT/bench-usage-$i.csv" &
  PIDS_TO_STOP+=("$!")
done
STATUS=0
for p in "${BENCH_PIDS[@]}"; do wait "$p" || STATUS=1; done
[ "$STATUS" = 0 ] || log "a bench process failed; see $OUT/bench-*.log"
tail -n 3 "$OUT"/bench-*.log >&2 || true

# ---- the disk next to the broker (DISK_PATTERN=1, perf/tools/disk-pattern.sh) ---------
if [ "${DISK_PATTERN:-0}" = 1 ]; then
  log "disk pattern: fio and rdkafka_performance alternating against the broker"
  RECORD_BYTES=$RECORD_BYTES BATCH_BYTES=$BATCH_BYTES ACKS=$ACKS PARTITIONS=$PARTITIONS RINGMQ=$RINGMQ \
    "$ROOT/perf/tools/disk-pattern.sh" "$OUT" "$OUT/fio-scratch" "$BOOTSTRAP" "$NAME-rdkafka" >&2 ||
    log "disk pattern failed; see $OUT/disk-pattern/"
fi

# ---- report --------------------------------------------------------------------------
python3 "$ROOT/perf/report.py" "$OUT"
[ -f "$OUT/disk-pattern.md" ] && cat "$OUT/disk-pattern.md" >> "$OUT/report.md"
log "report: $OUT/report.md"
exit "$STATUS"
