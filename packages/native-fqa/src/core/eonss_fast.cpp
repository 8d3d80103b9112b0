// Optimized EONSS (tested against eonssReferenceScore in reference.cpp). One patch at a time in
// channel-last (HWC) layout so the innermost loop runs over output channels, contiguous in the
// packed weights, with compile-time widths for the published layers (accumulators in registers): the
// compiler vectorizes it for each ISA this file is built for. Each layer's input is laid out once with
// its zero padding (conv1's straight from the u8 region through the normalization table), so the conv
// loops have no bounds checks and a kernel row's taps are one contiguous run.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <limits>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace fqa {
namespace FQA_ISA {

namespace {

constexpr int kMaxChannels = 256;

thread_local std::vector<float> tlActivations, tlConvOut;

// GDN in place on one pixel's channels: x_i / sqrt(beta_i + sum_j gamma[j][i] x_j^2). gamma row j is
// contiguous over i, so the published widths (multiples of the vector width) run on whole vectors.
inline void gdnPixel(const EonssLayer& L, float* x) {
  const int C = L.outChannels;
  if (C % V == 0 && C <= 64) {
    vf norm[64 / V > 0 ? 64 / V : 1];
    const int NV = C / V;
    for (int v = 0; v < NV; ++v) norm[v] = loadu(L.gdnBeta.data() + v * V);
    for (int j = 0; j < C; ++j) {
      const vf sq = splat(x[j] * x[j]);
      const float* g = L.gdnGamma.data() + size_t(j) * C;
      for (int v = 0; v < NV; ++v) norm[v] += loadu(g + v * V) * sq;
    }
    for (int v = 0; v < NV; ++v) {
      float n[V];
      storeu(n, norm[v]);
      for (int l = 0; l < V; ++l) x[v * V + l] /= std::sqrt(n[l]);
    }
    return;
  }
  float norm[kMaxChannels];
  for (int i = 0; i < C; ++i) norm[i] = L.gdnBeta[i];
  for (int j = 0; j < C; ++j) {
    const float sq = x[j] * x[j];
    const float* g = L.gdnGamma.data() + size_t(j) * C;
    for (int i = 0; i < C; ++i) norm[i] += g[i] * sq;
  }
  for (int i = 0; i < C; ++i) x[i] /= std::sqrt(norm[i]);
}

// One conv layer over a zero-padded HWC input (Hp x Wp x Cin, padding already in place), bias
// included, optional GDN per output pixel. COUT is a compile-time constant for the published widths
// so the accumulators live in vector registers; 0 means "runtime Cout".
template <int COUT>
void convLayer(const EonssLayer& L, const float* in, int64_t Wp, int64_t oh, int64_t ow, float* out) {
  const int Cin = L.inChannels, K = L.kernel, s = L.stride;
  if constexpr (COUT > 0 && COUT % V == 0 && COUT / V <= 8) {
    // Explicit vectors: NV = COUT / V accumulators per output pixel, P neighbouring output pixels at
    // once so that narrow layers (conv1: 8 channels = 1 AVX2 vector) still have P independent FMA
    // chains instead of waiting on one accumulator's latency.
    constexpr int NV = COUT / V;
    constexpr int P = NV >= 4 ? 1 : 4 / NV;
    // PP output pixels from x0: PP is a compile-time count (P, or 1 for the row's tail) so that
    // every accumulator stays in a register.
    auto block = [&](auto pixels, int64_t y, int64_t x0) {
      constexpr int PP = decltype(pixels)::value;
      vf acc[PP][NV];
      for (int q = 0; q < PP; ++q)
        for (int v = 0; v < NV; ++v) acc[q][v] = loadu(L.bias.data() + v * V);
      for (int ky = 0; ky < K; ++ky) {
        const float* row = in + ((y * s + ky) * Wp + x0 * s) * Cin;
        const float* wk = L.weightPacked.data() + size_t(ky) * K * Cin * COUT;
        // The K taps of a kernel row are contiguous in the padded input: one run of K * Cin values.
        for (int t = 0; t < K * Cin; ++t) {
          const float* w = wk + size_t(t) * COUT;
          vf wv[NV];
          for (int v = 0; v < NV; ++v) wv[v] = loadu(w + v * V);
          for (int q = 0; q < PP; ++q) {
            const vf b = broadcast(row + q * s * Cin + t);
            for (int v = 0; v < NV; ++v) acc[q][v] += wv[v] * b;
          }
        }
      }
      for (int q = 0; q < PP; ++q) {
        float values[COUT];
        for (int v = 0; v < NV; ++v) storeu(values + v * V, acc[q][v]);
        if (L.gdn) gdnPixel(L, values);
        std::copy_n(values, COUT, out + (y * ow + x0 + q) * COUT);
      }
    };
    for (int64_t y = 0; y < oh; ++y) {
      int64_t x0 = 0;
      for (; x0 + P <= ow; x0 += P) block(std::integral_constant<int, P>{}, y, x0);
      for (; x0 < ow; ++x0) block(std::integral_constant<int, 1>{}, y, x0);
    }
    return;
  }
  const int Cout = L.outChannels;
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      float acc[kMaxChannels];
      for (int o = 0; o < Cout; ++o) acc[o] = L.bias[o];
      for (int ky = 0; ky < K; ++ky) {
        const float* row = in + ((y * s + ky) * Wp + x * s) * Cin;
        const float* wk = L.weightPacked.data() + size_t(ky) * K * Cin * Cout;
        for (int t = 0; t < K * Cin; ++t) {
          const float v = row[t];
          const float* w = wk + size_t(t) * Cout;
          for (int o = 0; o < Cout; ++o) acc[o] += w[o] * v;
        }
      }
      if (L.gdn) gdnPixel(L, acc);
      float* dst = out + (y * ow + x) * Cout;
      for (int o = 0; o < Cout; ++o) dst[o] = acc[o];
    }
}

void convDispatch(const EonssLayer& L, const float* in, int64_t Wp, int64_t oh, int64_t ow, float* out) {
  switch (L.outChannels) {
    case 8: return convLayer<8>(L, in, Wp, oh, ow, out);
    case 16: return convLayer<16>(L, in, Wp, oh, ow, out);
    case 32: return convLayer<32>(L, in, Wp, oh, ow, out);
    case 64: return convLayer<64>(L, in, Wp, oh, ow, out);
    default: return convLayer<0>(L, in, Wp, oh, ow, out);
  }
}

thread_local std::vector<float> tlPadded;

float eonssPatch(const Model& m, const Region& r, int64_t ox, int64_t oy, int64_t pw, int64_t ph) {
  std::vector<float>& in = tlActivations;
  std::vector<float>& out = tlConvOut;
  std::vector<float>& padded = tlPadded;
  int64_t H = ph, W = pw;
  bool first = true;
  for (const EonssLayer& L : m.eonss) {
    const int Cin = L.inChannels, Cout = L.outChannels, K = L.kernel, p = L.pad;
    const int64_t oh = convOutputSize(H, K, L.stride, p), ow = convOutputSize(W, K, L.stride, p);
    // The layer's input with its zero padding in place (HWC): no bounds checks in the conv.
    const int64_t Hp = H + 2 * p, Wp = W + 2 * p;
    const float* src;
    if (first || p > 0) {
      padded.assign(size_t(Hp * Wp * Cin), 0.f);
      for (int64_t y = 0; y < H; ++y) {
        float* dst = padded.data() + ((y + p) * Wp + p) * Cin;
        if (first) {
          const uint8_t* px = r.pixels + (oy + y) * r.rowStride + ox * 3;
          for (int64_t x = 0; x < W; ++x)
            for (int c = 0; c < 3; ++c) dst[x * 3 + c] = m.normalizeTable[c][px[x * 3 + c]];
        } else {
          std::copy_n(in.data() + y * W * Cin, W * Cin, dst);
        }
      }
      src = padded.data();
    } else {
      src = in.data();
    }
    out.resize(size_t(oh) * ow * Cout);
    convDispatch(L, src, Wp, oh, ow, out.data());
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
