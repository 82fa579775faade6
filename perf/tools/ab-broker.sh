#!/usr/bin/env bash
# A/B broker run: alternate two ringmq broker binaries, ROUNDS times each, in one session so
# both see the same machine load. Each run starts the broker on a fresh data directory,
# runs `bench produce` then `bench consume` (the same bench client for both brokers), stops
# the broker, and prints one line per run:  label round mode records/s MB/s p50 p99.
#
# usage: perf/tools/ab-broker.sh A_BINARY B_BINARY [ROUNDS]
# env:   BENCH     bench client binary (default: B_BINARY)
#        PORT      Kafka port (default 29492); RPC_PORT (default 29493)
#        PARTITIONS (4), DURATION (5 s), WARMUP (1 s), ACKS (1), MODES ("produce consume")
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-4}
BENCH=${BENCH:-$B}
PORT=${PORT:-29492} RPC_PORT=${RPC_PORT:-29493}
PARTITIONS=${PARTITIONS:-4} DURATION=${DURATION:-5} WARMUP=${WARMUP:-1} ACKS=${ACKS:-1}
WORK=$(mktemp -d /tmp/ab-broker.XXXXXX)
BROKER_PID=""
stop() { [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null; BROKER_PID=""; }
trap 'stop; rm -rf "$WORK"' EXIT

run() { # run LABEL BINARY ROUND
  local label=$1 bin=$2 round=$3 dir="$WORK/data-$1-$3" rpc=()
  # Brokers from before the cluster work have no RPC listener.
  "$bin" serve --help | grep -q -- --rpc-listen && rpc=(--rpc-listen "127.0.0.1:$RPC_PORT")
  "$bin" serve --listen "127.0.0.1:$PORT" "${rpc[@]}" \
    --metrics-listen off --data-dir "$dir" --shards 1 \
    --topic-default "segment.bytes=67108864" --topic-default "retention.bytes=268435456" \
    > "$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do grep -q "ready" "$WORK/broker.log" && break; sleep 0.1; done
  grep -q "ready" "$WORK/broker.log" || { cat "$WORK/broker.log" >&2; exit 1; }
  for mode in ${MODES:-produce consume}; do
    timeout $((DURATION + WARMUP + 30)) "$BENCH" bench "$mode" --bootstrap "127.0.0.1:$PORT" \
      --partitions "$PARTITIONS" --acks "$ACKS" --duration "$DURATION" --warmup "$WARMUP" \
      > "$WORK/bench.log" 2>&1 || { cat "$WORK/bench.log" >&2; exit 1; }
    grep -E '^(produce|consume):' "$WORK/bench.log" | sed -E \
      "s/^[a-z]+: ([0-9]+) records\/s, ([0-9.]+) MB\/s; latency p50 ([^ ]+ [^ ]+) p90 [^ ]+ [^ ]+ p99 ([^ ]+ [^ ]+).*/$label $round $mode \1 \2 \3 \4/"
  done
  stop
  rm -rf "$dir"
}

for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then run A "$A" "$round"; run B "$B" "$round"
  else run B "$B" "$round"; run A "$A" "$round"; fi
done
