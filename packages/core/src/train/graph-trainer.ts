/**
 * Trains any registry architecture from its layer graph: the loop, data, schedule, checkpoints,
 * resume and history live here; the tensor work (forward, backward, BatchNorm, Adam) goes to a
 * training engine (engines/: libtorch through @fqa/torch, or tfjs). Adam is PyTorch's update with
 * StepLR, the paper's PLCC loss by default. Every epoch ends with a checkpoint when asked; `resume`
 * continues from it and reaches the same weights as an uninterrupted run (each epoch's batch order
 * and crops come from its own seeded generator, and the checkpoint stores the Adam moments bit for
 * bit). Checkpoints hold model-file layouts, so a run started on one engine resumes on the other.
 * The result is the model file's tensors, so a trained model scans and scores like any other.
 */
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { tensorFromTf } from '../models/backends/tfjs.js';
import type { Graph } from '../models/graph.js';
import { getArchitecture, variantConfig } from '../models/registry.js';
import { expectInteger, expectOneOf } from '../validate.js';
import { patchSetSource, type BatchSource } from './batches.js';
import { checkCheckpointRun, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { resolveEngine, type EngineName } from './engines/index.js';
import { initialGraphWeights } from './graph-init.js';
import { seededRandom } from './random.js';
import type { PatchSet } from './synthetic.js';
import type { CommonTrainOptions, TrainResult } from './trainer.js';

export interface ArchitectureTrainOptions extends CommonTrainOptions {
  /** A registry name (`fqa-scan models` lists them). */
  architecture: string;
  /** The architecture's variant (default its first; DARTS-FQA: the genotype). */
  variant?: string;
  /**
   * A configuration that is not one of the named variants (a searched DARTS genotype, say), trained
   * under the name `variant`; the model file records what the architecture's headerFields write for it.
   */
  config?: unknown;
  /** Checkpoint file written after every epoch. */
  checkpoint?: string;
  /** Continue from `checkpoint` when it exists (a checkpoint of other options is an error). */
  resume?: boolean;
  /** Stops after the current epoch's checkpoint (an AbortError). */
  signal?: AbortSignal;
  /** The training engine: auto (torch where built, else tfjs), torch or tfjs. */
  engine?: EngineName | 'auto';
  /** cpu (default) or cuda (the torch engine on a CUDA libtorch). */
  device?: 'cpu' | 'cuda';
}

export interface ArchitectureTrainResult extends Omit<TrainResult, 'spec'> {
  architecture: string;
  variant: string;
  patchSize: number;
  graph: Graph;
  /** The configuration trained (a named variant's, or the one given). */
  config: unknown;
  /** Every tensor of the model file (PyTorch layouts), in the graph's order. */
  tensors: Map<string, Float32Array>;
  mean: [number, number, number];
  std: [number, number, number];
  /** The engine that ran, e.g. 'torch: libtorch 1.13.1 (cpu, 1 thread)'. */
  backend: string;
  /** Epochs taken from a checkpoint (0 for a fresh run). */
  resumedEpochs: number;
}

/** Each epoch's own generator, so a resumed run draws the same batches without saving generator state. */
export function epochRandom(seed: number, epoch: number): () => number {
  return seededRandom((seed ^ Math.imul(epoch, 0x9e3779b1)) >>> 0);
}

export async function trainArchitecture(data: PatchSet | BatchSource, o: ArchitectureTrainOptions): Promise<ArchitectureTrainResult> {
  const definition = getArchitecture(o.architecture, 'arch');
  const { variant, config } = o.config === undefined ? variantConfig(definition, o.variant) : { variant: o.variant ?? 'custom', config: o.config };
  const graph = definition.graph(config);
  const source = 'patches' in data ? patchSetSource(data) : data;
  if (!definition.patchSizes(config).includes(source.size)) throw new UsageError(`${definition.name} ${variant} does not take ${source.size} px patches (it takes ${definition.patchSizes(config).join(' or ')} px)`);
  const loss = expectOneOf(o.loss ?? 'plcc', 'loss', ['plcc', 'mse', 'mae'] as const);
  const epochs = expectInteger(o.epochs ?? 120, 'epochs', 1, 100000);
  const batchSize = expectInteger(o.batchSize ?? 8, 'batchSize', 2, 100000);
  const stepSize = expectInteger(o.stepSize ?? 40, 'stepSize', 1, 100000);
  const gamma = o.gamma ?? 0.1;
  const baseRate = o.learningRate ?? 1e-3;
  const seed = expectInteger(o.seed ?? 1, 'seed', 0, 2 ** 31);
  const mean = o.mean ?? [0, 0, 0];
  const std = o.std ?? [1, 1, 1];
  const device = expectOneOf(o.device ?? 'cpu', 'device', ['cpu', 'cuda'] as const);
  if (o.resume && !o.checkpoint) throw new UsageError('resume needs a checkpoint file');
  const engine = await resolveEngine(expectOneOf(o.engine ?? 'auto', 'engine', ['auto', 'torch', 'tfjs'] as const));
  if (device === 'cuda' && engine.name !== 'torch') throw new UsageError('device cuda trains on the torch engine only');
  // The engine is not part of the run: a checkpoint resumes on either.
  const run = { architecture: definition.name, variant, config: o.config ?? null, patchSize: source.size, samples: source.count, loss, batchSize, stepSize, gamma, learningRate: baseRate, seed, mean: [...mean], std: [...std] };

  let tensors = initialGraphWeights(graph, seed);
  let moments: Map<string, { m: Float32Array; v: Float32Array }> | undefined;
  let epoch0 = 0;
  let step = 0;
  let secondsBefore = 0;
  let samples = 0;
  const history: TrainResult['history'] = [];
  if (o.resume && existsSync(o.checkpoint!)) {
    const c = await readCheckpoint(o.checkpoint!);
    checkCheckpointRun(o.checkpoint!, c.header.run, run);
    ({ epoch: epoch0, step, seconds: secondsBefore, samples } = c.header);
    history.push(...c.header.history);
    ({ tensors, moments } = checkpointTensors(o.checkpoint!, graph, c.arrays, c.header.version));
  }
  const session = await engine.open({ architecture: definition.name, graph, patchSize: source.size, tensors, moments, step, loss, mean, std, device });
  tensors = new Map();
  moments = undefined;

  const start = performance.now();
  const batchesPerEpoch = Math.max(1, Math.floor(source.count / batchSize));
  try {
    for (let epoch = epoch0 + 1; epoch <= epochs; epoch++) {
      const rate = baseRate * gamma ** Math.floor((epoch - 1) / stepSize);
      let total = 0;
      let batches = 0;
      for await (const batch of source.epoch(epochRandom(seed, epoch), batchSize)) {
        total += session.step(batch.pixels, batch.labels, batch.count, rate);
        step++;
        batches++;
        samples += batch.count;
        o.onBatch?.(batches, batchesPerEpoch);
        // A step holds the thread (seconds on pure-JS tfjs): let timers and I/O run between steps.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const record = { epoch, loss: total / Math.max(1, batches), learningRate: rate, seconds: secondsBefore + (performance.now() - start) / 1000 };
      history.push(record);
      if (o.checkpoint) await writeCheckpoint(o.checkpoint, { run, epoch, step, seconds: record.seconds, samples, history }, session.snapshot(true));
      o.onEpoch?.(record);
      if (o.signal?.aborted && epoch < epochs) throw Object.assign(new Error(`training stopped after epoch ${epoch} (checkpoint ${o.checkpoint ?? 'not written'})`), { name: 'AbortError' });
    }
    const trained = session.snapshot(false);
    return {
      architecture: definition.name, variant, config, patchSize: source.size, graph, tensors: new Map(graph.tensors.map((t) => [t.name, trained.get(t.name)!])), mean, std, history,
      seconds: secondsBefore + (performance.now() - start) / 1000, samples, backend: session.detail, resumedEpochs: epoch0,
    };
  } finally {
    session.dispose();
  }
}

/** A checkpoint's weights and Adam moments in model-file layouts (version 1 stored tfjs layouts). */
function checkpointTensors(file: string, graph: Graph, arrays: Map<string, Float32Array>, version: number) {
  const get = (name: string, shape: number[], key: string): Float32Array => {
    const length = shape.reduce((a, b) => a * b, 1);
    const a = arrays.get(key);
    if (!a || a.length !== length) throw new UsageError(`${file}: the checkpoint has no ${length} values for '${key}'; delete it to start over`);
    return version === 1 ? tensorFromTf(graph, name, a, shape) : a;
  };
  const tensors = new Map<string, Float32Array>();
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const t of graph.tensors) {
    tensors.set(t.name, get(t.name, t.shape, t.name));
    if (t.kind === 'parameter') moments.set(t.name, { m: get(t.name, t.shape, `${t.name}#adam.m`), v: get(t.name, t.shape, `${t.name}#adam.v`) });
  }
  return { tensors, moments };
}
