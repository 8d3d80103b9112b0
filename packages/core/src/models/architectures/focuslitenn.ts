/**
 * FocusLiteNN (Wang et al., MICCAI 2020): one k-kernel conv, a global min pool, and a 1x1 conv
 * mixing the k minima (none when k = 1). Runs natively (the C++ sweep shares the conv map between
 * overlapping patches), and through ONNX Runtime and tfjs like every architecture.
 */
import { modelLimits, type FocusLiteNNSpec } from '@fqa/native';
import { GraphBuilder, type Graph } from '../graph.js';
import { registerArchitecture, type PaperRow } from '../registry.js';

export interface FocusLiteNNGeometry {
  kernels: number;
  convKernel: number;
  convStride: number;
  convPad: number;
}

/** The FocusLiteNN conv geometries of the paper. */
export const FOCUSLITENN_VARIANTS = {
  235: { convKernel: 7, convStride: 5, convPad: 1, stride: 128 },
  64: { convKernel: 7, convStride: 1, convPad: 0, stride: 32 },
} as const;

const isIntegerIn = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function focusLiteNN(c: FocusLiteNNGeometry): Graph {
  const g = new GraphBuilder();
  const x = g.globalMin(g.conv('input', 'conv', c.kernels, c.convKernel, { stride: c.convStride, pad: c.convPad, bias: true }));
  return g.finish(c.kernels > 1 ? g.conv(x, 'fc', 1, 1, { bias: true }) : x);
}

const variants: Record<string, FocusLiteNNGeometry> = {};
const paper: PaperRow[] = [];
/** Table 3/4: kernels, parameters, FLOPs at 64 px, latency (ms), hours at 64/128/235/300 px. */
const table: [number, number, number, number, [number, number, number, number]][] = [
  [1, 0.15e3, 0.99e6, 0.25, [3.12, 0.58, 0.18, 0.1]],
  [2, 0.3e3, 1.99e6, 0.31, [3.9, 0.72, 0.21, 0.12]],
  [10, 1.49e3, 9.92e6, 0.32, [4.08, 0.85, 0.3, 0.15]],
];
for (const [k] of table) {
  for (const patch of [235, 64] as const) {
    const { convKernel, convStride, convPad } = FOCUSLITENN_VARIANTS[patch];
    variants[`${k}-kernel-${patch}`] = { kernels: k, convKernel, convStride, convPad };
  }
}
// Table 3's FLOPs (0.99M for one kernel at 64 px) are those of the stride-1 (64 px) geometry.
for (const [k, params, flops, latencyMs, hours] of table) paper.push({ label: `FocusLiteNN-${k}`, variant: `${k}-kernel-64`, layers: 1, params, flops, latencyMs, hours });

export const focuslitenn = registerArchitecture<FocusLiteNNGeometry>({
  name: 'focuslitenn',
  title: 'FocusLiteNN',
  variants,
  configFromHeader(header, fail) {
    const g = header.focuslitenn;
    if (!g) return fail('focuslitenn model without a "focuslitenn" geometry section');
    // The native kernel's limits (model.h), the one place they are written.
    const { focusLiteNNKernels: K, focusLiteNNConvKernel: C, focusLiteNNConvStride: S } = modelLimits();
    if (!isIntegerIn(g.kernels, ...K)) fail(`focuslitenn.kernels must be an integer ${K.join('..')}, got ${JSON.stringify(g.kernels)}`);
    if (!isIntegerIn(g.convKernel, ...C)) fail(`focuslitenn.convKernel must be an integer ${C.join('..')}`);
    if (!isIntegerIn(g.convStride, ...S)) fail(`focuslitenn.convStride must be an integer ${S.join('..')}`);
    if (!isIntegerIn(g.convPad, 0, g.convKernel - 1)) fail(`focuslitenn.convPad must be an integer 0..kernel-1`);
    return { kernels: g.kernels, convKernel: g.convKernel, convStride: g.convStride, convPad: g.convPad };
  },
  headerFields: (config) => ({ focuslitenn: config }),
  graph: focusLiteNN,
  // The window is free (the min pool is global); the two published geometries fix their patch.
  patchSizes: (c) => (c.convStride === 1 ? [64] : [235]),
  defaultStride: (patch) => (patch <= 64 ? 32 : 128),
  backends: () => ['native', 'onnx', 'tfjs'],
  trainers: ['native', 'tfjs'],
  nativeSpec: (c, tensor, header): FocusLiteNNSpec => ({
    architecture: 'focuslitenn',
    patchSize: header.patchSize,
    mean: header.normalization.mean,
    std: header.normalization.std,
    ...c,
    convWeight: tensor('conv.weight'),
    convBias: tensor('conv.bias'),
    ...(c.kernels > 1 ? { fcWeight: tensor('fc.weight'), fcBias: tensor('fc.bias')[0]! } : {}),
  }),
  paper,
});
