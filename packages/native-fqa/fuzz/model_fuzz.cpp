// libFuzzer target: the native model validation (finalizeModel) and a sweep with whatever model it
// accepts. Model files are parsed and validated in TypeScript (fast-check covers that parser); this
// is the C++ side's own check of every geometry and tensor size the kernels rely on, fed by
// arbitrary specs: a spec is accepted and sweeps in bounds, or is refused with an exception.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

#include "model.h"
#include "sweep.h"

namespace {

std::vector<float> floats(FuzzedDataProvider& in, size_t count) {
  std::vector<float> v(count);
  for (float& x : v) x = in.ConsumeFloatingPointInRange<float>(-4.f, 4.f);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  fqa::Model m;
  m.arch = in.ConsumeBool() ? fqa::Architecture::EONSS : fqa::Architecture::FocusLiteNN;
  m.patchSize = in.ConsumeIntegralInRange<int>(0, 300);
  for (int c = 0; c < 3; ++c) {
    m.mean[size_t(c)] = in.ConsumeFloatingPoint<float>();
    m.std[size_t(c)] = in.ConsumeFloatingPoint<float>();
  }
  // Tensor sizes are sometimes the right ones and sometimes off by a little: both must be safe.
  auto count = [&](size_t right) { return in.ConsumeBool() ? right : size_t(in.ConsumeIntegralInRange<int>(0, 64)); };
  if (m.arch == fqa::Architecture::FocusLiteNN) {
    m.kernels = in.ConsumeIntegralInRange<int>(-1, 20);
    m.convKernel = in.ConsumeIntegralInRange<int>(-1, 12);
    m.convStride = in.ConsumeIntegralInRange<int>(-1, 8);
    m.convPad = in.ConsumeIntegralInRange<int>(-1, 12);
    const size_t k = size_t(std::max(0, m.kernels)), K = size_t(std::max(0, m.convKernel));
    m.convWeight = floats(in, count(k * 3 * K * K));
    m.convBias = floats(in, count(k));
    if (m.kernels > 1 || in.ConsumeBool()) m.fcWeight = floats(in, count(k));
    m.fcBias = in.ConsumeFloatingPoint<float>();
  } else {
    const int layers = in.ConsumeIntegralInRange<int>(0, 7);
    int channels = 3;
    for (int i = 0; i < layers; ++i) {
      fqa::EonssLayer L;
      L.inChannels = in.ConsumeBool() ? channels : in.ConsumeIntegralInRange<int>(0, 6);
      L.outChannels = i + 1 == layers ? 1 : in.ConsumeIntegralInRange<int>(0, 6);
      L.kernel = in.ConsumeIntegralInRange<int>(0, 7);
      L.stride = in.ConsumeIntegralInRange<int>(0, 4);
      L.pad = in.ConsumeIntegralInRange<int>(-1, 4);
      L.gdn = in.ConsumeBool();
      L.maxPool = in.ConsumeBool();
      const size_t o = size_t(std::max(0, L.outChannels)), c = size_t(std::max(0, L.inChannels)), K = size_t(std::max(0, L.kernel));
      L.weight = floats(in, count(o * c * K * K));
      L.bias = floats(in, count(o));
      if (L.gdn) {
        L.gdnGamma = floats(in, count(o * o));
        L.gdnBeta = floats(in, count(o));
      }
      channels = L.outChannels;
      m.eonss.push_back(std::move(L));
    }
  }
  try {
    fqa::finalizeModel(m);
  } catch (const std::exception&) {
    return 0;
  }
  // Accepted: sweep a small region with the scalar reference and the best kernel. The region's
  // geometry comes from the input too: its size, rows padded past 3 * width, a buffer exactly as long
  // as it claims and sometimes a few bytes short (validateSweep must refuse it; ASan sees any read
  // past it), patches of any width and height (not only the model's), a grid derived from them or
  // off by one, and a skip mask.
  const int64_t width = in.ConsumeIntegralInRange<int64_t>(1, 300), height = in.ConsumeIntegralInRange<int64_t>(1, 300);
  const int64_t rowStride = 3 * width + in.ConsumeIntegralInRange<int64_t>(in.ConsumeBool() ? -3 : 0, 64);
  const int64_t exact = (height - 1) * rowStride + 3 * width;
  const int64_t byteLength = std::max<int64_t>(1, exact - (in.ConsumeIntegralInRange<int>(0, 7) == 0 ? in.ConsumeIntegralInRange<int64_t>(1, 3) : 0));
  std::vector<uint8_t> pixels(static_cast<size_t>(byteLength));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t(i * 2654435761u >> 24);
  fqa::Region r;
  r.pixels = pixels.data();
  r.width = width;
  r.height = height;
  r.rowStride = rowStride;
  r.byteLength = byteLength;
  fqa::PatchGrid g;
  const bool modelPatch = in.ConsumeBool();
  g.patchWidth = modelPatch ? std::min<int64_t>(m.patchSize, width) : in.ConsumeIntegralInRange<int64_t>(0, width + 2);
  g.patchHeight = modelPatch ? std::min<int64_t>(m.patchSize, height) : in.ConsumeIntegralInRange<int64_t>(0, height + 2);
  g.stride = in.ConsumeIntegralInRange<int64_t>(in.ConsumeBool() ? 0 : 1, 300);
  const int64_t columns = g.stride > 0 && g.patchWidth <= width ? (width - g.patchWidth) / g.stride + 1 : 1;
  const int64_t rows = g.stride > 0 && g.patchHeight <= height ? (height - g.patchHeight) / g.stride + 1 : 1;
  // At most 4 x 4 patches (a grid smaller than the region is valid): the scalar EONSS reference under
  // ASan takes milliseconds a patch, and thousands of them made single inputs time out. The fuzzer is
  // after memory errors in validation and indexing; the arithmetic is the tests' job. One more column
  // or row than fits must be refused.
  g.columns = std::min<int64_t>(columns, 4) + in.ConsumeIntegralInRange<int64_t>(in.ConsumeBool() ? -1 : 0, 1);
  g.rows = std::min<int64_t>(rows, 4) + in.ConsumeIntegralInRange<int64_t>(in.ConsumeBool() ? -1 : 0, 1);
  const size_t patches = size_t(std::max<int64_t>(0, g.columns) * std::max<int64_t>(0, g.rows));
  std::vector<uint8_t> skip = in.ConsumeBytes<uint8_t>(patches);
  if (skip.size() == patches && in.ConsumeBool()) g.skip = skip.data();
  std::vector<float> scores(patches);
  for (fqa::Kernel k : {fqa::Kernel::Reference, fqa::Kernel::Auto}) {
    fqa::SweepOptions o;
    o.kernel = k;
    o.threads = 1;
    o.shareConvolution = in.ConsumeBool();
    try {
      fqa::validateSweep(m, r, g);
      fqa::sweep(m, r, g, o, scores.data());
    } catch (const std::exception&) {
    }
  }
  return 0;
}
