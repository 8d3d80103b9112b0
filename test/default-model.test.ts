// The shipped default model: it loads, judges *real* defocus with the numbers its card quotes (the
// accuracy suite on the real data in ../shared/data, none of which it was trained on except the
// in-focus slides and tiles), and its recipe reproduces it. The recipe (largest level, label power,
// epochs, threshold rule) was chosen by looking at the real through-focus series and at
// CMU-1-Small-Region.svs, which is also training data: the model was never trained on the series, but
// they are validation, not an untouched test set.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createNativeModel, trainForward, type FocusLiteNNSpec } from '@fqa/native';
import {
  DEFAULT_MODEL_PATH, DEFAULT_RECIPE, accuracyTable, buildDefaultModel, inFocusThreshold, loadModel, parseModelFile, plcc, runAccuracySuite, scannerDefocus, toNativeSpec,
  type PatchSet, type SuiteResult,
} from '@fqa/core';
import { hasShared, shared, tcgaImages } from './helpers/shared.js';

/** The card's accuracy table (packages/core/models/README.md): check -> the "fqa default" cell as written. */
function cardTable(): Map<string, string> {
  const card = readFileSync(path.join(path.dirname(DEFAULT_MODEL_PATH), 'README.md'), 'utf8');
  const table = card.split('## Measured on real defocus')[1]!.split('\n\n').find((block) => block.startsWith('| check |'))!;
  return rowsOf(table, 1);
}

/** Markdown table rows as check -> the cell in `column` (1 = the first model), header and rule left out. */
function rowsOf(table: string, column: number): Map<string, string> {
  const rows = table.trim().split('\n').slice(2).map((line) => line.replace(/^\| | \|$/g, '').split(' | '));
  return new Map(rows.map((cells) => [cells[0]!, cells[column]!]));
}

test('the shipped default model loads and declares its scale, threshold and resolution', async () => {
  const model = await loadModel(DEFAULT_MODEL_PATH);
  expect(model.header.architecture).toBe('focuslitenn');
  expect(model.header.name).toBe(DEFAULT_RECIPE.name);
  const threshold = model.header.score.threshold!;
  expect(threshold % 0.5).toBe(0); // set by inFocusThreshold, in half levels
  expect(threshold).toBeGreaterThan(1);
  expect(threshold).toBeLessThan(8);
  expect(model.header.micronsPerPixel).toBe(DEFAULT_RECIPE.micronsPerPixel);
  expect(model.header.score.scale).toMatch(/defocus level/);
  expect(model.header.provenance.source).toMatch(/trained by fqa/);
});

test('inFocusThreshold: the smallest half level with at most the given share of in-focus scores above it', () => {
  const levels = Float32Array.from({ length: 40 }, (_, i) => (i < 20 ? 0 : 5));
  const scores = Float32Array.from({ length: 40 }, (_, i) => (i < 20 ? i / 10 : 100)); // in focus: 0.0 .. 1.9
  expect(inFocusThreshold(scores, levels, 0.05)).toBe(2); // 95th percentile 1.8 -> 2.0; one of 20 (1.9) above 1.8
  expect(inFocusThreshold(scores, levels, 0.25)).toBe(1.5); // 75th percentile 1.4 -> 1.5
  expect(() => inFocusThreshold(scores, Float32Array.from(levels, () => 3), 0.05)).toThrow(/no in-focus/);
});

test('no validation data is a training source of the default recipe', () => {
  for (const source of DEFAULT_RECIPE.sources) expect(source).not.toMatch(/zstacks|tcga-focus|bbbc006/);
});

describe.skipIf(!hasShared)('default model on real defocus (the accuracy suite)', () => {
  let result: SuiteResult;
  const series = (name: string) => result.series.find((s) => s.series === name)!;
  let threshold: number;

  test('runs', async () => {
    [result] = await runAccuracySuite(shared('data'), [{ name: 'default', file: DEFAULT_MODEL_PATH }]);
    threshold = result.threshold!;
    expect(result.series.map((s) => s.series).sort()).toEqual(['isl-phase-contrast', 'urjc-adipose-s1', 'urjc-adipose-s2']);
  }, 300_000);

  // Every number the card quotes, at the precision it quotes: the suite's own table (accuracyTable,
  // the one `npm run bench:accuracy` prints) row for row against the card's "fqa default" column.
  test("the card's accuracy table is what the shipped model measures, row for row", () => {
    const card = cardTable();
    const measured = rowsOf(accuracyTable([result]), 1);
    expect([...card.keys()]).toEqual([...measured.keys()]);
    for (const [check, cell] of measured) expect(card.get(check), check).toBe(cell);
  });

  test('through-focus adipose series: score follows |plane - best| (SRCC >= 0.95), best plane below the threshold, planes 1-3 above', () => {
    for (const name of ['urjc-adipose-s1', 'urjc-adipose-s2']) {
      const s = series(name);
      expect(s.bestPlane).toBe(11);
      expect(s.srcc, name).toBeGreaterThanOrEqual(0.95);
      expect(s.bestScore, name).toBeLessThan(threshold);
      for (const far of s.firstPlanes) expect(far, name).toBeGreaterThan(threshold);
    }
  });

  test('phase-contrast series (another modality): SRCC 0.930 as the card quotes', () => {
    expect(series('isl-phase-contrast').srcc.toFixed(3)).toBe('0.930');
  });

  test('TCGA@Focus: the in-focus patch is below the threshold, the out-of-focus patch above it', () => {
    expect(result.tcga.inFocus).toBeLessThan(threshold);
    expect(result.tcga.outOfFocus).toBeGreaterThan(threshold);
  });

  test('BBBC006 (fluorescence, out of domain): z00 (32 um from focus) still scores blurrier than z10 (12 um)', () => {
    expect(result.bbbc006.z00).toBeGreaterThan(result.bbbc006.z10);
  });

  // A training source of the recipe: this shows that tissue the model was trained on passes, no more.
  test('CMU-1-Small-Region.svs, an in-focus clinical slide (and training data), passes QC', () => {
    expect(result.cmu1.verdict).toBe('pass');
    expect(result.cmu1.outOfFocusPercent).toBeLessThan(5);
  });

  // The area reported out of focus (the union of the flagged patches) against the defocused area
  // (measured 0.835). Per patch, mixed patches on a region's edge (centre inside, sharp tissue in
  // them) score in focus with a min over the patch, which bounds that IoU near 0.6 on this geometry;
  // the unambiguous patches must all be right, with no false alarm.
  test('the demo slide: out-of-focus area IoU >= 0.6; every patch entirely in or out of the defocused regions is right', () => {
    expect(result.demo!.area.iou).toBeGreaterThanOrEqual(0.6);
    expect(result.demo!.area.precision).toBeGreaterThanOrEqual(0.95);
    expect(result.demo!.unambiguousIou).toBeGreaterThanOrEqual(0.97);
    expect(result.demo!.precision).toBeGreaterThanOrEqual(0.95);
    expect(result.demo!.iou).toBeGreaterThanOrEqual(0.55);
  });
});

/** Mean |a - b| and PLCC of two models' scores on the same patches. */
function agreement(a: FocusLiteNNSpec, b: FocusLiteNNSpec, data: PatchSet) {
  const sa = trainForward(createNativeModel(a), data.patches, data.count, data.size).scores;
  const sb = trainForward(createNativeModel(b), data.patches, data.count, data.size).scores;
  let meanAbs = 0;
  sa.forEach((v, i) => (meanAbs += Math.abs(v - sb[i]!) / sa.length));
  return { plcc: plcc(sa, sb), meanAbs };
}
/** Within noise: scores correlate > 0.99 and differ by < 0.3 levels on average. */
const withinNoise = (r: { plcc: number; meanAbs: number }) => r.plcc > 0.99 && r.meanAbs < 0.3;

describe.skipIf(!hasShared)('the default recipe', () => {
  // Held-out tissue (the in-focus TCGA patch is no training source) through the same scanner model.
  const heldOut = () => scannerDefocus({ sources: [shared('data', 'tcga-focus', tcgaImages['tcga-in-focus'])], count: 40, levelsPerCrop: 2, patchSize: 235, maxLevel: DEFAULT_RECIPE.maxLevel, inFocusShare: 0.2, seed: 5 });
  const shippedSpec = () => toNativeSpec(parseModelFile(readFileSync(DEFAULT_MODEL_PATH))) as FocusLiteNNSpec;

  test('the agreement check can fail: a model off by a fraction of a level is rejected', async () => {
    const shipped = shippedSpec();
    const off = { ...shipped, fcBias: shipped.fcBias! + 0.5 };
    expect(withinNoise(agreement(shipped, shipped, await heldOut()))).toBe(true);
    expect(withinNoise(agreement(shipped, off, await heldOut()))).toBe(false);
  });

  // Within noise, not bit for bit: the kernels' float summation order differs between CPUs (AVX2,
  // AVX-512, baseline), and DEFAULT_RECIPE.epochs (60) of Adam amplify last-bit differences in the weights.
  test('reproduces the shipped model within noise', async () => {
    const rebuilt = await buildDefaultModel(shared('data'));
    const shipped = parseModelFile(readFileSync(DEFAULT_MODEL_PATH));
    const again = parseModelFile(rebuilt.bytes);
    const r = agreement(toNativeSpec(shipped) as FocusLiteNNSpec, toNativeSpec(again) as FocusLiteNNSpec, await heldOut());
    expect(r.plcc).toBeGreaterThan(0.99);
    expect(r.meanAbs, 'mean |shipped - rebuilt| in defocus levels').toBeLessThan(0.3);
    expect(Math.abs(rebuilt.threshold - shipped.header.score.threshold!)).toBeLessThanOrEqual(0.5);
    const shippedPlcc = Number(/training PLCC ([\d.]+)/.exec(shipped.header.provenance.notes ?? '')?.[1]);
    expect(Math.abs(rebuilt.trainPlcc - shippedPlcc)).toBeLessThan(0.01);
  }, 1_200_000);
});
