// Optimized FocusLiteNN sweep (tested against focusliteReferenceScore in reference.cpp).
//
// Layout: the rows of the region a band of patches needs are converted once into normalized
// float planes, split by the conv stride s into s "phase" planes per channel
// (plane[c][phase][row][q] = pixel at x = s*q + phase - pad). Then for any patch origin and tap,
// the inputs of V consecutive conv outputs are V consecutive floats: stride-5 convolutions need
// no gathers, and the conversion is shared by every patch that overlaps those pixels.
//
// Zero padding belongs to the patch, not the region: a tap that falls outside its patch reads
// zero even where the region has pixels. Rows handle it by narrowing the ky range; columns by
// masking the affected lanes of the few edge chunks.
//
// With overlapping patches (stride < patch, stride a multiple of s) the conv map is computed
// once per band over the whole region and each patch takes the min over its window; only the
// patch-border outputs that touch padding are recomputed (rows) or corrected (columns).
#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace fqa {
namespace FQA_ISA {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kMaxChunkBlock = 8;
constexpr int kMaxKernel = 31;

struct Planes {
  int stride = 1;
  int64_t rows = 0, width = 0;
  int64_t y0 = 0;  // region row of plane row 0 (negative above the region)
  std::vector<float> data;
  float* row(int c, int phase, int64_t r) {
    return data.data() + ((int64_t(c) * stride + phase) * rows + r) * width;
  }
};

// Converts region rows [y0, y0 + rows) into phase planes; outside the region reads zero.
void buildPlanes(const Model& m, const Region& r, int64_t y0, int64_t rows, int64_t width, Planes& P) {
  const int s = m.convStride, pad = m.convPad;
  P.stride = s;
  P.rows = rows;
  P.width = width;
  P.y0 = y0;
  P.data.resize(size_t(3) * s * rows * width);
  for (int64_t rr = 0; rr < rows; ++rr) {
    const int64_t y = y0 + rr;
    const bool inside = y >= 0 && y < r.height;
    const uint8_t* src = inside ? r.pixels + y * r.rowStride : nullptr;
    for (int phase = 0; phase < s; ++phase) {
      // q covers x = s*q + phase - pad; the in-region q range is [qa, qb).
      const int64_t first = pad - phase;  // x + pad - phase must be >= 0 ... solve s*q >= first
      int64_t qa = first <= 0 ? 0 : (first + s - 1) / s;
      int64_t qb = (r.width - 1 + pad - phase) < 0 ? 0 : (r.width - 1 + pad - phase) / s + 1;
      qa = std::min(qa, width);
      qb = std::max(qa, std::min(qb, width));
      if (!inside) qb = qa;
      for (int c = 0; c < 3; ++c) {
        float* dst = P.row(c, phase, rr);
        const float* table = m.normalizeTable[c].data();
        std::fill(dst, dst + qa, 0.f);
        if (qb > qa) {
          const uint8_t* p = src + 3 * (s * qa + phase - pad) + c;
          const int64_t step = 3 * int64_t(s);
          for (int64_t q = qa; q < qb; ++q, p += step) dst[q] = table[*p];
        }
        std::fill(dst + qb, dst + width, 0.f);
      }
    }
  }
}

// What one block of KB kernels x CB chunks of one output row needs.
struct BlockArgs {
  float* planes;              // Planes::data
  int64_t channelStride;      // floats between channels (s * rows * width)
  int64_t rowStride;          // floats between plane rows
  const int64_t* tapOffset;   // per kx: phase * rows * width + q offset of the first chunk
  int K;
  int ky0, ky1;               // taps that stay inside the patch for this output row
  int64_t rowBase;            // plane row of ky = 0
  const float* weights;       // [3][K][K][KB]
  const vi* masks;            // [CB][K] lane masks, only read when masked
};

// The innermost kernel: KB*CB vector accumulators live in registers for all 3*K*K taps.
template <int KB, int CB, bool MASKED>
void convBlock(const BlockArgs& a, vf* out) {
  vf acc[KB][CB];
  for (int kb = 0; kb < KB; ++kb)
    for (int cb = 0; cb < CB; ++cb) acc[kb][cb] = vf{};
  const int K = a.K;
  for (int c = 0; c < 3; ++c) {
    for (int ky = a.ky0; ky < a.ky1; ++ky) {
      const float* rowp = a.planes + c * a.channelStride + (a.rowBase + ky) * a.rowStride;
      const float* w = a.weights + (size_t(c * K + ky) * K) * KB;
      for (int kx = 0; kx < K; ++kx) {
        const float* src = rowp + a.tapOffset[kx];
        vf v[CB];
#pragma GCC unroll 8
        for (int cb = 0; cb < CB; ++cb) {
          v[cb] = loadu(src + cb * V);
          if (MASKED) v[cb] = vand(v[cb], a.masks[cb * K + kx]);
        }
#pragma GCC unroll 10
        for (int kb = 0; kb < KB; ++kb) {
          const vf wv = splat(w[kx * KB + kb]);
#pragma GCC unroll 8
          for (int cb = 0; cb < CB; ++cb) acc[kb][cb] += wv * v[cb];
        }
      }
    }
  }
  for (int kb = 0; kb < KB; ++kb)
    for (int cb = 0; cb < CB; ++cb) out[kb * CB + cb] = acc[kb][cb];
}

using BlockFn = void (*)(const BlockArgs&, vf*);

constexpr int kBlockKernels[] = {1, 2, 4, 5, 10};

template <int KB, int CB>
constexpr BlockFn pick(bool masked) {
  return masked ? &convBlock<KB, CB, true> : &convBlock<KB, CB, false>;
}

template <int KB>
BlockFn blockFor(int cb, bool masked) {
  switch (cb) {
    case 1: return pick<KB, 1>(masked);
    case 2: return (KB * 2 <= 24) ? pick<KB, (KB * 2 <= 24 ? 2 : 1)>(masked) : nullptr;
    case 3: return (KB * 3 <= 24) ? pick<KB, (KB * 3 <= 24 ? 3 : 1)>(masked) : nullptr;
    case 4: return (KB * 4 <= 24) ? pick<KB, (KB * 4 <= 24 ? 4 : 1)>(masked) : nullptr;
    case 5: return (KB * 5 <= 24) ? pick<KB, (KB * 5 <= 24 ? 5 : 1)>(masked) : nullptr;
    case 6: return (KB * 6 <= 24) ? pick<KB, (KB * 6 <= 24 ? 6 : 1)>(masked) : nullptr;
    case 7: return (KB * 7 <= 24) ? pick<KB, (KB * 7 <= 24 ? 7 : 1)>(masked) : nullptr;
    case 8: return (KB * 8 <= 24) ? pick<KB, (KB * 8 <= 24 ? 8 : 1)>(masked) : nullptr;
  }
  return nullptr;
}

BlockFn blockFn(int kb, int cb, bool masked) {
  switch (kb) {
    case 1: return blockFor<1>(cb, masked);
    case 2: return blockFor<2>(cb, masked);
    case 4: return blockFor<4>(cb, masked);
    case 5: return blockFor<5>(cb, masked);
    case 10: return blockFor<10>(cb, masked);
  }
  return nullptr;
}

// Everything about one patch geometry that does not depend on the patch's position.
struct Plan {
  int K = 7, s = 5, pad = 1, kernels = 1;
  int64_t pw = 0, ph = 0, outW = 0, outH = 0;
  int chunks = 0;          // ceil(outW / V)
  int kernelBlock = 1;     // KB
  int chunkBlock = 1;      // CB upper bound
  std::vector<float> packed;        // per kernel block: [3][K][K][KB]
  std::vector<vi> masks;            // [chunk][kx] lanes whose tap stays inside the patch
  std::vector<uint8_t> chunkMasked; // chunk needs masks
  vi tailValid;                     // lanes of the last chunk that are real outputs
  // Rows/columns whose taps all stay inside the patch: [rowA, rowB) x [colA, colB).
  int64_t rowA = 0, rowB = 0, colA = 0, colB = 0;
};

Plan makePlan(const Model& m, int64_t pw, int64_t ph) {
  Plan p;
  p.K = m.convKernel;
  p.s = m.convStride;
  p.pad = m.convPad;
  p.kernels = m.kernels;
  p.pw = pw;
  p.ph = ph;
  p.outW = convOutputSize(pw, p.K, p.s, p.pad);
  p.outH = convOutputSize(ph, p.K, p.s, p.pad);
  p.chunks = int((p.outW + V - 1) / V);
  for (int kb : kBlockKernels)
    if (m.kernels % kb == 0 && kb <= kAccumulatorBudget) p.kernelBlock = kb;
  p.chunkBlock = std::max(1, std::min(kMaxChunkBlock, kAccumulatorBudget / p.kernelBlock));
  const int K = p.K, KB = p.kernelBlock;
  p.packed.resize(size_t(m.kernels) * 3 * K * K);
  for (int k0 = 0; k0 < m.kernels; k0 += KB)
    for (int c = 0; c < 3; ++c)
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx)
          for (int kb = 0; kb < KB; ++kb)
            p.packed[size_t(k0) * 3 * K * K + ((size_t(c) * K + ky) * K + kx) * KB + kb] =
                m.convWeight[((size_t(k0 + kb) * 3 + c) * K + ky) * K + kx];
  p.masks.resize(size_t(p.chunks) * K);
  p.chunkMasked.assign(p.chunks, 0);
  for (int ch = 0; ch < p.chunks; ++ch)
    for (int kx = 0; kx < K; ++kx) {
      vi mask;
      for (int lane = 0; lane < V; ++lane) {
        const int64_t x = (int64_t(ch) * V + lane) * p.s - p.pad + kx;
        const bool inside = x >= 0 && x < pw;
        mask[lane] = inside ? -1 : 0;
        if (!inside && int64_t(ch) * V + lane < p.outW) p.chunkMasked[ch] = 1;
      }
      p.masks[size_t(ch) * K + kx] = mask;
    }
  for (int lane = 0; lane < V; ++lane) p.tailValid[lane] = (int64_t(p.chunks - 1) * V + lane < p.outW) ? -1 : 0;
  auto firstInside = [&](int64_t) { return (int64_t(p.pad) + p.s - 1) / p.s; };
  p.rowA = std::min(firstInside(0), p.outH);
  p.colA = std::min(firstInside(0), p.outW);
  // last output o with o*s - pad + K <= size
  p.rowB = std::max(p.rowA, std::min(p.outH, ph + p.pad - K < 0 ? 0 : (ph + p.pad - K) / p.s + 1));
  p.colB = std::max(p.colA, std::min(p.outW, pw + p.pad - K < 0 ? 0 : (pw + p.pad - K) / p.s + 1));
  return p;
}

// Min over output rows [i0, i1) of the patch whose top-left pixel is (ox, oy), all kernels,
// computed directly from the planes with patch zero-padding. mins[k] is lowered, not reset.
void windowRowsMin(const Plan& p, Planes& P, int64_t ox, int64_t oy, int64_t i0, int64_t i1, float* mins) {
  const int K = p.K, s = p.s, KB = p.kernelBlock;
  int64_t tapBase[kMaxKernel], tapOffset[kMaxKernel];
  for (int kx = 0; kx < K; ++kx) {
    const int64_t t = ox + kx;
    tapBase[kx] = int64_t(t % s) * P.rows * P.width + t / s;
  }
  vf acc[kMaxChunkBlock * 24];
  BlockArgs a;
  a.planes = P.data.data();
  a.channelStride = int64_t(s) * P.rows * P.width;
  a.rowStride = P.width;
  a.tapOffset = tapOffset;
  a.K = K;
  for (int k0 = 0; k0 < p.kernels; k0 += KB) {
    vf mn[10];
    for (int kb = 0; kb < KB; ++kb) mn[kb] = splat(kInf);
    a.weights = p.packed.data() + size_t(k0) * 3 * K * K;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t top = i * s - p.pad;  // patch-local row of ky = 0
      a.ky0 = int(std::max<int64_t>(0, -top));
      a.ky1 = int(std::min<int64_t>(K, p.ph - top));
      a.rowBase = oy + top - P.y0;
      const int blocks = (p.chunks + p.chunkBlock - 1) / p.chunkBlock;
      const int perBlock = (p.chunks + blocks - 1) / blocks;
      for (int ch0 = 0; ch0 < p.chunks; ch0 += perBlock) {
        const int cb = std::min(perBlock, p.chunks - ch0);
        bool masked = false;
        for (int c = ch0; c < ch0 + cb; ++c) masked |= p.chunkMasked[c] != 0;
        for (int kx = 0; kx < K; ++kx) tapOffset[kx] = tapBase[kx] + int64_t(ch0) * V;
        a.masks = p.masks.data() + size_t(ch0) * K;
        blockFn(KB, cb, masked)(a, acc);
        for (int kb = 0; kb < KB; ++kb)
          for (int c = 0; c < cb; ++c) {
            vf v = acc[kb * cb + c];
            if (ch0 + c == p.chunks - 1) v = vselect(p.tailValid, v, splat(kInf));
            mn[kb] = vmin(mn[kb], v);
          }
      }
    }
    for (int kb = 0; kb < KB; ++kb) mins[k0 + kb] = std::min(mins[k0 + kb], hmin(mn[kb]));
  }
}

float finishScore(const Model& m, const float* mins) {
  if (m.kernels == 1) return mins[0] + m.convBias[0];
  double score = m.fcBias;
  for (int k = 0; k < m.kernels; ++k) score += double(m.fcWeight[k]) * double(mins[k] + m.convBias[k]);
  return float(score);
}

thread_local Planes tlPlanes;
thread_local std::vector<float> tlMap;

}  // namespace

void focusliteRows(const Model& m, const Region& r, const PatchGrid& g, int64_t rowBegin, int64_t rowEnd,
                   bool shareConvolution, float* scores) {
  const Plan p = makePlan(m, g.patchWidth, g.patchHeight);
  const int K = p.K, s = p.s, pad = p.pad;
  const bool shared = shareConvolution && canShareConvolution(m, g);
  const int64_t oyFirst = rowBegin * g.stride, oyLast = (rowEnd - 1) * g.stride;
  const int64_t lastOx = (g.columns - 1) * g.stride;
  // Map columns (shared path) or the last patch's reads decide how wide the planes must be.
  const int64_t mapCols = lastOx / s + p.outW;
  const int64_t mapChunks = (mapCols + V - 1) / V;
  const int64_t width = std::max((lastOx + K) / s + int64_t(p.chunks) * V, mapChunks * V + K / s) + 1;
  const int64_t y0 = oyFirst - pad;
  const int64_t planeRows = (oyLast - oyFirst) + (p.outH - 1) * s + K;
  Planes& P = tlPlanes;
  buildPlanes(m, r, y0, planeRows, width, P);

  std::vector<float> mins(m.kernels);
  if (!shared) {
    for (int64_t row = rowBegin; row < rowEnd; ++row)
      for (int64_t col = 0; col < g.columns; ++col) {
        const int64_t idx = row * g.columns + col;
        if (g.skip && g.skip[idx]) {
          scores[idx] = std::numeric_limits<float>::quiet_NaN();
          continue;
        }
        std::fill(mins.begin(), mins.end(), kInf);
        windowRowsMin(p, P, col * g.stride, row * g.stride, 0, p.outH, mins.data());
        scores[idx] = finishScore(m, mins.data());
      }
    return;
  }

  // Shared conv map over the band: map[k][gi][gj] is the unpadded conv at region
  // (x = s*gj - pad, y = y0 + s*gi).
  const int64_t mapRows = (oyLast - oyFirst) / s + p.outH;
  const int64_t mapWidth = mapChunks * V;
  std::vector<float>& map = tlMap;
  map.resize(size_t(m.kernels) * mapRows * mapWidth);
  {
    const int KB = p.kernelBlock;
    int64_t tapOffset[kMaxKernel];
    vf acc[kMaxChunkBlock * 24];
    BlockArgs a;
    a.planes = P.data.data();
    a.channelStride = int64_t(s) * P.rows * P.width;
    a.rowStride = P.width;
    a.tapOffset = tapOffset;
    a.K = K;
    a.ky0 = 0;
    a.ky1 = K;
    a.masks = nullptr;
    const int cbMax = p.chunkBlock;
    for (int k0 = 0; k0 < m.kernels; k0 += KB) {
      a.weights = p.packed.data() + size_t(k0) * 3 * K * K;
      for (int64_t gi = 0; gi < mapRows; ++gi) {
        a.rowBase = gi * s;
        for (int64_t ch0 = 0; ch0 < mapChunks; ch0 += cbMax) {
          const int cb = int(std::min<int64_t>(cbMax, mapChunks - ch0));
          for (int kx = 0; kx < K; ++kx)
            tapOffset[kx] = int64_t(kx % s) * P.rows * P.width + kx / s + ch0 * V;
          blockFn(KB, cb, false)(a, acc);
          for (int kb = 0; kb < KB; ++kb)
            for (int c = 0; c < cb; ++c)
              storeu(map.data() + (size_t(k0 + kb) * mapRows + gi) * mapWidth + (ch0 + c) * V, acc[kb * cb + c]);
        }
      }
    }
  }

  for (int64_t row = rowBegin; row < rowEnd; ++row)
    for (int64_t col = 0; col < g.columns; ++col) {
      const int64_t idx = row * g.columns + col;
      if (g.skip && g.skip[idx]) {
        scores[idx] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      const int64_t ox = col * g.stride, oy = row * g.stride;
      const int64_t gi0 = (oy - oyFirst) / s, gj0 = ox / s;
      std::fill(mins.begin(), mins.end(), kInf);
      // Border rows touch the patch's padding: compute them directly.
      windowRowsMin(p, P, ox, oy, 0, p.rowA, mins.data());
      windowRowsMin(p, P, ox, oy, p.rowB, p.outH, mins.data());
      for (int k = 0; k < m.kernels; ++k) {
        float mn = mins[k];
        for (int64_t i = p.rowA; i < p.rowB; ++i) {
          const float* mrow = map.data() + (size_t(k) * mapRows + gi0 + i) * mapWidth + gj0;
          for (int64_t j = p.colA; j < p.colB; ++j) mn = std::min(mn, mrow[j]);
          // Border columns: the map read the neighbour's pixels where the patch has zero padding;
          // subtract those taps.
          auto borderColumn = [&](int64_t j) {
            double v = mrow[j];
            for (int kx = 0; kx < K; ++kx) {
              const int64_t x = j * s - pad + kx;
              if (x >= 0 && x < p.pw) continue;
              const int64_t t = ox + kx;
              for (int c = 0; c < 3; ++c)
                for (int ky = 0; ky < K; ++ky)
                  v -= double(m.convWeight[((size_t(k) * 3 + c) * K + ky) * K + kx]) *
                       P.row(c, int(t % s), oy - pad + i * s + ky - P.y0)[t / s + j];
            }
            mn = std::min(mn, float(v));
          };
          for (int64_t j = 0; j < p.colA; ++j) borderColumn(j);
          for (int64_t j = p.colB; j < p.outW; ++j) borderColumn(j);
        }
        mins[k] = mn;
      }
      scores[idx] = finishScore(m, mins.data());
    }
}

// FMA throughput of one core: 2 FLOPs x V lanes x independent accumulators, no memory traffic.
double fmaPeakGflops(double seconds) {
  constexpr int N = kAccumulatorBudget;
  vf acc[N];
  for (int i = 0; i < N; ++i) acc[i] = splat(float(i) * 1e-3f);
  const vf a = splat(0.999999f), b = splat(1e-7f);
  int64_t iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (int rep = 0; rep < 4096; ++rep) {
#pragma GCC unroll 24
      for (int i = 0; i < N; ++i) acc[i] = acc[i] * a + b;
    }
    iterations += 4096;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  float sink = 0;
  for (int i = 0; i < N; ++i) sink += acc[i][0];
  asm volatile("" ::"r"(sink));
  return double(iterations) * N * V * 2 / elapsed / 1e9;
}

}  // namespace FQA_ISA
}  // namespace fqa
