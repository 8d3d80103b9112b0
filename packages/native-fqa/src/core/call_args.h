// The size checks of the binding's entries (src/binding/addon.cpp), without Node types so that the
// binding-argument fuzzer (fuzz/binding_args_fuzz.cpp) calls the same code. The binding has already
// checked each number against its range; these check what the numbers make together (products,
// sums, buffer lengths) with checked arithmetic (checked.h): a bad combination is a
// std::range_error (a JS RangeError), never a wrapped size.
#pragma once
#include <cstdint>
#include <cstddef>

#include "model.h"
#include "sweep.h"

namespace fqa {

// sweep()/sweepSync(): the grid of patchWidth x patchHeight patches every `stride` px over the
// region, checked against the region's buffer and the model (validateSweep) and against a skip mask
// of skipEntries bytes (-1: no mask).
PatchGrid sweepCallGrid(const Model& model, const Region& region, int64_t patchWidth, int64_t patchHeight, int64_t stride,
                        int64_t skipEntries);

// The largest region readRegion() reads at once, in pixels.
constexpr int64_t kMaxReadPixels = int64_t(1) << 28;
// readRegion(): the byte count of a width x height RGB read.
int64_t readRegionBytes(int64_t width, int64_t height);

// readRegion()/sweepRegions(): the level pixel of a level-0 position (x / downsample, as OpenSlide
// computes it). The downsample comes from the slide file: a result that is not finite or lies beyond
// 2^40 px is a std::range_error, not a double converted out of int64's range.
int64_t levelPosition(int64_t level0, double downsample);

// sweepRegions(): the patch count of `regions` regions given as (x, y, columns, rows) in turn,
// which the skip mask of skipEntries bytes must equal.
int64_t regionPatchCount(const int64_t* geometry, size_t regions, int64_t skipEntries);

// trainForward()/trainBackward(): `count` RGB patches of size x size px must be byteLength bytes.
int64_t checkPatchBatch(int64_t count, int64_t size, int64_t byteLength);  // returns byteLength

}  // namespace fqa
