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

// One output row of every kernel: acc[kk][j] += sum over taps of w[kk][tap] * input(j*s - p + kx, y).
// The input rows are phase-split (x = t*s + phase - p stored at phase[t]), so for a tap kx the
// values of consecutive outputs j are contiguous and the j loop vectorizes. Cloned for AVX2+FMA and
// the baseline; the CPU picks one when the library loads.
__attribute__((target_clones("avx2,fma", "default")))
static void convRowAllKernels(const float* const* rows, const float* weights, int k, int taps, int K, int s,
                              int64_t out, int64_t phaseLen, float* acc) {
  for (int kk = 0; kk < k; ++kk) {
    float* a = acc + kk * out;
    for (int64_t j = 0; j < out; ++j) a[j] = 0.f;
    const float* w = weights + size_t(kk) * taps;
    for (int tap = 0; tap < taps; ++tap) {
      const int kx = tap % K;
      const float* src = rows[tap / K] + (kx % s) * phaseLen + kx / s;
      const float wv = w[tap];
      for (int64_t j = 0; j < out; ++j) a[j] += wv * src[j];
    }
  }
}

void focusliteForwardBatch(const Model& m, const PatchBatch& b, int threads, float* scores, float* mins, int32_t* argmin) {
  check(m, b);
  const int K = m.convKernel, s = m.convStride, p = m.convPad, k = m.kernels;
  const int64_t out = convOutputSize(b.size, K, s, p);
  // Phase-split padded rows: each of 3 * paddedRows rows holds s phases of phaseLen values.
  const int64_t phaseLen = out + (K + s - 1) / s + 1;
  const int64_t paddedRows = (out - 1) * s + K;
  const int taps = 3 * K * K;
  parallelFor(b.count, threads, [&](int64_t n) {
    const uint8_t* patch = b.pixels + n * b.size * b.size * 3;
    thread_local std::vector<float> planes, acc;
    thread_local std::vector<const float*> rows;
    planes.assign(size_t(3 * paddedRows * s * phaseLen), 0.f);
    acc.assign(size_t(k) * out, 0.f);
    rows.assign(size_t(3 * K), nullptr);
    for (int c = 0; c < 3; ++c)
      for (int64_t r = 0; r < paddedRows; ++r) {
        const int64_t y = r - p;
        if (y < 0 || y >= b.size) continue;
        float* row = planes.data() + (c * paddedRows + r) * s * phaseLen;
        for (int64_t t = 0; t < phaseLen; ++t)
          for (int ph = 0; ph < s; ++ph) {
            const int64_t x = t * s + ph - p;
            if (x >= 0 && x < b.size) row[ph * phaseLen + t] = m.normalizeTable[c][patch[(y * b.size + x) * 3 + c]];
          }
      }
    std::vector<float> best(size_t(k), std::numeric_limits<float>::infinity());
    std::vector<int32_t> where(size_t(k), 0);
    for (int64_t i = 0; i < out; ++i) {
      for (int c = 0; c < 3; ++c)
        for (int ky = 0; ky < K; ++ky) rows[c * K + ky] = planes.data() + (c * paddedRows + i * s + ky) * s * phaseLen;
      convRowAllKernels(rows.data(), m.convWeight.data(), k, taps, K, s, out, phaseLen, acc.data());
      for (int kk = 0; kk < k; ++kk)
        for (int64_t j = 0; j < out; ++j)
          if (acc[kk * out + j] < best[kk]) {
            best[kk] = acc[kk * out + j];
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
