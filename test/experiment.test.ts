// The paper's experiments as commands, on small data: `fqa-scan train --arch` for a deep
// architecture through the registry graph (presets, trials with seeds, checkpoints, --resume), and
// `fqa-scan experiment transfer` (Table 5 and Figure 7 files) on a miniature FocusPath copy and a
// miniature TCGA@Focus made of real TCGA@Focus crops, in the published label layouts. The AUCs are
// those of models the command trains and scores: trained FocusLiteNN-1 separates the TCGA crops in
// every trial, its untrained start does not; the table's numbers are the AUCs recomputed from the cell
// files, and a second run must train nothing and write the same table byte for byte.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { formatPercent, loadModel, prAucTrapezoid, rocAuc, scoreImage, summarizeTrials } from '@fqa/core';
import { hasShared, repoRoot, shared, tcgaImages } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-experiment-'));
const tile = (name: string) => shared('data', 'tiles', name);

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('mean ± std in percent as the tables print it (hand-computed)', () => {
  // AUCs 0.9 and 0.8: mean 0.85, sample std sqrt(2 x 0.05^2 / 1) = 0.0707...
  const s = summarizeTrials([{ roc: 0.9 }, { roc: 0.8 }]).roc!;
  expect(formatPercent(s)).toBe('85.00 ± 7.07');
  expect(formatPercent({ mean: 0.93351, std: null })).toBe('93.35');
  expect(formatPercent(null)).toBe('—');
});

describe.skipIf(!hasShared)('deep models trained by fqa-scan train', () => {
  test('EONSS (64 px graph) with the synthetic64 preset: two seeded trials, checkpoints, a scannable model; --resume retrains nothing', async () => {
    const out = path.join(work, 'eonss');
    const args = ['train', '--arch', 'eonss', '--preset', 'synthetic64', '--source', tile('tissue-level0-4302-10273-4814-10785.png'), '--count', '40', '--epochs', '2', '--trials', '2', '--out', out];
    const r = fqa(...args);
    expect(r.code, r.stderr).toBe(0);
    // auto: the torch engine where it is built (CI installs it), else tfjs.
    expect(r.stdout).toMatch(/trainer (torch: libtorch [\d.]+ \(cpu, 1 thread\)|tfjs: @tensorflow\/tfjs)/);
    for (const f of ['model-trial1.fqa', 'model-trial2.fqa', 'checkpoint-trial1.bin', 'trial-2.json', 'history.tsv', 'result.json']) expect(existsSync(path.join(out, f)), f).toBe(true);
    const result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
    expect(result.trials.map((t: { seed: number }) => t.seed)).toEqual([1, 2]);
    // The preset's schedule for a network other than FocusLiteNN (DARTS-FQA train_model.py): batch 8, lr 0.001, step 40.
    expect(result.options).toMatchObject({ preset: 'synthetic64', architecture: 'eonss', patchSize: 64, batchSize: 8, learningRate: 0.001, stepSize: 40, loss: 'plcc' });
    expect(readFileSync(path.join(out, 'history.tsv'), 'utf8').trim().split('\n')).toHaveLength(1 + 2 * 2);
    const model = await loadModel(path.join(out, 'model-trial1.fqa'));
    expect(model.header.architecture).toBe('eonss');
    expect(model.header.patchSize).toBe(64);
    expect(model.header.provenance.source).toMatch(/graph trainer, (torch|tfjs): .*, seed 1$/);
    const scored = await scoreImage(tile('medium-nuclei-score-level0.png'), { model });
    expect(scored.scores.length).toBeGreaterThan(0);
    expect(Number.isFinite(scored.mean)).toBe(true);

    const modelTime = statSync(path.join(out, 'model-trial2.fqa')).mtimeMs;
    const again = fqa(...args, '--resume');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/trial 1: finished before[\s\S]*trial 2: finished before/);
    expect(again.stderr).not.toMatch(/epoch 1\/2/);
    expect(statSync(path.join(out, 'model-trial2.fqa')).mtimeMs).toBe(modelTime);
    expect(JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')).trials).toEqual(result.trials);
  }, 300_000);
});

/** FocusPath's layout: name,slide,strip,slice,position,score,z (target |z|); 3 slides x 4 defocus steps of real tissue. */
async function miniFocusPath(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const rows: string[] = [];
  const tiles = ['tissue-level0-4302-10273-4814-10785.png', 'medium-nuclei-score-level0.png', 'high-nuclei-score-level0.png'];
  for (const [s, t] of tiles.entries()) {
    const crop = await sharp(tile(t)).removeAlpha().extract({ left: 0, top: 0, width: 128, height: 128 }).toBuffer();
    for (const z of [0, 2, 4, 6]) {
      const name = `slide${s + 1}_z${z}.png`;
      await (z === 0 ? sharp(crop) : sharp(crop).blur(0.5 * z)).png().toFile(path.join(dir, name));
      rows.push(`${name},${s + 1},1,1,1,0,${z}`);
    }
  }
  writeFileSync(path.join(dir, 'labels.csv'), rows.join('\n') + '\n');
  return path.join(dir, 'labels.csv');
}

/** TCGA@Focus's layout (path,organ,marker_flag,out_of_focus): 4 crops of the in-focus and 4 of the out-of-focus TCGA patch. */
async function miniTcga(dir: string): Promise<string> {
  const rows: string[] = [];
  for (const [label, file, folder] of [[0, tcgaImages['tcga-in-focus'], 'In Focus'], [1, tcgaImages['tcga-out-of-focus'], 'Out of Focus']] as const) {
    const sub = path.join(dir, folder, 'adrenal', 'slide');
    mkdirSync(sub, { recursive: true });
    for (const [i, [left, top]] of [[100, 100], [500, 120], [200, 600], [700, 700]].entries()) {
      await sharp(shared('data', 'tcga-focus', file)).removeAlpha().extract({ left: left!, top: top!, width: 192, height: 192 }).png().toFile(path.join(sub, `crop${i}.png`));
      rows.push(`${folder}/adrenal/slide/crop${i}.png,adrenal,0,${label}`);
    }
  }
  writeFileSync(path.join(dir, 'TCGA@Focus.txt'), rows.join('\n') + '\n');
  return path.join(dir, 'TCGA@Focus.txt');
}

/** The miniature FocusPath and TCGA@Focus, made once per file (any test may run alone). */
let miniData: Promise<{ focuspath: string; labels: string; tcga: string; tcgaLabels: string }> | undefined;
function mini() {
  miniData ??= (async () => {
    const focuspath = path.join(work, 'focuspath');
    const tcga = path.join(work, 'tcga');
    return { focuspath, labels: await miniFocusPath(focuspath), tcga, tcgaLabels: await miniTcga(tcga) };
  })();
  return miniData;
}

describe.skipIf(!hasShared)('fqa-scan experiment transfer', () => {
  // Measured: trained 40 epochs, ROC AUC 1.000 in each of the 6 trials; the same 6 seeds untrained
  // (one epoch at lr 1e-12 leaves the initial weights) 0.000, 1.000, 1.000, 0.125, 1.000, 0.375 (mean
  // 0.58: a random model's sign decides). A pipeline that trained nothing, scored another model than
  // it trained, or paired scores with the wrong labels fails these bounds.
  test('AUCs of the models it trains: FocusLiteNN-1 separates TCGA@Focus in-focus from out-of-focus crops (ROC AUC >= 0.9 in all 6 trials); untrained, the same seeds do not', async () => {
    const { focuspath, labels, tcga, tcgaLabels } = await mini();
    const cell = (name: string, ...options: string[]): { trials: { seed: number; rocAuc: number }[]; roc: { mean: number } } => {
      const out = path.join(work, name);
      const r = fqa('experiment', 'transfer', '--datasets', 'focuspath64', '--archs', 'focuslitenn-1', '--trials', '6', '--jobs', '1',
        '--focuspath-root', focuspath, '--focuspath-labels', labels, '--tcga-root', tcga, '--tcga-labels', tcgaLabels, '--out', out, ...options);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(readFileSync(path.join(out, 'cells', 'focuspath64', 'focuslitenn-1', 'cell.json'), 'utf8'));
    };
    const trained = cell('auc-trained', '--epochs', '40');
    expect(trained.trials.map((t) => t.seed)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const t of trained.trials) expect(t.rocAuc, `trained, seed ${t.seed}`).toBeGreaterThanOrEqual(0.9);
    expect(trained.roc.mean).toBeGreaterThanOrEqual(0.9);
    const untrained = cell('auc-untrained', '--epochs', '1', '--lr', '1e-12');
    expect(untrained.trials.map((t) => t.seed)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Math.min(...untrained.trials.map((t) => t.rocAuc)), 'the worst untrained trial').toBeLessThan(0.5);
    expect(untrained.roc.mean).toBeLessThan(0.75);
  }, 300_000);

  test('Table 5 beside the paper and Figure 7 from one command; a second run trains nothing and writes the same table', async () => {
    const { focuspath, labels, tcga, tcgaLabels } = await mini();
    const out = path.join(work, 'table5');
    // --jobs 2: the two cells train at once in processes of their own, whatever the machine's cores.
    const args = ['experiment', 'transfer', '--datasets', 'focuspath64', '--archs', 'focuslitenn-1,eonss', '--trials', '2', '--epochs', '2', '--jobs', '2',
      '--focuspath-root', focuspath, '--focuspath-labels', labels, '--tcga-root', tcga, '--tcga-labels', tcgaLabels, '--out', out];
    const first = fqa(...args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/2 cell\(s\), 2 trained now/);
    for (const f of ['table5.tsv', 'table5.md', 'figure7-focuspath64-roc.svg', 'figure7-focuspath64-pr.svg']) expect(existsSync(path.join(out, f)), f).toBe(true);

    // Every table value is the mean ± std of the per-trial AUCs recomputed from the stored TCGA scores.
    const tsv = readFileSync(path.join(out, 'table5.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    expect(tsv[0]).toEqual(['dataset', 'network', 'trials', 'roc_auc_mean', 'roc_auc_std', 'pr_auc_mean', 'pr_auc_std', 'paper_roc_mean', 'paper_roc_std', 'paper_pr_mean', 'paper_pr_std', 'seeds', 'epochs', 'train_items', 'heldout_srcc_mean', 'trainer']);
    expect(tsv.slice(1).map((r) => r[1])).toEqual(['focuslitenn-1', 'eonss']);
    for (const row of tsv.slice(1)) {
      const cell = JSON.parse(readFileSync(path.join(out, 'cells', 'focuspath64', row[1]!, 'cell.json'), 'utf8'));
      expect(cell.targets).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
      expect(cell.trials.map((t: { seed: number }) => t.seed)).toEqual([1, 2]);
      const positives = cell.targets.map((t: number) => t === 1);
      const roc = summarizeTrials(cell.trials.map((t: { scores: number[] }) => ({ v: rocAuc(t.scores, positives) }))).v!;
      const pr = summarizeTrials(cell.trials.map((t: { scores: number[] }) => ({ v: prAucTrapezoid(t.scores, positives) }))).v!;
      expect(row.slice(2, 7)).toEqual(['2', (100 * roc.mean).toFixed(2), (100 * roc.std!).toFixed(2), (100 * pr.mean).toFixed(2), (100 * pr.std!).toFixed(2)]);
      expect(row[11]).toBe('1,2');
      // How the cell was trained: its epochs, the training images of a trial, the held-out SRCC of each trial.
      expect(row[12]).toBe('2');
      expect(Number(row[13])).toBe(cell.training.trainItems);
      expect(cell.training.heldOutSrcc).toHaveLength(2);
    }
    // The paper's FocusPath64 column beside ours (Table 5: FocusLiteNN-1 93.30 ± 0.06 / 86.78 ± 0.15; EONSS 90.68 ± 0.34 / 83.11 ± 0.31).
    expect(tsv[1]!.slice(7, 11)).toEqual(['93.3', '0.06', '86.78', '0.15']);
    const md = readFileSync(path.join(out, 'table5.md'), 'utf8');
    expect(md).toMatch(/\| FocusLiteNN \(1 kernel\) \| [\d.]+ ± [\d.]+ \(93\.30 ± 0\.06\) \| [\d.]+ ± [\d.]+ \(86\.78 ± 0\.15\) \|/);
    expect(md).toMatch(/\| EONSS \| [\d.]+ ± [\d.]+ \(90\.68 ± 0\.34\) \| [\d.]+ ± [\d.]+ \(83\.11 ± 0\.31\) \|/);
    const roc = readFileSync(path.join(out, 'figure7-focuspath64-roc.svg'), 'utf8');
    expect(roc).toMatch(/^<svg[\s\S]*<polyline[\s\S]*FocusLiteNN \(1 kernel\)[\s\S]*EONSS[\s\S]*<\/svg>\n$/);

    const table = readFileSync(path.join(out, 'table5.tsv'));
    const cellTime = statSync(path.join(out, 'cells', 'focuspath64', 'eonss', 'cell.json')).mtimeMs;
    const second = fqa(...args);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/2 cell\(s\), 0 trained now/);
    expect(second.stderr).not.toMatch(/training|epoch/);
    expect(readFileSync(path.join(out, 'table5.tsv')).equals(table)).toBe(true);
    expect(readFileSync(path.join(out, 'table5.md'), 'utf8')).toBe(md);
    expect(readFileSync(path.join(out, 'figure7-focuspath64-roc.svg'), 'utf8')).toBe(roc);
    expect(statSync(path.join(out, 'cells', 'focuspath64', 'eonss', 'cell.json')).mtimeMs).toBe(cellTime);
  }, 300_000);

  test('bad experiment arguments are one-line usage errors', () => {
    const noData = fqa('experiment', 'transfer', '--datasets', 'focuspath64', '--tcga-root', work, '--tcga-labels', 'x.txt', '--out', path.join(work, 'x'));
    expect(noData.code).toBe(2);
    expect(noData.stderr.trim().split('\n')).toHaveLength(1);
    expect(noData.stderr).toMatch(/--datasets focuspath64 needs --focuspath-root and --focuspath-labels/);
    const unknown = fqa('experiment', 'transfer', '--datasets', 'focuspath65', '--tcga-root', work, '--tcga-labels', 'x.txt', '--out', path.join(work, 'x'));
    expect(unknown.stderr).toMatch(/Expected one of focuspath, focuspath64, bioimage, bioimage64, deepfocus, synthetic, synthetic64 for preset but received 'focuspath65'/);
    const which = fqa('experiment', 'table4');
    expect(which.code).toBe(2);
    expect(which.stderr).toMatch(/Expected 'transfer' after fqa-scan experiment but received 'table4'/);
  });
});
