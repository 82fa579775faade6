#!/usr/bin/env bash
# Start an N-node ringmq cluster on this machine, each node in its own network namespace, the
# way the tests do (tests/common/netns.rs): bridge rmqb$X with 10.88.$X.1/24 in the root
# namespace, node i in namespace rmq${X}_$i with 10.88.$X.(10+i), Kafka on :9092 and RPC on
# :33145 of its own address, --node-id i, the first min(N,3) nodes as --seeds, one shard.
#
# usage: sudo perf/cluster/up.sh [N]        (default 3; stop with perf/cluster/down.sh)
# env:   RINGMQ       broker binary (default: target/release/ringmq)
#        CLUSTER_NET  X in 10.88.X.0/24 (default 250; tests pick other free values)
#        CLUSTER_DIR  data dirs, logs and pids (default /tmp/ringmq-cluster)
#        RINGMQ_ARGS  extra `ringmq serve` flags for every node
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-3}
X=${CLUSTER_NET:-250}
RINGMQ=${RINGMQ:-$ROOT/target/release/ringmq}
DIR=${CLUSTER_DIR:-/tmp/ringmq-cluster}
[ "$(id -u)" -eq 0 ] || { echo "up.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$RINGMQ" ] || { echo "up.sh: no broker binary at $RINGMQ (cargo build --release)" >&2; exit 1; }
[ "$N" -ge 1 ] && [ "$N" -le 200 ] || { echo "up.sh: N must be 1..200" >&2; exit 1; }
mkdir -p "$DIR"
echo "$X" > "$DIR/net"

ip link add "rmqb$X" type bridge
ip addr add "10.88.$X.1/24" dev "rmqb$X"
ip link set "rmqb$X" up

SEEDS=""
for i in $(seq 1 "$(( N < 3 ? N : 3 ))"); do
    SEEDS="${SEEDS:+$SEEDS,}10.88.$X.$((10 + i)):33145"
done

for i in $(seq 1 "$N"); do
    ns="rmq${X}_$i"; veth="rmqv${X}_$i"; ip_addr="10.88.$X.$((10 + i))"
    ip netns add "$ns"
    ip link add "$veth" type veth peer name "${veth}p"
    ip link set "$veth" master "rmqb$X" up
    ip link set "${veth}p" netns "$ns"
    ip netns exec "$ns" ip link set "${veth}p" name eth0
    ip netns exec "$ns" ip addr add "$ip_addr/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    mkdir -p "$DIR/node$i"
    # shellcheck disable=SC2086
    ip netns exec "$ns" "$RINGMQ" serve --node-id "$i" --listen "$ip_addr:9092" \
        --rpc-listen "$ip_addr:33145" --seeds "$SEEDS" --shards 1 --metrics-listen off \
        --data-dir "$DIR/node$i" ${RINGMQ_ARGS:-} > "$DIR/node$i.log" 2>&1 &
    echo $! > "$DIR/node$i.pid"
done

for i in $(seq 1 "$N"); do
    for _ in $(seq 1 300); do
        grep -q "ringmq ready" "$DIR/node$i.log" 2>/dev/null && break
        kill -0 "$(cat "$DIR/node$i.pid")" 2>/dev/null || { echo "node $i died:" >&2; tail -5 "$DIR/node$i.log" >&2; exit 1; }
        sleep 0.1
    done
    grep -q "ringmq ready" "$DIR/node$i.log" || { echo "node $i not ready in 30 s" >&2; exit 1; }
    echo "node $i: kafka 10.88.$X.$((10 + i)):9092  rpc 10.88.$X.$((10 + i)):33145  (ns rmq${X}_$i, log $DIR/node$i.log)"
done
echo "seeds: $SEEDS"
echo "try:   $RINGMQ cluster info --bootstrap 10.88.$X.11:9092"
