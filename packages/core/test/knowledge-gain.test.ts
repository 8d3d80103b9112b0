// KG/MC per conv layer against the oracles in ../shared/reference/deep (kg-mc-*.json, from DARTS-FQA's
// adas code): for the published DARTS-FQA (three genotypes) and DenseNet-13 weights, converted into
// fqa model files, every layer's rank is exact and KG/MC are within 1e-6 relative of the float64
// variant (a float64 port's target); for focuspath and the synthetic cases every EVBMF intermediate
// (singular values, bounds, each point the bounded search evaluates, sigma2, threshold, d) matches.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { convertReferenceFile, evbmf, fminbound, inputUnfolding, knowledgeGain, knowledgeGainAverages, modelKnowledgeGain, outputUnfolding, parseModelFile, transpose, type ConvWeight, type LayerMetrics, type ModeMetrics } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

interface OracleEvbmf {
  L: number; M: number; alpha: number; tauubar: number; xubar: number; eH_ub: number; singular_values: number[];
  lower_bound: number; upper_bound: number; sigma2: number; nfev: number; objective_calls: [number, number][];
  threshold: number; pos: number; d: number[];
}
interface OracleMode { rank: number; KG: number; MC: number; steps?: { unfold_shape: [number, number]; transposed: boolean; evbmf: OracleEvbmf } }
interface OracleLayer {
  name: string; shape: number[]; depthwise_copy_of_next: boolean; input_mode: OracleMode; output_mode: OracleMode;
  /** Absent on depth-wise entries, which copy the next conv's. */
  float64_variant?: { input_mode: OracleMode; output_mode: OracleMode };
}
interface OracleAnalysis { layers: OracleLayer[]; averages: Record<string, number | null> }
interface Oracle extends OracleAnalysis { weights: string; synthetic?: (OracleAnalysis & { name: string; inputs: Record<string, { shape: number[]; data: number[] }> })[] }

const ORACLES = { 'kg-mc-darts-focuspath.json': 'darts-fqa', 'kg-mc-darts-bioimage.json': 'darts-fqa', 'kg-mc-darts-deepfocus.json': 'darts-fqa', 'kg-mc-densenet13.json': 'densenet13' } as const;
const load = (file: string): Oracle => JSON.parse(readFileSync(shared('reference', 'deep', file), 'utf8'));

function expectRelative(got: number, want: number, tolerance: number, what: string): void {
  expect(Math.abs(got - want), `${what}: got ${got}, want ${want}`).toBeLessThanOrEqual(tolerance * Math.abs(want));
}

function expectMode(got: ModeMetrics, want: OracleMode, what: string): void {
  expect(got.rank, `${what} rank`).toBe(want.rank);
  expectRelative(got.kg, want.KG, 1e-6, `${what} KG`);
  expectRelative(got.mc, want.MC, 1e-6, `${what} MC`);
  const steps = want.steps;
  if (!steps) return;
  expect(got.unfoldShape).toEqual(steps.unfold_shape);
  expect(got.transposed).toBe(steps.transposed);
  const e = got.evbmf!;
  const w = steps.evbmf;
  expect([e.L, e.M, e.eHub, e.pos, e.nfev]).toEqual([w.L, w.M, w.eH_ub, w.pos, w.nfev]);
  for (const [g, x, name] of [[e.alpha, w.alpha, 'alpha'], [e.tauubar, w.tauubar, 'tauubar'], [e.xubar, w.xubar, 'xubar']] as const) expectRelative(g, x, 1e-14, `${what} ${name}`);
  w.singular_values.forEach((s, i) => expectRelative(e.singularValues[i]!, s, 1e-9, `${what} s[${i}]`));
  expectRelative(e.lowerBound, w.lower_bound, 1e-9, `${what} lower bound`);
  expectRelative(e.upperBound, w.upper_bound, 1e-9, `${what} upper bound`);
  expectRelative(e.sigma2, w.sigma2, 1e-8, `${what} sigma2`);
  expectRelative(e.threshold, w.threshold, 1e-8, `${what} threshold`);
  w.d.forEach((d, i) => expectRelative(e.d[i]!, d, 1e-8, `${what} d[${i}]`));
}

function expectLayers(got: LayerMetrics[], want: OracleLayer[]): void {
  expect(got.map((l) => l.name)).toEqual(want.map((l) => l.name));
  got.forEach((l, i) => {
    const w = want[i]!;
    expect(l.shape).toEqual(w.shape);
    expect(l.depthwiseCopyOfNext).toBe(w.depthwise_copy_of_next);
    const f64 = want.slice(i).find((x) => x.float64_variant)!.float64_variant!;
    expectMode(l.input, f64.input_mode, `${l.name} input mode`);
    expectMode(l.output, f64.output_mode, `${l.name} output mode`);
    // The as-code (float32 torch) values differ by precision only: same ranks, within 2e-3.
    expect(l.input.rank).toBe(w.input_mode.rank);
    expect(l.output.rank).toBe(w.output_mode.rank);
    expectRelative(l.kg, (w.input_mode.KG + w.output_mode.KG) / 2, 2e-3, `${l.name} as-code KG`);
  });
}

describe.skipIf(!hasShared)('knowledge gain and mapping condition (kg-mc-*.json)', () => {
  for (const [file, architecture] of Object.entries(ORACLES)) {
    test(`${file}: every conv layer of the converted published model`, async () => {
      const oracle = load(file);
      const source = shared('reference', 'deep', oracle.weights);
      const model = parseModelFile(await convertReferenceFile(source, { architecture }), source);
      const result = modelKnowledgeGain(model, source);
      expectLayers(result.layers, oracle.layers);
      const a = result.averages;
      expect(a.layers).toBe(oracle.averages.n_layers_averaged);
      const meanOf = (key: string) => oracle.averages[Object.keys(oracle.averages).find((k) => k.startsWith(key))!] as number | null;
      // The oracle's averages are of the float32 run: ranks agree exactly, values to the precision gap.
      expectRelative(a.rankInput, meanOf('mean_rank_input_mode')!, 1e-12, 'mean input rank');
      expectRelative(a.rankOutput, meanOf('mean_rank_output_mode')!, 1e-12, 'mean output rank');
      expectRelative(a.kg, meanOf('mean_KG_layer')!, 2e-3, 'mean KG');
      expectRelative(a.mc, meanOf('mean_MC_layer')!, 2e-3, 'mean MC');
      const excluded = meanOf('mean_KG_layer_excluding');
      if (excluded === null) expect(a.kgNonZeroRank).toBeNull();
      else expectRelative(a.kgNonZeroRank!, excluded, 2e-3, 'mean KG without zero-rank layers');
    });
  }

  test('focuspath oracle: averages of the float64 layers equal the means the oracle lists for its layers', async () => {
    const oracle = load('kg-mc-darts-focuspath.json');
    const source = shared('reference', 'deep', oracle.weights);
    const result = modelKnowledgeGain(parseModelFile(await convertReferenceFile(source, { architecture: 'darts-fqa' }), source), source);
    const f64 = oracle.layers.map((l) => (l.float64_variant!.input_mode.KG + l.float64_variant!.output_mode.KG) / 2);
    expectRelative(result.averages.kg, f64.reduce((s, v) => s + v, 0) / f64.length, 1e-6, 'mean KG (float64)');
  });

  describe('synthetic cases', () => {
    const oracle = hasShared ? load('kg-mc-darts-focuspath.json') : null;
    for (const c of oracle?.synthetic ?? []) {
      test(c.name, () => {
        const weights: ConvWeight[] = c.layers.map((l) => {
          const input = c.inputs[l.name]!;
          return { name: l.name, shape: l.shape as ConvWeight['shape'], data: Float32Array.from(input.data) };
        });
        expectLayers(knowledgeGain(weights), c.layers);
      });
    }
  });

  test('each point the bounded search evaluates is the one scipy evaluated (stem output mode)', () => {
    const oracle = load('kg-mc-darts-focuspath.json');
    const layer = oracle.layers[0]!;
    const want = layer.float64_variant!.output_mode.steps!.evbmf;
    expect(layer.name).toBe('stem.0.weight');
    // Replays the search on the oracle's own objective values: the x sequence must be scipy's.
    const seen: number[] = [];
    let call = 0;
    fminbound((x) => {
      seen.push(x);
      return want.objective_calls[call++]![1];
    }, want.lower_bound, want.upper_bound);
    expect(seen.length).toBe(want.nfev);
    seen.forEach((x, i) => expectRelative(x, want.objective_calls[i]![0], 1e-12, `evaluation ${i}`));
  });
});

describe('EVBMF and KG/MC on constructed inputs', () => {
  test('fminbound finds a bounded minimum to its absolute tolerance', () => {
    const r = fminbound((x) => (x - 2) ** 2, 0, 5);
    expect(Math.abs(r.x - 2)).toBeLessThan(1e-5);
    expect(r.exhausted).toBe(false);
    expect(() => fminbound((x) => x, 1, 0)).toThrow(/lower bound 1 is above upper bound 0/);
  });

  test('unfoldings follow PyTorch permute/reshape order', () => {
    const w: ConvWeight = { name: 'w', shape: [2, 3, 1, 2], data: Array.from({ length: 12 }, (_, i) => i) };
    // W[o, i, 0, t] = (o*3 + i)*2 + t; input mode row i = [W[0,i,0,:], W[1,i,0,:]].
    expect([...inputUnfolding(w).data]).toEqual([0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11]);
    expect([...outputUnfolding(w).data]).toEqual([...Array(12).keys()]);
    expect([...transpose(outputUnfolding(w)).data].slice(0, 4)).toEqual([0, 6, 1, 7]);
  });

  test('an all-zero weight has rank, KG and MC 0; a depth-wise weight with no conv after it gets zeros', () => {
    const zero: ConvWeight = { name: 'zero', shape: [4, 3, 3, 3], data: new Float32Array(108) };
    const dw: ConvWeight = { name: 'dw', shape: [4, 1, 3, 3], data: new Float32Array(36).fill(1) };
    const layers = knowledgeGain([zero, dw]);
    expect(layers.map((l) => [l.kg, l.mc, l.input.rank, l.output.rank])).toEqual([[0, 0, 0, 0], [0, 0, 0, 0]]);
    expect(knowledgeGainAverages(layers).kgNonZeroRank).toBeNull();
    expect(evbmf({ rows: 2, cols: 2, data: new Float64Array(4) }).pos).toBe(0);
  });

  test('rejects a weight whose values do not fit its shape', () => {
    expect(() => knowledgeGain([{ name: 'w', shape: [2, 2, 1, 1], data: [1, 2, 3] }])).toThrow(/w: shape \[2, 2, 1, 1\] does not match its 3 values/);
  });
});
