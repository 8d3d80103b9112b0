// The shipped default model: it loads, means what its card says on real data, and its recipe
// reproduces it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createNativeModel, trainForward } from '@fqa/native';
import { DEFAULT_MODEL_PATH, DEFAULT_RECIPE, buildDefaultModel, decodeImage, loadModel, parseModelFile, plcc, scoreImage, srcc, syntheticDefocus, toNativeSpec } from '@fqa/core';
import { hasShared, shared, tcgaImages } from './helpers/shared.js';

test('the shipped default model loads and declares its scale, threshold and resolution', async () => {
  const model = await loadModel(DEFAULT_MODEL_PATH);
  expect(model.header.architecture).toBe('focuslitenn');
  expect(model.header.score.threshold).toBe(DEFAULT_RECIPE.threshold);
  expect(model.header.micronsPerPixel).toBe(DEFAULT_RECIPE.micronsPerPixel);
  expect(model.header.score.scale).toMatch(/defocus level/);
  expect(model.header.provenance.source).toMatch(/trained by fqa/);
});

describe.skipIf(!hasShared)('default model on real data', () => {
  test('TCGA@Focus: the out-of-focus patch scores above the threshold, the in-focus one below', async () => {
    const model = await loadModel(DEFAULT_MODEL_PATH);
    const inFocus = await scoreImage(shared('data', 'tcga-focus', tcgaImages['tcga-in-focus']), { model });
    const outOfFocus = await scoreImage(shared('data', 'tcga-focus', tcgaImages['tcga-out-of-focus']), { model });
    expect(inFocus.mean).toBeLessThan(DEFAULT_RECIPE.threshold);
    expect(outOfFocus.mean).toBeGreaterThan(DEFAULT_RECIPE.threshold);
  });

  test('BBBC006: z00 images (far from focus) score blurrier than z10 ones; 12-bit values are read as 12-bit', async () => {
    const { readdirSync } = await import('node:fs');
    const model = await loadModel(DEFAULT_MODEL_PATH);
    const mean = async (z: string) => {
      const dir = shared('data', 'bbbc006', z);
      const files = readdirSync(dir).filter((f) => f.endsWith('.tif'));
      let sum = 0;
      for (const f of files) sum += (await scoreImage(path.join(dir, f), { model })).mean;
      return sum / files.length;
    };
    expect(await mean('z00')).toBeGreaterThan(await mean('z10'));
    // A z10 image reaching the 12-bit maximum (4095) decodes to 255, not to 16 (4095 / 256).
    const dir = shared('data', 'bbbc006', 'z10');
    let brightest = 0;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.tif')).slice(0, 5)) {
      const image = await decodeImage(path.join(dir, f));
      for (let i = 0; i < image.pixels.length; i += 3) brightest = Math.max(brightest, image.pixels[i]!);
    }
    expect(brightest).toBe(255);
  });

  test('a synthetic defocus series of held-out tissue (the in-focus TCGA patch) is ordered: SRCC >= 0.95', async () => {
    const model = parseModelFile(await import('node:fs').then((fs) => fs.readFileSync(DEFAULT_MODEL_PATH)));
    const series = await syntheticDefocus({ sources: [shared('data', 'tcga-focus', tcgaImages['tcga-in-focus'])], count: 120, patchSize: 235, levels: DEFAULT_RECIPE.levels, sigmaPerLevel: DEFAULT_RECIPE.sigmaPerLevel, seed: 99, minTissue: 0.5 });
    const scores = trainForward(createNativeModel(toNativeSpec(model)), series.patches, series.count, series.size).scores;
    expect(srcc(scores, series.labels)).toBeGreaterThanOrEqual(0.95);
  });

  // Within noise, not bit for bit: the kernels' float summation order differs between CPUs (AVX2,
  // AVX-512, baseline), and 30 epochs of Adam amplify last-bit differences in the weights. The
  // calibrated scores of the rebuilt and the shipped model must agree on held-out tissue.
  test('the recipe reproduces the shipped model within noise', async () => {
    const rebuilt = await buildDefaultModel(shared('data'));
    const shipped = parseModelFile(await import('node:fs').then((fs) => fs.readFileSync(DEFAULT_MODEL_PATH)));
    const again = parseModelFile(rebuilt.bytes, path.join(mkdtempSync(path.join(tmpdir(), 'fqa-default-')), 'rebuilt.fqa'));
    const series = await syntheticDefocus({ sources: [shared('data', 'tcga-focus', tcgaImages['tcga-out-of-focus'])], count: 60, patchSize: 235, levels: DEFAULT_RECIPE.levels, sigmaPerLevel: DEFAULT_RECIPE.sigmaPerLevel, seed: 5, minTissue: 0.3 });
    const a = trainForward(createNativeModel(toNativeSpec(shipped)), series.patches, series.count, series.size).scores;
    const b = trainForward(createNativeModel(toNativeSpec(again)), series.patches, series.count, series.size).scores;
    expect(plcc(a, b)).toBeGreaterThan(0.995);
    let meanAbs = 0;
    a.forEach((v, i) => (meanAbs += Math.abs(v - b[i]!) / a.length));
    expect(meanAbs, 'mean |shipped - rebuilt| in defocus levels').toBeLessThan(0.25);
    const shippedPlcc = Number(/training PLCC ([\d.]+)/.exec(shipped.header.provenance.notes ?? '')?.[1]);
    expect(Math.abs(rebuilt.trainPlcc - shippedPlcc)).toBeLessThan(0.01);
  }, 300_000);
});
