#!/usr/bin/python3
"""The web dashboard under load (issue #16; docs/benchmarks.md, "The web dashboard").

1. The daemon's sustained throughput flat out, alone and with `xasmap dashboard` (at its default
   niceness, 10) and five headless Chromium tabs (at --browser-nice, default 19) open on it, in
   turns (--rounds), each `xasmap bench --rate 0 --count N`. Everything shares this machine's cores,
   the load generator too.
2. The page at a fixed offered rate (default 10,000 spectra/s for 10 s) with one tab: how long
   each Server-Sent Event takes to apply, how late a 100 ms timer fires (the page's responsiveness),
   events per second, and whether the page's estimate-count ends equal to what the daemon published.

    bench/run_dashboard.py --out-jsonl out/dashboard.jsonl

Bounded: every bench run has a count and a time limit; loopback only; it stops what it started.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

import run_baseline

sys.path.insert(0, os.path.join(run_baseline.ROOT, "deploy"))
from dashboard_screenshot import Browser  # noqa: E402


def start_dashboard(args, service):
    proc = subprocess.Popen([os.path.join(args.build, "service", "xasmap"), "dashboard", "--output", service.output,
                             "--control", service.control, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = re.search(r"serving (http://127\.0\.0\.1:\d+/)", proc.stdout.readline())
    if not m:
        proc.kill()
        raise RuntimeError("the dashboard printed no address")
    return proc, m.group(1)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(run_baseline.ROOT, "build"))
    parser.add_argument("--library", default=os.path.join(run_baseline.ROOT, "build", "tests", "daemon", "library"))
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--count", type=int, default=60000, help="spectra per flat-out run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds between the tabs' loading and the flat-out run with them open")
    parser.add_argument("--tabs", type=int, default=5)
    parser.add_argument("--browser-nice", type=int, default=19,
                        help="Chromium's niceness: on a beamline the browser is on another screen, not the daemon's cores")
    parser.add_argument("--rate", type=int, default=10000, help="offered rate of the responsiveness run")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--coverage", default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--drain", type=float, default=10.0)
    parser.add_argument("--sustained", default="12000,16000,20000,24000",
                        help="offered rates at which delivery is compared, alone and watched (3 s each)")
    parser.add_argument("--out-jsonl")
    args = parser.parse_args()
    args.build = os.path.abspath(args.build)
    args.library = os.path.abspath(args.library)
    work = tempfile.mkdtemp(prefix="xasmap-dashboard-bench-")
    ctx = zmq.Context.instance()
    service = run_baseline.Service("xasmapd", args, work)
    rows = []
    try:
        service.wait_ready(ctx)
        run_baseline.bench(args, service, 0, 2000)  # warm-up
        alone, watched = [], []
        for r in range(args.rounds):
            res = run_baseline.bench(args, service, 0, args.count)
            alone.append(res["throughput_hz"])
            rows.append(dict(res, case="alone", round=r))
            dash, url = start_dashboard(args, service)
            browser = Browser(niceness=args.browser_nice)
            try:
                tabs = [browser.open(url) for _ in range(args.tabs)]
                for t in tabs:
                    browser.wait_for(t, "document.getElementById('conn').className.includes('ok')", True, 20)
                # The tabs have only just loaded (Chromium's start and the first drawing of the library
                # map take more than a core for a second or two): measure the steady state.
                time.sleep(args.settle)
                res = run_baseline.bench(args, service, 0, args.count)
                watched.append(res["throughput_hz"])
                rows.append(dict(res, case="dashboard and %d tabs" % args.tabs, round=r))
            finally:
                browser.close()
                stop(dash)
            print("round %d: alone %.0f /s, with the dashboard and %d tabs %.0f /s" %
                  (r + 1, alone[-1], args.tabs, watched[-1]), flush=True)
        a, w = statistics.median(alone), statistics.median(watched)
        print("flat out (median of %d): alone %.0f /s, with the dashboard and %d tabs %.0f /s: %.1f %% fewer" %
              (args.rounds, a, args.tabs, w, 100.0 * (1 - w / a)))

        # Sustained: at fixed offered rates, what is delivered without drops, alone and watched.
        rates = [int(v) for v in args.sustained.split(",") if v]
        sustained = {"alone": {}, "watched": {}}
        for r in range(args.rounds):
            for case in ("alone", "watched"):
                dash = browser = None
                if case == "watched":
                    dash, url = start_dashboard(args, service)
                    browser = Browser(niceness=args.browser_nice)
                    tabs = [browser.open(url) for _ in range(args.tabs)]
                    for t in tabs:
                        browser.wait_for(t, "document.getElementById('conn').className.includes('ok')", True, 20)
                try:
                    for rate in rates:
                        res = run_baseline.bench(args, service, rate, rate * 3)
                        delivered = res["estimates"] / float(rate * 3)
                        sustained[case].setdefault(rate, []).append((delivered, res["dropped"], res["p99_us"]))
                        rows.append(dict(res, case="sustained " + case, round=r))
                finally:
                    if browser:
                        browser.close()
                    if dash:
                        stop(dash)
        for rate in rates:
            line = []
            for case in ("alone", "watched"):
                v = sustained[case][rate]
                line.append("%s: delivered %.1f %% (min %.1f %%), drops %s, p99 %.1f ms" % (
                    case, 100 * statistics.median(x[0] for x in v), 100 * min(x[0] for x in v),
                    "/".join(str(x[1]) for x in v), statistics.median(x[2] for x in v) / 1000))
            print("offered %d /s: %s" % (rate, "; ".join(line)), flush=True)

        # Responsiveness at a fixed rate, one tab.
        dash, url = start_dashboard(args, service)
        browser = Browser()
        try:
            tab = browser.open(url)
            browser.wait_for(tab, "document.getElementById('conn').className.includes('ok')", True, 20)
            before = int(browser.evaluate(tab, "document.getElementById('estimate-count').textContent"))
            browser.evaluate(tab, "dashboardPerf.applyMs = []; dashboardPerf.maxApplyMs = 0; "
                                  "dashboardPerf.maxTimerLateMs = 0; dashboardPerf.events = 0; 0")
            count = int(args.rate * args.rate_seconds)
            t0 = time.time()
            res = run_baseline.bench(args, service, args.rate, count)
            seconds = time.time() - t0
            published = service.status(ctx).get("published", 0)
            time.sleep(1.0)
            perf = browser.evaluate(tab, "JSON.stringify(dashboardPerf)")
            shown = int(browser.evaluate(tab, "document.getElementById('estimate-count').textContent"))
        finally:
            browser.close()
            stop(dash)
        perf = json.loads(perf)
        apply_ms = sorted(perf["applyMs"])
        summary = {"case": "responsiveness", "offered_per_s": args.rate, "throughput_hz": res["throughput_hz"],
                   "events": perf["events"], "events_per_s": perf["events"] / (seconds + 1.0),
                   "apply_ms_p50": apply_ms[len(apply_ms) // 2] if apply_ms else None,
                   "apply_ms_p99": apply_ms[int(0.99 * (len(apply_ms) - 1))] if apply_ms else None,
                   "apply_ms_max": perf["maxApplyMs"], "timer_late_ms_max": perf["maxTimerLateMs"],
                   "page_count": shown - before, "daemon_results": res["answered"]}
        rows.append(dict(res, **summary))
        print("at %d /s offered (%.0f delivered): %d events (%.1f /s), apply p50 %.1f ms, p99 %.1f ms, max %.1f ms; "
              "a 100 ms timer at most %.0f ms late; the page counted %d of the %d results" %
              (args.rate, res["throughput_hz"], perf["events"], summary["events_per_s"], summary["apply_ms_p50"] or 0,
               summary["apply_ms_p99"] or 0, perf["maxApplyMs"], perf["maxTimerLateMs"], shown - before,
               res["answered"]))
    finally:
        service.stop()
    if args.out_jsonl:
        with open(args.out_jsonl, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
