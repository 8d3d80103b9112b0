// Plain reference implementations: the models exactly as written in PyTorch, one patch at a time,
// accumulating in double. They are the oracle the optimized kernels are tested against; nothing
// here is tuned for speed.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"

namespace fqa {

namespace {

// Normalized value of channel c at window-local (x, y); zero outside the window (zero padding).
inline double pixel(const Model& m, const Region& r, int64_t ox, int64_t oy, int64_t w, int64_t h,
                    int64_t x, int64_t y, int c) {
  if (x < 0 || y < 0 || x >= w || y >= h) return 0.0;
  uint8_t v = r.pixels[(oy + y) * r.rowStride + (ox + x) * 3 + c];
  return (double(v) / 255.0 - m.mean[c]) / m.std[c];
}

// A CHW feature map.
struct Map {
  int channels = 0;
  int64_t height = 0, width = 0;
  std::vector<double> v;
  double& at(int c, int64_t y, int64_t x) { return v[(size_t(c) * height + y) * width + x]; }
  double get(int c, int64_t y, int64_t x) const {
    if (y < 0 || x < 0 || y >= height || x >= width) return 0.0;
    return v[(size_t(c) * height + y) * width + x];
  }
};

Map conv(const Map& in, const EonssLayer& L) {
  Map out;
  out.channels = L.outChannels;
  out.height = convOutputSize(in.height, L.kernel, L.stride, L.pad);
  out.width = convOutputSize(in.width, L.kernel, L.stride, L.pad);
  out.v.assign(size_t(out.channels) * out.height * out.width, 0.0);
  for (int o = 0; o < L.outChannels; ++o)
    for (int64_t y = 0; y < out.height; ++y)
      for (int64_t x = 0; x < out.width; ++x) {
        double s = L.bias[o];
        for (int c = 0; c < L.inChannels; ++c)
          for (int ky = 0; ky < L.kernel; ++ky)
            for (int kx = 0; kx < L.kernel; ++kx)
              s += double(L.weight[((size_t(o) * L.inChannels + c) * L.kernel + ky) * L.kernel + kx]) *
                   in.get(c, y * L.stride - L.pad + ky, x * L.stride - L.pad + kx);
        out.at(o, y, x) = s;
      }
  return out;
}

// GDN(x)_i = x_i / sqrt(beta_i + sum_j gamma[j][i] * x_j^2)
void gdn(Map& m, const EonssLayer& L) {
  std::vector<double> sq(m.channels);
  for (int64_t y = 0; y < m.height; ++y)
    for (int64_t x = 0; x < m.width; ++x) {
      for (int j = 0; j < m.channels; ++j) sq[j] = m.at(j, y, x) * m.at(j, y, x);
      std::vector<double> norm(m.channels);
      for (int i = 0; i < m.channels; ++i) {
        double s = L.gdnBeta[i];
        for (int j = 0; j < m.channels; ++j) s += double(L.gdnGamma[size_t(j) * m.channels + i]) * sq[j];
        norm[i] = std::sqrt(s);
      }
      for (int i = 0; i < m.channels; ++i) m.at(i, y, x) /= norm[i];
    }
}

Map maxPool2(const Map& in) {
  Map out;
  out.channels = in.channels;
  out.height = in.height / 2;
  out.width = in.width / 2;
  out.v.assign(size_t(out.channels) * out.height * out.width, 0.0);
  for (int c = 0; c < in.channels; ++c)
    for (int64_t y = 0; y < out.height; ++y)
      for (int64_t x = 0; x < out.width; ++x)
        out.at(c, y, x) = std::max(std::max(in.get(c, 2 * y, 2 * x), in.get(c, 2 * y, 2 * x + 1)),
                                   std::max(in.get(c, 2 * y + 1, 2 * x), in.get(c, 2 * y + 1, 2 * x + 1)));
  return out;
}

}  // namespace

float focusliteReferenceScore(const Model& m, const Region& r, int64_t ox, int64_t oy, int64_t w, int64_t h) {
  const int K = m.convKernel, s = m.convStride, p = m.convPad;
  const int64_t outH = convOutputSize(h, K, s, p), outW = convOutputSize(w, K, s, p);
  double score = m.kernels > 1 ? m.fcBias : 0.0;
  for (int k = 0; k < m.kernels; ++k) {
    double minimum = std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < outH; ++i)
      for (int64_t j = 0; j < outW; ++j) {
        double sum = m.convBias[k];
        for (int c = 0; c < 3; ++c)
          for (int ky = 0; ky < K; ++ky)
            for (int kx = 0; kx < K; ++kx)
              sum += double(m.convWeight[((size_t(k) * 3 + c) * K + ky) * K + kx]) *
                     pixel(m, r, ox, oy, w, h, j * s - p + kx, i * s - p + ky, c);
        minimum = std::min(minimum, sum);
      }
    score += m.kernels > 1 ? double(m.fcWeight[k]) * minimum : minimum;
  }
  return float(score);
}

float eonssReferenceScore(const Model& m, const Region& r, int64_t ox, int64_t oy, int64_t w, int64_t h) {
  Map x;
  x.channels = 3;
  x.height = h;
  x.width = w;
  x.v.resize(size_t(3) * h * w);
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx) x.at(c, y, xx) = pixel(m, r, ox, oy, w, h, xx, y, c);
  for (const EonssLayer& L : m.eonss) {
    x = conv(x, L);
    if (L.gdn) gdn(x, L);
    if (L.maxPool) x = maxPool2(x);
  }
  return float(x.v.at(0));
}

}  // namespace fqa
