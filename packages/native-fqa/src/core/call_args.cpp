#include "call_args.h"

#include <stdexcept>
#include <string>

#include "checked.h"

namespace fqa {

namespace {
std::string str(int64_t v) { return std::to_string(v); }
}  // namespace

PatchGrid sweepCallGrid(const Model& model, const Region& region, int64_t patchWidth, int64_t patchHeight, int64_t stride,
                        int64_t skipEntries) {
  PatchGrid grid;
  grid.patchWidth = patchWidth;
  grid.patchHeight = patchHeight;
  grid.stride = stride;
  if (stride > 0 && patchWidth > 0 && patchHeight > 0 && patchWidth <= region.width && patchHeight <= region.height) {
    grid.columns = (region.width - patchWidth) / stride + 1;
    grid.rows = (region.height - patchHeight) / stride + 1;
  }
  validateSweep(model, region, grid);
  const int64_t patches = checkedMul(grid.rows, grid.columns, "patch count");
  if (skipEntries >= 0 && skipEntries != patches)
    throw std::range_error("Expected skip to hold " + str(patches) + " entries (one per patch) but received " + str(skipEntries));
  return grid;
}

int64_t readRegionBytes(int64_t width, int64_t height) {
  if (width < 1 || height < 1) throw std::range_error("region width and height must be positive but received " + str(width) + "x" + str(height));
  const int64_t pixels = checkedMul(width, height, "region pixel count");
  if (pixels > kMaxReadPixels)
    throw std::range_error("region of " + str(pixels) + " pixels is larger than 2^28; read it in parts");
  return checkedMul(pixels, 3, "region byte count");
}

int64_t levelPosition(int64_t level0, double downsample) {
  const double at = double(level0) / downsample;
  constexpr double kMax = double(int64_t(1) << 40);
  if (!(at >= -kMax && at <= kMax))
    throw std::range_error("level-0 position " + str(level0) + " at downsample " + std::to_string(downsample) + " lies beyond 2^40 level pixels");
  return int64_t(at);
}

int64_t regionPatchCount(const int64_t* geometry, size_t regions, int64_t skipEntries) {
  int64_t patches = 0;
  for (size_t i = 0; i < regions; ++i) {
    const int64_t columns = geometry[4 * i + 2], rows = geometry[4 * i + 3];
    if (columns < 1 || rows < 1)
      throw std::range_error("region " + std::to_string(i) + " of " + str(columns) + "x" + str(rows) + " patches is empty");
    patches = checkedAdd(patches, checkedMul(columns, rows, "patch count"), "patch count");
  }
  if (skipEntries != patches)
    throw std::range_error("Expected skip to hold " + str(patches) + " entries (one per patch of every region) but received " +
                           str(skipEntries));
  return patches;
}

int64_t checkPatchBatch(int64_t count, int64_t size, int64_t byteLength) {
  if (count < 1 || size < 1) throw std::range_error("a batch needs at least one patch of at least 1 px but received " + str(count) + " of " + str(size) + " px");
  const int64_t needed = checkedProduct("patch batch byte count", count, size, size, 3);
  if (byteLength != needed)
    throw std::range_error("patches holds " + str(byteLength) + " bytes but " + str(count) + " RGB patches of " + str(size) +
                           " px need " + str(needed));
  return needed;
}

}  // namespace fqa
