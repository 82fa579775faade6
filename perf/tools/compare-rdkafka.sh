#!/usr/bin/env bash
# Compare `ringmq bench produce` with librdkafka's rdkafka_performance on the same produce
# workload against the same broker, alternating runs (the machine is noisy) and printing a
# Markdown table of steady-state throughput and the client's CPU.
#
# usage: compare-rdkafka.sh BOOTSTRAP TOPIC PARTITIONS [PAIRS=2] [SECONDS=10]
# env:   BENCH_CMD (default: target/release/ringmq bench)
#        RECORD_BYTES (default 1024), BATCH_BYTES (default 16384): the workload's shape
#        CLIENT_CPUS  pin both clients to these CPUs with taskset (e.g. 1), so neither takes
#                     CPU time from a broker pinned elsewhere
# Both clients: acks=1, linger 5 ms, one producer, no keys, RECORD_BYTES records in
# BATCH_BYTES batches. rdkafka_performance needs ~1.7 ms of CPU per MB of 1 KiB records here,
# so on a 2-core machine it saturates its core before the broker; larger records move the
# bottleneck to the broker, where both clients should then read the same figure.
# The bench measures after a 2 s warm-up; for rdkafka_performance the rate is taken between
# its 2 s row and its last full row, from its own per-second table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BOOTSTRAP=$1 TOPIC=$2 PARTITIONS=$3 PAIRS=${4:-2} SECS=${5:-10}
RB=${RECORD_BYTES:-1024} BB=${BATCH_BYTES:-16384}
BENCH_CMD=${BENCH_CMD:-"$ROOT/target/release/ringmq bench"}
PIN=()
[ -n "${CLIENT_CPUS:-}" ] && PIN=(taskset -c "$CLIENT_CPUS")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cpu() { # "user sys" seconds from /usr/bin/time -f output file
  awk '{printf "%.2f", $1 + $2}' "$1"
}
echo "| run | client | records/s | MB/s | client CPU-s | client CPU ms per MB |"
echo "|---|---|---|---|---|---|"
for i in $(seq "$PAIRS"); do
  # shellcheck disable=SC2086
  /usr/bin/time -f "%U %S" -o "$TMP/t" "${PIN[@]}" $BENCH_CMD produce --bootstrap "$BOOTSTRAP" --topic "$TOPIC" \
    --partitions "$PARTITIONS" --record-bytes "$RB" --batch-bytes "$BB" --duration "$SECS" --warmup 2 --json "$TMP/b.json" > "$TMP/b.log" 2>&1
  read -r RPS MBPS < <(python3 -c "import json;s=json.load(open('$TMP/b.json'))['produce']['summary'];print(round(s['records_per_s']), round(s['mb_per_s'],1))")
  C=$(cpu "$TMP/t")
  echo "| $i | ringmq bench | $RPS | $MBPS | $C | $(python3 -c "print(round($C*1000/($MBPS*$SECS),2))") |"
  /usr/bin/time -f "%U %S" -o "$TMP/t" "${PIN[@]}" "$ROOT/perf/tools/rdkafka-performance.sh" produce "$BOOTSTRAP" "$TOPIC" \
    $((SECS + 2)) 1 "$RB" -X batch.size="$BB" > "$TMP/r.log" 2>&1
  read -r RPS MBPS < <(python3 - "$TMP/r.log" "$RB" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("|") and "elapsed" not in line:
        f = [x.strip() for x in line.strip().strip("|").split("|")]
        rows.append((int(f[0]), int(f[4])))
base = [r for r in rows if r[0] >= 2000][0]
last = rows[-2]
rate = (last[1] - base[1]) / ((last[0] - base[0]) / 1000)
print(round(rate), round(rate * int(sys.argv[2]) / 1e6, 1))
PY
)
  C=$(cpu "$TMP/t")
  echo "| $i | rdkafka_performance | $RPS | $MBPS | $C | $(python3 -c "print(round($C*1000/($MBPS*($SECS+2)),2))") |"
done
