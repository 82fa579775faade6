#!/usr/bin/env bash
# Build librdkafka's own rdkafka_performance from the source bundled in the rdkafka-sys crate
# and run a produce workload with it, for comparison with `ringmq bench produce`.
#
# usage: rdkafka-performance.sh build
#        rdkafka-performance.sh produce BOOTSTRAP TOPIC SECONDS [ACKS] [RECORD_BYTES] [extra -X ...]
# The librdkafka.a comes from target/*/build/rdkafka-sys-*/out (built by `cargo build --tests`,
# since rdkafka is a dev-dependency; $CARGO_TARGET_DIR instead of target/ if set).
# Produce settings mirror the bench's defaults:
# linger.ms=5, batch.size=16384 bytes, random partition per record, no compression.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/rdkafka_performance

build() {
  local out="" d
  for d in "$TARGET"/*/build/rdkafka-sys-*/out; do
    if [ -f "$d/src/librdkafka.a" ]; then out=$d; break; fi
  done
  [ -n "$out" ] || { echo "no built librdkafka.a; run: cargo build --tests" >&2; exit 1; }
  # shellcheck disable=SC2046
  gcc -O2 -o "$BIN" "$out/examples/rdkafka_performance.c" -I"$out/src" "$out/src/librdkafka.a" \
    $(sed -n 's/^LIBS+=//p' "$out/Makefile.config") -w
  echo "$BIN"
}

case "${1:-}" in
  build) build ;;
  produce)
    shift
    BOOTSTRAP=$1 TOPIC=$2 SECONDS_=$3 ACKS=${4:-1} SIZE=${5:-1024}
    shift $(( $# < 5 ? $# : 5 ))
    [ "$ACKS" = all ] && ACKS=-1
    [ -x "$BIN" ] || build >/dev/null
    # SIGINT makes rdkafka_performance stop and print its totals.
    timeout -s INT "$SECONDS_" "$BIN" -P -t "$TOPIC" -b "$BOOTSTRAP" -s "$SIZE" -a "$ACKS" -u \
      -X linger.ms=5 -X batch.size=16384 -X compression.codec=none "$@" || true
    ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
