/**
 * Where a scan's pixels come from: whole-slide formats through OpenSlide (loaded at run time),
 * DICOM whole-slide series through fqa's own reader (dicom/), plain images (PNG, JPEG, TIFF)
 * through sharp. All give RGB u8 regions addressed in level-0 pixels, so the scan never needs to
 * know which it has.
 */
import { open, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { openSlide, type NativeModel, type NativeSlide, type RegionSweepOptions, type RegionSweepResult } from '@fqa/native';
import { InputError } from './errors.js';
import { openDicomSlide } from './dicom/wsi.js';
import { decodeImage, type RgbImage } from './image.js';
import { plausibleMpp } from './limits.js';
import { fileKind } from './regular-file.js';

export interface SourceLevel {
  width: number;
  height: number;
  downsample: number;
}

/**
 * A direct level decoded at 1/denom (2, 4, 8) by libjpeg's scaled IDCT, for fused scans only:
 * readRegion and sweepRegions take `index` (after the real levels, which keep their numbers).
 */
export interface ScaledSourceLevel extends SourceLevel {
  index: number;
  /** The real level it is decoded from. */
  level: number;
  denom: number;
}

export interface SlideSource {
  path: string;
  kind: 'openslide' | 'dicom' | 'image';
  vendor: string;
  levels: SourceLevel[];
  /** µm per level-0 pixel from the file's metadata, or null. */
  mpp: number | null;
  properties: Record<string, string>;
  /** RGB u8, 3 * width bytes per row; x, y in level-0 pixels; width, height at `level`. */
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array>;
  /** Levels the direct JPEG-tile reader serves, which sweepRegions can score in one native pass. */
  directLevels: number[];
  /** Scaled decodes of direct levels (none for OpenSlide-only formats, DICOM and images). */
  scaledLevels: ScaledSourceLevel[];
  /**
   * Decodes and scores regions of a direct level natively (NativeSlide.sweepRegions), rejecting with
   * an InputError naming the file; null where no level is direct.
   */
  sweepRegions: ((model: NativeModel, level: number, regions: Float64Array, skip: Uint8Array, options: RegionSweepOptions, onProgress: (regionsDone: number) => void) => { promise: Promise<RegionSweepResult>; cancel(): void }) | null;
  /** Says `level` will be read top to bottom in bands, so the reader caches only what one band shares with the next. */
  readInBands(level: number): void;
  /** Which reader serves level 0 and how many JPEG tiles it decoded / served from its cache. */
  readerStats(): { reader: 'direct' | 'openslide' | 'image'; tilesDecoded: number; tileCacheHits: number; tilesRedecoded: number };
  close(): void;
}

/** The level readRegion takes as `index`: one of `levels`, or one of `scaledLevels` (numbered after them). */
export function sourceLevel(source: Pick<SlideSource, 'levels' | 'scaledLevels'>, index: number): SourceLevel {
  const level = source.levels[index] ?? source.scaledLevels.find((s) => s.index === index);
  if (!level) throw new RangeError(`no level ${index} (levels 0-${source.levels.length - 1}, scaled ${source.scaledLevels.map((s) => s.index).join(', ') || 'none'})`);
  return level;
}

const PLAIN_IMAGE = /\.(png|jpe?g|webp|gif|bmp)$/i;

/** Opens any slide or image (or encoded image bytes); one InputError with a clear message when it cannot. */
export async function openSource(path: string | Uint8Array): Promise<SlideSource> {
  if (typeof path !== 'string') return fromImage(path);
  let size: number;
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw new InputError(`${path}: is a directory, not a slide`);
    // A FIFO, socket or device would block or never end when opened and read: refused by its kind.
    if (!s.isFile()) throw new InputError(`${path}: is ${fileKind(s)}, not a slide file`);
    size = s.size;
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${path}: file not found`, { cause: err });
  }
  if (size === 0) throw new InputError(`${path}: empty file (0 bytes)`);
  if (PLAIN_IMAGE.test(path)) return fromImage(path);
  // DICOM by its magic, whatever the name: Debian's OpenSlide 3.4 does not read it, fqa does.
  if (await isDicom(path)) return fromDicom(path);
  try {
    return fromOpenSlide(path, await openSlide(path));
  } catch (err) {
    const message = (err as Error).message;
    // Formats OpenSlide does not know (plain TIFF strips, ...) fall through to sharp; real
    // damage or a missing libopenslide is reported as it is.
    if (!/not a slide format OpenSlide can read/.test(message)) throw new InputError(message.startsWith(path) ? message : `${path}: ${message}`, { cause: err });
  }
  try {
    return await fromImage(path);
  } catch (err) {
    throw new InputError(`${path}: neither a slide format OpenSlide can read nor an image (${(err as Error).message.replace(`${path}: `, '')})`, { cause: err });
  }
}

function fromOpenSlide(path: string, slide: NativeSlide): SlideSource {
  const info = slide.info();
  const mppX = Number(info.properties['openslide.mpp-x']);
  const mppY = Number(info.properties['openslide.mpp-y']);
  let mpp = plausibleMpp(mppX) ? (plausibleMpp(mppY) ? (mppX + mppY) / 2 : mppX) : null;
  // OpenSlide 3.4 leaves openslide.mpp-* unset for generic TIFF; its TIFF resolution tags say it.
  const resolution = Number(info.properties['tiff.XResolution']);
  const unit = info.properties['tiff.ResolutionUnit'];
  if (mpp === null && Number.isFinite(resolution) && resolution > 0 && (unit === 'centimeter' || unit === 'inch')) {
    const perPixel = (unit === 'centimeter' ? 10000 : 25400) / resolution;
    if (plausibleMpp(perPixel)) mpp = perPixel; // screen defaults (72 dpi = 353 µm) are not a scan resolution
  }
  return {
    path,
    kind: 'openslide',
    vendor: info.vendor,
    levels: info.levels,
    mpp,
    properties: info.properties,
    readRegion: (level, x, y, w, h) =>
      slide.readRegion(level, x, y, w, h).catch((err: Error) => {
        throw new InputError(err.message.startsWith(path) ? err.message : `${path}: ${err.message}`, { cause: err });
      }),
    directLevels: info.directLevels,
    scaledLevels: info.scaledLevels,
    sweepRegions: info.directLevels.length === 0 ? null : (model, level, regions, skip, options, onProgress) => {
      const run = slide.sweepRegions(model, level, regions, skip, options, onProgress);
      return {
        promise: run.promise.catch((err: Error) => {
          throw new InputError(err.message.startsWith(path) ? err.message : `${path}: ${err.message}`, { cause: err });
        }),
        cancel: run.cancel,
      };
    },
    readInBands: (level) => slide.readInBands(level),
    readerStats: () => ({ reader: info.directLevels.includes(0) ? 'direct' : 'openslide', ...slide.readerStats() }),
    close: () => slide.close(),
  };
}

async function fromImage(input: string | Uint8Array): Promise<SlideSource> {
  const path = typeof input === 'string' ? input : 'image buffer';
  let image: RgbImage;
  let resolution: number | undefined;
  try {
    const meta = await sharp(input).metadata();
    // sharp gives the resolution in pixels per inch whatever unit the file uses; it is a scan's
    // µm/px only when plausible (72 or 300 dpi are screen and print defaults).
    if (meta.density) {
      const perPixel = 25400 / meta.density;
      if (plausibleMpp(perPixel)) resolution = perPixel;
    }
  } catch {
    // decodeImage below reports the problem.
  }
  image = await decodeImage(input, path);
  const level0 = { width: image.width, height: image.height, downsample: 1 };
  return {
    path,
    kind: 'image',
    vendor: 'image',
    levels: [level0],
    mpp: resolution ?? null,
    properties: {},
    async readRegion(level, x, y, w, h) {
      if (level !== 0) throw new InputError(`${path}: a plain image has only level 0`);
      const out = new Uint8Array(w * h * 3).fill(255);
      for (let row = 0; row < h; row++) {
        const sy = y + row;
        if (sy < 0 || sy >= image.height) continue;
        const x0 = Math.max(0, x);
        const x1 = Math.min(image.width, x + w);
        if (x1 <= x0) continue;
        out.set(image.pixels.subarray(sy * image.rowStride + x0 * 3, sy * image.rowStride + x1 * 3), (row * w + (x0 - x)) * 3);
      }
      return out;
    },
    directLevels: [],
    scaledLevels: [],
    sweepRegions: null,
    readInBands: () => undefined, // decoded whole already
    readerStats: () => ({ reader: 'image', tilesDecoded: 0, tileCacheHits: 0, tilesRedecoded: 0 }),
    close() {
      image = { pixels: new Uint8Array(0), width: 0, height: 0, rowStride: 0 };
    },
  };
}

/**
 * DICOM Part 10 files carry "DICM" after a 128-byte preamble. A file that cannot be opened is not
 * judged here: the readers after this check report why (no permission, ...) as they always have.
 */
async function isDicom(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return false;
  }
  try {
    const magic = Buffer.alloc(4);
    await handle.read(magic, 0, 4, 128);
    return magic.toString('latin1') === 'DICM';
  } finally {
    await handle.close();
  }
}

/** A DICOM VL Whole Slide Microscopy series, opened by any one of its files. */
function fromDicom(path: string): SlideSource {
  const slide = openDicomSlide(path);
  return {
    path,
    kind: 'dicom',
    vendor: 'dicom',
    levels: slide.levels,
    mpp: slide.mpp,
    properties: slide.properties,
    readRegion: (level, x, y, w, h) => slide.readRegion(level, x, y, w, h),
    // No native sweep: the scan decodes through readRegion (sharp) in its pool path.
    directLevels: [],
    scaledLevels: [],
    sweepRegions: null,
    readInBands: () => undefined, // its frame cache is small already (64 MiB)
    readerStats: () => ({ reader: 'image', ...slide.stats(), tilesRedecoded: 0 }),
    close: () => slide.close(),
  };
}
