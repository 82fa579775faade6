#!/bin/bash
# usage: half_rate.sh SHARDS RATE  — open-loop produce at RATE records/s, 1 KiB, acks=1, 8 partitions
BIN=${RINGMQ_BIN:-target/release/ringmq}; S=$1; RATE=$2
DIR=${TMPDIR:-/tmp}/ringmq-perf-half-$S; rm -rf $DIR
$BIN serve --listen 127.0.0.1:29300 --data-dir $DIR --shards $S > ${TMPDIR:-/tmp}/ringmq-perf-half-$S.log 2>&1 &
B=$!; sleep 1.5
$BIN bench produce --bootstrap 127.0.0.1:29300 --topic h --partitions 8 --acks 1 --rate $RATE --duration ${DUR:-10} --warmup 2 2>&1 | tail -1
kill -TERM $B; wait $B 2>/dev/null; rm -rf $DIR
