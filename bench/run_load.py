#!/usr/bin/python3
"""Latency against offered load for xasmapd, and the plot of it (docs/figures/latency_vs_load.svg).

Starts xasmapd on a library folder (as bench/run_baseline.py does: a config in a temporary folder,
loopback tcp on free ports), then for each coverage (spectra over a random part of the library's
energy range, or over all of it) and each offered rate runs `xasmap bench` --repeat times for
--seconds, and keeps the median run (by p99) of each point. Writes every run as a JSON line and
draws delivered throughput, p50 and p99 against the offered rate as an SVG.

    bench/run_load.py --out-jsonl out/load.jsonl --svg docs/figures/latency_vs_load.svg

Bounded: rate x seconds messages per run, --drain seconds of waiting at most, loopback only.
"""

import argparse
import json
import math
import os
import statistics
import sys
import tempfile

import zmq

import run_baseline

ROOT = run_baseline.ROOT


def svg_plot(points, path, title):
    """points: {coverage: [(offered, delivered, p50_ms, p99_ms)]}. Log-log axes, hand-written SVG."""
    w, h, left, right, top, bottom = 760, 420, 70, 170, 40, 50
    rates = [p[0] for ps in points.values() for p in ps]
    lat = [v for ps in points.values() for p in ps for v in (p[2], p[3]) if v > 0]
    x0, x1 = math.log10(min(rates)), math.log10(max(rates))
    y0, y1 = math.floor(math.log10(min(lat))), math.ceil(math.log10(max(lat)))

    def x(v):
        return left + (math.log10(v) - x0) / (x1 - x0) * (w - left - right)

    def y(v):
        return top + (y1 - math.log10(v)) / (y1 - y0) * (h - top - bottom)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12">' % (w, h), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="14">%s</text>' % (left, title)]
    for d in range(int(y0), int(y1) + 1):
        yy = y(10 ** d)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, w - right, yy, yy))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%g ms</text>' % (left - 6, yy + 4, 10 ** d))
    for r in sorted(set(rates)):
        xx = x(r)
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>' % (xx, xx, top, h - bottom))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (
            xx, h - bottom + 16, "%dk" % (r // 1000) if r >= 1000 else str(r)))
    out.append('<text x="%d" y="%d" text-anchor="middle">offered spectra per second (log)</text>' % (
        (left + w - right) // 2, h - 12))
    out.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">end-to-end latency '
               '(log)</text>' % ((top + h - bottom) // 2, (top + h - bottom) // 2))
    colours = {"full": "#1f77b4", "partial": "#d62728"}
    legend_y = top + 10
    for cov, ps in points.items():
        c = colours.get(cov, "black")
        for idx, dash, label in ((3, "", "p99"), (2, "4 3", "p50")):
            pts = " ".join("%.1f,%.1f" % (x(p[0]), y(p[idx])) for p in ps if p[idx] > 0)
            out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>'
                       % (pts, c, dash))
            for p in ps:
                if p[idx] > 0:
                    out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (x(p[0]), y(p[idx]), c))
            out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>'
                       % (w - right + 10, w - right + 34, legend_y, legend_y, c, dash))
            out.append('<text x="%d" y="%d">%s, %s</text>' % (w - right + 40, legend_y + 4, cov, label))
            legend_y += 18
        # Where delivery falls short of the offer: the saturation point.
        short = [p for p in ps if p[1] < 0.97 * p[0]]
        if short:
            s = short[0]
            out.append('<text x="%.1f" y="%.1f" fill="%s" text-anchor="middle">%s: %.0fk/s delivered</text>' % (
                x(s[0]), y(s[3]) - 8, c, cov, s[1] / 1000.0))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--library", default=os.path.join(ROOT, "build", "tests", "daemon", "library"))
    parser.add_argument("--rates", default="1000,2000,5000,10000,15000,20000,30000,40000,50000")
    parser.add_argument("--coverages", default="full,partial")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drain", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out-jsonl", help="every run as a JSON line (default: in the temporary folder)")
    parser.add_argument("--svg", help="write the plot here")
    args = parser.parse_args()
    args.build, args.library = os.path.abspath(args.build), os.path.abspath(args.library)
    rates = [int(r) for r in args.rates.split(",")]
    workdir = tempfile.mkdtemp(prefix="xasmap-load-")
    jsonl = args.out_jsonl or os.path.join(workdir, "load.jsonl")
    ctx = zmq.Context()
    service = run_baseline.Service("xasmapd", args, workdir)
    points = {}
    try:
        service.wait_ready(ctx)
        with open(jsonl, "w") as sink:
            for cov in args.coverages.split(","):
                args.coverage = cov
                points[cov] = []
                for rate in rates:
                    runs = []
                    for _ in range(args.repeat):
                        r = run_baseline.bench(args, service, rate, max(1, int(rate * args.seconds)))
                        sink.write(json.dumps(r) + "\n")
                        runs.append(r)
                    runs.sort(key=lambda r: r["p99_us"])
                    m = runs[len(runs) // 2]
                    delivered = statistics.median(r["throughput_hz"] for r in runs)
                    points[cov].append((rate, delivered, m["p50_us"] / 1000.0, m["p99_us"] / 1000.0))
                    print("%-8s %6d /s offered: delivered %7.0f /s, p50 %8.3f ms, p99 %8.3f ms, dropped %d" % (
                        cov, rate, delivered, m["p50_us"] / 1000.0, m["p99_us"] / 1000.0, m["dropped"]), flush=True)
    finally:
        service.stop()
    if args.svg:
        svg_plot(points, args.svg, "xasmapd: latency against offered load (2 workers, bench on the same 2 cores)")
        print("plot:", args.svg)
    print("runs:", jsonl)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
