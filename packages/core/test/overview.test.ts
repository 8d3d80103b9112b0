// Readable PNGs: one colour means one score on every slide (a fixed scale in the model's units,
// the threshold at the step from blue to orange), the overview figure's title band, panels and
// scale bar; flagged regions. Built on a real scan whose scores are then set to known values.
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  COLOUR_SPAN, NOT_SCORED_GREY, blurScale, colourScale, flaggedRegions, heatmapRgba, legendTicks, legendTitle, notScoredLabel, overviewPng, scaleBarLength, scaleColour,
  scalePosition, scanSlide, scoreText, verdictReason, type ScanResult,
} from '../dist/index.js';
import { hasShared, shared, tcgaImages } from '../../../test/helpers/shared.js';

const tile = shared('data', 'tcga-focus', tcgaImages['tcga-out-of-focus']);

/** The scan with every scored patch's score replaced by `score(col, row)`. */
function withScores(r: ScanResult, score: (col: number, row: number) => number): ScanResult {
  const scores = r.scores.map((s, i) => (Number.isNaN(s) ? s : score(i % r.columns, Math.floor(i / r.columns))));
  return { ...r, scores };
}

/** Distinct colours of the opaque heatmap pixels whose mask x is in [x0, x1). */
function colours(rgba: Uint8Array, width: number, x0: number, x1: number): Set<string> {
  const seen = new Set<string>();
  for (let i = 0; i < rgba.length; i += 4) {
    const x = (i / 4) % width;
    if (rgba[i + 3] === 255 && x >= x0 && x < x1) seen.add(`${rgba[i]},${rgba[i + 1]},${rgba[i + 2]}`);
  }
  return seen;
}

describe.skipIf(!hasShared)('heatmap colours and the overview figure', () => {
  let scan: ScanResult;
  beforeAll(async () => {
    scan = await scanSlide(tile, { mpp: 0.5, stride: 64, minTissue: 0, workers: 1 });
  });

  test('a fixed scale: threshold ± COLOUR_SPAN on every slide, blue below the threshold, orange to brown above', () => {
    const t = scan.summary.threshold!;
    expect(colourScale(scan)).toEqual({ lo: t - COLOUR_SPAN, hi: t + COLOUR_SPAN, threshold: t, stretched: false });
    const scale = colourScale(scan);
    const [below, above] = [scaleColour(scalePosition(t - 0.01, scale)), scaleColour(scalePosition(t + 0.01, scale))];
    expect(below[2]).toBeGreaterThan(below[0]); // blue
    expect(above[0]).toBeGreaterThan(above[2]); // orange
    const at = scaleColour(scalePosition(t, scale));
    expect(at[2]).toBeGreaterThan(at[0]); // "above the threshold" is strict: the threshold itself is blue
    expect(scaleColour(scalePosition(t + 100, scale))).toEqual(scaleColour(1));
  });

  test('the same score has the same colour whatever else is on the slide', () => {
    const { width } = scan.tissueMask;
    // Slide A: every patch scores 0. Slide B: the left half 0, the right half 9 (far blurrier).
    const a = withScores(scan, () => 0);
    const b = withScores(scan, (col) => (col < scan.columns / 2 ? 0 : 9));
    const expected = scaleColour(scalePosition(0, colourScale(a))).join(',');
    expect([...colours(heatmapRgba(a), width, 0, width)]).toEqual([expected]);
    // B's left quarter is well inside its score-0 patches: the same colour as all of A.
    expect([...colours(heatmapRgba(b), width, 0, Math.floor(width / 4))]).toEqual([expected]);
    expect([...colours(heatmapRgba(b), width, Math.ceil((3 * width) / 4), width)]).toEqual([scaleColour(scalePosition(9, colourScale(b))).join(',')]);
  });

  test('heatmapRgba is the per-pixel bilinear interpolation it replaced, pixel for pixel', () => {
    // The reference: every mask pixel on its own, as heatmapRgba was written before its grid
    // positions were worked out per row and column (a faster loop must not move a colour).
    function reference(r: ScanResult): Uint8Array {
      const { width, height, mask, level0PerMaskPixel } = r.tissueMask;
      const scale = colourScale(r);
      const out = new Uint8Array(width * height * 4);
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) {
          if (!mask[y * width + x]) continue;
          const gx = ((x + 0.5) * level0PerMaskPixel / r.level0PerWorkingPixel - r.patchSize / 2) / r.stride;
          const gy = ((y + 0.5) * level0PerMaskPixel / r.level0PerWorkingPixel - r.patchSize / 2) / r.stride;
          const c0 = Math.floor(gx);
          const r0 = Math.floor(gy);
          let sum = 0;
          let weight = 0;
          for (const [dc, dr] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
            const s = r.scores[Math.min(r.rows - 1, Math.max(0, r0 + dr)) * r.columns + Math.min(r.columns - 1, Math.max(0, c0 + dc))]!;
            if (Number.isNaN(s)) continue;
            const w = Math.max(1e-3, (dc ? gx - c0 : 1 - (gx - c0)) * (dr ? gy - r0 : 1 - (gy - r0)));
            sum += w * s;
            weight += w;
          }
          if (weight === 0) continue;
          out.set([...scaleColour(scalePosition(sum / weight, scale)), 255], 4 * (y * width + x));
        }
      return out;
    }
    // Scores across the whole scale and beyond, and unscored patches among them (left out of the sum).
    const varied = withScores(scan, (c, r) => ((c * 7 + r * 3) % 5 === 0 ? Number.NaN : scan.summary.threshold! + ((c * 5 + r * 11) % 17) - 8.5));
    expect(Buffer.from(heatmapRgba(varied)).equals(Buffer.from(reference(varied)))).toBe(true);
    expect(Buffer.from(heatmapRgba(scan)).equals(Buffer.from(reference(scan)))).toBe(true);
  });

  test('scale bar lengths are round numbers', () => {
    expect(scaleBarLength(444)).toEqual({ microns: 200, label: '200 µm' });
    expect(scaleBarLength(1234)).toEqual({ microns: 1000, label: '1 mm' });
    expect(scaleBarLength(70)).toEqual({ microns: 50, label: '50 µm' });
  });

  test('overview: title band with text, the thumbnail beside the heatmap, a legend band', async () => {
    const blurry = withScores(scan, () => 9);
    const png = await overviewPng(blurry);
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const { width: w, height: h, thumbnail } = scan.tissueMask;
    const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
    expect(info.width).toBeGreaterThanOrEqual(2 * w + 48);
    expect(at(2, 2)).toEqual([240, 240, 240]); // title band
    // The band grows with its lines of text (the reason wraps): its height is where its grey ends.
    let band = 0;
    while (at(2, band).join() === '240,240,240') band++;
    expect(band).toBeGreaterThanOrEqual(64);
    let dark = 0;
    for (let y = 0; y < band; y++) for (let x = 0; x < info.width; x++) if (at(x, y)[0]! < 120) dark++;
    expect(dark).toBeGreaterThan(200); // the title's letters
    // The left panel is the thumbnail, pixel for pixel.
    for (const [x, y] of [[0, 0], [w - 1, h - 1], [w >> 1, h >> 1]] as const) expect(at(16 + x, band + y)).toEqual(Array.from(thumbnail.subarray((y * w + x) * 3, (y * w + x) * 3 + 3)));
    // The legend band below the panels has the grey "not scored" swatch (a 14 px square, inside its outline).
    const grey = [1, 3, 5].map((k) => parseInt(NOT_SCORED_GREY.slice(k, k + 2), 16)).join();
    let swatch = 0;
    for (let y = band + h; y < info.height; y++) for (let x = 0; x < info.width; x++) if (at(x, y).join() === grey) swatch++;
    expect(swatch).toBeGreaterThanOrEqual(12 * 12);
    // The right panel at a scored pixel is the heatmap's dark brown over grey: red dominates.
    const heat = heatmapRgba(blurry);
    const pixel = heat.findIndex((v, i) => i % 4 === 3 && v === 255) >> 2;
    expect(pixel).toBeGreaterThanOrEqual(0);
    const [r, g, b] = at(32 + w + (pixel % w), band + Math.floor(pixel / w));
    expect(r!).toBeGreaterThan(g! + 40);
    expect(r!).toBeGreaterThan(b! + 20);
  });

  test('scores read as µm of blur with the level: a level at or below 0 is "in focus", never a negative radius', () => {
    // The shipped model: level L = a blur disk of radius L px at 0.5 µm/px; the scan ran at 0.5 µm/px.
    const b = blurScale(scan)!;
    expect(b).toEqual({ kind: 'radius', pxPerLevel: 1, micronsPerPixel: 0.5 });
    expect(scoreText(5, b)).toBe('2.50 µm blur radius (level 5.00)');
    expect(scoreText(-4.05, b)).toBe('in focus (level −4.05)');
    expect(scoreText(0, b)).toBe('in focus (level 0.00)');
    expect(scoreText(Number.NaN, b)).toBe('–');
    expect(legendTicks(colourScale(scan), b).map((t) => `${t.label} / ${t.value}`)).toEqual(['in focus / level ≤ 0', 'threshold 2.5 µm / level 5', 'blurry ≥ 5 µm / level ≥ 10']);
    expect(legendTitle(scan, 'estimated defocus level')).toBe('blur radius in µm (defocus level: px at 0.50 µm/px)');
    // A synthetic-trained model's Gaussian levels: σ, and px per level from the scale text.
    const gaussian = { model: { ...scan.model, scoreScale: 'estimated defocus level: level L = Gaussian blur of sigma 0.5*L px (0 = in focus); higher = blurrier' }, mpp: 0.5 };
    expect(scoreText(4, blurScale(gaussian))).toBe('1.00 µm blur σ (level 4.00)');
    // A slide without resolution: levels, clamped, but no µm.
    expect(scoreText(3, blurScale({ ...scan, mpp: null }))).toBe('level 3.00 (µm unknown: no slide resolution)');
    // Converted reference weights: an arbitrary scale, raw scores (negative is a valid score there).
    const reference = { model: { ...scan.model, scoreScale: 'arbitrary (as trained); higher = blurrier' }, mpp: 0.5 };
    expect(blurScale(reference)).toBeNull();
    expect(scoreText(-21.45, null)).toBe('−21.45');
    expect(legendTicks({ lo: -3, hi: 7, threshold: null }, null).map((t) => `${t.label} / ${t.value}`)).toEqual(['sharp / score ≤ −3', 'blurry / score ≥ 7']);
  });

  test('the verdict with its reason: the share and the limit, or why there is none', () => {
    const withSummary = (summary: Partial<ScanResult['summary']>) => ({ ...scan, summary: { ...scan.summary, ...summary } });
    expect(verdictReason(withSummary({ verdict: 'pass', outOfFocusFraction: 0.014 }))).toBe('pass: 1.4 % of scored tissue out of focus, within the limit of 5.0 %');
    expect(verdictReason(withSummary({ verdict: 'fail', outOfFocusFraction: 0.081 }))).toBe('fail: 8.1 % of scored tissue out of focus, more than the limit of 5.0 %');
    expect(verdictReason(withSummary({ verdict: 'no-tissue', tissueFraction: 0.0028, penFraction: 0, patchesScored: 0, outOfFocusFraction: null })))
      .toBe('no verdict: no tissue patch to score (tissue 0.28 % of the slide; patches need ≥ 0.0 % tissue)');
    expect(verdictReason(withSummary({ verdict: 'unknown', verdictReason: 'only 9 patches with tissue: too few for a verdict (at least 20)' })))
      .toBe('no verdict: only 9 patches with tissue: too few for a verdict (at least 20)');
    expect(notScoredLabel({ options: { ...scan.options, minTissue: 0.5 } })).toBe('not scored: no tissue, or < 50.0 % tissue (--min-tissue)');
  });

  test('flagged regions: connected patches above the threshold, with exact union area', () => {
    const t = scan.summary.threshold!;
    // Two blocks of 2x2 patches above the threshold, apart from each other.
    const hot = (col: number, row: number) => (col < 2 && row < 2) || (col >= 5 && col < 7 && row >= 5 && row < 7);
    const regions = flaggedRegions(withScores(scan, (c, r) => (hot(c, r) ? t + 1 : t - 1)));
    expect(regions).toHaveLength(2);
    const k = scan.level0PerWorkingPixel;
    const side = (scan.stride + scan.patchSize) * k; // two patches, one stride apart
    for (const g of regions) {
      expect(g.patches).toBe(4);
      expect([g.width, g.height]).toEqual([Math.round(side), Math.round(side)]);
      expect(g.areaMm2).toBeCloseTo((side * scan.mpp! / 1000) ** 2, 9);
    }
    expect(regions.map((g) => [g.x, g.y])).toEqual([[0, 0], [Math.round(5 * scan.stride * k), Math.round(5 * scan.stride * k)]]);
  });
});
