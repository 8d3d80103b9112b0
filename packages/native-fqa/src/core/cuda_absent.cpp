// The CPU-only build's CUDA side: a status that says why, and an error for a CUDA sweep.
#include <stdexcept>

#include "gpu.h"

namespace fqa {

static const char* kNoCuda = "this build of fqa has no CUDA support (nvcc was not found at build time, or FQA_CUDA=OFF)";

GpuProbe probeGpu() {
  GpuProbe p;
  p.error = kNoCuda;
  return p;
}

CudaSweepTiming sweepCuda(const Model&, const Region&, const PatchGrid&, float*) {
  throw std::runtime_error(kNoCuda);
}

}  // namespace fqa
