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
 * Tissue fraction of each patch of a grid given in level-0 pixels, from a mask that covers the
 * whole slide at `maskDownsample` level-0 pixels per mask pixel.
 */
export function patchTissueFractions(
  tissue: TissueMask,
  maskDownsample: number,
  grid: { columns: number; rows: number; patchSize: number; stride: number; originX?: number; originY?: number },
): Float32Array {
  const out = new Float32Array(grid.columns * grid.rows);
  const ox = grid.originX ?? 0;
  const oy = grid.originY ?? 0;
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.columns; c++) {
      const x0 = Math.floor((ox + c * grid.stride) / maskDownsample);
      const y0 = Math.floor((oy + r * grid.stride) / maskDownsample);
      const x1 = Math.min(tissue.width, Math.max(x0 + 1, Math.ceil((ox + c * grid.stride + grid.patchSize) / maskDownsample)));
      const y1 = Math.min(tissue.height, Math.max(y0 + 1, Math.ceil((oy + r * grid.stride + grid.patchSize) / maskDownsample)));
      let on = 0;
      let all = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) { on += tissue.mask[y * tissue.width + x]!; all++; }
      out[r * grid.columns + c] = all > 0 ? on / all : 0;
    }
  }
  return out;
}
