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

void focusliteForwardBatch(const Model& m, const PatchBatch& b, int threads, float* scores, float* mins, int32_t* argmin) {
  check(m, b);
  const int K = m.convKernel, s = m.convStride, p = m.convPad, k = m.kernels;
  const int64_t out = convOutputSize(b.size, K, s, p);
  parallelFor(b.count, threads, [&](int64_t n) {
    const uint8_t* patch = b.pixels + n * b.size * b.size * 3;
    // Normalized planes of this patch with a zero border, so the tap loop has no bounds checks.
    const int64_t padded = b.size + 2 * K;
    std::vector<float> planes(size_t(3 * padded * padded), 0.f);
    for (int c = 0; c < 3; ++c)
      for (int64_t y = 0; y < b.size; ++y)
        for (int64_t x = 0; x < b.size; ++x) planes[(c * padded + y + K) * padded + x + K] = input(m, patch, b.size, x, y, c);
    double score = k > 1 ? m.fcBias : 0.0;
    for (int kk = 0; kk < k; ++kk) {
      float best = std::numeric_limits<float>::infinity();
      int32_t where = 0;
      for (int64_t i = 0; i < out; ++i)
        for (int64_t j = 0; j < out; ++j) {
          float sum = 0.f;
          for (int c = 0; c < 3; ++c)
            for (int ky = 0; ky < K; ++ky) {
              const float* row = planes.data() + (c * padded + i * s - p + ky + K) * padded + j * s - p + K;
              const float* w = m.convWeight.data() + ((size_t(kk) * 3 + c) * K + ky) * K;
              for (int kx = 0; kx < K; ++kx) sum += w[kx] * row[kx];
            }
          if (sum < best) {
            best = sum;
            where = int32_t(i * out + j);
          }
        }
      mins[n * k + kk] = best;
      argmin[n * k + kk] = where;
      score += k > 1 ? double(m.fcWeight[kk]) * (best + m.convBias[kk]) : best + m.convBias[kk];
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
