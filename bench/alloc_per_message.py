#!/usr/bin/python3
"""Heap allocations per message in xasmapd's steady state.

Runs xasmapd (from a model file) under bench/malloc_count.so twice, feeding it N1 and then N2
single-spectrum messages (noisy library spectra on random grids, as bin f8) over loopback, and
reports (count(N2) - count(N1)) / (N2 - N1): what one more message costs, start-up and warm-up
excluded. That figure includes the decode (msgpack's zone, the energy, intensity and meta
arrays) and libzmq's own message buffers, which the protocol and the socket layer need.

    bench/alloc_per_message.py --xasmapd build/service/xasmapd --model M --library DIR --shim malloc_count.so
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "service"))
import daemon_test  # noqa: E402  (its Library, Feed and spectrum_message helpers)
import numpy as np  # noqa: E402
import zmq  # noqa: E402


def run(args, n, workdir):
    feed = daemon_test.Feed()
    out_port = daemon_test.free_port()
    config = os.path.join(workdir, "alloc-%d.yaml" % n)
    with open(config, "w") as f:
        f.write("library:\n  source: model\n  model_file: %s\n" % args.model +
                "input:\n  endpoint: %s\n" % feed.endpoint +
                "output:\n  endpoint: tcp://127.0.0.1:%d\n" % out_port +
                "control:\n  endpoint: ipc://%s/alloc-%d.ipc\n" % (workdir, n) +
                "logging:\n  level: warn\n")
    count_file = os.path.join(workdir, "count-%d" % n)
    env = dict(os.environ, LD_PRELOAD=args.shim, XASMAP_MALLOC_COUNT_FILE=count_file)
    proc = subprocess.Popen([args.xasmapd, "--config", config], env=env)
    sub = daemon_test.CTX.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"estimate")
    sub.connect("tcp://127.0.0.1:%d" % out_port)
    feed.wait_subscribers(timeout=60)
    time.sleep(0.3)
    rng = np.random.default_rng(1)
    lib = daemon_test.Library(args.library)
    bodies = []
    for i in range(64):
        entry = lib.entries[rng.integers(len(lib.entries))]
        e, y = lib.measured(rng, entry)
        bodies.append((e, y))
    for i in range(n):
        e, y = bodies[i % len(bodies)]
        feed.send(daemon_test.spectrum_message("a%06d" % i, e, y, "f8"))
    got = 0
    sub.setsockopt(zmq.RCVTIMEO, 20000)
    while got < n:
        sub.recv_multipart()
        got += 1
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    sub.close(linger=0)
    feed.sock.close(linger=0)
    with open(count_file) as f:
        return int(f.read())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xasmapd", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--library", required=True)
    p.add_argument("--shim", required=True, help="malloc_count.so built from bench/malloc_count.c")
    p.add_argument("--n1", type=int, default=1000)
    p.add_argument("--n2", type=int, default=5000)
    args = p.parse_args()
    for name in ("xasmapd", "model", "library", "shim"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    with tempfile.TemporaryDirectory() as workdir:
        c1 = run(args, args.n1, workdir)
        c2 = run(args, args.n2, workdir)
    print("allocations: %d with %d messages, %d with %d; %.2f per message" %
          (c1, args.n1, c2, args.n2, (c2 - c1) / (args.n2 - args.n1)))


if __name__ == "__main__":
    main()
