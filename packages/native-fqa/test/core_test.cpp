// Standalone test of the C++ core (no Node): every optimized kernel the CPU supports, with and
// without the shared conv map, against the scalar reference on seeded random models and regions.
// Tolerance: |fast - ref| <= 2e-4 + 1e-5 * |ref| (float accumulation vs double). EONSS also runs on
// 940 px regions (16 patches, every planar layer shape the published geometry gives).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels.h"
#include "parallel.h"
#include "sweep.h"
#include "test_models.h"

using namespace fqa;

static int passed = 0, failed = 0;
static int sharedMapRuns = 0;  // sweeps that took the shared-convolution path

static void check(bool ok, const std::string& what) {
  if (ok) ++passed;
  else { ++failed; std::printf("FAIL %s\n", what.c_str()); }
}

static void compareKernels(const Model& m, const Image& im, int64_t patch, int64_t stride, bool withSkip,
                           const std::string& label, std::mt19937& rng) {
  PatchGrid g = makeGrid(m, im.region(), patch, stride);
  std::vector<uint8_t> skip;
  if (withSkip) {
    skip.resize(g.rows * g.columns);
    for (auto& s : skip) s = (rng() % 3 == 0);
    g.skip = skip.data();
  }
  std::vector<float> ref(g.rows * g.columns), fast(g.rows * g.columns);
  SweepOptions ro;
  ro.kernel = Kernel::Reference;
  ro.threads = 2;
  sweep(m, im.region(), g, ro, ref.data());
  for (Kernel k : {Kernel::Baseline, Kernel::AVX2, Kernel::AVX512}) {
    if (!kernelSupported(k)) { std::printf("skip %s: %s not supported by this CPU\n", label.c_str(), kernelName(k)); continue; }
    for (bool share : {false, true}) {
      for (int threads : {1, 2}) {
        SweepOptions o;
        o.kernel = k;
        o.shareConvolution = share;
        o.threads = threads;
        SweepStats st = sweep(m, im.region(), g, o, fast.data());
        // The shared map applies exactly to FocusLiteNN grids whose patches overlap and whose
        // stride is a multiple of the conv stride (written out here, not taken from the sweep).
        const int64_t gridStride = stride;
        const bool expectShared = share && m.arch == Architecture::FocusLiteNN && gridStride % m.convStride == 0 &&
                                  (gridStride < g.patchWidth || gridStride < g.patchHeight);
        check(st.sharedConvolution == expectShared, label + " kernel=" + kernelName(k) + " share=" + std::to_string(share) +
                                                        ": shared map " + (st.sharedConvolution ? "used" : "not used") + ", expected " +
                                                        (expectShared ? "used" : "not used"));
        sharedMapRuns += st.sharedConvolution;
        double worst = 0;
        bool ok = true;
        for (size_t i = 0; i < ref.size(); ++i) {
          if (withSkip && skip[i]) { ok &= std::isnan(fast[i]) && std::isnan(ref[i]); continue; }
          const double err = std::fabs(double(fast[i]) - ref[i]);
          worst = std::max(worst, err);
          ok &= err <= 2e-4 + 1e-5 * std::fabs(ref[i]);
        }
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s kernel=%s shared=%d threads=%d patches=%lldx%lld max|err|=%.2e", label.c_str(),
                      kernelName(k), int(st.sharedConvolution), threads, (long long)g.columns, (long long)g.rows, worst);
        check(ok, buf);
        if (ok && threads == 2) std::printf("ok   %s\n", buf);
      }
    }
  }
}

template <typename Fn>
static void expectThrow(Fn fn, const std::string& what) {
  try { fn(); check(false, what + " (no exception)"); }
  catch (const std::invalid_argument&) { check(true, what); }
  catch (const std::range_error&) { check(true, what); }
}

int main() {
  std::mt19937 rng(1234);
  // The AVX-512 kernels split rows with VBMI byte shuffles (byte transposes without VBMI) and the
  // AVX2 kernels with byte transposes; the caller runs this test again with FQA_DISABLE_VNNI=1,
  // FQA_DISABLE_VBMI=1 and FQA_DISABLE_BYTE_SHUFFLES=1 for the lower paths (core-binary.test.ts).
  std::printf("row split: avx512 %s, avx2 %s\n", kernelSupported(Kernel::AVX512) ? avx512::rowSplitUsed() : "not supported",
              kernelSupported(Kernel::AVX2) ? avx2::rowSplitUsed() : "not supported");
  // FocusLiteNN up to 8x8 taps convolves with VNNI dot products where the CPU has them (AVX-512
  // VNNI + VBMI); FQA_DISABLE_VNNI=1 (or either flag above) takes the float conv.
  std::printf("conv: avx512 %s\n", kernelSupported(Kernel::AVX512) ? avx512::convUsed() : "not supported");
  // The paper's two FocusLiteNN variants, k = 1, 2, 10.
  for (int k : {1, 2, 10}) {
    Model m235 = randomFocusLite(rng, k, 7, 5, 1, 235, false);
    Image big = randomImage(rng, 700, 560);
    compareKernels(m235, big, 235, 235, false, "flnn235 k=" + std::to_string(k) + " dense", rng);
    compareKernels(m235, big, 235, 128, false, "flnn235 k=" + std::to_string(k) + " stride128", rng);
    compareKernels(m235, big, 235, 115, true, "flnn235 k=" + std::to_string(k) + " stride115+skip", rng);
    compareKernels(m235, big, 235, 60, false, "flnn235 k=" + std::to_string(k) + " stride60", rng);
    Model m64 = randomFocusLite(rng, k, 7, 1, 0, 64, true);
    Image small = randomImage(rng, 333, 257);
    compareKernels(m64, small, 64, 64, false, "flnn64 k=" + std::to_string(k) + " dense", rng);
    compareKernels(m64, small, 64, 32, true, "flnn64 k=" + std::to_string(k) + " stride32+skip", rng);
    compareKernels(m64, small, 64, 37, false, "flnn64 k=" + std::to_string(k) + " stride37", rng);
    // Single-kernel row blocks (4 output rows on AVX-512's float conv, 3 on its integer conv, 2
    // elsewhere) and their remainders: 55 output rows end in a pair and a single row (3: one row),
    // 56 in a pair and two rows (3: two rows), 57 in a single row (3: none), 58 (64 px above) in a
    // pair (3: one row).
    compareKernels(m64, small, 61, 61, false, "flnn61 k=" + std::to_string(k) + " dense", rng);
    compareKernels(m64, small, 62, 62, false, "flnn62 k=" + std::to_string(k) + " dense", rng);
    compareKernels(m64, small, 63, 63, true, "flnn63 k=" + std::to_string(k) + " dense+skip", rng);
  }
  // Other geometry from a model file: k=3, 5x5 stride 3 pad 2; k=4, 9x9 stride 2 pad 4.
  {
    Model a = randomFocusLite(rng, 3, 5, 3, 2, 100, true);
    Image im = randomImage(rng, 401, 311);
    compareKernels(a, im, 100, 51, false, "flnn k=3 5x5/s3/p2 stride51", rng);
    compareKernels(a, im, 100, 30, true, "flnn k=3 5x5/s3/p2 stride30+skip", rng);
    Model b = randomFocusLite(rng, 4, 9, 2, 4, 80, false);
    compareKernels(b, im, 80, 40, false, "flnn k=4 9x9/s2/p4 stride40", rng);
    // Kernels up to 4 wide: one group of four taps per row in the integer conv (3x3 and 4x4 at
    // stride 1, one kernel: its three-row blocks; two kernels: the plain blocks).
    for (int kernel : {3, 4})
      for (int k : {1, 2}) {
        Model n = randomFocusLite(rng, k, kernel, 1, 0, 40, true);
        compareKernels(n, im, 40, 40, false, "flnn k=" + std::to_string(k) + " " + std::to_string(kernel) + "x" + std::to_string(kernel) + "/s1/p0 dense", rng);
      }
    // More than one kernel on the integer conv permutes each image row once per patch column into
    // a ring of rows; a band this wide (215 columns) would not fit its limit (2 MB), so one ring is
    // refilled for every output row instead.
    Image wide = randomImage(rng, 2600, 40);
    compareKernels(randomFocusLite(rng, 2, 7, 1, 0, 24, true), wide, 24, 12, true, "flnn k=2 24px wide-band stride12+skip", rng);
    // Flat tails (several kernels, stride 1, no padding, a last chunk 8-12 outputs wide) beyond the
    // 7x7 models: 4x4 (one tap group per row) with a 12-wide tail, an odd kernel count (a last
    // block of one kernel), 8x8 (15 image rows under a group of 8 tail rows), and a band past the
    // per-column ring limit with a tail.
    Image tails = randomImage(rng, 200, 150);
    compareKernels(randomFocusLite(rng, 2, 4, 1, 0, 47, true), tails, 47, 47, false, "flnn k=2 4x4/s1/p0 47px tail12", rng);
    compareKernels(randomFocusLite(rng, 3, 5, 1, 0, 64, true), tails, 64, 40, true, "flnn k=3 5x5/s1/p0 64px tail12 stride40+skip", rng);
    compareKernels(randomFocusLite(rng, 2, 8, 1, 0, 67, true), tails, 67, 67, false, "flnn k=2 8x8/s1/p0 67px tail12", rng);
    Image wideTails = randomImage(rng, 64 * 130 + 5, 70);
    compareKernels(randomFocusLite(rng, 2, 7, 1, 0, 64, true), wideTails, 64, 64, false, "flnn k=2 64px wide-band tail10", rng);
    // A region smaller than the patch is one window over the whole region.
    Image tiny = randomImage(rng, 150, 90);
    compareKernels(randomFocusLite(rng, 10, 7, 5, 1, 235, false), tiny, 235, 128, false, "flnn235 k=10 tiny-window", rng);
  }
  // EONSS.
  {
    Model e = randomEonss(rng);
    Image im = randomImage(rng, 600, 400);
    compareKernels(e, im, 235, 128, true, "eonss stride128+skip", rng);
    Image dense = randomImage(rng, 235 * 2 + 7, 235 * 2 + 3);
    compareKernels(e, dense, 235, 235, false, "eonss dense", rng);
  }
  // Bad calls are exceptions naming the argument, never crashes.
  {
    Model m = randomFocusLite(rng, 1, 7, 5, 1, 235, false);
    Image im = randomImage(rng, 300, 300);
    std::vector<float> out(16);
    SweepOptions o;
    expectThrow([&] { Region r = im.region(); r.byteLength = (r.height - 1) * r.rowStride + 3 * r.width - 1; PatchGrid g = makeGrid(m, r, 235, 64); sweep(m, r, g, o, out.data()); }, "short buffer");
    expectThrow([&] { Region r = im.region(); r.width = 0; PatchGrid g = makeGrid(m, im.region(), 235, 64); sweep(m, r, g, o, out.data()); }, "zero width");
    expectThrow([&] { PatchGrid g = makeGrid(m, im.region(), 235, 64); g.stride = 0; sweep(m, im.region(), g, o, out.data()); }, "stride 0");
    expectThrow([&] { PatchGrid g = makeGrid(m, im.region(), 235, 64); g.patchWidth = 400; sweep(m, im.region(), g, o, out.data()); }, "patch larger than region");
    expectThrow([&] { Region r = im.region(); r.rowStride = 10; PatchGrid g = makeGrid(m, im.region(), 235, 64); sweep(m, r, g, o, out.data()); }, "row stride too small");
    expectThrow([&] { Model bad = m; bad.convWeight[3] = NAN; finalizeModel(bad); }, "NaN weight");
    expectThrow([&] { Model bad = m; bad.convWeight.pop_back(); finalizeModel(bad); }, "wrong weight count");
    expectThrow([&] { parseKernel("sse9"); }, "unknown kernel name");
  }
  // Threaded sweeps run on a process-wide pool of kept threads (parallel.h): callers on several
  // threads at once each get their own workers and their own scores, sweep after sweep.
  {
    Model m = randomFocusLite(rng, 10, 7, 1, 0, 64, false);
    Image im = randomImage(rng, 64 * 6, 64 * 5);
    PatchGrid g = makeGrid(m, im.region(), 64, 64);
    std::vector<float> ref(size_t(g.rows * g.columns));
    SweepOptions ro;
    ro.kernel = Kernel::Reference;
    ro.threads = 1;
    sweep(m, im.region(), g, ro, ref.data());
    std::vector<int> wrong(3, 0);
    std::vector<std::thread> callers;
    for (int c = 0; c < 3; ++c)
      callers.emplace_back([&, c] {
        std::vector<float> out(ref.size());
        SweepOptions o;
        o.threads = 2 + c;
        for (int rep = 0; rep < 20; ++rep) {
          std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());  // a score not written stays NaN
          sweep(m, im.region(), g, o, out.data());
          for (size_t i = 0; i < ref.size(); ++i) wrong[size_t(c)] += !(std::fabs(out[i] - ref[i]) <= 2e-4 + 1e-5 * std::fabs(ref[i]));
        }
      });
    for (auto& t : callers) t.join();
    check(wrong[0] + wrong[1] + wrong[2] == 0, "3 callers x 20 concurrent sweeps on 2-4 pool threads each match the reference (" +
                                                  std::to_string(wrong[0] + wrong[1] + wrong[2]) + " scores differ)");
    // Every task runs once, on worker ids below the count asked for; the first exception stops
    // new tasks and reaches the caller.
    std::vector<std::atomic<int>> runs(1000);
    std::atomic<int> badWorker{0};
    runTasks(4, 1000, [&](int64_t i, int worker) { runs[size_t(i)]++; badWorker += worker < 0 || worker >= 4; });
    int once = 0;
    for (auto& r : runs) once += r.load() == 1;
    check(once == 1000 && badWorker == 0, "runTasks on 4 pool threads ran each of 1000 tasks once (" + std::to_string(once) + ")");
    // It returns only once the slowest worker has finished.
    std::atomic<int> slowDone{0};
    runTasks(2, 2, [&](int64_t i, int) {
      if (i != 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      slowDone = 1;
    });
    check(slowDone == 1, "runTasks waits for its slowest task");
    // A task may itself run tasks on the pool (it takes or starts other threads).
    std::atomic<int> inner{0};
    runTasks(2, 4, [&](int64_t, int) { runTasks(2, 10, [&](int64_t, int) { inner++; }); });
    check(inner == 40, "nested runTasks ran 4 x 10 tasks (" + std::to_string(inner.load()) + ")");
    std::atomic<int> started{0};
    bool threw = false;
    try {
      runTasks(2, 1000, [&](int64_t i, int) {
        started++;
        if (i == 5) throw std::runtime_error("task 5");
        std::this_thread::sleep_for(std::chrono::microseconds(100));  // the others: 0.1 s in all
      });
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "task 5";
    }
    check(threw && started < 1000, "a task's exception reaches runTasks' caller and stops new tasks (" + std::to_string(started.load()) + " of 1000 started)");
  }
  check(sharedMapRuns > 0, "the shared-map path ran (" + std::to_string(sharedMapRuns) + " sweeps)");
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
