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
    cudaGetLastError();  // clear the sticky-free error so later calls report their own
    return p;
  }
  if (p.deviceCount == 0) {
    p.error = "CUDA: no device found";
    return p;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) p.deviceName = prop.name;
  cudaDeviceGetAttribute(&p.computeMajor, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&p.computeMinor, cudaDevAttrComputeCapabilityMinor, 0);
  cudaDeviceGetAttribute(&p.multiprocessors, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&p.clockKHz, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&p.memoryClockKHz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&p.memoryBusBits, cudaDevAttrGlobalMemoryBusWidth, 0);
  return p;
}

}  // namespace fqa
