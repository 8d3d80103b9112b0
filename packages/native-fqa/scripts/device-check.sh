#!/usr/bin/env bash
# The GPU check in one command (see ../shared/docs/gpu.md).
#
#   here:               bash packages/native-fqa/scripts/device-check.sh build
#                       builds the standalone fqa_cuda_check (no Node; static cudart; sm_80/sm_90 + PTX)
#                       into .device/ at the repository root (git-ignored)
#   on the device:      run(command="bash packages/native-fqa/scripts/device-check.sh run", carry=[".device"], timeout_s=300)
#                       prints the device, every CUDA path's max error against the CPU reference,
#                       the timings and the Table 4 projection; the log is written to $OUT/cuda-check.txt
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
case "${1:-}" in
  build)
    build="$root/packages/native-fqa/build-device"
    cmake -S "$root/packages/native-fqa" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFQA_CUDA=ON -DFQA_WERROR=ON >/dev/null
    cmake --build "$build" -j"$(nproc)" --target fqa_cuda_check fqa_core_test
    mkdir -p "$root/.device"
    cp "$build/fqa_cuda_check" "$build/fqa_core_test" "$root/.device/"
    echo "built $root/.device/fqa_cuda_check ($(du -h "$root/.device/fqa_cuda_check" | cut -f1)); now run it on the device (see the top of this script)"
    ;;
  run)
    out="${OUT:-$root/.device}"
    mkdir -p "$out"
    { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
      echo
      "$root/.device/fqa_core_test" | tail -1
      "$root/.device/fqa_cuda_check"; } 2>&1 | tee "$out/cuda-check.txt"
    exit "${PIPESTATUS[0]}"
    ;;
  *)
    echo "usage: $0 build | run" >&2
    exit 2
    ;;
esac
