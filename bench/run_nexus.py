#!/usr/bin/python3
"""NeXus/HDF5 stacks at beamline size (issue #16; docs/benchmarks.md, "NeXus stacks").

Writes a 256 x 256 x 200 NXstxm stack (float32) with h5py in both layouts the reader takes
([energy, y, x] as NXstxm has it, and [y, x, energy]), then times, --repeat times each and in
turns: h5py reading the dataset into memory (the baseline: the file system and HDF5 alone), and
`xasmap feed STACK.h5 --raw f4` from start to exit, sending the stack to a running xasmapd (read,
reorder to pixel-major, encode, send). Prints the medians and the ratios.

    bench/run_nexus.py [--size 256x256x200] [--repeat 5]

Bounded: one stack per run; loopback only; it stops the daemon it started.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import zmq

import run_baseline


def write_stack(path, ny, nx, ne, layout):
    energy = np.linspace(636.0, 659.0, ne)
    rng = np.random.default_rng(3)
    peak = np.exp(-0.5 * ((energy - 641.0) / 0.6) ** 2) + 0.4 * np.exp(-0.5 * ((energy - 652.0) / 0.8) ** 2)
    data = (peak[None, None, :] * rng.uniform(0.8, 1.2, (ny, nx, 1)) + rng.normal(0, 0.02, (ny, nx, ne))).astype("f4")
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry1")
        entry.attrs["NX_class"] = "NXentry"
        d = entry.create_group("counter0")
        d.attrs["NX_class"] = "NXdata"
        d.attrs["signal"] = "data"
        if layout == "energy,y,x":
            d["data"] = np.ascontiguousarray(np.transpose(data, (2, 0, 1)))
            d.attrs["axes"] = ["energy", "sample_y", "sample_x"]
        else:
            d["data"] = data
            d.attrs["axes"] = ["sample_y", "sample_x", "energy"]
        d["energy"] = energy
        d["energy"].attrs["units"] = "eV"
        d["sample_y"] = np.arange(ny) * 0.05
        d["sample_x"] = np.arange(nx) * 0.05


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(run_baseline.ROOT, "build"))
    parser.add_argument("--library", default=os.path.join(run_baseline.ROOT, "build", "tests", "daemon", "library"))
    parser.add_argument("--size", default="256x256x200")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    ny, nx, ne = (int(v) for v in args.size.split("x"))
    work = tempfile.mkdtemp(prefix="xasmap-nexus-bench-")
    files = {}
    for layout in ("energy,y,x", "y,x,energy"):
        files[layout] = os.path.join(work, "stack_%s.h5" % layout.replace(",", "_"))
        write_stack(files[layout], ny, nx, ne, layout)
    ctx = zmq.Context.instance()
    service = run_baseline.Service("xasmapd", args, work)
    results = {}
    try:
        service.wait_ready(ctx)
        for r in range(args.repeat):
            for layout, path in files.items():
                t0 = time.perf_counter()
                with h5py.File(path, "r") as f:
                    f["entry1/counter0/data"][()]
                results.setdefault(("h5py read", layout), []).append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                run = subprocess.run([os.path.join(args.build, "service", "xasmap"), "feed", "--input", service.input,
                                      "--config", service.config, path, "--raw", "f4", "--id-prefix", "r%d-" % r],
                                     capture_output=True, text=True, timeout=120)
                elapsed = time.perf_counter() - t0
                if run.returncode != 0:
                    raise RuntimeError("xasmap feed failed: %s" % run.stderr)
                results.setdefault(("xasmap feed", layout), []).append(elapsed)
        status = service.status(ctx)
    finally:
        service.stop()
    print("%s stack (%.0f MB of float32), median of %d:" % (args.size, ny * nx * ne * 4 / 1e6, args.repeat))
    for layout in files:
        base = statistics.median(results[("h5py read", layout)])
        feed = statistics.median(results[("xasmap feed", layout)])
        print("  %-11s h5py read %.3f s; xasmap feed (read, reorder, encode, send) %.3f s = %.1f x the read" %
              (layout, base, feed, feed / base))
    print("  the daemon received %d stacks" % status.get("received", 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
