#!/usr/bin/env bash
# Configures and builds xasmap with CMake and Ninja. Used by demo.sh and test.sh.
#   deploy/build.sh [BUILD_DIR] [extra cmake -D options...]
# BUILD_DIR defaults to $XASMAP_BUILD_DIR or build/. Parallelism: $XASMAP_JOBS or 2.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-${XASMAP_BUILD_DIR:-$root/build}}"
shift || true
jobs="${XASMAP_JOBS:-2}"

cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${XASMAP_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
