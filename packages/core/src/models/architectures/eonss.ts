/**
 * EONSS (Wang et al.): four 5x5/3x3/1x1 convs with GDN and max pooling, then two 1x1 "fc" convs.
 * Three published definitions (spec section 6): `bioimage` (FocusLiteNN's, 235 px, conv4 3x3, 2x2
 * pools: 123,401 parameters), `focuspath` (235 px, conv4 1x1, pools 4/2/3) and `64px` (64 px, conv4
 * 1x1, 2x2 pools), both 107,017. Configurations with 2x2 pools only also run natively.
 */
import { modelLimits, type EonssLayerSpec, type EonssSpec } from '@fqa/native';
import { GraphBuilder, type Graph } from '../graph.js';
import { registerArchitecture } from '../registry.js';

export interface EonssLayerHeader {
  /** Name of the conv layer; its tensors are `${name}.weight` and `${name}.bias`. */
  name: string;
  /** GDN after the conv (tensors `${gdn}.gamma`, `${gdn}.beta`), or null. */
  gdn: string | null;
  stride: number;
  pad: number;
  maxPool: boolean;
  /** Max-pool kernel (= its stride) when maxPool; absent means 2. */
  pool?: number;
}

export interface EonssLayer extends EonssLayerHeader {
  inChannels: number;
  outChannels: number;
  kernel: number;
}

export interface EonssConfig {
  patchSize: number;
  layers: EonssLayer[];
}

/** Max-pool kernels a header may give (the native kernel pools 2x2 only; other backends take any). */
const POOL_RANGE: [number, number] = [1, 15];

/** EONSS as published by FocusLiteNN: conv1-3 5x5 s2 p2, conv4 3x3 s1 p0, each with GDN and 2x2 max pool. */
export const EONSS_LAYERS: EonssLayerHeader[] = [
  { name: 'conv1', gdn: 'gdn1', stride: 2, pad: 2, maxPool: true },
  { name: 'conv2', gdn: 'gdn2', stride: 2, pad: 2, maxPool: true },
  { name: 'conv3', gdn: 'gdn3', stride: 2, pad: 2, maxPool: true },
  { name: 'conv4', gdn: 'gdn4', stride: 1, pad: 0, maxPool: true },
  { name: 'st2_fc1', gdn: 'st2_gdn1', stride: 1, pad: 0, maxPool: false },
  { name: 'st2_fc2', gdn: null, stride: 1, pad: 0, maxPool: false },
];

const WIDTHS = [3, 8, 16, 32, 64, 256, 1];

function definition(patchSize: number, conv4Kernel: number, pools: (number | null)[]): EonssConfig {
  return {
    patchSize,
    layers: EONSS_LAYERS.map((L, i) => {
      const pool = pools[i] ?? null;
      const kernel = i < 3 ? 5 : i === 3 ? conv4Kernel : 1;
      return { ...L, maxPool: pool !== null, ...(pool !== null && pool !== 2 ? { pool } : {}), inChannels: WIDTHS[i]!, outChannels: WIDTHS[i + 1]!, kernel };
    }),
  };
}

const variants: Record<string, EonssConfig> = {
  bioimage: definition(235, 3, [2, 2, 2, 2]),
  focuspath: definition(235, 1, [4, 2, 3]),
  // max_pool2d(1) after conv4 is the identity.
  '64px': definition(64, 1, [2, 2, 2]),
};

const poolOf = (L: EonssLayerHeader) => (L.maxPool ? (L.pool ?? 2) : 1);
const isIntegerIn = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function eonss(c: EonssConfig): Graph {
  const g = new GraphBuilder();
  let x = 'input';
  for (const L of c.layers) {
    x = g.conv(x, L.name, L.outChannels, L.kernel, { stride: L.stride, pad: L.pad, bias: true });
    if (L.gdn !== null) x = g.gdn(x, L.gdn);
    if (poolOf(L) > 1) x = g.maxPool(x, poolOf(L));
  }
  return g.finish(x);
}

export const eonssArchitecture = registerArchitecture<EonssConfig>({
  name: 'eonss',
  title: 'EONSS',
  variants,
  configFromHeader(header, fail) {
    const layers = header.eonss?.layers;
    // The native kernel's limits (model.h), the one place they are written.
    const limits = modelLimits();
    const N = limits.eonssLayers;
    if (!Array.isArray(layers) || layers.length !== N) return fail(`eonss model needs ${N} layers in "eonss.layers"`);
    let inChannels = 3;
    const out = layers.map((L): EonssLayer => {
      const ok = typeof L === 'object' && L !== null && typeof L.name === 'string' && (L.gdn === null || typeof L.gdn === 'string') && typeof L.maxPool === 'boolean' &&
        isIntegerIn(L.stride, ...limits.eonssStride) && isIntegerIn(L.pad, 0, limits.eonssKernel[1] - 1) && (L.pool === undefined || isIntegerIn(L.pool, ...POOL_RANGE));
      if (!ok) fail(`bad eonss layer entry ${JSON.stringify(L)}`);
      const shape = header.tensors.find((t) => t?.name === `${L.name}.weight`)?.shape;
      if (!Array.isArray(shape) || shape.length !== 4 || shape[2] !== shape[3]) return fail(`${L.name}.weight must be [out, in, k, k]`);
      const [o, i, k] = shape as number[];
      if (i !== inChannels) fail(`${L.name}.weight takes ${String(i)} input channels, the layer before gives ${inChannels}`);
      if (!isIntegerIn(o, ...limits.eonssChannels) || !isIntegerIn(k, ...limits.eonssKernel)) fail(`${L.name}.weight has shape [${shape.join(', ')}] outside the limits (channels ${limits.eonssChannels.join('..')}, kernel ${limits.eonssKernel.join('..')})`);
      inChannels = o!;
      return { ...L, inChannels: i!, outChannels: o!, kernel: k! };
    });
    if (inChannels !== 1) fail(`the last eonss layer must give 1 channel, gives ${inChannels}`);
    return { patchSize: header.patchSize, layers: out };
  },
  headerFields: (c) => ({ eonss: { layers: c.layers.map(({ inChannels: _i, outChannels: _o, kernel: _k, ...L }) => L) } }),
  graph: eonss,
  patchSizes: (c) => [c.patchSize],
  defaultStride: (patch) => (patch <= 64 ? 32 : 128),
  backends: (c) => (c.layers.every((L) => poolOf(L) <= 2) ? ['native', 'onnx', 'tfjs'] : ['onnx', 'tfjs']),
  trainers: ['torch', 'tfjs'],
  nativeSpec: (c, tensor, header): EonssSpec => ({
    architecture: 'eonss',
    patchSize: header.patchSize,
    mean: header.normalization.mean,
    std: header.normalization.std,
    layers: c.layers.map((L): EonssLayerSpec => ({
      inChannels: L.inChannels,
      outChannels: L.outChannels,
      kernel: L.kernel,
      stride: L.stride,
      pad: L.pad,
      gdn: L.gdn !== null,
      maxPool: poolOf(L) === 2,
      weight: tensor(`${L.name}.weight`),
      bias: tensor(`${L.name}.bias`),
      ...(L.gdn !== null ? { gdnGamma: tensor(`${L.gdn}.gamma`), gdnBeta: tensor(`${L.gdn}.beta`) } : {}),
    })),
  }),
  paper: [{ label: 'EONSS', variant: '64px', layers: 4, params: 0.11e6, flops: 1.79e6, latencyMs: 1.06, hours: [13.53, 3.3, 1.15, 0.68] }],
});
