/**
 * The low-resolution image a tissue mask is found on, at most MASK_SIDE px on its long side.
 *
 * A slide's pyramid usually has a level small enough to read whole. A slide without one (a single
 * 25,000² level, as some exports are) used to be refused; it is now read in bands of rows, each
 * band area-averaged down to the thumbnail's rows as it arrives, so memory stays at one band
 * (BAND_PIXELS) however large the level is.
 */
import sharp from 'sharp';
import { sourceLevel, type SlideSource } from '../slide-source.js';

/** Longest side of the tissue-mask image. */
export const MASK_SIDE = 1024;
/**
 * Levels larger than this (32 Mpx, 96 MiB of RGB) are streamed rather than read whole. A pyramid's
 * mask level is far smaller (CMU-1-Small-Region's is 6.6 Mpx), so only slides without a usable
 * pyramid take the streamed path.
 */
export const STREAMED_MASK_PIXELS = 2 ** 25;
/** Most level pixels one band of a streamed read holds (16 Mpx: 48 MiB of RGB). */
const BAND_PIXELS = 2 ** 24;

export interface MaskImage {
  width: number;
  height: number;
  /** RGB u8, row-major. */
  pixels: Uint8Array;
}

/** The mask image's size for a level: scaled so the long side is at most MASK_SIDE. */
export function maskSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, MASK_SIDE / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** The whole level (a pyramid level, or a scaled decode of one: SlideSource.scaledLevels) read at once and resized (it fits in memory). */
export async function wholeLevelMaskImage(source: SlideSource, level: number): Promise<MaskImage> {
  const L = sourceLevel(source, level);
  const rgb = await source.readRegion(level, 0, 0, L.width, L.height);
  const { width, height } = maskSize(L.width, L.height);
  if (width === L.width && height === L.height) return { width, height, pixels: rgb };
  const out = await sharp(rgb, { raw: { width: L.width, height: L.height, channels: 3 } }).resize(width, height, { kernel: 'linear', fit: 'fill' }).raw().toBuffer();
  return { width, height, pixels: new Uint8Array(out.buffer, out.byteOffset, out.length) };
}

/**
 * The level read in bands of whole thumbnail rows and area-averaged: thumbnail pixel (x, y) is the
 * mean of the level pixels [x0, x1) x [y0, y1) with x0 = floor(x * W / w) (and so on), so every
 * level pixel counts once.
 */
export async function streamedMaskImage(source: SlideSource, level: number, bandPixels = BAND_PIXELS): Promise<MaskImage> {
  const L = source.levels[level]!;
  const { width, height } = maskSize(L.width, L.height);
  const edge = (i: number, n: number, of: number) => Math.floor((i * of) / n);
  const columnOf = new Int32Array(L.width);
  for (let x = 0; x < width; x++) for (let c = edge(x, width, L.width); c < edge(x + 1, width, L.width); c++) columnOf[c] = x;
  const pixels = new Uint8Array(width * height * 3);
  const rowsPerBand = Math.max(1, Math.floor(bandPixels / L.width / Math.max(1, L.height / height)));
  const sums = new Float64Array(width * 3);
  const counts = new Float64Array(width);
  for (let y0 = 0; y0 < height; y0 += rowsPerBand) {
    const y1 = Math.min(height, y0 + rowsPerBand);
    const top = edge(y0, height, L.height);
    const bottom = edge(y1, height, L.height);
    const band = await source.readRegion(level, 0, Math.round(top * L.downsample), L.width, bottom - top);
    for (let y = y0; y < y1; y++) {
      sums.fill(0);
      counts.fill(0);
      for (let r = edge(y, height, L.height); r < edge(y + 1, height, L.height); r++) {
        const row = (r - top) * L.width * 3;
        for (let c = 0; c < L.width; c++) {
          const x = columnOf[c]!;
          const i = row + 3 * c;
          sums[3 * x] = sums[3 * x]! + band[i]!;
          sums[3 * x + 1] = sums[3 * x + 1]! + band[i + 1]!;
          sums[3 * x + 2] = sums[3 * x + 2]! + band[i + 2]!;
          counts[x] = counts[x]! + 1;
        }
      }
      for (let x = 0; x < width; x++) for (let k = 0; k < 3; k++) pixels[(y * width + x) * 3 + k] = Math.round(sums[3 * x + k]! / counts[x]!);
    }
  }
  return { width, height, pixels };
}
