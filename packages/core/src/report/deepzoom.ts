/**
 * The zoomable view of a slide in the HTML report: a Deep Zoom (DZI) pyramid of JPEG tiles written
 * by libvips (sharp's tile()), from the finest pyramid level that fits the view size.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { openSource } from '../slide-source.js';
import { fileHref } from './html-common.js';

/** Default longest side of the zoomable view, in pixels (a few hundred JPEG tiles per slide). */
export const DEFAULT_VIEW_SIZE = 8192;
const TILE_SIZE = 254;
/** Largest level read whole for the view (as for the tissue mask): 2^28 pixels, 768 MiB of RGB. */
const MAX_VIEW_SOURCE_PIXELS = 2 ** 28;
const TILE_OVERLAP = 1;

/** What the slide page needs to show the pyramid (the .dzi descriptor's content, inlined). */
export interface DeepZoomView {
  /** Link to the folder of the tiles, relative to the report folder (./<stem>_files/, percent-encoded). */
  tiles: string;
  width: number;
  height: number;
  tileSize: number;
  overlap: number;
  /** Tile file suffix, as the .dzi names it. */
  format: string;
}

/**
 * Writes <stem>.dzi and <stem>_files/ into `dir` from `input` (a slide or an image), at most
 * `viewSize` px on its longest side: the finest level no more than twice that size is read whole
 * and shrunk to fit. `dir` is a fresh staging folder (see writeSlideReports): the view is swapped into
 * the report folder only once it is complete, so a killed run never leaves half a view behind.
 */
export async function writeDeepZoom(input: string, dir: string, stem: string, viewSize = DEFAULT_VIEW_SIZE): Promise<DeepZoomView> {
  const source = await openSource(input);
  try {
    const levels = source.levels.map((l, index) => ({ ...l, index }));
    const fitting = levels.filter((l) => Math.max(l.width, l.height) <= 2 * viewSize);
    const level = fitting[0] ?? levels[levels.length - 1]!;
    // A slide without a small enough level (one huge plain TIFF) would be read whole: not for a view.
    if (level.width * level.height > MAX_VIEW_SOURCE_PIXELS) {
      throw new InputError(`${input}: no pyramid level small enough for the zoomable view (smallest is ${level.width}x${level.height})`);
    }
    const pixels = await source.readRegion(level.index, 0, 0, level.width, level.height);
    const info = await sharp(pixels, { raw: { width: level.width, height: level.height, channels: 3 }, limitInputPixels: false })
      .resize({ width: viewSize, height: viewSize, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 85 })
      .tile({ size: TILE_SIZE, overlap: TILE_OVERLAP, layout: 'dz' })
      .toFile(path.join(dir, `${stem}.dz`)); // libvips writes <stem>.dzi and <stem>_files/
    const format = /Format="(\w+)"/.exec(await readFile(path.join(dir, `${stem}.dzi`), 'utf8'))?.[1] ?? 'jpeg';
    return { tiles: `${fileHref(`${stem}_files`)}/`, width: info.width, height: info.height, tileSize: TILE_SIZE, overlap: TILE_OVERLAP, format };
  } finally {
    source.close();
  }
}
