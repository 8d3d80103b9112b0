// fqa_cuda_check: the CUDA sweep checked and timed without Node (llm.c style).
//
// 1. Correctness: every CUDA path (FocusLiteNN k = 1, 2, 10 at 64 and 235 px, dense and with the
//    shared conv map; EONSS; a skip mask) on seeded random models and regions, against the CPU scalar
//    reference. Tolerance, written down: |gpu - cpu| <= 1e-3 + 1e-4 * |cpu| (float sums in a
//    different order vs a double reference).
// 2. Timing: an 8192 x 8192 region, 2 warm-up sweeps then 10 timed, median of the CUDA event time
//    of the kernels (and of the whole call with upload/download): MP/s, patches/s, GFLOP/s against
//    the device's FP32 and memory peaks; then the paper's Table 4 projection (hours per 300 slides
//    of 25k x 25k, patches at stride = patch size) beside the paper's GTX 1650 Ti numbers.
//
// Exit code 0 when every check passes, 1 on a failed check, 2 without a usable device.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu.h"
#include "kernels.h"
#include "sweep.h"
#include "test_models.h"

using namespace fqa;

namespace {

int failures = 0;

struct Config {
  std::string name;
  int kernels;  // 0 = EONSS
  int patch;
  int stride;
};

Model makeModel(const Config& c, std::mt19937& rng) {
  if (c.kernels == 0) return randomEonss(rng);
  return c.patch == 235 ? randomFocusLite(rng, c.kernels, 7, 5, 1, 235, true) : randomFocusLite(rng, c.kernels, 7, 1, 0, 64, true);
}

PatchGrid gridFor(const Image& im, int patch, int stride, const std::vector<uint8_t>* skip) {
  PatchGrid g;
  g.patchWidth = g.patchHeight = patch;
  g.stride = stride;
  g.columns = (im.w - patch) / stride + 1;
  g.rows = (im.h - patch) / stride + 1;
  g.skip = skip ? skip->data() : nullptr;
  return g;
}

void checkConfig(const Config& c, bool withSkip) {
  std::mt19937 rng(1234 + c.kernels * 31 + c.patch + c.stride);
  const Model m = makeModel(c, rng);
  // Big enough for several rows and columns of patches, small enough for the scalar reference.
  const int64_t side = c.patch == 64 ? 512 : 705;
  const Image im = randomImage(rng, side + 13, side);
  PatchGrid g = gridFor(im, c.patch, c.stride, nullptr);
  std::vector<uint8_t> skip;
  if (withSkip) {
    skip.assign(size_t(g.rows * g.columns), 0);
    for (size_t i = 0; i < skip.size(); i += 3) skip[i] = 1;
    g.skip = skip.data();
  }
  std::vector<float> cpu(size_t(g.rows * g.columns)), gpu(cpu.size());
  SweepOptions ref;
  ref.kernel = Kernel::Reference;
  sweep(m, im.region(), g, ref, cpu.data());
  CudaSweepTiming t{};
  try {
    t = sweepCuda(m, im.region(), g, gpu.data());
  } catch (const std::exception& e) {
    std::printf("FAIL %-34s %s\n", c.name.c_str(), e.what());
    ++failures;
    return;
  }
  double maxAbs = 0, worstExcess = 0;
  int nanMismatch = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (std::isnan(cpu[i]) || std::isnan(gpu[i])) {
      nanMismatch += std::isnan(cpu[i]) != std::isnan(gpu[i]);
      continue;
    }
    const double err = std::fabs(double(gpu[i]) - cpu[i]);
    maxAbs = std::max(maxAbs, err);
    worstExcess = std::max(worstExcess, err - (1e-3 + 1e-4 * std::fabs(cpu[i])));
  }
  const bool ok = worstExcess <= 0 && nanMismatch == 0;
  failures += !ok;
  std::printf("%s %-34s %5lld patches  max |gpu-cpu| %.3g  shared %s%s\n", ok ? "ok  " : "FAIL", (c.name + (withSkip ? " +skip" : "")).c_str(),
              (long long)cpu.size(), maxAbs, t.sharedConvolution ? "yes" : "no", nanMismatch ? "  NaN mismatch" : "");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Timing {
  double patchesPerSecond;
};

Timing timeConfig(const Config& c, const Image& im, const GpuProbe& probe) {
  std::mt19937 rng(99 + c.kernels);
  const Model m = makeModel(c, rng);
  const PatchGrid g = gridFor(im, c.patch, c.stride, nullptr);
  std::vector<float> scores(size_t(g.rows * g.columns));
  for (int i = 0; i < 2; ++i) sweepCuda(m, im.region(), g, scores.data());
  std::vector<double> kernelMs, wallMs;
  for (int i = 0; i < 10; ++i) {
    const CudaSweepTiming t = sweepCuda(m, im.region(), g, scores.data());
    kernelMs.push_back(t.kernelMs);
    wallMs.push_back(t.wallMs);
  }
  const double k = median(kernelMs), w = median(wallMs);
  const double patches = double(scores.size());
  const double mp = double(im.w) * im.h / 1e6;
  const double gflops = patches * m.flopsPerPatch(c.patch, c.patch) / (k * 1e-3) / 1e9;
  // Bytes the kernels must at least read: the u8 region once.
  const double gbps = double(im.w) * im.h * 3 / (k * 1e-3) / 1e9;
  std::printf("%-34s %8.3f ms %8.3f ms %9.0f %12.0f %9.0f %6.1f%% %8.0f %6.1f%%\n", c.name.c_str(), k, w, mp / (k * 1e-3), patches / (k * 1e-3), gflops,
              100 * gflops / probe.peakFp32Gflops(), gbps, 100 * gbps / probe.peakMemoryGBps());
  return {patches / (k * 1e-3)};
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const GpuProbe probe = probeGpu();
  if (probe.deviceCount == 0) {
    std::printf("no usable CUDA device: %s\n", probe.error.c_str());
    return 2;
  }
  std::printf("device: %s (sm_%d%d, %d SMs, %.0f MHz; memory %.0f MHz x %d bit)\n", probe.deviceName.c_str(), probe.computeMajor, probe.computeMinor,
              probe.multiprocessors, probe.clockKHz / 1e3, probe.memoryClockKHz / 1e3, probe.memoryBusBits);
  std::printf("peaks: FP32 %.0f GFLOP/s, memory %.0f GB/s\n\n", probe.peakFp32Gflops(), probe.peakMemoryGBps());

  const std::vector<Config> configs = {
      {"FocusLiteNN-1  64 px stride 64", 1, 64, 64},      {"FocusLiteNN-1  64 px stride 32 shared", 1, 64, 32},
      {"FocusLiteNN-2  64 px stride 64", 2, 64, 64},      {"FocusLiteNN-10 64 px stride 64", 10, 64, 64},
      {"FocusLiteNN-10 64 px stride 32 shared", 10, 64, 32}, {"FocusLiteNN-1  235 px stride 235", 1, 235, 235},
      {"FocusLiteNN-1  235 px stride 115 shared", 1, 235, 115}, {"FocusLiteNN-2  235 px stride 235", 2, 235, 235},
      {"FocusLiteNN-10 235 px stride 235", 10, 235, 235}, {"FocusLiteNN-10 235 px stride 128", 10, 235, 128},
      {"FocusLiteNN-10 235 px stride 115 shared", 10, 235, 115}, {"EONSS 235 px stride 235", 0, 235, 235},
      {"EONSS 235 px stride 128", 0, 235, 128},
  };
  std::printf("correctness vs the CPU scalar reference (tolerance 1e-3 + 1e-4 |cpu|):\n");
  for (const Config& c : configs) checkConfig(c, false);
  checkConfig(configs[4], true);
  checkConfig(configs[10], true);
  checkConfig(configs[11], true);

  // A region the GPU does not have: the error must come back as an exception.
  {
    std::mt19937 rng(5);
    const Model m = randomFocusLite(rng, 1, 7, 5, 1, 235, false);
    const Image im = randomImage(rng, 300, 300);
    PatchGrid g = gridFor(im, 235, 235, nullptr);
    Region bad = im.region();
    bad.byteLength = 10;  // shorter than the rows say
    std::vector<float> s(1);
    bool threw = false;
    try {
      sweepCuda(m, bad, g, s.data());
    } catch (const std::exception&) {
      threw = true;
    }
    std::printf("%s a region shorter than its rows is an exception\n", threw ? "ok  " : "FAIL");
    failures += !threw;
  }
  if (quick) {
    std::printf("\n%s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
  }

  std::printf("\ntiming: 8192 x 8192 region, median of 10 after 2 warm-ups (kernel = CUDA events around the kernels;\n"
              "call = the whole sweepCuda with row packing, upload and download; GFLOP/s counts each patch as if alone)\n");
  std::printf("%-34s %11s %11s %9s %12s %9s %7s %8s %7s\n", "config", "kernel", "call", "MP/s", "patches/s", "GFLOP/s", "%FP32", "GB/s", "%mem");
  std::mt19937 rng(7);
  const Image big = randomImage(rng, 8192, 8192);
  std::vector<double> dense(configs.size(), 0);
  for (size_t i = 0; i < configs.size(); ++i) dense[i] = timeConfig(configs[i], big, probe).patchesPerSecond;

  // Table 4: 300 slides of 25,000 x 25,000 px, patches at stride = patch size (as the paper).
  struct Row { const char* name; size_t config64, config235; double paper64, paper235; };
  const Row rows[] = {
      {"FocusLiteNN-1", 0, 5, 3.12, 0.18}, {"FocusLiteNN-2", 2, 7, 3.90, 0.21}, {"FocusLiteNN-10", 3, 8, 4.08, 0.30}, {"EONSS", size_t(-1), 11, 13.53, 1.15}};
  std::printf("\nTable 4 projection: hours for 300 slides of 25k x 25k on this GPU (kernel time) vs the paper's GTX 1650 Ti\n");
  std::printf("%-16s %12s %12s %12s %12s\n", "model", "64 px here", "64 px paper", "235 px here", "235 px paper");
  for (const Row& r : rows) {
    auto hours = [](double patchesPerSecond, int patch) { return 300.0 * std::pow(25000.0 / patch, 2) / patchesPerSecond / 3600.0; };
    char here64[32] = "-";
    if (r.config64 != size_t(-1)) std::snprintf(here64, sizeof here64, "%.4f", hours(dense[r.config64], 64));
    std::printf("%-16s %12s %12.2f %12.4f %12.2f\n", r.name, here64, r.paper64, hours(dense[r.config235], 235), r.paper235);
  }
  std::printf("\n%s\n", failures ? "FAILED" : "all checks passed");
  return failures ? 1 : 0;
}
