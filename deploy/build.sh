#!/usr/bin/env bash
# Configures and builds xasmap with CMake and Ninja. Used by demo.sh and test.sh.
#   deploy/build.sh [BUILD_DIR] [extra cmake -D options...]
# BUILD_DIR defaults to $XASMAP_BUILD_DIR or build/. Parallelism: $XASMAP_JOBS or 2.
# $XASMAP_TARGETS (space-separated) builds only those targets and what they need; all by default.
# The default build type, RelWithDebInfo, is -O2 with line tables only (-g1): stack traces and
# profiles keep their file:line, and compiling costs about a third less than with full -g. Pass
# -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g -DNDEBUG" for debugger-grade information.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-${XASMAP_BUILD_DIR:-$root/build}}"
shift || true
jobs="${XASMAP_JOBS:-2}"
targets=()
for t in ${XASMAP_TARGETS:-}; do targets+=(--target "$t"); done

cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${XASMAP_BUILD_TYPE:-RelWithDebInfo}" \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
