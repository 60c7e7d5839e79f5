#!/usr/bin/env bash
# Runs bench_scale over N, k, D, distance and landmark selection; prints one key=value line per
# run. Each configuration is run REPEAT times (default 3); docs/benchmarks.md reports medians.
#   bench/run_scale.sh [BUILD_DIR]     (BUILD_DIR holds a Release build with XASMAP_BUILD_BENCH=ON)
set -euo pipefail
build="${1:-build-bench}"
bin="$build/bench/bench_scale"
repeat="${REPEAT:-3}"
run() { for _ in $(seq "$repeat"); do "$bin" "$@"; done; }
run --n 600000 --k 256 --queries 20000
run --n 600000 --k 256 --queries 20000 --distance euclidean
run --n 600000 --k 256 --queries 20000 --selection random
run --n 100000 --k 256 --queries 20000
run --n 100000 --k 256 --queries 20000 --distance euclidean
run --n 10000 --k 256 --queries 20000
run --n 300000 --k 256 --queries 20000
run --n 100000 --k 64 --queries 20000
run --n 100000 --k 128 --queries 20000
run --n 100000 --k 256 --points 250 --queries 20000
