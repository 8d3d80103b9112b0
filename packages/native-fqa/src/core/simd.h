// Portable SIMD vectors through GCC/Clang vector extensions. Each *_fast.cpp file includes this
// and is compiled three times (baseline x86-64, AVX2+FMA, AVX-512) with FQA_ISA naming the
// namespace and FQA_VLEN the lane count, so one kernel source serves every instruction set.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifndef FQA_ISA
#error "compile with -DFQA_ISA=<namespace> -DFQA_VLEN=<lanes>"
#endif

namespace fqa {
namespace FQA_ISA {

constexpr int V = FQA_VLEN;
typedef float vf __attribute__((vector_size(V * 4)));
typedef int32_t vi __attribute__((vector_size(V * 4)));
typedef uint8_t vb __attribute__((vector_size(V)));

// Independent accumulators the register file holds with room for inputs and a broadcast weight.
constexpr int kAccumulatorBudget = V == 16 ? 24 : 12;
constexpr int kVectorRegisters = V == 16 ? 32 : 16;

inline vf loadu(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void storeu(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// V consecutive bytes as V floats in [0, 255]: one widening load (vpmovzxbd) and a conversion
// (vcvtdq2ps) straight into an FMA operand, so u8 data is read at a quarter of the float bytes.
// GCC 12 reports the AVX-512 intrinsics' own undefined pass-through operands as maybe-uninitialized.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
inline vf widenBytes(const uint8_t* p) {
#if FQA_VLEN == 16 && defined(__AVX512F__)
  return (vf)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#elif FQA_VLEN == 8 && defined(__AVX2__)
  return (vf)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#elif FQA_VLEN == 4 && defined(__SSE2__)
  int32_t word;
  std::memcpy(&word, p, sizeof word);
  const __m128i zero = _mm_setzero_si128();
  return (vf)_mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(word), zero), zero));
#else
  vb b;
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(__builtin_convertvector(b, vi), vf);
#endif
}
#pragma GCC diagnostic pop
inline vf splat(float x) { return vf{} + x; }
// All lanes = *p, as one broadcast load (vbroadcastss) rather than a scalar op and a shuffle.
inline vf broadcast(const float* p) {
#if FQA_VLEN == 16 && defined(__AVX512F__)
  return (vf)_mm512_set1_ps(*p);
#elif FQA_VLEN == 8 && defined(__AVX__)
  return (vf)_mm256_broadcast_ss(p);
#else
  vf v;
  for (int i = 0; i < V; ++i) v[i] = *p;
  return v;
#endif
}
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vsqrt(vf v) {
#if FQA_VLEN == 16 && defined(__AVX512F__)
  // The masked form with v as pass-through: _mm512_sqrt_ps's undefined operand trips GCC 12's
  // -Wmaybe-uninitialized.
  return (vf)_mm512_mask_sqrt_ps((__m512)v, __mmask16(0xFFFF), (__m512)v);
#elif FQA_VLEN == 8 && defined(__AVX__)
  return (vf)_mm256_sqrt_ps((__m256)v);
#elif FQA_VLEN == 4 && defined(__SSE2__)
  return (vf)_mm_sqrt_ps((__m128)v);
#else
  for (int i = 0; i < V; ++i) v[i] = std::sqrt(v[i]);
  return v;
#endif
}
inline vf vand(vf a, vi m) { return (vf)((vi)a & m); }
inline vf vselect(vi m, vf a, vf b) { return m ? a : b; }
inline float hmin(vf v) {
  float m = v[0];
  for (int i = 1; i < V; ++i) m = std::min(m, v[i]);
  return m;
}

}  // namespace FQA_ISA
}  // namespace fqa
