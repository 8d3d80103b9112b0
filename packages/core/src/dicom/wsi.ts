/**
 * DICOM VL Whole Slide Microscopy images (PS3.3 A.32.8): a slide is a series, each VOLUME instance
 * one pyramid level of JPEG tiles (frames) in TILED_FULL order. This file reads an instance's
 * geometry, finds the series' instances beside it, and serves regions by decoding only the frames
 * a region touches.
 */
import { readdirSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { MAX_DECODED_PIXELS, plausibleMpp } from '../limits.js';
import { DicomFormatError, FileBytes, TAGS, hasDicomMagic, numberOf, readHeader, readPixelLayout, text, texts, type PixelLayout } from './part10.js';

export const WSI_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.77.1.6';
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

/** Names for the transfer syntaxes a refusal is likely to meet. */
const TRANSFER_SYNTAX_NAMES: Record<string, string> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian, uncompressed',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.201': 'HTJ2K Lossless',
  '1.2.840.10008.1.2.4.202': 'HTJ2K Lossless RPCL',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

/** A value from the file as an error line may show it: printable, short, 'missing' when empty. */
function shown(value: string, empty = 'missing'): string {
  if (value === '') return empty;
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 64 ? `${printable.slice(0, 64)}...` : printable;
}

function transferSyntaxName(uid: string): string {
  const name = TRANSFER_SYNTAX_NAMES[uid];
  return name ? `${uid} (${name})` : uid;
}

/** What a folder walk needs to know about a DICOM file, from its header alone. */
export interface DicomInstanceSummary {
  file: string;
  sopClass: string;
  seriesUid: string;
  /** ImageType's third value: VOLUME, LABEL, OVERVIEW, THUMBNAIL ('' when absent). */
  flavor: string;
  width: number;
  height: number;
  transferSyntax: string;
}

/** One pyramid level's instance, ready to read. */
export interface DicomLevelInstance extends DicomInstanceSummary {
  tileWidth: number;
  tileHeight: number;
  tilesAcross: number;
  tilesDown: number;
  /** µm per pixel of this instance, or null. */
  mpp: number | null;
  layout: PixelLayout;
}

/** The header of `file` in a form a walk can sort by; throws DicomFormatError for a broken one. */
export function summarizeDicom(file: string): DicomInstanceSummary {
  const bytes = FileBytes.open(file);
  try {
    const header = readHeader(bytes);
    const sopClass = text(header.meta.get(TAGS.mediaStorageSopClass)) || text(header.dataset.get(TAGS.sopClass));
    return {
      file,
      sopClass,
      seriesUid: text(header.dataset.get(TAGS.seriesInstanceUid)),
      flavor: (texts(header.dataset.get(TAGS.imageType))[2] ?? '').toUpperCase(),
      width: numberOf(header.dataset.get(TAGS.totalPixelMatrixColumns)) ?? 0,
      height: numberOf(header.dataset.get(TAGS.totalPixelMatrixRows)) ?? 0,
      transferSyntax: header.transferSyntax,
    };
  } finally {
    bytes.close();
  }
}

/**
 * Reads one WSI instance for serving: checks the transfer syntax, the tiling and the frame count,
 * and walks its fragments. Every refusal is a DicomFormatError saying what is not supported.
 */
export function readLevelInstance(file: string): DicomLevelInstance {
  const bytes = FileBytes.open(file);
  try {
    const header = readHeader(bytes);
    const ds = header.dataset;
    const sopClass = text(header.meta.get(TAGS.mediaStorageSopClass)) || text(ds.get(TAGS.sopClass));
    if (sopClass !== WSI_SOP_CLASS) throw new DicomFormatError(`not a VL Whole Slide Microscopy image (SOP class ${shown(sopClass)})`);
    if (header.transferSyntax !== JPEG_BASELINE) throw new DicomFormatError(`transfer syntax ${transferSyntaxName(shown(header.transferSyntax))} is not read by fqa (only ${transferSyntaxName(JPEG_BASELINE)})`);
    const organization = text(ds.get(TAGS.dimensionOrganizationType));
    if (organization !== 'TILED_FULL') throw new DicomFormatError(`DimensionOrganizationType ${shown(organization)}: fqa reads TILED_FULL only (TILED_SPARSE frames need their per-frame positions, which are not read)`);
    const samples = numberOf(ds.get(TAGS.samplesPerPixel));
    if (samples !== 3) throw new DicomFormatError(`SamplesPerPixel ${samples ?? 'missing'}: fqa reads colour (3) images only`);
    const photometric = text(ds.get(TAGS.photometricInterpretation));
    if (!['YBR_FULL_422', 'YBR_FULL', 'RGB'].includes(photometric)) throw new DicomFormatError(`PhotometricInterpretation ${shown(photometric)}: expected YBR_FULL_422 or RGB`);
    const width = numberOf(ds.get(TAGS.totalPixelMatrixColumns)) ?? 0;
    const height = numberOf(ds.get(TAGS.totalPixelMatrixRows)) ?? 0;
    const tileWidth = numberOf(ds.get(TAGS.columns)) ?? 0;
    const tileHeight = numberOf(ds.get(TAGS.rows)) ?? 0;
    if (width < 1 || height < 1) throw new DicomFormatError(`TotalPixelMatrixColumns/Rows missing or zero (${width}x${height})`);
    if (tileWidth < 1 || tileHeight < 1) throw new DicomFormatError(`tile size Columns/Rows missing or zero (${tileWidth}x${tileHeight})`);
    // Columns/Rows go to 65535: a forged 65535² tile would be a 12 GiB decode per frame.
    if (tileWidth * tileHeight > MAX_DECODED_PIXELS) throw new DicomFormatError(`tile size ${tileWidth}x${tileHeight} is more than ${MAX_DECODED_PIXELS} px`);
    const tilesAcross = Math.ceil(width / tileWidth);
    const tilesDown = Math.ceil(height / tileHeight);
    const frameCount = numberOf(ds.get(TAGS.numberOfFrames)) ?? 1;
    // TILED_FULL stores every focal plane and optical path in full; fqa reads the first of each.
    const planes = (numberOf(ds.get(TAGS.totalPixelMatrixFocalPlanes)) ?? 1) * (numberOf(ds.get(TAGS.numberOfOpticalPaths)) ?? 1);
    if (frameCount !== tilesAcross * tilesDown * planes) {
      throw new DicomFormatError(`NumberOfFrames ${frameCount} does not match the TILED_FULL grid: ${tilesAcross}x${tilesDown} tiles of ${tileWidth}x${tileHeight} for ${width}x${height} px${planes > 1 ? ` x ${planes} planes/paths` : ''}`);
    }
    if (header.pixelDataOffset === null) throw new DicomFormatError('no Pixel Data');
    const layout = readPixelLayout(bytes, header.pixelDataOffset, frameCount);
    return {
      file,
      sopClass,
      seriesUid: text(ds.get(TAGS.seriesInstanceUid)),
      flavor: (texts(ds.get(TAGS.imageType))[2] ?? '').toUpperCase(),
      width,
      height,
      transferSyntax: header.transferSyntax,
      tileWidth,
      tileHeight,
      tilesAcross,
      tilesDown,
      mpp: pixelSpacingMicrons(ds),
      layout,
    };
  } finally {
    bytes.close();
  }
}

/** SharedFunctionalGroupsSequence > PixelMeasuresSequence > PixelSpacing (mm, row\column) in µm/px. */
function pixelSpacingMicrons(ds: ReturnType<typeof readHeader>['dataset']): number | null {
  const shared = ds.get(TAGS.sharedFunctionalGroups)?.value;
  const measures = Array.isArray(shared) ? shared[0]?.get(TAGS.pixelMeasures)?.value : undefined;
  const spacing = Array.isArray(measures) ? measures[0]?.get(TAGS.pixelSpacing) : undefined;
  const row = numberOf(spacing, 0);
  const column = numberOf(spacing, 1);
  if (row === null) return null;
  const mpp = ((column ?? row) + row) / 2 * 1000;
  return plausibleMpp(mpp) ? mpp : null;
}

/** Cheap check by magic, for files that do not end in .dcm (scanners often write none). */
export function isDicomFile(file: string): boolean {
  let bytes: FileBytes | null = null;
  try {
    bytes = FileBytes.open(file);
    return hasDicomMagic(bytes);
  } catch {
    return false;
  } finally {
    bytes?.close();
  }
}

/** Pyramid levels are VOLUME images, and THUMBNAIL ones as a low level. */
function isPyramidFlavor(flavor: string): boolean {
  return flavor === 'VOLUME' || flavor === 'THUMBNAIL';
}

/**
 * Groups the DICOM files of one folder into slides: one per WSI series, named by its largest VOLUME
 * instance; the series' other instances (levels, label, overview) belong to it and are not listed.
 * Files that are not WSI images, or whose header cannot be read, come back with the reason.
 */
export function groupDicomSeries(files: string[]): { slides: string[]; skipped: { file: string; reason: string }[] } {
  const skipped: { file: string; reason: string }[] = [];
  const series = new Map<string, DicomInstanceSummary[]>();
  for (const file of files) {
    let summary: DicomInstanceSummary;
    try {
      summary = summarizeDicom(file);
    } catch (err) {
      skipped.push({ file, reason: `DICOM: unreadable header (${(err as Error).message})` });
      continue;
    }
    if (summary.sopClass !== WSI_SOP_CLASS) {
      skipped.push({ file, reason: `DICOM but not a whole-slide image (SOP class ${shown(summary.sopClass)}): not scanned` });
      continue;
    }
    if (summary.seriesUid === '') {
      // Implicit VR or big endian datasets are not parsed, so their series is unknown.
      skipped.push({ file, reason: `DICOM whole-slide image without a readable SeriesInstanceUID (transfer syntax ${transferSyntaxName(shown(summary.transferSyntax))}): not scanned` });
      continue;
    }
    const key = `${path.dirname(file)}\0${summary.seriesUid}`;
    series.set(key, [...(series.get(key) ?? []), summary]);
  }
  const slides: string[] = [];
  for (const instances of series.values()) {
    const volumes = instances.filter((i) => i.flavor === 'VOLUME').sort((a, b) => b.width * b.height - a.width * a.height);
    if (volumes[0]) slides.push(volumes[0].file);
    else for (const i of instances) skipped.push({ file: i.file, reason: `DICOM ${shown(i.flavor, 'image')} of a series with no VOLUME image: nothing to scan` });
  }
  return { slides: slides.sort(), skipped };
}

/** The instances of `file`'s series in its folder that can serve as pyramid levels, largest first. */
function seriesLevels(file: string, named: DicomLevelInstance): DicomLevelInstance[] {
  const dir = path.dirname(file);
  const levels: DicomLevelInstance[] = [named];
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch {
    // an unlistable folder leaves the named instance alone
  }
  for (const name of names) {
    const other = path.join(dir, name);
    if (path.resolve(other) === path.resolve(file) || name.startsWith('.')) continue;
    try {
      if (!statSync(other).isFile() || !isDicomFile(other)) continue;
      const summary = summarizeDicom(other);
      if (summary.sopClass !== WSI_SOP_CLASS || summary.seriesUid !== named.seriesUid || !isPyramidFlavor(summary.flavor)) continue;
      levels.push(readLevelInstance(other));
    } catch {
      // An unreadable sibling is not a level; the named file alone decides whether the slide opens.
    }
  }
  levels.sort((a, b) => b.width * b.height - a.width * a.height);
  const volume0 = levels.find((l) => l.flavor === 'VOLUME') ?? named;
  const pyramid: DicomLevelInstance[] = [];
  for (const level of levels) {
    if (!isPyramidFlavor(level.flavor)) continue; // a label or overview is no level, even when named
    if (level.width * level.height > volume0.width * volume0.height) continue; // a larger thumbnail is no level
    if (level.flavor === 'THUMBNAIL' && levels.some((l) => l.flavor === 'VOLUME' && l.width <= level.width)) continue;
    // Same size twice (another focal plane or optical path as its own instance): the first serves.
    if (pyramid.some((p) => p.width === level.width && p.height === level.height)) continue;
    // A level must be the same picture smaller: its aspect within rounding of level 0's.
    const downsample = volume0.width / level.width;
    if (Math.abs(volume0.height / downsample - level.height) > 2) continue;
    pyramid.push(level);
  }
  return pyramid;
}

/** Decoded tiles a slide keeps (bytes): neighbouring regions of a scan share edge tiles. */
const TILE_CACHE_BYTES = 64 * 2 ** 20;

/** Frames one region decodes at once: enough to keep sharp's threads busy, few enough to bound memory. */
const FRAMES_IN_FLIGHT = 8;

/**
 * Largest JPEG frame read, in bytes per tile pixel (twice raw RGB): baseline JPEG at quality 100 on
 * noise stays under 1.5x the raw pixels, so a bigger fragment is damage, not a tile.
 */
const MAX_FRAME_BYTES_PER_PIXEL = 6;

export interface DicomSlide {
  levels: { width: number; height: number; downsample: number }[];
  mpp: number | null;
  properties: Record<string, string>;
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array>;
  stats(): { tilesDecoded: number; tileCacheHits: number };
  close(): void;
}

/**
 * Opens the series of `file` as a slide. Every problem is an InputError naming the file; the
 * named file must itself be a readable WSI instance.
 */
export function openDicomSlide(file: string): DicomSlide {
  let named: DicomLevelInstance;
  try {
    named = readLevelInstance(file);
  } catch (err) {
    if (err instanceof DicomFormatError) throw new InputError(`${file}: DICOM: ${err.message}`, { cause: err });
    throw new InputError(`${file}: DICOM: ${(err as Error).message}`, { cause: err });
  }
  const pyramid = seriesLevels(file, named);
  const level0 = pyramid[0];
  if (!level0 || level0.flavor !== 'VOLUME') throw new InputError(`${file}: DICOM: a ${shown(named.flavor, 'WSI')} image of a series with no VOLUME image beside it in its folder: nothing to scan`);
  const levels = pyramid.map((l) => ({ width: l.width, height: l.height, downsample: level0.width / l.width }));
  const handles = new Map<string, Promise<FileHandle>>();
  const cache = new Map<string, Uint8Array>();
  let tilesDecoded = 0;
  let tileCacheHits = 0;

  // Set by close(): a decode still running when a region failed (Promise.all rejects at the first
  // error) must not open a file after the slide is closed and leave its handle to the GC.
  let closed = false;
  const handleOf = (instance: DicomLevelInstance) => {
    if (closed) throw new InputError(`${instance.file}: DICOM: the slide was closed`);
    let h = handles.get(instance.file);
    if (!h) {
      h = open(instance.file, 'r');
      handles.set(instance.file, h);
    }
    return h;
  };

  /** Frame `index` of a level decoded to RGB, tileWidth x tileHeight. */
  const decodeFrame = async (levelIndex: number, index: number): Promise<Uint8Array> => {
    const key = `${levelIndex}:${index}`;
    const hit = cache.get(key);
    if (hit) {
      tileCacheHits++;
      cache.delete(key);
      cache.set(key, hit); // most recently used last
      return hit;
    }
    const instance = pyramid[levelIndex]!;
    const fragment = instance.layout.frames[index]!;
    const where = `${instance.file}: DICOM frame ${index + 1} of ${instance.layout.frames.length}`;
    const limit = instance.tileWidth * instance.tileHeight * MAX_FRAME_BYTES_PER_PIXEL + 65536;
    if (fragment.length > limit) throw new InputError(`${where}: ${fragment.length} bytes, more than a ${instance.tileWidth}x${instance.tileHeight} JPEG tile can take (${limit})`);
    const jpeg = Buffer.alloc(fragment.length);
    const handle = await handleOf(instance);
    const { bytesRead } = await handle.read(jpeg, 0, fragment.length, fragment.offset);
    if (bytesRead !== fragment.length) throw new InputError(`${where}: the file ended inside the frame`);
    if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new InputError(`${where}: not a JPEG stream (no SOI marker)`);
    let decoded: { data: Buffer; info: sharp.OutputInfo };
    try {
      decoded = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw new InputError(`${where}: JPEG decode failed (${(err as Error).message.trim().replace(/\s*\n\s*/g, '; ')})`, { cause: err });
    }
    const { info } = decoded;
    if (info.width !== instance.tileWidth || info.height !== instance.tileHeight || info.channels !== 3) {
      throw new InputError(`${where}: the JPEG is ${info.width}x${info.height} with ${info.channels} channels, the header says ${instance.tileWidth}x${instance.tileHeight} RGB`);
    }
    tilesDecoded++;
    const pixels = new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.length);
    cache.set(key, pixels);
    if (cache.size > Math.max(4, Math.floor(TILE_CACHE_BYTES / pixels.length))) cache.delete(cache.keys().next().value!);
    return pixels;
  };

  return {
    levels,
    mpp: level0.mpp,
    properties: {
      'dicom.SeriesInstanceUID': level0.seriesUid,
      'dicom.levels': pyramid.map((l) => `${l.width}x${l.height} ${l.flavor} ${path.basename(l.file)}`).join('; '),
    },
    async readRegion(levelIndex, x, y, width, height) {
      const instance = pyramid[levelIndex];
      if (!instance) throw new InputError(`${file}: no level ${levelIndex} (the slide has ${pyramid.length})`);
      if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width * height > MAX_DECODED_PIXELS) {
        throw new InputError(`${file}: region ${width}x${height} is not a size fqa decodes (at most ${MAX_DECODED_PIXELS} px)`);
      }
      const downsample = levels[levelIndex]!.downsample;
      const lx = Math.floor(x / downsample);
      const ly = Math.floor(y / downsample);
      const out = new Uint8Array(width * height * 3).fill(255); // outside the matrix: white
      // The part of the region inside the pixel matrix, in level pixels.
      const x0 = Math.max(lx, 0);
      const y0 = Math.max(ly, 0);
      const x1 = Math.min(lx + width, instance.width);
      const y1 = Math.min(ly + height, instance.height);
      if (x1 <= x0 || y1 <= y0) return out;
      const tw = instance.tileWidth;
      const th = instance.tileHeight;
      const touched: [number, number][] = [];
      for (let row = Math.floor(y0 / th); row <= Math.floor((y1 - 1) / th); row++) {
        for (let col = Math.floor(x0 / tw); col <= Math.floor((x1 - 1) / tw); col++) touched.push([row, col]);
      }
      let next = 0;
      const decodeTouched = async () => {
        while (next < touched.length) {
          const [row, col] = touched[next++]!;
          const tile = await decodeFrame(levelIndex, row * instance.tilesAcross + col);
          // The tile's part inside both the region and the matrix (edge tiles are padded).
          const tx0 = Math.max(x0, col * tw);
          const tx1 = Math.min(x1, (col + 1) * tw);
          const ty0 = Math.max(y0, row * th);
          const ty1 = Math.min(y1, (row + 1) * th);
          for (let py = ty0; py < ty1; py++) {
            const src = ((py - row * th) * tw + (tx0 - col * tw)) * 3;
            out.set(tile.subarray(src, src + (tx1 - tx0) * 3), ((py - ly) * width + (tx0 - lx)) * 3);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(FRAMES_IN_FLIGHT, touched.length) }, decodeTouched));
      return out;
    },
    stats: () => ({ tilesDecoded, tileCacheHits }),
    close() {
      closed = true;
      cache.clear();
      for (const h of handles.values()) h.then((fh) => fh.close()).catch(() => undefined);
      handles.clear();
    },
  };
}
