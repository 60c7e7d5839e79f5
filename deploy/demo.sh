#!/usr/bin/env bash
# The README's first command: the whole loop, live, on the embedded defaults.
#
#   deploy/demo.sh [--seconds N] [--short] [--out DIR] [--build-dir DIR] [--no-install] [--no-build]
#
# Installs what is missing, builds, and starts xasmapd on the default config (the simulated Mn
# library of the XRM2018 seed study). Then it feeds the daemon the poster's measured MnO, the other
# measured Mn spectra, a few hundred noisy library spectra and one 64x64 STXM stack; shows the live
# terminal dashboard (xasmap watch) for --seconds (default 20) while the web dashboard (xasmap
# dashboard) serves its page on loopback (its address is printed); draws the map, the spectrum
# comparison and the stack's parameter maps (SVG, and NeXus for the stack) into out/, with a
# screenshot of the web dashboard; prints a summary; stops everything and exits 0.
# --short is the quick variant ctest runs (5 s, fewer spectra, a 32x32 stack, no screenshot).
# Ports: four free loopback ports are picked at random, so a second run, or one next to another
# daemon, works.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
caller="$(pwd)"

seconds=20
short=0
out="$root/out"
build="$root/build"
install=1
do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --short) short=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (try --help)" >&2; exit 64 ;;
  esac
done
# Paths given relative to where the demo was started from; then work from the repository.
case "$out" in /*) ;; *) out="$caller/$out" ;; esac
case "$build" in /*) ;; *) build="$caller/$build" ;; esac
cd "$root"
if [ "$short" -eq 1 ]; then
  seconds=5
  library_count=60
  stack=32x32
else
  library_count=400
  stack=64x64
fi
case "$seconds" in ''|*[!0-9]*) echo "demo.sh: --seconds needs a whole number" >&2; exit 64 ;; esac
# The noisy library spectra are spread over most of the dashboard's time.
library_rate=$(( (library_count + 1) / (seconds > 7 ? seconds - 6 : 1) + 1 ))

[ "$install" -eq 1 ] && deploy/install-deps.sh
# Only the two programs the demo runs (the tests and benchmarks are deploy/test.sh's).
[ "$do_build" -eq 1 ] && XASMAP_TARGETS="xasmap xasmapd" deploy/build.sh "$build"
bin="$build/service"
python=/usr/bin/python3
mkdir -p "$out"
work="$(mktemp -d)"

# Four free loopback ports (input, output, control, the web dashboard).
read -r p_in p_out p_ctl p_web < <("$python" -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()')
input="tcp://127.0.0.1:$p_in"
output="tcp://127.0.0.1:$p_out"
control="tcp://127.0.0.1:$p_ctl"

pids=()
daemon_pid=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill -TERM "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

data="$root/tests/data"
measured=("$data/xrm2018/poster_fig2_MnO_measured.csv" "$data"/experimental/xinhuolin_MnEdgeNet/*.csv)

# The default library is simulated once, to files: the daemon reads them (the default config with
# library.source: files), the feed takes its noisy copies from them and the figures compare with them.
echo "== the default library (deploy/xasmapd.yaml), simulated once"
"$bin/xasmap" library --config "$root/deploy/xasmapd.yaml" --out "$out/library" > /dev/null
# The measured spectra are on the energy scale the library's Mn3+ and Mn4+ energies were calibrated
# on (docs/validation.md), so the session offset is known: 0, not searched (search_ev: 0). Searched,
# SrMnO3 and MnO2, which the crystal-field library does not describe, read as Mn3+ 1 eV up.
# Mixed valence on (estimation.mixture, off by default for its cost): the stack's strip below the
# disc grades from Mn2+ to Mn4+ by atom fraction, and its valence map shows it.
sed -e 's|^  source: simulate|  source: files|' -e "s|^  directory: \"\"|  directory: \"$out/library\"|" \
  -e 's|^  search_ev: 1.0|  search_ev: 0|' -e 's|^  mixture: off|  mixture: auto|' \
  "$root/deploy/xasmapd.yaml" > "$work/xasmapd.yaml"
grep -q '^  source: files' "$work/xasmapd.yaml" || { echo "demo.sh: could not point the config at the library" >&2; exit 1; }
grep -q '^  search_ev: 0$' "$work/xasmapd.yaml" || { echo "demo.sh: could not set calibration.search_ev" >&2; exit 1; }
grep -q '^  mixture: auto$' "$work/xasmapd.yaml" || { echo "demo.sh: could not set estimation.mixture" >&2; exit 1; }

echo "== xasmapd on the default config (input $input, output $output, control $control)"
"$bin/xasmapd" --config "$work/xasmapd.yaml" --input "$input" --output "$output" --control "$control" \
  2> "$out/xasmapd.log" &
daemon_pid=$!
"$bin/xasmap" status --control "$control" --wait 120 > /dev/null || {
  echo "demo.sh: xasmapd did not become ready; its log:" >&2; cat "$out/xasmapd.log" >&2; exit 1; }
sed -n '/ready in/,/control /p' "$out/xasmapd.log" | sed 's/^\[[^]]*\] \[[^]]*\] /  /'

# The web dashboard (docs/dashboard.md): open its address in a browser while the demo runs.
"$bin/xasmap" dashboard --output "$output" --control "$control" --listen "127.0.0.1:$p_web" --input "$input" \
  --library "$out/library" > "$work/dashboard.log" 2>&1 &
dashboard_pid=$!
pids+=("$dashboard_pid")
dashboard="http://127.0.0.1:$p_web/"
echo "== the web dashboard: open $dashboard in a browser (it runs until the demo ends)"

# Collect the results for the figures and the summary, for as long as the feeds run.
# It runs until the feeds are done (stopped with SIGINT below); 600 s is only a backstop.
"$bin/xasmap" map --control "$control" --output "$output" --live 600 --library "$out/library" \
  --out-dir "$out" --summary "${measured[@]}" > "$work/summary.txt" 2> "$work/map.log" &
map_pid=$!
pids+=("$map_pid")
sleep 1

# The acquisition side: measured spectra one by one, noisy library spectra, then a stack.
(
  "$bin/xasmap" feed --input "$input" --rate 4 "${measured[@]}"
  "$bin/xasmap" feed --input "$input" --library "$out/library" --count "$library_count" --rate "$library_rate" \
    --id-prefix demo-
  "$bin/xasmap" feed --input "$input" --library "$out/library" --stack "$stack"
) 2> "$work/feed.log" &
feed_pid=$!
pids+=("$feed_pid")

echo "== xasmap watch for $seconds s"
"$bin/xasmap" watch --output "$output" --seconds "$seconds" || true

wait "$feed_pid" || { echo "demo.sh: the feed failed:" >&2; cat "$work/feed.log" >&2; exit 1; }
sleep 2  # the last results (the stack's map) reach the collector
# A picture of the dashboard once it shows the stack, with Debian's headless Chromium
# (install-deps.sh) driven by deploy/dashboard_screenshot.py; not in the short run ctest makes
# (ctest daemon_dashboard drives the page in Chromium itself).
screenshot=""
if [ "$short" -eq 0 ] && command -v chromium > /dev/null; then
  if "$python" "$root/deploy/dashboard_screenshot.py" "$dashboard" "$out/dashboard.png" --wait-maps 1 \
    > "$work/chromium.log" 2>&1; then
    screenshot="$out/dashboard.png"
  else
    echo "demo.sh: the dashboard's screenshot:" >&2; tail -n 5 "$work/chromium.log" >&2
  fi
fi
kill -INT "$map_pid"
wait "$map_pid" || { echo "demo.sh: xasmap map failed:" >&2; cat "$work/map.log" >&2; exit 1; }
# The web dashboard ends with the demo (SIGTERM: it stops serving and exits 0).
kill -TERM "$dashboard_pid"
wait "$dashboard_pid" || { echo "demo.sh: xasmap dashboard exited with an error:" >&2; cat "$work/dashboard.log" >&2; exit 1; }
pids=()

echo "== stopping xasmapd (SIGTERM)"
kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=""
tail -n 1 "$out/xasmapd.log" | sed 's/^\[[^]]*\] \[[^]]*\] /  /'
if [ "$status" -ne 0 ]; then
  echo "demo.sh: xasmapd exited with status $status" >&2
  exit 1
fi

echo
echo "== summary"
cat "$work/summary.txt"
echo "The XRM2018 poster's expert placed its MnO at Mn2+ with 10Dq = 0.9 eV (docs/validation.md)."
echo
echo "== figures"
sed -n 's/^xasmap map: wrote /  /p' "$work/map.log"
if [ -n "$screenshot" ]; then echo "  $screenshot (the web dashboard at the end of the run)"; fi
