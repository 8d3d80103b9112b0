/**
 * The DARTS-FQA evaluation network, dartsfqa.Network(C=20, layers=3) (spec section 2). Every cell is
 * a reduction cell (hard-coded upstream), so only a genotype's `reduce` ops are built. Besides the
 * three published genotypes, a model file may carry its own (`genotype` in the header, as
 * `fqa-scan search` writes it), built from any op of the search space.
 */
import { GraphBuilder, type Graph } from '../graph.js';
import { registerArchitecture, variantFromHeader } from '../registry.js';

/** The DARTS search space's operations (genotypes.py PRIMITIVES without 'none', which no genotype holds). */
export const DARTS_OPS = ['max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5'] as const;
export type DartsOp = (typeof DARTS_OPS)[number];

export interface Genotype {
  /** (op, input state) pairs, two per step, in genotype order (state_dict `_ops.j`). */
  reduce: [DartsOp, number][];
  /** The states concatenated into the cell output (2 = the first step's). */
  concat: number[];
}

/** Steps (intermediate nodes) a genotype may have: the paper searches 2, DARTS 4. */
export const MAX_GENOTYPE_STEPS = 8;

/**
 * A genotype from untrusted JSON ({ reduce: [[op, input], ...], concat: [...] }), or `fail` with
 * the first thing wrong: step j's two inputs are earlier states (0..j+1), concat names steps.
 */
export function parseGenotype(raw: unknown, fail: (message: string) => never): Genotype {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('a genotype must be an object { reduce, concat }');
  const { reduce, concat } = raw as { reduce?: unknown; concat?: unknown };
  if (!Array.isArray(reduce) || reduce.length === 0 || reduce.length % 2 !== 0 || reduce.length > 2 * MAX_GENOTYPE_STEPS) {
    fail(`genotype.reduce must be a list of 2 to ${2 * MAX_GENOTYPE_STEPS} [op, input] pairs, two per step`);
  }
  const steps = reduce.length / 2;
  const pairs = reduce.map((pair: unknown, j): [DartsOp, number] => {
    if (!Array.isArray(pair) || pair.length !== 2) fail(`genotype.reduce[${j}] must be an [op, input] pair`);
    const [op, input] = pair as unknown[];
    if (!(DARTS_OPS as readonly unknown[]).includes(op)) fail(`genotype.reduce[${j}]: unknown op ${JSON.stringify(op)?.slice(0, 40)} (expected ${DARTS_OPS.join(', ')})`);
    const step = Math.floor(j / 2);
    if (!Number.isInteger(input) || (input as number) < 0 || (input as number) > step + 1) fail(`genotype.reduce[${j}]: input must be a state 0..${step + 1}, got ${JSON.stringify(input)?.slice(0, 40)}`);
    return [op as DartsOp, input as number];
  });
  if (!Array.isArray(concat) || concat.length === 0 || concat.length > steps) fail(`genotype.concat must list 1 to ${steps} states`);
  for (const j of concat as unknown[]) {
    if (!Number.isInteger(j) || (j as number) < 2 || (j as number) > steps + 1) fail(`genotype.concat: ${JSON.stringify(j)?.slice(0, 40)} is not a step's state (2..${steps + 1})`);
  }
  if (new Set(concat).size !== concat.length) fail('genotype.concat lists a state twice');
  return { reduce: pairs, concat: [...(concat as number[])] };
}

/** DARTS-FQA genotypes.py, the searched reduction cells. */
const genotypes: Record<string, Genotype> = {
  focuspath: { reduce: [['max_pool_3x3', 0], ['max_pool_3x3', 1], ['max_pool_3x3', 1], ['skip_connect', 2]], concat: [3] },
  bioimage: { reduce: [['max_pool_3x3', 1], ['skip_connect', 0], ['max_pool_3x3', 1], ['max_pool_3x3', 2]], concat: [3] },
  deepfocus: { reduce: [['max_pool_3x3', 1], ['sep_conv_3x3', 0], ['sep_conv_5x5', 2], ['sep_conv_5x5', 1]], concat: [2, 3] },
};

const STEM_CHANNELS = 60; // 3 x C, C = 20
const CELL_CHANNELS = [40, 80, 160];

/** ReLU, then two 1x1 stride-2 convs on the even and odd pixel grids, concatenated, then BN. */
function factorizedReduce(g: GraphBuilder, x: string, name: string, out: number): string {
  const r = g.relu(x);
  const a = g.conv(r, `${name}.conv_1`, out / 2, 1, { stride: 2 });
  const b = g.conv(g.shift(r), `${name}.conv_2`, out / 2, 1, { stride: 2 });
  return g.batchNorm(g.concat([a, b]), `${name}.bn`);
}

function sepConv(g: GraphBuilder, x: string, name: string, kernel: number, stride: number): string {
  const C = g.channels(x);
  const pad = Math.floor(kernel / 2);
  let y = g.conv(g.relu(x), `${name}.op.1`, C, kernel, { stride, pad, groups: C });
  y = g.batchNorm(g.conv(y, `${name}.op.2`, C, 1), `${name}.op.3`);
  y = g.conv(g.relu(y), `${name}.op.5`, C, kernel, { pad, groups: C });
  return g.batchNorm(g.conv(y, `${name}.op.6`, C, 1), `${name}.op.7`);
}

/** DilConv: ReLU, depth-wise k x k with dilation 2, point-wise 1x1, BN. */
function dilConv(g: GraphBuilder, x: string, name: string, kernel: number, stride: number): string {
  const C = g.channels(x);
  const y = g.conv(g.relu(x), `${name}.op.1`, C, kernel, { stride, pad: kernel - 1, dilation: 2, groups: C });
  return g.batchNorm(g.conv(y, `${name}.op.2`, C, 1), `${name}.op.3`);
}

function operation(g: GraphBuilder, op: DartsOp, x: string, name: string, stride: number): string {
  switch (op) {
    case 'max_pool_3x3':
      return g.maxPool(x, 3, stride, 1);
    case 'avg_pool_3x3':
      return g.avgPool(x, 3, stride, 1);
    case 'skip_connect':
      return stride === 1 ? x : factorizedReduce(g, x, name, g.channels(x));
    case 'sep_conv_3x3':
      return sepConv(g, x, name, 3, stride);
    case 'sep_conv_5x5':
      return sepConv(g, x, name, 5, stride);
    case 'dil_conv_3x3':
      return dilConv(g, x, name, 3, stride);
    case 'dil_conv_5x5':
      return dilConv(g, x, name, 5, stride);
  }
}

function dartsFqa(genotype: Genotype): Graph {
  const g = new GraphBuilder();
  const stem = g.batchNorm(g.conv('input', 'stem.0', STEM_CHANNELS, 3, { pad: 1 }), 'stem.1');
  let [s0, s1] = [stem, stem];
  CELL_CHANNELS.forEach((C, i) => {
    const p = `cells.${i}`;
    // The previous cell reduced, so s0 is at twice s1's resolution.
    const t0 = i === 0 ? g.batchNorm(g.conv(g.relu(s0), `${p}.preprocess0.op.1`, C, 1), `${p}.preprocess0.op.2`) : factorizedReduce(g, s0, `${p}.preprocess0`, C);
    const t1 = g.batchNorm(g.conv(g.relu(s1), `${p}.preprocess1.op.1`, C, 1), `${p}.preprocess1.op.2`);
    const states = [t0, t1];
    for (let step = 0; step < genotype.reduce.length / 2; step++) {
      const [a, b] = [2 * step, 2 * step + 1].map((j) => {
        const [op, index] = genotype.reduce[j]!;
        return operation(g, op, states[index]!, `${p}._ops.${j}`, index < 2 ? 2 : 1);
      });
      states.push(g.add(a!, b!));
    }
    [s0, s1] = [s1, g.concat(genotype.concat.map((j) => states[j]!))];
  });
  // Upstream: MaxPool2d(8, 8) on the 8x8 map of a 64 px input, i.e. a global max pool there. Written
  // as the global max so other patch sizes (Table 3/4 timings) run; at 64 px it is the same op.
  return g.finish(g.linear(g.globalMax(s1), 'classifier', 1));
}

export const dartsFqaArchitecture = registerArchitecture<Genotype>({
  name: 'darts-fqa',
  title: 'DARTS-FQA',
  variants: genotypes,
  configFromHeader: (header, fail) => (header.genotype === undefined ? variantFromHeader(genotypes, header, fail) : parseGenotype(header.genotype, (m) => fail(`header ${m}`))),
  headerFields: (config, variant) => (variant in genotypes ? { variant } : { genotype: config }),
  graph: dartsFqa,
  patchSizes: () => [64],
  defaultStride: () => 32,
  backends: () => ['onnx', 'tfjs'],
  trainers: ['torch', 'tfjs'],
  reference: {
    // The genotypes differ in which ops carry weights: FactorizedReduce (bioimage) and separable
    // convs (deepfocus) in cell 0; focuspath's cell 0 has only its preprocessing.
    variantOf: (shapes) => (shapes.has('cells.0._ops.1.op.1.weight') ? 'deepfocus' : shapes.has('cells.0._ops.1.conv_1.weight') ? 'bioimage' : 'focuspath'),
    normalization: { mean: [168.3571 / 255, 125.3874 / 255, 158.8208 / 255], std: [46.684 / 255, 52.881 / 255, 42.0803 / 255] },
    normalizationNote: 'DARTS-FQA test_model.py normalizes TCGA patches with the TCGA mean/std',
    license: 'as the source weights (mahdihosseini/DARTS-FQA)',
  },
  paper: [{ label: 'DARTS-FQA', variant: 'focuspath', layers: 3, params: 35.1e3, flops: 78.8e6, latencyMs: 3.47, hours: [44.1, 12.34, 7.15, 6.73] }],
});
