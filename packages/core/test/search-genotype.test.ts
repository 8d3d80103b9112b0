// DARTS's genotype derivation against a hand-worked oracle, and the searched genotypes in the
// DARTS-FQA evaluation network: parsed from untrusted JSON with one-line errors, built for every op
// of the search space, and scored alike by ONNX Runtime and tfjs (two independent implementations of
// the new ops: avg pool without padded cells, dilated depth-wise convs at stride 2).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  createScorer, deriveGenotype, edgeCount, encodeModelFile, findArchitecture, genotypeModelFile, inferShapes, loadOnnxRuntime, parameterCount, parseGenotype,
  parseModelFile, randomWeights, readGenotypeFile, softmaxRows, toLoadedModel, type Genotype,
} from '../dist/index.js';
import { seededRandom } from '../dist/train/random.js';
import { missing } from '../../../test/helpers/shared.js';

const onnx = !missing(loadOnnxRuntime() !== null, 'onnxruntime-node (npm install onnxruntime-node)');

const darts = findArchitecture('darts-fqa')!;

describe('DARTS genotype derivation', () => {
  test('top-2 incoming edges per node by their strongest non-none op, that op on each (hand-worked)', () => {
    // Columns: none, max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5.
    const weights = [
      // node 2 (inputs 0, 1): both edges are kept, the stronger first.
      [0.50, 0.10, 0.05, 0.05, 0.20, 0.04, 0.03, 0.03], // input 0: best sep_conv_3x3 (0.20; 'none' 0.50 is ignored)
      [0.10, 0.30, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10], // input 1: best max_pool_3x3 (0.30)
      // node 3 (inputs 0, 1, 2): the edge whose 'none' dominates is dropped.
      [0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.65], // input 0: dil_conv_5x5 (0.65)
      [0.90, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01, 0.01], // input 1: strongest non-none 0.02 (tie: the first, max_pool)
      [0.20, 0.10, 0.10, 0.40, 0.05, 0.05, 0.05, 0.05], // input 2: skip_connect (0.40)
    ];
    expect(deriveGenotype(weights, 2)).toEqual({
      reduce: [['max_pool_3x3', 1], ['sep_conv_3x3', 0], ['dil_conv_5x5', 0], ['skip_connect', 2]],
      concat: [3],
    });
  });

  test('ties between edges keep the earlier edge; four steps as DARTS; multiplier picks the last nodes', () => {
    const flat = (best: number, value: number) => Array.from({ length: 8 }, (_, k) => (k === best ? value : 0.01));
    // 4 steps: 2 + 3 + 4 + 5 = 14 edges.
    expect(edgeCount(4)).toBe(14);
    const weights = [
      flat(1, 0.5), flat(2, 0.5), // node 2: equal strengths, input 0 first
      flat(3, 0.2), flat(4, 0.6), flat(5, 0.6), // node 3: inputs 1 and 2 tie at 0.6, ahead of input 0
      flat(6, 0.3), flat(7, 0.1), flat(1, 0.3), flat(2, 0.9), // node 4: input 3 (0.9), then inputs 0 and 2 tie: input 0
      flat(0, 0.99), flat(3, 0.05), flat(4, 0.04), flat(5, 0.03), flat(6, 0.02), // node 5: 'none' never counts
    ];
    // Node 5's input 0 has only 'none' strong: its best real op is the first at 0.01, below input 1 (0.05) and input 2 (0.04).
    expect(deriveGenotype(weights, 4, 4)).toEqual({
      reduce: [['max_pool_3x3', 0], ['avg_pool_3x3', 1], ['sep_conv_3x3', 1], ['sep_conv_5x5', 2], ['avg_pool_3x3', 3], ['dil_conv_3x3', 0], ['skip_connect', 1], ['sep_conv_3x3', 2]],
      concat: [2, 3, 4, 5],
    });
  });

  test('derivation ranks edges by softmax(alpha), not by raw alpha', () => {
    // Both node-2 edges peak at alpha 2.0, but input 0's row also has 1.9 on sep_conv_3x3, so its softmax
    // weight for max_pool is lower (e^2 / (e^2 + e^1.9 + 6) = 0.368 against e^2 / (e^2 + 7) = 0.514):
    // input 1's edge ranks first (raw alphas tie and would keep input 0 first).
    const alphas = [[0, 2, 0, 0, 1.9, 0, 0, 0], [0, 0, 0, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]];
    const w = softmaxRows(alphas);
    expect(w[0]![1]).toBeCloseTo(Math.exp(2) / (Math.exp(2) + Math.exp(1.9) + 6), 12);
    expect(w[1]![3]).toBeCloseTo(Math.exp(2) / (Math.exp(2) + 7), 12);
    expect(deriveGenotype(w, 2).reduce.slice(0, 2)).toEqual([['skip_connect', 1], ['max_pool_3x3', 0]]);
  });
});

describe('searched genotypes in the evaluation network', () => {
  const everyOp: Genotype = {
    // Every op of the search space, at stride 2 (inputs 0/1) and at stride 1 (state 2), concat of both steps.
    reduce: [['avg_pool_3x3', 0], ['dil_conv_3x3', 1], ['dil_conv_5x5', 2], ['skip_connect', 1]],
    concat: [2, 3],
  };

  test('the three published genotypes parse to themselves; a genotype with every op builds at 64 px', () => {
    for (const name of ['focuspath', 'bioimage', 'deepfocus']) expect(parseGenotype(darts.variants[name], (m) => { throw new Error(m); })).toEqual(darts.variants[name]);
    const graph = darts.graph(everyOp);
    const shapes = inferShapes(graph, 64);
    expect(shapes.get(graph.output)).toEqual([1, 1, 1]);
    // Dilated convs carry a depth-wise k x k and a point-wise 1x1 (no bias): cell 0 (C = 40) of dil_conv_3x3.
    expect(graph.tensors.find((t) => t.name === 'cells.0._ops.1.op.1.weight')!.shape).toEqual([40, 1, 3, 3]);
    expect(graph.tensors.find((t) => t.name === 'cells.0._ops.2.op.1.weight')!.shape).toEqual([40, 1, 5, 5]);
    // concat [2, 3] doubles the cell output: classifier Linear(320, 1).
    expect(graph.tensors.find((t) => t.name === 'classifier.weight')!.shape).toEqual([1, 320]);
    expect(parameterCount(graph)).toBeGreaterThan(parameterCount(darts.graph(darts.variants.focuspath)));
  });

  test.skipIf(!onnx)('ONNX Runtime and tfjs score a model of every op alike, from its file', async () => {
    const graph = darts.graph(everyOp);
    const bytes = genotypeModelFile(everyOp, { graph, tensors: randomWeights(graph, 11), losses: [], backend: 'seeded random' }, {
      name: 'every-op', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], source: 'seeded random weights',
    });
    const model = toLoadedModel(parseModelFile(bytes, 'every-op.fqa'), 'every-op.fqa');
    expect(model.header.genotype).toEqual(everyOp);
    const random = seededRandom(5);
    const pixels = Uint8Array.from({ length: 3 * 64 * 64 * 3 }, () => Math.floor(random() * 256));
    const scores = [];
    for (const backend of ['onnx', 'tfjs'] as const) {
      const scorer = await createScorer(model, { backend, threads: 1 });
      scores.push(await scorer.score(pixels, 3, 64));
      await scorer.dispose();
    }
    const [onnx, tfjs] = scores as [Float32Array, Float32Array];
    expect(new Set(onnx).size).toBe(3);
    onnx.forEach((s, i) => expect(Math.abs(tfjs[i]! - s), `patch ${i}: tfjs ${tfjs[i]} onnx ${s}`).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(s))));
  }, 120_000);

  test('bad genotype files give one line naming the file and the problem', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-genotype-'));
    const file = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const cases: [string, RegExp][] = [
      [file('truncated.json', '{"reduce": [["max_pool_3x3", 0], '), /truncated\.json: not a genotype file \(invalid JSON: /],
      [file('array.json', '[1, 2]'), /array\.json: a genotype must be an object \{ reduce, concat \}/],
      [file('odd.json', '{"reduce": [["max_pool_3x3", 0]], "concat": [2]}'), /odd\.json: genotype\.reduce must be a list of 2 to 16 \[op, input\] pairs/],
      [file('op.json', '{"reduce": [["conv_7x1_1x7", 0], ["max_pool_3x3", 1]], "concat": [2]}'), /op\.json: genotype\.reduce\[0\]: unknown op "conv_7x1_1x7" \(expected max_pool_3x3, /],
      [file('none.json', '{"reduce": [["none", 0], ["max_pool_3x3", 1]], "concat": [2]}'), /none\.json: genotype\.reduce\[0\]: unknown op "none"/],
      [file('input.json', '{"reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 2]], "concat": [2]}'), /input\.json: genotype\.reduce\[1\]: input must be a state 0\.\.1, got 2/],
      [file('concat.json', '{"reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1]], "concat": [1]}'), /concat\.json: genotype\.concat: 1 is not a step's state \(2\.\.2\)/],
    ];
    for (const [f, message] of cases) {
      let error: Error | undefined;
      try {
        readGenotypeFile(f);
      } catch (err) {
        error = err as Error;
      }
      expect(error?.name, f).toBe('InputError');
      expect(error!.message).toMatch(message);
      expect(error!.message).not.toContain('\n');
    }
    expect(() => readGenotypeFile(path.join(dir, 'missing.json'))).toThrow(/missing\.json: cannot read the genotype file \(ENOENT\)/);
  });

  test('a model file whose header genotype is corrupt is refused with the reason', () => {
    const graph = darts.graph(everyOp);
    const good = parseModelFile(genotypeModelFile(everyOp, { graph, tensors: randomWeights(graph, 1), losses: [], backend: '' }, { name: 'x', mean: [0, 0, 0], std: [1, 1, 1], source: 'test' }), 'good.fqa');
    const { tensors: _entries, weightsByteLength: _length, weightsSha256: _sha, ...header } = good.header;
    const bad = encodeModelFile({ ...header, genotype: { reduce: [['bogus', 0], ['max_pool_3x3', 1]], concat: [2] } }, graph.tensors.map((t) => ({ name: t.name, shape: t.shape, data: good.tensors.get(t.name)! })));
    expect(() => parseModelFile(bad, 'bad.fqa')).toThrow(/^bad\.fqa: header genotype\.reduce\[0\]: unknown op "bogus"/);
  });
});
