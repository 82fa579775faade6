#!/usr/bin/env bash
# Sample CPU and RSS of a process and all its descendants once a second until it exits.
# Output CSV: elapsed_s,cpu_percent,rss_kb (cpu_percent: 100 = one full core). A child that
# exits takes its ticks with it; such an interval is clamped to 0 rather than negative.
set -u
ROOT_PID=$1
TICKS=$(getconf CLK_TCK)
tree() { # pid and its descendants
  local p=$1; echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
}
usage() { # prints "cpu_ticks rss_kb" summed over the tree
  local ticks=0 rss=0 p f
  for p in $(tree "$ROOT_PID"); do
    f=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    f=${f##*) }  # fields after the command name
    set -- $f
    ticks=$((ticks + ${12} + ${13}))
    rss=$((rss + ${22} * $(getconf PAGESIZE) / 1024))
  done
  echo "$ticks $rss"
}
echo "elapsed_s,cpu_percent,rss_kb"
start=$(date +%s.%N); read -r last _ <<< "$(usage)"; last_t=$start
while kill -0 "$ROOT_PID" 2>/dev/null; do
  sleep 1
  read -r now_ticks rss <<< "$(usage)"
  now_t=$(date +%s.%N)
  awk -v a="$start" -v t="$now_t" -v lt="$last_t" -v d=$((now_ticks - last)) -v hz="$TICKS" -v rss="$rss" \
    'BEGIN { if (d < 0) d = 0; printf "%.2f,%.1f,%d\n", t - a, 100 * d / hz / (t - lt), rss }'
  last=$now_ticks; last_t=$now_t
done
