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
constexpr int kMaxKernelSide = 15;  // kModelLimits.eonssKernelMax

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

// ---- Planar layers: vectors across output columns ------------------------------------------------
// conv1-conv3 of the published EONSS have few channels (8-32) and wide maps (118, 30, 8 columns), so
// vectors over output channels leave lanes idle (conv1: 8 channels on 16 lanes) and broadcast one
// input per FMA. Here a vector holds V neighbouring output columns of one channel instead: the
// input rows are split by the conv stride into phases (as in focuslitenn_fast.cpp), so a tap's V
// inputs are V consecutive floats, and KB output channels x CB column chunks of accumulators stay in
// registers for all Cin*K*K taps. Bias, GDN and the 2x2 max pool follow per pair of output rows,
// while those rows are in L1.

// Rows of a layer's zero-padded input, split by phase: slot[c][f][q] = padded input at column
// s*q + f. Filled on demand from the source (u8 region or the previous layer's CHW map); K slots
// suffice because output rows are computed top to bottom.
struct PlaneRing {
  int channels = 0, s = 1, slots = 0;
  int64_t qw = 0;  // floats per phase
  std::vector<float> data;
  std::vector<int64_t> rowOfSlot;
  void reset(int c, int stride, int k, int64_t q) {
    channels = c;
    s = stride;
    slots = k;
    qw = q;
    data.assign(size_t(slots) * c * stride * q, 0.f);
    rowOfSlot.assign(size_t(slots), -1);
  }
  int64_t slotFloats() const { return int64_t(channels) * s * qw; }
};

// Fills ring row y (padded coordinates) of a layer with padding p over an H x W input.
template <typename Value>
void fillPlaneRow(PlaneRing& ring, int64_t y, int p, int64_t H, int64_t W, float* dst, Value value) {
  const int s = ring.s;
  std::fill(dst, dst + ring.slotFloats(), 0.f);
  const int64_t yy = y - p;
  if (yy < 0 || yy >= H) return;
  for (int c = 0; c < ring.channels; ++c)
    for (int f = 0; f < s; ++f) {
      float* out = dst + (int64_t(c) * s + f) * ring.qw;
      // padded column s*q + f holds input column x = s*q + f - p for 0 <= x < W
      const int64_t qa = f >= p ? 0 : (p - f + s - 1) / s;
      const int64_t qb = std::min(ring.qw, W - 1 + p - f < 0 ? int64_t(0) : (W - 1 + p - f) / s + 1);
      for (int64_t q = qa; q < qb; ++q) out[q] = value(c, yy, s * q + f - p);
    }
}

// KB output channels x CB chunks of V output columns, all taps, from the ring rows of one output row.
template <int KB, int CB>
void planarBlock(const float* const* rows, const int64_t* tapOffset, int Cin, int K, int64_t channelFloats,
                 const float* w /* [Cin][K][K][KB] */, int64_t q0, vf* out) {
  vf acc[KB][CB];
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 4
    for (int cb = 0; cb < CB; ++cb) acc[kb][cb] = vf{};
  for (int c = 0; c < Cin; ++c)
    for (int ky = 0; ky < K; ++ky) {
      const float* row = rows[ky] + c * channelFloats + q0;
      for (int kx = 0; kx < K; ++kx, w += KB) {
        vf v[CB];
#pragma GCC unroll 4
        for (int cb = 0; cb < CB; ++cb) v[cb] = loadu(row + tapOffset[kx] + cb * V);
#pragma GCC unroll 8
        for (int kb = 0; kb < KB; ++kb) {
          const vf wv = broadcast(w + kb);
#pragma GCC unroll 4
          for (int cb = 0; cb < CB; ++cb) acc[kb][cb] += wv * v[cb];
        }
      }
    }
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 4
    for (int cb = 0; cb < CB; ++cb) out[kb * CB + cb] = acc[kb][cb];
}

using PlanarFn = void (*)(const float* const*, const int64_t*, int, int, int64_t, const float*, int64_t, vf*);

// Channel block KB (divides Cout) and chunk block CB that fit the register file.
struct PlanarShape {
  int kb = 1, cb = 1;
  PlanarFn fn = &planarBlock<1, 1>;
};
PlanarShape planarShape(int cout, int chunks) {
  PlanarShape p;
  const int kb = cout % 8 == 0 ? 8 : cout % 4 == 0 ? 4 : 1;
  const bool two = chunks >= 2 && kb * 2 + 3 <= kVectorRegisters;
  p.kb = kb;
  p.cb = two ? 2 : 1;
  p.fn = kb == 8 ? (two ? &planarBlock<8, 2> : &planarBlock<8, 1>)
       : kb == 4 ? (two ? &planarBlock<4, 2> : &planarBlock<4, 1>)
                 : (two ? &planarBlock<1, 2> : &planarBlock<1, 1>);
  return p;
}

// Weights of a layer in planar order: per block of KB output channels, [Cin][K][K][KB].
void packPlanar(const EonssLayer& L, int kb, std::vector<float>& packed) {
  const int Cin = L.inChannels, Cout = L.outChannels, K = L.kernel;
  packed.resize(size_t(Cout) * Cin * K * K);
  size_t i = 0;
  for (int o0 = 0; o0 < Cout; o0 += kb)
    for (int c = 0; c < Cin; ++c)
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx)
          for (int o = o0; o < o0 + kb; ++o) packed[i++] = L.weight[((size_t(o) * Cin + c) * K + ky) * K + kx];
}

// GDN over V pixels at once, in place on one CHW row (x[j * stride + lane]).
void gdnColumns(const EonssLayer& L, float* x, int64_t channelStride, int64_t width) {
  const int C = L.outChannels;
  for (int64_t q = 0; q < width; q += V) {
    vf sq[kMaxChannels];
    for (int j = 0; j < C; ++j) {
      const vf v = loadu(x + j * channelStride + q);
      sq[j] = v * v;
    }
    for (int i = 0; i < C; ++i) {
      vf norm = broadcast(L.gdnBeta.data() + i);
      const float* g = L.gdnGamma.data() + i;
      for (int j = 0; j < C; ++j) norm += broadcast(g + size_t(j) * C) * sq[j];
      storeu(x + i * channelStride + q, loadu(x + i * channelStride + q) / vsqrt(norm));
    }
  }
}

// Whether layer L (input H x W) runs planar: a spatial kernel on a map at least half a vector wide.
bool planarLayer(const EonssLayer& L, int64_t ow) { return L.kernel > 1 && L.inChannels <= 32 && 2 * ow >= V; }

// One planar layer: conv + bias (+ GDN) (+ 2x2 max pool), input rows from `value(c, y, x)` (an
// H x W map), output a CHW map `out` of outH x outW (pooled size when L.maxPool).
template <typename Value>
void runPlanar(const EonssLayer& L, const std::vector<float>& packed, const PlanarShape& shape, int64_t H, int64_t W,
               Value value, PlaneRing& ring, std::vector<float>& rowBuf, std::vector<float>& out, int64_t& outH, int64_t& outW) {
  const int Cin = L.inChannels, Cout = L.outChannels, K = L.kernel, s = L.stride, p = L.pad;
  const int64_t oh = convOutputSize(H, K, s, p), ow = convOutputSize(W, K, s, p);
  const int chunks = int((ow + V - 1) / V);
  const int64_t owPad = int64_t(chunks + shape.cb) * V;
  ring.reset(Cin, s, K, owPad + (K - 1) / s + 1);
  int64_t tapOffset[kMaxKernelSide];
  for (int kx = 0; kx < K; ++kx) tapOffset[kx] = int64_t(kx % s) * ring.qw + kx / s;
  const int64_t channelFloats = int64_t(s) * ring.qw;
  const int rowsPerStep = L.maxPool ? 2 : 1;
  rowBuf.assign(size_t(rowsPerStep) * Cout * owPad, 0.f);
  outH = L.maxPool ? oh / 2 : oh;
  outW = L.maxPool ? ow / 2 : ow;
  out.resize(size_t(Cout) * outH * outW);
  const float* rows[kMaxKernelSide];
  vf acc[8 * 2];
  for (int64_t oy0 = 0; oy0 + rowsPerStep <= oh || (!L.maxPool && oy0 < oh); oy0 += rowsPerStep) {
    for (int r = 0; r < rowsPerStep; ++r) {
      const int64_t oy = oy0 + r;
      for (int ky = 0; ky < K; ++ky) {
        const int64_t y = oy * s + ky;
        const int slot = int(y % ring.slots);
        float* dst = ring.data.data() + slot * ring.slotFloats();
        if (ring.rowOfSlot[size_t(slot)] != y) {
          fillPlaneRow(ring, y, p, H, W, dst, value);
          ring.rowOfSlot[size_t(slot)] = y;
        }
        rows[ky] = dst;
      }
      float* conv = rowBuf.data() + size_t(r) * Cout * owPad;  // [Cout][owPad]
      for (int o0 = 0; o0 < Cout; o0 += shape.kb) {
        const float* w = packed.data() + size_t(o0) * Cin * K * K;
        for (int ch = 0; ch < chunks; ch += shape.cb) {
          shape.fn(rows, tapOffset, Cin, K, channelFloats, w, int64_t(ch) * V, acc);
          for (int kb = 0; kb < shape.kb; ++kb)
            for (int cb = 0; cb < shape.cb; ++cb)
              storeu(conv + size_t(o0 + kb) * owPad + (ch + cb) * V, acc[kb * shape.cb + cb] + broadcast(L.bias.data() + o0 + kb));
        }
      }
      if (L.gdn) gdnColumns(L, conv, owPad, ow);
    }
    if (L.maxPool) {
      const int64_t py = oy0 / 2;
      for (int o = 0; o < Cout; ++o) {
        const float* a = rowBuf.data() + size_t(o) * owPad;
        const float* b = a + size_t(Cout) * owPad;
        float* dst = out.data() + (size_t(o) * outH + py) * outW;
        for (int64_t x = 0; x < outW; ++x)
          dst[x] = std::max(std::max(a[2 * x], a[2 * x + 1]), std::max(b[2 * x], b[2 * x + 1]));
      }
    } else {
      for (int o = 0; o < Cout; ++o)
        std::copy_n(rowBuf.data() + size_t(o) * owPad, ow, out.data() + (size_t(o) * outH + oy0) * outW);
    }
  }
}

// What every patch of a sweep shares: which leading layers run planar, with their packed weights.
struct EonssPlan {
  size_t planarLayers = 0;
  std::vector<PlanarShape> shapes;
  std::vector<std::vector<float>> packed;
};

EonssPlan makeEonssPlan(const Model& m, int64_t pw, int64_t ph) {
  EonssPlan plan;
  int64_t H = ph, W = pw;
  for (const EonssLayer& L : m.eonss) {
    const int64_t oh = convOutputSize(H, L.kernel, L.stride, L.pad), ow = convOutputSize(W, L.kernel, L.stride, L.pad);
    if (!planarLayer(L, ow)) break;
    const PlanarShape shape = planarShape(L.outChannels, int((ow + V - 1) / V));
    plan.shapes.push_back(shape);
    plan.packed.emplace_back();
    packPlanar(L, shape.kb, plan.packed.back());
    ++plan.planarLayers;
    H = L.maxPool ? oh / 2 : oh;
    W = L.maxPool ? ow / 2 : ow;
  }
  return plan;
}

thread_local std::vector<float> tlPadded, tlMap, tlMapNext, tlRowBuf;
thread_local PlaneRing tlRing;

float eonssPatch(const Model& m, const Region& r, int64_t ox, int64_t oy, int64_t pw, int64_t ph, const EonssPlan& plan) {
  std::vector<float>& in = tlActivations;
  std::vector<float>& out = tlConvOut;
  std::vector<float>& padded = tlPadded;
  int64_t H = ph, W = pw;
  // The planar prefix (CHW maps), then the rest channel-last.
  std::vector<float>& map = tlMap;
  std::vector<float>& next = tlMapNext;
  for (size_t li = 0; li < plan.planarLayers; ++li) {
    const EonssLayer& L = m.eonss[li];
    int64_t oh = 0, ow = 0;
    if (li == 0) {
      const uint8_t* base = r.pixels + oy * r.rowStride + ox * 3;
      const int64_t rowStride = r.rowStride;
      auto value = [&](int c, int64_t y, int64_t x) { return m.normalizeTable[c][base[y * rowStride + x * 3 + c]]; };
      runPlanar(L, plan.packed[li], plan.shapes[li], H, W, value, tlRing, tlRowBuf, next, oh, ow);
    } else {
      const float* src = map.data();
      const int64_t h = H, w = W;
      auto value = [src, h, w](int c, int64_t y, int64_t x) { return src[(c * h + y) * w + x]; };
      runPlanar(L, plan.packed[li], plan.shapes[li], H, W, value, tlRing, tlRowBuf, next, oh, ow);
    }
    map.swap(next);
    H = oh;
    W = ow;
  }
  bool first = plan.planarLayers == 0;
  if (!first) {
    const int C = m.eonss[plan.planarLayers - 1].outChannels;
    in.resize(size_t(H) * W * C);
    for (int c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) in[(size_t(y) * W + x) * C + c] = map[(size_t(c) * H + y) * W + x];
  }
  for (size_t li = plan.planarLayers; li < m.eonss.size(); ++li) {
    const EonssLayer& L = m.eonss[li];
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
  const EonssPlan plan = makeEonssPlan(m, g.patchWidth, g.patchHeight);
  for (int64_t row = rowBegin; row < rowEnd; ++row)
    for (int64_t col = 0; col < g.columns; ++col) {
      const int64_t idx = row * g.columns + col;
      scores[idx] = (g.skip && g.skip[idx])
                        ? std::numeric_limits<float>::quiet_NaN()
                        : eonssPatch(m, r, col * g.stride, row * g.stride, g.patchWidth, g.patchHeight, plan);
    }
}

}  // namespace FQA_ISA
}  // namespace fqa
