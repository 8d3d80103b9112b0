// Direct reader for JPEG-compressed tiled TIFF and Aperio SVS: tile offsets and JPEGTables come
// from libtiff once at open; regions are read with pread (thread-safe, no libtiff state) and each
// tile is decoded once by libjpeg(-turbo), with the colour space the TIFF declares, and copied
// into the region buffer. Other formats and
// compressions stay with OpenSlide. Plain C++, no Node types.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fqa {

struct JpegTiffLevel {
  int64_t width = 0, height = 0;
  int64_t tileWidth = 0, tileHeight = 0;
  std::vector<uint64_t> tileOffsets, tileBytes;  // row-major tiles
  std::vector<uint8_t> jpegTables;               // abbreviated tables stream, or empty
  bool rgbColorSpace = false;                    // Photometric RGB: JPEG data is RGB, not YCbCr (Aperio)
};

class TiffJpegReader {
 public:
  // Returns nullptr (and says why) when the file has no tiled 8-bit RGB JPEG pyramid.
  static std::shared_ptr<TiffJpegReader> open(const std::string& path, std::string* whyNot);
  ~TiffJpegReader();
  const std::vector<JpegTiffLevel>& levels() const { return levels_; }

  // width x height pixels of `level` starting at level pixel (x, y), RGB u8; outside the image is
  // white. Throws std::runtime_error on read or decode errors.
  void readLevelRegion(int level, int64_t x, int64_t y, int64_t width, int64_t height, uint8_t* rgb, int64_t rowStride) const;

 private:
  TiffJpegReader() = default;
  int fd_ = -1;
  std::string path_;
  std::vector<JpegTiffLevel> levels_;
};

}  // namespace fqa
