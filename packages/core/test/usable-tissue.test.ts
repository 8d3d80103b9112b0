// The usable-tissue mask on real tissue with known focus: a CMU-1 region whose left half is as
// scanned (in focus with the shipped model) and whose right half is blurred (out of focus). Usable
// tissue must be the left half's tissue, never the right half's, never glass.
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { openSource, scanSlide, usableTissue, usableTissueGeoJson, usableTissuePng, type ScanResult } from '@fqa/core';
import { hasShared, shared } from '../../../test/helpers/shared.js';

describe.skipIf(!hasShared)('usable-tissue mask', () => {
  let scan: ScanResult;
  beforeAll(async () => {
    const source = await openSource(shared('data', 'slides', 'CMU-1-Small-Region.svs'));
    const [w, h] = [1536, 767];
    const region = Buffer.from(await source.readRegion(0, 300, 2200, w, h));
    source.close();
    const raw = { raw: { width: w, height: h, channels: 3 as const } };
    const half = w / 2;
    const left = await sharp(region, raw).extract({ left: 0, top: 0, width: half, height: h }).png().toBuffer();
    const right = await sharp(region, raw).extract({ left: half, top: 0, width: half, height: h }).blur(3).png().toBuffer();
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'fqa-usable-')), 'half-blurred.png');
    await sharp({ create: { width: w, height: h, channels: 3, background: '#ffffff' } }).composite([{ input: left, left: 0, top: 0 }, { input: right, left: half, top: 0 }]).png().toFile(file);
    scan = await scanSlide(file, { mpp: 0.499, workers: 1 });
  });

  /**
   * The oracle, computed patch by patch without the patch-union grid: a mask pixel is usable when
   * it is tissue, some scored patch covers its centre, and no covering patch is above the threshold.
   */
  function bruteForce(x: number, y: number): 'usable' | 'flagged' | 'unscored' {
    const perMask = scan.tissueMask.level0PerMaskPixel / scan.level0PerWorkingPixel;
    const [xw, yw] = [(x + 0.5) * perMask, (y + 0.5) * perMask];
    let scored = false;
    for (let row = 0; row < scan.rows; row++)
      for (let col = 0; col < scan.columns; col++) {
        const [x0, y0] = [col * scan.stride, row * scan.stride];
        if (xw < x0 || xw >= x0 + scan.patchSize || yw < y0 || yw >= y0 + scan.patchSize) continue;
        const s = scan.scores[row * scan.columns + col]!;
        if (Number.isNaN(s)) continue;
        if (s > scan.summary.threshold!) return 'flagged';
        scored = true;
      }
    return scored ? 'usable' : 'unscored';
  }

  test('usable = scored tissue that no out-of-focus patch covers (pixel by pixel), mostly the sharp half', async () => {
    const u = usableTissue(scan)!;
    const { width, height, mask: tissue } = scan.tissueMask;
    let [leftTissue, leftUsable, rightTissue, rightUsable] = [0, 0, 0, 0];
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const expected = tissue[i] === 1 && bruteForce(x, y) === 'usable' ? 255 : 0;
        if (u.mask[i] !== expected) expect.fail(`mask pixel (${x}, ${y}) is ${u.mask[i]}, the patch-by-patch oracle says ${expected}`);
        if (tissue[i] !== 1) continue;
        if (x < width / 2) [leftTissue, leftUsable] = [leftTissue + 1, leftUsable + (expected ? 1 : 0)];
        else [rightTissue, rightUsable] = [rightTissue + 1, rightUsable + (expected ? 1 : 0)];
      }
    // The blurred half: the model calls 3 of its 25 patches in focus (scores 3.9-4.9, threshold 5).
    expect(leftUsable / leftTissue).toBeGreaterThan(0.7);
    expect(rightUsable / rightTissue).toBeLessThan(0.15);
    expect(u.usableFractionOfTissue).toBeCloseTo((leftUsable + rightUsable) / (leftTissue + rightTissue), 9);
    expect(u.micronsPerPixel).toBeCloseTo(0.499 * u.level0PerPixel, 9);
    // The PNG is the mask, byte for byte.
    const file = await usableTissuePng(u);
    expect((await sharp(file).metadata()).channels).toBe(1);
    const png = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([png.info.width, png.info.height]).toEqual([width, height]);
    expect(Buffer.compare(png.data, Buffer.from(u.mask))).toBe(0);
  });

  test('the GeoJSON polygons hold every usable pixel and no out-of-focus one', () => {
    const geo = usableTissueGeoJson(scan) as { features: { geometry: { coordinates: number[][][] } }[] };
    expect(geo.features.length).toBeGreaterThan(0);
    const inside = (ring: number[][], [px, py]: [number, number]) => {
      let hit = false;
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i]!;
        const [xj, yj] = ring[j]!;
        if (yi! > py !== yj! > py && px < ((xj! - xi!) * (py - yi!)) / (yj! - yi!) + xi!) hit = !hit;
      }
      return hit;
    };
    const covered = (p: [number, number]) => geo.features.some(({ geometry: { coordinates: [outer, ...holes] } }) => inside(outer!, p) && !holes.some((h) => inside(h, p)));
    const { width, height, mask: tissue, level0PerMaskPixel: k } = scan.tissueMask;
    let checked = 0;
    for (let y = 0; y < height; y += 3)
      for (let x = 0; x < width; x += 3) {
        if (tissue[y * width + x] !== 1) continue;
        const verdict = bruteForce(x, y);
        if (verdict === 'unscored') continue;
        expect(covered([(x + 0.5) * k, (y + 0.5) * k]), `(${x}, ${y}) ${verdict}`).toBe(verdict === 'usable');
        checked++;
      }
    expect(checked).toBeGreaterThan(100);
  });

  test('without a threshold there is no in-focus verdict, so no mask', () => {
    const noThreshold = { ...scan, summary: { ...scan.summary, threshold: null } };
    expect(usableTissue(noThreshold)).toBeNull();
    expect(usableTissueGeoJson(noThreshold)).toBeNull();
  });
});
