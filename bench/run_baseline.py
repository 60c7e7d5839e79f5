#!/usr/bin/python3
"""xasmapd against the Python baseline (bench/baseline/xasmap_baseline.py), in one session.

Starts xasmapd on the library folder (a config written to a temporary folder, loopback tcp on free
ports, `library.source: files`), runs `xasmap bench` against it flat out and at each fixed offered
rate, stops it, and then does the same against the baseline on the same library: the same bench
binary, the same seed, counts and rates, so both services see the same messages (noisy library
spectra on random grids, bin f4, 256 variants cycled; `--coverage full` for grids that span the
library's whole range). Prints a table of delivered throughput,
latency percentiles and drops, with the ratio xasmapd / baseline, and keeps every bench JSON line
(plus the service, the load average and the settings) in a JSON-lines file.

    bench/run_baseline.py                                   # build/, build/tests/daemon/library
    bench/run_baseline.py --build build-baseline --rates 100,300,600,1000 --flat-count 4000 --seconds 5

Everything is bounded: `--flat-count` messages flat out, `rate x --seconds` messages at each rate,
at most `--drain` seconds of waiting for the last answers after sending, and a timeout on every
step. Needs Debian's python3-zmq, python3-msgpack, python3-numpy and python3-sklearn. It only
starts, signals and waits for processes it started itself.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """xasmapd or the baseline as a child process on fresh loopback endpoints."""

    def __init__(self, kind, args, workdir):
        self.kind = kind
        self.input = "tcp://127.0.0.1:%d" % free_port()
        self.output = "tcp://127.0.0.1:%d" % free_port()
        self.log = os.path.join(workdir, kind + ".log")
        self.config = os.path.join(workdir, kind + ".yaml")
        self.control = "ipc://%s/%s-control.ipc" % (workdir, kind)  # xasmapd only
        # The bench reads its defaults (pattern: sub) from a config; the endpoints are passed to it.
        with open(self.config, "w") as f:
            f.write("library:\n  source: files\n  directory: %s\n" % args.library +
                    "input:\n  endpoint: %s\n  workers: %d\n" % (self.input, args.workers) +
                    "output:\n  endpoint: %s\n" % self.output +
                    "control:\n  endpoint: %s\n" % self.control +
                    "logging:\n  level: warn\n")
        if kind == "xasmapd":
            cmd = [os.path.join(args.build, "service", "xasmapd"), "--config", self.config]
        else:
            cmd = [PYTHON, os.path.join(HERE, "baseline", "xasmap_baseline.py"), "--library", args.library,
                   "--input", self.input, "--output", self.output]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)

    def wait_ready(self, ctx, timeout=60.0):
        """Ready when its first metrics message arrives (both publish them once serving; xasmapd's
        before its model is built too, so its control socket's `ready` is asked as well)."""
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"metrics")
        sub.connect(self.output)
        deadline = time.time() + timeout
        try:
            while time.time() < deadline and self.proc.poll() is None:
                if not sub.poll(200):
                    continue
                sub.recv_multipart()
                if self.kind != "xasmapd" or self.status(ctx).get("ready"):
                    return
        finally:
            sub.close(linger=0)
        raise RuntimeError("%s did not become ready; its log:\n%s" % (self.kind, open(self.log).read()))

    def status(self, ctx):
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.RCVTIMEO, 2000)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(self.control)
        try:
            req.send(msgpack.packb({"cmd": "status"}))
            return msgpack.unpackb(req.recv(), raw=False)
        except zmq.Again:
            return {}
        finally:
            req.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def bench(args, service, rate, count):
    cmd = [os.path.join(args.build, "service", "xasmap"), "bench", "--config", service.config,
           "--input", service.input, "--output", service.output, "--library", args.library,
           "--rate", str(rate), "--count", str(count), "--seed", str(args.seed),
           "--seconds", str(args.seconds * 4 + 10), "--drain", str(args.drain), "--coverage", args.coverage,
           "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds * 4 + args.drain + 60)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError("xasmap bench printed no result (exit %d):\n%s%s" % (run.returncode, run.stdout, run.stderr))
    result = json.loads(lines[-1])
    result.update({"service": service.kind, "exit": run.returncode, "loadavg_1m": os.getloadavg()[0],
                   "seed": args.seed, "library": args.library, "coverage": args.coverage})
    return result


# xasmap bench's latency histogram ends at 0.1 us x 1.01^2315 = 1.0e9 us (17 min): a latency beyond
# lands in its last bucket, so a percentile that reads that means "that or more" (max_us is exact).
HISTOGRAM_END_US = 0.1 * 1.01 ** 2315


def ms(us):
    if us >= HISTOGRAM_END_US * 0.999:
        return ">= %.0f" % (HISTOGRAM_END_US / 1000.0)
    return "%.2f" % (us / 1000.0) if us < 10000 else "%.0f" % (us / 1000.0)


def ratio(num, den):
    """num / den as 'N x', or '>= N x' when num is a saturated percentile."""
    text = "%.0f x" % (num / den) if num / den >= 10 else "%.1f x" % (num / den)
    return (">= " + text) if num >= HISTOGRAM_END_US * 0.999 else text


def print_table(results, rates):
    by = {(r["service"], r["offered_hz"]): r for r in results}
    print()
    print("| offered | service | sent | delivered /s | p50 ms | p99 ms | dropped | missing | load 1m |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rate in [0] + rates:
        for kind in ("xasmapd", "baseline"):
            r = by.get((kind, rate))
            if r:
                print("| %s | %s | %d | %.0f | %s | %s | %d | %d | %.2f |" % (
                    "flat out" if rate == 0 else "%d /s" % rate, kind, r["sent"], r["throughput_hz"],
                    ms(r["p50_us"]), ms(r["p99_us"]), r["dropped"], r["missing"], r["loadavg_1m"]))
    print()
    print("| offered | delivered: xasmapd / baseline | p50: baseline / xasmapd | p99: baseline / xasmapd |")
    print("| --- | ---: | ---: | ---: |")
    for rate in [0] + rates:
        a, b = by.get(("xasmapd", rate)), by.get(("baseline", rate))
        if a and b and b["throughput_hz"] > 0 and a["p50_us"] > 0 and a["p99_us"] > 0:
            print("| %s | %s | %s | %s |" % (
                "flat out" if rate == 0 else "%d /s" % rate, ratio(a["throughput_hz"], b["throughput_hz"]),
                ratio(b["p50_us"], a["p50_us"]), ratio(b["p99_us"], a["p99_us"])))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"),
                        help="build folder holding service/xasmapd and service/xasmap (default: build)")
    parser.add_argument("--library", default=os.path.join(ROOT, "build", "tests", "daemon", "library"),
                        help="library folder with manifest.csv (default: the ctest fixture's)")
    parser.add_argument("--rates", default="100,300,600,1000", help="fixed offered rates, per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of sending at each fixed rate")
    parser.add_argument("--flat-count", type=int, default=4000, help="messages sent flat out")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last answers")
    parser.add_argument("--seed", type=int, default=1, help="the bench's random seed (the same for both)")
    parser.add_argument("--coverage", choices=("partial", "full"), default="partial",
                        help="the spectra's energy range: a random part of the library's, or all of it")
    parser.add_argument("--workers", type=int, default=0, help="xasmapd's worker threads (0: one per core)")
    parser.add_argument("--only", choices=("xasmapd", "baseline"), help="bench one service only")
    parser.add_argument("--out", help="JSON-lines file for the results (default: in the temporary folder)")
    args = parser.parse_args()
    args.build = os.path.abspath(args.build)
    args.library = os.path.abspath(args.library)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    if not os.path.isfile(os.path.join(args.library, "manifest.csv")):
        parser.error("no manifest.csv in %s (write one with: xasmap library --out DIR)" % args.library)
    for exe in ("xasmapd", "xasmap"):
        if not os.access(os.path.join(args.build, "service", exe), os.X_OK):
            parser.error("no %s in %s/service" % (exe, args.build))

    workdir = tempfile.mkdtemp(prefix="xasmap-baseline-")
    out = args.out or os.path.join(workdir, "results.jsonl")
    ctx = zmq.Context()
    results = []
    print("xasmapd against the Python baseline: library %s, seed %d, %d cores, load average %.2f; work folder %s"
          % (args.library, args.seed, os.cpu_count(), os.getloadavg()[0], workdir), flush=True)
    with open(out, "w") as sink:
        for kind in ("xasmapd", "baseline"):
            if args.only and kind != args.only:
                continue
            service = Service(kind, args, workdir)
            try:
                service.wait_ready(ctx)
                for rate in [0] + rates:
                    count = args.flat_count if rate == 0 else max(1, int(round(rate * args.seconds)))
                    r = bench(args, service, rate, count)
                    results.append(r)
                    sink.write(json.dumps(r) + "\n")
                    sink.flush()
                    print("%-8s %-9s sent %5d  delivered %7.0f /s  p50 %8s ms  p99 %8s ms  dropped %5d  missing %d"
                          % (kind, "flat out" if rate == 0 else "%d /s" % rate, r["sent"], r["throughput_hz"],
                             ms(r["p50_us"]), ms(r["p99_us"]), r["dropped"], r["missing"]), flush=True)
            finally:
                code = service.stop()
            if code != 0:
                print("warning: %s exited %s; its log: %s" % (kind, code, service.log), file=sys.stderr)
    print_table(results, rates)
    print("\nLatency is from send to answer on the bench's clock; flat out it is mostly queueing. '>= %.0f'"
          " is the end of xasmap bench's latency histogram.\nresults: %s (load average at the end %.2f)"
          % (HISTOGRAM_END_US / 1000.0, out, os.getloadavg()[0]))
    ctx.term()
    return 0 if all(r["missing"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
