// libFuzzer target: the direct JPEG-tile reader (libtiff directory parsing, tile tables, JPEGTables
// splicing, libjpeg decoding, at full size and on the scaled levels at 1/2, 1/4, 1/8) on arbitrary
// file bytes, and the fused decode + sweep of a scan's regions over it (region_sweep.h, 2 threads). Any input must open or be refused, and any region
// read or swept must return pixels/scores or throw std::exception: never crash, race, read out of
// bounds, or allocate without bound (libFuzzer's -rss_limit_mb catches that). Built with
// ASan/UBSan by scripts/fuzz.sh; seeds in fuzz/corpus/tiff_jpeg_reader.
//
// The calls below are valid, so only the reader's data errors (std::runtime_error naming the file)
// may come back: an argument error (std::invalid_argument, std::range_error) means the target no
// longer reaches the decode, and stops the run. At exit the target prints how many sweeps of the
// 2-kernel stride-1 model completed and how many tiles they decoded, and how many tiles were decoded
// on scaled levels; scripts/fuzz.sh fails when any of these is 0 (a path the target exists for
// never ran).
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "region_sweep.h"
#include "tiff_jpeg_reader.h"

namespace {

// A FocusLiteNN-2 with fixed weights: patch, conv kernel, stride and padding as given.
fqa::Model twoKernelModel(int patch, int kernel, int stride, int pad, float weightScale) {
  fqa::Model m;
  m.arch = fqa::Architecture::FocusLiteNN;
  m.patchSize = patch;
  m.kernels = 2;
  m.convKernel = kernel;
  m.convStride = stride;
  m.convPad = pad;
  for (int i = 0; i < 2 * 3 * kernel * kernel; ++i) m.convWeight.push_back(float((i * 37) % 11 - 5) * weightScale);
  m.convBias = {0.1f, -0.2f};
  m.fcWeight = {0.5f, -0.25f};
  m.fcBias = 0.3f;
  fqa::finalizeModel(m);
  return m;
}

// 16 px patches (3x3 stride-2 conv): small enough that a sweep over a few hundred patches takes
// milliseconds under ASan.
const fqa::Model& fuzzModel() {
  static const fqa::Model model = twoKernelModel(16, 3, 2, 1, 1.f / 16);
  return model;
}

// 7x7 stride-1 kernels on 30 px patches: side by side, with AVX-512 VNNI, the integer conv's
// permuted tap rows and a flat tail (24 output rows, the last chunk 8 wide).
const fqa::Model& stride1Model() {
  static const fqa::Model model = twoKernelModel(30, 7, 1, 0, 1.f / 64);
  return model;
}

// Sweeps of the stride-1 model that completed, the tiles they decoded, and the tiles decoded on
// scaled levels (libjpeg's scaled IDCT); printed at exit.
struct FusedCount {
  int64_t sweeps = 0, tiles = 0, scaledTiles = 0;
  ~FusedCount() {
    std::fprintf(stderr, "fqa-fuzz: fused 2-kernel stride-1 sweeps completed: %lld, tiles decoded by them: %lld\n", (long long)sweeps,
                 (long long)tiles);
    std::fprintf(stderr, "fqa-fuzz: tiles decoded on scaled levels: %lld\n", (long long)scaledTiles);
  }
};
FusedCount fusedCount;

// A fused sweep of valid arguments: returns whether it completed; a data error is fine, an argument
// error is a bug in this target (or in the sweep's validation) and aborts.
bool fusedSweep(fqa::TiffJpegReader& reader, int level, const fqa::Model& model, const std::vector<fqa::SlideRegion>& regions,
                const fqa::RegionSweepOptions& options) {
  try {
    fqa::sweepSlideRegions(reader, level, model, regions, options);
    return true;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "fqa-fuzz: the fused sweep refused valid arguments: %s\n", e.what());
    std::abort();
  } catch (const std::range_error& e) {
    std::fprintf(stderr, "fqa-fuzz: the fused sweep refused valid arguments: %s\n", e.what());
    std::abort();
  } catch (const std::runtime_error&) {
    return false;  // damaged input: an exception with a message is the expected outcome
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader takes a path (it preads tiles itself): the input goes to a private temp file.
  static const std::string path = "/tmp/fqa-fuzz-tiff-" + std::to_string(getpid()) + ".tif";
  // Removed when the fuzzer exits (a run ends with exit(), which runs atexit handlers), so runs do not pile files up in /tmp.
  static const bool removedAtExit = std::atexit([] { std::remove(path.c_str()); }) == 0;
  (void)removedAtExit;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  std::string why;
  auto reader = fqa::TiffJpegReader::open(path, &why);
  if (!reader) return 0;
  // Every level, the scaled ones (after the TIFF's directories) included.
  for (int level = 0; level < int(reader->levels().size()); ++level) {
    const fqa::JpegTiffLevel& L = reader->levels()[size_t(level)];
    const int64_t levelDecodedBefore = reader->tilesDecoded();
    // Side by side patches of the stride-1 model, 2 x 2 per region, the second region at the edge;
    // every patch scored (an all-zero skip mask). First on the level, so its tiles are decoded here
    // and not served by the cache from the reads below.
    std::vector<float> sideScores(8);
    const std::vector<uint8_t> scoreAll(8, 0);
    std::vector<fqa::SlideRegion> sideBySide(2);
    for (int i = 0; i < 2; ++i) {
      sideBySide[size_t(i)].x = i == 0 ? 0 : L.width - 50;
      sideBySide[size_t(i)].y = i == 0 ? 0 : L.height - 50;
      sideBySide[size_t(i)].columns = 2;
      sideBySide[size_t(i)].rows = 2;
      sideBySide[size_t(i)].skip = scoreAll.data() + 4 * i;
      sideBySide[size_t(i)].scores = sideScores.data() + 4 * i;
    }
    fqa::RegionSweepOptions options;
    options.patchSize = 30;
    options.stride = 30;
    options.threads = 2;
    const int64_t decodedBefore = reader->tilesDecoded();
    if (fusedSweep(*reader, level, stride1Model(), sideBySide, options)) {
      ++fusedCount.sweeps;
      fusedCount.tiles += reader->tilesDecoded() - decodedBefore;
    }
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
    // The fused path over the same tiles: two regions sharing a tile row, one straddling the edge,
    // every other patch background, overlapping patches (shared conv map) on 2 threads.
    const int64_t columns = 8, rows = 8, stride = 8;
    std::vector<uint8_t> skip(size_t(3 * columns * rows));
    for (size_t i = 0; i < skip.size(); ++i) skip[i] = uint8_t(i % 2);
    std::vector<float> scores(skip.size());
    std::vector<fqa::SlideRegion> regions;
    for (const auto& [i, x, y] : {std::tuple<int64_t, int64_t, int64_t>{0, 0, 0}, {1, 72, 0}, {2, L.width - 40, L.height - 40}}) {
      fqa::SlideRegion r;
      r.x = x;
      r.y = y;
      r.columns = columns;
      r.rows = rows;
      r.skip = skip.data() + i * columns * rows;
      r.scores = scores.data() + i * columns * rows;
      regions.push_back(r);
    }
    options.patchSize = 16;
    options.stride = stride;
    options.threads = 2;
    fusedSweep(*reader, level, fuzzModel(), regions, options);
    if (L.scaleDenom > 1) fusedCount.scaledTiles += reader->tilesDecoded() - levelDecodedBefore;
  }
  return 0;
}
