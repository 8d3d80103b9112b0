/**
 * The demo: a synthetic H&E-like whole slide with known out-of-focus regions, written as a
 * JPEG-tiled pyramidal TIFF (what scanners produce), scanned like any slide, and scored against
 * the known defocus.
 *
 * Tissue: pink stroma (value noise from 180 px down to pixel-scale grain, plus fibres) with purple nuclei
 * of random size, density and chromatin texture inside an irregular tissue outline on white glass. Defocus: a Gaussian point-spread
 * function of sigma `blurSigma` px applied inside a disk and a rectangle whose positions are
 * recorded, so the truth of every patch is known.
 */
import sharp from 'sharp';
import { patchUnionGrid } from './scan/flagged-area.js';
import type { ScanResult } from './scan/scan-slide.js';
import { seededRandom } from './train/random.js';

export interface DemoSlide {
  file: string;
  size: number;
  micronsPerPixel: number;
  blurSigma: number;
  /** Defocused regions, level-0 pixels. */
  disk: { cx: number; cy: number; r: number };
  rect: { x: number; y: number; width: number; height: number };
  /** Whether level-0 pixel (x, y) is defocused. */
  defocused(x: number, y: number): boolean;
}

/** Smooth value noise in [0, 1] on a grid of `cell` px. */
function valueNoise(size: number, cell: number, random: () => number): (x: number, y: number) => number {
  const n = Math.ceil(size / cell) + 2;
  const grid = Float32Array.from({ length: n * n }, random);
  return (x, y) => {
    const gx = x / cell;
    const gy = y / cell;
    const x0 = Math.floor(gx);
    const y0 = Math.floor(gy);
    const fx = gx - x0;
    const fy = gy - y0;
    const sx = fx * fx * (3 - 2 * fx);
    const sy = fy * fy * (3 - 2 * fy);
    const a = grid[y0 * n + x0]!;
    const b = grid[y0 * n + x0 + 1]!;
    const c = grid[(y0 + 1) * n + x0]!;
    const d = grid[(y0 + 1) * n + x0 + 1]!;
    return a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy;
  };
}

export async function makeDemoSlide(file: string, options: { size?: number; seed?: number; blurSigma?: number } = {}): Promise<DemoSlide> {
  const size = options.size ?? 4096;
  const blurSigma = options.blurSigma ?? 3;
  const random = seededRandom(options.seed ?? 2026);
  const rgb = new Uint8Array(size * size * 3);
  const outline = valueNoise(size, size / 6, random);
  const stain = valueNoise(size, 180, random);
  const fine = valueNoise(size, 9, random);
  const fibres = valueNoise(size, 40, random);
  // Pixel-scale texture: in-focus tissue at 0.5 um/px has detail down to a few pixels (collagen,
  // chromatin); without it smooth stroma would look defocused to any focus measure.
  const grain = valueNoise(size, 2.5, random);
  // Tissue: an irregular blob covering most of the slide.
  const inside = (x: number, y: number) => {
    const dx = (x - size / 2) / (size * 0.42);
    const dy = (y - size / 2) / (size * 0.4);
    return Math.sqrt(dx * dx + dy * dy) < 0.75 + 0.35 * outline(x, y);
  };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = 3 * (y * size + x);
      if (!inside(x, y)) {
        const g = 238 + Math.floor(8 * fine(x, y));
        rgb[i] = g; rgb[i + 1] = g; rgb[i + 2] = g;
        continue;
      }
      const s = stain(x, y);
      const f = Math.abs(Math.sin((x * 0.7 + y * 0.3) / 6 + 8 * fibres(x, y)));
      const t = 0.55 + 0.3 * s + 0.15 * f ** 4 + 0.1 * (fine(x, y) - 0.5) + 0.16 * (grain(x, y) - 0.5);
      rgb[i] = Math.min(255, 160 + 80 * t);
      rgb[i + 1] = Math.min(255, 60 + 110 * t * t);
      rgb[i + 2] = Math.min(255, 130 + 80 * t);
    }
  }
  // Nuclei: dark purple ellipses with soft edges; denser where the stain noise is high.
  const nuclei = Math.floor((size * size) / 900);
  for (let k = 0; k < nuclei; k++) {
    const cx = random() * size;
    const cy = random() * size;
    if (!inside(cx, cy) || random() > 0.35 + 0.65 * stain(cx, cy)) continue;
    const rx = 3 + 4 * random();
    const ry = rx * (0.6 + 0.5 * random());
    const angle = random() * Math.PI;
    const ca = Math.cos(angle);
    const sa = Math.sin(angle);
    const shade = 0.7 + 0.3 * random();
    const R = Math.ceil(Math.max(rx, ry)) + 2;
    for (let y = Math.max(0, Math.floor(cy - R)); y < Math.min(size, cy + R); y++)
      for (let x = Math.max(0, Math.floor(cx - R)); x < Math.min(size, cx + R); x++) {
        const u = ((x - cx) * ca + (y - cy) * sa) / rx;
        const v = (-(x - cx) * sa + (y - cy) * ca) / ry;
        const d = Math.sqrt(u * u + v * v);
        if (d > 1.15) continue;
        const a = d < 0.85 ? 1 : (1.15 - d) / 0.3;
        const i = 3 * (y * size + x);
        const chromatin = 0.8 + 0.4 * grain(x, y);
        rgb[i] = rgb[i]! * (1 - a) + a * 85 * shade * chromatin;
        rgb[i + 1] = rgb[i + 1]! * (1 - a) + a * 45 * shade * chromatin;
        rgb[i + 2] = rgb[i + 2]! * (1 - a) + a * 135 * shade * chromatin;
      }
  }
  const disk = { cx: Math.round(size * 0.33), cy: Math.round(size * 0.38), r: Math.round(size * 0.14) };
  const rect = { x: Math.round(size * 0.52), y: Math.round(size * 0.55), width: Math.round(size * 0.26), height: Math.round(size * 0.2) };
  const defocused = (x: number, y: number) =>
    (x - disk.cx) ** 2 + (y - disk.cy) ** 2 <= disk.r ** 2 || (x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height);
  const blurred = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).blur(blurSigma).raw().toBuffer();
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      if (defocused(x, y)) {
        const i = 3 * (y * size + x);
        rgb[i] = blurred[i]!; rgb[i + 1] = blurred[i + 1]!; rgb[i + 2] = blurred[i + 2]!;
      }
  const micronsPerPixel = 0.5;
  await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 90, xres: 1000 / micronsPerPixel, yres: 1000 / micronsPerPixel, resolutionUnit: 'cm' })
    .toFile(file);
  return { file, size, micronsPerPixel, blurSigma, disk, rect, defocused };
}

/** Overlap of what a scan called out of focus with what truly is: intersection over union, precision, recall. */
export interface Overlap {
  iou: number;
  precision: number;
  recall: number;
}

export interface DemoMatch {
  /**
   * The out-of-focus area the scan reports (the union of the patches above the threshold: the
   * flagged regions and the GeoJSON) against the truly defocused area, over the area the scan
   * scored (tissue), sampled every 8 level-0 px.
   */
  area: Overlap;
  /** Per patch: intersection over union of the patches scored out of focus with the truly defocused ones (by their centre). */
  iou: number;
  precision: number;
  recall: number;
  truePositives: number;
  falsePositives: number;
  missed: number;
  /**
   * The same IoU over the unambiguous patches only (entirely inside or entirely outside the defocused
   * regions). Mixed patches on a region's edge have their centre on one side but sharp tissue in
   * them: a model that calls a patch out of focus only when none of it is sharp (FocusLiteNN's min
   * over the patch) scores them in focus, which bounds the overall recall.
   */
  unambiguousIou: number;
  /** Scored patches that are partly inside a defocused region (their truth goes by their centre). */
  mixedPatches: number;
}

/** Share of a patch (level-0 square at x, y of side `size`) inside the defocused regions, sampled every 8 px. */
function defocusedShare(demo: DemoSlide, x: number, y: number, size: number): number {
  let inside = 0;
  let all = 0;
  for (let dy = 4; dy < size; dy += 8) for (let dx = 4; dx < size; dx += 8) { all++; if (demo.defocused(x + dx, y + dy)) inside++; }
  return inside / all;
}

/** First index i with edges[i] > v (edges sorted ascending). */
function upperBound(edges: number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! > v) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The reported out-of-focus area against the defocused area, over the scored area (see DemoMatch.area). */
function matchArea(demo: DemoSlide, r: ScanResult): Overlap {
  const union = patchUnionGrid(r);
  if (!union) return { iou: 0, precision: 0, recall: 0 };
  const k = r.level0PerWorkingPixel;
  let both = 0;
  let flaggedOnly = 0;
  let defocusedOnly = 0;
  for (let y = 4; y < demo.size; y += 8) {
    const row = upperBound(union.ys, y / k) - 1;
    if (row < 0 || row >= union.rows) continue;
    for (let x = 4; x < demo.size; x += 8) {
      const c = upperBound(union.xs, x / k) - 1;
      if (c < 0 || c >= union.columns || !union.scored[row * union.columns + c]) continue;
      const flagged = union.flagged[row * union.columns + c] === 1;
      const defocused = demo.defocused(x, y);
      if (flagged && defocused) both++;
      else if (flagged) flaggedOnly++;
      else if (defocused) defocusedOnly++;
    }
  }
  return { iou: both / Math.max(1, both + flaggedOnly + defocusedOnly), precision: both / Math.max(1, both + flaggedOnly), recall: both / Math.max(1, both + defocusedOnly) };
}

/**
 * How well a scan of the demo slide found its defocused regions: by area (the union of the flagged
 * patches against the defocused area), and per patch (a scored patch is truly out of focus when its
 * centre lies in a defocused region, and found when it scores above the threshold).
 */
export function matchDemo(demo: DemoSlide, r: ScanResult): DemoMatch {
  const threshold = r.summary.threshold;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let clearTp = 0;
  let clearWrong = 0;
  let mixed = 0;
  const k = r.level0PerWorkingPixel;
  for (let row = 0; row < r.rows; row++)
    for (let c = 0; c < r.columns; c++) {
      const s = r.scores[row * r.columns + c]!;
      if (Number.isNaN(s)) continue;
      const truth = demo.defocused((c * r.stride + r.patchSize / 2) * k, (row * r.stride + r.patchSize / 2) * k);
      const found = threshold !== null && s > threshold;
      if (truth && found) tp++;
      else if (found) fp++;
      else if (truth) fn++;
      const share = defocusedShare(demo, c * r.stride * k, row * r.stride * k, r.patchSize * k);
      if (share > 0 && share < 1) mixed++;
      else if (share === 1 && found) clearTp++;
      else if (share === 1 || found) clearWrong++;
    }
  return {
    area: matchArea(demo, r),
    iou: tp / Math.max(1, tp + fp + fn), precision: tp / Math.max(1, tp + fp), recall: tp / Math.max(1, tp + fn), truePositives: tp, falsePositives: fp, missed: fn,
    unambiguousIou: clearTp / Math.max(1, clearTp + clearWrong), mixedPatches: mixed,
  };
}
