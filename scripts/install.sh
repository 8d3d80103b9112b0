#!/usr/bin/env bash
# Installs everything fqa needs on a fresh Debian 12 machine that has Node ≥ 20.17, then npm's
# dependencies (which builds every package). The README's quick start and .ci/run both run this.
# Idempotent: only missing Debian packages are installed; uses sudo when not root.
#   bash scripts/install.sh           scanning, scoring, FocusLiteNN training, tfjs for the deep networks
#   bash scripts/install.sh --train   also libtorch (Debian's libtorch-dev, ~900 MB) and the torch
#                                     training engine (@fqa/torch): the deep networks train 8-32x faster
#                                     than on tfjs (docs/experiments.md)
set -euo pipefail
cd "$(dirname "$0")/.."

train=""
for arg in "$@"; do
  case "$arg" in
    --train) train=yes ;;
    *) echo "install.sh: unknown option $arg (expected --train)" >&2; exit 2 ;;
  esac
done

# Build: cmake, a C++17 compiler, libtiff/libjpeg-turbo headers for the direct JPEG-tile reader.
# Run time: libopenslide0 for the formats the direct reader does not serve.
# Tests: openslide-tools (pixel oracle), chromium + fonts (HTML report tests, overview PNG text),
# redis-server (queue tests), clang + its runtime (libFuzzer/ASan/UBSan fuzz targets),
# python3-pydicom + python3-pil (the DICOM whole-slide oracle: writes series, decodes frames).
# Benchmarks: libturbojpeg0-dev (the scan benchmark's decode floor, ../shared/peers/decode_floor.c).
packages=(cmake g++ make python3 libopenslide0 libtiff-dev libjpeg62-turbo-dev
  openslide-tools chromium fonts-dejavu-core redis-server clang libclang-rt-14-dev
  python3-pydicom python3-pil libturbojpeg0-dev)

if ! command -v node >/dev/null 2>&1; then
  echo "install.sh: Node ≥ 20.17 is needed first (Debian 12's nodejs is 18: take it from nodejs.org)" >&2
  exit 1
fi
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install.sh: not a Debian/Ubuntu system; install the equivalents of: ${packages[*]}" >&2
else
  missing=()
  for pkg in "${packages[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq "${missing[@]}"
  fi
  # libtorch without its recommends (~350 packages instead of ~700; no CUDA in Debian 12's build).
  if [ -n "$train" ] && ! dpkg -s libtorch-dev >/dev/null 2>&1; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends libtorch-dev
  fi
fi
# With --train the torch engine must build (packages/torch-engine/scripts/build.mjs); without it,
# a missing libtorch is one line in the build's output.
if [ -n "$train" ]; then export FQA_REQUIRE_TORCH=1; fi

# onnxruntime-node's own install script (blocked by allowScripts anyway) would fetch CUDA binaries.
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
npm ci --no-audit --no-fund
