// Direct reader for JPEG-compressed tiled TIFF and Aperio SVS: tile offsets and JPEGTables come
// from libtiff once at open; regions are read with pread (thread-safe, no libtiff state) and each
// tile is decoded once by libjpeg(-turbo), with the colour space the TIFF declares, and copied
// into the region buffer. Other formats and
// compressions stay with OpenSlide. Plain C++, no Node types.
#pragma once
#include <atomic>
#include <cstdint>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace fqa {

struct JpegTiffLevel {
  int64_t width = 0, height = 0;
  int64_t tileWidth = 0, tileHeight = 0;
  std::vector<uint64_t> tileOffsets, tileBytes;  // row-major tiles
  std::vector<uint8_t> jpegTables;               // abbreviated tables stream, or empty
  bool rgbColorSpace = false;                    // Photometric RGB: JPEG data is RGB, not YCbCr (Aperio)
  // 1 for a TIFF directory. d in {2, 4, 8} for a scaled level: the directory `sourceLevel` (an index
  // of levels()) decoded by libjpeg's scaled IDCT at 1/d, its tiles tileWidth/d x tileHeight/d at the
  // same offsets; width and height are ceil(source / d) (the last column and row may mix in the
  // encoder's padding of edge tiles).
  int scaleDenom = 1;
  int sourceLevel = -1;
};

class TiffJpegReader {
 public:
  // Returns nullptr (and says why) when the file has no tiled 8-bit RGB JPEG pyramid.
  static std::shared_ptr<TiffJpegReader> open(const std::string& path, std::string* whyNot);
  ~TiffJpegReader();
  // The TIFF's directories, widest first, then the scaled levels (scaleDenom > 1) of each directory
  // whose tile sides divide by 2, 4 or 8: a 40x slide scanned at 20x reads level 0 at 1/2 that way,
  // for a fraction of a full decode. Every level, scaled or not, is read and swept alike.
  const std::vector<JpegTiffLevel>& levels() const { return levels_; }

  // width x height pixels of `level` starting at level pixel (x, y), RGB u8; outside the image is
  // white. Throws std::runtime_error on read or decode errors.
  void readLevelRegion(int level, int64_t x, int64_t y, int64_t width, int64_t height, uint8_t* rgb, int64_t rowStride) const;

  // Tiles decoded so far and reads served from the cache: a scan that reads overlapping regions in
  // order decodes every tile once.
  int64_t tilesDecoded() const { return decoded_; }
  int64_t tileCacheHits() const { return hits_; }
  // Tiles decoded again after the cache had evicted them (0 when every tile was decoded once).
  int64_t tilesRedecoded() const { return redecoded_; }

  // One decoded-tile budget for every reader in the process (default 768 MiB); each reader also
  // keeps at most its own capacity (>= 256 MiB or 12 tile rows of its widest level).
  static void setProcessCacheBudget(int64_t bytes);
  // This reader's own capacity: lowered by a caller that reads in an order needing fewer tiles
  // cached (every tile held once costs fresh memory: page faults as dear as a third of its decode).
  void setCacheCapacity(int64_t bytes);
  int64_t cacheCapacity() const { return cacheCapacity_; }
  static int64_t processCacheBudget();
  static int64_t processCacheBytes();

 private:
  TiffJpegReader() = default;
  // Decoded pixels, carved from TileBuffers' slabs. Not zero-filled: the decoder writes every
  // byte (or the tile is an error).
  struct TilePixels {
    uint8_t* bytes;
    size_t length;
    uint8_t* data() const { return bytes; }
    size_t size() const { return length; }
  };
  using Tile = std::shared_ptr<const TilePixels>;
  // A decode's outcome, shared by every reader waiting for it: the tile, or its error's message.
  // Each waiter throws an exception of its own: one exception object rethrown on many threads
  // (a promise's set_exception) is freed by whichever releases it last, through a reference count
  // in the uninstrumented C++ runtime that ThreadSanitizer reports as a race.
  struct Decoded {
    Tile tile;
    std::string error;
  };
  // The decoded tile, from the cache or decoded now; concurrent readers of one tile wait for a
  // single decode.
  Tile tile(int level, size_t index) const;
  Tile decodeTile(int level, size_t index) const;

  // Tile buffers, reused for the next decodes once evicted: a fresh buffer's page faults cost a
  // third as much again as decoding into it.
  struct TileBuffers;
  std::shared_ptr<TileBuffers> buffers_;

  int fd_ = -1;
  uint64_t fileBytes_ = 0;
  std::string path_;
  std::vector<JpegTiffLevel> levels_;
  // LRU cache of decoded tiles, large enough to keep the tiles that a scan's ~2048-px regions share
  // with the next row of regions (at least 256 MB, or 12 tile rows of the widest level).
  mutable std::mutex cacheLock_;
  // A failed decode is erased before its waiters see it, so every ready entry holds a tile.
  mutable std::map<std::pair<int, size_t>, std::pair<std::shared_future<Decoded>, std::list<std::pair<int, size_t>>::iterator>> cache_;
  mutable std::list<std::pair<int, size_t>> recency_;  // front = most recent
  mutable int64_t cachedBytes_ = 0;
  std::atomic<int64_t> cacheCapacity_{0};
  mutable std::atomic<int64_t> decoded_{0}, hits_{0}, redecoded_{0};
  mutable std::set<std::pair<int, size_t>> everDecoded_;  // guarded by cacheLock_
};

}  // namespace fqa
