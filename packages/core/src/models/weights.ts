/**
 * Seeded weights for any graph: for benchmarks (timings do not depend on the values) and for
 * cross-backend tests of architectures without published weights. Convs and linear layers are
 * uniform in +-1/sqrt(fan-in) (PyTorch's default bound); BatchNorm statistics and GDN terms are
 * kept near their identities so deep stacks stay finite.
 */
import { encodeModelFile } from '../model-file.js';
import { seededRandom } from '../train/random.js';
import type { Graph } from './graph.js';
import { getArchitecture, variantConfig } from './registry.js';

export function randomWeights(graph: Graph, seed = 1): Map<string, Float32Array> {
  const random = seededRandom(seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const out = new Map<string, Float32Array>();
  for (const t of graph.tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const fill = (f: (i: number) => number) => out.set(t.name, Float32Array.from({ length: count }, (_, i) => f(i)));
    const suffix = t.name.slice(t.name.lastIndexOf('.') + 1);
    if (suffix === 'running_mean') fill(() => uniform(-0.1, 0.1));
    else if (suffix === 'running_var') fill(() => uniform(0.5, 1.5));
    else if (suffix === 'gamma') fill(() => uniform(0, 0.1));
    else if (suffix === 'beta') fill(() => uniform(0.5, 1.5));
    else if (t.shape.length === 1 && graph.nodes.some((n) => n.op === 'batchnorm' && t.name.startsWith(`${n.prefix}.`))) fill(() => (suffix === 'weight' ? uniform(0.5, 1.5) : uniform(-0.1, 0.1)));
    else {
      const fanIn = t.shape.length > 1 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : graph.tensors.find((w) => w.name === t.name.replace(/bias$/, 'weight'))!.shape.slice(1).reduce((a, b) => a * b, 1);
      const bound = 1 / Math.sqrt(fanIn);
      fill(() => uniform(-bound, bound));
    }
  }
  return out;
}

/** A model file of an architecture's variant with seeded random weights (benchmarks, backend tests). */
export function randomModelFile(architecture: string, variant?: string, seed = 1): Buffer {
  const definition = getArchitecture(architecture);
  const chosen = variantConfig(definition, variant);
  const graph = definition.graph(chosen.config);
  const weights = randomWeights(graph, seed);
  const patchSize = definition.patchSizes(chosen.config)[0]!;
  return encodeModelFile(
    {
      architecture: definition.name,
      name: `${definition.name}-${chosen.variant}-random`,
      patchSize,
      stride: definition.defaultStride(patchSize),
      normalization: { mean: [0, 0, 0], std: [1, 1, 1] },
      score: { scale: 'none (random weights)', threshold: null },
      micronsPerPixel: null,
      ...definition.headerFields(chosen.config, chosen.variant),
      provenance: { source: `seeded random weights (seed ${seed})`, license: null, createdBy: 'fqa randomModelFile', createdAt: new Date(0).toISOString() },
    },
    graph.tensors.map((t) => ({ name: t.name, shape: t.shape, data: weights.get(t.name)! })),
  );
}
