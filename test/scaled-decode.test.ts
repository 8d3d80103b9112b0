// Scaled-IDCT levels: the direct JPEG-tile reader decodes a level at 1/2, 1/4 or 1/8 (libjpeg's
// scaled IDCT), and a fused scan of a 40x slide at a 0.5 µm/px model reads level 0 that way instead
// of going through the worker pool's resampling. Oracles: the full-size decode box-averaged by d
// (the pixels), sweepSync over readRegion pixels (the fused sweep on a scaled level), and the pool
// path's lanczos3 resampling (the scores: close, not equal, since the filters differ).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { createNativeModel, openSlide, sweepSync, type NativeModel } from '@fqa/native';
import { chooseLevel, DEFAULT_MODEL_PATH, detectTissue, openSource, scanSlide, STREAMED_MASK_PIXELS, streamedMaskImage } from '@fqa/core';
import { hasShared, shared } from './helpers/shared.js';

const work = mkdtempSync(path.join(tmpdir(), 'fqa-scaled-'));
const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');

describe('chooseLevel: a scaled decode in place of resampling', () => {
  const levels = [{ width: 40000, height: 40000, downsample: 1 }, { width: 10000, height: 10000, downsample: 4 }, { width: 2500, height: 2500, downsample: 16 }];
  const scaled = levels.flatMap((l, level) => [2, 4, 8].map((denom, k) => ({ index: 3 + 3 * level + k, level, denom, width: l.width / denom, height: l.height / denom, downsample: l.downsample * denom })));

  test('40x with levels at 4x steps, a 0.5 µm/px model: level 0 decoded at 1/2', () => {
    const choice = chooseLevel(levels, 0.25, 0.5, scaled);
    expect(choice).toMatchObject({ level: 0, resample: 2, level0PerWorking: 2, scaled: { index: 3, denom: 2 } });
    // Without scaled decodes (the pool path): level 0 resampled by 2, as before.
    expect(chooseLevel(levels, 0.25, 0.5)).toMatchObject({ level: 0, resample: 2, level0PerWorking: 2, scaled: null });
  });

  test('of the decodes at the working resolution, the one from the coarsest level; within 2 %; none for other factors', () => {
    expect(chooseLevel(levels, 0.25, 2, scaled).scaled).toMatchObject({ level: 1, denom: 2 }); // not level 0 at 1/8
    expect(chooseLevel(levels, 0.2525, 0.5, scaled)).toMatchObject({ level: 0, level0PerWorking: 2, scaled: { denom: 2 } });
    expect(chooseLevel(levels, 0.25, 0.75, scaled)).toMatchObject({ level: 0, resample: 3, scaled: null });
    expect(chooseLevel(levels, 0.25, 0.56, scaled)).toMatchObject({ level: 0, scaled: null });
  });

  test('a real level at the working resolution is read as is', () => {
    const pyramid = [levels[0]!, { width: 20000, height: 20000, downsample: 2 }];
    expect(chooseLevel(pyramid, 0.25, 0.5, scaled)).toMatchObject({ level: 1, resample: 1, scaled: null });
    expect(chooseLevel(levels, 0.25, 0.25, scaled)).toMatchObject({ level: 0, resample: 1, scaled: null });
  });
});

/** FocusLiteNN-2 with seeded weights on 32 px patches (7x7 stride-5 conv). */
function seededModel(): NativeModel {
  let seed = 11;
  const r = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  return createNativeModel({
    architecture: 'focuslitenn', patchSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], kernels: 2, convKernel: 7, convStride: 5, convPad: 1,
    convWeight: Float32Array.from({ length: 2 * 147 }, r), convBias: Float32Array.from({ length: 2 }, r), fcWeight: Float32Array.from({ length: 2 }, r), fcBias: 0.1,
  });
}

describe.skipIf(!hasShared)('scaled levels of the direct reader', () => {
  // 1003 x 757 px of a real slide: neither a multiple of the 256 px tiles nor of 2, 4 or 8.
  const odd = path.join(work, 'odd.tiff');
  const W = 1003;
  const H = 757;
  beforeAll(async () => {
    const source = await openSource(svs);
    const rgb = await source.readRegion(0, 600, 900, W, H);
    source.close();
    await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).tiff({ tile: true, tileWidth: 256, tileHeight: 256, compression: 'jpeg', quality: 90 }).toFile(odd);
  });

  test('each is the full-size decode box-averaged by d, ceil(size / d) pixels, white outside', async () => {
    const slide = await openSlide(odd);
    const info = slide.info();
    expect(info.directLevels).toEqual([0]);
    expect(info.scaledLevels).toEqual([2, 4, 8].map((denom, k) => ({ index: 1 + k, level: 0, denom, width: Math.ceil(W / denom), height: Math.ceil(H / denom), downsample: denom })));
    const full = await slide.readRegion(0, 0, 0, W, H);
    for (const s of info.scaledLevels) {
      const d = s.denom;
      const pixels = await slide.readRegion(s.index, 0, 0, s.width, s.height);
      // Pixels of whole d x d blocks against the box average (the last column and row, where W or H
      // is not a multiple of d, also hold the encoder's padding of the edge tiles).
      let sum = 0;
      let max = 0;
      let n = 0;
      for (let y = 0; y < Math.floor(H / d); y++) {
        for (let x = 0; x < Math.floor(W / d); x++) {
          for (let c = 0; c < 3; c++) {
            let box = 0;
            for (let j = 0; j < d; j++) for (let i = 0; i < d; i++) box += full[((y * d + j) * W + x * d + i) * 3 + c]!;
            const diff = Math.abs(box / (d * d) - pixels[(y * s.width + x) * 3 + c]!);
            sum += diff;
            max = Math.max(max, diff);
            n++;
          }
        }
      }
      // Measured: mean 0.1-0.2 levels, max 6 (1/2) down to 1 (1/8).
      expect(sum / n, `1/${d} mean`).toBeLessThan(1);
      expect(max, `1/${d} max`).toBeLessThan(16);
      // A region at an odd level-0 position (x / downsample, as for every level) over the
      // bottom-right corner: the level's own pixels inside, white outside.
      const x0 = (s.width - 5) * d + 1;
      const y0 = (s.height - 4) * d + 1;
      const corner = await slide.readRegion(s.index, x0, y0, 9, 9);
      for (let y = 0; y < 9; y++) {
        for (let x = 0; x < 9; x++) {
          const inside = x < 5 && y < 4;
          const at = ((s.height - 4 + y) * s.width + (s.width - 5 + x)) * 3;
          const expected = inside ? [...pixels.subarray(at, at + 3)] : [255, 255, 255];
          expect([...corner.subarray((y * 9 + x) * 3, (y * 9 + x) * 3 + 3)], `1/${d} (${x}, ${y})`).toEqual(expected);
        }
      }
    }
    // Only the direct reader has them.
    expect(() => slide.readRegion(1, 0, 0, 8, 8, 'openslide')).toThrow(/cannot read level 1/);
    expect(() => slide.readRegion(4, 0, 0, 8, 8)).toThrow(/level/);
    slide.close();
  });

  test('the fused sweep of a scaled level: the same scores as sweepSync on its readRegion pixels', async () => {
    const m = seededModel();
    const slide = await openSlide(odd);
    const { index, width, height } = slide.info().scaledLevels[0]!;
    const [patch, stride, columns, rows] = [32, 24, Math.floor((width - 32) / 24) + 2, Math.floor((height - 32) / 24) + 2]; // one past the edge
    const run = slide.sweepRegions(m, index, new Float64Array([0, 0, columns, rows]), new Uint8Array(columns * rows), { patchSize: patch, stride, threads: 2, kernel: 'auto', shareConvolution: true }, () => {});
    const fused = await run.promise;
    const w = (columns - 1) * stride + patch;
    const h = (rows - 1) * stride + patch;
    const pixels = await slide.readRegion(index, 0, 0, w, h);
    const expected = sweepSync(m, pixels, { width: w, height: h, rowStride: 3 * w, patchWidth: patch, patchHeight: patch, stride, threads: 1, kernel: 'auto', shareConvolution: true });
    expect(Buffer.from(fused.scores.buffer).equals(Buffer.from(expected.scores.buffer))).toBe(true);
    slide.close();
  });
});

describe.skipIf(!hasShared)('a 40x slide scanned by a 0.5 µm/px model: fused, level 0 decoded at 1/2', () => {
  // CMU-1-Small-Region (a 20x scan) upsampled 2x, claimed at 0.25 µm/px (sharp's xres is in px/mm):
  // a 40x scan of the same tissue, detail no finer than the 20x optics resolved. Single level, so
  // no pyramid level has the model's resolution; and the same pixels as a 2x pyramid.
  const flat = path.join(work, 'cmu-40x.tiff');
  const pyramid = path.join(work, 'cmu-40x-pyramid.tiff');
  beforeAll(async () => {
    const source = await openSource(svs);
    const { width, height } = source.levels[0]!;
    const rgb = await source.readRegion(0, 0, 0, width, height);
    source.close();
    const up = sharp(rgb, { raw: { width, height, channels: 3 } }).resize(2 * width + 1, 2 * height + 3, { kernel: 'lanczos3', fit: 'fill' });
    const options = { tile: true, tileWidth: 256, tileHeight: 256, compression: 'jpeg', quality: 90, xres: 4000, yres: 4000, resolutionUnit: 'cm' } as const;
    await up.clone().tiff(options).toFile(flat);
    await up.clone().tiff({ ...options, pyramid: true }).toFile(pyramid);
  }, 60_000);

  test('scores close to the pool path (lanczos3 resampling): mean within 0.4 levels, per patch within 2.5', async () => {
    const fused = await scanSlide(flat, { model: DEFAULT_MODEL_PATH, workers: 2, stride: 64 });
    const pool = await scanSlide(flat, { model: DEFAULT_MODEL_PATH, workers: 2, stride: 64, fusedSweep: false });
    expect(fused).toMatchObject({ pipeline: 'fused', level: 0, level0PerWorkingPixel: 2, reader: { reader: 'direct', decodeScale: 2, tilesRedecoded: 0 } });
    expect(pool).toMatchObject({ pipeline: 'pool', level: 0, level0PerWorkingPixel: 2, reader: { decodeScale: 1 } });
    expect([fused.columns, fused.rows]).toEqual([pool.columns, pool.rows]);
    expect(fused.summary.patchesScored).toBe(pool.summary.patchesScored);
    expect(fused.summary.patchesScored).toBeGreaterThan(400);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < fused.scores.length; i++) {
      if (Number.isNaN(pool.scores[i]!)) continue;
      const diff = Math.abs(fused.scores[i]! - pool.scores[i]!);
      sum += diff;
      max = Math.max(max, diff);
    }
    // Measured (535 patches): mean +0.24 levels (the box-like scaled IDCT keeps a little less
    // detail than lanczos3), per patch mean |diff| 0.34, max 1.54. For scale: lanczos3 against
    // sharp's cubic resampling of the same level 0 differs by 0.19 per patch on average.
    expect(Math.abs(fused.summary.mean - pool.summary.mean)).toBeLessThan(0.4);
    expect(sum / fused.summary.patchesScored).toBeLessThan(0.5);
    expect(max).toBeLessThan(2.5);
  });

  test('a pyramid level at the working resolution is read as is, not decoded at a scale', async () => {
    const fused = await scanSlide(pyramid, { model: DEFAULT_MODEL_PATH, workers: 2 });
    expect(fused).toMatchObject({ pipeline: 'fused', level: 1, reader: { decodeScale: 1 } });
  });
});

describe.skipIf(!hasShared)('a JPEG TIFF without a pyramid, too large to read whole', () => {
  test('gets its tissue mask from a scaled decode, agreeing with the streamed full-resolution mask', async () => {
    // 6,144² of real tissue (CMU-1-Small-Region repeated), one level: more than STREAMED_MASK_PIXELS.
    const source = await openSource(svs);
    const { width, height } = source.levels[0]!;
    const tile = await sharp(await source.readRegion(0, 0, 0, width, height), { raw: { width, height, channels: 3 } }).png().toBuffer();
    source.close();
    const big = path.join(work, 'flat-big.tiff');
    await sharp({ create: { width: 6144, height: 6144, channels: 3, background: '#ffffff' } })
      .composite([{ input: tile, tile: true }])
      .tiff({ tile: true, tileWidth: 256, tileHeight: 256, compression: 'jpeg', quality: 85, xres: 2000, yres: 2000, resolutionUnit: 'cm' })
      .toFile(big);
    expect(6144 * 6144).toBeGreaterThan(STREAMED_MASK_PIXELS);
    const slide = await openSource(big);
    expect(slide.levels).toHaveLength(1);
    expect(slide.scaledLevels.map((s) => s.denom)).toEqual([2, 4, 8]);
    const streamed = await streamedMaskImage(slide, 0);
    slide.close();
    const reference = detectTissue(streamed.pixels, streamed.width, streamed.height);
    const r = await scanSlide(big, { model: DEFAULT_MODEL_PATH, workers: 2 });
    expect(r.tissueMask.width).toBe(streamed.width);
    expect(r.pipeline).toBe('fused');
    expect(r.reader.tilesRedecoded).toBe(0);
    // The 1/8 decode (768 px) resized to the mask's 1,024 px against the block means of level 0.
    expect(Math.abs(r.summary.tissueFraction - reference.fraction)).toBeLessThan(0.02);
    expect(reference.fraction).toBeGreaterThan(0.2);
  });
});
