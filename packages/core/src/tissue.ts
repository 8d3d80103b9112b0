/**
 * Tissue detection on a low-resolution RGB image (a slide's thumbnail level), the first step of
 * every QC tool: background and marker pen are not tissue, so they are neither scored nor counted
 * in "% of tissue out of focus".
 *
 * Per pixel, in this order:
 * - background: bright and unsaturated glass (min channel >= 205 and max-min < 25);
 * - black ink or debris: max channel < 30;
 * - green pen: green above red and not below blue (stained tissue is pink, purple, brown or blue,
 *   never green-dominant);
 * - blue pen: blue far above both red and green (hematoxylin is blue-purple: blue at most ~50-70
 *   above red);
 * - red pen: saturated red with green below 35 % of red (eosin keeps green near half of red);
 * - tissue: whatever else is saturated (max-min >= 18) or darker than glass (max < 170).
 * The mask is then cleaned with a 3x3 majority vote to drop isolated pixels (dust, noise).
 */
import { summedArea } from './summed-area.js';

export interface TissueMask {
  width: number;
  height: number;
  /** 1 = tissue, row-major. */
  mask: Uint8Array;
  /** Fraction of pixels that are tissue. */
  fraction: number;
  /** Fraction of pixels classified as marker pen (green, blue, red). */
  penFraction: number;
}

export enum PixelClass {
  Background = 0,
  Tissue = 1,
  Pen = 2,
  Ink = 3,
}

export function classifyPixel(r: number, g: number, b: number): PixelClass {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  if (min >= 205 && max - min < 25) return PixelClass.Background;
  if (max < 30) return PixelClass.Ink;
  if (g > r + 15 && g >= b - 10) return PixelClass.Pen;
  if (b > r + 80 && b > g + 50) return PixelClass.Pen;
  if (r >= 80 && g < 0.35 * r && r - min >= 60) return PixelClass.Pen;
  if (max - min >= 18 || max < 170) return PixelClass.Tissue;
  return PixelClass.Background;
}

/** rgb: 3 bytes per pixel with the given row stride (default 3 * width). */
export function detectTissue(rgb: Uint8Array, width: number, height: number, rowStride = 3 * width): TissueMask {
  const raw = new Uint8Array(width * height);
  let pen = 0;
  for (let y = 0; y < height; y++) {
    let p = y * rowStride;
    for (let x = 0; x < width; x++, p += 3) {
      const c = classifyPixel(rgb[p]!, rgb[p + 1]!, rgb[p + 2]!);
      raw[y * width + x] = c === PixelClass.Tissue ? 1 : 0;
      if (c === PixelClass.Pen) pen++;
    }
  }
  // 3x3 majority (edges use the pixels that exist).
  const mask = new Uint8Array(width * height);
  let tissue = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let on = 0;
      let all = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          all++;
          on += raw[yy * width + xx]!;
        }
      }
      const v = 2 * on > all ? 1 : 0;
      mask[y * width + x] = v;
      tissue += v;
    }
  }
  const n = Math.max(1, width * height);
  return { width, height, mask, fraction: tissue / n, penFraction: pen / n };
}

/**
 * Share of tissue pixels (classifyPixel) in a w x h window at (x0, y0) of an RGB image `rowWidth` px
 * wide, sampled every `step` px in both directions: the training-data generators' check that a crop
 * holds enough tissue.
 */
export function sampledTissueShare(rgb: Uint8Array, rowWidth: number, x0: number, y0: number, w: number, h: number, step: number): number {
  let tissue = 0;
  let all = 0;
  for (let y = y0; y < y0 + h; y += step)
    for (let x = x0; x < x0 + w; x += step) {
      const p = (y * rowWidth + x) * 3;
      all++;
      if (classifyPixel(rgb[p]!, rgb[p + 1]!, rgb[p + 2]!) === PixelClass.Tissue) tissue++;
    }
  return all > 0 ? tissue / all : 0;
}

/**
 * Tissue fraction of each patch of a grid given in level-0 pixels, from a mask that covers the
 * whole slide at `maskDownsample` level-0 pixels per mask pixel (1 for a full-resolution mask).
 * Patches are square (`patchSize`) unless `patchHeight` is given. Counts come from a summed-area
 * table, so the cost does not grow with the patch size.
 */
export function patchTissueFractions(
  tissue: TissueMask,
  maskDownsample: number,
  grid: { columns: number; rows: number; patchSize: number; patchHeight?: number; stride: number; originX?: number; originY?: number },
): Float32Array {
  const { width, height, mask } = tissue;
  const tissuePixels = summedArea(width, height, (i) => mask[i]!);
  const out = new Float32Array(grid.columns * grid.rows);
  const ox = grid.originX ?? 0;
  const oy = grid.originY ?? 0;
  const patchHeight = grid.patchHeight ?? grid.patchSize;
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.columns; c++) {
      const x0 = Math.min(width, Math.floor((ox + c * grid.stride) / maskDownsample));
      const y0 = Math.min(height, Math.floor((oy + r * grid.stride) / maskDownsample));
      const x1 = Math.min(width, Math.max(x0 + 1, Math.ceil((ox + c * grid.stride + grid.patchSize) / maskDownsample)));
      const y1 = Math.min(height, Math.max(y0 + 1, Math.ceil((oy + r * grid.stride + patchHeight) / maskDownsample)));
      const all = (x1 - x0) * (y1 - y0);
      const on = tissuePixels.sum(x0, y0, x1, y1);
      out[r * grid.columns + c] = all > 0 ? on / all : 0;
    }
  }
  return out;
}
