// The CUDA side as the rest of the core sees it. Built from src/cuda/*.cu when the addon is compiled
// with CUDA, from cuda_absent.cpp otherwise. probeGpu() never throws, so a missing driver is a
// status, not a crash; sweepCuda() throws std::runtime_error with the CUDA message.
#pragma once
#include <string>

namespace fqa {

struct GpuProbe {
  bool compiled = false;   // this build has CUDA support
  int deviceCount = 0;     // usable devices (0 when the driver or device is missing)
  std::string deviceName;  // device 0
  std::string error;       // why there is no usable device
  // Device 0's size, for rooflines: FP32 lanes per SM by compute capability, clocks in kHz.
  int computeMajor = 0, computeMinor = 0, multiprocessors = 0, clockKHz = 0, memoryClockKHz = 0, memoryBusBits = 0;
  double peakFp32Gflops() const;
  double peakMemoryGBps() const;
};
GpuProbe probeGpu();

struct Model;
struct Region;
struct PatchGrid;

// CUDA event times of one sweep on the calling thread's stream, and its wall time.
struct CudaSweepTiming {
  double uploadMs = 0, kernelMs = 0, downloadMs = 0, wallMs = 0;
  bool sharedConvolution = false;
};

// The fused sweep on CUDA device 0, same contract as sweep() (scores row-major, NaN for skipped).
CudaSweepTiming sweepCuda(const Model& model, const Region& region, const PatchGrid& grid, float* scores);

}  // namespace fqa
