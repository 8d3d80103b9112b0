// Seeded random models and images shared by the standalone tests (core_test, cuda_check).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "model.h"
#include "sweep.h"

namespace fqa {

inline Model randomFocusLite(std::mt19937& rng, int k, int K, int s, int pad, int patch, bool normalize) {
  std::normal_distribution<float> n(0.f, 0.2f);
  Model m;
  m.arch = Architecture::FocusLiteNN;
  m.kernels = k;
  m.convKernel = K;
  m.convStride = s;
  m.convPad = pad;
  m.patchSize = patch;
  for (int i = 0; i < k * 3 * K * K; ++i) m.convWeight.push_back(n(rng));
  for (int i = 0; i < k; ++i) m.convBias.push_back(n(rng));
  if (k > 1) for (int i = 0; i < k; ++i) m.fcWeight.push_back(n(rng));
  m.fcBias = n(rng);
  if (normalize) { m.mean = {0.7f, 0.5f, 0.6f}; m.std = {0.15f, 0.2f, 0.12f}; }
  finalizeModel(m);
  return m;
}

inline Model randomEonss(std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-0.3f, 0.3f), pos(0.05f, 0.3f);
  Model m;
  m.arch = Architecture::EONSS;
  m.patchSize = 235;
  struct Shape { int in, out, k, s, p; bool gdn, pool; };
  const Shape shapes[] = {{3, 8, 5, 2, 2, true, true},   {8, 16, 5, 2, 2, true, true},
                          {16, 32, 5, 2, 2, true, true}, {32, 64, 3, 1, 0, true, true},
                          {64, 256, 1, 1, 0, true, false}, {256, 1, 1, 1, 0, false, false}};
  for (const Shape& sh : shapes) {
    EonssLayer L;
    L.inChannels = sh.in; L.outChannels = sh.out; L.kernel = sh.k; L.stride = sh.s; L.pad = sh.p;
    L.gdn = sh.gdn; L.maxPool = sh.pool;
    for (int i = 0; i < sh.out * sh.in * sh.k * sh.k; ++i) L.weight.push_back(u(rng) / std::sqrt(float(sh.in * sh.k)));
    for (int i = 0; i < sh.out; ++i) L.bias.push_back(u(rng));
    if (sh.gdn) {
      for (int i = 0; i < sh.out * sh.out; ++i) L.gdnGamma.push_back(pos(rng) / sh.out);
      for (int i = 0; i < sh.out; ++i) L.gdnBeta.push_back(1.f + pos(rng));
    }
    m.eonss.push_back(L);
  }
  finalizeModel(m);
  return m;
}

struct Image {
  int64_t w, h, stride;
  std::vector<uint8_t> px;
  Region region() const { return Region{px.data(), w, h, stride, int64_t(px.size())}; }
};

// Smooth structure plus noise, with a row stride wider than the pixels.
inline Image randomImage(std::mt19937& rng, int64_t w, int64_t h) {
  Image im{w, h, 3 * w + 17, {}};
  im.px.resize(size_t(im.stride * h));
  std::uniform_int_distribution<int> noise(0, 60);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        im.px[y * im.stride + x * 3 + c] = uint8_t(std::min(255.0, 120 + 70 * std::sin(x * 0.05 + c) * std::cos(y * 0.07) + noise(rng)));
  return im;
}

}  // namespace fqa
