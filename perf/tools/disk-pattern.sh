#!/usr/bin/env bash
# The broker's produce throughput next to what the same disk does, in the same minutes:
# alternates, ROUNDS times, fio's sequential O_DIRECT write (1 MiB, queue depth 4), the
# broker's own write pattern imitated by fio (before and after the issue-16 fix), and
# librdkafka's rdkafka_performance against the running broker; `iostat -x` of the data disk
# runs during each step. Writes disk-pattern.json and disk-pattern.md into OUT (run.sh appends
# the Markdown to report.md; `ringmq bench`'s figure comes from run.sh's own bench run).
#
# usage: disk-pattern.sh OUT SCRATCH_DIR BOOTSTRAP TOPIC
# env:   ROUNDS (3), STEP_SECONDS (10), RECORD_BYTES (1024), BATCH_BYTES (16384: batch.size),
#        ACKS (1), PARTITIONS (16), RINGMQ (the ringmq binary that creates TOPIC if missing)
# The broker-pattern jobs: 16 files (one per partition) written by one thread through one
# io_uring pinned to CPU 0 (one shard), 128 KiB writes (what a 5 ms flush of a busy
# partition holds). "before": each write extends its file, one write in flight at a time
# (the serial flush loop). "after": files allocated ahead (fallocate), 16 writes in flight.
set -euo pipefail
OUT=$1 DIR=$2 BOOTSTRAP=$3 TOPIC=$4
ROUNDS=${ROUNDS:-3} SECS=${STEP_SECONDS:-10}
RB=${RECORD_BYTES:-1024} BB=${BATCH_BYTES:-16384} ACKS=${ACKS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR" "$OUT/disk-pattern"
W=$OUT/disk-pattern
DEV=$(basename "$(df --output=source "$DIR" | tail -1)")
command -v iostat >/dev/null || { echo "disk-pattern: iostat missing (apt-get install sysstat)" >&2; exit 1; }
command -v fio >/dev/null || { echo "disk-pattern: fio missing (apt-get install fio)" >&2; exit 1; }

with_iostat() { # NAME CMD...: run CMD with `iostat -x` of the data disk sampled each second
  local name=$1; shift
  iostat -x -d -y "$DEV" 1 > "$W/$name.iostat" &
  local io=$!
  "$@" > "$W/$name.out" 2> "$W/$name.err" || true
  kill "$io" 2>/dev/null || true
  wait "$io" 2>/dev/null || true
}
fio_job() { # NAME fio-args...
  local name=$1; shift
  with_iostat "$name" fio --output-format=json --directory="$DIR" --ioengine=io_uring --direct=1 \
    --rw=write --runtime="$SECS" --time_based=0 --name="$name" "$@"
  rm -f "$DIR"/"$name".*
}
if [ -n "${RINGMQ:-}" ]; then
  "$RINGMQ" topic create --bootstrap "$BOOTSTRAP" --if-not-exists -p "${PARTITIONS:-16}" "$TOPIC" >/dev/null
fi
for r in $(seq "$ROUNDS"); do
  echo "[disk-pattern] round $r/$ROUNDS (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  echo "$r $(cut -d' ' -f1-3 /proc/loadavg)" >> "$W/load.txt"
  fio_job "seq-$r" --bs=1M --iodepth=4 --size=8G
  with_iostat "rdkafka-$r" "$HERE/rdkafka-performance.sh" produce "$BOOTSTRAP" "$TOPIC" $((SECS + 2)) \
    "$ACKS" "$RB" -X batch.size="$BB"
  fio_job "pattern-before-$r" --nrfiles=16 --filesize=512M --file_service_type=roundrobin \
    --bs=128k --cpus_allowed=0 --fallocate=none --file_append=1 --iodepth=1
  fio_job "pattern-after-$r" --nrfiles=16 --filesize=512M --file_service_type=roundrobin \
    --bs=128k --cpus_allowed=0 --fallocate=native --iodepth=16
done
rm -rf "$DIR"
python3 "$HERE/disk-pattern.py" "$OUT" "$RB"
