#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cpp) with clang, ASan and UBSan in build-fuzz/, and runs
# each for a bounded time (default 60 s; FQA_FUZZ_SECONDS) from its seed corpus in fuzz/corpus/.
# New inputs go to build-fuzz/corpus (the repo's corpus stays small and reviewed); a crash, leak,
# sanitizer report or an input over 2 GiB of memory stops the run with its input saved under
# build-fuzz/crashes/ and a non-zero exit: turn it into a regression test and a seed.
# The tile-reader target prints how many fused sweeps of its 2-kernel stride-1 model completed, how
# many tiles they decoded, and how many tiles it decoded on scaled levels (1/2, 1/4, 1/8): none of
# any fails the run (a path it exists for never ran).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FQA_FUZZ_SECONDS:-60}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G "Unix Makefiles" -DFQA_FUZZ=ON -DFQA_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets="tiff_jpeg_reader model binding_args"
cmake --build build-fuzz -j"$(nproc)" --target $(printf 'fqa_fuzz_%s ' $targets)
mkdir -p build-fuzz/crashes
for target in $targets; do
  mkdir -p "build-fuzz/corpus/$target"
  echo "fuzz: $target for ${seconds} s"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/fqa_fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$target-" "build-fuzz/corpus/$target" "fuzz/corpus/$target" \
    2>&1 | tee "build-fuzz/$target.log"
done
fused="$(grep -o 'fused 2-kernel stride-1 sweeps completed: [0-9]*, tiles decoded by them: [0-9]*' build-fuzz/tiff_jpeg_reader.log || true)"
echo "fuzz: ${fused:-no count printed}"
sweeps="$(sed -n 's/.*sweeps completed: \([0-9]*\),.*/\1/p' <<<"$fused")"
tiles="$(sed -n 's/.*tiles decoded by them: \([0-9]*\)/\1/p' <<<"$fused")"
if [ "${sweeps:-0}" -eq 0 ] || [ "${tiles:-0}" -eq 0 ]; then
  echo "fuzz: the tile-reader target never completed a fused 2-kernel stride-1 sweep that decoded tiles" >&2
  exit 1
fi
scaled="$(sed -n 's/.*tiles decoded on scaled levels: \([0-9]*\).*/\1/p' build-fuzz/tiff_jpeg_reader.log | tail -1)"
echo "fuzz: tiles decoded on scaled levels: ${scaled:-none printed}"
if [ "${scaled:-0}" -eq 0 ]; then
  echo "fuzz: the tile-reader target never decoded a tile on a scaled level (1/2, 1/4, 1/8)" >&2
  exit 1
fi
