#!/usr/bin/env bash
# CPU time each node of a running perf/cluster/up.sh cluster uses while idle: utime + stime
# of the whole process (every thread) from /proc/PID/stat, over SECONDS seconds.
#
# usage: sudo perf/cluster/idle-cpu.sh [SECONDS]     (default 60)
# env:   CLUSTER_DIR  as for up.sh (default /tmp/ringmq-cluster)
# prints one line per node: "node I pid P: X.XX CPU s in S s (Y.Y% of one CPU)"
set -euo pipefail
DIR=${CLUSTER_DIR:-/tmp/ringmq-cluster}
S=${1:-60}
TCK=$(getconf CLK_TCK)
# Fields 14 and 15 of /proc/PID/stat; the comm field (2) may hold spaces, so cut after ")".
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
declare -A before
pids=()
for f in "$DIR"/node*.pid; do
    [ -e "$f" ] || { echo "idle-cpu.sh: no cluster in $DIR" >&2; exit 1; }
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null || { echo "idle-cpu.sh: $f: $pid is not running" >&2; exit 1; }
    pids+=("$(basename "$f" .pid):$pid")
    before[$pid]=$(ticks "$pid")
done
sleep "$S"
for entry in "${pids[@]}"; do
    node=${entry%%:*}; pid=${entry##*:}
    after=$(ticks "$pid")
    awk -v n="${node#node}" -v p="$pid" -v d="$((after - ${before[$pid]}))" -v t="$TCK" -v s="$S" \
        'BEGIN { c = d / t; printf "node %s pid %s: %.2f CPU s in %d s (%.1f%% of one CPU)\n", n, p, c, s, 100 * c / s }'
done
