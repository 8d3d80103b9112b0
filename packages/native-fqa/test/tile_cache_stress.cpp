// Stress test of the direct reader's tile cache (TiffJpegReader::tile): 8 threads read one- and
// four-tile regions of a JPEG-tiled TIFF in random order through a cache of three tiles, so almost
// every decode evicts, while every fifth tile is damaged and fails to decode. Every read must give
// the pixels a lone reader decodes or, where it covers a damaged tile, that tile's decode error
// (std::runtime_error naming the tile); and when the reader is gone the process-wide cache count is
// back to zero. `npm run test:tsan` runs it under ThreadSanitizer (build-tsan/); the plain build runs
// it too (core-binary.test.ts). Writes its TIFF to $TMPDIR (default /tmp).
#include <tiffio.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tiff_jpeg_reader.h"

namespace {

constexpr int kSide = 256, kTile = 32, kAcross = kSide / kTile;
constexpr int kThreads = 8, kReadsPerThread = 1500;

bool damaged(int tile) { return tile % 5 == 2; }

// A 256 x 256 RGB image in 32 px JPEG tiles (abbreviated, with JPEGTables), each tile its own colour
// ramp, then the bytes after the SOI of every damaged tile zeroed (libjpeg: "Corrupt JPEG data").
std::string writeTiff() {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/fqa-tile-cache-stress-" + std::to_string(getpid()) + ".tif";
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  if (!tif) throw std::runtime_error("cannot write " + path);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, kSide);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, kSide);
  TIFFSetField(tif, TIFFTAG_TILEWIDTH, kTile);
  TIFFSetField(tif, TIFFTAG_TILELENGTH, kTile);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
  TIFFSetField(tif, TIFFTAG_JPEGQUALITY, 90);
  std::vector<uint8_t> tile(kTile * kTile * 3);
  for (int t = 0; t < kAcross * kAcross; ++t) {
    for (int i = 0; i < kTile * kTile; ++i) {
      tile[3 * i] = uint8_t(t * 29 + i % kTile * 4);
      tile[3 * i + 1] = uint8_t(t * 53 + i / kTile * 4);
      tile[3 * i + 2] = uint8_t(t * 7);
    }
    if (TIFFWriteEncodedTile(tif, uint32_t(t), tile.data(), tsize_t(tile.size())) < 0) throw std::runtime_error("cannot encode tile");
  }
  TIFFClose(tif);
  std::string why;
  auto reader = fqa::TiffJpegReader::open(path, &why);
  if (!reader) throw std::runtime_error(path + ": " + why);
  const fqa::JpegTiffLevel& L = reader->levels()[0];
  FILE* f = std::fopen(path.c_str(), "r+b");
  for (int t = 0; t < kAcross * kAcross; ++t) {
    if (!damaged(t)) continue;
    const std::vector<uint8_t> zeros(std::min<uint64_t>(16, L.tileBytes[size_t(t)] - 2), 0);
    std::fseek(f, long(L.tileOffsets[size_t(t)] + 2), SEEK_SET);
    std::fwrite(zeros.data(), 1, zeros.size(), f);
  }
  std::fclose(f);
  return path;
}

// A region of tiles [tx, tx + n) x [ty, ty + n), read by `reader`: "" and its pixels, or the error.
std::string read(const fqa::TiffJpegReader& reader, int tx, int ty, int n, std::vector<uint8_t>& rgb) {
  rgb.assign(size_t(n * kTile * n * kTile * 3), 0);
  try {
    reader.readLevelRegion(0, tx * kTile, ty * kTile, n * kTile, n * kTile, rgb.data(), n * kTile * 3);
    return "";
  } catch (const std::runtime_error& e) {
    return std::string("runtime_error: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what();  // std::future_error and the like: a failure
  }
}

}  // namespace

int main() {
  const std::string path = writeTiff();
  int failures = 0;
  auto fail = [&](const std::string& what) {
    if (++failures <= 10) std::printf("FAIL: %s\n", what.c_str());
  };
  // The oracle: each tile read alone by a reader of its own, one thread.
  std::vector<std::vector<uint8_t>> expected(kAcross * kAcross);
  {
    auto lone = fqa::TiffJpegReader::open(path, nullptr);
    for (int t = 0; t < kAcross * kAcross; ++t) {
      const std::string error = read(*lone, t % kAcross, t / kAcross, 1, expected[size_t(t)]);
      if (damaged(t) != !error.empty()) fail("tile " + std::to_string(t) + (error.empty() ? " decodes although damaged" : " fails: " + error));
      if (damaged(t) && error.find("is damaged") == std::string::npos) fail("tile " + std::to_string(t) + ": " + error);
    }
  }
  auto reader = fqa::TiffJpegReader::open(path, nullptr);
  reader->setCacheCapacity(3 * kTile * kTile * 3);  // three tiles: nearly every decode evicts
  std::atomic<int64_t> reads{0}, errors{0}, mismatches{0}, wrongErrors{0};
  std::vector<std::thread> threads;
  for (int id = 0; id < kThreads; ++id)
    threads.emplace_back([&, id] {
      std::mt19937 random(uint32_t(id + 1));
      std::vector<uint8_t> rgb;
      for (int i = 0; i < kReadsPerThread; ++i) {
        // Mostly a few neighbouring tiles, so threads meet on the same tiles, pending and failed.
        const int n = random() % 4 == 0 ? 2 : 1;
        const int tx = int(random() % 4) + (id % 2) * (kAcross - 4 - n + 1), ty = int(random() % (kAcross - n + 1));
        const std::string error = read(*reader, tx, ty, n, rgb);
        bool anyDamaged = false;
        for (int dy = 0; dy < n; ++dy)
          for (int dx = 0; dx < n; ++dx) anyDamaged |= damaged((ty + dy) * kAcross + tx + dx);
        ++reads;
        if (!error.empty()) {
          ++errors;
          if (!anyDamaged || error.rfind("runtime_error: ", 0) != 0 || error.find("is damaged") == std::string::npos) {
            if (++wrongErrors == 1) std::printf("FAIL: a read of %dx%d tiles at (%d, %d) threw %s\n", n, n, tx, ty, error.c_str());
          }
          continue;
        }
        if (anyDamaged) {
          ++wrongErrors;
          continue;
        }
        for (int dy = 0; dy < n; ++dy)
          for (int dx = 0; dx < n; ++dx)
            for (int row = 0; row < kTile; ++row)
              if (std::memcmp(rgb.data() + ((dy * kTile + row) * n * kTile + dx * kTile) * 3,
                              expected[size_t((ty + dy) * kAcross + tx + dx)].data() + row * kTile * 3, kTile * 3) != 0) {
                ++mismatches;
                dy = dx = n;
                break;
              }
      }
    });
  for (auto& t : threads) t.join();
  if (wrongErrors > 0) fail(std::to_string(wrongErrors.load()) + " reads failed with the wrong error or succeeded over a damaged tile");
  if (mismatches > 0) fail(std::to_string(mismatches.load()) + " reads returned other pixels than a lone reader");
  if (errors == 0) fail("no read met a damaged tile");
  if (reader->tilesRedecoded() == 0) fail("the cache never evicted (no tile decoded twice)");
  std::printf("%lld reads on %d threads, %lld decode errors (as expected), %lld tiles decoded, %lld decoded again after eviction, %lld cache hits\n",
              (long long)reads.load(), kThreads, (long long)errors.load(), (long long)reader->tilesDecoded(),
              (long long)reader->tilesRedecoded(), (long long)reader->tileCacheHits());
  reader.reset();
  if (fqa::TiffJpegReader::processCacheBytes() != 0)
    fail("the process-wide cache still counts " + std::to_string(fqa::TiffJpegReader::processCacheBytes()) + " bytes after the reader closed");
  std::remove(path.c_str());
  std::printf("%s\n", failures == 0 ? "tile cache stress: ok" : "tile cache stress: FAILED");
  return failures == 0 ? 0 : 1;
}
