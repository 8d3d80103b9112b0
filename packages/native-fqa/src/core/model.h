// The in-memory model the kernels run: plain data, no Node types.
// The TypeScript layer parses and validates model files; validateModel() re-checks
// everything the kernels rely on, so a bad call from any caller is an exception, never a crash.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace fqa {

enum class Architecture { FocusLiteNN, EONSS };

// The limits of a model spec, written once: finalizeModel and the binding check them, and the
// binding exports them (modelLimits()), so TypeScript validates model files against the same numbers.
struct ModelLimits {
  int patchMin = 8, patchMax = 4096;
  int focusKernelsMax = 256, focusConvKernelMax = 31, focusConvStrideMax = 31;
  int eonssLayers = 6, eonssChannelsMax = 256, eonssKernelMax = 15, eonssStrideMax = 15;
};
inline constexpr ModelLimits kModelLimits{};

// One EONSS convolution stage: conv (weights repacked for the fast path), then GDN, then an
// optional 2x2 max pool. The fully connected head is stored as 1x1 convolutions.
struct EonssLayer {
  int inChannels = 0, outChannels = 0, kernel = 0, stride = 1, pad = 0;
  bool gdn = true, maxPool = true;
  std::vector<float> weight;        // PyTorch order [out][in][ky][kx]
  std::vector<float> weightPacked;  // fast-path order [ky][kx][in][out]
  std::vector<float> bias;          // [out]
  std::vector<float> gdnGamma;      // [j][i] as stored by PyTorch (tx2.mm(gamma))
  std::vector<float> gdnBeta;       // [out]
};

struct Model {
  Architecture arch = Architecture::FocusLiteNN;
  int patchSize = 235;                       // the window the model was trained on
  std::array<float, 3> mean{0.f, 0.f, 0.f};  // applied after x/255
  std::array<float, 3> std{1.f, 1.f, 1.f};

  // FocusLiteNN: conv 3->k (kernel x kernel, stride, zero pad), min over the map, 1x1 fc when k > 1.
  int kernels = 0, convKernel = 7, convStride = 5, convPad = 1;
  std::vector<float> convWeight;  // [k][3][ky][kx]
  std::vector<float> convBias;    // [k]
  std::vector<float> fcWeight;    // [k] (empty when k == 1)
  float fcBias = 0.f;

  // EONSS: conv1..conv4 (with GDN and max pool), st2_fc1 (GDN), st2_fc2.
  std::vector<EonssLayer> eonss;

  // Derived on finalize(): normalized value of every u8 level per channel, so EONSS's sweep
  // normalizes with one table load instead of a divide (FocusLiteNN folds it into its weights).
  std::array<std::array<float, 256>, 3> normalizeTable{};

  // FLOPs (2 per multiply-add) of one window of the model's own patch size, for benchmarks.
  double flopsPerPatch(int patchWidth, int patchHeight) const;
};

// Checks shapes and geometry, derives tables and packed weights. Throws std::invalid_argument.
void finalizeModel(Model& model);

// Output size of a convolution along one axis; <= 0 when the window is too small.
inline int64_t convOutputSize(int64_t input, int kernel, int stride, int pad) {
  int64_t span = input + 2 * int64_t(pad) - kernel;
  return span < 0 ? 0 : span / stride + 1;
}

}  // namespace fqa
