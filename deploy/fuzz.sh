#!/usr/bin/env bash
# Fuzzes every protocol decoder that faces the network (tests/fuzz/fuzz_decoders.cpp) with
# libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer, for a bounded time:
#   deploy/fuzz.sh [SECONDS]        (default $XASMAP_FUZZ_SECONDS or 30; deploy/test.sh runs it)
# Builds with Debian's clang-14 into build-fuzz/ (no CMake: the protocol sources and the target),
# starts from the committed seed corpus and the regressions, with the schema's dictionary, and
# keeps what it learns in build-fuzz/corpus (the committed corpus is not touched). Exits non-zero
# when the fuzzer finds a crash, a leak, a sanitizer report or an out-of-memory input; the input is
# left in build-fuzz/ (crash-*, oom-*, ...): add it to tests/fuzz/regressions/ with the fix.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-${XASMAP_FUZZ_SECONDS:-30}}"
out="$root/build-fuzz"
mkdir -p "$out/corpus"
cxx="${XASMAP_FUZZ_CXX:-clang++-14}"
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found (deploy/install-deps.sh installs clang-14)" >&2; exit 1; }

sources=(protocol/src/messages.cpp protocol/src/spectrum_message.cpp protocol/src/results.cpp protocol/src/control.cpp core/src/error.cpp
         tests/fuzz/fuzz_decoders.cpp)
binary="$out/fuzz_decoders"
stamp="$out/fuzz_decoders.sources"
# Rebuilt when any source or header it includes changed (the headers are few: compare them all).
if [ ! -x "$binary" ] || [ -n "$(find "$root/protocol" "$root/core/include" "$root/tests/fuzz" -newer "$binary" -name '*.[ch]pp' -print -quit)" ]; then
  echo "fuzz: building $binary with $cxx"
  objects=()
  pids=()
  for s in "${sources[@]}"; do
    o="$out/$(basename "${s%.cpp}").o"
    "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
      -DMSGPACK_NO_BOOST -I"$root/protocol/include" -I"$root/core/include" -I/usr/include/eigen3 \
      -c "$root/$s" -o "$o" &
    pids+=($!)
    objects+=("$o")
  done
  for p in "${pids[@]}"; do wait "$p"; done
  "$cxx" -fsanitize=fuzzer,address,undefined "${objects[@]}" -o "$binary"
  printf '%s\n' "${sources[@]}" > "$stamp"
fi

echo "fuzz: $seconds s on the protocol decoders"
cd "$out"
rm -f crash-* leak-* oom-* timeout-*
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$binary" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 \
  -dict="$root/tests/fuzz/decoders.dict" "$out/corpus" "$root/tests/fuzz/corpus" "$root/tests/fuzz/regressions" \
  2> "$out/fuzz.log" || { tail -40 "$out/fuzz.log" >&2; echo "fuzz: FAILED (inputs in $out)" >&2; exit 1; }
grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$out/fuzz.log" | sed 's/^/fuzz: /'
echo "fuzz: no finding"
