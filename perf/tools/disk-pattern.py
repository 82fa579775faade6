#!/usr/bin/env python3
"""Summarise disk-pattern.sh's steps: disk-pattern.json and disk-pattern.md in OUT.

usage: disk-pattern.py OUT RECORD_BYTES
"""
import glob
import json
import os
import re
import statistics
import sys

OUT, RECORD_BYTES = sys.argv[1], int(sys.argv[2])
W = os.path.join(OUT, "disk-pattern")
COLS = ["w/s", "wkB/s", "wareq-sz", "w_await", "aqu-sz", "%util", "r/s", "d/s"]


def iostat(path):
    """Mean of each column over the samples of `iostat -x -d -y DEV 1`."""
    header, rows = None, []
    for line in open(path):
        f = line.split()
        if f and f[0] == "Device":
            header = f
        elif header and f and len(f) == len(header):
            rows.append(dict(zip(header, f)))
    out = {}
    for c in COLS:
        vals = [float(r[c]) for r in rows if c in r]
        if vals:
            out[c] = round(statistics.mean(vals), 2)
    out["samples"] = len(rows)
    return out


def fio(path):
    try:
        j = json.load(open(path))["jobs"][0]["write"]
    except (ValueError, KeyError, IndexError):
        return None
    return {"mb_per_s": round(j["bw_bytes"] / 1e6, 1), "clat_ms": round(j["clat_ns"]["mean"] / 1e6, 2)}


def rdkafka(path):
    """MB/s between the 2 s row and the last full row of rdkafka_performance's table."""
    rows = []
    for line in open(path):
        if line.startswith("|") and "elapsed" not in line:
            f = [x.strip() for x in line.strip().strip("|").split("|")]
            if len(f) > 4 and f[0].isdigit() and f[4].isdigit():
                rows.append((int(f[0]), int(f[4])))
    base = [r for r in rows if r[0] >= 2000]
    if len(rows) < 3 or not base or rows[-2][0] <= base[0][0]:
        return None
    rate = (rows[-2][1] - base[0][1]) / ((rows[-2][0] - base[0][0]) / 1000)
    return {"mb_per_s": round(rate * RECORD_BYTES / 1e6, 1)}


rounds = sorted({int(m.group(1)) for p in glob.glob(os.path.join(W, "seq-*.out"))
                 if (m := re.search(r"seq-(\d+)\.out$", p))})
steps = {"seq": fio, "rdkafka": rdkafka, "pattern-before": fio, "pattern-after": fio}
result = {"rounds": []}
loads = {}
if os.path.exists(os.path.join(W, "load.txt")):
    for line in open(os.path.join(W, "load.txt")):
        r, *la = line.split()
        loads[int(r)] = " ".join(la)
for r in rounds:
    entry = {"round": r, "load": loads.get(r, "")}
    for step, parse in steps.items():
        got = parse(os.path.join(W, f"{step}-{r}.out"))
        entry[step] = dict(got or {}, iostat=iostat(os.path.join(W, f"{step}-{r}.iostat")))
    seq = entry["seq"].get("mb_per_s")
    rdk = entry["rdkafka"].get("mb_per_s")
    entry["rdkafka_to_fio"] = round(rdk / seq, 3) if seq and rdk else None
    result["rounds"].append(entry)

bench = None
bench_path = os.path.join(OUT, "bench-1.json")
if os.path.exists(bench_path):
    bench = json.load(open(bench_path)).get("produce", {}).get("summary", {}).get("mb_per_s")


def med(key, sub="mb_per_s"):
    vals = [e[key].get(sub) if isinstance(e[key], dict) else e[key] for e in result["rounds"]]
    vals = [v for v in vals if v is not None]
    return round(statistics.median(vals), 3) if vals else None


summary = {k: med(k) for k in steps}
summary["rdkafka_to_fio_median"] = med("rdkafka_to_fio", None)
summary["ringmq_bench_mb_per_s"] = bench
if bench and summary["seq"]:
    summary["ringmq_bench_to_fio_median"] = round(bench / summary["seq"], 3)
result["summary"] = summary
json.dump(result, open(os.path.join(OUT, "disk-pattern.json"), "w"), indent=2)

md = ["", "## Disk pattern (perf/tools/disk-pattern.sh): broker vs fio, same minutes", "",
      "| round | load (1/5/15 min) | fio seq 1 MiB qd4 MB/s | rdkafka_performance MB/s | ratio "
      "| fio broker pattern before MB/s | after MB/s |",
      "|---|---|---|---|---|---|---|"]
for e in result["rounds"]:
    md.append(f"| {e['round']} | {e['load']} | {e['seq'].get('mb_per_s')} | {e['rdkafka'].get('mb_per_s')} "
              f"| {e['rdkafka_to_fio']} | {e['pattern-before'].get('mb_per_s')} "
              f"| {e['pattern-after'].get('mb_per_s')} |")
md += ["", f"Medians: fio seq {summary['seq']} MB/s, rdkafka_performance {summary['rdkafka']} MB/s "
       f"(ratio of medians of per-round ratios: {summary['rdkafka_to_fio_median']}); "
       f"`ringmq bench` (run.sh's run, minutes earlier) {bench} MB/s.", "",
       "`iostat -x` of the data disk, mean per step:", "",
       "| step | " + " | ".join(COLS) + " |", "|---|" + "---|" * len(COLS)]
for e in result["rounds"]:
    for step in steps:
        io = e[step]["iostat"]
        md.append(f"| {step}-{e['round']} | " + " | ".join(str(io.get(c, "")) for c in COLS) + " |")
open(os.path.join(OUT, "disk-pattern.md"), "w").write("\n".join(md) + "\n")
print(json.dumps(summary, indent=2))
