// The sweep driver: validates the call, picks a kernel for this CPU, and spreads bands of patch
// rows over threads. Everything here is plain C++; the Node binding only converts arguments.
#include "sweep.h"

#include "gpu.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "checked.h"
#include "kernels.h"
#include "parallel.h"

namespace fqa {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// Band of patch rows one task scores: tall enough to amortize what bands share (rows converted
// twice, shared conv-map rows computed twice), short enough to give every thread work; the band
// count is a multiple of the thread count so no thread waits for one last band.
int64_t bandRows(const PatchGrid& g, int threads) {
  const int64_t target = std::max<int64_t>(1, 1024 / std::max<int64_t>(1, g.stride));
  int64_t bands = (g.rows + target - 1) / target;
  bands = std::min(g.rows, (bands + threads - 1) / threads * threads);
  return std::max<int64_t>(1, (g.rows + bands - 1) / bands);
}

}  // namespace

Kernel bestKernel() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Kernel::AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Kernel::AVX2;
#endif
  return Kernel::Baseline;
}

bool kernelSupported(Kernel k) {
  switch (k) {
    case Kernel::Auto:
    case Kernel::Reference:
    case Kernel::Baseline:
      return true;
    case Kernel::AVX2:
      return bestKernel() == Kernel::AVX2 || bestKernel() == Kernel::AVX512;
    case Kernel::AVX512:
      return bestKernel() == Kernel::AVX512;
    case Kernel::Cuda:
      return probeGpu().deviceCount > 0;
  }
  return false;
}

const char* kernelName(Kernel k) {
  switch (k) {
    case Kernel::Auto: return "auto";
    case Kernel::Reference: return "reference";
    case Kernel::Baseline: return "baseline";
    case Kernel::AVX2: return "avx2";
    case Kernel::AVX512: return "avx512";
    case Kernel::Cuda: return "cuda";
  }
  return "unknown";
}

Kernel parseKernel(const std::string& name) {
  for (Kernel k : {Kernel::Auto, Kernel::Reference, Kernel::Baseline, Kernel::AVX2, Kernel::AVX512, Kernel::Cuda})
    if (name == kernelName(k)) return k;
  throw std::invalid_argument("Expected one of auto, reference, baseline, avx2, avx512 for kernel but received " + name);
}

PatchGrid makeGrid(const Model& m, const Region& r, int64_t patchSize, int64_t stride) {
  if (patchSize <= 0) patchSize = m.patchSize;
  if (stride <= 0) stride = patchSize;
  PatchGrid g;
  g.stride = stride;
  g.patchWidth = std::min(patchSize, r.width);
  g.patchHeight = std::min(patchSize, r.height);
  g.columns = r.width >= g.patchWidth ? (r.width - g.patchWidth) / stride + 1 : 0;
  g.rows = r.height >= g.patchHeight ? (r.height - g.patchHeight) / stride + 1 : 0;
  return g;
}

void validateSweep(const Model& m, const Region& r, const PatchGrid& g) {
  if (!r.pixels) throw std::invalid_argument("region pixels must be a non-empty buffer");
  if (r.width <= 0 || r.height <= 0)
    throw std::range_error("region width and height must be positive but received " + str(r.width) + "x" + str(r.height));
  const int64_t rowBytes = checkedMul(3, r.width, "region row byte count");
  if (r.rowStride < rowBytes)
    throw std::range_error("region rowStride must be at least 3 * width (" + str(rowBytes) + ") but received " + str(r.rowStride));
  // Height up to 2^31 times rowStride up to 2^40 overflows int64, and a wrapped (negative) count
  // would pass the buffer check and let the sweep read far past the buffer.
  const int64_t needed = checkedAdd(checkedMul(r.height - 1, r.rowStride, "region byte count"), rowBytes, "region byte count");
  if (r.byteLength < needed)
    throw std::range_error("region buffer holds " + str(r.byteLength) + " bytes but " + str(r.width) + "x" +
                           str(r.height) + " RGB with rowStride " + str(r.rowStride) + " needs " + str(needed));
  validateGrid(m, r.width, r.height, g);
}

void validateGrid(const Model& m, int64_t width, int64_t height, const PatchGrid& g) {
  if (g.stride <= 0) throw std::range_error("stride must be positive but received " + str(g.stride));
  if (g.patchWidth <= 0 || g.patchHeight <= 0)
    throw std::range_error("patch size must be positive but received " + str(g.patchWidth) + "x" + str(g.patchHeight));
  if (g.patchWidth > width || g.patchHeight > height)
    throw std::range_error("patch " + str(g.patchWidth) + "x" + str(g.patchHeight) + " is larger than the region " +
                           str(width) + "x" + str(height));
  if (g.columns <= 0 || g.rows <= 0 ||
      checkedAdd(checkedMul(g.columns - 1, g.stride, "patch grid width"), g.patchWidth, "patch grid width") > width ||
      checkedAdd(checkedMul(g.rows - 1, g.stride, "patch grid height"), g.patchHeight, "patch grid height") > height)
    throw std::range_error("patch grid " + str(g.columns) + "x" + str(g.rows) + " does not fit the region");
  if (m.arch == Architecture::FocusLiteNN) {
    if (convOutputSize(g.patchWidth, m.convKernel, m.convStride, m.convPad) < 1 ||
        convOutputSize(g.patchHeight, m.convKernel, m.convStride, m.convPad) < 1)
      throw std::range_error("patch " + str(g.patchWidth) + "x" + str(g.patchHeight) + " is smaller than the " +
                             str(m.convKernel) + "x" + str(m.convKernel) + " convolution");
  } else if (g.patchWidth != m.patchSize || g.patchHeight != m.patchSize) {
    throw std::range_error("EONSS scores fixed " + str(m.patchSize) + " px patches but received " +
                           str(g.patchWidth) + "x" + str(g.patchHeight));
  }
}

SweepStats sweep(const Model& m, const Region& r, const PatchGrid& g, const SweepOptions& o, float* scores) {
  validateSweep(m, r, g);
  SweepStats stats;
  if (o.kernel == Kernel::Cuda) {
    // No silent CPU fallback here: the TypeScript layer decides (device 'auto' | 'cuda' | 'cpu').
    const CudaSweepTiming t = sweepCuda(m, r, g, scores);
    stats.kernelUsed = Kernel::Cuda;
    stats.sharedConvolution = t.sharedConvolution;
    stats.gpuKernelMs = t.kernelMs;
    return stats;
  }
  Kernel kernel = o.kernel == Kernel::Auto ? bestKernel() : o.kernel;
  if (!kernelSupported(kernel))
    throw std::invalid_argument(std::string("kernel ") + kernelName(kernel) + " is not supported by this CPU");
  stats.kernelUsed = kernel;
  stats.sharedConvolution = kernel != Kernel::Reference && o.shareConvolution && canShareConvolution(m, g);
  int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t band = bandRows(g, threads);
  const int64_t bands = (g.rows + band - 1) / band;
  threads = int(std::min<int64_t>(threads, bands));
  stats.threadsUsed = threads;

  auto runBand = [&](int64_t b) {
    const int64_t r0 = b * band, r1 = std::min(g.rows, r0 + band);
    const bool flnn = m.arch == Architecture::FocusLiteNN;
    switch (kernel) {
      case Kernel::Reference:
        for (int64_t row = r0; row < r1; ++row)
          for (int64_t col = 0; col < g.columns; ++col) {
            const int64_t i = row * g.columns + col;
            if (g.skip && g.skip[i]) { scores[i] = std::numeric_limits<float>::quiet_NaN(); continue; }
            scores[i] = flnn ? focusliteReferenceScore(m, r, col * g.stride, row * g.stride, g.patchWidth, g.patchHeight)
                             : eonssReferenceScore(m, r, col * g.stride, row * g.stride, g.patchWidth, g.patchHeight);
          }
        break;
      case Kernel::AVX512:
        flnn ? avx512::focusliteRows(m, r, g, r0, r1, o.shareConvolution, scores) : avx512::eonssRows(m, r, g, r0, r1, scores);
        break;
      case Kernel::AVX2:
        flnn ? avx2::focusliteRows(m, r, g, r0, r1, o.shareConvolution, scores) : avx2::eonssRows(m, r, g, r0, r1, scores);
        break;
      default:
        flnn ? baseline::focusliteRows(m, r, g, r0, r1, o.shareConvolution, scores) : baseline::eonssRows(m, r, g, r0, r1, scores);
        break;
    }
  };

  // Dynamic scheduling: each thread takes the next band; the first exception wins and stops the rest.
  runTasks(threads, bands, [&](int64_t b, int) { runBand(b); });
  return stats;
}

double measureFmaPeakGflops(Kernel kernel, int threads, double seconds) {
  if (kernel == Kernel::Auto || kernel == Kernel::Reference) kernel = bestKernel();
  if (!kernelSupported(kernel)) throw std::invalid_argument("kernel not supported by this CPU");
  std::vector<double> perThread(std::max(1, threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < int(perThread.size()); ++t)
    pool.emplace_back([&, t] {
      perThread[t] = kernel == Kernel::AVX512 ? avx512::fmaPeakGflops(seconds)
                     : kernel == Kernel::AVX2 ? avx2::fmaPeakGflops(seconds)
                                              : baseline::fmaPeakGflops(seconds);
    });
  for (auto& t : pool) t.join();
  double total = 0;
  for (double v : perThread) total += v;
  return total;
}

}  // namespace fqa
