#!/usr/bin/env bash
# The README's first command: runs xasmap's main job on the embedded defaults.
# Until the streaming daemon lands, the main job runs offline: validate the default config, simulate
# and embed the default Mn library (the XRM2018 seed study's 78 spectra), and estimate the charge
# and 10Dq of the measured Mn L2,3 spectra shipped in tests/data, the poster's MnO first.
# Installs what is missing, builds, writes its model to out/, and exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

deploy/install-deps.sh
deploy/build.sh "$root/build"
tool="$root/build/service/xasmap"
mkdir -p "$root/out"

echo
"$tool" --version
"$root/build/service/xasmapd" --check-config "$root/deploy/xasmapd.yaml"
echo
"$tool" embed --config "$root/deploy/xasmapd.yaml" --out "$root/out/mn_default.xasm"
echo
data="$root/tests/data"
"$tool" estimate --model "$root/out/mn_default.xasm" \
  "$data/xrm2018/poster_fig2_MnO_measured.csv" \
  "$data"/experimental/xinhuolin_MnEdgeNet/*.csv
echo
echo "The XRM2018 poster's expert placed its MnO at Mn2+ with 10Dq = 0.9 eV (docs/validation.md)."
