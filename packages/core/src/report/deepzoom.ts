/**
 * The zoomable view of a slide in the HTML report: a Deep Zoom (DZI) pyramid of JPEG tiles, made
 * from one of the slide's own pyramid levels, read band by band and written tile by tile as the
 * bands arrive. Memory stays bounded (a band and a few tile rows per view level), never a whole level,
 * and the view can be written while the slide is scanned (startSlideView in scan/reports.ts).
 */
import { writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { encodeJpegTiles } from '@fqa/native';
import { openSource, sourceLevel, type ScaledSourceLevel, type SlideSource, type SourceLevel } from '../slide-source.js';
import { UsageError } from '../errors.js';
import { fileHref } from './html-common.js';

/** Default longest side of the zoomable view, in pixels (a few hundred JPEG tiles per slide). */
export const DEFAULT_VIEW_SIZE = 8192;
const TILE_SIZE = 254;
const TILE_OVERLAP = 1;
const JPEG_QUALITY = 85;
/**
 * The largest whole factor a level is shrunk by for the view, unless no level allows less (a slide
 * without a pyramid): beyond it a coarser level is cheaper to read than a finer one shrunk.
 */
const MAX_PREFERRED_SHRINK = 4;
/** Bytes of one band of level pixels read at a time (more rows for narrower levels). */
const BAND_BYTES = 8 * 2 ** 20;
/** Tile rows being encoded and written at once: enough to keep libuv's threads busy, few enough to bound memory. */
const TILE_ROWS_IN_FLIGHT = 4;

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

/** Which pixels make the view: `level` (a SlideSource level, or the index of a scaled one) shrunk by the whole `factor` (a box mean), width x height. */
export interface ViewPlan {
  level: number;
  factor: number;
  width: number;
  height: number;
}

/**
 * What decoding a level at 1/2 (1/4, 1/8) in the JPEG decoder costs against decoding it in full: the
 * entropy decoding is the same at any scale (measured 0.65-0.70x at 1/2, docs/scanning.md "40x slides").
 */
const SCALED_DECODE_COST = 0.7;

/**
 * The largest view of at most `viewSize` px on its longest side that a level (or a scaled decode of
 * one, `scaled`) gives shrunk by a whole factor; of equal sizes, the one cheapest to decode, then the
 * one shrunk least. Factors above MAX_PREFERRED_SHRINK only where no level needs less (one huge
 * level: read once, in bands).
 */
export function planView(levels: Pick<SourceLevel, 'width' | 'height'>[], viewSize: number, scaled: Pick<ScaledSourceLevel, 'index' | 'level' | 'width' | 'height'>[] = []): ViewPlan {
  if (!Number.isInteger(viewSize) || viewSize < 1) throw new UsageError(`view size must be a whole number of pixels >= 1 (0 means no view, which writes none), not ${viewSize}`);
  const pixels = (l: { width: number; height: number }) => l.width * l.height;
  const sources = [
    ...levels.map((l, index) => ({ index, width: l.width, height: l.height, cost: pixels(l) })),
    ...scaled.map((s) => ({ index: s.index, width: s.width, height: s.height, cost: SCALED_DECODE_COST * pixels(levels[s.level]!) })),
  ];
  const plans = sources.map((l) => {
    const factor = Math.max(1, Math.ceil(Math.max(l.width, l.height) / viewSize));
    return { level: l.index, factor, width: Math.ceil(l.width / factor), height: Math.ceil(l.height / factor), cost: l.cost };
  });
  const preferred = plans.filter((p) => p.factor <= MAX_PREFERRED_SHRINK);
  const candidates = preferred.length > 0 ? preferred : plans;
  const best = candidates.reduce((a, b) => {
    const sizeA = Math.max(a.width, a.height);
    const sizeB = Math.max(b.width, b.height);
    if (sizeA !== sizeB) return sizeB > sizeA ? b : a;
    if (a.cost !== b.cost) return b.cost < a.cost ? b : a;
    return b.factor < a.factor ? b : a;
  });
  return { level: best.level, factor: best.factor, width: best.width, height: best.height };
}

/**
 * Box mean of `rows` rows of `width` RGB pixels by `factor` in both directions: ceil(width/factor) x
 * ceil(rows/factor) pixels; the last column and row of boxes average the pixels there are.
 */
export function shrinkBand(pixels: Uint8Array, width: number, rows: number, factor: number): { pixels: Uint8Array; width: number; rows: number } {
  if (factor === 1) return { pixels, width, rows };
  const outWidth = Math.ceil(width / factor);
  const outRows = Math.ceil(rows / factor);
  const out = new Uint8Array(outWidth * outRows * 3);
  const sums = new Uint32Array(outWidth * 3);
  for (let oy = 0; oy < outRows; oy++) {
    sums.fill(0);
    const y0 = oy * factor;
    const y1 = Math.min(rows, y0 + factor);
    for (let y = y0; y < y1; y++) {
      let i = y * width * 3;
      for (let x = 0; x < width; x++, i += 3) {
        const o = ((x / factor) | 0) * 3;
        sums[o] = sums[o]! + pixels[i]!;
        sums[o + 1] = sums[o + 1]! + pixels[i + 1]!;
        sums[o + 2] = sums[o + 2]! + pixels[i + 2]!;
      }
    }
    for (let ox = 0; ox < outWidth; ox++) {
      const count = (Math.min(width, (ox + 1) * factor) - ox * factor) * (y1 - y0);
      for (let c = 0; c < 3; c++) out[(oy * outWidth + ox) * 3 + c] = Math.round(sums[ox * 3 + c]! / count);
    }
  }
  return { pixels: out, width: outWidth, rows: outRows };
}

/** Rows a level holds at most: a tile row and the overlap row above and below it. */
const ROWS_HELD = TILE_SIZE + 2 * TILE_OVERLAP;

/**
 * One level of the Deep Zoom pyramid being written: the rows not yet in a written tile row, in one
 * buffer (no object per row: a view has tens of thousands of rows), and the even row waiting for its
 * odd partner to make a row of the next (half-size) level.
 */
interface ZoomLevel {
  index: number;
  width: number;
  height: number;
  rowBytes: number;
  /** Level rows firstRow .. firstRow + held - 1, ROWS_HELD rows of room. */
  rows: Uint8Array;
  firstRow: number;
  held: number;
  /** The next tile row to write. */
  nextTileRow: number;
  pending: Uint8Array;
  hasPending: boolean;
}

/**
 * Writes a Deep Zoom pyramid (libvips's `dz` layout: <stem>_files/<level>/<column>_<row>.jpeg,
 * levels down to 1x1, each half the one above by a 2x2 box mean) from rows of its largest level
 * given in order, top to bottom. Each tile row is written as soon as its rows (and the overlap row
 * below) are in, and its rows are then dropped.
 */
class DeepZoomWriter {
  private readonly levels: ZoomLevel[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(private readonly folder: string, width: number, height: number) {
    const count = Math.ceil(Math.log2(Math.max(width, height))) + 1;
    for (let index = count - 1; index >= 0; index--) {
      const scale = 2 ** (count - 1 - index);
      const levelWidth = Math.ceil(width / scale);
      const rowBytes = levelWidth * 3;
      this.levels[index] = {
        index, width: levelWidth, height: Math.ceil(height / scale), rowBytes, rows: new Uint8Array(ROWS_HELD * rowBytes), firstRow: 0, held: 0,
        nextTileRow: 0, pending: new Uint8Array(rowBytes), hasPending: false,
      };
    }
  }

  async makeFolders(): Promise<void> {
    for (const level of this.levels) await mkdir(path.join(this.folder, String(level.index)), { recursive: true });
  }

  /** Adds `count` rows of the largest level (width x 3 bytes each, in `pixels`), then waits while too many tiles are in flight. */
  async addRows(pixels: Uint8Array, count: number): Promise<void> {
    const top = this.levels[this.levels.length - 1]!;
    for (let y = 0; y < count; y++) {
      top.rows.set(pixels.subarray(y * top.rowBytes, (y + 1) * top.rowBytes), top.held * top.rowBytes);
      this.rowAdded(top);
    }
    while (this.inFlight.size > TILE_ROWS_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** Writes what is left (the last tile row of every level) and waits for every tile. */
  async finish(): Promise<void> {
    for (let index = this.levels.length - 1; index > 0; index--) {
      const level = this.levels[index]!;
      if (level.hasPending) this.halveInto(level, null);
      level.hasPending = false;
    }
    for (const level of this.levels) this.writeTileRows(level, true);
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** The row just put at `level.held`: counted, paired for the next level, and tile rows written. */
  private rowAdded(level: ZoomLevel): void {
    const offset = level.held * level.rowBytes;
    level.held++;
    if (level.index > 0) {
      if (!level.hasPending) {
        level.pending.set(level.rows.subarray(offset, offset + level.rowBytes));
        level.hasPending = true;
      } else {
        this.halveInto(level, offset);
        level.hasPending = false;
      }
    }
    this.writeTileRows(level, false);
  }

  /** The next level's next row: 2x2 box means of `level`'s pending row and its row at `oddOffset` (null: the last, odd row alone). */
  private halveInto(level: ZoomLevel, oddOffset: number | null): void {
    const next = this.levels[level.index - 1]!;
    const out = next.rows;
    const base = next.held * next.rowBytes;
    const a = level.pending;
    const b = level.rows;
    const width = level.width;
    for (let x = 0; x < next.width; x++) {
      const left = 2 * x * 3;
      const right = 2 * x + 1 < width ? left + 3 : left;
      for (let c = 0; c < 3; c++) {
        const top = a[left + c]! + a[right + c]!;
        out[base + x * 3 + c] = oddOffset === null ? (top + 1) >> 1 : (top + b[oddOffset + left + c]! + b[oddOffset + right + c]! + 2) >> 2;
      }
    }
    this.rowAdded(next);
  }

  /** Writes each tile row whose rows are all in (all remaining ones at the end), then drops rows no later tile needs. */
  private writeTileRows(level: ZoomLevel, atEnd: boolean): void {
    for (;;) {
      const ty = level.nextTileRow;
      if (ty * TILE_SIZE >= level.height) return;
      const y0 = Math.max(0, ty * TILE_SIZE - TILE_OVERLAP);
      const y1 = Math.min(level.height, (ty + 1) * TILE_SIZE + TILE_OVERLAP);
      if (level.firstRow + level.held < y1 && !atEnd) return;
      // The band is copied: the encoder reads it on another thread while the rows here move on.
      this.writeTileRow(level, ty, level.rows.slice((y0 - level.firstRow) * level.rowBytes, (y1 - level.firstRow) * level.rowBytes), y1 - y0);
      level.nextTileRow++;
      // The next tile row starts one overlap row above its own first row.
      const drop = Math.max(0, (ty + 1) * TILE_SIZE - TILE_OVERLAP - level.firstRow);
      level.rows.copyWithin(0, drop * level.rowBytes, level.held * level.rowBytes);
      level.held -= drop;
      level.firstRow += drop;
    }
  }

  /** Encodes and writes the tiles of a band of `rows` rows of `level` (tile row `ty`): cut into tiles natively (sharp per tile without libjpeg). */
  private writeTileRow(level: ZoomLevel, ty: number, band: Uint8Array, rows: number): void {
    const rowBytes = level.rowBytes;
    const columns: number[] = [];
    for (let tx = 0; tx * TILE_SIZE < level.width; tx++) columns.push(Math.max(0, tx * TILE_SIZE - TILE_OVERLAP), Math.min(level.width, (tx + 1) * TILE_SIZE + TILE_OVERLAP));
    const tileFile = (i: number) => path.join(this.folder, String(level.index), `${i}_${ty}.jpeg`);
    const write = encodeTiles(band, rowBytes, rows, columns)
      // Written synchronously: a tile is a few KB, and an asynchronous write costs three trips
      // through libuv's threads (open, write, close), more than the write itself.
      .then((files) => files.forEach((file, i) => writeFileSync(tileFile(i), file)))
      .then(() => undefined, (err: unknown) => { this.failure ??= err; })
      .finally(() => this.inFlight.delete(write));
    this.inFlight.add(write);
  }
}

/** The JPEG files of tiles cut from a band: natively (libjpeg-turbo), or with sharp where the build has no libjpeg. */
async function encodeTiles(band: Uint8Array, rowBytes: number, rows: number, columns: number[]): Promise<Uint8Array[]> {
  const native = encodeJpegTiles(band, rowBytes, rows, columns, JPEG_QUALITY);
  if (native !== null) return native;
  const files: Promise<Uint8Array>[] = [];
  for (let i = 0; i < columns.length; i += 2) {
    files.push(sharp(band, { raw: { width: rowBytes / 3, height: rows, channels: 3 } })
      .extract({ left: columns[i]!, top: 0, width: columns[i + 1]! - columns[i]!, height: rows })
      .jpeg({ quality: JPEG_QUALITY }).toBuffer());
  }
  return Promise.all(files);
}

function dziDescriptor(width: number, height: number): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="jpeg" Overlap="${TILE_OVERLAP}" TileSize="${TILE_SIZE}">
  <Size Height="${height}" Width="${width}"/>
</Image>
`;
}

/** Columns read at once: a slide's readRegion takes at most 2^16 (a level without a pyramid can be wider). */
const READ_COLUMNS = 16384;

/**
 * Rows [y, y + rows) of a level, whole width: one read, or reads of READ_COLUMNS columns side by side.
 * readRegion takes level-0 coordinates and truncates them to level pixels: ceil lands on pixel y (x).
 */
async function readBand(source: SlideSource, index: number, level: { width: number; downsample: number }, y: number, rows: number): Promise<Uint8Array> {
  const top = Math.ceil(y * level.downsample);
  if (level.width <= READ_COLUMNS) return source.readRegion(index, 0, top, level.width, rows);
  const band = new Uint8Array(level.width * rows * 3);
  for (let x = 0; x < level.width; x += READ_COLUMNS) {
    const width = Math.min(READ_COLUMNS, level.width - x);
    const part = await source.readRegion(index, Math.ceil(x * level.downsample), top, width, rows);
    for (let r = 0; r < rows; r++) band.set(part.subarray(r * width * 3, (r + 1) * width * 3), (r * level.width + x) * 3);
  }
  return band;
}

/**
 * Writes <stem>.dzi and <stem>_files/ into `dir` from `input` (a slide or an image), at most
 * `viewSize` px on its longest side (planView). `dir` is a fresh staging folder (see
 * writeSlideReports): the view is swapped into the report folder only once it is complete, so a
 * killed run never leaves half a view behind. `signal` stops it between bands.
 */
export async function writeDeepZoom(input: string, dir: string, stem: string, viewSize = DEFAULT_VIEW_SIZE, signal?: AbortSignal): Promise<DeepZoomView> {
  const source = await openSource(input);
  try {
    const plan = planView(source.levels, viewSize, source.scaledLevels);
    const level = sourceLevel(source, plan.level);
    const writer = new DeepZoomWriter(path.join(dir, `${stem}_files`), plan.width, plan.height);
    await writer.makeFolders();
    source.readInBands(plan.level);
    // Whole boxes per band, so a band's shrunk rows never straddle the next band.
    const bandRows = plan.factor * Math.max(1, Math.floor(BAND_BYTES / (level.width * 3 * plan.factor)));
    for (let y = 0; y < level.height; y += bandRows) {
      signal?.throwIfAborted();
      const rows = Math.min(bandRows, level.height - y);
      const band = shrinkBand(await readBand(source, plan.level, level, y, rows), level.width, rows, plan.factor);
      await writer.addRows(band.pixels, band.rows);
    }
    await writer.finish();
    await writeFile(path.join(dir, `${stem}.dzi`), dziDescriptor(plan.width, plan.height));
    return { tiles: `${fileHref(`${stem}_files`)}/`, width: plan.width, height: plan.height, tileSize: TILE_SIZE, overlap: TILE_OVERLAP, format: 'jpeg' };
  } finally {
    source.close();
  }
}
