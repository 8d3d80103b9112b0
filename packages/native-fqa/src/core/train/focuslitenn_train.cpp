#include "focuslitenn_train.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace fqa {

namespace {

void check(const Model& m, const PatchBatch& b) {
  if (m.arch != Architecture::FocusLiteNN) throw std::invalid_argument("training supports FocusLiteNN models only");
  if (!b.pixels || b.count <= 0) throw std::invalid_argument("empty batch");
  if (convOutputSize(b.size, m.convKernel, m.convStride, m.convPad) < 1)
    throw std::range_error("patch size " + std::to_string(b.size) + " is smaller than the convolution");
}

// Normalized input value at patch-local (x, y), zero outside (the patch's zero padding).
inline float input(const Model& m, const uint8_t* patch, int64_t size, int64_t x, int64_t y, int c) {
  if (x < 0 || y < 0 || x >= size || y >= size) return 0.f;
  return m.normalizeTable[c][patch[(y * size + x) * 3 + c]];
}

template <typename Fn>
void parallelFor(int64_t n, int threads, Fn fn) {
  threads = std::max(1, std::min<int>(threads > 0 ? threads : int(std::thread::hardware_concurrency()), int(n)));
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace

// One output row of every kernel: acc[kk][j] = sum over taps of w[kk][tap] * input(j*s - p + kx, y).
// The input rows are phase-split (x = t*s + phase - p stored at phase[t]), so for a tap kx the values
// of consecutive outputs j are contiguous. Blocks of 2 kernels x up to 6 vectors of 8 outputs stay in
// registers across all taps (one load of 6 input vectors feeds 12 FMAs). acc rows are padded to a
// multiple of 8; the padding holds garbage the caller ignores.
typedef float v8f __attribute__((vector_size(32)));

template <int NV>
__attribute__((always_inline)) inline void convBlock(const float* const* rows, const float* w0, const float* w1, int taps, int K, int s,
                                                     int64_t phaseLen, int64_t j0, float* a0, float* a1) {
  v8f acc0[NV], acc1[NV];
  for (int v = 0; v < NV; ++v) acc0[v] = acc1[v] = v8f{};
  for (int tap = 0; tap < taps; ++tap) {
    const int kx = tap % K;
    const float* src = rows[tap / K] + (kx % s) * phaseLen + kx / s + j0;
    const v8f b0 = v8f{} + w0[tap], b1 = v8f{} + w1[tap];
    for (int v = 0; v < NV; ++v) {
      v8f x;
      __builtin_memcpy(&x, src + 8 * v, sizeof x);
      acc0[v] += b0 * x;
      acc1[v] += b1 * x;
    }
  }
  for (int v = 0; v < NV; ++v) {
    __builtin_memcpy(a0 + j0 + 8 * v, &acc0[v], sizeof(v8f));
    __builtin_memcpy(a1 + j0 + 8 * v, &acc1[v], sizeof(v8f));
  }
}

__attribute__((target_clones("avx2,fma", "default")))
static void convRowAllKernels(const float* const* rows, const float* weights, int k, int taps, int K, int s,
                              int64_t outPadded, int64_t phaseLen, float* acc) {
  for (int kk = 0; kk < k; kk += 2) {
    // An odd last kernel pairs with itself; its second copy is written twice, harmlessly.
    const int k1 = std::min(kk + 1, k - 1);
    const float* w0 = weights + size_t(kk) * taps;
    const float* w1 = weights + size_t(k1) * taps;
    float* a0 = acc + kk * outPadded;
    float* a1 = acc + k1 * outPadded;
    for (int64_t j0 = 0; j0 < outPadded; j0 += 48) {
      switch (std::min<int64_t>(6, (outPadded - j0) / 8)) {
        case 6: convBlock<6>(rows, w0, w1, taps, K, s, phaseLen, j0, a0, a1); break;
        case 5: convBlock<5>(rows, w0, w1, taps, K, s, phaseLen, j0, a0, a1); break;
        case 4: convBlock<4>(rows, w0, w1, taps, K, s, phaseLen, j0, a0, a1); break;
        case 3: convBlock<3>(rows, w0, w1, taps, K, s, phaseLen, j0, a0, a1); break;
        case 2: convBlock<2>(rows, w0, w1, taps, K, s, phaseLen, j0, a0, a1); break;
        default: convBlock<1>(rows, w0, w1, taps, K, s, phaseLen, j0, a0, a1); break;
      }
    }
  }
}

void focusliteForwardBatch(const Model& m, const PatchBatch& b, int threads, float* scores, float* mins, int32_t* argmin) {
  check(m, b);
  const int K = m.convKernel, s = m.convStride, p = m.convPad, k = m.kernels;
  const int64_t out = convOutputSize(b.size, K, s, p);
  // Phase-split padded rows: each of 3 * paddedRows rows holds s phases of phaseLen values.
  const int64_t outPadded = (out + 7) / 8 * 8;
  const int64_t phaseLen = outPadded + (K + s - 1) / s + 1;
  const int64_t paddedRows = (out - 1) * s + K;
  const int taps = 3 * K * K;
  parallelFor(b.count, threads, [&](int64_t n) {
    const uint8_t* patch = b.pixels + n * b.size * b.size * 3;
    thread_local std::vector<float> planes, acc;
    thread_local std::vector<const float*> rows;
    planes.assign(size_t(3 * paddedRows * s * phaseLen), 0.f);
    acc.assign(size_t(k) * outPadded, 0.f);
    rows.assign(size_t(3 * K), nullptr);
    // One pass over each pixel row, all three channels, phase and slot stepped without divisions.
    // Rows of the patch below its bottom (paddedRows may exceed size + p) keep their zeros.
    const float* T0 = m.normalizeTable[0].data();
    const float* T1 = m.normalizeTable[1].data();
    const float* T2 = m.normalizeTable[2].data();
    const int64_t rowFloats = s * phaseLen;
    for (int64_t y = 0; y < b.size && y + p < paddedRows; ++y) {
      const uint8_t* src = patch + y * b.size * 3;
      float* r0 = planes.data() + (0 * paddedRows + y + p) * rowFloats;
      float* r1 = planes.data() + (1 * paddedRows + y + p) * rowFloats;
      float* r2 = planes.data() + (2 * paddedRows + y + p) * rowFloats;
      int64_t t = p / s, ph = p % s;  // slot of x = 0: x + p = t*s + ph
      for (int64_t x = 0; x < b.size && t < phaseLen; ++x) {
        const int64_t at = ph * phaseLen + t;
        r0[at] = T0[src[3 * x]];
        r1[at] = T1[src[3 * x + 1]];
        r2[at] = T2[src[3 * x + 2]];
        if (++ph == s) { ph = 0; ++t; }
      }
    }
    std::vector<float> best(size_t(k), std::numeric_limits<float>::infinity());
    std::vector<int32_t> where(size_t(k), 0);
    for (int64_t i = 0; i < out; ++i) {
      for (int c = 0; c < 3; ++c)
        for (int ky = 0; ky < K; ++ky) rows[c * K + ky] = planes.data() + (c * paddedRows + i * s + ky) * s * phaseLen;
      convRowAllKernels(rows.data(), m.convWeight.data(), k, taps, K, s, outPadded, phaseLen, acc.data());
      for (int kk = 0; kk < k; ++kk)
        for (int64_t j = 0; j < out; ++j)
          if (acc[kk * outPadded + j] < best[kk]) {
            best[kk] = acc[kk * outPadded + j];
            where[kk] = int32_t(i * out + j);
          }
    }
    double score = k > 1 ? m.fcBias : 0.0;
    for (int kk = 0; kk < k; ++kk) {
      mins[n * k + kk] = best[kk];
      argmin[n * k + kk] = where[kk];
      score += k > 1 ? double(m.fcWeight[kk]) * (best[kk] + m.convBias[kk]) : best[kk] + m.convBias[kk];
    }
    scores[n] = float(score);
  });
}

void focusliteBackwardBatch(const Model& m, const PatchBatch& b, const float* mins, const int32_t* argmin,
                            const float* upstream, double* gradConv, double* gradBias, double* gradFc, double* gradFcBias) {
  check(m, b);
  const int K = m.convKernel, s = m.convStride, p = m.convPad, k = m.kernels;
  const int64_t out = convOutputSize(b.size, K, s, p);
  std::fill(gradConv, gradConv + size_t(k) * 3 * K * K, 0.0);
  std::fill(gradBias, gradBias + k, 0.0);
  if (k > 1) {
    std::fill(gradFc, gradFc + k, 0.0);
    gradFcBias[0] = 0.0;
  }
  for (int64_t n = 0; n < b.count; ++n) {
    const uint8_t* patch = b.pixels + n * b.size * b.size * 3;
    const double g = upstream[n];
    if (k > 1) gradFcBias[0] += g;
    for (int kk = 0; kk < k; ++kk) {
      // score = fc_k * (min_k + bias_k) + ...: d score / d (min_k) = fc_k (1 when k == 1).
      const double gk = k > 1 ? g * m.fcWeight[kk] : g;
      if (k > 1) gradFc[kk] += g * (double(mins[n * k + kk]) + m.convBias[kk]);
      gradBias[kk] += gk;
      const int64_t i = argmin[n * k + kk] / out, j = argmin[n * k + kk] % out;
      for (int c = 0; c < 3; ++c)
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx)
            gradConv[((size_t(kk) * 3 + c) * K + ky) * K + kx] += gk * input(m, patch, b.size, j * s - p + kx, i * s - p + ky, c);
    }
  }
}

}  // namespace fqa
