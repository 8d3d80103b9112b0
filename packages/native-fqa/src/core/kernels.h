// Internal interface between the sweep driver and the per-model kernels. Every optimized kernel
// has a plain reference next to it (reference.cpp) and is tested against it (test/core_test.cpp).
#pragma once
#include <cstdint>

#include "model.h"
#include "sweep.h"

namespace fqa {

// Scalar reference: the model written out plainly, one patch at a time, double accumulation.
float focusliteReferenceScore(const Model& m, const Region& r, int64_t x, int64_t y, int64_t w, int64_t h);
float eonssReferenceScore(const Model& m, const Region& r, int64_t x, int64_t y, int64_t w, int64_t h);

// The optimized kernels, compiled once per instruction set from the same source
// (focuslitenn_fast.cpp, eonss_fast.cpp) into namespaces fqa::baseline, fqa::avx2, fqa::avx512.
// Each scores patch rows [rowBegin, rowEnd) of the grid on the calling thread.
#define FQA_DECLARE_ISA(ns)                                                                     \
  namespace ns {                                                                                \
  void focusliteRows(const Model& m, const Region& r, const PatchGrid& g, int64_t rowBegin,    \
                     int64_t rowEnd, bool shareConvolution, float* scores);                     \
  void eonssRows(const Model& m, const Region& r, const PatchGrid& g, int64_t rowBegin,        \
                 int64_t rowEnd, float* scores);                                                \
  double fmaPeakGflops(double seconds);                                                         \
  const char* rowSplitUsed(); /* "byte shuffles" (VBMI), "byte transposes" or "scalar" */     \
  const char* convUsed();     /* FocusLiteNN up to 8x8 taps: "integer (VNNI)" or "float (FMA)" */ \
  }
FQA_DECLARE_ISA(baseline)
FQA_DECLARE_ISA(avx2)
FQA_DECLARE_ISA(avx512)
#undef FQA_DECLARE_ISA

// Whether the shared-convolution path applies to this grid (overlap and stride-aligned origins).
inline bool canShareConvolution(const Model& m, const PatchGrid& g) {
  return m.arch == Architecture::FocusLiteNN && g.stride % m.convStride == 0 &&
         (g.stride < g.patchWidth || g.stride < g.patchHeight);
}

}  // namespace fqa
