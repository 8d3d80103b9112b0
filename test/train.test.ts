// End-to-end training: `fqa-scan train` on a small CSV dataset made from real tissue tiles (blurred
// with a Gaussian PSF; the label is the blur level), as a user would point it at their own data.
// It must lower the loss, write every promised file, report mean +- std over trials, and its model
// must scan; bad dataset folders are one-line errors.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { loadModel, scoreImage } from '@fqa/core';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-train-'));

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** 4 real tiles x 6 blur levels (sigma 0.7 px per level), 256 px; labels.csv with the level (or level >= 3 as 0/1). */
async function makeDataset(dir: string, binary: boolean): Promise<string> {
  const tiles = ['tissue-level0-4302-10273-4814-10785.png', 'medium-nuclei-score-level0.png', 'high-nuclei-score-level0.png', 'ihc.png'];
  const rows = ['file,label'];
  for (const [t, tile] of tiles.entries()) {
    const crop = await sharp(shared('data', 'tiles', tile)).removeAlpha().extract({ left: 0, top: 0, width: 256, height: 256 }).toBuffer();
    for (let level = 0; level < 6; level++) {
      const name = `tile${t}-level${level}.png`;
      let image = sharp(crop);
      if (level > 0) image = image.blur(0.7 * level);
      await image.png().toFile(path.join(dir, name));
      rows.push(`${name},${binary ? Number(level >= 3) : level}`);
    }
  }
  const labels = path.join(dir, 'labels.csv');
  writeFileSync(labels, rows.join('\n') + '\n');
  return labels;
}

describe.skipIf(!hasShared)('fqa-scan train on real tissue', () => {
  test('two trials on graded blur: loss falls, files written, mean +- std reported, the model scans', async () => {
    const labels = await makeDataset(work, false);
    const out = path.join(work, 'run');
    const r = fqa('train', '--dataset', 'csv', '--root', work, '--labels', labels, '--patch', '64', '--kernels', '2', '--epochs', '60', '--step', '40', '--batch', '10', '--trials', '2', '--split', '0.75,0,0.25', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['model-trial1.fqa', 'model-trial2.fqa', 'history.tsv', 'test-scores.tsv', 'result.json', 'scatter.svg']) expect(existsSync(path.join(out, f)), f).toBe(true);
    const result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
    expect(result.trials).toHaveLength(2);
    expect(result.summary.srcc.n).toBe(2);
    expect(result.summary.srcc.std).not.toBeNull();
    expect(r.stdout).toMatch(/srcc\t-?[\d.]+\t[\d.]+/);
    // The loss of trial 1 (1 - PLCC per batch; batches of 10 make it noisy) falls clearly: mean of the
    // first 2 epochs against the last 10. The held-out images' blur levels are ranked well.
    const losses = readFileSync(path.join(out, 'history.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number)).filter((c) => c[0] === 1).map((c) => c[2]!);
    expect(losses).toHaveLength(60);
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 2)) - 0.2);
    expect(result.summary.srcc.mean).toBeGreaterThan(0.8);
    expect(readFileSync(path.join(out, 'scatter.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<circle[\s\S]*<\/svg>\n$/);
    // The model scans like any other model file.
    const model = await loadModel(path.join(out, 'model-trial1.fqa'));
    expect(model.header.provenance.createdBy).toBe('fqa-scan train');
    const scores = await scoreImage(path.join(work, 'tile0-level0.png'), { model });
    expect(scores.scores.length).toBeGreaterThan(0);
  }, 120_000);

  test('binary labels get ROC and PR plots; the tfjs trainer runs the same command', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-train-binary-'));
    const labels = await makeDataset(dir, true);
    const out = path.join(dir, 'run');
    const r = fqa('train', '--dataset', 'csv', '--root', dir, '--labels', labels, '--patch', '64', '--kernels', '1', '--epochs', '2', '--batch', '9', '--trainer', 'tfjs', '--split', '0.5,0,0.5', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/trainer @tensorflow\/tfjs/);
    expect(r.stdout).toMatch(/rocAuc/);
    for (const f of ['model.fqa', 'roc.svg', 'pr.svg']) expect(existsSync(path.join(out, f)), f).toBe(true);
    expect(readFileSync(path.join(out, 'roc.svg'), 'utf8')).toMatch(/<polyline[\s\S]*AUC/);
  }, 120_000);
});

describe.skipIf(!hasShared)('bootstrapping a scanner model from in-focus tissue', () => {
  test('train --dataset synthetic gives a calibrated model with a threshold that orders real blur', async () => {
    const out = path.join(work, 'synthetic');
    const tile = shared('data', 'tiles', 'tissue-level0-4302-10273-4814-10785.png');
    const r = fqa('train', '--dataset', 'synthetic', '--source', tile, '--count', '300', '--patch', '64', '--kernels', '2', '--epochs', '12', '--step', '8', '--mpp', '0.5', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const model = await loadModel(path.join(out, 'model.fqa'));
    expect(model.header.score.scale).toMatch(/estimated defocus level: level L = Gaussian blur of sigma 0\.5\*L px/);
    expect(model.header.score.threshold).toBe(2.5);
    expect(model.header.micronsPerPixel).toBe(0.5);
    expect(model.header.provenance.notes).toMatch(/calibrated onto the levels/);
    const result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
    expect(result.trials[0].metrics.rmse).toBeLessThan(2.5); // in levels, on held-out synthetic patches
    // On real blur of another H&E tile it never saw: sharp below the threshold, blurred (sigma 2 px =
    // level 4) above. (A model bootstrapped from one H&E tile does not transfer to other stains: IHC
    // scores far higher; train on the scanner's own slides.)
    const crop = await sharp(shared('data', 'tiles', 'tissue-level0-7352-11762-7864-12274.png')).removeAlpha().extract({ left: 0, top: 0, width: 256, height: 256 }).png().toBuffer();
    const sharpScore = await scoreImage(crop, { model });
    const blurredScore = await scoreImage(await sharp(crop).blur(2).png().toBuffer(), { model });
    expect(sharpScore.mean).toBeLessThan(2.5);
    expect(blurredScore.mean).toBeGreaterThan(2.5);
  }, 120_000);
});

describe.skipIf(!hasShared)('bootstrapping with the scanner model (--psf scanner)', () => {
  test('a calibrated model on the disk-radius scale that ranks held-out synthetic defocus', async () => {
    const out = path.join(work, 'scanner');
    const tiles = ['ihc.png', 'medium-nuclei-score-level0.png'].map((t) => shared('data', 'tiles', t));
    const r = fqa('train', '--dataset', 'synthetic', '--psf', 'scanner', '--source', ...tiles, '--count', '400', '--patch', '64', '--kernels', '2', '--epochs', '10', '--step', '7', '--mpp', '0.5', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const model = await loadModel(path.join(out, 'model.fqa'));
    expect(model.header.score.scale).toMatch(/defocus blur disk of radius L px/);
    // The default recipe's levels and threshold rule (DEFAULT_RECIPE, inFocusThreshold), not a fixed 2.5.
    expect(model.header.score.threshold! % 0.5).toBe(0);
    expect(model.header.score.threshold).toBeGreaterThan(0);
    expect(model.header.provenance.notes).toMatch(/trained on level\^0\.5, threshold: at most 5 % of the in-focus training patches above it/);
    const result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
    expect(result.options.dataset).toMatchObject({ psf: 'scanner' });
    expect(result.trials[0].metrics.srcc).toBeGreaterThan(0.6); // held-out synthetic crops, levels 0..16
  }, 180_000);

  test('too few patches to have an in-focus one for the threshold rule: one usage line, not a crash', () => {
    // Seed 4 draws no level-0 patch among the 16 training patches of 20 (20 % are in focus on average).
    const r = fqa('train', '--dataset', 'synthetic', '--psf', 'scanner', '--source', shared('data', 'tiles', 'ihc.png'), '--count', '20', '--patch', '64', '--kernels', '1', '--epochs', '1', '--seed', '4', '--out', path.join(work, 'scanner-few'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/none of the 16 training patches is in focus, so the threshold rule has nothing to go on: raise --count or give --threshold-level/);
  }, 120_000);
});

test('bad dataset folders and options are one-line errors with the right exit code', async () => {
  const missing = fqa('train', '--dataset', 'csv', '--root', path.join(work, 'nope'), '--labels', path.join(work, 'nope.csv'), '--out', path.join(work, 'x'));
  expect(missing.code).toBe(3);
  expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  expect(missing.stderr).toMatch(/dataset folder not found/);
  const dir = mkdtempSync(path.join(tmpdir(), 'fqa-train-bad-'));
  writeFileSync(path.join(dir, 'labels.csv'), 'file,label\na.png,1\n');
  const absent = fqa('train', '--dataset', 'csv', '--root', dir, '--labels', path.join(dir, 'labels.csv'), '--out', path.join(dir, 'o'));
  expect(absent.code).toBe(3);
  expect(absent.stderr).toMatch(/a\.png not found/);
  writeFileSync(path.join(dir, 'a.png'), await sharp({ create: { width: 80, height: 80, channels: 3, background: '#a05080' } }).png().toBuffer());
  writeFileSync(path.join(dir, 'labels.csv'), 'file,label\na.png,one\n');
  const unreadable = fqa('train', '--dataset', 'csv', '--root', dir, '--labels', path.join(dir, 'labels.csv'), '--out', path.join(dir, 'o'));
  expect(unreadable.code).toBe(3);
  expect(unreadable.stderr).toMatch(/labels\.csv:2: expected a number for label/);
  writeFileSync(path.join(dir, 'labels.csv'), 'file,label\na.png,1\n');
  const emptySplit = fqa('train', '--dataset', 'csv', '--root', dir, '--labels', path.join(dir, 'labels.csv'), '--out', path.join(dir, 'o'));
  expect(emptySplit.code).toBe(3);
  expect(emptySplit.stderr).toMatch(/split is empty/);
  const noOut = fqa('train', '--dataset', 'csv', '--root', dir, '--labels', path.join(dir, 'labels.csv'));
  expect(noOut.code).toBe(2);
  const eonssNative = fqa('train', '--dataset', 'csv', '--root', dir, '--labels', path.join(dir, 'labels.csv'), '--arch', 'eonss', '--trainer', 'native', '--out', path.join(dir, 'o'));
  expect(eonssNative.code).toBe(2);
  expect(eonssNative.stderr).toMatch(/native trainer trains FocusLiteNN/);
});
