// First-order DARTS on small real-tissue data (synthetic defocus of a shared tile): the architecture
// weights move, a seed reproduces the search exactly, and a searched genotype goes end to end: its
// evaluation network trains (the loss falls), is saved as a model file that carries the genotype,
// and scores patches from that file as the in-memory weights do.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createScorer, deriveGenotype, loadModel, parseGenotype, readGenotypeFile, resolveDartsSettings, runDarts, runSearch, syntheticDefocus, PRIMITIVES } from '../dist/index.js';
import { patchSetSource } from '../dist/train/batches.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

const tile = () => shared('data', 'tiles', 'high-nuclei-score-level0.png');

describe.skipIf(!hasShared)('DARTS search', () => {
  const search = async (seed: number) => {
    const data = await syntheticDefocus({ sources: [tile()], count: 16, patchSize: 16, levels: 4, sigmaPerLevel: 1, seed: 3, minTissue: 0.3 });
    const half = (from: number) => ({ ...data, count: 8, patches: data.patches.subarray(from * 16 * 16 * 3, (from + 8) * 16 * 16 * 3), labels: data.labels.subarray(from, from + 8) });
    const settings = resolveDartsSettings({ epochs: 2, batchSize: 4, channels: 2, patchSize: 16, seed });
    return runDarts(patchSetSource(half(0)), patchSetSource(half(8)), settings, { mean: [0.6, 0.45, 0.65], std: [0.2, 0.2, 0.2] });
  };

  test('architecture weights move; the same seed reproduces the search, another seed does not', async () => {
    const a = await search(5);
    expect(a.history).toHaveLength(2);
    const before = a.initialWeights;
    const after = a.history.at(-1)!.weights;
    expect(after).toHaveLength(5); // 2 + 3 edges
    // Initial alphas are 1e-3 * N(0, 1): the softmax starts within 1 % of uniform over the 8 ops.
    for (const row of before) for (const v of row) expect(Math.abs(v - 1 / PRIMITIVES.length)).toBeLessThan(0.01 / PRIMITIVES.length);
    // 4 Adam steps of lr 3e-4 on alpha: every edge's weights change, by no more than those steps allow.
    for (const [e, row] of after.entries()) {
      const moved = Math.max(...row.map((v, k) => Math.abs(v - before[e]![k]!)));
      expect(moved, `edge ${e}`).toBeGreaterThan(1e-6);
      expect(moved, `edge ${e}`).toBeLessThan(0.01);
    }
    // The genotype is DARTS's derivation of the final weights, and the registry's network takes it.
    expect(a.genotype).toEqual(deriveGenotype(after, 2));
    expect(parseGenotype(a.genotype, (m) => { throw new Error(m); })).toEqual(a.genotype);
    expect(a.history.every((e) => Number.isFinite(e.trainLoss) && Number.isFinite(e.validLoss))).toBe(true);

    const again = await search(5);
    expect(again.genotype).toEqual(a.genotype);
    expect(again.history.map((e) => [e.trainLoss, e.validLoss, e.weights])).toEqual(a.history.map((e) => [e.trainLoss, e.validLoss, e.weights]));
    const other = await search(6);
    expect(other.history.at(-1)!.weights).not.toEqual(after);
  }, 300_000);

  test('a searched genotype trains end to end and is scored from its model file', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'fqa-search-'));
    const r = await runSearch({
      dataset: { kind: 'synthetic', sources: [tile()], count: 8, levels: 4, sigmaPerLevel: 1 },
      outDir: out, epochs: 2, batchSize: 4, channels: 2, seed: 2, evalSteps: 5,
    });
    // The search's files: the genotype (as --genotype reads it), softmax(alpha) per epoch, the loss history.
    expect(readGenotypeFile(path.join(out, 'genotype.json'))).toEqual(r.genotype);
    const alphas = readFileSync(path.join(out, 'alphas.tsv'), 'utf8').trim().split('\n');
    expect(alphas[0]).toBe(['epoch', 'edge', 'node', 'input', ...PRIMITIVES].join('\t'));
    expect(alphas).toHaveLength(1 + 3 * 5); // epochs 0, 1, 2 x 5 edges
    for (const row of alphas.slice(1)) expect(row.split('\t').slice(4).map(Number).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    expect(readFileSync(path.join(out, 'history.tsv'), 'utf8').trim().split('\n')).toHaveLength(3);

    // The evaluation network trained on one fixed batch: its PLCC loss falls.
    const losses = r.evaluation!.losses;
    expect(losses).toHaveLength(5);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.05);
    // model.fqa carries the genotype, loads through the registry and scores finite, distinct values.
    const model = await loadModel(path.join(out, 'model.fqa'));
    expect(model.header.architecture).toBe('darts-fqa');
    expect(model.header.genotype).toEqual(r.genotype);
    expect(model.header.patchSize).toBe(64);
    const scorer = await createScorer(model, { backend: 'tfjs' });
    const pixels = new Uint8Array(2 * 64 * 64 * 3).map((_, i) => (i * 37) % 251);
    const scores = await scorer.score(pixels, 2, 64);
    await scorer.dispose();
    expect(scores.every(Number.isFinite)).toBe(true);
    expect(scores[0]).not.toBe(scores[1]);
    expect(r.evaluation!.scored).toBe(4);
  }, 600_000);
});
