// When the model cannot judge: blank tiles say "no tissue", dark backgrounds (fluorescence) and
// slides with too few patches or no resolution get no pass/fail verdict, with the reason.
import { readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, MIN_PATCHES_FOR_VERDICT, checkBackground, scanSlide, scoreImage, verdictBlocker } from '@fqa/core';
import { hasShared, shared } from './helpers/shared.js';

const bbbc = (z: string) => shared('data', 'bbbc006', z, readdirSync(shared('data', 'bbbc006', z)).find((f) => f.endsWith('.tif'))!);

test('verdictBlocker names the first reason a slide cannot be judged', () => {
  const ok = { darkBackground: false, patchesScored: 500, threshold: 2.5, resolutionKnown: true };
  expect(verdictBlocker(ok)).toBeNull();
  expect(verdictBlocker({ ...ok, threshold: null })).toMatch(/no threshold/);
  expect(verdictBlocker({ ...ok, darkBackground: true })).toMatch(/dark background/);
  expect(verdictBlocker({ ...ok, resolutionKnown: false })).toMatch(/--mpp/);
  expect(verdictBlocker({ ...ok, patchesScored: MIN_PATCHES_FOR_VERDICT - 1 })).toMatch(/too few/);
  expect(verdictBlocker({ ...ok, patchesScored: MIN_PATCHES_FOR_VERDICT })).toBeNull();
});

test('checkBackground: black is dark, white glass and pink tissue are not', () => {
  const fill = (r: number, g: number, b: number) => Uint8Array.from({ length: 30 * 30 * 3 }, (_, i) => [r, g, b][i % 3]!);
  expect(checkBackground(fill(5, 5, 5), 30, 30).darkBackground).toBe(true);
  expect(checkBackground(fill(240, 240, 240), 30, 30).darkBackground).toBe(false);
  expect(checkBackground(fill(200, 120, 170), 30, 30).darkBackground).toBe(false);
});

describe.skipIf(!hasShared)('domain checks on real data', () => {
  test('score: a blank tile has no tissue (no score, a warning), not a "blurry" score', async () => {
    for (const tile of ['no-tissue.png', 'almost-white-1.png']) {
      const r = await scoreImage(shared('data', 'tiles', tile), { model: DEFAULT_MODEL_PATH });
      expect(r.noTissue).toBe(true);
      expect(r.mean).toBeNaN();
      expect(r.patchesScored).toBe(0);
      expect(r.warnings.join(' ')).toMatch(/no tissue/);
    }
    const tissue = await scoreImage(shared('data', 'tiles', 'ihc.png'), { model: DEFAULT_MODEL_PATH });
    expect(tissue.noTissue).toBe(false);
    expect(tissue.warnings).toEqual([]);
    expect(tissue.patchesScored).toBeGreaterThan(0);
  });

  test('score: fluorescence (BBBC006, dark background) is scored whole with an out-of-domain warning', async () => {
    const r = await scoreImage(bbbc('z00'), { model: DEFAULT_MODEL_PATH });
    expect(r.darkBackground).toBe(true);
    expect(r.patchesScored).toBe(r.rows * r.cols);
    expect(r.warnings.join(' ')).toMatch(/dark background/);
  });

  test('scan: fluorescence gets verdict unknown with the reason, not "no-tissue" or "pass"', async () => {
    const r = await scanSlide(bbbc('z10'), { model: DEFAULT_MODEL_PATH, mpp: 0.5 });
    expect(r.summary.verdict).toBe('unknown');
    expect(r.summary.verdictReason).toMatch(/dark background/);
  });

  test('scan: too few tissue patches and an unknown resolution give verdict unknown', async () => {
    const few = await scanSlide(shared('data', 'tiles', 'ihc.png'), { model: DEFAULT_MODEL_PATH, mpp: 0.5 });
    expect(few.summary.patchesScored).toBeLessThan(MIN_PATCHES_FOR_VERDICT);
    expect(few.summary.verdict).toBe('unknown');
    expect(few.summary.verdictReason).toMatch(/too few/);
    expect(few.warnings.join(' ')).toMatch(/no verdict/);
    const noMpp = await scanSlide(shared('data', 'tiles', 'ihc.png'), { model: DEFAULT_MODEL_PATH });
    expect(noMpp.summary.verdict).toBe('unknown');
    expect(noMpp.summary.verdictReason).toMatch(/resolution is unknown/);
    const judged = await scanSlide(shared('data', 'slides', 'CMU-1-Small-Region.svs'), { model: DEFAULT_MODEL_PATH });
    expect(['pass', 'fail']).toContain(judged.summary.verdict);
    expect(judged.summary.verdictReason).toBeNull();
  });
});
