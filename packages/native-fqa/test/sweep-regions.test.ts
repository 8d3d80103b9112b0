// NativeSlide.sweepRegions, the fused decode + sweep of a scan, at the addon's surface: its scores
// against its oracle (sweepSync over the pixels readRegion returns for the same regions, one of
// them hanging over the slide's corner), bad arguments as errors naming the argument, cancel().
import { describe, expect, test } from 'vitest';
import { createNativeModel, openSlide, sweepSync, type NativeModel } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');

/** FocusLiteNN-4 with seeded weights, 7x7 stride-5 conv (the 235 px geometry) on 64 px patches. */
function model(): NativeModel {
  let seed = 7;
  const r = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  return createNativeModel({
    architecture: 'focuslitenn', patchSize: 64, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], kernels: 4, convKernel: 7, convStride: 5, convPad: 1,
    convWeight: Float32Array.from({ length: 4 * 147 }, r), convBias: Float32Array.from({ length: 4 }, r), fcWeight: Float32Array.from({ length: 4 }, r), fcBias: 0.1,
  });
}

describe.skipIf(!hasShared)('sweepRegions: decode and sweep in one native pass', () => {
  test('the same scores as sweepSync on readRegion pixels, background patches NaN, over the slide edge too', async () => {
    const m = model();
    const slide = await openSlide(svs);
    const patch = 64;
    const stride = 40; // overlapping: the shared conv map
    // Two regions in a row (a stripe shared), one below, one over the bottom-right corner (white there).
    const regions = [[0, 0, 30, 20], [1200, 0, 25, 20], [0, 800, 12, 40], [2100, 2900, 6, 5]] as const;
    const geometry = new Float64Array(regions.flat());
    const skips = regions.map(([, , c, rows], i) => Uint8Array.from({ length: c * rows }, (_, k) => ((k * 7 + i) % 5 === 0 ? 1 : 0)));
    const skip = new Uint8Array(skips.reduce((n, s) => n + s.length, 0));
    skips.reduce((at, s) => (skip.set(s, at), at + s.length), 0);
    const progress: number[] = [];
    const run = slide.sweepRegions(m, 0, geometry, skip, { patchSize: patch, stride, threads: 2, kernel: 'auto', shareConvolution: true }, (n) => progress.push(n));
    const fused = await run.promise;
    expect(fused.scores.length).toBe(skip.length);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((n, i) => n >= 1 && n <= regions.length && (i === 0 || n > progress[i - 1]!))).toBe(true);
    let at = 0;
    for (const [i, [x, y, columns, rows]] of regions.entries()) {
      const width = (columns - 1) * stride + patch;
      const height = (rows - 1) * stride + patch;
      const pixels = await slide.readRegion(0, x, y, width, height);
      const expected = sweepSync(m, pixels, { width, height, rowStride: 3 * width, patchWidth: patch, patchHeight: patch, stride, skip: skips[i], threads: 1, kernel: 'auto', shareConvolution: true });
      const got = fused.scores.subarray(at, at + columns * rows);
      expect(Buffer.from(got.slice().buffer).equals(Buffer.from(expected.scores.buffer)), `region ${i}`).toBe(true);
      expect(got.filter(Number.isNaN).length).toBe(skips[i]!.filter((s) => s !== 0).length);
      at += columns * rows;
    }
    slide.close();
  });

  test('bad arguments throw naming the argument, before any decode', async () => {
    const m = model();
    const slide = await openSlide(svs);
    const options = { patchSize: 64, stride: 64, threads: 1, kernel: 'auto' as const, shareConvolution: true };
    const noop = () => {};
    expect(() => slide.sweepRegions(m, 0, new Float64Array([0, 0, 2, 2]), new Uint8Array(3), options, noop)).toThrow(/Expected skip to hold 4 entries/);
    expect(() => slide.sweepRegions(m, 0, new Float64Array([0, 0, 2]), new Uint8Array(0), options, noop)).toThrow(/4 numbers per region/);
    expect(() => slide.sweepRegions(m, 0, new Float64Array([0, 0, 0, 2]), new Uint8Array(0), options, noop)).toThrow(/regions\[0\]\.columns/);
    // Level 0 and its 1/2, 1/4, 1/8 decodes (levels 1..3: 240-px tiles divide by 8) exist; 4 does not.
    expect(() => slide.sweepRegions(m, 4, new Float64Array([0, 0, 1, 1]), new Uint8Array(1), options, noop)).toThrow(/level/);
    expect(() => slide.sweepRegions(m, 0, new Float64Array([0.5, 0, 1, 1]), new Uint8Array(1), options, noop)).toThrow(/regions\[0\]\.x/);
    expect(() => slide.sweepRegions(m, 0, new Float64Array([0, 0, 1, 1]), new Uint8Array(1), { ...options, stride: 0 }, noop)).toThrow(/stride/);
    // A patch smaller than the model's convolution is the model's own geometry error, also before the sweep is queued.
    expect(() => slide.sweepRegions(m, 0, new Float64Array([0, 0, 1, 1]), new Uint8Array(1), { ...options, patchSize: 4 }, noop)).toThrow(/smaller than the 7x7 convolution/);
    slide.close();
  });

  test('cancel() stops the sweep between bands: the promise rejects with "cancelled"', async () => {
    const m = model();
    const slide = await openSlide(svs);
    // Every patch at stride 5 over the whole slide: far more bands than run before cancel() lands.
    const columns = Math.floor((2220 - 64) / 5) + 1;
    const rows = Math.floor((2967 - 64) / 5) + 1;
    const run = slide.sweepRegions(m, 0, new Float64Array([0, 0, columns, rows]), new Uint8Array(columns * rows), { patchSize: 64, stride: 5, threads: 1, kernel: 'auto', shareConvolution: true }, () => {});
    run.cancel();
    await expect(run.promise).rejects.toThrow(/cancelled/);
    slide.close();
  });
});
