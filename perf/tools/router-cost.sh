#!/bin/bash
# Router cost: --shards 2, only shard 0 accepts; all partitions owned by shard 0 (local) or 1 (remote).
BIN=${RINGMQ_BIN:-target/release/ringmq}
for round in 1 2 3; do
  for owner in 0 1; do
    DIR=${TMPDIR:-/tmp}/ringmq-perf-router-$owner; rm -rf $DIR
    $BIN serve --listen 127.0.0.1:29200 --data-dir $DIR --shards 2 --bench-accept-shard 0 --bench-owner-shard $owner > ${TMPDIR:-/tmp}/ringmq-perf-router-$owner.log 2>&1 &
    B=$!; sleep 1.5
    R=$($BIN bench produce --bootstrap 127.0.0.1:29200 --topic r --partitions 8 --acks 1 --duration ${DUR:-8} --warmup 2 ${EXTRA} 2>&1 | tail -1)
    echo "round $round owner=$owner: $R"
    kill -TERM $B; wait $B 2>/dev/null; rm -rf $DIR
  done
done
