// Whole-slide input through libopenslide, loaded at run time (dlopen) so that fqa builds and runs
// without it and says exactly how to install it when a slide needs it. Plain C++, no Node types.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fqa {

struct SlideLevel {
  int64_t width = 0, height = 0;
  double downsample = 1.0;
};

struct SlideInfo {
  std::string vendor;  // OpenSlide's detected vendor ("aperio", "generic-tiff", ...)
  std::vector<SlideLevel> levels;
  std::vector<std::pair<std::string, std::string>> properties;
};

// Throws std::runtime_error with install instructions when libopenslide cannot be loaded.
std::string openslideVersion();

class OpenSlideReader {
 public:
  // Throws std::runtime_error (file missing, format not recognized, damaged slide).
  static std::shared_ptr<OpenSlideReader> open(const std::string& path);
  ~OpenSlideReader();
  OpenSlideReader(const OpenSlideReader&) = delete;
  OpenSlideReader& operator=(const OpenSlideReader&) = delete;

  const SlideInfo& info() const { return info_; }

  // Reads a width x height region of `level` whose top-left corner is (x, y) in level-0 pixels,
  // as RGB u8 with the given row stride. Transparent pixels (outside the scanned area) become
  // white, partially transparent ones are un-premultiplied. Reads in strips so the temporary
  // ARGB buffer stays small. Thread-safe. Throws std::runtime_error with OpenSlide's message.
  void readRegion(int level, int64_t x, int64_t y, int64_t width, int64_t height, uint8_t* rgb, int64_t rowStride) const;

 private:
  OpenSlideReader() = default;
  void* handle_ = nullptr;
  SlideInfo info_;
};

}  // namespace fqa
