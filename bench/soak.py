#!/usr/bin/python3
"""Soak test of xasmapd: a real daemon for a bounded time at a fixed rate, under a mix of load.

    soak.py --xasmapd EXE --model MODEL --library DIR --workdir DIR [--seconds 600] [--rate 200]

The acquisition side is a DEALER on the daemon's acknowledged (router) input, so every message
it sends has exactly one answer to match. It sends, at --rate messages per second:
  - single spectra (noisy copies of the library's, on random grids);
  - a 32x32 STXM stack every --stack-every seconds;
  - malformed messages (one in 20): bytes that are not msgpack, NaN intensities, arrays of
    different lengths, a wrong topic, an unknown dtype;
and a `reload` on the control socket every --reload-every seconds. Beside a subscriber that reads
everything, a slow subscriber reads one message every 20 ms, and a stalled one never reads and
reconnects every 20 s.

Every 2 s it samples the daemon's RSS, threads and open file descriptors. It fails (exit 1) when:
  - a message is not answered to the sender, or answered twice;
  - the reading subscriber misses an answer or sees one twice;
  - a malformed message is answered with anything but an error;
  - status's counters do not add up, or a thread of the daemon failed;
  - after the warm-up (the first quarter of the run, at most 60 s), the RSS grows by more than
    32 MiB + 10 % (median of the last quarter of samples against the first quarter after the
    warm-up), the thread count ends other than it started (a reload adds one while it runs),
    or the descriptor count ends more than 4 above where it started (or ever exceeds it by 16).
Bounded in time (--seconds plus at most 60 s to drain) and on loopback only. Reports one JSON line
(and --report FILE).
"""

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import zmq

CTX = zmq.Context.instance()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_library(folder):
    out = []
    with open(os.path.join(folder, "manifest.csv")) as f:
        for row in csv.DictReader(f):
            data = np.loadtxt(os.path.join(folder, row["file"]), delimiter=",", skiprows=1)
            out.append((data[:, 0], data[:, 1]))
    return out


def measured(rng, entry):
    energy, intensity = entry
    grid = np.arange(rng.uniform(635.5, 637.0), rng.uniform(657.0, 659.5), rng.uniform(0.05, 0.2))
    peak = intensity.max()
    y = np.interp(grid - rng.uniform(-0.3, 0.3), energy, intensity)
    y += peak * rng.uniform(0.0, 0.2)
    y += rng.normal(0.0, peak / 30.0, grid.size)
    return grid, y


def spectrum(ident, energy, intensity, **extra):
    m = {"id": ident, "energy": np.asarray(energy, "<f8").tobytes(), "intensity": np.asarray(intensity, "<f8").tobytes(),
         "dtype": "f8", "time": time.time()}
    m.update(extra)
    return msgpack.packb(m, use_bin_type=True)


def stack(ident, rng, library):
    grid = np.arange(636.0, 659.0, 0.1)
    a, b = library[rng.integers(len(library))], library[rng.integers(len(library))]
    ya, yb = np.interp(grid, a[0], a[1]), np.interp(grid, b[0], b[1])
    w = np.linspace(0.0, 1.0, 32 * 32)[:, None]
    cube = (1 - w) * ya + w * yb + rng.normal(0.0, ya.max() / 30.0, (32 * 32, grid.size))
    m = {"id": ident, "energy": [float(x) for x in grid], "intensity": cube.astype("<f4").tobytes(),
         "dtype": "f4", "shape": [32, 32, grid.size], "time": time.time()}
    return msgpack.packb(m, use_bin_type=True)


def malformed(kind, ident, rng, library):
    """(frames, id the error answer carries or None)."""
    energy, intensity = measured(rng, library[0])
    if kind == 0:
        return [b"spectrum", b"\xc1\xc1 not msgpack"], None
    if kind == 1:
        bad = np.array(intensity)
        bad[5] = np.nan
        return [b"spectrum", spectrum(ident, energy, bad)], ident
    if kind == 2:
        return [b"spectrum", spectrum(ident, energy, intensity[:-3])], ident
    if kind == 3:
        return [b"spectrum/raw", spectrum(ident, energy, intensity)], None
    return [b"spectrum", spectrum(ident, energy, intensity, dtype="f16")], ident


def proc_sample(pid):
    status = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return {"rss_mib": int(status["VmRSS"].split()[0]) / 1024.0, "threads": int(status["Threads"]),
            "fds": len(os.listdir("/proc/%d/fd" % pid))}


class Subscriber(threading.Thread):
    """reading: counts every answer by id; slow: one message every 20 ms; stalled: never reads,
    and reconnects every 20 s."""

    def __init__(self, endpoint, mode, stop):
        super().__init__(daemon=True)
        self.endpoint, self.mode, self.stop = endpoint, mode, stop
        self.answers = {}
        self.no_id = 0
        self.received = 0

    def run(self):
        while not self.stop.is_set():
            sub = CTX.socket(zmq.SUB)
            if self.mode == "reading":
                sub.setsockopt(zmq.RCVHWM, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(self.endpoint)
            t_connected = time.time()
            while not self.stop.is_set():
                if self.mode == "stalled":
                    if time.time() - t_connected > 20:
                        break
                    time.sleep(0.1)
                    continue
                if not sub.poll(50):
                    continue
                frames = sub.recv_multipart()
                self.received += 1
                if self.mode == "slow":
                    time.sleep(0.02)
                    continue
                if frames[0] in (b"estimate", b"estimate_map", b"error"):
                    ident = msgpack.unpackb(frames[1], raw=False).get("id")
                    if ident is None:
                        self.no_id += 1
                    else:
                        self.answers[ident] = self.answers.get(ident, 0) + 1
            sub.close(linger=0)


def control(endpoint, cmd, timeout=5.0):
    req = CTX.socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    try:
        req.send(msgpack.packb({"cmd": cmd}))
        return msgpack.unpackb(req.recv(), raw=False)
    except zmq.Again:
        return None
    finally:
        req.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xasmapd", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--library", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second (default 200)")
    parser.add_argument("--stack-every", type=float, default=10.0)
    parser.add_argument("--reload-every", type=float, default=60.0)
    parser.add_argument("--dedup-ids", type=int, default=100000, help="the daemon's input.dedup_ids (default 100000)")
    parser.add_argument("--report", help="also write the JSON report here")
    args = parser.parse_args()
    if not (0 < args.seconds <= 24 * 3600 and 0 < args.rate <= 5000):
        parser.error("--seconds must be in (0, 86400] and --rate in (0, 5000]")
    os.makedirs(args.workdir, exist_ok=True)
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
            print("FAIL:", what, flush=True)

    inp, out = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    ctl = "ipc://%s/soak-control.ipc" % os.path.abspath(args.workdir)
    config = os.path.join(args.workdir, "soak.yaml")
    with open(config, "w") as f:
        f.write("library:\n  source: model\n  model_file: %s\n" % os.path.abspath(args.model) +
                "input:\n  endpoint: %s\n  pattern: router\n  bind: true\n  overflow: block\n  workers: 2\n"
                "  dedup_ids: %d\n" % (inp, args.dedup_ids) +
                "output:\n  endpoint: %s\n  send_hwm: 5000\ncontrol:\n  endpoint: %s\n" % (out, ctl) +
                "metrics:\n  interval_s: 1.0\n")
    log = open(os.path.join(args.workdir, "soak.log"), "w")
    daemon = subprocess.Popen([args.xasmapd, "--config", config], stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            s = control(ctl, "status", 1.0)
            if s and s.get("ready"):
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the daemon did not become ready")
        library = load_library(args.library)
        rng = np.random.default_rng(5)
        stop = threading.Event()
        subs = {mode: Subscriber(out, mode, stop) for mode in ("reading", "slow", "stalled")}
        for sub in subs.values():
            sub.start()
        time.sleep(1.0)  # the subscriptions reach the daemon

        dealer = CTX.socket(zmq.DEALER)
        dealer.setsockopt(zmq.RCVHWM, 0)
        dealer.setsockopt(zmq.SNDHWM, 0)
        dealer.connect(inp)
        answers = {}        # id -> [topics]
        no_id_answers = 0
        expect_error = {}   # malformed message id -> True
        no_id_sent = 0
        samples = []
        sent = 0
        reloads = 0
        t0 = time.time()
        next_sample = next_stack = t0
        next_reload = t0 + args.reload_every

        def receive(timeout_ms):
            nonlocal no_id_answers
            if not dealer.poll(timeout_ms):
                return
            while True:
                try:
                    frames = dealer.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    return
                ident = msgpack.unpackb(frames[-1], raw=False).get("id")
                if ident is None:
                    no_id_answers += 1
                else:
                    answers.setdefault(ident, []).append(frames[-2].decode())

        while time.time() - t0 < args.seconds:
            now = time.time()
            if now >= next_sample:
                sample = proc_sample(daemon.pid)
                sample["t"] = round(now - t0, 1)
                samples.append(sample)
                next_sample += 2.0
            if now >= next_reload:
                r = control(ctl, "reload")
                check(r is not None and r.get("ok"), "reload at %.0f s started: %s" % (now - t0, r))
                reloads += 1
                next_reload += args.reload_every
            while sent < (time.time() - t0) * args.rate:
                ident = "soak-%d" % sent
                if time.time() >= next_stack:
                    dealer.send_multipart([b"spectrum", stack(ident, rng, library)])
                    next_stack += args.stack_every
                elif sent % 20 == 19:
                    frames, carried = malformed((sent // 20) % 5, ident, rng, library)
                    dealer.send_multipart(frames)
                    if carried is None:
                        no_id_sent += 1
                    else:
                        expect_error[carried] = True
                else:
                    energy, intensity = measured(rng, library[rng.integers(len(library))])
                    dealer.send_multipart([b"spectrum", spectrum(ident, energy, intensity)])
                sent += 1
            receive(5)
        # Drain: every answer, within 60 s.
        drain_deadline = time.time() + 60
        expected_with_id = sent - no_id_sent
        while time.time() < drain_deadline and (len(answers) < expected_with_id or no_id_answers < no_id_sent):
            receive(100)
        time.sleep(1.0)
        samples.append(dict(proc_sample(daemon.pid), t=round(time.time() - t0, 1)))
        stop.set()
        for sub in subs.values():
            sub.join(5)
        status = control(ctl, "status")

        # ---- checks ----
        twice = [k for k, v in answers.items() if len(v) > 1]
        missing = expected_with_id - len(answers)
        check(missing == 0 and not twice and no_id_answers == no_id_sent,
              "every message answered once to the sender (missing %d, twice %d, id-less %d of %d)" %
              (missing, len(twice), no_id_answers, no_id_sent))
        wrong = [k for k in expect_error if answers.get(k, [""])[0] != "error"]
        check(not wrong, "every malformed message answered with an error (%d not)" % len(wrong))
        seen = subs["reading"].answers
        check(len(seen) == len(answers) and all(v == 1 for v in seen.values()),
              "the reading subscriber saw every answer once (%d of %d, %d twice)" %
              (len(seen), len(answers), sum(1 for v in seen.values() if v > 1)))
        check(status is not None, "status answers at the end")
        if status:
            total = (status["published"] + status["rejected"] + status["dropped"] + status["duplicates"] +
                     status["queue_depth"])
            check(status["received"] == total and status["queue_depth"] == 0,
                  "counters add up and nothing is left: %s" % {k: status[k] for k in (
                      "received", "published", "rejected", "dropped", "duplicates", "queue_depth")})
            check(status["thread_failures"] == 0, "no thread failed (%d)" % status["thread_failures"])
            check(status["model_generation"] == 1 + reloads,
                  "every reload done (generation %d after %d)" % (status["model_generation"], reloads))
        warm = max(1, min(int(len(samples) * 0.25), 30))
        steady = samples[warm:]
        quarter = max(1, len(steady) // 4)
        rss_start = float(np.median([s["rss_mib"] for s in steady[:quarter]]))
        rss_end = float(np.median([s["rss_mib"] for s in steady[-quarter:]]))
        rss_bound = 32.0 + 0.10 * rss_start
        check(rss_end - rss_start <= rss_bound,
              "RSS drift %.1f MiB (from %.1f to %.1f) within %.1f MiB" % (rss_end - rss_start, rss_start, rss_end, rss_bound))
        threads0 = steady[0]["threads"]
        check(steady[-1]["threads"] == threads0 and max(s["threads"] for s in steady) <= threads0 + 1,
              "threads %d at the start of the steady state, %d at the end, at most %d" %
              (threads0, steady[-1]["threads"], max(s["threads"] for s in steady)))
        fds0 = steady[0]["fds"]
        check(steady[-1]["fds"] <= fds0 + 4 and max(s["fds"] for s in steady) <= fds0 + 16,
              "descriptors %d at the start, %d at the end, at most %d" %
              (fds0, steady[-1]["fds"], max(s["fds"] for s in steady)))
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(30)
        check(code == 0, "the daemon exits 0 on SIGTERM (%d)" % code)
        report = {
            "seconds": round(time.time() - t0, 1), "rate_hz": args.rate, "sent": sent, "answered": len(answers) + no_id_answers,
            "malformed": len(expect_error) + no_id_sent, "reloads": reloads,
            "slow_subscriber_received": subs["slow"].received, "reading_subscriber_received": subs["reading"].received,
            "rss_mib_steady_start": round(rss_start, 1), "rss_mib_end": round(rss_end, 1),
            "rss_mib_max": round(max(s["rss_mib"] for s in samples), 1),
            "threads": [threads0, steady[-1]["threads"], max(s["threads"] for s in steady)],
            "fds": [fds0, steady[-1]["fds"], max(s["fds"] for s in steady)],
            "failures": failures,
        }
        print(json.dumps(report))
        if args.report:
            with open(args.report, "w") as f:
                json.dump({"report": report, "samples": samples}, f, indent=1)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    print("soak: %s" % ("FAILED" if failures else "passed"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
