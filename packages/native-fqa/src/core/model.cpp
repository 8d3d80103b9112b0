#include "model.h"

#include <cmath>
#include <stdexcept>

namespace fqa {

namespace {

void requireSize(const std::vector<float>& v, size_t expected, const std::string& name) {
  if (v.size() != expected)
    throw std::invalid_argument("Expected " + std::to_string(expected) + " values for " + name +
                                " but received " + std::to_string(v.size()));
  for (float x : v)
    if (!std::isfinite(x)) throw std::invalid_argument("Non-finite weight in " + name);
}

void finalizeEonss(Model& m) {
  if (m.eonss.size() != size_t(kModelLimits.eonssLayers))
    throw std::invalid_argument("EONSS needs 6 layers (conv1-4, st2_fc1, st2_fc2) but received " +
                                std::to_string(m.eonss.size()));
  int64_t size = m.patchSize;
  for (size_t li = 0; li < m.eonss.size(); ++li) {
    EonssLayer& L = m.eonss[li];
    const std::string name = "eonss layer " + std::to_string(li + 1);
    if (L.inChannels <= 0 || L.outChannels <= 0 || L.inChannels > kModelLimits.eonssChannelsMax ||
        L.outChannels > kModelLimits.eonssChannelsMax || L.kernel <= 0 || L.kernel > kModelLimits.eonssKernelMax ||
        L.stride <= 0 || L.stride > kModelLimits.eonssStrideMax || L.pad < 0 || L.pad >= L.kernel)
      throw std::invalid_argument("Invalid geometry for " + name);
    if (li == 0 && L.inChannels != 3) throw std::invalid_argument("EONSS conv1 must take 3 channels");
    if (li > 0 && L.inChannels != m.eonss[li - 1].outChannels)
      throw std::invalid_argument("Channel mismatch at " + name);
    requireSize(L.weight, size_t(L.outChannels) * L.inChannels * L.kernel * L.kernel, name + " weight");
    requireSize(L.bias, size_t(L.outChannels), name + " bias");
    if (L.gdn) {
      requireSize(L.gdnGamma, size_t(L.outChannels) * L.outChannels, name + " gdn gamma");
      requireSize(L.gdnBeta, size_t(L.outChannels), name + " gdn beta");
    }
    size = convOutputSize(size, L.kernel, L.stride, L.pad);
    if (L.maxPool) size /= 2;
    if (size <= 0)
      throw std::invalid_argument("EONSS patch size " + std::to_string(m.patchSize) +
                                  " is too small for its layers");
    L.weightPacked.assign(L.weight.size(), 0.f);
    for (int o = 0; o < L.outChannels; ++o)
      for (int c = 0; c < L.inChannels; ++c)
        for (int ky = 0; ky < L.kernel; ++ky)
          for (int kx = 0; kx < L.kernel; ++kx)
            L.weightPacked[((size_t(ky) * L.kernel + kx) * L.inChannels + c) * L.outChannels + o] =
                L.weight[((size_t(o) * L.inChannels + c) * L.kernel + ky) * L.kernel + kx];
  }
  if (size != 1 || m.eonss.back().outChannels != 1)
    throw std::invalid_argument("EONSS layers must reduce a " + std::to_string(m.patchSize) +
                                " px patch to one score");
}

}  // namespace

void finalizeModel(Model& m) {
  if (m.patchSize < kModelLimits.patchMin || m.patchSize > kModelLimits.patchMax)
    throw std::invalid_argument("Expected integer between " + std::to_string(kModelLimits.patchMin) + " and " +
                                std::to_string(kModelLimits.patchMax) + " for patchSize but received " +
                                std::to_string(m.patchSize));
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(m.mean[c]) || !std::isfinite(m.std[c]) || !(m.std[c] > 0.f))
      throw std::invalid_argument("Normalization mean/std must be finite with std > 0");
    for (int v = 0; v < 256; ++v)
      m.normalizeTable[c][v] = (float(v) / 255.f - m.mean[c]) / m.std[c];
  }
  if (m.arch == Architecture::EONSS) return finalizeEonss(m);

  if (m.kernels < 1 || m.kernels > kModelLimits.focusKernelsMax)
    throw std::invalid_argument("Expected integer between 1 and " + std::to_string(kModelLimits.focusKernelsMax) + " for kernels but received " +
                                std::to_string(m.kernels));
  if (m.convKernel < 1 || m.convKernel > kModelLimits.focusConvKernelMax)
    throw std::invalid_argument("Expected integer between 1 and " + std::to_string(kModelLimits.focusConvKernelMax) + " for conv kernel but received " +
                                std::to_string(m.convKernel));
  if (m.convStride < 1 || m.convStride > kModelLimits.focusConvStrideMax)
    throw std::invalid_argument("Expected integer between 1 and " + std::to_string(kModelLimits.focusConvStrideMax) + " for conv stride but received " +
                                std::to_string(m.convStride));
  if (m.convPad < 0 || m.convPad >= m.convKernel)
    throw std::invalid_argument("Expected integer between 0 and kernel-1 for conv pad but received " +
                                std::to_string(m.convPad));
  if (convOutputSize(m.patchSize, m.convKernel, m.convStride, m.convPad) < 1)
    throw std::invalid_argument("Patch size is smaller than the convolution kernel");
  requireSize(m.convWeight, size_t(m.kernels) * 3 * m.convKernel * m.convKernel, "conv.weight");
  requireSize(m.convBias, size_t(m.kernels), "conv.bias");
  if (m.kernels > 1) requireSize(m.fcWeight, size_t(m.kernels), "fc.weight");
  else if (!m.fcWeight.empty()) throw std::invalid_argument("A 1-kernel FocusLiteNN has no fc layer");
  if (!std::isfinite(m.fcBias)) throw std::invalid_argument("Non-finite weight in fc.bias");
}

double Model::flopsPerPatch(int w, int h) const {
  if (arch == Architecture::FocusLiteNN) {
    double outputs = double(convOutputSize(w, convKernel, convStride, convPad)) *
                     double(convOutputSize(h, convKernel, convStride, convPad));
    return 2.0 * outputs * kernels * 3 * convKernel * convKernel;
  }
  double flops = 0;
  int64_t size = w;
  for (const EonssLayer& L : eonss) {
    size = convOutputSize(size, L.kernel, L.stride, L.pad);
    flops += 2.0 * size * size * L.outChannels * L.inChannels * L.kernel * L.kernel;
    if (L.gdn) flops += 2.0 * size * size * L.outChannels * L.outChannels;
    if (L.maxPool) size /= 2;
  }
  return flops;
}

}  // namespace fqa
