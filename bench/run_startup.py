#!/usr/bin/python3
"""xasmapd start-up at beamline scale: fitting the scale library, and loading its saved model.

Writes the synthetic scale library once (`xasmap scale-library`, 600,000 x 500 by default, kept in
--library), saves its model once (`xasmap embed`), then starts xasmapd --repeat times on each:
library.source files (the matrix library fitted at start-up) and library.source model (the saved
model loaded). Each start is timed by the daemon's own start-up log (stage by stage) and by GNU
time's peak resident memory; the daemon is stopped over its control socket as soon as it is
ready. Prints one line per run and the medians.

    bench/run_startup.py --library /work/scale600k            # 600k: ~70 s to write it once
    bench/run_startup.py --library /tmp/scale100k --spectra 100000

Needs /usr/bin/time (Debian's `time` package) for the peak memory; without it that column is empty.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

import run_baseline

ROOT = run_baseline.ROOT
STAGES = ("library", "model file", "preprocess", "landmarks", "embedding", "index")


def config_text(args, source, ports):
    lib = "  source: %s\n" % source
    lib += "  directory: %s\n" % args.library if source == "files" else "  model_file: %s\n" % args.model
    return ("library:\n" + lib +
            "  grid: {emin_ev: 635.0, emax_ev: 660.0, step_ev: %r}\n" % (25.0 / (args.points - 1)) +
            "  preprocess: {align: none}\n"
            "embedding: {landmarks: %d, estimate_dims: 12}\n" % args.landmarks +
            "input: {endpoint: \"tcp://127.0.0.1:%d\", bind: true}\n" % ports[0] +
            "output: {endpoint: \"tcp://127.0.0.1:%d\"}\n" % ports[1] +
            "control: {endpoint: \"tcp://127.0.0.1:%d\"}\n" % ports[2])


def start_once(args, source, workdir):
    ports = [run_baseline.free_port() for _ in range(3)]
    cfg = os.path.join(workdir, source + ".yaml")
    with open(cfg, "w") as f:
        f.write(config_text(args, source, ports))
    log = os.path.join(workdir, source + ".log")
    timing = os.path.join(workdir, source + ".time")
    daemon = [os.path.join(args.build, "service", "xasmapd"), "--config", cfg]
    cmd = (["/usr/bin/time", "-f", "%M", "-o", timing] if os.access("/usr/bin/time", os.X_OK) else []) + daemon
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    ready = None
    while time.monotonic() - t0 < args.timeout and proc.poll() is None:
        text = open(log).read()
        if "ready in" in text and "control" in text.split("ready in", 1)[1]:
            ready = text
            break
        time.sleep(0.05)
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.connect("tcp://127.0.0.1:%d" % ports[2])
    try:
        req.send(msgpack.packb({"cmd": "shutdown"}))
        req.recv()
    except zmq.ZMQError:
        proc.terminate()
    req.close()
    ctx.term()
    proc.wait(60)
    if ready is None:
        raise RuntimeError("xasmapd did not become ready; its log:\n" + open(log).read())
    row = {"source": source, "ready_s": float(re.search(r"ready in ([0-9.]+) s", ready).group(1))}
    stages = re.search(r"start-up +(.*)", ready).group(1)
    for name in STAGES:
        m = re.search(re.escape(name) + r" ([0-9.]+) s", stages)
        row[name] = float(m.group(1)) if m else 0.0
    if os.path.exists(timing):
        row["peak_mib"] = int(open(timing).read().split()[-1]) / 1024.0
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--library", required=True, help="matrix library folder (written when missing)")
    parser.add_argument("--model", help="saved model (default: LIBRARY.xasm, written when missing)")
    parser.add_argument("--spectra", type=int, default=600000)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--landmarks", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    args.build, args.library = os.path.abspath(args.build), os.path.abspath(args.library)
    args.model = os.path.abspath(args.model or args.library.rstrip("/") + ".xasm")
    tool = os.path.join(args.build, "service", "xasmap")
    workdir = tempfile.mkdtemp(prefix="xasmap-startup-")
    if not os.path.exists(os.path.join(args.library, "spectra.npy")):
        subprocess.run([tool, "scale-library", "--out", args.library, "--spectra", str(args.spectra),
                        "--points", str(args.points)], check=True)
    if not os.path.exists(args.model):
        cfg = os.path.join(workdir, "embed.yaml")
        with open(cfg, "w") as f:
            f.write(config_text(args, "files", [0, 0, 0]).split("input:")[0])
        subprocess.run([tool, "embed", "--config", cfg, "--out", args.model], check=True)
    lib_mib = os.path.getsize(os.path.join(args.library, "spectra.npy")) / 2.0 ** 20
    print("library %s: %.1f MiB of float32; model %s: %.1f MiB" % (
        args.library, lib_mib, args.model, os.path.getsize(args.model) / 2.0 ** 20))
    for source in ("files", "model"):
        rows = []
        for _ in range(args.repeat):
            r = start_once(args, source, workdir)
            rows.append(r)
            print("%-5s ready %.2f s  (%s)  peak %.0f MiB = %.2f x library" % (
                source, r["ready_s"], ", ".join("%s %.2f" % (n, r[n]) for n in STAGES if r[n] > 0),
                r.get("peak_mib", 0), r.get("peak_mib", 0) / lib_mib), flush=True)
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "source"}
        print("%-5s MEDIAN of %d: ready %.2f s, %s, peak %.0f MiB = %.2f x library" % (
            source, len(rows), med["ready_s"], ", ".join("%s %.2f s" % (n, med[n]) for n in STAGES if med[n] > 0),
            med.get("peak_mib", 0), med.get("peak_mib", 0) / lib_mib), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
