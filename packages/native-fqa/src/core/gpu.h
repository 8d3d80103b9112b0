// What the CUDA runtime sees. Built from src/cuda/probe.cu when the addon is compiled with CUDA,
// from cuda_absent.cpp otherwise; never throws, so a missing driver is a status, not a crash.
#pragma once
#include <string>

namespace fqa {
struct GpuProbe {
  bool compiled = false;   // this build has CUDA support
  int deviceCount = 0;     // usable devices (0 when the driver or device is missing)
  std::string deviceName;  // device 0
  std::string error;       // why there is no usable device
};
GpuProbe probeGpu();
}  // namespace fqa
