// Forward with argmin and backward for FocusLiteNN on a batch of patches, for training. The min
// pooling routes each kernel's gradient to the one conv output that was smallest, so a backward
// pass only needs that window of the input. Plain C++; threads over patches.
#pragma once
#include <cstdint>

#include "model.h"

namespace fqa {

struct PatchBatch {
  const uint8_t* pixels = nullptr;  // n patches, each size*size RGB u8, contiguous
  int64_t count = 0;
  int64_t size = 0;
};

// scores[n]; mins[n*k] (conv min before bias); argmin[n*k] (row*outW + col of the min).
void focusliteForwardBatch(const Model& m, const PatchBatch& b, int threads, float* scores, float* mins, int32_t* argmin);

// Gradient of sum_n upstream[n] * score[n] with respect to every parameter, given the forward's
// mins/argmin. gradConv[k*3*K*K], gradBias[k], gradFc[k] (k > 1), gradFcBias[1] (k > 1).
void focusliteBackwardBatch(const Model& m, const PatchBatch& b, const float* mins, const int32_t* argmin,
                            const float* upstream, double* gradConv, double* gradBias, double* gradFc, double* gradFcBias);

}  // namespace fqa
