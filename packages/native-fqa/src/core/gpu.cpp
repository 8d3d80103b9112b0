// Device peaks from the probe's attributes, for the check binary's rooflines.
#include "gpu.h"

namespace fqa {

// FP32 lanes per SM: 64 on sm_80 (A100) and sm_60/70, 128 on sm_86/89/90 and newer.
double GpuProbe::peakFp32Gflops() const {
  const int lanes = (computeMajor == 8 && computeMinor == 0) || computeMajor < 8 ? 64 : 128;
  return double(multiprocessors) * lanes * 2.0 * clockKHz * 1e3 / 1e9;
}

// Double data rate: two transfers per memory clock over the bus.
double GpuProbe::peakMemoryGBps() const { return 2.0 * memoryClockKHz * 1e3 * (memoryBusBits / 8.0) / 1e9; }

}  // namespace fqa
