#!/usr/bin/env bash
# The README's first command: runs xasmap's main job on the embedded defaults.
# In this version xasmapd validates its configuration; the live streaming demo arrives with the
# daemon. Installs what is missing, builds, and exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

deploy/install-deps.sh
deploy/build.sh "$root/build"

echo
"$root/build/service/xasmap" --version
"$root/build/service/xasmapd" --check-config "$root/deploy/xasmapd.yaml"
