#include "region_sweep.h"

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

void validate(const TiffJpegReader& reader, int level, const Model& model, const std::vector<SlideRegion>& regions,
              const RegionSweepOptions& o) {
  if (level < 0 || level >= int(reader.levels().size())) throw std::range_error("level " + str(level) + " does not exist");
  if (o.patchSize < 1 || o.patchSize > kMaxRegionSide)
    throw std::range_error("Expected integer between 1 and " + str(kMaxRegionSide) + " for patchSize but received " + str(o.patchSize));
  if (o.stride < 1 || o.stride > kMaxRegionSide)
    throw std::range_error("Expected integer between 1 and " + str(kMaxRegionSide) + " for stride but received " + str(o.stride));
  if (o.kernel == Kernel::Cuda) throw std::invalid_argument("the fused region sweep runs CPU kernels only");
  const Kernel kernel = o.kernel == Kernel::Auto ? bestKernel() : o.kernel;
  if (!kernelSupported(kernel)) throw std::invalid_argument(std::string("kernel ") + kernelName(kernel) + " is not supported by this CPU");
  for (size_t i = 0; i < regions.size(); ++i) {
    const SlideRegion& r = regions[i];
    if (!r.skip || !r.scores) throw std::invalid_argument("region " + std::to_string(i) + " has no skip or scores buffer");
    if (r.columns < 1 || r.rows < 1 || (r.columns - 1) * o.stride + o.patchSize > kMaxRegionSide ||
        (r.rows - 1) * o.stride + o.patchSize > kMaxRegionSide)
      throw std::range_error("region " + std::to_string(i) + " of " + str(r.columns) + "x" + str(r.rows) + " patches is empty or wider than " +
                             str(kMaxRegionSide) + " px");
  }
  // The model's own geometry checks (patch against its convolution or its fixed size), on one patch.
  std::vector<uint8_t> one(size_t(3 * o.patchSize * o.patchSize));
  Region patch{one.data(), o.patchSize, o.patchSize, 3 * o.patchSize, int64_t(one.size())};
  validateSweep(model, patch, makeGrid(model, patch, o.patchSize, o.stride));
}

// Scores one region band by band on the calling thread; bands without a scored patch are never decoded.
SweepStats sweepRegion(const TiffJpegReader& reader, int level, const Model& model, const SlideRegion& region,
                       const RegionSweepOptions& o, std::vector<uint8_t>& band, std::vector<uint8_t>& skip, std::vector<float>& scores) {
  const int64_t per = bandPatchRows(o.patchSize, o.stride);
  SweepOptions sweepOptions;
  sweepOptions.threads = 1;
  sweepOptions.kernel = o.kernel;
  sweepOptions.shareConvolution = o.shareConvolution;
  SweepStats stats;
  std::fill(region.scores, region.scores + region.columns * region.rows, std::numeric_limits<float>::quiet_NaN());
  for (int64_t r0 = 0; r0 < region.rows; r0 += per) {
    if (o.cancel && o.cancel->load(std::memory_order_relaxed)) throw SweepCancelled();
    const int64_t r1 = std::min(region.rows, r0 + per);
    // The band spans the region's full width even where its edge patches are background: the
    // kernels' results depend (by rounding) on where a patch lies in the swept width, and the
    // scores must be those of the whole-region sweep bit for bit.
    bool any = false;
    for (int64_t i = r0 * region.columns; i < r1 * region.columns && !any; ++i) any = !region.skip[i];
    if (!any) continue;
    const int64_t c0 = 0, c1 = region.columns;
    const int64_t columns = c1 - c0, rows = r1 - r0;
    const int64_t width = (columns - 1) * o.stride + o.patchSize, height = (rows - 1) * o.stride + o.patchSize;
    band.resize(size_t(width * height * 3));
    reader.readLevelRegion(level, region.x + c0 * o.stride, region.y + r0 * o.stride, width, height, band.data(), 3 * width);
    skip.resize(size_t(columns * rows));
    scores.resize(skip.size());
    for (int64_t row = 0; row < rows; ++row)
      std::copy_n(region.skip + (r0 + row) * region.columns + c0, columns, skip.data() + row * columns);
    const Region pixels{band.data(), width, height, 3 * width, int64_t(band.size())};
    PatchGrid grid = makeGrid(model, pixels, o.patchSize, o.stride);
    grid.skip = skip.data();
    stats = sweep(model, pixels, grid, sweepOptions, scores.data());
    for (int64_t row = 0; row < rows; ++row)
      std::copy_n(scores.data() + row * columns, columns, region.scores + (r0 + row) * region.columns + c0);
  }
  return stats;
}

}  // namespace

SweepStats sweepSlideRegions(const TiffJpegReader& reader, int level, const Model& model, const std::vector<SlideRegion>& regions,
                             const RegionSweepOptions& o) {
  validate(reader, level, model, regions, o);
  SweepStats stats;
  stats.kernelUsed = o.kernel == Kernel::Auto ? bestKernel() : o.kernel;
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(std::max(1, o.threads), int64_t(regions.size()))));
  stats.threadsUsed = threads;
  // Regions in order, each to the next free thread; the first failure stops the others.
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex lock;
  auto worker = [&]() {
    std::vector<uint8_t> band, skip;
    std::vector<float> scores;
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= regions.size()) return;
      try {
        const SweepStats s = sweepRegion(reader, level, model, regions[i], o, band, skip, scores);
        if (s.sharedConvolution) {
          std::lock_guard<std::mutex> guard(lock);
          stats.sharedConvolution = true;
        }
        if (o.regionDone) o.regionDone();
      } catch (...) {
        std::lock_guard<std::mutex> guard(lock);
        if (!failure) failure = std::current_exception();
        next.store(regions.size());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return stats;
}

}  // namespace fqa
