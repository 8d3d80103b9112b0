#include "gpu.h"

namespace fqa {
GpuProbe probeGpu() {
  GpuProbe p;
  p.error = "this build of fqa has no CUDA support (nvcc was not found at build time, or FQA_CUDA=OFF)";
  return p;
}
}  // namespace fqa
