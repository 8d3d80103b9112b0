#include "region_sweep.h"

#include "checked.h"
#include "parallel.h"

#include <algorithm>
#include <exception>
#include <limits>
#include <mutex>
#include <string>
#include <thread>

namespace fqa {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// Patch rows per band. About 256 px tall, a band (~1.5 MB for a 2048-px region) is swept while its
// rows are still in the core's caches; overlapping patches get bands tall enough that the rows
// neighbouring bands both convert and convolve (patch - stride) stay a small share of the work.
int64_t bandPatchRows(int64_t patch, int64_t stride) {
  return std::max<int64_t>(1, std::max<int64_t>(256, 4 * (patch - stride)) / stride);
}

// One band of one region: patch rows [r0, r1).
struct Band {
  size_t region;
  int64_t r0, r1;
};

// Scores one band on the calling thread, unless all its patches are background (never decoded).
SweepStats sweepBand(TiffJpegReader& reader, int level, const Model& model, const SlideRegion& region, const Band& b,
                     const RegionSweepOptions& o, std::vector<uint8_t>& pixels, std::vector<float>& scores) {
  SweepStats stats;
  std::fill(region.scores + b.r0 * region.columns, region.scores + b.r1 * region.columns, std::numeric_limits<float>::quiet_NaN());
  bool any = false;
  for (int64_t i = b.r0 * region.columns; i < b.r1 * region.columns && !any; ++i) any = !region.skip[i];
  if (!any) return stats;
  // The band spans the region's full width even where its edge patches are background: the
  // kernels' results depend (by rounding) on where a patch lies in the swept width, and the
  // scores must be those of the whole-region sweep bit for bit.
  const int64_t rows = b.r1 - b.r0;
  const int64_t width = (region.columns - 1) * o.stride + o.patchSize, height = (rows - 1) * o.stride + o.patchSize;
  pixels.resize(size_t(width * height * 3));
  reader.readLevelRegion(level, region.x, region.y + b.r0 * o.stride, width, height, pixels.data(), 3 * width);
  scores.resize(size_t(region.columns * rows));
  const Region band{pixels.data(), width, height, 3 * width, int64_t(pixels.size())};
  PatchGrid grid = makeGrid(model, band, o.patchSize, o.stride);
  grid.skip = region.skip + b.r0 * region.columns;
  SweepOptions sweepOptions;
  sweepOptions.threads = 1;
  sweepOptions.kernel = o.kernel;
  sweepOptions.shareConvolution = o.shareConvolution;
  stats = sweep(model, band, grid, sweepOptions, scores.data());
  std::copy(scores.begin(), scores.end(), region.scores + b.r0 * region.columns);
  return stats;
}

}  // namespace

void validateRegionSweep(const Model& model, const std::vector<SlideRegion>& regions, const RegionSweepOptions& o) {
  if (o.patchSize < 1 || o.patchSize > kMaxRegionSide)
    throw std::range_error("Expected integer between 1 and " + str(kMaxRegionSide) + " for patchSize but received " + str(o.patchSize));
  if (o.stride < 1 || o.stride > kMaxRegionSide)
    throw std::range_error("Expected integer between 1 and " + str(kMaxRegionSide) + " for stride but received " + str(o.stride));
  if (o.kernel == Kernel::Cuda) throw std::invalid_argument("the fused region sweep runs CPU kernels only");
  const Kernel kernel = o.kernel == Kernel::Auto ? bestKernel() : o.kernel;
  if (!kernelSupported(kernel)) throw std::invalid_argument(std::string("kernel ") + kernelName(kernel) + " is not supported by this CPU");
  for (size_t i = 0; i < regions.size(); ++i) {
    const SlideRegion& r = regions[i];
    if (r.columns < 1 || r.rows < 1 ||
        checkedAdd(checkedMul(r.columns - 1, o.stride, "region width"), o.patchSize, "region width") > kMaxRegionSide ||
        checkedAdd(checkedMul(r.rows - 1, o.stride, "region height"), o.patchSize, "region height") > kMaxRegionSide)
      throw std::range_error("region " + std::to_string(i) + " of " + str(r.columns) + "x" + str(r.rows) + " patches is empty or wider than " +
                             str(kMaxRegionSide) + " px");
    // The reader adds the region's size to its position.
    if (r.x < -kMaxRegionOffset || r.x > kMaxRegionOffset || r.y < -kMaxRegionOffset || r.y > kMaxRegionOffset)
      throw std::range_error("region " + std::to_string(i) + " at (" + str(r.x) + ", " + str(r.y) + ") lies beyond 2^40 px");
  }
  // The model's own geometry checks (patch against its convolution or its fixed size), on one patch:
  // no buffer (a 2^16 px patch would be 12 GiB of pixels).
  const Region patch{nullptr, o.patchSize, o.patchSize, 0, 0};
  validateGrid(model, o.patchSize, o.patchSize, makeGrid(model, patch, o.patchSize, o.stride));
}

SweepStats sweepSlideRegions(TiffJpegReader& reader, int level, const Model& model, const std::vector<SlideRegion>& regions,
                             const RegionSweepOptions& o) {
  if (level < 0 || level >= int(reader.levels().size())) throw std::range_error("level " + str(level) + " does not exist");
  validateRegionSweep(model, regions, o);
  for (size_t i = 0; i < regions.size(); ++i)
    if (!regions[i].skip || !regions[i].scores) throw std::invalid_argument("region " + std::to_string(i) + " has no skip or scores buffer");
  SweepStats stats;
  stats.kernelUsed = o.kernel == Kernel::Auto ? bestKernel() : o.kernel;
  // Bands in stripes across the slide: for each row of regions (same y), band 0 of every region,
  // then band 1, ... The threads walk the level top to bottom a stripe at a time, so the tiles in
  // use are those of about two stripes, not of two whole rows of regions.
  const int64_t per = bandPatchRows(o.patchSize, o.stride);
  std::vector<Band> bands;
  std::vector<std::atomic<int64_t>> bandsLeft(regions.size());
  size_t narrowestRow = regions.size();
  for (size_t i = 0; i < regions.size();) {
    size_t j = i;
    int64_t rows = 0;
    for (; j < regions.size() && regions[j].y == regions[i].y; ++j) rows = std::max(rows, regions[j].rows);
    narrowestRow = std::min(narrowestRow, j - i);
    for (int64_t r0 = 0; r0 < rows; r0 += per)
      for (size_t k = i; k < j; ++k)
        if (r0 < regions[k].rows) {
          bands.push_back({k, r0, std::min(regions[k].rows, r0 + per)});
          ++bandsLeft[k];
        }
    i = j;
  }
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(std::max(1, o.threads), int64_t(bands.size()))));
  stats.threadsUsed = threads;
  // A cache for the stripes in flight (and the tile row a stripe shares with the next), at least
  // 64 MiB so a small slide's tiles, all read for its tissue mask, stay until the sweep reads them.
  const JpegTiffLevel& L = reader.levels()[size_t(level)];
  const int64_t bandTileRows = ((per - 1) * o.stride + o.patchSize + L.tileHeight - 1) / L.tileHeight + 1;
  const int64_t stripesInFlight = 1 + (threads + int64_t(std::max<size_t>(1, narrowestRow)) - 1) / int64_t(std::max<size_t>(1, narrowestRow));
  const int64_t tileRowBytes = (L.width + L.tileWidth - 1) / L.tileWidth * L.tileWidth * L.tileHeight * 3;
  reader.setCacheCapacity(std::min(reader.cacheCapacity(), std::max<int64_t>(int64_t(64) << 20, (stripesInFlight * bandTileRows + 1) * tileRowBytes)));

  // Bands in that order, each to the next free thread; the first failure stops the others.
  std::vector<std::vector<uint8_t>> pixels(static_cast<size_t>(threads));  // per thread, reused band to band
  std::vector<std::vector<float>> scores(static_cast<size_t>(threads));
  std::mutex lock;
  runTasks(threads, int64_t(bands.size()), [&](int64_t i, int worker) {
    if (o.cancel && o.cancel->load(std::memory_order_relaxed)) throw SweepCancelled();
    const Band& b = bands[size_t(i)];
    const SweepStats s = sweepBand(reader, level, model, regions[b.region], b, o, pixels[size_t(worker)], scores[size_t(worker)]);
    if (s.sharedConvolution) {
      std::lock_guard<std::mutex> guard(lock);
      stats.sharedConvolution = true;
    }
    if (--bandsLeft[b.region] == 0 && o.regionDone) o.regionDone();
  });
  return stats;
}

}  // namespace fqa
