#!/usr/bin/env bash
# The README's test command: installs the dependencies, builds, runs the unit tests once under
# AddressSanitizer + UndefinedBehaviorSanitizer, fuzzes the protocol decoders for 30 s (libFuzzer,
# deploy/fuzz.sh), builds the daemon once more under ThreadSanitizer,
# then runs the whole suite (with the daemon scenarios against both daemons) through ctest and ends
# with ctest's summary. Exits non-zero on any failure. Needs no state from an earlier run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${XASMAP_JOBS:-2}"

echo "== dependencies"
deploy/install-deps.sh

# The sanitizer build compiles only the unit-test executables: the numerics (core/) at -O1 (the
# optimisation AddressSanitizer recommends; it halves the compile time of the Eigen-heavy files
# against -O2), the service and the tests at -O0 (CMakeLists.txt; a third less compile time there).
echo "== sanitizer build (ASan + UBSan) and unit tests"
unit_executables="test_core test_protocol test_config test_service"
XASMAP_TARGETS="$unit_executables fuzz_corpus" deploy/build.sh "$root/build-sanitize" -DXASMAP_SANITIZE=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
(
  cd "$root/build-sanitize"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest -L unit -R "^(${unit_executables// /|}):|^fuzz_corpus$" --output-on-failure -j "$jobs"
)

echo "== libFuzzer on the protocol decoders (bounded: \$XASMAP_FUZZ_SECONDS, default 30 s)"
deploy/fuzz.sh

echo "== ThreadSanitizer build of the daemon (its scenarios run in the suite below)"
XASMAP_TARGETS=xasmapd deploy/build.sh "$root/build-tsan" -DXASMAP_BUILD_TESTS=OFF \
  -DCMAKE_CXX_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread

echo "== release build (with the benchmarks, so that they keep compiling) and the whole suite"
deploy/build.sh "$root/build" -DXASMAP_BUILD_BENCH=ON -DXASMAP_TSAN_XASMAPD="$root/build-tsan/service/xasmapd"
cd "$root/build"
ctest --output-on-failure -j "$jobs"
