// The CUDA sweep's arithmetic on the CPU: the __host__ __device__ element functions of
// src/cuda/sweep_kernels.cuh (the very code the kernels run) driven by plain loops in the same order
// as sweep.cu drives them on the GPU (region conv map, per-patch outputs with the interior/border
// split, min and fc; EONSS gather, conv, GDN, pool), against the scalar reference. Needs nvcc to
// build, no GPU to run; what it cannot check (launch geometry, shuffles, barriers, copies) is
// fqa_cuda_check's job on a GPU. Tolerance: |emulated - reference| <= 2e-4 + 1e-5 |reference|.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"
#include "sweep.h"
#include "sweep_kernels.cuh"
#include "test_models.h"

using namespace fqa;
using cudasweep::FocusArgs;
using cudasweep::kChunk;

static int passed = 0, failed = 0, sharedRuns = 0;

static void report(bool ok, const std::string& what, double err) {
  if (ok) ++passed;
  else ++failed;
  std::printf("%s %-44s max err %.3g\n", ok ? "ok  " : "FAIL", what.c_str(), err);
}

// The compacted region and the normalization table, prepared as sweepCuda prepares them.
struct Prepared {
  cudasweep::RegionExtent extent;
  std::vector<uint8_t> pixels;
  std::vector<float> table;
};

static Prepared prepare(const Model& m, const Image& im, const PatchGrid& g) {
  Prepared p{cudasweep::usedExtent(g), {}, std::vector<float>(768)};
  p.pixels.resize(size_t(p.extent.width * p.extent.height * 3));
  cudasweep::compactRegion(im.region(), p.extent, p.pixels.data());
  cudasweep::normalizeTable(m, p.table.data());
  return p;
}

static std::vector<float> focusEmulated(const Model& m, const Image& im, const PatchGrid& g, bool share) {
  const Prepared region = prepare(m, im, g);
  const std::vector<float>& tab = region.table;
  FocusArgs a = cudasweep::focusArgs(m, g, region.extent, share);
  a.pixels = region.pixels.data();
  a.table = tab.data();
  a.weight = m.convWeight.data();
  a.bias = m.convBias.data();
  a.fc = m.kernels > 1 ? m.fcWeight.data() : nullptr;
  std::vector<float> map;
  float sum[kChunk];
  if (share) {  // focusMapKernel
    map.resize(size_t(m.kernels * a.mapH * a.mapW));
    a.map = map.data();
    for (int kk0 = 0; kk0 < m.kernels; kk0 += kChunk)
      for (int64_t o = 0; o < a.mapH * a.mapW; ++o) {
        const int chunk = std::min(kChunk, m.kernels - kk0);
        cudasweep::focusMapSums(a, tab.data(), o / a.mapW, o % a.mapW, kk0, chunk, sum);
        for (int q = 0; q < chunk; ++q) map[size_t((kk0 + q) * a.mapH * a.mapW + o)] = sum[q];
      }
  }
  std::vector<float> scores(size_t(g.rows * g.columns));
  for (int64_t patch = 0; patch < g.rows * g.columns; ++patch) {  // focusPatchKernel, one block each
    const int64_t px = (patch % g.columns) * g.stride, py = (patch / g.columns) * g.stride;
    float total = a.fc ? a.fcBias : 0.f;
    for (int kk0 = 0; kk0 < m.kernels; kk0 += kChunk) {
      const int chunk = std::min(kChunk, m.kernels - kk0);
      float best[kChunk];
      std::fill(best, best + kChunk, std::numeric_limits<float>::infinity());
      for (int o = 0; o < a.outH * a.outW; ++o) {
        cudasweep::focusPatchSums(a, tab.data(), px, py, o / a.outW, o % a.outW, kk0, chunk, sum);
        for (int q = 0; q < kChunk; ++q) best[q] = std::fmin(best[q], sum[q]);
      }
      for (int q = 0; q < chunk; ++q) total += cudasweep::focusKernelTerm(a, kk0 + q, best[q]);
    }
    scores[size_t(patch)] = total;
  }
  return scores;
}

static std::vector<float> eonssEmulated(const Model& m, const Image& im, const PatchGrid& g) {
  const Prepared region = prepare(m, im, g);
  const std::vector<float>& tab = region.table;
  const int count = int(g.rows * g.columns);
  std::vector<int32_t> index(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) index[size_t(i)] = i;
  std::vector<float> cur(size_t(count) * 3 * g.patchWidth * g.patchHeight), next;
  for (int64_t e = 0; e < int64_t(cur.size()); ++e)
    cur[size_t(e)] = cudasweep::eonssGatherValue(region.pixels.data(), region.extent.width, tab.data(), index.data(), 0, int(g.columns), int(g.stride),
                                                 int(g.patchWidth), int(g.patchHeight), e);
  int64_t C = 3, H = g.patchHeight, W = g.patchWidth;
  for (const EonssLayer& L : m.eonss) {
    const int64_t oh = convOutputSize(H, L.kernel, L.stride, L.pad), ow = convOutputSize(W, L.kernel, L.stride, L.pad);
    next.assign(size_t(count * L.outChannels * oh * ow), 0.f);
    for (int64_t e = 0; e < int64_t(next.size()); ++e)
      next[size_t(e)] = cudasweep::convValue(cur.data(), int(C), int(H), int(W), L.weight.data(), L.bias.data(), L.outChannels, L.kernel, L.stride,
                                             L.pad, int(oh), int(ow), e);
    std::swap(cur, next);
    C = L.outChannels;
    H = oh;
    W = ow;
    if (L.gdn) {
      next.assign(cur.size(), 0.f);
      for (int64_t e = 0; e < count * H * W; ++e) cudasweep::gdnPixel(cur.data(), int(C), int(H), int(W), L.gdnGamma.data(), L.gdnBeta.data(), next.data(), e);
      std::swap(cur, next);
    }
    if (L.maxPool) {
      next.assign(size_t(count * C * (H / 2) * (W / 2)), 0.f);
      for (int64_t e = 0; e < int64_t(next.size()); ++e) next[size_t(e)] = cudasweep::maxPoolValue(cur.data(), int(H), int(W), e);
      std::swap(cur, next);
      H /= 2;
      W /= 2;
    }
  }
  std::vector<float> scores(static_cast<size_t>(count));
  for (int b = 0; b < count; ++b) scores[size_t(b)] = cur[size_t(b * C * H * W)];  // eonssScatterKernel
  return scores;
}

static void compare(const std::string& name, const Model& m, const Image& im, int64_t patch, int64_t stride) {
  PatchGrid g = makeGrid(m, im.region(), patch, stride);
  // The same decision sweepCuda makes.
  const bool share = m.arch == Architecture::FocusLiteNN && cudasweep::sharesConvMap(m, g, g.rows * g.columns);
  std::vector<float> ref(size_t(g.rows * g.columns));
  SweepOptions o;
  o.kernel = Kernel::Reference;
  sweep(m, im.region(), g, o, ref.data());
  const std::vector<float> got = m.arch == Architecture::EONSS ? eonssEmulated(m, im, g) : focusEmulated(m, im, g, share);
  // Written so that NaN fails: std::max(0.0, NaN) is 0, and NaN <= tol is false.
  double err = 0;
  bool ok = got.size() == ref.size();
  for (size_t i = 0; i < ref.size() && ok; ++i) {
    const double e = std::fabs(double(got[i]) - double(ref[i]));
    ok = e <= 2e-4 + 1e-5 * std::fabs(double(ref[i]));
    err = ok ? std::max(err, e) : e;
  }
  sharedRuns += share;
  report(ok, name + (share ? " shared map" : ""), err);
}

int main() {
  std::mt19937 rng(2024);
  const Image im = randomImage(rng, 530, 505);
  for (int k : {1, 2, 10, 17}) {
    const Model f235 = randomFocusLite(rng, k, 7, 5, 1, 235, true);
    compare("FocusLiteNN-" + std::to_string(k) + " 235 px stride 235", f235, im, 235, 235);
    compare("FocusLiteNN-" + std::to_string(k) + " 235 px stride 128", f235, im, 235, 128);
    compare("FocusLiteNN-" + std::to_string(k) + " 235 px stride 115", f235, im, 235, 115);
    const Model f64 = randomFocusLite(rng, k, 7, 1, 0, 64, true);
    compare("FocusLiteNN-" + std::to_string(k) + " 64 px stride 64", f64, im, 64, 64);
    compare("FocusLiteNN-" + std::to_string(k) + " 64 px stride 32", f64, im, 64, 32);
  }
  const Model other = randomFocusLite(rng, 3, 5, 3, 2, 100, false);
  compare("FocusLiteNN 5x5 s3 p2, 100 px stride 51", other, im, 100, 51);
  const Model e = randomEonss(rng);
  compare("EONSS 235 px stride 128", e, im, 235, 128);
  // The shared-map path must be among those checked: k = 1, 2, 10, 17 at 235/115 and 64/32, and 100/51.
  report(sharedRuns == 9, "shared-map configurations exercised: " + std::to_string(sharedRuns) + " of 9", 0);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
