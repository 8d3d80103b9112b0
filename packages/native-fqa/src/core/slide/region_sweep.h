// The fused path of a scan for slide levels the direct JPEG-tile reader serves: each region of the
// patch grid is decoded and swept on a native thread band by band (a few patch rows), each band
// while its decoded rows are still in cache; only scores leave. Threads take the bands of a row of
// regions stripe by stripe, top to bottom, so the tiles neighbouring bands share are still in the
// reader's tile cache and every tile is decoded once. Plain C++, no Node types.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <vector>

#include "model.h"
#include "sweep.h"
#include "tiff_jpeg_reader.h"

namespace fqa {

// Patches [0, columns) x [0, rows) of one region; patch (r, c) covers level pixels
// [x + c*stride, x + c*stride + patchSize) x [y + r*stride, y + r*stride + patchSize).
struct SlideRegion {
  int64_t x = 0, y = 0;          // level pixels; may lie partly outside the level (white there)
  int64_t columns = 0, rows = 0;
  const uint8_t* skip = nullptr;  // columns*rows bytes, non-zero = background (NaN, never decoded)
  float* scores = nullptr;        // columns*rows floats, row-major
};

struct RegionSweepOptions {
  int64_t patchSize = 0, stride = 0;
  int threads = 1;
  Kernel kernel = Kernel::Auto;  // CPU kernels only
  bool shareConvolution = true;
  // Checked between bands; set from another thread to stop (sweepSlideRegions then throws SweepCancelled).
  const std::atomic<bool>* cancel = nullptr;
  // Called on a sweep thread when a region's last band is done (any thread; must be thread-safe).
  std::function<void()> regionDone;
};

struct SweepCancelled : std::runtime_error {
  SweepCancelled() : std::runtime_error("cancelled") {}
};

// The largest region side (level pixels) a caller may ask for: a band buffer is at most this wide.
constexpr int64_t kMaxRegionSide = int64_t(1) << 16;
// The farthest a region's corner may lie from the level's origin, in level pixels (as readRegion).
constexpr int64_t kMaxRegionOffset = int64_t(1) << 40;

// The argument checks of sweepSlideRegions that need neither the reader nor the regions' buffers
// (options, kernel, each region's size and position, the patch against the model), with checked
// arithmetic: the binding makes them before it queues a sweep, the binding-argument fuzzer directly.
void validateRegionSweep(const Model& model, const std::vector<SlideRegion>& regions, const RegionSweepOptions& options);

// Throws std::invalid_argument / std::range_error for bad arguments (before any decode), the
// reader's std::runtime_error naming file and tile for damaged data, SweepCancelled when cancelled.
// Lowers the reader's cache capacity to what the sweep's order needs (TiffJpegReader::setCacheCapacity).
SweepStats sweepSlideRegions(TiffJpegReader& reader, int level, const Model& model,
                             const std::vector<SlideRegion>& regions, const RegionSweepOptions& options);

}  // namespace fqa
