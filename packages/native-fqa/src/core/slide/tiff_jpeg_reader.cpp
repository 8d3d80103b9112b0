#include "tiff_jpeg_reader.h"

#include "jpeg_error.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <map>
#include <new>

#include <jpeglib.h>
#include <stdexcept>

namespace fqa {

namespace {

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};

void quietTiffWarnings(const char*, const char*, va_list) {}

// Decoded tiles held by every reader in the process, and the most they may hold together: many
// slides open at once (concurrent scanSlide calls) share one budget instead of each keeping its own.
constexpr uint64_t kMaxTilePixels = uint64_t(1) << 24;

std::atomic<int64_t> processCachedBytes{0};
std::atomic<int64_t> processBudget{int64_t(768) << 20};

// libjpeg reports damaged entropy-coded data ("Corrupt JPEG data: ...", "Premature end of JPEG
// file") as a warning (level -1) and decodes garbage on: a warning is an error here, as OpenSlide
// treats it, so a damaged tile is never scored. Levels >= 0 are trace messages.
void jpegEmitMessage(j_common_ptr cinfo, int level) {
  if (level < 0) jpegErrorExit(cinfo);
}

// Decodes one JPEG into out (width x height x 3) at scale 1/scaleDenom (libjpeg's scaled IDCT: each
// 8x8 block becomes 8/d x 8/d pixels, no full-size pixels are made); returns an empty string or the
// error. No C++ objects with destructors live between setjmp and longjmp.
std::string decodeJpeg(const uint8_t* data, size_t bytes, bool rgbColorSpace, int scaleDenom, uint8_t* out, int64_t width, int64_t height) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.manager);
  err.manager.error_exit = jpegErrorExit;
  err.manager.output_message = [](j_common_ptr) {};
  err.manager.emit_message = jpegEmitMessage;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return err.message;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)bytes);
  jpeg_read_header(&cinfo, TRUE);
  if (rgbColorSpace) cinfo.jpeg_color_space = JCS_RGB;  // as OpenSlide does for Photometric RGB
  cinfo.out_color_space = JCS_RGB;
  cinfo.scale_num = 1;
  cinfo.scale_denom = unsigned(scaleDenom);
  jpeg_start_decompress(&cinfo);
  if (int64_t(cinfo.output_width) != width || int64_t(cinfo.output_height) != height || cinfo.output_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    return "tile is " + std::to_string(cinfo.output_width) + "x" + std::to_string(cinfo.output_height) + ", expected " +
           std::to_string(width) + "x" + std::to_string(height);
  }
  // Several rows per call: libjpeg-turbo then upsamples and converts colour without an extra copy.
  JSAMPROW rows[16];
  while (cinfo.output_scanline < cinfo.output_height) {
    const JDIMENSION first = cinfo.output_scanline;
    const JDIMENSION count = std::min<JDIMENSION>(16, cinfo.output_height - first);
    for (JDIMENSION i = 0; i < count; ++i) rows[i] = out + int64_t(first + i) * width * 3;
    jpeg_read_scanlines(&cinfo, rows, count);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return "";
}

// A tile's compressed bytes, in a buffer its thread reuses for the next tile; one larger than a
// scanner's tiles (a few hundred KB) is freed afterwards instead of being held by the thread.
class CompressedTile {
 public:
  explicit CompressedTile(size_t bytes) {
    if (buffer().size() < bytes) buffer().resize(bytes);
  }
  ~CompressedTile() {
    if (buffer().size() > kKeptBytes) std::vector<uint8_t>().swap(buffer());
  }
  CompressedTile(const CompressedTile&) = delete;
  CompressedTile& operator=(const CompressedTile&) = delete;
  uint8_t* data() { return buffer().data(); }

 private:
  static constexpr size_t kKeptBytes = size_t(4) << 20;
  static std::vector<uint8_t>& buffer() {
    thread_local std::vector<uint8_t> bytes;
    return bytes;
  }
};

}  // namespace

// Tile buffers come from slabs of transparent huge pages where the kernel offers them (madvise):
// one page fault maps 2 MiB instead of 4 KiB, and on a virtual machine the ~40 faults of each
// fresh 240-px tile while the cache fills were 4 % of a fused scan's CPU. A released buffer waits
// for the next tile of its size, so the slabs hold at most the reader's peak of tiles in use (its
// cache and the tiles being read); they are unmapped with the last tile. Tiles larger than an
// eighth of a slab get their own allocation.
#if defined(__SANITIZE_ADDRESS__)
#define FQA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FQA_ASAN 1
#endif
#endif
#ifdef FQA_ASAN
constexpr bool kTilesInSlabs = false;  // ASan sees an overrun of a tile only in its own allocation
#else
constexpr bool kTilesInSlabs = true;
#endif

struct TiffJpegReader::TileBuffers {
  static constexpr size_t kSlabBytes = size_t(32) << 20;
  static constexpr size_t kAlign = 64;
  std::mutex lock;
  std::vector<void*> slabs;
  std::map<size_t, std::vector<uint8_t*>> released;  // by size
  uint8_t* next = nullptr;
  size_t left = 0;

  ~TileBuffers() {
    for (void* slab : slabs) ::munmap(slab, kSlabBytes);
  }
  TilePixels* take(size_t bytes) {
    if (!kTilesInSlabs || bytes > kSlabBytes / 8) return new TilePixels{new uint8_t[bytes], bytes};
    const size_t chunk = (bytes + kAlign - 1) / kAlign * kAlign;
    std::lock_guard<std::mutex> guard(lock);
    std::vector<uint8_t*>& same = released[bytes];
    if (!same.empty()) {
      uint8_t* reused = same.back();
      same.pop_back();
      return new TilePixels{reused, bytes};
    }
    if (left < chunk) {
      void* slab = ::mmap(nullptr, kSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (slab == MAP_FAILED) throw std::bad_alloc();
      ::madvise(slab, kSlabBytes, MADV_HUGEPAGE);  // a hint: without huge pages it is ordinary memory
      slabs.push_back(slab);
      next = static_cast<uint8_t*>(slab);
      left = kSlabBytes;
    }
    uint8_t* carved = next;
    next += chunk;
    left -= chunk;
    return new TilePixels{carved, bytes};
  }
  void give(TilePixels* buffer) noexcept {
    std::unique_ptr<TilePixels> owned(buffer);
    if (!kTilesInSlabs || buffer->size() > kSlabBytes / 8) {
      delete[] buffer->data();
      return;
    }
    std::lock_guard<std::mutex> guard(lock);
    released[buffer->size()].push_back(buffer->data());
  }
};

std::shared_ptr<TiffJpegReader> TiffJpegReader::open(const std::string& path, std::string* whyNot) {
  TIFFSetWarningHandler(quietTiffWarnings);
  TIFFSetErrorHandler(quietTiffWarnings);
  std::unique_ptr<TIFF, TiffCloser> tif(TIFFOpen(path.c_str(), "r"));
  if (!tif) {
    if (whyNot) *whyNot = "not a TIFF file";
    return nullptr;
  }
  std::shared_ptr<TiffJpegReader> reader(new TiffJpegReader());
  reader->path_ = path;
  reader->buffers_ = std::make_shared<TileBuffers>();
  do {
    if (!TIFFIsTiled(tif.get())) continue;
    uint16_t compression = 0, spp = 0, bps = 0, planar = PLANARCONFIG_CONTIG;
    uint32_t width = 0, height = 0, tw = 0, th = 0;
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_COMPRESSION, &compression);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &width);
    TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &height);
    TIFFGetField(tif.get(), TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif.get(), TIFFTAG_TILELENGTH, &th);
    if (compression != COMPRESSION_JPEG || spp != 3 || bps != 8 || planar != PLANARCONFIG_CONTIG || !width || !height || !tw || !th) continue;
    // A decoded tile is allocated whole: a tile size from a damaged or hostile file must not ask
    // for gigabytes (scanners write 240..2048 px tiles; OpenSlide serves anything else).
    if (uint64_t(tw) * th > kMaxTilePixels) continue;
    JpegTiffLevel L;
    L.width = width;
    L.height = height;
    L.tileWidth = tw;
    L.tileHeight = th;
    const uint32_t tiles = TIFFNumberOfTiles(tif.get());
    uint64_t* offsets = nullptr;
    uint64_t* bytes = nullptr;
    if (!TIFFGetField(tif.get(), TIFFTAG_TILEOFFSETS, &offsets) || !TIFFGetField(tif.get(), TIFFTAG_TILEBYTECOUNTS, &bytes) || !offsets || !bytes) continue;
    L.tileOffsets.assign(offsets, offsets + tiles);
    L.tileBytes.assign(bytes, bytes + tiles);
    uint32_t tableBytes = 0;
    void* tables = nullptr;
    uint16_t photometric = PHOTOMETRIC_YCBCR;
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PHOTOMETRIC, &photometric);
    L.rgbColorSpace = photometric == PHOTOMETRIC_RGB;
    if (TIFFGetField(tif.get(), TIFFTAG_JPEGTABLES, &tableBytes, &tables) && tables && tableBytes > 4)
      L.jpegTables.assign(static_cast<uint8_t*>(tables), static_cast<uint8_t*>(tables) + tableBytes);
    reader->levels_.push_back(std::move(L));
  } while (TIFFReadDirectory(tif.get()));
  if (reader->levels_.empty()) {
    if (whyNot) *whyNot = "no tiled 8-bit RGB JPEG directories";
    return nullptr;
  }
  std::sort(reader->levels_.begin(), reader->levels_.end(), [](const JpegTiffLevel& a, const JpegTiffLevel& b) { return a.width > b.width; });
  // Scaled levels after the directories, so a directory's index is the same with or without them.
  const size_t directories = reader->levels_.size();
  for (size_t i = 0; i < directories; ++i) {
    for (const int d : {2, 4, 8}) {
      const JpegTiffLevel& source = reader->levels_[i];
      if (source.tileWidth % d != 0 || source.tileHeight % d != 0) continue;
      JpegTiffLevel scaled = source;
      scaled.width = (source.width + d - 1) / d;
      scaled.height = (source.height + d - 1) / d;
      scaled.tileWidth = source.tileWidth / d;
      scaled.tileHeight = source.tileHeight / d;
      scaled.scaleDenom = d;
      scaled.sourceLevel = int(i);
      reader->levels_.push_back(std::move(scaled));
    }
  }
  const JpegTiffLevel& widest = reader->levels_.front();
  const int64_t tileRow = ((widest.width + widest.tileWidth - 1) / widest.tileWidth) * widest.tileWidth * widest.tileHeight * 3;
  reader->cacheCapacity_ = std::max<int64_t>(int64_t(256) << 20, 12 * tileRow);
  reader->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (reader->fd_ < 0 || ::fstat(reader->fd_, &st) != 0) {
    if (whyNot) *whyNot = "cannot open the file";
    return nullptr;
  }
  reader->fileBytes_ = uint64_t(st.st_size);
  return reader;
}

TiffJpegReader::~TiffJpegReader() {
  if (fd_ >= 0) ::close(fd_);
  processCachedBytes -= cachedBytes_;
}

void TiffJpegReader::setProcessCacheBudget(int64_t bytes) { processBudget = bytes; }
void TiffJpegReader::setCacheCapacity(int64_t bytes) { cacheCapacity_ = bytes; }
int64_t TiffJpegReader::processCacheBudget() { return processBudget; }
int64_t TiffJpegReader::processCacheBytes() { return processCachedBytes; }

void TiffJpegReader::readLevelRegion(int level, int64_t x, int64_t y, int64_t width, int64_t height, uint8_t* rgb,
                                     int64_t rowStride) const {
  if (level < 0 || level >= int(levels_.size())) throw std::range_error("level " + std::to_string(level) + " does not exist");
  const JpegTiffLevel& L = levels_[size_t(level)];
  if (width <= 0 || height <= 0) return;
  // White where the region leaves the image or a tile is sparse; tiles overwrite the rest, so only
  // those parts are filled (a fill of the whole region was 2 % of a fused scan's CPU).
  const auto white = [&](int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
    for (int64_t yy = y0; yy < y1; ++yy) std::memset(rgb + (yy - y) * rowStride + (x0 - x) * 3, 255, size_t((x1 - x0) * 3));
  };
  const int64_t ix0 = std::clamp<int64_t>(0, x, x + width), ix1 = std::clamp<int64_t>(L.width, x, x + width);
  const int64_t iy0 = std::clamp<int64_t>(0, y, y + height), iy1 = std::clamp<int64_t>(L.height, y, y + height);
  if (ix0 >= ix1 || iy0 >= iy1) return white(x, y, x + width, y + height);
  white(x, y, x + width, iy0);
  white(x, iy1, x + width, y + height);
  white(x, iy0, ix0, iy1);
  white(ix1, iy0, x + width, iy1);
  const int64_t tilesAcross = (L.width + L.tileWidth - 1) / L.tileWidth;
  for (int64_t ty = iy0 / L.tileHeight; ty * L.tileHeight < iy1; ++ty) {
    for (int64_t tx = ix0 / L.tileWidth; tx * L.tileWidth < ix1; ++tx) {
      const size_t index = size_t(ty * tilesAcross + tx);
      if (index >= L.tileOffsets.size()) throw std::runtime_error(path_ + ": tile " + std::to_string(index) + " missing");
      const Tile pixels = tile(level, index);
      // The part of the tile inside both the region and the image.
      const int64_t ox = tx * L.tileWidth, oy = ty * L.tileHeight;
      const int64_t cx0 = std::max(ox, ix0), cx1 = std::min(ox + L.tileWidth, ix1);
      const int64_t cy0 = std::max(oy, iy0), cy1 = std::min(oy + L.tileHeight, iy1);
      if (!pixels) {  // sparse tile: background
        white(cx0, cy0, cx1, cy1);
        continue;
      }
      for (int64_t yy = cy0; yy < cy1; ++yy)
        std::memcpy(rgb + (yy - y) * rowStride + (cx0 - x) * 3, pixels->data() + ((yy - oy) * L.tileWidth + (cx0 - ox)) * 3, size_t((cx1 - cx0) * 3));
    }
  }
}

TiffJpegReader::Tile TiffJpegReader::tile(int level, size_t index) const {
  const auto key = std::make_pair(level, index);
  std::shared_ptr<std::promise<Decoded>> promise;
  std::shared_future<Decoded> future;
  {
    std::lock_guard<std::mutex> lock(cacheLock_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      recency_.splice(recency_.begin(), recency_, it->second.second);
      future = it->second.first;
      ++hits_;
    } else {
      promise = std::make_shared<std::promise<Decoded>>();
      future = promise->get_future().share();
      if (!everDecoded_.insert(key).second) ++redecoded_;
      recency_.push_front(key);
      cache_.emplace(key, std::make_pair(future, recency_.begin()));
    }
  }
  if (promise) {
    // This reader decodes; concurrent readers of the same tile wait on the future.
    Decoded outcome;
    try {
      outcome.tile = decodeTile(level, index);
    } catch (const std::exception& e) {
      outcome.error = e.what();
    } catch (...) {
      outcome.error = path_ + ": tile " + std::to_string(index) + " of level " + std::to_string(level) + " failed to decode";
    }
    if (!outcome.error.empty()) {
      {
        // Forgotten before its waiters see the failure: a later read tries again, and eviction
        // (which takes only ready entries) never meets a failed tile. A pending entry is erased only
        // here, by its decoder, so the entry under `key` is still this one.
        std::lock_guard<std::mutex> lock(cacheLock_);
        auto it = cache_.find(key);
        recency_.erase(it->second.second);
        cache_.erase(it);
      }
      promise->set_value(std::move(outcome));
    } else {
      const int64_t added = outcome.tile ? int64_t(outcome.tile->size()) : 0;
      promise->set_value(std::move(outcome));
      std::lock_guard<std::mutex> lock(cacheLock_);
      cachedBytes_ += added;
      processCachedBytes += added;
      // Over this slide's capacity, or over the process's budget: evict this reader's least recent.
      while ((cachedBytes_ > std::min<int64_t>(cacheCapacity_.load(), processBudget) || processCachedBytes > processBudget) &&
             recency_.size() > 1) {
        auto victim = cache_.find(recency_.back());
        if (victim->second.first.wait_for(std::chrono::seconds(0)) != std::future_status::ready) break;
        const Tile old = victim->second.first.get().tile;  // ready entries hold tiles (failures are erased first)
        const int64_t freed = old ? int64_t(old->size()) : 0;
        cachedBytes_ -= freed;
        processCachedBytes -= freed;
        recency_.pop_back();
        cache_.erase(victim);
      }
    }
  }
  const Decoded& decoded = future.get();
  if (!decoded.error.empty()) throw std::runtime_error(decoded.error);
  return decoded.tile;
}

TiffJpegReader::Tile TiffJpegReader::decodeTile(int level, size_t index) const {
  const JpegTiffLevel& L = levels_[size_t(level)];
  const uint64_t bytes = L.tileBytes[index];
  if (bytes == 0) return nullptr;
  // The byte count comes from the file: checked against the file's size before it sizes a buffer
  // (a damaged TileByteCounts entry would otherwise allocate up to 4 GiB, or 2^64 in BigTIFF).
  const uint64_t offset = L.tileOffsets[index];
  if (offset > fileBytes_ || bytes > fileBytes_ - offset)
    throw std::runtime_error(path_ + ": JPEG tile " + std::to_string(index) + " of level " + std::to_string(level) + " claims " +
                             std::to_string(bytes) + " bytes at offset " + std::to_string(offset) + ", beyond the end of the " +
                             std::to_string(fileBytes_) + "-byte file (damaged tile table)");
  // Abbreviated tiles: the shared tables are spliced in (tables without their EOI + tile without its
  // SOI) by reading the tile right behind the tables and then writing the tables over its SOI, in a
  // buffer this thread keeps for its next tiles (no allocation or copy of the tile's bytes).
  const bool splice = !L.jpegTables.empty() && bytes > 2;
  const size_t tables = splice ? L.jpegTables.size() - 2 : 0, at = splice ? tables - 2 : 0;
  CompressedTile compressed(at + bytes);
  const ssize_t got = ::pread(fd_, compressed.data() + at, bytes, off_t(offset));
  if (got != ssize_t(bytes)) throw std::runtime_error(path_ + ": truncated tile " + std::to_string(index) + " (file ends early)");
  if (splice) std::memcpy(compressed.data(), L.jpegTables.data(), tables);
  const uint8_t* jpeg = compressed.data();
  const size_t jpegBytes = at + bytes;
  // The tile's buffer goes back to buffers_ when its last user lets go (a failed decode's at once).
  std::shared_ptr<TilePixels> pixels(buffers_->take(size_t(L.tileWidth * L.tileHeight * 3)),
                                     [buffers = buffers_](TilePixels* b) { buffers->give(b); });
  const std::string error = decodeJpeg(jpeg, jpegBytes, L.rgbColorSpace, L.scaleDenom, pixels->data(), L.tileWidth, L.tileHeight);
  if (!error.empty())
    throw std::runtime_error(path_ + ": JPEG tile " + std::to_string(index) + " of level " + std::to_string(level) + " is damaged (" + error + ")");
  ++decoded_;
  return pixels;
}

}  // namespace fqa
