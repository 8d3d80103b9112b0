#include "jpeg_encode.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <jpeglib.h>

#include "jpeg_error.h"

namespace fqa {
namespace {

// The encoding itself, with no C++ object that has a destructor between setjmp and longjmp: the
// output is libjpeg's malloc'ed buffer, freed by the caller. Returns an empty string or the error.
std::string encodeInto(const uint8_t* first, int64_t rowStride, int64_t width, int64_t rows, int quality, unsigned char** out,
                       unsigned long* outBytes) {
  jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.manager);
  err.manager.error_exit = jpegErrorExit;
  err.manager.output_message = [](j_common_ptr) {};
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    return err.message;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, outBytes);
  cinfo.image_width = JDIMENSION(width);
  cinfo.image_height = JDIMENSION(rows);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);  // YCbCr, 4:2:0, Huffman tables of the standard
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(first + int64_t(cinfo.next_scanline) * rowStride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return {};
}

}  // namespace

std::vector<uint8_t> encodeJpeg(const uint8_t* rgb, int64_t rowStride, int64_t x0, int64_t x1, int64_t rows, int quality) {
  // JPEG's own limit is 65,535 px a side; a view tile is a few hundred.
  if (x0 < 0 || x1 <= x0 || x1 - x0 > 65535 || rows < 1 || rows > 65535 || 3 * x1 > rowStride)
    throw std::invalid_argument("JPEG tile columns " + std::to_string(x0) + ".." + std::to_string(x1) + " x " + std::to_string(rows) +
                                " rows do not fit rows of " + std::to_string(rowStride) + " bytes");
  if (quality < 1 || quality > 100) throw std::invalid_argument("JPEG quality " + std::to_string(quality) + " is not 1..100");
  unsigned char* out = nullptr;
  unsigned long outBytes = 0;
  const std::string error = encodeInto(rgb + 3 * x0, rowStride, x1 - x0, rows, quality, &out, &outBytes);
  std::vector<uint8_t> file;
  if (error.empty() && out != nullptr) file.assign(out, out + outBytes);
  std::free(out);
  if (!error.empty()) throw std::runtime_error("JPEG encoding: " + error);
  return file;
}

}  // namespace fqa
