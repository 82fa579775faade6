#!/usr/bin/env bash
# Stop the cluster perf/cluster/up.sh started: SIGTERM every node (SIGKILL after 15 s), then
# remove its namespaces and bridge. Data dirs and logs stay in CLUSTER_DIR unless --purge.
set -uo pipefail
DIR=${CLUSTER_DIR:-/tmp/ringmq-cluster}
X=$(cat "$DIR/net" 2>/dev/null || echo "${CLUSTER_NET:-250}")
for pidfile in "$DIR"/node*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    rm -f "$pidfile"
done
for ns in $(ip netns list | awk '{print $1}' | grep -E "^rmq${X}_[0-9]+$"); do
    ip netns del "$ns"
done
for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^rmqv${X}_[0-9]+$"); do
    ip link del "$link" 2>/dev/null
done
ip link del "rmqb$X" 2>/dev/null
if [ "${1:-}" = "--purge" ]; then rm -rf "$DIR"; fi
echo "cluster on 10.88.$X.0/24 stopped"
