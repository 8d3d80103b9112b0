// The arithmetic of the CUDA sweep, one output element at a time, as __host__ __device__ functions:
// the kernels in sweep.cu are grid-stride loops and reductions around them, and
// test/cuda_host_test.cu runs the very same functions on the CPU (no GPU needed) against the scalar
// reference, so indexing, padding and the shared-map/border split are tested on every build.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "model.h"
#include "sweep.h"

#if defined(__CUDACC__)
#define FQA_HD __host__ __device__
#else
#define FQA_HD
#endif

namespace fqa {
namespace cudasweep {

constexpr int kChunk = 16;  // FocusLiteNN kernels accumulated in registers per pass

struct FocusArgs {
  const uint8_t* pixels;  // compact region, regionWidth * 3 bytes per row
  int64_t regionWidth, regionHeight;
  int patchWidth, patchHeight, stride, columns;
  int K, s, p, kernels, outH, outW;
  const float* table;    // [3][256] normalized value of each u8 level
  const float* weight;   // [k][3][K][K]
  const float* bias;     // [k]
  const float* fc;       // [k] or nullptr (k == 1)
  float fcBias;
  float* map;            // shared conv map [k][mapH][mapW] without bias, or nullptr
  int64_t mapH, mapW;
  const int32_t* index;  // scored patches
  float* scores;         // [rows * columns]
};

// Conv sums (no bias) of kernels kk0 .. kk0+chunk-1 at position (u, v) of the region's conv map, with
// the region's zero padding.
FQA_HD inline void focusMapSums(const FocusArgs& a, const float* table, int64_t u, int64_t v, int kk0, int chunk, float* sum) {
  for (int q = 0; q < kChunk; ++q) sum[q] = 0.f;
  const int taps = 3 * a.K * a.K;
  for (int c = 0; c < 3; ++c)
    for (int ky = 0; ky < a.K; ++ky) {
      const int64_t y = u * a.s - a.p + ky;
      if (y < 0 || y >= a.regionHeight) continue;
      for (int kx = 0; kx < a.K; ++kx) {
        const int64_t x = v * a.s - a.p + kx;
        if (x < 0 || x >= a.regionWidth) continue;
        const float value = table[c * 256 + a.pixels[(y * a.regionWidth + x) * 3 + c]];
        const float* w = a.weight + int64_t(kk0) * taps + (c * a.K + ky) * a.K + kx;
        for (int q = 0; q < kChunk; ++q)
          if (q < chunk) sum[q] += w[q * taps] * value;
      }
    }
}

// Mutation-test hook, 0 in every real build: test/cuda_host_test.cu is also built with 1
// (fqa_cuda_host_test_mutant), an off-by-one that lets border outputs read the region map, and
// core-binary.test.ts requires that build to fail, so the host test provably sees this bug.
#ifndef FQA_TEST_INTERIOR_OFF_BY
#define FQA_TEST_INTERIOR_OFF_BY 0
#endif

// True when patch-local output (i, j) sees only the patch's own pixels, so the region map holds it.
FQA_HD inline bool focusInterior(const FocusArgs& a, int i, int j) {
  const int y0 = i * a.s - a.p, x0 = j * a.s - a.p;
  return a.map && y0 >= 0 && x0 >= 0 && y0 + a.K <= a.patchHeight + FQA_TEST_INTERIOR_OFF_BY &&
         x0 + a.K <= a.patchWidth + FQA_TEST_INTERIOR_OFF_BY;
}

// Conv sums (no bias) at output (i, j) of the patch whose top-left is (px, py): read from the map
// for interior outputs (px, py are multiples of the conv stride then), computed with the patch's
// own zero padding otherwise.
FQA_HD inline void focusPatchSums(const FocusArgs& a, const float* table, int64_t px, int64_t py, int i, int j, int kk0, int chunk, float* sum) {
  if (focusInterior(a, i, j)) {
    const int64_t u = py / a.s + i, v = px / a.s + j;
    for (int q = 0; q < kChunk; ++q) sum[q] = q < chunk ? a.map[(int64_t(kk0 + q) * a.mapH + u) * a.mapW + v] : 0.f;
    return;
  }
  for (int q = 0; q < kChunk; ++q) sum[q] = 0.f;
  const int taps = 3 * a.K * a.K;
  const int y0 = i * a.s - a.p, x0 = j * a.s - a.p;
  for (int c = 0; c < 3; ++c)
    for (int ky = 0; ky < a.K; ++ky) {
      const int y = y0 + ky;
      if (y < 0 || y >= a.patchHeight) continue;  // the patch's own zero padding
      const uint8_t* row = a.pixels + ((py + y) * a.regionWidth + px) * 3 + c;
      for (int kx = 0; kx < a.K; ++kx) {
        const int x = x0 + kx;
        if (x < 0 || x >= a.patchWidth) continue;
        const float value = table[c * 256 + row[x * 3]];
        const float* w = a.weight + int64_t(kk0) * taps + (c * a.K + ky) * a.K + kx;
        for (int q = 0; q < kChunk; ++q)
          if (q < chunk) sum[q] += w[q * taps] * value;
      }
    }
}

// A patch's contribution of kernel kk given the min of its conv map.
FQA_HD inline float focusKernelTerm(const FocusArgs& a, int kk, float minimum) {
  return a.fc ? a.fc[kk] * (minimum + a.bias[kk]) : minimum + a.bias[kk];
}

// EONSS, activations [batch][channels][height][width]. Element e of the gathered input batch.
FQA_HD inline float eonssGatherValue(const uint8_t* pixels, int64_t regionWidth, const float* table, const int32_t* index, int first,
                                     int columns, int stride, int patchWidth, int patchHeight, int64_t e) {
  const int64_t plane = int64_t(patchWidth) * patchHeight;
  const int64_t b = e / (3 * plane), c = (e / plane) % 3, y = (e % plane) / patchWidth, x = e % patchWidth;
  const int patch = index[first + b];
  const int64_t px = int64_t(patch % columns) * stride, py = int64_t(patch / columns) * stride;
  return table[c * 256 + pixels[((py + y) * regionWidth + px + x) * 3 + c]];
}

// Element e of a convolution's output (bias included), zero padding.
FQA_HD inline float convValue(const float* in, int inC, int inH, int inW, const float* weight, const float* bias, int outC, int K, int s, int p,
                              int outH, int outW, int64_t e) {
  const int x = int(e % outW), y = int((e / outW) % outH), o = int((e / (int64_t(outW) * outH)) % outC);
  const int64_t b = e / (int64_t(outW) * outH * outC);
  float sum = bias[o];
  for (int c = 0; c < inC; ++c) {
    const float* plane = in + (b * inC + c) * int64_t(inH) * inW;
    const float* w = weight + (int64_t(o) * inC + c) * K * K;
    for (int ky = 0; ky < K; ++ky) {
      const int yy = y * s - p + ky;
      if (yy < 0 || yy >= inH) continue;
      for (int kx = 0; kx < K; ++kx) {
        const int xx = x * s - p + kx;
        if (xx < 0 || xx >= inW) continue;
        sum += w[ky * K + kx] * plane[int64_t(yy) * inW + xx];
      }
    }
  }
  return sum;
}

// GDN of pixel e = b * H * W + (y * W + x): out_i = x_i / sqrt(beta_i + sum_j gamma[j][i] x_j^2).
FQA_HD inline void gdnPixel(const float* in, int C, int H, int W, const float* gamma, const float* beta, float* out, int64_t e) {
  const int64_t plane = int64_t(H) * W;
  const int64_t b = e / plane, pix = e % plane;
  const float* x = in + b * C * plane + pix;
  for (int i = 0; i < C; ++i) {
    float norm = beta[i];
    for (int j = 0; j < C; ++j) {
      const float v = x[int64_t(j) * plane];
      norm += gamma[j * C + i] * v * v;
    }
    out[b * C * plane + int64_t(i) * plane + pix] = x[int64_t(i) * plane] / sqrtf(norm);
  }
}

// Element e of a 2x2 max pool (floor) of [batch * C] planes of H x W.
FQA_HD inline float maxPoolValue(const float* in, int H, int W, int64_t e) {
  const int outH = H / 2, outW = W / 2;
  const int x = int(e % outW), y = int((e / outW) % outH);
  const int64_t bc = e / (int64_t(outW) * outH);
  const float* plane = in + bc * int64_t(H) * W;
  return fmaxf(fmaxf(plane[int64_t(2 * y) * W + 2 * x], plane[int64_t(2 * y) * W + 2 * x + 1]),
               fmaxf(plane[int64_t(2 * y + 1) * W + 2 * x], plane[int64_t(2 * y + 1) * W + 2 * x + 1]));
}

// Host-side setup, shared by sweepCuda and the host test so both run the same decisions.

// The part of the region the grid touches: what sweepCuda uploads.
struct RegionExtent {
  int64_t width, height;
};
inline RegionExtent usedExtent(const PatchGrid& g) {
  return {(g.columns - 1) * g.stride + g.patchWidth, (g.rows - 1) * g.stride + g.patchHeight};
}

// Copies those rows and columns, compacted to width * 3 bytes per row.
inline void compactRegion(const Region& r, RegionExtent e, uint8_t* out) {
  for (int64_t y = 0; y < e.height; ++y) std::memcpy(out + y * e.width * 3, r.pixels + y * r.rowStride, size_t(e.width * 3));
}

// The model's u8 -> normalized float table, [3][256].
inline void normalizeTable(const Model& m, float* table) {
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) table[c * 256 + v] = m.normalizeTable[c][v];
}

// Whether overlapping patches share one conv map of the region (patch origins on the conv grid), as
// the CPU path does.
inline bool sharesConvMap(const Model& m, const PatchGrid& g, int64_t scoredPatches) {
  return g.stride % m.convStride == 0 && (g.stride < g.patchWidth || g.stride < g.patchHeight) && scoredPatches > 1;
}

// FocusArgs with the geometry of model and grid filled in (and the map's size when it is shared);
// the caller sets the pointers to its own copies of pixels, table, weights, map, index and scores.
inline FocusArgs focusArgs(const Model& m, const PatchGrid& g, RegionExtent e, bool shareMap) {
  FocusArgs a{};
  a.regionWidth = e.width;
  a.regionHeight = e.height;
  a.patchWidth = int(g.patchWidth);
  a.patchHeight = int(g.patchHeight);
  a.stride = int(g.stride);
  a.columns = int(g.columns);
  a.K = m.convKernel;
  a.s = m.convStride;
  a.p = m.convPad;
  a.kernels = m.kernels;
  a.outH = int(convOutputSize(g.patchHeight, a.K, a.s, a.p));
  a.outW = int(convOutputSize(g.patchWidth, a.K, a.s, a.p));
  a.fcBias = m.kernels > 1 ? m.fcBias : 0.f;
  if (shareMap) {
    a.mapH = convOutputSize(e.height, a.K, a.s, a.p);
    a.mapW = convOutputSize(e.width, a.K, a.s, a.p);
  }
  return a;
}

}  // namespace cudasweep
}  // namespace fqa
