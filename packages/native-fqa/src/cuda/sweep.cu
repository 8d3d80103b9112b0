// The fused sweep on a CUDA device: the same contract as the CPU sweep (u8 RGB region with a row
// stride, patch grid, optional skip mask in; one float score per patch out, NaN for skipped).
//
// - The region goes up as u8 (a third of the bytes of floats), rows compacted into a pinned host
//   buffer; normalization happens on the device through a 3 x 256 table, as on the CPU.
// - Each host thread (a Piscina worker runs one) has its own non-blocking stream, pinned buffers and
//   device buffers, so one worker's upload overlaps another's kernels.
// - FocusLiteNN: one block per scored patch, each thread a set of conv outputs with up to 16 kernels
//   accumulated in registers per pass over the taps, then a block min per kernel and the fc. When the
//   grid stride is a multiple of the conv stride and patches overlap, the conv map of the whole region
//   is computed once and a patch reads its interior outputs from it; only its border outputs (those
//   that see the patch's own zero padding) are computed per patch.
// - EONSS: batches of patches through direct conv, GDN and 2x2 max-pool kernels (NCHW activations).
// Every CUDA error becomes a std::runtime_error with the CUDA message; nothing exits.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "gpu.h"
#include "model.h"
#include "sweep.h"
#include "sweep_kernels.cuh"

namespace fqa {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error (") + what + "): " + cudaGetErrorString(e));
}

// Grows to the largest size asked for and is reused; device memory, or pinned host memory (so
// uploads and downloads are asynchronous DMA). Not copyable: it owns the allocation.
template <typename T, bool Pinned>
struct Buffer {
  T* ptr = nullptr;
  size_t capacity = 0;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void reserve(size_t n) {
    if (n <= capacity) return;
    release();
    void* p = nullptr;
    const size_t bytes = std::max<size_t>(1, n) * sizeof(T);
    check(Pinned ? cudaMallocHost(&p, bytes) : cudaMalloc(&p, bytes), Pinned ? "cudaMallocHost" : "cudaMalloc");
    ptr = static_cast<T*>(p);
    capacity = n;
  }
  void release() {
    if (ptr) Pinned ? cudaFreeHost(ptr) : cudaFree(ptr);
    ptr = nullptr;
    capacity = 0;
  }
  ~Buffer() { release(); }
};
template <typename T>
using DeviceBuffer = Buffer<T, false>;
template <typename T>
using PinnedBuffer = Buffer<T, true>;

// One per host thread: buffers grow to the largest region seen and are reused.
struct ThreadContext {
  cudaStream_t stream = nullptr;
  cudaEvent_t marks[4] = {nullptr, nullptr, nullptr, nullptr};
  PinnedBuffer<uint8_t> hostPixels;
  PinnedBuffer<float> hostScores, hostWeights;
  PinnedBuffer<int32_t> hostIndex;
  DeviceBuffer<uint8_t> pixels;
  DeviceBuffer<float> scores, weights, map, act0, act1;
  DeviceBuffer<int32_t> index;
  ThreadContext() {
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    for (cudaEvent_t& e : marks) check(cudaEventCreate(&e), "cudaEventCreate");
  }
  ~ThreadContext() {
    for (cudaEvent_t e : marks)
      if (e) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }
};

ThreadContext& threadContext() {
  thread_local ThreadContext context;
  return context;
}

constexpr int kThreads = 256;
using cudasweep::FocusArgs;
using cudasweep::kChunk;

// Conv map of the whole region, region zero padding; only interior outputs of patches read it.
__global__ void focusMapKernel(FocusArgs a, int kk0, int chunk) {
  const int64_t n = a.mapH * a.mapW;
  float sum[kChunk];
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t u = o / a.mapW, v = o % a.mapW;
    cudasweep::focusMapSums(a, a.table, u, v, kk0, chunk, sum);
    for (int q = 0; q < chunk; ++q) a.map[(int64_t(kk0 + q) * a.mapH + u) * a.mapW + v] = sum[q];
  }
}

__device__ float warpMin(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fminf(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

// One block per scored patch: each thread a strided set of the patch's conv outputs, then a block
// min per kernel (warp shuffles, then one partial per warp) and the fc.
__global__ void focusPatchKernel(FocusArgs a) {
  __shared__ float table[3 * 256];
  __shared__ float partial[kThreads / 32][kChunk];
  __shared__ float total;
  for (int i = threadIdx.x; i < 3 * 256; i += blockDim.x) table[i] = a.table[i];
  if (threadIdx.x == 0) total = a.fc ? a.fcBias : 0.f;
  __syncthreads();
  const int patch = a.index[blockIdx.x];
  const int64_t px = int64_t(patch % a.columns) * a.stride, py = int64_t(patch / a.columns) * a.stride;
  const int outputs = a.outH * a.outW;
  float sum[kChunk], best[kChunk];
  for (int kk0 = 0; kk0 < a.kernels; kk0 += kChunk) {
    const int chunk = min(kChunk, a.kernels - kk0);
#pragma unroll
    for (int q = 0; q < kChunk; ++q) best[q] = INFINITY;
    for (int o = threadIdx.x; o < outputs; o += blockDim.x) {
      cudasweep::focusPatchSums(a, table, px, py, o / a.outW, o % a.outW, kk0, chunk, sum);
#pragma unroll
      for (int q = 0; q < kChunk; ++q) best[q] = fminf(best[q], sum[q]);
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
    for (int q = 0; q < kChunk; ++q) {
      const float m = warpMin(best[q]);
      if (lane == 0) partial[warp][q] = m;
    }
    __syncthreads();
    if (threadIdx.x < chunk) {
      float m = INFINITY;
      for (int w = 0; w < int(blockDim.x / 32); ++w) m = fminf(m, partial[w][threadIdx.x]);
      atomicAdd(&total, cudasweep::focusKernelTerm(a, kk0 + threadIdx.x, m));
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) a.scores[patch] = total;
}

__global__ void eonssGatherKernel(const uint8_t* pixels, int64_t regionWidth, const float* table, const int32_t* index, int first, int batch,
                                  int columns, int stride, int patchWidth, int patchHeight, float* out) {
  const int64_t n = int64_t(batch) * 3 * patchWidth * patchHeight;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    out[e] = cudasweep::eonssGatherValue(pixels, regionWidth, table, index, first, columns, stride, patchWidth, patchHeight, e);
}

__global__ void convKernel(const float* in, int batch, int inC, int inH, int inW, const float* weight, const float* bias, int outC, int K,
                           int s, int p, int outH, int outW, float* out) {
  const int64_t n = int64_t(batch) * outC * outH * outW;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    out[e] = cudasweep::convValue(in, inC, inH, inW, weight, bias, outC, K, s, p, outH, outW, e);
}

__global__ void gdnKernel(const float* in, int batch, int C, int H, int W, const float* gamma, const float* beta, float* out) {
  const int64_t n = int64_t(batch) * H * W;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    cudasweep::gdnPixel(in, C, H, W, gamma, beta, out, e);
}

__global__ void maxPoolKernel(const float* in, int batch, int C, int H, int W, float* out) {
  const int64_t n = int64_t(batch) * C * (H / 2) * (W / 2);
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    out[e] = cudasweep::maxPoolValue(in, H, W, e);
}

__global__ void eonssScatterKernel(const float* last, int64_t planeSize, const int32_t* index, int first, int batch, float* scores) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b < batch) scores[index[first + b]] = last[int64_t(b) * planeSize];
}

int blocksFor(int64_t n) {
  return int(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8));
}


}  // namespace

CudaSweepTiming sweepCuda(const Model& m, const Region& r, const PatchGrid& g, float* scores) {
  validateSweep(m, r, g);
  CudaSweepTiming timing;
  const auto wallStart = std::chrono::steady_clock::now();
  int devices = 0;
  check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  if (devices == 0) throw std::runtime_error("CUDA: no device found");
  ThreadContext& t = threadContext();

  // Scored patches; skipped ones are NaN and never launched.
  const int64_t total = g.rows * g.columns;
  std::vector<int32_t> scored;
  scored.reserve(size_t(total));
  for (int64_t i = 0; i < total; ++i) {
    if (g.skip && g.skip[i]) scores[i] = std::numeric_limits<float>::quiet_NaN();
    else scored.push_back(int32_t(i));
  }
  if (total > int64_t(std::numeric_limits<int32_t>::max())) throw std::range_error("too many patches for one CUDA sweep");
  if (scored.empty()) return timing;

  // Only the rows and columns the grid touches go up, compacted.
  const cudasweep::RegionExtent used = cudasweep::usedExtent(g);
  const int64_t usedWidth = used.width;
  const size_t pixelBytes = size_t(used.width * used.height * 3);
  t.hostPixels.reserve(pixelBytes);
  cudasweep::compactRegion(r, used, t.hostPixels.ptr);

  // Weights: table, then the model's tensors, one upload.
  std::vector<float> weights(768);
  cudasweep::normalizeTable(m, weights.data());
  std::vector<size_t> offsets;
  auto append = [&](const std::vector<float>& v) {
    offsets.push_back(weights.size());
    weights.insert(weights.end(), v.begin(), v.end());
  };
  if (m.arch == Architecture::FocusLiteNN) {
    append(m.convWeight);
    append(m.convBias);
    append(m.fcWeight);
  } else {
    for (const EonssLayer& L : m.eonss) {
      append(L.weight);
      append(L.bias);
      append(L.gdnGamma);
      append(L.gdnBeta);
    }
  }
  t.hostWeights.reserve(weights.size());
  std::memcpy(t.hostWeights.ptr, weights.data(), weights.size() * sizeof(float));
  t.hostIndex.reserve(scored.size());
  std::memcpy(t.hostIndex.ptr, scored.data(), scored.size() * sizeof(int32_t));

  t.pixels.reserve(pixelBytes);
  t.weights.reserve(weights.size());
  t.index.reserve(scored.size());
  t.scores.reserve(size_t(total));
  t.hostScores.reserve(size_t(total));
  cudaStream_t st = t.stream;
  check(cudaEventRecord(t.marks[0], st), "cudaEventRecord");
  check(cudaMemcpyAsync(t.pixels.ptr, t.hostPixels.ptr, pixelBytes, cudaMemcpyHostToDevice, st), "upload pixels");
  check(cudaMemcpyAsync(t.weights.ptr, t.hostWeights.ptr, weights.size() * sizeof(float), cudaMemcpyHostToDevice, st), "upload weights");
  check(cudaMemcpyAsync(t.index.ptr, t.hostIndex.ptr, scored.size() * sizeof(int32_t), cudaMemcpyHostToDevice, st), "upload index");
  check(cudaEventRecord(t.marks[1], st), "cudaEventRecord");

  const float* dw = t.weights.ptr;
  const int count = int(scored.size());
  if (m.arch == Architecture::FocusLiteNN) {
    const bool share = cudasweep::sharesConvMap(m, g, count);
    FocusArgs a = cudasweep::focusArgs(m, g, used, share);
    a.pixels = t.pixels.ptr;
    a.table = dw;
    a.weight = dw + offsets[0];
    a.bias = dw + offsets[1];
    a.fc = m.kernels > 1 ? dw + offsets[2] : nullptr;
    a.index = t.index.ptr;
    a.scores = t.scores.ptr;
    if (share) {
      t.map.reserve(size_t(m.kernels) * size_t(a.mapH * a.mapW));
      a.map = t.map.ptr;
      for (int kk0 = 0; kk0 < m.kernels; kk0 += kChunk)
        focusMapKernel<<<blocksFor(a.mapH * a.mapW), kThreads, 0, st>>>(a, kk0, std::min(kChunk, m.kernels - kk0));
      check(cudaGetLastError(), "focusMapKernel launch");
      timing.sharedConvolution = true;
    }
    focusPatchKernel<<<count, kThreads, 0, st>>>(a);
    check(cudaGetLastError(), "focusPatchKernel launch");
  } else {
    // Activation sizes per patch, to pick a batch that keeps both buffers under ~512 MiB.
    int64_t H = g.patchHeight, W = g.patchWidth, largest = 3 * H * W;
    struct Shape { int64_t inC, inH, inW, outC, outH, outW; };
    std::vector<Shape> shapes;
    int64_t C = 3;
    for (const EonssLayer& L : m.eonss) {
      const int64_t oh = convOutputSize(H, L.kernel, L.stride, L.pad), ow = convOutputSize(W, L.kernel, L.stride, L.pad);
      shapes.push_back({C, H, W, L.outChannels, oh, ow});
      largest = std::max(largest, int64_t(L.outChannels) * oh * ow);
      C = L.outChannels;
      H = L.maxPool ? oh / 2 : oh;
      W = L.maxPool ? ow / 2 : ow;
    }
    const int batch = int(std::max<int64_t>(1, std::min<int64_t>(count, (int64_t(256) << 20) / (largest * 4))));
    t.act0.reserve(size_t(batch) * size_t(largest));
    t.act1.reserve(size_t(batch) * size_t(largest));
    for (int first = 0; first < count; first += batch) {
      const int b = std::min(batch, count - first);
      float* cur = t.act0.ptr;
      float* other = t.act1.ptr;
      eonssGatherKernel<<<blocksFor(int64_t(b) * 3 * g.patchWidth * g.patchHeight), kThreads, 0, st>>>(
          t.pixels.ptr, usedWidth, dw, t.index.ptr, first, b, int(g.columns), int(g.stride), int(g.patchWidth), int(g.patchHeight), cur);
      int64_t planeSize = 0;
      for (size_t l = 0; l < m.eonss.size(); ++l) {
        const EonssLayer& L = m.eonss[l];
        const Shape& sh = shapes[l];
        const size_t o = l * 4;
        convKernel<<<blocksFor(int64_t(b) * sh.outC * sh.outH * sh.outW), kThreads, 0, st>>>(
            cur, b, int(sh.inC), int(sh.inH), int(sh.inW), dw + offsets[o], dw + offsets[o + 1], int(sh.outC), L.kernel, L.stride, L.pad,
            int(sh.outH), int(sh.outW), other);
        std::swap(cur, other);
        if (L.gdn) {
          gdnKernel<<<blocksFor(int64_t(b) * sh.outH * sh.outW), kThreads, 0, st>>>(cur, b, int(sh.outC), int(sh.outH), int(sh.outW),
                                                                                   dw + offsets[o + 2], dw + offsets[o + 3], other);
          std::swap(cur, other);
        }
        planeSize = sh.outC * sh.outH * sh.outW;
        if (L.maxPool) {
          maxPoolKernel<<<blocksFor(int64_t(b) * sh.outC * (sh.outH / 2) * (sh.outW / 2)), kThreads, 0, st>>>(cur, b, int(sh.outC), int(sh.outH),
                                                                                                            int(sh.outW), other);
          std::swap(cur, other);
          planeSize = sh.outC * (sh.outH / 2) * (sh.outW / 2);
        }
      }
      eonssScatterKernel<<<(b + kThreads - 1) / kThreads, kThreads, 0, st>>>(cur, planeSize, t.index.ptr, first, b, t.scores.ptr);
      check(cudaGetLastError(), "EONSS kernel launch");
    }
  }
  check(cudaEventRecord(t.marks[2], st), "cudaEventRecord");
  check(cudaMemcpyAsync(t.hostScores.ptr, t.scores.ptr, size_t(total) * sizeof(float), cudaMemcpyDeviceToHost, st), "download scores");
  check(cudaEventRecord(t.marks[3], st), "cudaEventRecord");
  check(cudaStreamSynchronize(st), "kernel execution");
  for (int32_t i : scored) scores[i] = t.hostScores.ptr[i];
  float ms = 0.f;
  check(cudaEventElapsedTime(&ms, t.marks[0], t.marks[1]), "cudaEventElapsedTime");
  timing.uploadMs = ms;
  check(cudaEventElapsedTime(&ms, t.marks[1], t.marks[2]), "cudaEventElapsedTime");
  timing.kernelMs = ms;
  check(cudaEventElapsedTime(&ms, t.marks[2], t.marks[3]), "cudaEventElapsedTime");
  timing.downloadMs = ms;
  timing.wallMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wallStart).count();
  return timing;
}

}  // namespace fqa
