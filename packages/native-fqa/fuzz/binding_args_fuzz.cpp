// libFuzzer target: the binding's argument checks (src/core/call_args.h, validateSweep,
// validateRegionSweep), the C++ the addon runs on a call's numbers before any kernel, fed with
// fuzzed 64-bit integers biased to the edges (0, ±1, 2^31, 2^40, 2^62, INT64_MIN/MAX). A check
// either refuses its numbers with std::invalid_argument / std::range_error, or accepts numbers that
// are safe: an independent 128-bit recomputation must agree, and an accepted sweep runs over a
// buffer exactly as long as it claims (ASan sees any read past it). Signed overflow in a check is
// a UBSan report. Built by scripts/fuzz.sh.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <vector>

#include "call_args.h"
#include "model.h"
#include "sweep.h"
#ifdef FQA_HAVE_TIFF_JPEG
#include "region_sweep.h"
#endif

namespace {

using i128 = __int128;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fqa-fuzz: accepted unsafe arguments: %s\n", what);
    std::abort();
  }
}

// A number near one of the edges where size arithmetic breaks, or a small one.
int64_t edgy(FuzzedDataProvider& in) {
  static constexpr int64_t kEdges[] = {0, 1, 3, 8, 64, 255, int64_t(1) << 16, int64_t(1) << 24, int64_t(1) << 28, int64_t(1) << 31,
                                       int64_t(1) << 32, int64_t(1) << 39, int64_t(1) << 40, int64_t(1) << 62,
                                       std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return in.ConsumeIntegralInRange<int64_t>(-2, 300);
    case 1: return in.ConsumeIntegral<int64_t>();
    default: {
      const int64_t edge = kEdges[in.ConsumeIntegralInRange<size_t>(0, sizeof(kEdges) / sizeof(kEdges[0]) - 1)];
      const int64_t delta = in.ConsumeIntegralInRange<int64_t>(-2, 2);
      int64_t out;
      return __builtin_add_overflow(edge, delta, &out) ? edge : out;
    }
  }
}

// FocusLiteNN-2, 3x3 stride-1 conv, 8 px patches: the model a fuzzed grid is swept with.
const fqa::Model& smallModel() {
  static const fqa::Model model = [] {
    fqa::Model m;
    m.arch = fqa::Architecture::FocusLiteNN;
    m.patchSize = 8;
    m.kernels = 2;
    m.convKernel = 3;
    m.convStride = 1;
    m.convPad = 0;
    for (int i = 0; i < 2 * 27; ++i) m.convWeight.push_back(float(i % 7 - 3) / 16);
    m.convBias = {0.1f, -0.1f};
    m.fcWeight = {0.5f, 0.5f};
    fqa::finalizeModel(m);
    return m;
  }();
  return model;
}

template <typename Fn>
bool accepted(Fn fn) {
  try {
    fn();
    return true;
  } catch (const std::invalid_argument&) {
  } catch (const std::range_error&) {
  }
  return false;  // any other exception escapes: libFuzzer reports it as a crash
}

// sweep()/sweepSync(): region and grid numbers with a real buffer of at most 64 KiB.
void sweepCall(FuzzedDataProvider& in) {
  const fqa::Model& m = smallModel();
  std::vector<uint8_t> pixels(in.ConsumeIntegralInRange<size_t>(1, 1 << 16));
  fqa::Region r{pixels.data(), edgy(in), edgy(in), edgy(in), int64_t(pixels.size())};
  const int64_t patchWidth = edgy(in), patchHeight = edgy(in), stride = edgy(in);
  const int64_t skipEntries = in.ConsumeBool() ? -1 : edgy(in);
  fqa::PatchGrid g;
  if (!accepted([&] { g = fqa::sweepCallGrid(m, r, patchWidth, patchHeight, stride, skipEntries); })) return;
  require(r.width >= 1 && r.height >= 1 && i128(r.rowStride) >= 3 * i128(r.width), "region shape");
  require(i128(r.height - 1) * r.rowStride + 3 * i128(r.width) <= r.byteLength, "region buffer");
  require(g.columns >= 1 && g.rows >= 1 && i128(g.columns - 1) * g.stride + g.patchWidth <= r.width &&
              i128(g.rows - 1) * g.stride + g.patchHeight <= r.height,
          "grid inside the region");
  require(skipEntries < 0 || i128(skipEntries) == i128(g.columns) * g.rows, "skip length");
  // Safe, so it sweeps: over every patch when there are few, else a 4 x 4 corner of the grid.
  g.columns = std::min<int64_t>(g.columns, 4);
  g.rows = std::min<int64_t>(g.rows, 4);
  std::vector<uint8_t> skip(size_t(g.columns * g.rows), 0);
  g.skip = skip.data();
  std::vector<float> scores(skip.size());
  fqa::SweepOptions o;
  o.threads = 1;
  o.shareConvolution = in.ConsumeBool();
  fqa::sweep(m, r, g, o, scores.data());
}

void readRegionCall(FuzzedDataProvider& in) {
  const int64_t w = edgy(in), h = edgy(in);
  int64_t bytes = 0;
  if (!accepted([&] { bytes = fqa::readRegionBytes(w, h); })) return;
  require(w >= 1 && h >= 1 && i128(w) * h <= fqa::kMaxReadPixels && i128(bytes) == 3 * i128(w) * h, "readRegion size");
}

void positionCall(FuzzedDataProvider& in) {
  const int64_t level0 = edgy(in);
  const double downsample = in.ConsumeBool() ? double(edgy(in)) : in.ConsumeFloatingPoint<double>();
  int64_t at = 0;
  if (!accepted([&] { at = fqa::levelPosition(level0, downsample); })) return;
  require(at >= -(int64_t(1) << 40) && at <= int64_t(1) << 40, "level position");
}

void regionsCall(FuzzedDataProvider& in) {
  const size_t regions = in.ConsumeIntegralInRange<size_t>(0, 6);
  std::vector<int64_t> geometry(4 * regions);
  for (int64_t& v : geometry) v = edgy(in);
  const int64_t skipEntries = edgy(in);
  int64_t patches = 0;
  if (accepted([&] { patches = fqa::regionPatchCount(geometry.data(), regions, skipEntries); })) {
    i128 sum = 0;
    for (size_t i = 0; i < regions; ++i) {
      require(geometry[4 * i + 2] >= 1 && geometry[4 * i + 3] >= 1, "region patch counts");
      sum += i128(geometry[4 * i + 2]) * geometry[4 * i + 3];
    }
    require(sum == patches && patches == skipEntries, "patch count");
  }
#ifdef FQA_HAVE_TIFF_JPEG
  std::vector<fqa::SlideRegion> shapes(regions);
  for (size_t i = 0; i < regions; ++i) {
    shapes[i].x = geometry[4 * i];
    shapes[i].y = geometry[4 * i + 1];
    shapes[i].columns = geometry[4 * i + 2];
    shapes[i].rows = geometry[4 * i + 3];
  }
  fqa::RegionSweepOptions o;
  o.patchSize = edgy(in);
  o.stride = edgy(in);
  if (!accepted([&] { fqa::validateRegionSweep(smallModel(), shapes, o); })) return;
  for (const fqa::SlideRegion& r : shapes) {
    require(i128(r.columns - 1) * o.stride + o.patchSize <= fqa::kMaxRegionSide && i128(r.rows - 1) * o.stride + o.patchSize <= fqa::kMaxRegionSide,
            "region side");
    require(r.x >= -fqa::kMaxRegionOffset && r.x <= fqa::kMaxRegionOffset && r.y >= -fqa::kMaxRegionOffset && r.y <= fqa::kMaxRegionOffset,
            "region position");
  }
#endif
}

void batchCall(FuzzedDataProvider& in) {
  const int64_t count = edgy(in), size = edgy(in), byteLength = edgy(in);
  if (!accepted([&] { fqa::checkPatchBatch(count, size, byteLength); })) return;
  require(count >= 1 && size >= 1 && i128(count) * size * size * 3 == byteLength, "patch batch");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: sweepCall(in); break;
    case 1: readRegionCall(in); break;
    case 2: regionsCall(in); break;
    case 3: positionCall(in); break;
    default: batchCall(in); break;
  }
  return 0;
}
