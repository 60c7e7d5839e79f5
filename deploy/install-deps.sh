#!/usr/bin/env bash
# Installs every package xasmap builds, tests and runs with, from Debian 12's archive only.
# Safe to run again: packages already present are skipped, and apt-get update runs at most once
# per invocation (and not at all when nothing is missing). Uses sudo when not run as root.
set -euo pipefail

packages=(
  # build tools
  g++ cmake ninja-build pkg-config
  # libraries
  libzmq3-dev cppzmq-dev libeigen3-dev libspdlog-dev libmsgpack-cxx-dev libyaml-cpp-dev
  libnanoflann-dev catch2 libbenchmark-dev
  # cross-language tests and the example client
  python3 python3-zmq python3-msgpack python3-numpy
  # the Python baseline service the throughput benchmark compares with (bench/baseline/)
  python3-sklearn
  # systemd-analyze, which checks deploy/xasmapd.service; rsvg-convert, for PNG copies of the figures
  systemd librsvg2-bin
  # readelf, which checks the installed binaries' hardening; groff, which checks the man pages
  binutils groff-base
  # the daemon's Prometheus endpoint and the dashboard's web server (header and shared library)
  libcpp-httplib-dev
  # the Prometheus server the monitoring test scrapes the daemon with (and promtool, which lints /metrics)
  prometheus
  # NeXus/HDF5 files (NXxas, NXstxm in; stack results out), and h5py, which the tests open them with
  libhdf5-dev python3-h5py
  # the dashboard's browser test: headless Chromium driven through its DevTools protocol
  chromium python3-websocket fonts-dejavu-core
  # clang and its libFuzzer runtime, for the protocol decoders' fuzz target (deploy/fuzz.sh)
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
