// Optimized EONSS (tested against eonssReferenceScore in reference.cpp). One patch at a time in
// channel-last (HWC) layout so the innermost loop runs over output channels, contiguous in the
// packed weights: the compiler vectorizes it for each ISA this file is built for. conv1 reads the
// u8 region directly through the normalization table; no patch copy is made.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace fqa {
namespace FQA_ISA {

namespace {

constexpr int kMaxChannels = 256;

thread_local std::vector<float> tlActivations, tlConvOut;

// GDN in place on one pixel's channels: x_i / sqrt(beta_i + sum_j gamma[j][i] x_j^2).
inline void gdnPixel(const EonssLayer& L, float* x) {
  const int C = L.outChannels;
  float norm[kMaxChannels];
  for (int i = 0; i < C; ++i) norm[i] = L.gdnBeta[i];
  for (int j = 0; j < C; ++j) {
    const float sq = x[j] * x[j];
    const float* g = L.gdnGamma.data() + size_t(j) * C;
    for (int i = 0; i < C; ++i) norm[i] += g[i] * sq;
  }
  for (int i = 0; i < C; ++i) x[i] /= std::sqrt(norm[i]);
}

float eonssPatch(const Model& m, const Region& r, int64_t ox, int64_t oy, int64_t pw, int64_t ph) {
  std::vector<float>& in = tlActivations;
  std::vector<float>& out = tlConvOut;
  int64_t H = ph, W = pw;
  bool first = true;
  for (const EonssLayer& L : m.eonss) {
    const int Cin = L.inChannels, Cout = L.outChannels, K = L.kernel;
    const int64_t oh = convOutputSize(H, K, L.stride, L.pad), ow = convOutputSize(W, K, L.stride, L.pad);
    out.resize(size_t(oh) * ow * Cout);
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        float acc[kMaxChannels];
        for (int o = 0; o < Cout; ++o) acc[o] = L.bias[o];
        for (int ky = 0; ky < K; ++ky) {
          const int64_t iy = y * L.stride - L.pad + ky;
          if (iy < 0 || iy >= H) continue;
          for (int kx = 0; kx < K; ++kx) {
            const int64_t ix = x * L.stride - L.pad + kx;
            if (ix < 0 || ix >= W) continue;
            const float* w = L.weightPacked.data() + (size_t(ky) * K + kx) * Cin * Cout;
            float pixel[kMaxChannels];
            if (first) {
              const uint8_t* p = r.pixels + (oy + iy) * r.rowStride + (ox + ix) * 3;
              for (int c = 0; c < 3; ++c) pixel[c] = m.normalizeTable[c][p[c]];
            } else {
              const float* p = in.data() + (size_t(iy) * W + ix) * Cin;
              for (int c = 0; c < Cin; ++c) pixel[c] = p[c];
            }
            for (int c = 0; c < Cin; ++c) {
              const float v = pixel[c];
              const float* wc = w + size_t(c) * Cout;
              for (int o = 0; o < Cout; ++o) acc[o] += wc[o] * v;
            }
          }
        }
        if (L.gdn) {
          // gdnPixel reads the layer's own gamma/beta
          gdnPixel(L, acc);
        }
        float* dst = out.data() + (size_t(y) * ow + x) * Cout;
        for (int o = 0; o < Cout; ++o) dst[o] = acc[o];
      }
    H = oh;
    W = ow;
    if (L.maxPool) {
      const int64_t phh = H / 2, pww = W / 2;
      in.resize(size_t(phh) * pww * Cout);
      for (int64_t y = 0; y < phh; ++y)
        for (int64_t x = 0; x < pww; ++x) {
          const float* a = out.data() + (size_t(2 * y) * W + 2 * x) * Cout;
          const float* b = a + Cout;
          const float* c = a + size_t(W) * Cout;
          const float* d = c + Cout;
          float* dst = in.data() + (size_t(y) * pww + x) * Cout;
          for (int o = 0; o < Cout; ++o) dst[o] = std::max(std::max(a[o], b[o]), std::max(c[o], d[o]));
        }
      H = phh;
      W = pww;
    } else {
      in.swap(out);
    }
    first = false;
  }
  return in.at(0);
}

}  // namespace

void eonssRows(const Model& m, const Region& r, const PatchGrid& g, int64_t rowBegin, int64_t rowEnd,
               float* scores) {
  for (int64_t row = rowBegin; row < rowEnd; ++row)
    for (int64_t col = 0; col < g.columns; ++col) {
      const int64_t idx = row * g.columns + col;
      scores[idx] = (g.skip && g.skip[idx])
                        ? std::numeric_limits<float>::quiet_NaN()
                        : eonssPatch(m, r, col * g.stride, row * g.stride, g.patchWidth, g.patchHeight);
    }
}

}  // namespace FQA_ISA
}  // namespace fqa
