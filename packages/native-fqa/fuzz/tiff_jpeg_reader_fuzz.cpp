// libFuzzer target: the direct JPEG-tile reader (libtiff directory parsing, tile tables, JPEGTables
// splicing, libjpeg decoding) on arbitrary file bytes. Any input must open or be refused, and any
// region read must return pixels or throw std::exception: never crash, read out of bounds, or
// allocate without bound (libFuzzer's -rss_limit_mb catches that). Built with ASan/UBSan by
// scripts/fuzz.sh; seeds in fuzz/corpus/tiff_jpeg_reader.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "tiff_jpeg_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader takes a path (it preads tiles itself): the input goes to a private temp file.
  static const std::string path = "/tmp/fqa-fuzz-tiff-" + std::to_string(getpid()) + ".tif";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  std::string why;
  auto reader = fqa::TiffJpegReader::open(path, &why);
  if (!reader) return 0;
  for (int level = 0; level < int(reader->levels().size()); ++level) {
    const fqa::JpegTiffLevel& L = reader->levels()[size_t(level)];
    // A region over the first tiles, another straddling the image's edge.
    const int64_t w = std::min<int64_t>(256, L.tileWidth * 2), h = std::min<int64_t>(256, L.tileHeight * 2);
    std::vector<uint8_t> rgb(size_t(w * h * 3));
    for (const auto& [x, y] : {std::pair<int64_t, int64_t>{0, 0}, {L.width - w / 2, L.height - h / 2}}) {
      try {
        reader->readLevelRegion(level, x, y, w, h, rgb.data(), w * 3);
      } catch (const std::exception&) {
        // Damaged input is an exception with a message: the expected outcome.
      }
    }
  }
  return 0;
}
