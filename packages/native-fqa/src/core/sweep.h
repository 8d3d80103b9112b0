// The fused sweep: an RGB u8 region plus a patch grid in, one float score per patch out.
// Patches are never copied out of the region; normalization happens while reading.
#pragma once
#include <cstdint>
#include <string>

#include "model.h"

namespace fqa {

struct Region {
  const uint8_t* pixels = nullptr;  // RGB, 3 bytes per pixel
  int64_t width = 0, height = 0;
  int64_t rowStride = 0;            // bytes between rows (>= 3 * width)
  int64_t byteLength = 0;           // size of the buffer behind pixels, checked against the rest
};

// Patch (row r, column c) covers [c*stride, c*stride+patchWidth) x [r*stride, r*stride+patchHeight).
struct PatchGrid {
  int64_t patchWidth = 0, patchHeight = 0;
  int64_t stride = 0;
  int64_t columns = 0, rows = 0;   // derived by makeGrid()
  const uint8_t* skip = nullptr;   // optional, columns*rows bytes; non-zero = not scored (NaN out)
};

// Cuda runs the sweep on GPU 0 (gpu.h); Auto picks the best CPU kernel.
enum class Kernel { Auto, Reference, Baseline, AVX2, AVX512, Cuda };

struct SweepOptions {
  int threads = 0;                 // 0 = hardware concurrency
  Kernel kernel = Kernel::Auto;
  bool shareConvolution = true;    // compute overlapping patches' conv map once (FocusLiteNN)
};

struct SweepStats {
  Kernel kernelUsed = Kernel::Reference;
  bool sharedConvolution = false;
  int threadsUsed = 1;
  double gpuKernelMs = 0;  // CUDA event time of the kernels (Kernel::Cuda)
};

// Grid of all patches that fit; a region smaller than the patch is one window over all of it.
PatchGrid makeGrid(const Model& model, const Region& region, int64_t patchSize, int64_t stride);

// Throws std::invalid_argument / std::range_error naming the bad argument.
// Every size product is checked (checked.h): an overflow is a std::range_error too.
void validateSweep(const Model& model, const Region& region, const PatchGrid& grid);
// The grid and model checks of validateSweep for a width x height region, without a buffer.
void validateGrid(const Model& model, int64_t width, int64_t height, const PatchGrid& grid);

// scores must hold grid.rows * grid.columns floats (row-major). Skipped patches get NaN.
SweepStats sweep(const Model& model, const Region& region, const PatchGrid& grid,
                 const SweepOptions& options, float* scores);

// The ISA the running CPU supports best, and whether a given kernel can run here.
Kernel bestKernel();
bool kernelSupported(Kernel kernel);
const char* kernelName(Kernel kernel);
Kernel parseKernel(const std::string& name);  // throws on unknown names

}  // namespace fqa

namespace fqa {
// Sum over `threads` concurrent threads of the FMA throughput of one register-resident loop:
// the peak the "% of peak" columns of the benchmark are measured against.
double measureFmaPeakGflops(Kernel kernel, int threads, double seconds);
}  // namespace fqa
