// Optimized FocusLiteNN sweep (tested against focusliteReferenceScore in reference.cpp).
//
// Layout: image rows are split once by the conv stride s into s "phase" segments per channel,
// still as u8 (row[c][phase][q] = pixel at x = s*q + phase - pad). Then for any patch origin and
// tap, the inputs of V consecutive conv outputs are V consecutive bytes: stride-5 convolutions
// need no gathers, and the split is shared by every patch on that row. Rows live in a small ring
// (RowRing) consumed top to bottom. The conv widens the bytes straight into its FMA operands
// (widenBytes) and its weights carry the normalization: w * ((u/255 - mean) / std) =
// (w / (255 std)) * u + w * (-mean / std), the second term a per-output constant added once (it
// depends only on which taps fall inside the patch). Bytes instead of floats make the ring 4x
// smaller: the conv's inputs stay in L1 and the split writes a quarter of the bytes.
//
// Zero padding belongs to the patch, not the region: a tap that falls outside its patch reads
// zero even where the region has pixels. Rows handle it by narrowing the ky range; columns by
// masking the affected lanes of the few edge chunks.
//
// Where the CPU has AVX-512 VNNI (and VBMI), kernels up to 8x8 that do not share a conv map take
// an integer conv instead (see "Integer conv" below): rows split by channel only, taps lined up
// by byte permutes, u8 x s8 dot products on three byte digits of each weight.
//
// With overlapping patches (stride < patch, stride a multiple of s) the conv map is computed
// once per band over the whole region and each patch takes the min over its window; only the
// patch-border outputs that touch padding are recomputed (rows) or corrected (columns).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace fqa {
namespace FQA_ISA {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Block size that splits `count` items evenly into the fewest blocks of at most `most`.
constexpr int evenBlock(int count, int most) {
  const int blocks = (count + most - 1) / most;
  return (count + blocks - 1) / blocks;
}
constexpr int kMaxChunkBlock = 8;
constexpr int kMaxKernel = 31;
constexpr int kMaxKernels = 256;  // FocusLiteNN kernels (finalizeModel enforces it)
// Output rows one single-kernel block computes together at conv stride 1 (convRowsBlock): four on
// AVX-512 (4 rows x up to 6 chunks of accumulators fit its 32 registers), two on the 16-register ISAs.
constexpr int kRowBlock = FQA_VLEN == 16 ? 4 : 2;

// Byte shuffles (AVX-512 VBMI): 16 output columns of every (channel, phase) stream from one load
// of the 16*s pixels under them. vpermt2b picks any byte of two registers, so the 48*s <= 256
// bytes in four registers give each stream its 16 bytes in two shuffles and a blend, four streams
// per 64-byte result, each stored as one 16-byte lane. This replaces ~1 cycle per value of scalar
// byte loads and strided stores, which bound the 235 px sweep.
[[maybe_unused]] constexpr int kShuffleMaxStride = 5;  // 48 * s bytes fit four 64-byte registers
#if FQA_VLEN == 16 && defined(__x86_64__)
#define FQA_HAVE_BYTE_SHUFFLES 1
struct ShufflePlan {
  int s = 0, groups = 0;
  alignas(64) uint8_t index[4][64];  // per group of 4 streams: source byte of each output byte
  uint64_t fromHigh[4];               // output bytes taken from registers 2-3
};

void makeShufflePlan(int s, ShufflePlan& plan) {
  plan.s = s;
  const int streams = 3 * s;
  plan.groups = (streams + 3) / 4;
  for (int gI = 0; gI < plan.groups; ++gI) {
    plan.fromHigh[gI] = 0;
    for (int b = 0; b < 64; ++b) {
      const int stream = std::min(streams - 1, 4 * gI + b / 16), lane = b % 16;
      const int c = stream / s, phase = stream % s;  // streams ordered like the ring: [c][phase]
      const int byte = 3 * (s * lane + phase) + c;
      plan.index[gI][b] = uint8_t(byte & 127);
      if (byte >= 128) plan.fromHigh[gI] |= uint64_t(1) << b;
    }
  }
}

// Columns [q0, q1) (q1 - q0 a multiple of 16) of every stream; src points at pixel x0 + s*q0. S is
// the conv stride, a template argument so the stream loops unroll and the constants stay in registers.
// GCC 12 reports the intrinsics' own undefined pass-through operands as maybe-uninitialized.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <int S>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void shuffleColumns(const ShufflePlan& plan, const uint8_t* src,
                                                                             uint8_t* dst, int64_t q0, int64_t q1,
                                                                             int64_t streamStride) {
  constexpr int kBytes = 48 * S, kStreams = 3 * S, kGroups = (kStreams + 3) / 4;
  __m512i idx[kGroups];
  for (int gI = 0; gI < kGroups; ++gI) idx[gI] = _mm512_load_si512(plan.index[gI]);
  for (int64_t q = q0; q < q1; q += 16, src += kBytes) {
    __m512i reg[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      constexpr int kFull = kBytes / 64;
      // A masked load never touches the bytes past the 16*S pixels (they may lie past the buffer).
      if (i < kFull) reg[i] = _mm512_loadu_si512(src + 64 * i);
      else if (i == kFull && kBytes % 64) reg[i] = _mm512_maskz_loadu_epi8(~uint64_t(0) >> ((64 - kBytes % 64) & 63), src + 64 * i);
      else reg[i] = _mm512_setzero_si512();
    }
#pragma GCC unroll 4
    for (int gI = 0; gI < kGroups; ++gI) {
      __m512i bytes = _mm512_permutex2var_epi8(reg[0], idx[gI], reg[1]);
      if (kBytes > 128) bytes = _mm512_mask_blend_epi8(plan.fromHigh[gI], bytes, _mm512_permutex2var_epi8(reg[2], idx[gI], reg[3]));
      // Lane k of the result is stream 4*gI + k (the extract's lane index must be a constant).
      auto emit = [&](auto lane) __attribute__((always_inline)) {
        constexpr int k = decltype(lane)::value;
        const int stream = 4 * gI + k;
        if (stream >= kStreams) return;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + stream * streamStride + q), _mm512_extracti32x4_epi32(bytes, k));
      };
      emit(std::integral_constant<int, 0>{});
      emit(std::integral_constant<int, 1>{});
      emit(std::integral_constant<int, 2>{});
      emit(std::integral_constant<int, 3>{});
    }
  }
}
#pragma GCC diagnostic pop

// Channels only (stride 1, the integer conv's rows), 64 pixels at a time: three loads, two
// permutes and a blend per channel, three full-line stores (the 16-pixel shuffles above store
// twelve quarter lines for the same pixels). Columns [q0, q1), q1 - q0 a multiple of 64.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void splitChannels(const uint8_t* src, uint8_t* dst, int64_t q0, int64_t q1,
                                                                          int64_t channelStride) {
  // Byte i of channel c is byte 3i + c of the 192: from the first two registers below 128, else
  // from the last two.
  struct Indexes {
    alignas(64) uint8_t low[3][64], high[3][64];
    uint64_t fromHigh[3] = {0, 0, 0};
    Indexes() {
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 64; ++i) {
          const int byte = 3 * i + c;
          low[c][i] = uint8_t(byte & 127);
          high[c][i] = uint8_t((byte - 64) & 127);
          if (byte >= 128) fromHigh[c] |= uint64_t(1) << i;
        }
    }
  };
  static const Indexes indexes;
  const uint64_t* fromHigh = indexes.fromHigh;
  __m512i lowIndex[3], highIndex[3];
  for (int c = 0; c < 3; ++c) {
    lowIndex[c] = _mm512_load_si512(indexes.low[c]);
    highIndex[c] = _mm512_load_si512(indexes.high[c]);
  }
  for (int64_t q = q0; q < q1; q += 64, src += 192) {
    const __m512i a = _mm512_loadu_si512(src), b = _mm512_loadu_si512(src + 64), c2 = _mm512_loadu_si512(src + 128);
#pragma GCC unroll 3
    for (int c = 0; c < 3; ++c) {
      const __m512i bytes = _mm512_mask_blend_epi8(fromHigh[c], _mm512_permutex2var_epi8(a, lowIndex[c], b),
                                                   _mm512_permutex2var_epi8(b, highIndex[c], c2));
      _mm512_storeu_si512(dst + c * channelStride + q, bytes);
    }
  }
}

void shuffleColumns(const ShufflePlan& plan, const uint8_t* src, uint8_t* dst, int64_t q0, int64_t q1, int64_t streamStride) {
  switch (plan.s) {
    case 1: return shuffleColumns<1>(plan, src, dst, q0, q1, streamStride);
    case 2: return shuffleColumns<2>(plan, src, dst, q0, q1, streamStride);
    case 3: return shuffleColumns<3>(plan, src, dst, q0, q1, streamStride);
    case 4: return shuffleColumns<4>(plan, src, dst, q0, q1, streamStride);
    case 5: return shuffleColumns<5>(plan, src, dst, q0, q1, streamStride);
  }
}
#endif

// Byte transposes (AVX2, and AVX-512 without VBMI): the 3*s bytes of one stride step (s pixels x
// RGB) hold one value of every (channel, phase) stream, so 16 steps loaded as 16 rows of 16 bytes
// and transposed with byte unpacks give each stream its 16 bytes, stored as they are.
#if (FQA_VLEN == 8 && defined(__AVX2__)) || (FQA_VLEN == 16 && defined(__AVX512F__))
#define FQA_HAVE_BYTE_TRANSPOSE 1

// One round of the 16 x 16 byte transpose: rows i and i + 8 interleave into rows 2i and 2i + 1.
// Four rounds transpose (each moves one bit of the byte index from the row to the column).
inline __attribute__((always_inline)) void unpackRound(const __m128i (&in)[16], __m128i (&out)[16]) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    out[2 * i] = _mm_unpacklo_epi8(in[i], in[i + 8]);
    out[2 * i + 1] = _mm_unpackhi_epi8(in[i], in[i + 8]);
  }
}

// Columns [q0, q1) (q1 - q0 a multiple of 16); src points at pixel x0 + s*q0. Each row load reads
// 16 bytes from the start of a step: up to 16 - 3*s bytes past the 16 steps (the caller keeps
// them inside the region).
template <int S>
void transposeColumns(const uint8_t* src, uint8_t* dst, int64_t q0, int64_t q1, int64_t streamStride) {
  constexpr int kStep = 3 * S;
  for (int64_t q = q0; q < q1; q += 16, src += 16 * kStep) {
    __m128i a[16], b[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) a[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * kStep));
    unpackRound(a, b);
    unpackRound(b, a);
    unpackRound(a, b);
    unpackRound(b, a);
    // a[j] now holds byte j of every step: pixel phase j / 3, channel j % 3, stream c*S + phase.
#pragma GCC unroll 15
    for (int j = 0; j < kStep; ++j) {
      const int phase = j / 3, c = j % 3;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (c * S + phase) * streamStride + q), a[j]);
    }
  }
}

void transposeColumns(int s, const uint8_t* src, uint8_t* dst, int64_t q0, int64_t q1, int64_t streamStride) {
  switch (s) {
    case 1: return transposeColumns<1>(src, dst, q0, q1, streamStride);
    case 2: return transposeColumns<2>(src, dst, q0, q1, streamStride);
    case 3: return transposeColumns<3>(src, dst, q0, q1, streamStride);
    case 4: return transposeColumns<4>(src, dst, q0, q1, streamStride);
    case 5: return transposeColumns<5>(src, dst, q0, q1, streamStride);
  }
}
#endif

// How rows are split into (channel, phase) streams.
enum class RowSplit { Scalar, ByteShuffles, ByteTransposes };

bool envFlag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

// The fastest split this ISA's sweep can use on this CPU: VBMI byte shuffles (AVX-512 with VBMI),
// byte transposes (AVX2, AVX-512 without VBMI), else scalar. The tests force the lower ones on the
// same machine: FQA_DISABLE_VBMI=1 (AVX-512 transposes), FQA_DISABLE_BYTE_SHUFFLES=1 (scalar).
RowSplit rowSplit() {
  if (envFlag("FQA_DISABLE_BYTE_SHUFFLES")) return RowSplit::Scalar;
#if defined(FQA_HAVE_BYTE_SHUFFLES)
  __builtin_cpu_init();
  if (!envFlag("FQA_DISABLE_VBMI") && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw"))
    return RowSplit::ByteShuffles;
#endif
#if defined(FQA_HAVE_BYTE_TRANSPOSE)
  return RowSplit::ByteTransposes;  // these kernels only run where their ISA is
#else
  return RowSplit::Scalar;
#endif
}

// A ring of split image rows. Each slot holds one image row as bytes, split by channel and
// phase: slot[c][phase][q] = pixel at x = s*q + phase - pad (zero outside the region). Output
// rows are computed top to bottom, so only the K rows under the current output row are live:
// the working set stays in L1/L2 however large the region is, and each image row is split once
// per band.
class RowRing {
 public:
  static constexpr int64_t kRowSlack = 128;  // the integer conv loads 128 bytes from a chunk's first column

  // Rows hold region columns x = x0 + s*q + phase for q in [0, width).
  void reset(const Model& m, const Region& r, int64_t x0, int64_t width) {
    // An output row needs K consecutive image rows and the next one K rows s further down, so K
    // slots (y mod K) never evict a row still in use; kRowBlock output rows at stride 1 (one
    // kernel at 64 px) need K + kRowBlock - 1.
    reset(m.convStride, m.convKernel + kRowBlock - 1, r, x0, width);
  }
  // Rows split into `split` phases (1: channels only), `slots` rows live, `kRowSlack` readable
  // bytes past the last row.
  void reset(int split, int64_t slots, const Region& r, int64_t x0, int64_t width) {
    region_ = &r;
    s_ = split;
    x0_ = x0;
    width_ = width;
    slots_ = slots;
    slotBytes_ = int64_t(3) * s_ * width_;
    data_.resize(size_t(slots_ * slotBytes_ + kRowSlack));
    rowOfSlot_.assign(size_t(slots_), std::numeric_limits<int64_t>::min());
    split_ = s_ <= kShuffleMaxStride ? rowSplit() : RowSplit::Scalar;
#if defined(FQA_HAVE_BYTE_SHUFFLES)
    if (split_ == RowSplit::ByteShuffles) makeShufflePlan(s_, shufflePlan_);
#endif
  }
  int64_t channelStride() const { return int64_t(s_) * width_; }
  int64_t phaseStride() const { return width_; }

  // Pointer to image row y (any y; rows outside the region read zero), converting it if needed.
  const uint8_t* row(int64_t y) {
    const int64_t slot = ((y % slots_) + slots_) % slots_;
    uint8_t* dst = data_.data() + slot * slotBytes_;
    if (rowOfSlot_[size_t(slot)] != y) {
      convert(y, dst);
      rowOfSlot_[size_t(slot)] = y;
    }
    return dst;
  }

 private:
  __attribute__((noinline)) void convert(int64_t y, uint8_t* dst) {
    const Region& r = *region_;
    const int s = s_;
    const bool inside = y >= 0 && y < r.height;
    // Zero the q whose x falls outside the region (all of them outside the region's rows).
    for (int phase = 0; phase < s; ++phase) {
      const int64_t firstX = -x0_ - phase;  // q >= ceil(firstX / s)
      int64_t qa = firstX <= 0 ? 0 : (firstX + s - 1) / s;
      const int64_t lastX = r.width - 1 - x0_ - phase;  // q <= floor(lastX / s)
      int64_t qb = lastX < 0 ? 0 : lastX / s + 1;
      qa = std::min(qa, width_);
      qb = inside ? std::max(qa, std::min(qb, width_)) : qa;
      for (int c = 0; c < 3; ++c) {
        uint8_t* out = dst + (int64_t(c) * s + phase) * width_;
        std::fill(out, out + qa, uint8_t(0));
        std::fill(out + qb, out + width_, uint8_t(0));
      }
    }
    if (!inside) return;
    // Rows are consumed top to bottom; a patch-wide row is too short a stream for the hardware
    // prefetcher to learn, so fetch the row K below (needed a few output rows later) now.
    if (y + slots_ < r.height) {
      const uint8_t* ahead = r.pixels + (y + slots_) * r.rowStride;
      const int64_t from = 3 * std::max<int64_t>(0, x0_), to = 3 * std::min<int64_t>(r.width, x0_ + width_ * s);
      for (int64_t b = from; b < to; b += 64) __builtin_prefetch(ahead + b);
    }
    // Per (phase, channel): contiguous stores, byte loads at stride 3*s from a row that sits in
    // L1. (Scattering each pixel's 3 values to 3*s output streams was ~3x slower: stores to many
    // lines are what this conversion is bound by.)
    const uint8_t* src = r.pixels + y * r.rowStride;
    const int64_t step = 3 * int64_t(s);
    int64_t qa[kMaxKernel], qb[kMaxKernel];
    int64_t qA = 0, qB = width_;  // columns where every phase lies inside the region
    for (int phase = 0; phase < s; ++phase) {
      const int64_t firstX = -x0_ - phase;
      qa[phase] = std::min(width_, firstX <= 0 ? int64_t(0) : (firstX + s - 1) / s);
      const int64_t lastX = r.width - 1 - x0_ - phase;
      qb[phase] = std::max(qa[phase], std::min(width_, lastX < 0 ? int64_t(0) : lastX / s + 1));
      qA = std::max(qA, qa[phase]);
      qB = std::min(qB, qb[phase]);
    }
    int64_t qV = qA;  // [qA, qV) done with byte shuffles or transposes
    // The transpose reads 16 bytes from each step's start, up to 13 bytes (5 pixels) past the last
    // step: keep those inside the region's row.
    const int64_t qT = split_ == RowSplit::ByteTransposes ? std::max(qA, std::min(qB, (r.width - 6 - x0_) / s + 1)) : qB;
    if (split_ != RowSplit::Scalar && qT - qA >= 16) {
      qV = qA + (qT - qA) / 16 * 16;
#if defined(FQA_HAVE_BYTE_SHUFFLES)
      if (split_ == RowSplit::ByteShuffles) {
        const int64_t q64 = s == 1 ? qA + (qV - qA) / 64 * 64 : qA;
        splitChannels(src + 3 * (x0_ + qA), dst, qA, q64, width_);
        shuffleColumns(shufflePlan_, src + 3 * (x0_ + s * q64), dst, q64, qV, width_);
      }
#endif
#if defined(FQA_HAVE_BYTE_TRANSPOSE)
      if (split_ == RowSplit::ByteTransposes) transposeColumns(s, src + 3 * (x0_ + s * qA), dst, qA, qV, width_);
#endif
    }
    for (int phase = 0; phase < s; ++phase) {
      for (int c = 0; c < 3; ++c) {
        uint8_t* out = dst + (int64_t(c) * s + phase) * width_;
        auto scalar = [&](int64_t from, int64_t to) {
          const uint8_t* p = src + 3 * (x0_ + s * from + phase) + c;
          for (int64_t q = from; q < to; ++q, p += step) out[q] = *p;
        };
        scalar(qa[phase], std::max(qa[phase], std::min(qb[phase], qA)));
        scalar(std::max(qa[phase], qV), qb[phase]);
      }
    }
  }

  const Region* region_ = nullptr;
  int s_ = 1;
  int64_t x0_ = 0, width_ = 0, slots_ = 0, slotBytes_ = 0;
  std::vector<uint8_t> data_;
  std::vector<int64_t> rowOfSlot_;
  RowSplit split_ = RowSplit::Scalar;
#if defined(FQA_HAVE_BYTE_SHUFFLES)
  ShufflePlan shufflePlan_;
#endif
};

// What one block of KB kernels x CB chunks of one output row needs.
struct BlockArgs {
  const uint8_t* rows[kMaxKernel + kRowBlock - 1];  // ring row of each ky (only [ky0, ky1) are read; K + R - 1 for R rows at once)
  int64_t channelStride;          // bytes between channels within a ring row
  int64_t tapOffset[kMaxKernel];  // per kx: phase * phaseStride + q of the block's first lane
  int K;
  int ky0, ky1;                   // taps that stay inside the patch for this output row
  const float* weights;           // [3][K][K][KB]
  const vi* masks;                // [CB][K] lane masks, only read when masked
};

// The innermost kernel: KB*CB vector accumulators live in registers for all 3*K*K taps.
template <int KB, int CB, bool MASKED>
void convBlock(const BlockArgs& a, vf* out) {
  // Every loop over acc is fully unrolled so GCC keeps acc in registers (a rolled loop makes the
  // array addressable and every FMA then goes through the stack).
  vf acc[KB][CB];
  // Few accumulators (FocusLiteNN-1: one kernel x 3-4 chunks) wait on the FMA latency; a second
  // set for the odd kx taps doubles the chains in flight.
  constexpr bool kSplit = KB * CB < 8 && 2 * KB * CB <= kAccumulatorBudget;
  vf acc2[KB][CB];
#pragma GCC unroll 10
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int cb = 0; cb < CB; ++cb) acc[kb][cb] = acc2[kb][cb] = vf{};
  const int K = a.K;
  for (int c = 0; c < 3; ++c) {
    for (int ky = a.ky0; ky < a.ky1; ++ky) {
      const uint8_t* rowp = a.rows[ky] + c * a.channelStride;
      const float* w = a.weights + (size_t(c * K + ky) * K) * KB;
      // One tap into the accumulator set A. Keep the smaller of the two operand sets live (KB
      // weights or CB inputs) and stream the other, so KB*CB accumulators + min(KB, CB) + 1
      // registers suffice and nothing spills.
      auto tap = [&](int kx, vf(&A)[KB][CB]) __attribute__((always_inline)) {
        const uint8_t* src = rowp + a.tapOffset[kx];
        if constexpr (KB <= CB) {
          vf wv[KB];
#pragma GCC unroll 10
          for (int kb = 0; kb < KB; ++kb) wv[kb] = broadcast(w + kx * KB + kb);
#pragma GCC unroll 8
          for (int cb = 0; cb < CB; ++cb) {
            vf v = widenBytes(src + cb * V);
            if (MASKED) v = vand(v, a.masks[cb * K + kx]);
#pragma GCC unroll 10
            for (int kb = 0; kb < KB; ++kb) A[kb][cb] += wv[kb] * v;
          }
        } else {
          vf v[CB];
#pragma GCC unroll 8
          for (int cb = 0; cb < CB; ++cb) {
            v[cb] = widenBytes(src + cb * V);
            if (MASKED) v[cb] = vand(v[cb], a.masks[cb * K + kx]);
          }
#pragma GCC unroll 10
          for (int kb = 0; kb < KB; ++kb) {
            const vf wv = broadcast(w + kx * KB + kb);
#pragma GCC unroll 8
            for (int cb = 0; cb < CB; ++cb) A[kb][cb] += wv * v[cb];
          }
        }
      };
      int kx = 0;
      if constexpr (kSplit)
        for (; kx + 1 < K; kx += 2) {
          tap(kx, acc);
          tap(kx + 1, acc2);
        }
      for (; kx < K; ++kx) tap(kx, acc);
    }
  }
#pragma GCC unroll 10
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int cb = 0; cb < CB; ++cb) out[kb * CB + cb] = kSplit ? acc[kb][cb] + acc2[kb][cb] : acc[kb][cb];
}

using BlockFn = void (*)(const BlockArgs&, vf*);

// One kernel, R output rows at conv stride 1 with no padding rows (FocusLiteNN-1 at 64 px): image
// row t serves tap row t - r of output row r, so each input vector is widened once for up to R
// FMAs (one widen per FMA otherwise bounds the single-kernel block; with R = 4 the widens per FMA
// drop from 0.57 for a pair to 0.36). a.rows holds K + R - 1 rows; out gets the element-wise min
// of the R rows, all a patch needs.
template <int R, int CB, bool MASKED>
void convRowsBlock(const BlockArgs& a, vf* out) {
  vf acc[R][CB];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int cb = 0; cb < CB; ++cb) acc[r][cb] = vf{};
  const int K = a.K;
  for (int c = 0; c < 3; ++c) {
    const float* w = a.weights + size_t(c) * K * K;
    for (int t = 0; t < K + R - 1; ++t) {
      const uint8_t* rowp = a.rows[t] + c * a.channelStride;
      for (int kx = 0; kx < K; ++kx) {
        const uint8_t* src = rowp + a.tapOffset[kx];
        vf v[CB];
#pragma GCC unroll 8
        for (int cb = 0; cb < CB; ++cb) {
          v[cb] = widenBytes(src + cb * V);
          if (MASKED) v[cb] = vand(v[cb], a.masks[cb * K + kx]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          if (t - r < 0 || t - r >= K) continue;  // rows above/below output row r's taps
          const vf wv = broadcast(w + (t - r) * K + kx);
#pragma GCC unroll 8
          for (int cb = 0; cb < CB; ++cb) acc[r][cb] += wv * v[cb];
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int cb = 0; cb < CB; ++cb) {
    vf m = acc[0][cb];
#pragma GCC unroll 4
    for (int r = 1; r < R; ++r) m = vmin(m, acc[r][cb]);
    out[cb] = m;
  }
}

template <int R>
BlockFn rowsBlockFor(int cb, bool masked) {
  switch (cb) {
    case 1: return masked ? &convRowsBlock<R, 1, true> : &convRowsBlock<R, 1, false>;
    case 2: return masked ? &convRowsBlock<R, 2, true> : &convRowsBlock<R, 2, false>;
    case 3: return masked ? &convRowsBlock<R, 3, true> : &convRowsBlock<R, 3, false>;
    case 4: return masked ? &convRowsBlock<R, 4, true> : &convRowsBlock<R, 4, false>;
    case 5: return masked ? &convRowsBlock<R, 5, true> : &convRowsBlock<R, 5, false>;
    case 6: return masked ? &convRowsBlock<R, 6, true> : &convRowsBlock<R, 6, false>;
  }
  return nullptr;
}

// R = kRowBlock while that many output rows remain, then a pair.
BlockFn rowsBlockFn(int rows, int cb, bool masked) {
  return rows == 2 ? rowsBlockFor<2>(cb, masked) : rowsBlockFor<kRowBlock>(cb, masked);
}
constexpr int kRowsChunkBlock = kAccumulatorBudget / kRowBlock < 6 ? kAccumulatorBudget / kRowBlock : 6;

constexpr int kBlockKernels[] = {1, 2, 4, 5, 10};

template <int KB, int CB>
constexpr BlockFn pick(bool masked) {
  return masked ? &convBlock<KB, CB, true> : &convBlock<KB, CB, false>;
}

// Instantiates KB x CB blocks up to 24 accumulators (the AVX-512 register budget).
template <int KB>
BlockFn blockFor(int cb, bool masked) {
  switch (cb) {
    case 1: return pick<KB, 1>(masked);
    case 2: return KB * 2 <= 24 ? pick<KB, (KB * 2 <= 24 ? 2 : 1)>(masked) : nullptr;
    case 3: return KB * 3 <= 24 ? pick<KB, (KB * 3 <= 24 ? 3 : 1)>(masked) : nullptr;
    case 4: return KB * 4 <= 24 ? pick<KB, (KB * 4 <= 24 ? 4 : 1)>(masked) : nullptr;
    case 5: return KB * 5 <= 24 ? pick<KB, (KB * 5 <= 24 ? 5 : 1)>(masked) : nullptr;
    case 6: return KB * 6 <= 24 ? pick<KB, (KB * 6 <= 24 ? 6 : 1)>(masked) : nullptr;
    case 7: return KB * 7 <= 24 ? pick<KB, (KB * 7 <= 24 ? 7 : 1)>(masked) : nullptr;
    case 8: return KB * 8 <= 24 ? pick<KB, (KB * 8 <= 24 ? 8 : 1)>(masked) : nullptr;
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
  int chunks = 0;                   // ceil(outW / V)
  int kernelBlock = 1;              // KB
  int chunkBlock = 1;               // CB upper bound from the register budget
  int windowBlock = 1;              // CB used for a window row (chunks split evenly)
  bool rowBlocks = false;           // output rows kRowBlock (or 2) at a time (convRowsBlock)
  int rowsChunkBlock = 1;           // CB of a rows block (chunks split evenly)
  std::vector<float> packed;        // per kernel block: [3][K][K][KB], times 1 / (255 std_c)
  std::vector<float> columnTaps;    // [kx][3][K][kernels] as packed, for border-column corrections
  std::vector<double> tapOffset;    // [k][ky][kx]: sum_c w * (-mean_c / std_c), what a tap adds to the constant
  std::vector<float> fullOffset;    // [k]: the constant of an output whose taps all lie inside the patch
  std::vector<float> columnOffset;  // [kx][k]: the constant of tap column kx (all ky), for border columns
  // The constant of the output rows whose taps span [ky0, ky1), index ky0 * (K + 1) + ky1, made on
  // first use (a patch has a few such spans): one value per kernel where every tap column is
  // inside the patch, per lane in the chunks with padding columns (few, so the table stays small
  // whatever the patch width).
  struct RowOffsets {
    std::vector<float> all;   // [k]
    std::vector<vf> masked;   // [k][maskedChunks]
  };
  mutable std::vector<RowOffsets> rowOffsets;
  std::vector<int> maskedSlot;      // [chunk]: index among the masked chunks, -1 if unmasked
  int maskedChunks = 0;
  std::vector<vi> masks;            // [chunk][kx] lanes whose tap stays inside the patch
  std::vector<uint8_t> chunkMasked; // chunk needs masks
  vi tailValid;                     // lanes of the last chunk that are real outputs
  // Output rows/columns whose taps all stay inside the patch: [rowA, rowB) x [colA, colB).
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
  // Register blocking: KB kernels x CB chunks of accumulators (KB*CB accumulators + min(KB, CB)
  // live operands + 1 must fit the registers). Per tap a block loads CB input vectors and KB
  // broadcast weights for KB*CB FMAs, so pick the KB that needs the fewest loads for a patch's
  // output row (its chunks split evenly into blocks), preferring more kernels per block on a tie
  // (fewer re-reads of the inputs). FocusLiteNN-10 at 235 px: 5 x 3 beats 10 x 2 + 10 x 1.
  int64_t fewestLoads = std::numeric_limits<int64_t>::max();
  for (int kb : kBlockKernels) {
    if (m.kernels % kb != 0 || kb > kAccumulatorBudget) continue;
    int cb = std::max(1, std::min(kMaxChunkBlock, kAccumulatorBudget / kb));
    while (cb > 1 && kb * cb + std::min(kb, cb) + 1 > kVectorRegisters) --cb;
    if (kb * cb + std::min(kb, cb) + 1 > kVectorRegisters) continue;
    const int64_t blocks = (p.chunks + cb - 1) / cb;
    const int64_t loads = int64_t(m.kernels / kb) * (p.chunks + blocks * kb);
    if (loads > fewestLoads) continue;
    fewestLoads = loads;
    p.kernelBlock = kb;
    p.chunkBlock = cb;
  }
  p.windowBlock = evenBlock(p.chunks, p.chunkBlock);
  p.rowBlocks = m.kernels == 1 && p.s == 1 && p.pad == 0 && p.K <= kMaxKernel;
  p.rowsChunkBlock = evenBlock(p.chunks, kRowsChunkBlock);
  const int K = p.K, KB = p.kernelBlock;
  // The normalization moves into the weights: w * ((u / 255 - mean) / std) = scaled(w) * u + w * offset.
  double scale[3], offset[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0 / (255.0 * double(m.std[c]));
    offset[c] = -double(m.mean[c]) / double(m.std[c]);
  }
  auto scaled = [&](int k, int c, int ky, int kx) { return float(double(m.convWeight[((size_t(k) * 3 + c) * K + ky) * K + kx]) * scale[c]); };
  p.packed.resize(size_t(m.kernels) * 3 * K * K);
  for (int k0 = 0; k0 < m.kernels; k0 += KB)
    for (int c = 0; c < 3; ++c)
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx)
          for (int kb = 0; kb < KB; ++kb)
            p.packed[size_t(k0) * 3 * K * K + ((size_t(c) * K + ky) * K + kx) * KB + kb] = scaled(k0 + kb, c, ky, kx);
  p.columnTaps.resize(size_t(m.kernels) * 3 * K * K);
  for (int kx = 0; kx < K; ++kx)
    for (int c = 0; c < 3; ++c)
      for (int ky = 0; ky < K; ++ky)
        for (int k = 0; k < m.kernels; ++k) p.columnTaps[((size_t(kx) * 3 + c) * K + ky) * m.kernels + k] = scaled(k, c, ky, kx);
  p.tapOffset.assign(size_t(m.kernels) * K * K, 0.0);
  p.fullOffset.assign(size_t(m.kernels), 0.f);
  p.columnOffset.assign(size_t(K) * m.kernels, 0.f);
  for (int k = 0; k < m.kernels; ++k) {
    double full = 0;
    for (int kx = 0; kx < K; ++kx) {
      double column = 0;
      for (int ky = 0; ky < K; ++ky) {
        double t = 0;
        for (int c = 0; c < 3; ++c) t += double(m.convWeight[((size_t(k) * 3 + c) * K + ky) * K + kx]) * offset[c];
        p.tapOffset[(size_t(k) * K + ky) * K + kx] = t;
        column += t;
      }
      p.columnOffset[size_t(kx) * m.kernels + k] = float(column);
      full += column;
    }
    p.fullOffset[size_t(k)] = float(full);
  }
  p.rowOffsets.assign(size_t(K) * (K + 1), {});
  p.masks.resize(size_t(p.chunks) * K);
  p.chunkMasked.assign(size_t(p.chunks), 0);
  for (int ch = 0; ch < p.chunks; ++ch)
    for (int kx = 0; kx < K; ++kx) {
      vi mask;
      for (int lane = 0; lane < V; ++lane) {
        const int64_t x = (int64_t(ch) * V + lane) * p.s - p.pad + kx;
        const bool inside = x >= 0 && x < pw;
        mask[lane] = inside ? -1 : 0;
        if (!inside && int64_t(ch) * V + lane < p.outW) p.chunkMasked[size_t(ch)] = 1;
      }
      p.masks[size_t(ch) * K + kx] = mask;
    }
  p.maskedSlot.assign(size_t(p.chunks), -1);
  for (int ch = 0; ch < p.chunks; ++ch)
    if (p.chunkMasked[size_t(ch)]) p.maskedSlot[size_t(ch)] = p.maskedChunks++;
  for (int lane = 0; lane < V; ++lane) p.tailValid[lane] = (int64_t(p.chunks - 1) * V + lane < p.outW) ? -1 : 0;
  const int64_t firstInside = (int64_t(p.pad) + p.s - 1) / p.s;  // first o with o*s - pad >= 0
  p.rowA = std::min(firstInside, p.outH);
  p.colA = std::min(firstInside, p.outW);
  // last o with o*s - pad + K <= size
  p.rowB = std::max(p.rowA, std::min(p.outH, ph + p.pad - K < 0 ? 0 : (ph + p.pad - K) / p.s + 1));
  p.colB = std::max(p.colA, std::min(p.outW, pw + p.pad - K < 0 ? 0 : (pw + p.pad - K) / p.s + 1));
  return p;
}

// The constants of output rows whose taps span image rows [ky0, ky1) of the window, per lane:
// the taps a lane's mask keeps (the patch's zero padding contributes nothing, not the offset).
const Plan::RowOffsets& rowOffsets(const Plan& p, int ky0, int ky1) {
  Plan::RowOffsets& out = p.rowOffsets[size_t(ky0) * (p.K + 1) + ky1];
  if (!out.all.empty()) return out;
  out.all.resize(size_t(p.kernels));
  out.masked.resize(size_t(p.kernels) * p.maskedChunks);
  const int K = p.K;
  std::vector<double> column(static_cast<size_t>(K));
  for (int k = 0; k < p.kernels; ++k) {
    double all = 0;
    for (int kx = 0; kx < K; ++kx) {
      column[size_t(kx)] = 0;
      for (int ky = ky0; ky < ky1; ++ky) column[size_t(kx)] += p.tapOffset[(size_t(k) * K + ky) * K + kx];
      all += column[size_t(kx)];
    }
    out.all[size_t(k)] = float(all);
    for (int ch = 0; ch < p.chunks; ++ch) {
      if (p.maskedSlot[size_t(ch)] < 0) continue;
      vf v;
      for (int lane = 0; lane < V; ++lane) {
        double sum = 0;
        for (int kx = 0; kx < K; ++kx)
          if (p.masks[size_t(ch) * K + kx][lane]) sum += column[size_t(kx)];
        v[lane] = float(sum);
      }
      out.masked[size_t(k) * p.maskedChunks + p.maskedSlot[size_t(ch)]] = v;
    }
  }
  return out;
}

// Where image column t (relative to the ring's origin) sits in a ring row. Stride 1 (the 64 px
// models) skips the divisions: 14 per block call were ~10 % of a FocusLiteNN-1 64 px sweep.
inline int64_t tapColumn(int s, int64_t phaseStride, int64_t t) {
  return s == 1 ? t : int64_t(t % s) * phaseStride + t / s;
}

inline vf offsetOf(const Plan& p, const Plan::RowOffsets& o, int k, int chunk) {
  const int slot = p.maskedSlot[size_t(chunk)];
  return slot < 0 ? splat(o.all[size_t(k)]) : o.masked[size_t(k) * p.maskedChunks + slot];
}

// Whether any of chunks [ch0, ch0 + cb) has outputs whose taps reach the patch's padding.
bool anyMasked(const Plan& p, int ch0, int cb) {
  for (int c = ch0; c < ch0 + cb; ++c)
    if (p.chunkMasked[size_t(c)]) return true;
  return false;
}

// Lowers mn[kb] by a block's outputs acc[kb * cb + c] (kernels k0 + kb, chunks ch0 + c) plus their
// constants, the lanes past the last output left out.
void foldOutputs(const Plan& p, const Plan::RowOffsets& offsets, const vf* acc, int KB, int k0, int ch0, int cb, vf* mn) {
  for (int kb = 0; kb < KB; ++kb)
    for (int c = 0; c < cb; ++c) {
      vf v = acc[kb * cb + c] + offsetOf(p, offsets, k0 + kb, ch0 + c);
      if (ch0 + c == p.chunks - 1) v = vselect(p.tailValid, v, splat(kInf));
      mn[kb] = vmin(mn[kb], v);
    }
}

// Lowers lanes[k], a patch's running min per lane (one horizontal min per patch at the end, not
// per row), by the conv outputs of one output row of a patch, computed directly from the
// ring rows with the patch's zero padding (a.rows, a.ky0, a.ky1 already set). ox is the patch's
// left column relative to the ring's origin x0 + pad.
void windowRowMin(const Plan& p, BlockArgs& a, int64_t ox, vf* lanes) {
  const int K = p.K, s = p.s, KB = p.kernelBlock;
  int64_t tapBase[kMaxKernel];
  int64_t* tapOffset = a.tapOffset;
  const int64_t phaseStride = a.channelStride / s;
  for (int kx = 0; kx < K; ++kx) tapBase[kx] = tapColumn(s, phaseStride, ox + kx);
  vf acc[kMaxChunkBlock * 24];
  const Plan::RowOffsets& offsets = rowOffsets(p, a.ky0, a.ky1);
  for (int k0 = 0; k0 < p.kernels; k0 += KB) {
    vf mn[10];
    for (int kb = 0; kb < KB; ++kb) mn[kb] = splat(kInf);
    a.weights = p.packed.data() + size_t(k0) * 3 * K * K;
    for (int ch0 = 0; ch0 < p.chunks; ch0 += p.windowBlock) {
      const int cb = std::min(p.windowBlock, p.chunks - ch0);
      for (int kx = 0; kx < K; ++kx) tapOffset[kx] = tapBase[kx] + int64_t(ch0) * V;
      a.masks = p.masks.data() + size_t(ch0) * K;
      blockFn(KB, cb, anyMasked(p, ch0, cb))(a, acc);
      foldOutputs(p, offsets, acc, KB, k0, ch0, cb, mn);
    }
    for (int kb = 0; kb < KB; ++kb) lanes[k0 + kb] = vmin(lanes[k0 + kb], mn[kb]);
  }
}

// windowRowMin for `rows` output rows at once (p.rowBlocks; a.rows holds the K + rows - 1 image rows).
void windowRowsMin(const Plan& p, BlockArgs& a, int rows, int64_t ox, vf* lanes) {
  const int K = p.K, s = p.s;
  const int64_t phaseStride = a.channelStride / s;
  int64_t tapBase[kMaxKernel];
  for (int kx = 0; kx < K; ++kx) tapBase[kx] = tapColumn(s, phaseStride, ox + kx);
  vf acc[8];
  vf mn = splat(kInf);
  a.weights = p.packed.data();
  const Plan::RowOffsets& offsets = rowOffsets(p, 0, K);  // every row spans all K rows (no padding rows)
  for (int ch0 = 0; ch0 < p.chunks; ch0 += p.rowsChunkBlock) {
    const int cb = std::min(p.rowsChunkBlock, p.chunks - ch0);
    for (int kx = 0; kx < K; ++kx) a.tapOffset[kx] = tapBase[kx] + int64_t(ch0) * V;
    a.masks = p.masks.data() + size_t(ch0) * K;
    rowsBlockFn(rows, cb, anyMasked(p, ch0, cb))(a, acc);
    foldOutputs(p, offsets, acc, 1, 0, ch0, cb, &mn);
  }
  lanes[0] = vmin(lanes[0], mn);
}

// Integer conv (AVX-512 VNNI + VBMI), for kernels up to 8 wide at strides up to 7. vpdpbusd
// multiplies four u8 pixels by four s8 weights and adds the four products into an int32 lane: 64
// multiply-adds per instruction on the bytes as they are, where the float conv spends a widen, a
// convert and an FMA on every 16. Each weight (normalization folded in, as for the float conv) is
// quantized to a 24-bit integer per kernel and split into three signed bytes (w = d2 * 2^16 + d1 *
// 2^8 + d0), each with its own accumulator: exact integer sums of at most 3 x 64 x 255 x 128 < 2^24,
// so the float conversion at the end is exact too; the error is the weights' rounding to 24 bits
// and the final combine (the float conv rounds every partial sum: the golden error stays 2.3e-5).
// Rows are split by channel only (no stride phases): one 128-byte load per chunk and one byte
// permute per group of four taps (vpermt2b, zero-masked where a tap falls in the patch's padding)
// line up the taps of 16 outputs.
#if defined(FQA_HAVE_BYTE_SHUFFLES)
#define FQA_HAVE_VNNI 1
#define FQA_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni")))
constexpr int kVnniMaxKernel = 8;    // two groups of four taps per kernel row
constexpr int kVnniMaxStride = 7;    // 16 outputs' taps, 15 s + 8 bytes, fit one 128-byte load
constexpr int kVnniDigits = 3;
constexpr double kVnniRange = 8323072;  // 2^23 - 2^16: |w| below it splits into three bytes in [-128, 127]

// Two ways to spend the dot products. One kernel (FocusLiteNN-1): each chunk's taps are permuted
// inside the block that uses them (vnniBlock, vnniRowsBlock), three dot products per permute. More
// kernels: each image row's taps are permuted once per patch column into a ring of rows
// (TapRows, permuteRow) that every kernel block of the K output rows over it reads back
// (vnniPermutedBlock), so the vector pipes do little but dot products. Measured on Zen 5, 28 dot
// products on register broadcasts per two input loads ran at the pipes' full rate (2 per cycle),
// while a permute per 6 dot products (the per-block permutes this replaced for FocusLiteNN-10) or
// memory-operand broadcasts cost 14-18 %; FocusLiteNN-10 at 64 px went from 15-17k to 18-19k
// patches per CPU-second.
// A permute-first block: 2 kernels x up to 4 chunks, 24 accumulators (4 x 2 measured the same at
// 64 px and slower at 235 px, whose 3 chunks split 2 + 1).
constexpr int kVnniKernelBlock = 2;
constexpr int kVnniChunkBlock = 4;
// Flat tails: with more than one kernel at stride 1 and no padding, a last chunk 8-12 outputs wide
// (10 of 16 lanes for FocusLiteNN-10 at 64 px) is computed for kVnniTailRows output rows at once as
// full vectors of their tail outputs laid end to end (a patch's min does not care which lane holds
// which output): 5 vectors instead of 8 part-empty chunks at 64 px. A vector's 16 outputs span at
// most three output rows when each row gives it 8 or more.
constexpr int kVnniTailRows = 8;
constexpr int kVnniTailMinWidth = 8, kVnniTailMaxWidth = 12;
// Above this, a band's permuted rows (columns x 2K x 3 x G x chunks x 64 bytes) would not stay in
// L2: the rows are permuted again for every output row into one column's ring instead.
constexpr int64_t kTapRowsMaxBytes = int64_t(2) << 20;

struct VnniPlan {
  int groups = 2;                     // ceil(K / 4)
  bool permuteFirst = false;          // more than one kernel: permuteRow into TapRows, then vnniPermutedBlock
  int kernelBlock = 1;                // KB; the last kernel block may hold fewer
  int chunkBlock = 1, windowBlock = 1;  // CB bound and CB of a window row
  std::vector<int32_t> weights;       // per kernel block of kb kernels: [K][3][group][digit][kb], four s8 taps per int32
  std::vector<float> scale;           // [k]: weight of one integer unit
  std::vector<uint64_t> masks;        // [chunk][group]: bytes (4 per lane) whose tap lies inside the patch
  alignas(64) uint8_t index[2][64];   // [group]: byte 4j + t <- j*s + 4*group + t
  int mainChunks = 0;                 // chunks computed row by row (all but a flat tail's)
  int tailWidth = 0;                  // outputs per row of the flat tail; 0: none
  // The flat tail vectors of `rows` output rows. A lane's taps come from 64-byte windows at the
  // tail's first column of image rows firstRow + ky, + 1 (index, a two-source permute) and + 2
  // (third, merged where fromThird).
  struct Tail {
    int rows = 0, vectors = 0;
    std::vector<int> firstRow, rowsUsed;             // [vector]
    std::vector<std::array<uint8_t, 64>> index, third;  // [vector][group]
    std::vector<uint64_t> fromThird;                 // [vector]: bytes (4 per lane) from the third row
  };
  Tail tails[2];  // groups of kVnniTailRows rows, and the patch's last, shorter group (if any)
};

bool vnniSupported() {
  if (envFlag("FQA_DISABLE_VNNI") || envFlag("FQA_DISABLE_VBMI") || envFlag("FQA_DISABLE_BYTE_SHUFFLES")) return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw");
}

bool vnniApplies(const Model& m) { return m.convKernel <= kVnniMaxKernel && m.convStride <= kVnniMaxStride && vnniSupported(); }

// The flat tail of `rows` output rows, `width` outputs each (VnniPlan::Tail).
VnniPlan::Tail makeTail(int rows, int width, int G) {
  VnniPlan::Tail t;
  t.rows = rows;
  const int outputs = rows * width;
  t.vectors = (outputs + 15) / 16;
  t.firstRow.resize(size_t(t.vectors));
  t.rowsUsed.resize(size_t(t.vectors));
  t.index.assign(size_t(t.vectors) * G, {});
  t.third.assign(size_t(t.vectors) * G, {});
  t.fromThird.assign(size_t(t.vectors), 0);
  for (int v = 0; v < t.vectors; ++v) {
    t.firstRow[size_t(v)] = (16 * v) / width;
    int lastRow = t.firstRow[size_t(v)];
    for (int j = 0; j < 16; ++j) {
      const int o = std::min(16 * v + j, outputs - 1);  // lanes past the last output repeat it: the min stays
      const int row = o / width - t.firstRow[size_t(v)], x = o % width;
      lastRow = std::max(lastRow, o / width);
      for (int g = 0; g < G; ++g)
        for (int b = 0; b < 4; ++b) {
          const int byte = 4 * j + b, column = x + 4 * g + b;
          if (row < 2) t.index[size_t(v) * G + g][size_t(byte)] = uint8_t(64 * row + column);
          else t.third[size_t(v) * G + g][size_t(byte)] = uint8_t(column);
        }
      if (row >= 2) t.fromThird[size_t(v)] |= uint64_t(0xF) << (4 * j);
    }
    t.rowsUsed[size_t(v)] = lastRow - t.firstRow[size_t(v)] + 1;
  }
  return t;
}

VnniPlan makeVnniPlan(const Model& m, const Plan& p) {
  VnniPlan v;
  const int K = p.K, s = p.s, G = (K + 3) / 4;
  v.groups = G;
  v.permuteFirst = m.kernels > 1;
  if (v.permuteFirst) {
    v.kernelBlock = kVnniKernelBlock;
    v.chunkBlock = kVnniChunkBlock;
  } else {
    // Registers: 3 CB accumulators, G CB permuted inputs, G indexes, two loads.
    v.chunkBlock = 5;
    while (v.chunkBlock > 1 && kVnniDigits * v.chunkBlock + G * v.chunkBlock + G + 2 > kVectorRegisters) --v.chunkBlock;
  }
  const int64_t tailWidth = p.outW - int64_t(16) * (p.chunks - 1);
  const bool flatTail = v.permuteFirst && s == 1 && p.pad == 0 && p.chunks >= 2 && tailWidth >= kVnniTailMinWidth && tailWidth <= kVnniTailMaxWidth;
  v.tailWidth = flatTail ? int(tailWidth) : 0;
  v.mainChunks = flatTail ? p.chunks - 1 : p.chunks;
  if (flatTail) {
    v.tails[0] = makeTail(kVnniTailRows, v.tailWidth, G);
    if (p.outH % kVnniTailRows) v.tails[1] = makeTail(int(p.outH % kVnniTailRows), v.tailWidth, G);
  }
  v.windowBlock = evenBlock(v.mainChunks, v.chunkBlock);
  const int KB = v.kernelBlock;
  v.scale.resize(size_t(m.kernels));
  v.weights.assign(size_t(m.kernels) * 3 * K * G * kVnniDigits, 0);
  for (int k = 0; k < m.kernels; ++k) {
    double maxAbs = 0;
    auto w = [&](int c, int ky, int kx) { return double(m.convWeight[((size_t(k) * 3 + c) * K + ky) * K + kx]) / (255.0 * double(m.std[c])); };
    for (int c = 0; c < 3; ++c)
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx) maxAbs = std::max(maxAbs, std::fabs(w(c, ky, kx)));
    const double unit = maxAbs > 0 ? maxAbs / kVnniRange : 1.0;
    v.scale[size_t(k)] = float(unit);
    const int k0 = k - k % KB, kb = k % KB, blockKernels = std::min(KB, m.kernels - k0);
    for (int c = 0; c < 3; ++c)
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx) {
          int64_t rest = std::llround(w(c, ky, kx) / unit);
          for (int d = 0; d < kVnniDigits; ++d) {
            const int64_t digit = ((rest + 128) & 255) - 128;  // balanced: rest = 256 * next + digit
            rest = (rest - digit) / 256;
            const size_t at = size_t(k0) * 3 * K * G * kVnniDigits + ((((size_t(ky) * 3 + c) * G + kx / 4) * kVnniDigits + d) * blockKernels + kb);
            uint32_t word = uint32_t(v.weights[at]);
            word |= uint32_t(uint8_t(int8_t(digit))) << (8 * (kx % 4));
            v.weights[at] = int32_t(word);
          }
        }
  }
  for (int g = 0; g < 2; ++g)
    for (int b = 0; b < 64; ++b) v.index[g][b] = uint8_t((b / 4) * s + 4 * g + b % 4);
  v.masks.assign(size_t(p.chunks) * G, 0);
  for (int ch = 0; ch < p.chunks; ++ch)
    for (int g = 0; g < G; ++g)
      for (int b = 0; b < 64; ++b) {
        const int kx = 4 * g + b % 4;
        const int64_t x = (int64_t(ch) * 16 + b / 4) * s - p.pad + kx;
        if (kx < K && x >= 0 && x < p.pw) v.masks[size_t(ch) * G + g] |= uint64_t(1) << b;
      }
  return v;
}

constexpr int kVnniRowBlock = 3;      // output rows of one single-kernel stride-1 block (vnniRowsBlock)

struct VnniArgs {
  const uint8_t* rows[kVnniMaxKernel + kVnniRowBlock - 1];  // ring rows (channels only) of each ky
  int64_t channelStride;
  int64_t column;                       // ring column of the block's first output's first tap
  int64_t top;                          // image row of tap row 0
  int topSlot;                          // top mod K, its slot in TapRows
  int s, K, ky0, ky1;
  const int32_t* weights;               // the kernel block's [K][3][G][digit][KB]
  const uint64_t* masks;                // the block's first chunk's [chunk][group]
  const uint8_t (*index)[64];
  const float* scale;                   // the kernel block's [KB]
};

// The integer blocks. GCC 12 reports the intrinsics' own undefined pass-through operands as
// uninitialized.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// The permute indexes of the G tap groups.
template <int G>
FQA_VNNI_TARGET inline void loadIndexes(const VnniArgs& a, __m512i (&index)[G]) {
#pragma GCC unroll 2
  for (int g = 0; g < G; ++g) index[g] = _mm512_load_si512(a.index[g]);
}

// acc += the four-byte dot products of x and w, in place. GCC 12 treats the intrinsic as a
// three-operand op and in a runtime loop copied accumulators out and back around it (up to two
// moves per dot product); the asm ties the accumulator to its register. One-process A/B on Zen 5:
// FocusLiteNN-1 at 64 px 136-137k -> 167-170k patches per CPU-second.
FQA_VNNI_TARGET inline void dotAdd(__m512i& acc, __m512i x, __m512i w) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w)); }

// 16 outputs as floats from their three digit sums: scale * (d2 * 2^16 + (d1 * 2^8 + d0)). d1 * 2^8
// + d0 stays below 2^31; the d2 sum is exact in float and 2^16 an exact scale. The digits come by
// value: a reference to the accumulator array made GCC keep every accumulator in memory as well, a
// store and a move per dot product.
FQA_VNNI_TARGET inline vf digitSum(__m512i d0, __m512i d1, __m512i d2, __m512 scale) {
  const __m512i low = _mm512_add_epi32(_mm512_slli_epi32(d1, 8), d0);
  return (vf)_mm512_mul_ps(_mm512_fmadd_ps(_mm512_cvtepi32_ps(d2), _mm512_set1_ps(65536.f), _mm512_cvtepi32_ps(low)), scale);
}

// One kernel, CB chunks of 16 outputs, the three digit sums of each in registers for all taps.
template <int CB, int G, bool MASKED>
FQA_VNNI_TARGET void vnniBlock(const VnniArgs& a, vf* out) {
  __m512i acc[CB][kVnniDigits] = {};
  __m512i index[G];
  loadIndexes(a, index);
  const int64_t chunkBytes = int64_t(16) * a.s;
  // One runtime loop (ky) around the unrolled channels: with the channel loop outside, GCC rotated
  // the accumulators through a move each per tap row.
  for (int ky = a.ky0; ky < a.ky1; ++ky)
#pragma GCC unroll 3
    for (int c = 0; c < 3; ++c) {
      const uint8_t* src = a.rows[ky] + c * a.channelStride + a.column;
      const int32_t* w = a.weights + size_t(ky * 3 + c) * G * kVnniDigits;
      __m512i in[CB][G];
#pragma GCC unroll 5
      for (int cb = 0; cb < CB; ++cb) {
        const __m512i lo = _mm512_loadu_si512(src + cb * chunkBytes), hi = _mm512_loadu_si512(src + cb * chunkBytes + 64);
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g)
          in[cb][g] = MASKED ? _mm512_maskz_permutex2var_epi8(a.masks[cb * G + g], lo, index[g], hi) : _mm512_permutex2var_epi8(lo, index[g], hi);
      }
#pragma GCC unroll 2
      for (int g = 0; g < G; ++g)
#pragma GCC unroll 3
        for (int d = 0; d < kVnniDigits; ++d) {
          const __m512i wv = _mm512_set1_epi32(w[g * kVnniDigits + d]);
#pragma GCC unroll 5
          for (int cb = 0; cb < CB; ++cb) dotAdd(acc[cb][d], in[cb][g], wv);
        }
    }
  const __m512 scale = _mm512_set1_ps(a.scale[0]);
#pragma GCC unroll 5
  for (int cb = 0; cb < CB; ++cb) out[cb] = digitSum(acc[cb][0], acc[cb][1], acc[cb][2], scale);
}

// The taps of one image row (`row`, a ring row) for the patch column starting at ring column
// a.column, permuted and zero-masked as vnniBlock does, stored as [c][g][chunk] at `to` and again
// at `mirror` (see TapRows).
template <int G>
FQA_VNNI_TARGET void permuteRow(const VnniArgs& a, const uint8_t* row, const uint64_t* masks, int chunks, __m512i* to, __m512i* mirror) {
  __m512i index[G];
  loadIndexes(a, index);
  const int64_t chunkBytes = int64_t(16) * a.s;
  for (int c = 0; c < 3; ++c) {
    const uint8_t* src = row + c * a.channelStride + a.column;
    for (int ch = 0; ch < chunks; ++ch) {
      const __m512i lo = _mm512_loadu_si512(src + ch * chunkBytes), hi = _mm512_loadu_si512(src + ch * chunkBytes + 64);
#pragma GCC unroll 2
      for (int g = 0; g < G; ++g) {
        const __m512i taps = _mm512_maskz_permutex2var_epi8(masks[ch * G + g], lo, index[g], hi);
        const size_t at = size_t(c * G + g) * chunks + ch;
        _mm512_store_si512(to + at, taps);
        _mm512_store_si512(mirror + at, taps);
      }
    }
  }
}

// What a permute-first block reads.
struct VnniPermutedArgs {
  const __m512i* taps;     // the first tap row's [3][G][chunks] at the block's first chunk; rows follow
  int chunks;              // chunks of a tap row (the stride between tap groups)
  int tapGroups;           // rows x 3 x G groups to sum
  const int32_t* weights;  // the kernel block's [K][3][G][digit][KB] at the first tap row
  const float* scale;      // the kernel block's [KB]
};

// KB kernels x CB chunks from permuted taps: per tap group CB loads, 3 KB broadcasts and 3 KB CB
// dot products.
template <int KB, int CB>
FQA_VNNI_TARGET void vnniPermutedBlock(const VnniPermutedArgs& a, vf* out) {
  __m512i acc[KB][CB][kVnniDigits] = {};
  // One flat loop over the tap groups: taps and weights are both laid out [ky][c][group] (nested
  // unrolled loops had GCC spill accumulators to the stack).
  const __m512i* in = a.taps;
  const int32_t* w = a.weights;
  for (int t = 0; t < a.tapGroups; ++t, in += a.chunks, w += kVnniDigits * KB) {
    __m512i x[CB];
#pragma GCC unroll 4
    for (int cb = 0; cb < CB; ++cb) x[cb] = _mm512_load_si512(in + cb);
#pragma GCC unroll 3
    for (int d = 0; d < kVnniDigits; ++d)
#pragma GCC unroll 4
      for (int kb = 0; kb < KB; ++kb) {
        const __m512i wv = _mm512_set1_epi32(w[d * KB + kb]);
#pragma GCC unroll 4
        for (int cb = 0; cb < CB; ++cb) dotAdd(acc[kb][cb][d], x[cb], wv);
      }
  }
#pragma GCC unroll 4
  for (int kb = 0; kb < KB; ++kb) {
    const __m512 scale = _mm512_set1_ps(a.scale[kb]);
#pragma GCC unroll 4
    for (int cb = 0; cb < CB; ++cb) out[kb * CB + cb] = digitSum(acc[kb][cb][0], acc[kb][cb][1], acc[kb][cb][2], scale);
  }
}

// One kernel, R output rows at conv stride 1 with no padding (FocusLiteNN-1 at 64 px), as
// convRowsBlock: image row t serves tap row t - r of output row r, so its permuted inputs feed up
// to R rows' dot products (a.rows holds K + R - 1 rows). out gets the min of the R rows per lane.
template <int R, int CB, int G>
FQA_VNNI_TARGET void vnniRowsBlock(const VnniArgs& a, vf* out) {
  __m512i acc[R][CB][kVnniDigits] = {};
  __m512i index[G];
  loadIndexes(a, index);
  const int K = a.K;
  for (int t = 0; t < K + R - 1; ++t)
#pragma GCC unroll 3
    for (int c = 0; c < 3; ++c) {
      const uint8_t* src = a.rows[t] + c * a.channelStride + a.column;
      __m512i in[CB][G];
#pragma GCC unroll 2
      for (int cb = 0; cb < CB; ++cb) {
        const __m512i lo = _mm512_loadu_si512(src + cb * 16), hi = _mm512_loadu_si512(src + cb * 16 + 64);
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g) in[cb][g] = _mm512_permutex2var_epi8(lo, index[g], hi);
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const int ky = t - r;
        if (ky < 0 || ky >= K) continue;
        const int32_t* w = a.weights + size_t(ky * 3 + c) * G * kVnniDigits;
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g)
#pragma GCC unroll 3
          for (int d = 0; d < kVnniDigits; ++d) {
            const __m512i wv = _mm512_set1_epi32(w[g * kVnniDigits + d]);
#pragma GCC unroll 2
            for (int cb = 0; cb < CB; ++cb) dotAdd(acc[r][cb][d], in[cb][g], wv);
          }
      }
    }
  const __m512 scale = _mm512_set1_ps(a.scale[0]);
#pragma GCC unroll 2
  for (int cb = 0; cb < CB; ++cb) {
    __m512 best = _mm512_set1_ps(kInf);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      best = _mm512_min_ps(best, (__m512)digitSum(acc[r][cb][0], acc[r][cb][1], acc[r][cb][2], scale));
    }
    out[cb] = (vf)best;
  }
}

#pragma GCC diagnostic pop

using VnniBlockFn = void (*)(const VnniArgs&, vf*);

template <int G, bool MASKED>
VnniBlockFn vnniBlockFor(int cb) {
  switch (cb) {
    case 1: return &vnniBlock<1, G, MASKED>;
    case 2: return &vnniBlock<2, G, MASKED>;
    case 3: return &vnniBlock<3, G, MASKED>;
    case 4: return &vnniBlock<4, G, MASKED>;
    case 5: return &vnniBlock<5, G, MASKED>;
  }
  return nullptr;
}

// Blocks whose outputs all have every tap inside the patch skip the masks (taps past K have zero
// weights): the masked form needs a mask register per chunk and group.
VnniBlockFn vnniBlockFn(int cb, int groups, bool masked) {
  if (groups == 1) return masked ? vnniBlockFor<1, true>(cb) : vnniBlockFor<1, false>(cb);
  return masked ? vnniBlockFor<2, true>(cb) : vnniBlockFor<2, false>(cb);
}

using VnniPermutedBlockFn = void (*)(const VnniPermutedArgs&, vf*);

template <int KB>
VnniPermutedBlockFn vnniPermutedBlockFor(int cb) {
  switch (cb) {
    case 1: return &vnniPermutedBlock<KB, 1>;
    case 2: return &vnniPermutedBlock<KB, 2>;
    case 3: return &vnniPermutedBlock<KB, 3>;
    case 4: return &vnniPermutedBlock<KB, 4>;
  }
  return nullptr;
}

VnniPermutedBlockFn vnniPermutedBlockFn(int kb, int cb) { return kb == 1 ? vnniPermutedBlockFor<1>(cb) : vnniPermutedBlockFor<2>(cb); }

// vnniWindowRowMin for R = kVnniRowBlock output rows at once (stride 1, one kernel, no padding).
void vnniWindowRowsMin(const Plan& p, const VnniPlan& v, VnniArgs& a, int64_t ox, vf* lanes) {
  constexpr int CB = 2;
  vf acc[CB];
  vf mn = splat(kInf);
  a.weights = v.weights.data();
  a.scale = v.scale.data();
  const Plan::RowOffsets& offsets = rowOffsets(p, 0, p.K);
  for (int ch0 = 0; ch0 < p.chunks; ch0 += CB) {
    const int cb = std::min(CB, p.chunks - ch0);
    a.column = ox + int64_t(ch0) * 16;
    // Kernels up to 4 wide have one group of taps per row, wider ones two.
    if (v.groups == 1) (cb == 2 ? &vnniRowsBlock<kVnniRowBlock, 2, 1> : &vnniRowsBlock<kVnniRowBlock, 1, 1>)(a, acc);
    else (cb == 2 ? &vnniRowsBlock<kVnniRowBlock, 2, 2> : &vnniRowsBlock<kVnniRowBlock, 1, 2>)(a, acc);
    foldOutputs(p, offsets, acc, 1, 0, ch0, cb, &mn);
  }
  lanes[0] = vmin(lanes[0], mn);
}

// Permuted tap rows of a band's patch columns (permute-first integer conv). Image row y's taps
// for column j sit in slot y mod K of j's ring and again in slot y mod K + K, so the K rows under
// any output row are K consecutive slots: one flat loop in the blocks.
struct alignas(64) TapVector {
  uint8_t bytes[64];
};
struct TapRows {
  std::vector<TapVector> taps;  // [ring][2K][3][G][chunks]
  std::vector<int64_t> rowOf;   // [ring][K]: the image row in each slot
  int64_t rowVectors = 0;       // 3 G chunks
  bool perColumn = false;       // one ring per column (rows reused), else one ring refilled per output row

  void reset(const Plan& p, const VnniPlan& v, int64_t columns) {
    rowVectors = int64_t(3) * v.groups * v.mainChunks;
    const int64_t ringVectors = 2 * p.K * rowVectors;
    perColumn = columns * ringVectors * int64_t(sizeof(TapVector)) <= kTapRowsMaxBytes;
    const int64_t rings = perColumn ? columns : 1;
    taps.resize(size_t(rings * ringVectors));
    rowOf.assign(size_t(rings * p.K), std::numeric_limits<int64_t>::min());
  }
};
thread_local TapRows tlTapRows;  // the band's, reset by focusliteRows

// windowRowMin with the integer conv: a.rows, a.ky0, a.ky1 set, a.top the image row of tap row 0;
// ox the patch's left column relative to the ring's origin x0 + pad, `column` its grid column.
void vnniWindowRowMin(const Plan& p, const VnniPlan& v, VnniArgs& a, int64_t ox, int64_t column, vf* lanes) {
  const int K = p.K, G = v.groups;
  vf acc[std::max(5, kVnniKernelBlock * kVnniChunkBlock)];  // vnniBlock: up to 5 chunks; permuted: KB x CB
  const Plan::RowOffsets& offsets = rowOffsets(p, a.ky0, a.ky1);
  if (!v.permuteFirst) {
    a.weights = v.weights.data();
    a.scale = v.scale.data();
    for (int ch0 = 0; ch0 < p.chunks; ch0 += v.windowBlock) {
      const int cb = std::min(v.windowBlock, p.chunks - ch0);
      a.column = ox + int64_t(ch0) * 16 * p.s;
      a.masks = v.masks.data() + size_t(ch0) * G;
      vnniBlockFn(cb, G, anyMasked(p, ch0, cb))(a, acc);
      foldOutputs(p, offsets, acc, 1, 0, ch0, cb, lanes);
    }
    return;
  }
  if (a.ky0 >= a.ky1) return;
  TapRows& rows = tlTapRows;
  const int64_t ring = rows.perColumn ? column : 0;
  __m512i* taps = reinterpret_cast<__m512i*>(rows.taps.data()) + ring * 2 * K * rows.rowVectors;
  int64_t* rowOf = rows.rowOf.data() + ring * K;
  auto slotOf = [&](int ky) { return a.topSlot + ky < K ? a.topSlot + ky : a.topSlot + ky - K; };  // (top + ky) mod K
  a.column = ox;
  for (int ky = a.ky0; ky < a.ky1; ++ky) {
    const int64_t y = a.top + ky;
    const int slot = slotOf(ky);
    if (rows.perColumn && rowOf[slot] == y) continue;
    (G == 1 ? &permuteRow<1> : &permuteRow<2>)(a, a.rows[ky], v.masks.data(), v.mainChunks, taps + slot * rows.rowVectors, taps + (slot + K) * rows.rowVectors);
    rowOf[slot] = y;
  }
  const int firstSlot = slotOf(a.ky0);
  VnniPermutedArgs pa;
  pa.chunks = v.mainChunks;
  pa.tapGroups = (a.ky1 - a.ky0) * 3 * G;
  for (int k0 = 0; k0 < p.kernels; k0 += v.kernelBlock) {
    const int kb = std::min(v.kernelBlock, p.kernels - k0);
    pa.weights = v.weights.data() + size_t(k0) * 3 * K * G * kVnniDigits + size_t(a.ky0) * 3 * G * kVnniDigits * kb;
    pa.scale = v.scale.data() + k0;
    for (int ch0 = 0; ch0 < v.mainChunks; ch0 += v.windowBlock) {
      const int cb = std::min(v.windowBlock, v.mainChunks - ch0);
      pa.taps = taps + firstSlot * rows.rowVectors + ch0;
      vnniPermutedBlockFn(kb, cb)(pa, acc);
      foldOutputs(p, offsets, acc, kb, k0, ch0, cb, lanes + k0);
    }
  }
}

// The flat tail's taps (VnniPlan::Tail) of one patch column: rows[t] is the image row t below the
// group's first output row, a.column the tail's first column; to[((ky * 3 + c) * G + g) *
// vectors + vector], as permuteRow lays out one row's chunks.
template <int G>
FQA_VNNI_TARGET void permuteTail(const VnniArgs& a, const VnniPlan::Tail& t, const uint8_t* const* rows, __m512i* to) {
  for (int v = 0; v < t.vectors; ++v) {
    __m512i index[G], third[G];
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
      index[g] = _mm512_loadu_si512(t.index[size_t(v) * G + g].data());
      third[g] = _mm512_loadu_si512(t.third[size_t(v) * G + g].data());
    }
    const int used = t.rowsUsed[size_t(v)];
    const __mmask64 fromThird = t.fromThird[size_t(v)];
    for (int ky = 0; ky < a.K; ++ky) {
      const uint8_t* const* r = rows + ky + t.firstRow[size_t(v)];
      for (int c = 0; c < 3; ++c) {
        const int64_t at = c * a.channelStride + a.column;
        const __m512i first = _mm512_loadu_si512(r[0] + at);
        const __m512i second = used > 1 ? _mm512_loadu_si512(r[1] + at) : first;
        const __m512i last = used > 2 ? _mm512_loadu_si512(r[2] + at) : first;
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g) {
          const __m512i taps = _mm512_mask_permutexvar_epi8(_mm512_permutex2var_epi8(first, index[g], second), fromThird, third[g], last);
          _mm512_store_si512(to + size_t((ky * 3 + c) * G + g) * t.vectors + v, taps);
        }
      }
    }
  }
}

thread_local std::vector<TapVector> tlTailTaps;

// Lowers lanes[k] by the flat tail of `rowCount` output rows (the group ending at the current
// one) of the patch at ring column ox; rows[t] is the image row t below the group's first row.
void vnniTailMin(const Plan& p, const VnniPlan& v, VnniArgs& a, const uint8_t* const* rows, int rowCount, int64_t ox, vf* lanes) {
  const VnniPlan::Tail& t = v.tails[rowCount == kVnniTailRows ? 0 : 1];
  const int K = p.K, G = v.groups;
  std::vector<TapVector>& scratch = tlTailTaps;
  scratch.resize(size_t(K) * 3 * G * t.vectors);
  __m512i* taps = reinterpret_cast<__m512i*>(scratch.data());
  a.column = ox + int64_t(16) * v.mainChunks;
  (G == 1 ? &permuteTail<1> : &permuteTail<2>)(a, t, rows, taps);
  const Plan::RowOffsets& offsets = rowOffsets(p, 0, K);  // no padding: every tap inside the patch
  const int even = evenBlock(t.vectors, kVnniChunkBlock);
  vf acc[kVnniKernelBlock * kVnniChunkBlock];
  VnniPermutedArgs pa;
  pa.chunks = t.vectors;
  pa.tapGroups = K * 3 * G;
  for (int k0 = 0; k0 < p.kernels; k0 += v.kernelBlock) {
    const int kb = std::min(v.kernelBlock, p.kernels - k0);
    pa.weights = v.weights.data() + size_t(k0) * 3 * K * G * kVnniDigits;
    pa.scale = v.scale.data() + k0;
    for (int v0 = 0; v0 < t.vectors; v0 += even) {
      const int cb = std::min(even, t.vectors - v0);
      pa.taps = taps + v0;
      vnniPermutedBlockFn(kb, cb)(pa, acc);
      for (int k = 0; k < kb; ++k)
        for (int c = 0; c < cb; ++c) {
          lanes[k0 + k] = vmin(lanes[k0 + k], acc[k * cb + c] + splat(offsets.all[size_t(k0 + k)]));
        }
    }
  }
}
#endif

// Min of n consecutive floats.
float rangeMin(const float* x, int64_t n) {
  vf mv = splat(kInf);
  int64_t i = 0;
  for (; i + V <= n; i += V) mv = vmin(mv, loadu(x + i));
  float r = hmin(mv);
  for (; i < n; ++i) r = std::min(r, x[i]);
  return r;
}

float finishScore(const Model& m, const float* mins) {
  if (m.kernels == 1) return mins[0] + m.convBias[0];
  double score = m.fcBias;
  for (int k = 0; k < m.kernels; ++k) score += double(m.fcWeight[k]) * double(mins[k] + m.convBias[k]);
  return float(score);
}

thread_local RowRing tlRing;
thread_local std::vector<float> tlMapRow, tlMins;
thread_local std::vector<vf> tlMinLanes;

}  // namespace

void focusliteRows(const Model& m, const Region& r, const PatchGrid& g, int64_t rowBegin, int64_t rowEnd,
                   bool shareConvolution, float* scores) {
  const Plan p = makePlan(m, g.patchWidth, g.patchHeight);
  const int K = p.K, s = p.s, pad = p.pad, KB = p.kernelBlock;
  const bool shared = shareConvolution && canShareConvolution(m, g);
  const int64_t lastOx = (g.columns - 1) * g.stride;
  // Shared-map columns: map column gj is the conv at x = s*gj - pad.
  const int64_t mapCols = lastOx / s + p.outW;
  const int64_t mapChunks = (mapCols + V - 1) / V;
  const int64_t width = std::max((lastOx + K) / s + int64_t(p.chunks) * V, mapChunks * V + K / s) + 1;
  RowRing& ring = tlRing;
  std::vector<float>& mins = tlMins;
  mins.assign(size_t((rowEnd - rowBegin) * g.columns * m.kernels), kInf);
  auto minsOf = [&](int64_t row, int64_t col) { return mins.data() + ((row - rowBegin) * g.columns + col) * m.kernels; };
  // The window rows' running mins per lane, folded into mins once per patch at the end.
  std::vector<vf>& minLanes = tlMinLanes;
  minLanes.assign(mins.size(), splat(kInf));
  auto lanesOf = [&](int64_t row, int64_t col) { return minLanes.data() + ((row - rowBegin) * g.columns + col) * m.kernels; };
  auto skipped = [&](int64_t row, int64_t col) { return g.skip && g.skip[row * g.columns + col]; };

  BlockArgs a;
  a.K = K;
  // Points a.rows at the image rows under the output row whose first tap row is `top`, and limits
  // ky to the rows inside the patch that starts at image row oy.
  auto setRows = [&](int64_t top, int64_t oy) {
    a.ky0 = int(std::max<int64_t>(0, oy - top));
    a.ky1 = int(std::min<int64_t>(K, oy + p.ph - top));
    for (int ky = 0; ky < K; ++ky) a.rows[ky] = ring.row(top + ky);
  };

#if defined(FQA_HAVE_VNNI)
  if (!shared && vnniApplies(m)) {
    // As below, with the integer conv on rows split by channel only.
    const VnniPlan v = makeVnniPlan(m, p);
    VnniArgs va;
    va.s = s;
    va.K = K;
    va.index = v.index;
    // Live rows: K + 2 for three-row blocks, K + 7 for a flat tail's group of output rows.
    ring.reset(1, K + (v.tailWidth ? kVnniTailRows : kVnniRowBlock) - 1, r, -pad, lastOx + int64_t(p.chunks) * 16 * s + K + 1);
    va.channelStride = ring.channelStride();
    if (v.permuteFirst) tlTapRows.reset(p, v, g.columns);
    for (int64_t row = rowBegin; row < rowEnd; ++row) {
      const int64_t oy = row * g.stride;
      for (int64_t i = 0; i < p.outH; ++i) {
        if (p.rowBlocks && i + kVnniRowBlock <= p.outH) {
          for (int t = 0; t < K + kVnniRowBlock - 1; ++t) va.rows[t] = ring.row(oy + i + t);  // s == 1, no padding rows
          for (int64_t col = 0; col < g.columns; ++col)
            if (!skipped(row, col)) vnniWindowRowsMin(p, v, va, col * g.stride, lanesOf(row, col));
          i += kVnniRowBlock - 1;
          continue;
        }
        const int64_t top = oy - pad + i * s;
        va.top = top;
        va.topSlot = int(((top % K) + K) % K);
        va.ky0 = int(std::max<int64_t>(0, oy - top));
        va.ky1 = int(std::min<int64_t>(K, oy + p.ph - top));
        for (int ky = 0; ky < K; ++ky) va.rows[ky] = ring.row(top + ky);
        for (int64_t col = 0; col < g.columns; ++col)
          if (!skipped(row, col)) vnniWindowRowMin(p, v, va, col * g.stride, col, lanesOf(row, col));
        if (v.tailWidth && ((i + 1) % kVnniTailRows == 0 || i + 1 == p.outH)) {
          const int rowCount = int(i % kVnniTailRows) + 1;
          const uint8_t* tailRows[kVnniTailRows + kVnniMaxKernel - 1];
          for (int t = 0; t < rowCount + K - 1; ++t) tailRows[t] = ring.row(oy + i - (rowCount - 1) + t);  // s == 1, no padding
          for (int64_t col = 0; col < g.columns; ++col)
            if (!skipped(row, col)) vnniTailMin(p, v, va, tailRows, rowCount, col * g.stride, lanesOf(row, col));
        }
      }
    }
  } else
#endif
  if (!shared) {
    // Patch rows one at a time; within one, every patch advances output row by output row over
    // one ring of full-width rows, so each image row is converted once per patch row. (A ring per
    // patch keeps the live rows in L1 but measured slower: short rows convert and prefetch badly.)
    ring.reset(m, r, -pad, width);
    a.channelStride = ring.channelStride();
    for (int64_t row = rowBegin; row < rowEnd; ++row) {
      const int64_t oy = row * g.stride;
      for (int64_t i = 0; i < p.outH; ++i) {
        if (p.rowBlocks && i + 1 < p.outH) {
          const int rows = i + kRowBlock <= p.outH ? kRowBlock : 2;
          const int64_t top = oy + i;  // s == 1, no padding rows
          for (int t = 0; t < K + rows - 1; ++t) a.rows[t] = ring.row(top + t);
          for (int64_t col = 0; col < g.columns; ++col)
            if (!skipped(row, col)) windowRowsMin(p, a, rows, col * g.stride, lanesOf(row, col));
          i += rows - 1;
          continue;
        }
        setRows(oy - pad + i * s, oy);
        for (int64_t col = 0; col < g.columns; ++col)
          if (!skipped(row, col)) windowRowMin(p, a, col * g.stride, lanesOf(row, col));
      }
    }
  } else {
    // Map rows of the band, top to bottom; map row gi is the unpadded conv of the image rows
    // starting at y0 + s*gi. Patch row `row` has its output row i at gi = (row*S - y0 - pad)/s + i.
    const int64_t oyFirst = rowBegin * g.stride;
    const int64_t y0 = oyFirst - pad;
    const int64_t mapRows = ((rowEnd - 1) * g.stride - oyFirst) / s + p.outH;
    const int64_t mapWidth = mapChunks * V;
    ring.reset(m, r, -pad, width);
    a.channelStride = ring.channelStride();
    std::vector<float>& mapRow = tlMapRow;
    mapRow.resize(size_t(m.kernels * mapWidth));
    int64_t* tapOffset = a.tapOffset;
    vf acc[kMaxChunkBlock * 24];
    const int64_t phaseStride = ring.phaseStride();
    for (int64_t gi = 0; gi < mapRows; ++gi) {
      const int64_t top = y0 + gi * s;
      for (int ky = 0; ky < K; ++ky) a.rows[ky] = ring.row(top + ky);
      // The whole map row, every kernel, no padding masks.
      a.ky0 = 0;
      a.ky1 = K;
      a.masks = nullptr;
      for (int k0 = 0; k0 < m.kernels; k0 += KB) {
        a.weights = p.packed.data() + size_t(k0) * 3 * K * K;
        for (int64_t ch0 = 0; ch0 < mapChunks; ch0 += p.chunkBlock) {
          const int cb = int(std::min<int64_t>(p.chunkBlock, mapChunks - ch0));
          for (int kx = 0; kx < K; ++kx) tapOffset[kx] = int64_t(kx % s) * phaseStride + kx / s + ch0 * V;
          blockFn(KB, cb, false)(a, acc);
          for (int kb = 0; kb < KB; ++kb)
            for (int c = 0; c < cb; ++c)
              storeu(mapRow.data() + size_t(k0 + kb) * mapWidth + (ch0 + c) * V, acc[kb * cb + c] + splat(p.fullOffset[size_t(k0 + kb)]));
        }
      }
      // Every patch whose window covers this map row.
      for (int64_t row = rowBegin; row < rowEnd; ++row) {
        const int64_t oy = row * g.stride;
        const int64_t i = gi - (oy - oyFirst) / s;
        if (i < 0 || i >= p.outH) continue;
        if (i < p.rowA || i >= p.rowB) {
          // Border row: taps above/below the patch read its zero padding; compute it directly.
          setRows(top, oy);
          for (int64_t col = 0; col < g.columns; ++col)
            if (!skipped(row, col)) windowRowMin(p, a, col * g.stride, lanesOf(row, col));
          continue;
        }
        for (int64_t col = 0; col < g.columns; ++col) {
          if (skipped(row, col)) continue;
          const int64_t ox = col * g.stride, gj0 = ox / s;
          float* mn = minsOf(row, col);
          for (int k = 0; k < m.kernels; ++k) mn[k] = std::min(mn[k], rangeMin(mapRow.data() + size_t(k) * mapWidth + gj0 + p.colA, p.colB - p.colA));
          // Border columns: the map read the neighbour's pixels where the patch has zero
          // padding; subtract those taps (weights laid out [kx][c][ky][k] so k is contiguous).
          auto borderColumn = [&](int64_t j) {
            float value[kMaxKernels];
            for (int k = 0; k < m.kernels; ++k) value[k] = mapRow[size_t(k) * mapWidth + gj0 + j];
            for (int kx = 0; kx < K; ++kx) {
              const int64_t lx = j * s - pad + kx;
              if (lx >= 0 && lx < p.pw) continue;
              const int64_t t = ox + kx;
              const int64_t offset = int64_t(t % s) * phaseStride + t / s + j;
              const float* w = p.columnTaps.data() + size_t(kx) * 3 * K * m.kernels;
              for (int c = 0; c < 3; ++c)
                for (int ky = 0; ky < K; ++ky, w += m.kernels) {
                  const float x = a.rows[ky][c * a.channelStride + offset];
                  for (int k = 0; k < m.kernels; ++k) value[k] -= w[k] * x;
                }
              const float* constant = p.columnOffset.data() + size_t(kx) * m.kernels;
              for (int k = 0; k < m.kernels; ++k) value[k] -= constant[k];
            }
            for (int k = 0; k < m.kernels; ++k) mn[k] = std::min(mn[k], value[k]);
          };
          for (int64_t j = 0; j < p.colA; ++j) borderColumn(j);
          for (int64_t j = p.colB; j < p.outW; ++j) borderColumn(j);
        }
      }
    }
  }
  for (int64_t row = rowBegin; row < rowEnd; ++row)
    for (int64_t col = 0; col < g.columns; ++col) {
      if (skipped(row, col)) {
        scores[row * g.columns + col] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      float* mn = minsOf(row, col);
      const vf* lanes = lanesOf(row, col);
      for (int k = 0; k < m.kernels; ++k) mn[k] = std::min(mn[k], hmin(lanes[k]));
      scores[row * g.columns + col] = finishScore(m, mn);
    }
}

const char* rowSplitUsed() {
  switch (rowSplit()) {
    case RowSplit::ByteShuffles: return "byte shuffles";
    case RowSplit::ByteTransposes: return "byte transposes";
    case RowSplit::Scalar: break;
  }
  return "scalar";
}

const char* convUsed() {
#if defined(FQA_HAVE_VNNI)
  if (vnniSupported()) return "integer (VNNI)";
#endif
  return "float (FMA)";
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
