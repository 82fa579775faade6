#!/usr/bin/env bash
# Measure the machine's limits with public tools and print them as JSON:
#  - O_DIRECT sequential write bandwidth (fio, 1 MiB blocks, queue depth 1, preallocated file)
#  - O_DIRECT sequential read bandwidth (fio, 1 MiB blocks, queue depth 8)
#  - 4 KiB O_DIRECT write + fdatasync latency (fio, p50/p99)
#  - loopback TCP bandwidth (one stream)
# usage: limits.sh SCRATCH_DIR   (on the filesystem the broker writes to)
set -euo pipefail
DIR=$1
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
ENGINE=io_uring
fio --name=probe --ioengine=io_uring --filename="$DIR/probe" --size=4k --rw=write --direct=1 \
  --output-format=terse >/dev/null 2>&1 || ENGINE=psync
run_fio() { fio --output-format=json --directory="$DIR" --ioengine="$ENGINE" --direct=1 "$@" 2>/dev/null; }
W=$(run_fio --name=seqwrite --rw=write --bs=1M --iodepth=1 --size=2G --runtime=5 --time_based)
R=$(run_fio --name=seqwrite --rw=read --bs=1M --iodepth=8 --size=2G --runtime=5 --time_based)
S=$(run_fio --name=sync --rw=write --bs=4k --iodepth=1 --size=64M --fdatasync=1 --runtime=5 --time_based)
LOOP=$(python3 "$HERE/loopback.py" 3)
rm -rf "$DIR"
python3 - "$ENGINE" "$LOOP" <<PY
import json, sys
w, r, s = (json.loads(x) for x in (r'''$W''', r'''$R''', r'''$S'''))
def bw(j, k): return j["jobs"][0][k]["bw_bytes"] / 1e9
sync = s["jobs"][0]["sync"]["lat_ns"]["percentile"]
print(json.dumps({
  "fio_engine": sys.argv[1],
  "odirect_write_gb_per_s": round(bw(w, "write"), 3),
  "odirect_read_gb_per_s": round(bw(r, "read"), 3),
  "fdatasync_4k_p50_us": round(sync["50.000000"] / 1e3, 1),
  "fdatasync_4k_p99_us": round(sync["99.000000"] / 1e3, 1),
  "loopback_tcp_gb_per_s": float(sys.argv[2]),
}, indent=2))
PY
