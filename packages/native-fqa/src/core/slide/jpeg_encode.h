// Baseline JPEG encoding of RGB pixels with libjpeg(-turbo), for the tiles of a report's zoomable
// view: a band of rows is cut into tiles and encoded on a libuv thread, without a copy per tile
// and without an image pipeline per tile (sharp's costs about as much as the encoding). Plain C++,
// no Node types.
#pragma once
#include <cstdint>
#include <vector>

namespace fqa {

// Columns [x0, x1) of `rows` rows of 8-bit RGB starting at `rgb`, rows `rowStride` bytes apart,
// as a JPEG file (4:2:0, `quality` 1..100). Throws std::invalid_argument for bad geometry and
// std::runtime_error with libjpeg's message for an encoder error.
std::vector<uint8_t> encodeJpeg(const uint8_t* rgb, int64_t rowStride, int64_t x0, int64_t x1, int64_t rows, int quality);

}  // namespace fqa
