#!/usr/bin/env python3
"""Turn a perf/run.sh results folder into report.md and SVG plots (standard library only).

Reads env.json, limits.json (optional), bench-*.json (one per topic process, merged here:
throughput adds up, latency spectra merge by their counts), broker-usage.csv and
bench-usage-*.csv (CPU %, RSS). Writes:
  report.md            tables a person reads at a glance
  latency.svg          latency percentile spectrum (x: percentile on a 1/(1-p) log axis)
  throughput.svg       records/s per second of the run
  limits.svg           each throughput as a ratio to the machine's limit
usage: report.py RESULTS_DIR
"""
import csv
import glob
import json
import math
import os
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_usage(path):
    try:
        with open(path) as f:
            return [(float(r["elapsed_s"]), float(r["cpu_percent"]), int(r["rss_kb"])) for r in csv.DictReader(f)]
    except (OSError, ValueError, KeyError):
        return []


def merge_role(runs, role):
    """Merge one role over several bench JSONs (one per topic process)."""
    parts = [r[role] for r in runs if r and role in r]
    if not parts:
        return None
    s = {k: sum(p["summary"][k] for p in parts) for k in ("records", "bytes", "records_per_s", "mb_per_s")}
    s["errors"] = {k: sum(p["summary"]["errors"][k] for p in parts) for k in parts[0]["summary"]["errors"]}
    # Spectrum rows carry counts per latency step: pool them and recompute percentiles.
    counts = {}
    for p in parts:
        for row in p["percentile_spectrum"]:
            counts[row["latency_ns"]] = counts.get(row["latency_ns"], 0) + row["count"]
    total = sum(counts.values())
    spectrum, seen = [], 0
    for v in sorted(counts):
        seen += counts[v]
        if counts[v]:
            spectrum.append((100.0 * seen / total, v))
    def q(p):
        for pct, v in spectrum:
            if pct >= p * 100 - 1e-9:
                return v
        return spectrum[-1][1] if spectrum else 0
    s["latency_ns"] = {name: q(p) for name, p in
                       (("p50", .5), ("p90", .9), ("p99", .99), ("p99_9", .999), ("p99_99", .9999))}
    s["latency_ns"]["max"] = max((p["summary"]["latency_ns"]["max"] for p in parts), default=0)
    if len(parts) == 1:  # exact figures from the bench itself
        s["latency_ns"] = parts[0]["summary"]["latency_ns"]
    timeline = {}
    for p in parts:
        for t in p["timeline"]:
            key = round(t["elapsed_s"])
            timeline[key] = timeline.get(key, 0) + t["records_per_s"]
    return {"summary": s, "spectrum": spectrum, "timeline": sorted(timeline.items()),
            "latency_kind": parts[0]["latency_kind"]}


def ms(ns):
    return f"{ns / 1e6:.3f}"


# ---- SVG --------------------------------------------------------------------------------
W, H, PAD = 720, 400, 60
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def svg_plot(path, title, xlabel, ylabel, series, xlog=False, ylog=False, xticks=None):
    pts = [(x, y) for _, data in series for x, y in data if (not ylog or y > 0)]
    if not pts:
        return False
    fx = (lambda v: math.log10(v)) if xlog else (lambda v: v)
    fy = (lambda v: math.log10(max(v, 1e-9))) if ylog else (lambda v: v)
    x0, x1 = min(fx(x) for x, _ in pts), max(fx(x) for x, _ in pts)
    y0, y1 = min(0 if not ylog else fy(y) for _, y in pts), max(fy(y) for _, y in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    sx = lambda v: PAD + (fx(v) - x0) / (x1 - x0) * (W - 2 * PAD)
    sy = lambda v: H - PAD - (fy(v) - y0) / (y1 - y0) * (H - 2 * PAD)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 15}" text-anchor="middle">{xlabel}</text>',
           f'<text x="15" y="{H / 2}" text-anchor="middle" transform="rotate(-90 15 {H / 2})">{ylabel}</text>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        label = f"{10 ** yv:.3g}" if ylog else f"{yv:.3g}"
        y = H - PAD - i / 4 * (H - 2 * PAD)
        out.append(f'<text x="{PAD - 5}" y="{y + 4}" text-anchor="end">{label}</text>')
        out.append(f'<line x1="{PAD}" y1="{y}" x2="{W - PAD}" y2="{y}" stroke="#eee"/>')
    for xv, label in (xticks or [(x0 + (x1 - x0) * i / 4, None) for i in range(5)]):
        real = xv if xticks else (10 ** xv if xlog else xv)
        if xticks and not (x0 <= fx(real) <= x1):
            continue
        x = sx(real)
        out.append(f'<text x="{x}" y="{H - PAD + 16}" text-anchor="middle">{label or f"{real:.3g}"}</text>')
    for i, (name, data) in enumerate(series):
        d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in data if (not ylog or y > 0))
        c = COLORS[i % len(COLORS)]
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{d}"/>')
        out.append(f'<text x="{W - PAD}" y="{PAD + 15 * i}" text-anchor="end" fill="{c}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return True


def svg_bars(path, title, bars):
    if not bars:
        return False
    top = max(1.0, max(v for _, v in bars))
    bw = (W - 2 * PAD) / len(bars)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    y100 = H - PAD - (1.0 / top) * (H - 2 * PAD)
    out.append(f'<line x1="{PAD}" y1="{y100}" x2="{W - PAD}" y2="{y100}" stroke="#999" stroke-dasharray="4"/>')
    out.append(f'<text x="{PAD - 5}" y="{y100 + 4}" text-anchor="end">100%</text>')
    for i, (name, v) in enumerate(bars):
        h = v / top * (H - 2 * PAD)
        x = PAD + i * bw + bw * 0.15
        out.append(f'<rect x="{x}" y="{H - PAD - h}" width="{bw * 0.7}" height="{h}" fill="{COLORS[i % 4]}"/>')
        out.append(f'<text x="{x + bw * 0.35}" y="{H - PAD - h - 5}" text-anchor="middle">{v * 100:.0f}%</text>')
        out.append(f'<text x="{x + bw * 0.35}" y="{H - PAD + 16}" text-anchor="middle">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return True


# ---- report -----------------------------------------------------------------------------
def cpu_summary(rows):
    busy = [c for _, c, _ in rows]
    if not busy:
        return None
    interval_s = rows[1][0] - rows[0][0] if len(rows) > 1 else 1.0
    return {"avg_cpu_percent": sum(busy) / len(busy), "max_rss_mb": max(r for _, _, r in rows) / 1024,
            "cpu_seconds": sum(busy) / 100 * interval_s}


def main(d):
    env = load_json(os.path.join(d, "env.json")) or {}
    limits = load_json(os.path.join(d, "limits.json")) or {}
    runs = [load_json(p) for p in sorted(glob.glob(os.path.join(d, "bench-*.json")))]
    runs = [r for r in runs if r]
    roles = {role: merge_role(runs, role) for role in ("produce", "consume")}
    roles = {k: v for k, v in roles.items() if v}
    broker = cpu_summary(load_usage(os.path.join(d, "broker-usage.csv")))
    bench_rows = [load_usage(p) for p in sorted(glob.glob(os.path.join(d, "bench-usage-*.csv")))]
    bench = [cpu_summary(r) for r in bench_rows if r]

    L = [f"# {env.get('workload', os.path.basename(d))}", ""]
    ws = env.get("workload_settings", {})
    L.append("Settings: " + ", ".join(f"{k} {v}" for k, v in ws.items()))
    L += ["", "## Results", "",
          "| role | records/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | p99.99 ms | max ms | errors | latency measured |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in roles.items():
        s, l = r["summary"], r["summary"]["latency_ns"]
        L.append(f"| {name} | {s['records_per_s']:.0f} | {s['mb_per_s']:.1f} | {ms(l['p50'])} | {ms(l['p90'])} | "
                 f"{ms(l['p99'])} | {ms(l['p99_9'])} | {ms(l['p99_99'])} | {ms(l['max'])} | "
                 f"{sum(s['errors'].values())} | {r['latency_kind']} |")
    lags = [run["produce"]["summary"].get("wake_lag_ns") for run in runs if "produce" in run]
    lags = [x for x in lags if x and x.get("max")]
    if lags:
        worst = max(lags, key=lambda x: x["p99"])
        L += ["", f"Sender wake lag (open loop; the bench's own lateness, included in the latencies above): "
                  f"p50 {ms(worst['p50'])} ms, p99 {ms(worst['p99'])} ms, max {ms(worst['max'])} ms"
                  + (" (worst process)" if len(lags) > 1 else "") + ". If it is a large share of the",
              "latency, the load generator or a busy machine, not the broker, set the tail."]

    limit_gb = None
    if limits:
        disk = limits.get("odirect_write_gb_per_s")
        net = limits.get("loopback_tcp_gb_per_s")
        both = [x for x in (disk, net) if x]
        limit_gb = min(both) if both else None
        L += ["", "## Machine limits (measured in this run)", "", "| limit | value |", "|---|---|"]
        L += [f"| {k} | {v} |" for k, v in limits.items()]
    bars = []
    if limit_gb:
        L += ["", f"## Ratio to the machine's limit (min of O_DIRECT write and loopback TCP: {limit_gb:.2f} GB/s)", "",
              "| role | MB/s | ratio |", "|---|---|---|"]
        for name, r in roles.items():
            ratio = r["summary"]["mb_per_s"] / 1e3 / limit_gb
            L.append(f"| {name} | {r['summary']['mb_per_s']:.1f} | {ratio * 100:.1f}% |")
            bars.append((name, ratio))
        read = limits.get("odirect_read_gb_per_s")
        if "consume" in roles and read and ws.get("mode") == "consume":
            ratio = roles["consume"]["summary"]["mb_per_s"] / 1e3 / read
            L.append(f"| consume vs O_DIRECT read ({read} GB/s) | {roles['consume']['summary']['mb_per_s']:.1f} | {ratio * 100:.1f}% |")
            bars.append(("catch-up/read", ratio))

    L += ["", "## CPU", "", "| process | avg CPU (100% = 1 core) | max RSS MB | CPU ms per MB moved |", "|---|---|---|---|"]
    mb = max((r["summary"]["bytes"] for r in roles.values()), default=0) / 1e6
    def cpu_row(name, c):
        per_mb = f"{c['cpu_seconds'] / mb * 1e3:.3f} ms" if mb else "n/a"
        return f"| {name} | {c['avg_cpu_percent']:.0f}% | {c['max_rss_mb']:.0f} | {per_mb} |"
    if broker:
        L.append(cpu_row("broker", broker))
    bench = [c for c in bench if c]
    for i, c in enumerate(bench):
        L.append(cpu_row(f"bench {i + 1}" if len(bench) > 1 else "bench", c))
    if len(bench) > 1:
        total = {"avg_cpu_percent": sum(c["avg_cpu_percent"] for c in bench),
                 "max_rss_mb": sum(c["max_rss_mb"] for c in bench),
                 "cpu_seconds": sum(c["cpu_seconds"] for c in bench)}
        L.append(cpu_row("bench (all processes)", total))
    L += ["", "CPU per MB divides each process's CPU time over the whole run (including warm-up)",
          "by the bytes measured after warm-up, so it overstates slightly; compare the rows side by side.", ""]

    plots = []
    pct_ticks = [(p, f"{p:g}") for p in (50, 90, 99, 99.9, 99.99, 99.999)]
    series = [(name, [(1 / (1 - min(p, 99.9999) / 100), v / 1e6) for p, v in r["spectrum"]]) for name, r in roles.items()]
    ticks = [(1 / (1 - p / 100), label) for p, label in pct_ticks]
    if svg_plot(os.path.join(d, "latency.svg"), "Latency percentile spectrum", "percentile", "latency (ms)", series,
                xlog=True, ylog=True, xticks=ticks):
        plots.append(("Latency percentile spectrum", "latency.svg"))
    series = [(name, [(t, v) for t, v in r["timeline"]]) for name, r in roles.items()]
    if svg_plot(os.path.join(d, "throughput.svg"), "Throughput over time", "seconds", "records/s", series):
        plots.append(("Throughput over time", "throughput.svg"))
    if svg_bars(os.path.join(d, "limits.svg"), "Throughput as a ratio to the machine's limit", bars):
        plots.append(("Ratio to the machine's limit", "limits.svg"))
    L += ["## Plots", ""] + [f"![{t}]({p})" for t, p in plots]
    L += ["", "## Environment", "", "| key | value |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in env.items() if k != "workload_settings"]
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
