#include "openslide_reader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <mutex>
#include <stdexcept>

namespace fqa {

namespace {

// The subset of the OpenSlide 3.4 / 4.0 C API fqa uses (ABI-stable across both).
struct OpenSlideApi {
  void* lib = nullptr;
  const char* (*get_version)() = nullptr;
  const char* (*detect_vendor)(const char*) = nullptr;
  void* (*open)(const char*) = nullptr;
  void (*close)(void*) = nullptr;
  const char* (*get_error)(void*) = nullptr;
  int32_t (*get_level_count)(void*) = nullptr;
  void (*get_level_dimensions)(void*, int32_t, int64_t*, int64_t*) = nullptr;
  double (*get_level_downsample)(void*, int32_t) = nullptr;
  void (*read_region)(void*, uint32_t*, int64_t, int64_t, int32_t, int64_t, int64_t) = nullptr;
  const char* const* (*get_property_names)(void*) = nullptr;
  const char* (*get_property_value)(void*, const char*) = nullptr;
  std::string loadError;
};

const OpenSlideApi& api() {
  static OpenSlideApi a;
  static std::once_flag once;
  std::call_once(once, [] {
    for (const char* name : {"libopenslide.so.1", "libopenslide.so.0", "libopenslide.so", "libopenslide.1.dylib", "libopenslide.0.dylib"}) {
      a.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (a.lib) break;
    }
    if (!a.lib) {
      a.loadError =
          "OpenSlide (libopenslide) is not installed, and this slide format needs it. Install it: "
          "Debian/Ubuntu `apt-get install libopenslide0`, Fedora `dnf install openslide`, macOS `brew install openslide`";
      return;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(a.lib, name));
      if (!fn && a.loadError.empty()) a.loadError = std::string("libopenslide lacks ") + name + ": OpenSlide 3.4 or newer is needed";
    };
    sym(a.get_version, "openslide_get_version");
    sym(a.detect_vendor, "openslide_detect_vendor");
    sym(a.open, "openslide_open");
    sym(a.close, "openslide_close");
    sym(a.get_error, "openslide_get_error");
    sym(a.get_level_count, "openslide_get_level_count");
    sym(a.get_level_dimensions, "openslide_get_level_dimensions");
    sym(a.get_level_downsample, "openslide_get_level_downsample");
    sym(a.read_region, "openslide_read_region");
    sym(a.get_property_names, "openslide_get_property_names");
    sym(a.get_property_value, "openslide_get_property_value");
  });
  if (!a.loadError.empty()) throw std::runtime_error(a.loadError);
  return a;
}

}  // namespace

std::string openslideVersion() { return api().get_version(); }

std::shared_ptr<OpenSlideReader> OpenSlideReader::open(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) throw std::runtime_error(path + ": file not found");
  if (S_ISDIR(st.st_mode)) throw std::runtime_error(path + ": is a directory, not a slide");
  if (st.st_size == 0) throw std::runtime_error(path + ": empty file (0 bytes)");
  const OpenSlideApi& a = api();
  const char* vendor = a.detect_vendor(path.c_str());
  void* osr = a.open(path.c_str());
  if (!osr) throw std::runtime_error(path + ": not a slide format OpenSlide can read");
  std::shared_ptr<OpenSlideReader> reader(new OpenSlideReader());
  reader->handle_ = osr;
  if (const char* err = a.get_error(osr)) throw std::runtime_error(path + ": damaged or unreadable slide (OpenSlide: " + err + ")");
  reader->info_.vendor = vendor ? vendor : "unknown";
  const int32_t count = a.get_level_count(osr);
  if (count <= 0) throw std::runtime_error(path + ": slide has no levels");
  for (int32_t l = 0; l < count; ++l) {
    SlideLevel level;
    a.get_level_dimensions(osr, l, &level.width, &level.height);
    level.downsample = a.get_level_downsample(osr, l);
    if (level.width <= 0 || level.height <= 0) throw std::runtime_error(path + ": level " + std::to_string(l) + " has no pixels");
    reader->info_.levels.push_back(level);
  }
  if (const char* const* names = a.get_property_names(osr))
    for (; *names; ++names) {
      const char* value = a.get_property_value(osr, *names);
      reader->info_.properties.emplace_back(*names, value ? value : "");
    }
  if (const char* err = a.get_error(osr)) throw std::runtime_error(path + ": damaged or unreadable slide (OpenSlide: " + err + ")");
  return reader;
}

OpenSlideReader::~OpenSlideReader() {
  if (handle_) api().close(handle_);
}

void OpenSlideReader::readRegion(int level, int64_t x, int64_t y, int64_t width, int64_t height, uint8_t* rgb,
                                 int64_t rowStride) const {
  const OpenSlideApi& a = api();
  if (level < 0 || level >= int(info_.levels.size())) throw std::range_error("level " + std::to_string(level) + " does not exist");
  if (width <= 0 || height <= 0) throw std::range_error("region width and height must be positive");
  if (rowStride < 3 * width) throw std::range_error("rowStride must be at least 3 * width");
  const int64_t strip = std::max<int64_t>(1, std::min<int64_t>(height, (int64_t(1) << 22) / width));
  std::vector<uint32_t> argb(size_t(strip * width));
  const double downsample = info_.levels[size_t(level)].downsample;
  for (int64_t row = 0; row < height; row += strip) {
    const int64_t rows = std::min(strip, height - row);
    // read_region takes the level-0 position of the strip's top-left corner.
    a.read_region(handle_, argb.data(), x, y + int64_t(double(row) * downsample + 0.5), level, width, rows);
    if (const char* err = a.get_error(handle_)) throw std::runtime_error(std::string("OpenSlide read failed: ") + err);
    for (int64_t r = 0; r < rows; ++r) {
      const uint32_t* src = argb.data() + r * width;
      uint8_t* dst = rgb + (row + r) * rowStride;
      for (int64_t i = 0; i < width; ++i) {
        const uint32_t p = src[i];
        const uint32_t alpha = p >> 24;
        uint32_t red = (p >> 16) & 0xff, green = (p >> 8) & 0xff, blue = p & 0xff;
        if (alpha == 0) {
          red = green = blue = 255;  // outside the scanned area: background
        } else if (alpha != 255) {
          red = std::min<uint32_t>(255, (red * 255 + alpha / 2) / alpha);
          green = std::min<uint32_t>(255, (green * 255 + alpha / 2) / alpha);
          blue = std::min<uint32_t>(255, (blue * 255 + alpha / 2) / alpha);
        }
        dst[3 * i] = uint8_t(red);
        dst[3 * i + 1] = uint8_t(green);
        dst[3 * i + 2] = uint8_t(blue);
      }
    }
  }
}

}  // namespace fqa
