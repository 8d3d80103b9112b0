/**
 * Tissue detection on a low-resolution RGB image (a slide's thumbnail level), the first step of
 * every QC tool: background and marker pen are not tissue, so they are neither scored nor counted
 * in "% of tissue out of focus".
 *
 * Stages (detectTissue):
 * 1. Colour, per pixel (classifyPixel):
 *    - background: bright and unsaturated glass (min channel >= 205 and max-min < 25);
 *    - black ink or debris: max channel < 30;
 *    - ink-coloured: green above red and not below blue (stained tissue is pink, purple, brown or
 *      blue, never green-dominant); blue far above red and green (hematoxylin keeps blue within
 *      ~50-70 of red); saturated red with green below 35 % of red;
 *    - stain: whatever else is saturated (max-min >= 18) or darker than glass (max < 170).
 *    Colour alone cannot tell red ink from dark haematoxylin: a fold or a thick section reaches
 *    RGB 87,17,53, inside the red-ink rule. So ink colour only seeds stage 3.
 * 2. Texture: how far the luminance departs from its 5x5 mean, averaged over a 9x9 window.
 *    Tissue has nuclei, fibres and edges even when blurred; ink laid on glass (or over an empty
 *    fat-cell lumen) is flat.
 * 3. Pen regions: connected regions of flat, non-glass pixels, large enough (0.1 % of the mask)
 *    and with ink-coloured pixels a real share of them (10 %); then the flat ink-free haze of a
 *    stroke within 12 px of it (over fat lumens, cut off by septa); then a 4 px rim (the texture
 *    of a stroke's own edge). Ink over tissue whose texture shows through stays tissue: the
 *    tissue is there, under a tint.
 * 4. Tissue: stain or ink-coloured pixels outside pen regions, cleaned with a 3x3 majority vote
 *    (dust, noise).
 *
 * Limits: the texture threshold is absolute (grey levels), chosen by looking at the same real
 * tiles the tests check (histolab's pen tiles, the TCGA@Focus pair), at the resolution a scan
 * builds its mask (<= 1024 px a side); the margin is narrow (FLAT_TEXTURE). Ink dense enough to
 * hide the tissue's texture is pen; a large flat red region with no texture (a blood clot, a
 * smooth haemorrhage) can be taken for pen, which the scan's pen warning is there to catch; a
 * flat, pale region without ink-coloured pixels (smooth stroma, serum) stays tissue; noise on a
 * real slide's glass is texture, so pen on a noisy thumbnail can be kept as tissue; faint haze
 * too far from its stroke stays tissue. See docs/scanning.md.
 */
import { summedArea } from './summed-area.js';

export interface TissueMask {
  width: number;
  height: number;
  /** 1 = tissue, row-major. */
  mask: Uint8Array;
  /** 1 = marker pen (excluded from tissue), row-major. */
  pen: Uint8Array;
  /** Fraction of pixels that are tissue. */
  fraction: number;
  /**
   * Fraction of pixels classified as marker pen and excluded from tissue: flat ink regions (stage 3),
   * not the ink-coloured pixels of tissue that kept its texture.
   */
  penFraction: number;
}

export enum PixelClass {
  Background = 0,
  Tissue = 1,
  /** Ink-coloured (green, blue or saturated red): pen when flat (detectTissue), else tissue. */
  Pen = 2,
  Ink = 3,
}

/** Stage 1: the colour class of one pixel. */
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

/**
 * Radius of the texture window (9x9 px): at a scan's mask resolution (<= 1024 px a side) a few
 * nuclei or fibres wide, so tissue shows texture in it even where it is blurred.
 */
const TEXTURE_RADIUS = 4;
/**
 * Texture (grey levels, stage 2) below which a pixel's window is flat. Chosen by looking at the
 * same real tiles the tests check: ink on glass in histolab's pen tiles measures 0.3-0.6 (median,
 * 95th percentile), the dark half of the out-of-focus TCGA@Focus patch 0.65 and above (1st
 * percentile) once resampled to the scan's 1024 px; that patch starts losing its dark half to
 * "pen" at 0.9, and ink over empty fat lumens starts coming back as tissue at 0.5. 0.7 sits between.
 */
const FLAT_TEXTURE = 0.7;
/** A flat region is pen when at least this share of it is ink-coloured (the rest: its pale rim, dark core). */
const PEN_SEED_SHARE = 0.1;
/**
 * Flat regions smaller than this share of the mask are gaps inside tissue (between nuclei, a
 * vessel), never pen: 0.1 % of a 1024 x 768 mask is ~28 x 28 px, 0.5-1 mm square on a whole
 * slide's mask, less than any marker stroke covers.
 */
const MIN_PEN_SHARE = 0.001;
/**
 * A flat region with no ink colour of its own is pen when it lies this close (px) to a pen region:
 * the faint haze of a stroke over empty fat-cell lumens, cut off from the stroke by the septa.
 */
const PEN_HAZE_REACH = 3 * TEXTURE_RADIUS;
/** Haze reaches a stroke through at most this many other haze regions. */
const HAZE_STEPS = 4;

/** rgb: 3 bytes per pixel with the given row stride (default 3 * width). */
export function detectTissue(rgb: Uint8Array, width: number, height: number, rowStride = 3 * width): TissueMask {
  const classes = colourClasses(rgb, width, height, rowStride);
  const texture = textureEnergy(rgb, width, height, rowStride);
  const pen = penRegions(classes, texture, width, height);
  const n = width * height;
  const raw = new Uint8Array(n);
  let penPixels = 0;
  for (let i = 0; i < n; i++) {
    if (pen[i]) penPixels++;
    else raw[i] = classes[i] === PixelClass.Tissue || classes[i] === PixelClass.Pen ? 1 : 0;
  }
  const mask = majority3x3(raw, width, height);
  let tissue = 0;
  for (let i = 0; i < n; i++) tissue += mask[i]!;
  const all = Math.max(1, n);
  return { width, height, mask, pen, fraction: tissue / all, penFraction: penPixels / all };
}

/** Stage 1 over the image. */
function colourClasses(rgb: Uint8Array, width: number, height: number, rowStride: number): Uint8Array {
  const classes = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    let p = y * rowStride;
    for (let x = 0; x < width; x++, p += 3) classes[y * width + x] = classifyPixel(rgb[p]!, rgb[p + 1]!, rgb[p + 2]!);
  }
  return classes;
}

/**
 * Stage 2: how far the luminance (mean of R, G, B) departs from its 5x5 mean, averaged over the
 * texture window. A band-pass, not a 1-px Laplacian: resampling the mask level (as the scan does)
 * smooths single-pixel detail but keeps this scale.
 */
function textureEnergy(rgb: Uint8Array, width: number, height: number, rowStride: number): Float32Array {
  const luma = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    let p = y * rowStride;
    for (let x = 0; x < width; x++, p += 3) luma[y * width + x] = (rgb[p]! + rgb[p + 1]! + rgb[p + 2]!) / 3;
  }
  // The detail overwrites the local mean: a mask level can be large (fqa-scan score runs this on
  // whole images), so stage 2 keeps to a few bytes per pixel.
  const detail = boxMean(luma, width, height, 2);
  for (let i = 0; i < detail.length; i++) detail[i] = Math.abs(luma[i]! - detail[i]!);
  return boxMean(detail, width, height, TEXTURE_RADIUS);
}

/** Mean over the (2r+1)^2 box around each pixel (clipped at the edges): running sums, rows then columns. */
function boxMean(values: Float32Array, width: number, height: number, r: number): Float32Array {
  const rows = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const o = y * width;
    let sum = 0;
    for (let x = 0; x < Math.min(width, r); x++) sum += values[o + x]!;
    for (let x = 0; x < width; x++) {
      if (x + r < width) sum += values[o + x + r]!;
      if (x - r - 1 >= 0) sum -= values[o + x - r - 1]!;
      rows[o + x] = sum;
    }
  }
  const out = new Float32Array(width * height);
  const columns = new Float64Array(width);
  for (let y = 0; y < Math.min(height, r); y++) for (let x = 0; x < width; x++) columns[x]! += rows[y * width + x]!;
  for (let y = 0; y < height; y++) {
    if (y + r < height) for (let x = 0; x < width; x++) columns[x]! += rows[(y + r) * width + x]!;
    if (y - r - 1 >= 0) for (let x = 0; x < width; x++) columns[x]! -= rows[(y - r - 1) * width + x]!;
    const tall = Math.min(height, y + r + 1) - Math.max(0, y - r);
    for (let x = 0; x < width; x++) out[y * width + x] = columns[x]! / (tall * (Math.min(width, x + r + 1) - Math.max(0, x - r)));
  }
  return out;
}

/**
 * Stage 3: connected (4-neighbour) regions of flat stain or ink-coloured pixels. A large region
 * seeded by ink colour is pen, and so is a large one within PEN_HAZE_REACH of it; pen then grows
 * by the texture radius over everything but glass (a stroke's own edge is texture, so its rim is
 * not flat).
 */
function penRegions(classes: Uint8Array, texture: Float32Array, width: number, height: number): Uint8Array {
  const n = width * height;
  const minPixels = Math.max(16, MIN_PEN_SHARE * n);
  const flatPixels = new Uint8Array(n);
  for (let i = 0; i < n; i++) flatPixels[i] = (classes[i] === PixelClass.Tissue || classes[i] === PixelClass.Pen) && texture[i]! < FLAT_TEXTURE ? 1 : 0;
  const flat = (i: number) => flatPixels[i] === 1;
  // Most slides have no flat ink at all: no region can be pen.
  let flatInk = 0;
  for (let i = 0; i < n; i++) if (flatPixels[i] && classes[i] === PixelClass.Pen) flatInk++;
  if (flatInk === 0) return new Uint8Array(n);
  // Label the regions (0 = not flat), counting each one's pixels and ink-coloured pixels.
  const label = new Int32Array(n);
  const sizes: number[] = [0];
  const seeds: number[] = [0];
  const stack = new Int32Array(n);
  for (let start = 0; start < n; start++) {
    if (label[start] !== 0 || !flat(start)) continue;
    const id = sizes.length;
    let size = 0;
    let inked = 0;
    let top = 0;
    stack[top++] = start;
    label[start] = id;
    while (top > 0) {
      const i = stack[--top]!;
      size++;
      if (classes[i] === PixelClass.Pen) inked++;
      const x = i % width;
      if (x > 0 && label[i - 1] === 0 && flat(i - 1)) (label[i - 1] = id), (stack[top++] = i - 1);
      if (x < width - 1 && label[i + 1] === 0 && flat(i + 1)) (label[i + 1] = id), (stack[top++] = i + 1);
      if (i >= width && label[i - width] === 0 && flat(i - width)) (label[i - width] = id), (stack[top++] = i - width);
      if (i + width < n && label[i + width] === 0 && flat(i + width)) (label[i + width] = id), (stack[top++] = i + width);
    }
    sizes.push(size);
    seeds.push(inked);
  }
  const isPen = sizes.map((size, id) => id > 0 && size >= minPixels && seeds[id]! >= PEN_SEED_SHARE * size);
  // Most slides have no pen: nothing more to do.
  if (!isPen.includes(true)) return new Uint8Array(n);
  const stroke = new Uint8Array(n);
  for (let i = 0; i < n; i++) if (isPen[label[i]!]) stroke[i] = 1;
  // Haze: large ink-free regions that come within reach of a stroke, and of that haze, and so on.
  for (let step = 0; step < HAZE_STEPS; step++) {
    const nearStroke = boxAny(stroke, width, height, PEN_HAZE_REACH);
    let grown = false;
    for (let i = 0; i < n; i++) {
      const id = label[i]!;
      if (id > 0 && !isPen[id] && sizes[id]! >= minPixels && nearStroke[i]) (isPen[id] = true), (grown = true);
    }
    if (!grown) break;
    for (let i = 0; i < n; i++) if (isPen[label[i]!]) stroke[i] = 1;
  }
  const pen = boxAny(stroke, width, height, TEXTURE_RADIUS);
  for (let i = 0; i < n; i++) if (classes[i] === PixelClass.Background || classes[i] === PixelClass.Ink) pen[i] = 0;
  return pen;
}

/** 1 where any pixel of `on` lies in the (2r+1)^2 box around it (a dilation by a square). */
function boxAny(on: Uint8Array, width: number, height: number, r: number): Uint8Array {
  const mean = boxMean(Float32Array.from(on), width, height, r);
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) if (mean[i]! > 0) out[i] = 1;
  return out;
}

/** Stage 4's cleaning: 3x3 majority (edges use the pixels that exist). */
function majority3x3(raw: Uint8Array, width: number, height: number): Uint8Array {
  // The share of tissue in the clipped 3x3 box; exactly 0.5 (3 of 6 on an edge) is not a majority.
  const share = boxMean(Float32Array.from(raw), width, height, 1);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = share[i]! > 0.5 ? 1 : 0;
  return mask;
}

/**
 * Share of tissue pixels (classifyPixel) in a w x h window at (x0, y0) of an RGB image `rowWidth` px
 * wide, sampled every `step` px in both directions: the training-data generators' check that a crop
 * holds enough tissue. Colour only (stage 1), as before the texture rule: ink-coloured dark stain
 * counts as no tissue here, which keeps the shipped default model's recipe reproducible.
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
  tissue: Pick<TissueMask, 'width' | 'height' | 'mask'>,
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
