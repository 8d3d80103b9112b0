// Asks the CUDA runtime for devices; errors are reported as strings, never by exiting.
#include <cuda_runtime.h>

#include "gpu.h"

namespace fqa {
GpuProbe probeGpu() {
  GpuProbe p;
  p.compiled = true;
  cudaError_t err = cudaGetDeviceCount(&p.deviceCount);
  if (err != cudaSuccess) {
    p.deviceCount = 0;
    p.error = std::string("CUDA: ") + cudaGetErrorString(err);
    return p;
  }
  if (p.deviceCount == 0) {
    p.error = "CUDA: no device found";
    return p;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) p.deviceName = prop.name;
  return p;
}
}  // namespace fqa
