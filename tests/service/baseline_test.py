#!/usr/bin/python3
"""The Python baseline (bench/baseline/xasmap_baseline.py) computes what xasmapd computes.

Run by ctest as `baseline_agrees`:

    baseline_test.py --xasmapd EXE --baseline SCRIPT --library DIR --workdir DIR

Starts xasmapd (`library.source: files`) and the baseline on the same library folder, both
subscribed to one XPUB feed, so that each receives the same messages: noisy library spectra (random
grids, calibration offsets within +-0.3 eV, a linear background, SNR 30 or 10; one in five covers
the whole grid; one in three has an L3/L2 edge-step continuum of 0.1-0.3 of its L3 maximum), sent as arrays, bin f4 and bin f8, plus a few messages neither can judge. Then it
checks, with these tolerances:

* the baseline answers every id exactly once, and xasmapd does too;
* every bad message gets the same error code and field from both;
* charge: the same value for >= 99 % of the spectra. Measured offline on 1500 such spectra
  (SNR 30, `xasmap estimate` against the baseline's estimator): 1500 of 1500 agree. Only xasmapd's
  approximate candidate search (its kd-tree over the map) and its float32 rows can make them
  differ, for a spectrum almost equally near two library spectra of different charge;
* spectra on part of the grid, where both use the inverse-distance weighted mean: tendq within
  0.005 eV, novelty within 0.01 and energy_shift_ev within 0.005 eV for >= 99 % (measured: equal to
  1e-4 for all 1200);
* spectra covering the whole grid, where xasmapd fits a local linear model and the baseline takes
  the weighted mean: tendq within 0.5 eV for all (measured: median 0.08 eV, at most 0.31 eV);
* the baseline's charge is the true one for >= 90 % (SNR 10 included);
* the edge-step continuum: edge_step within 0.01 for >= 97 % of the part-grid spectra (measured:
  equal to 1e-4 for all 160); each finds it in >= 70 % of the spectra given one (measured: 51 of
  67 by both; at SNR 10 and heights near 0.1 it often stays below 3 standard errors); xasmapd's
  height within 0.05 of the truth on average (measured: -0.001), and at most 0.07 where none was
  added (measured: 1 of 133 nonzero, 0.062);
* the estimate carries xasmapd's keys, less `embedding` (the baseline builds no map).

Everything is on loopback with free ports; every wait is bounded.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_test import Library, free_port, spectrum_message  # noqa: E402

CTX = zmq.Context.instance()
FAILURES = []
PROCS = []


def check(condition, what):
    print(("ok:   " if condition else "FAIL: ") + what, flush=True)
    if not condition:
        FAILURES.append(what)
    return condition


class Collector:
    """Everything one service publishes, gathered by a background thread."""

    def __init__(self, endpoint):
        self.messages = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sub = CTX.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(endpoint)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            if self.sub.poll(50):
                topic, body = self.sub.recv_multipart()
                with self.lock:
                    self.messages.append((topic.decode(), msgpack.unpackb(body, raw=False)))
        self.sub.close(linger=0)

    def of(self, *topics):
        with self.lock:
            return [m for t, m in self.messages if t in topics]

    def stop(self):
        self.done.set()
        self.thread.join()


def start(cmd, log_path):
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    PROCS.append(proc)
    return proc


def bad_messages(e, y):
    """(id, packed message) of spectra that neither service can judge."""
    flat = np.full_like(y, 3.0)
    narrow = np.linspace(640.0, 645.0, 60)
    backwards = e.copy()
    backwards[20] = backwards[19]
    nan = y.copy()
    nan[7] = np.nan
    return [
        ("bad-flat", spectrum_message("bad-flat", e, flat, "f8")),
        ("bad-narrow", spectrum_message("bad-narrow", narrow, np.sin(narrow), "f4")),
        ("bad-backwards", spectrum_message("bad-backwards", backwards, y, "f8")),
        ("bad-nan", spectrum_message("bad-nan", e, nan, "f8")),
        ("bad-few", spectrum_message("bad-few", e[:5], y[:5])),
        ("bad-length", spectrum_message("bad-length", e, y[:-1])),
        ("bad-dtype", msgpack.packb({"id": "bad-dtype", "energy": b"\0" * 16, "intensity": b"\0" * 16,
                                     "dtype": "f2"})),
        ("bad-missing", msgpack.packb({"id": "bad-missing", "energy": [1.0, 2.0]})),
        ("bad-time", spectrum_message("bad-time", e, y, "f4", stamp=False, time=-1.0)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xasmapd", required=True)
    parser.add_argument("--baseline", required=True, help="bench/baseline/xasmap_baseline.py")
    parser.add_argument("--library", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--count", type=int, default=200, help="good spectra to send")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for name in ("xasmapd", "baseline", "library", "workdir"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    os.makedirs(args.workdir, exist_ok=True)
    t0 = time.time()

    feed = CTX.socket(zmq.XPUB)  # XPUB: it sees both services subscribe before anything is sent
    feed.setsockopt(zmq.SNDHWM, 0)
    feed.setsockopt(zmq.XPUB_VERBOSE, 1)  # pass on the second, identical subscription too
    feed.bind("tcp://127.0.0.1:*")
    endpoint = feed.getsockopt_string(zmq.LAST_ENDPOINT)
    out_d, out_b = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    config = os.path.join(args.workdir, "xasmapd.yaml")
    with open(config, "w") as f:
        f.write("library:\n  source: files\n  directory: %s\n" % args.library +
                "input:\n  endpoint: %s\n" % endpoint + "output:\n  endpoint: %s\n" % out_d +
                "control:\n  endpoint: ipc://%s/control.ipc\n" % args.workdir +
                "metrics:\n  interval_s: 0.2\nlogging:\n  level: warn\n" +
                # The baseline has no session offset: xasmapd must not track or search one either.
                "calibration:\n  track: off\n  search_ev: 0\n")
    daemon = start([args.xasmapd, "--config", config], os.path.join(args.workdir, "xasmapd.log"))
    baseline = start(["/usr/bin/python3", args.baseline, "--library", args.library, "--input", endpoint,
                      "--output", out_b, "--metrics-interval", "0.2"], os.path.join(args.workdir, "baseline.log"))
    got_d, got_b = Collector(out_d), Collector(out_b)

    # Ready: both subscribed to the feed, and both collectors receiving (metrics arrive).
    feed.setsockopt(zmq.RCVTIMEO, 30000)
    try:
        subscriptions = [feed.recv(), feed.recv()]
    except zmq.Again:
        subscriptions = []
    if not check(subscriptions == [b"\x01spectrum"] * 2, "both services subscribe to the feed (%r)" % subscriptions):
        return finish(daemon, baseline, got_d, got_b, args, t0)
    deadline = time.time() + 20
    while time.time() < deadline and not (got_d.of("metrics") and got_b.of("metrics")):
        time.sleep(0.02)
    time.sleep(0.3)  # the XPUB has seen the subscriptions; let both SUBs settle

    lib = Library(args.library)
    rng = np.random.default_rng(args.seed)
    sent = {}  # id -> (true charge, covers the whole grid) for the good spectra
    messages = []
    for i in range(args.count):
        entry = lib.entries[rng.integers(len(lib.entries))]
        snr = 10.0 if i % 4 == 3 else 30.0
        full = i % 5 == 0
        e, y = lib.measured(rng, entry, snr)
        if full:  # the whole grid and more: xasmapd's full-grid path
            e = np.arange(634.0, 661.0, rng.uniform(0.05, 0.2))
            peak = entry["intensity"].max()
            y = (np.interp(e - rng.uniform(-0.3, 0.3), entry["energy"], entry["intensity"]) +
                 peak * rng.uniform(0.0, 0.3) + rng.normal(0.0, peak / snr, e.size))
        height = 0.0
        if i % 3 == 1:  # an edge-step continuum, of another half width than the estimators assume
            height = rng.uniform(0.1, 0.3)
            y = y + entry["intensity"].max() * height * continuum(entry, e, rng.uniform(0.3, 0.7))
        ident = "agree-%04d" % i
        sent[ident] = (entry["charge"], full, height)
        messages.append((ident, spectrum_message(ident, e, y, (None, "f4", "f8")[i % 3], meta={"i": i})))
    bad = bad_messages(e, y)
    messages[10:10] = bad
    for _, body in messages:  # paced, so that the baseline keeps up
        feed.send_multipart([b"spectrum", body])
        time.sleep(1.0 / 150)

    ids = [ident for ident, _ in messages]
    deadline = time.time() + 30
    while time.time() < deadline:
        if all(len(c.of("estimate", "error")) >= len(ids) for c in (got_d, got_b)):
            break
        time.sleep(0.05)
    time.sleep(0.2)  # anything duplicated would arrive now
    return finish(daemon, baseline, got_d, got_b, args, t0, ids, sent, [i for i, _ in bad])


def continuum(entry, energy, width):
    """Two arctangent steps (L3:L2 = 2:1) of half width `width` at the entry's L3 maximum and its
    L2 maximum (the strongest point 8-14 eV above), on `energy`."""
    e, y = entry["energy"], entry["intensity"]
    l3 = e[np.argmax(y)]
    near = (e >= l3 + 8.0) & (e <= l3 + 14.0)
    l2 = e[near][np.argmax(y[near])]
    return (2.0 / 3.0) * (0.5 + np.arctan((energy - l3) / width) / np.pi) + \
        (1.0 / 3.0) * (0.5 + np.arctan((energy - l2) / width) / np.pi)


def answers(collector):
    by_id = {}
    for topic in ("estimate", "error"):
        for m in collector.of(topic):
            by_id.setdefault(m["id"], []).append((topic, m))
    return by_id


def finish(daemon, baseline, got_d, got_b, args, t0, ids=(), sent=None, bad_ids=()):
    for name, proc in (("xasmapd", daemon), ("baseline", baseline)):
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        check(code == 0, "%s exits 0 on SIGTERM (exit %s)" % (name, code))
    time.sleep(0.2)
    got_d.stop()
    got_b.stop()
    if ids:
        compare(answers(got_d), answers(got_b), ids, sent, bad_ids)
    if FAILURES:
        for name in ("xasmapd.log", "baseline.log"):
            print("---- %s\n%s" % (name, open(os.path.join(args.workdir, name)).read()[-3000:]))
    print("baseline_agrees: %s in %.1f s" % ("FAILED" if FAILURES else "passed", time.time() - t0))
    return 1 if FAILURES else 0


def share(flags):
    return sum(flags) / max(1, len(flags))


def compare(d, b, ids, sent, bad_ids):
    check(all(len(d.get(i, [])) == 1 for i in ids),
          "xasmapd answers each of the %d ids once (%d missing, %d more than once)"
          % (len(ids), sum(i not in d for i in ids), sum(len(d.get(i, [])) > 1 for i in ids)))
    check(all(len(b.get(i, [])) == 1 for i in ids),
          "the baseline answers each of the %d ids once (%d missing, %d more than once)"
          % (len(ids), sum(i not in b for i in ids), sum(len(b.get(i, [])) > 1 for i in ids)))
    for i in bad_ids:
        td, md = d.get(i, [(None, {})])[0]
        tb, mb = b.get(i, [(None, {})])[0]
        check(td == tb == "error" and (md.get("code"), md.get("field")) == (mb.get("code"), mb.get("field")),
              "%s: the same error from both (xasmapd %s %s/%s, baseline %s %s/%s)"
              % (i, td, md.get("code"), md.get("field"), tb, mb.get("code"), mb.get("field")))

    pairs = [(i, d[i][0][1], b[i][0][1]) for i in sent
             if d.get(i, [("", {})])[0][0] == "estimate" and b.get(i, [("", {})])[0][0] == "estimate"]
    check(len(pairs) == len(sent), "both estimate every good spectrum (%d of %d)" % (len(pairs), len(sent)))
    if not pairs:
        return
    charge = [x["params"]["charge"] == y["params"]["charge"] for _, x, y in pairs]
    check(share(charge) >= 0.99, "charge agrees for >= 99%%: %d of %d" % (sum(charge), len(charge)))
    truth = [y["params"]["charge"] == sent[i][0] for i, _, y in pairs]
    check(share(truth) >= 0.90, "the baseline's charge is the true one for >= 90%%: %d of %d" % (sum(truth), len(truth)))
    partial = [(x, y) for i, x, y in pairs if not sent[i][1]]
    full = [(x, y) for i, x, y in pairs if sent[i][1]]
    dt = np.array([abs(x["params"]["tendq"] - y["params"]["tendq"]) for x, y in partial])
    dn = np.array([abs(x["novelty"] - y["novelty"]) for x, y in partial])
    ds = np.array([abs(x["energy_shift_ev"] - y["energy_shift_ev"]) for x, y in partial])
    check(share(dt <= 0.005) >= 0.99, "part of the grid: tendq within 0.005 eV for >= 99%%: %d of %d (max %.4f eV)"
          % ((dt <= 0.005).sum(), dt.size, dt.max()))
    check(share(dn <= 0.01) >= 0.99, "part of the grid: novelty within 0.01 for >= 99%%: %d of %d (max %.4f)"
          % ((dn <= 0.01).sum(), dn.size, dn.max()))
    check(share(ds <= 0.005) >= 0.99, "part of the grid: energy_shift_ev within 0.005 eV for >= 99%%: %d of %d"
          % ((ds <= 0.005).sum(), ds.size))
    # The edge-step continuum: both find it where one was added, and report the same height.
    de = np.array([abs(x["edge_step"] - y["edge_step"]) for x, y in partial])
    check(share(de <= 0.01) >= 0.97, "part of the grid: edge_step within 0.01 for >= 97%%: %d of %d (max %.4f)"
          % ((de <= 0.01).sum(), de.size, de.max()))
    given = [(i, x, y) for i, x, y in pairs if sent[i][2] > 0]
    for name, k in (("xasmapd", 1), ("the baseline", 2)):
        found = [t[k]["edge_step"] > 0 for t in given]
        check(share(found) >= 0.7, "%s finds the continuum in >= 70%% of the %d spectra given one: %d"
              % (name, len(given), sum(found)))
    err = np.array([x["edge_step"] - sent[i][2] for i, x, _ in given if x["edge_step"] > 0])
    check(err.size > 0 and abs(err.mean()) <= 0.05, "xasmapd's edge_step: mean error %.3f (at most 0.05) over %d"
          % (err.mean() if err.size else float("nan"), err.size))
    none = [x["edge_step"] for i, x, _ in pairs if sent[i][2] == 0]
    check(max(none) <= 0.07, "xasmapd's edge_step without a continuum: at most 0.07 (%d of %d nonzero, max %.3f)"
          % (sum(v > 0 for v in none), len(none), max(none)))
    if full:
        df = np.array([abs(x["params"]["tendq"] - y["params"]["tendq"]) for x, y in full])
        check(df.max() <= 0.5, "whole grid (local-linear against weighted mean): tendq within 0.5 eV for all %d "
              "(median %.3f, max %.3f eV)" % (df.size, np.median(df), df.max()))
    keys_d, keys_b = set(pairs[0][1]), set(pairs[0][2])
    check(keys_b == keys_d - {"embedding"}, "the baseline's estimate has xasmapd's keys but embedding (%s)"
          % sorted(keys_b ^ keys_d))


if __name__ == "__main__":
    try:
        code = main()
    finally:
        for p in PROCS:  # a failed run leaves no process behind
            if p.poll() is None:
                p.kill()
                p.wait()
    sys.exit(code)
