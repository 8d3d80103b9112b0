/**
 * Trains any registry architecture from its layer graph with tfjs: the forward pass is the one
 * inference runs (graphForward), with BatchNorm on batch statistics and running statistics updated
 * as PyTorch does (momentum 0.1, unbiased batch variance). Adam (PyTorch's update) with StepLR, the
 * paper's PLCC loss by default. Every epoch ends with a checkpoint when asked; `resume` continues
 * from it and reaches the same weights as an uninterrupted run (each epoch's batch order and crops
 * come from its own seeded generator, and the checkpoint stores the Adam moments bit for bit).
 * The result is the model file's tensors, so a trained model scans and scores like any other.
 */
import { existsSync } from 'node:fs';
import type * as TF from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';
import { dilatedFilter, graphForward, tensorFromTf, tensorToTf, tfShape } from '../models/backends/tfjs.js';
import type { Graph, GraphNode } from '../models/graph.js';
import { getArchitecture, variantConfig } from '../models/registry.js';
import { expectInteger, expectOneOf } from '../validate.js';
import { patchSetSource, type BatchSource } from './batches.js';
import { checkCheckpointRun, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { initialGraphWeights } from './graph-init.js';
import { seededRandom } from './random.js';
import type { PatchSet } from './synthetic.js';
import { conv2dIm2col } from './im2col-conv.js';
import { batchNormTraining, type BatchMoments } from './training-ops.js';
import { loadTf, patchesToTensor } from './tfjs-models.js';
import { tfLoss } from './tfjs-trainer.js';
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
  /** The tfjs package and backend that ran. */
  backend: string;
  /** Epochs taken from a checkpoint (0 for a fresh run). */
  resumedEpochs: number;
}

const BN_MOMENTUM = 0.1;
const BN_EPSILON = 1e-5;
const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

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
  if (o.resume && !o.checkpoint) throw new UsageError('resume needs a checkpoint file');
  const run = { architecture: definition.name, variant, config: o.config ?? null, patchSize: source.size, samples: source.count, loss, batchSize, stepSize, gamma, learningRate: baseRate, seed, mean: [...mean], std: [...std] };

  const { tf, package: pkg, backend } = await loadTf();
  const parameters = new Map<string, TF.Variable>();
  const buffers = new Map<string, TF.Tensor>();
  const moments = new Map<string, { m: TF.Variable; v: TF.Variable }>();
  let values = initialGraphWeights(graph, seed);
  let epoch0 = 0;
  let step = 0;
  let secondsBefore = 0;
  let samples = 0;
  const history: TrainResult['history'] = [];
  let saved: Map<string, Float32Array> | undefined;
  if (o.resume && existsSync(o.checkpoint!)) {
    const c = await readCheckpoint(o.checkpoint!);
    checkCheckpointRun(o.checkpoint!, c.header.run, run);
    ({ epoch: epoch0, step, seconds: secondsBefore, samples } = c.header);
    history.push(...c.header.history);
    saved = c.arrays;
  }
  const fromCheckpoint = (name: string, length: number): Float32Array => {
    const a = saved!.get(name);
    if (!a || a.length !== length) throw new UsageError(`${o.checkpoint}: the checkpoint has no ${length} values for '${name}'; delete it to start over`);
    return a;
  };
  for (const t of graph.tensors) {
    const shape = tfShape(graph, t.name, t.shape);
    const length = shape.reduce((a, b) => a * b, 1);
    // Checkpoints hold tfjs layouts; fresh weights come in the model file's layouts.
    const init = saved ? fromCheckpoint(t.name, length) : tensorToTf(graph, t.name, values.get(t.name)!, t.shape);
    if (t.kind === 'buffer') {
      buffers.set(t.name, tf.tensor(init, shape));
      continue;
    }
    // tidy frees the initial-value tensors (the variables keep their own reference to the data).
    parameters.set(t.name, tf.tidy(() => tf.variable(tf.tensor(init, shape))));
    moments.set(t.name, tf.tidy(() => ({
      m: tf.variable(saved ? tf.tensor(fromCheckpoint(`${t.name}#adam.m`, length), shape) : tf.zeros(shape), false),
      v: tf.variable(saved ? tf.tensor(fromCheckpoint(`${t.name}#adam.v`, length), shape) : tf.zeros(shape), false),
    })));
  }
  values = new Map();
  const weight = (name: string) => (parameters.get(name) ?? buffers.get(name))!;
  // The pure-JS backend's own conv gradients are element loops: plain convs run as matMuls there,
  // depth-wise and dilated ones as inference runs them.
  const pureJs = tf.getBackend() === 'cpu';
  const pureJsConv = (xi: TF.Tensor4D, filter: TF.Tensor4D, n: Extract<GraphNode, { op: 'conv' }>): TF.Tensor4D => {
    if (n.groups === 1 && n.dilation === 1) return conv2dIm2col(tf, xi, filter, n.stride, n.pad);
    const xp = n.pad > 0 ? tf.pad(xi, [[0, 0], [n.pad, n.pad], [n.pad, n.pad], [0, 0]]) : xi;
    const f = n.dilation > 1 ? dilatedFilter(tf, filter, n.dilation) : filter;
    return n.groups > 1 ? tf.depthwiseConv2d(xp, f, n.stride, 'valid') : tf.conv2d(xp, f, n.stride, 'valid');
  };
  const gdns = graph.nodes.filter((n) => n.op === 'gdn').map((n) => (n as { prefix: string }).prefix);
  const variables = [...parameters.values()];
  const names = [...parameters.keys()];

  const trainStep = (pixels: Uint8Array, labels: Float32Array, count: number, rate: number): number => {
    const batchMoments: (BatchMoments & { prefix: string })[] = [];
    const x = patchesToTensor(tf, pixels, count, source.size, mean, std);
    const y = tf.tensor1d(labels);
    const { value, grads } = tf.variableGrads(() => {
      const scores = graphForward(tf, graph, weight, x, {
        conv: pureJs ? pureJsConv : undefined,
        batchNorm: (xi, prefix) => batchNormTraining(tf, xi, weight(`${prefix}.weight`) as TF.Tensor1D, weight(`${prefix}.bias`) as TF.Tensor1D, BN_EPSILON, (m) => batchMoments.push({ prefix, ...m })),
      });
      return tfLoss(tf, loss, scores, y);
    }, variables);
    step++;
    const correction1 = 1 - ADAM.beta1 ** step;
    const correction2 = 1 - ADAM.beta2 ** step;
    tf.tidy(() => {
      names.forEach((name, i) => {
        const g = grads[variables[i]!.name]!;
        const { m, v } = moments.get(name)!;
        m.assign(tf.add(tf.mul(m, ADAM.beta1), tf.mul(g, 1 - ADAM.beta1)));
        v.assign(tf.add(tf.mul(v, ADAM.beta2), tf.mul(tf.square(g), 1 - ADAM.beta2)));
        // PyTorch's Adam: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps).
        const denominator = tf.add(tf.div(tf.sqrt(v), Math.sqrt(correction2)), ADAM.epsilon);
        parameters.get(name)!.assign(tf.sub(parameters.get(name)!, tf.mul(tf.div(m, denominator), rate / correction1)));
      });
      // GDN stays a valid normalization (EONSS's projection after each step).
      for (const prefix of gdns) {
        parameters.get(`${prefix}.beta`)!.assign(tf.maximum(parameters.get(`${prefix}.beta`)!, 1e-6));
        parameters.get(`${prefix}.gamma`)!.assign(tf.maximum(parameters.get(`${prefix}.gamma`)!, 0));
      }
    });
    // Running statistics as PyTorch: (1 - momentum) x old + momentum x batch, the variance unbiased.
    for (const b of batchMoments) {
      for (const [suffix, batch, scale] of [['running_mean', b.mean, 1], ['running_var', b.variance, b.count / Math.max(1, b.count - 1)]] as const) {
        const name = `${b.prefix}.${suffix}`;
        const old = buffers.get(name)!;
        const previous = old.dataSync() as Float32Array;
        buffers.set(name, tf.tensor1d(Float32Array.from(previous, (v, i) => (1 - BN_MOMENTUM) * v + BN_MOMENTUM * scale * batch[i]!)));
        old.dispose();
      }
    }
    const result = value.dataSync()[0]!;
    tf.dispose([x, y, value, ...Object.values(grads)]);
    return result;
  };

  const snapshot = (withAdam: boolean): Map<string, Float32Array> => {
    const out = new Map<string, Float32Array>();
    for (const t of graph.tensors) {
      out.set(t.name, Float32Array.from(weight(t.name).dataSync() as Float32Array));
      if (withAdam && t.kind === 'parameter') {
        const { m, v } = moments.get(t.name)!;
        out.set(`${t.name}#adam.m`, Float32Array.from(m.dataSync() as Float32Array));
        out.set(`${t.name}#adam.v`, Float32Array.from(v.dataSync() as Float32Array));
      }
    }
    return out;
  };

  const start = performance.now();
  const batchesPerEpoch = Math.max(1, Math.floor(source.count / batchSize));
  try {
    for (let epoch = epoch0 + 1; epoch <= epochs; epoch++) {
      const rate = baseRate * gamma ** Math.floor((epoch - 1) / stepSize);
      let total = 0;
      let batches = 0;
      for await (const batch of source.epoch(epochRandom(seed, epoch), batchSize)) {
        total += trainStep(batch.pixels, batch.labels, batch.count, rate);
        batches++;
        samples += batch.count;
        o.onBatch?.(batches, batchesPerEpoch);
        // A step holds the thread for seconds on the pure-JS backend: let timers and I/O run between steps.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const record = { epoch, loss: total / Math.max(1, batches), learningRate: rate, seconds: secondsBefore + (performance.now() - start) / 1000 };
      history.push(record);
      if (o.checkpoint) await writeCheckpoint(o.checkpoint, { run, epoch, step, seconds: record.seconds, samples, history }, snapshot(true));
      o.onEpoch?.(record);
      if (o.signal?.aborted && epoch < epochs) throw Object.assign(new Error(`training stopped after epoch ${epoch} (checkpoint ${o.checkpoint ?? 'not written'})`), { name: 'AbortError' });
    }
    const trained = snapshot(false);
    const tensors = new Map(graph.tensors.map((t) => [t.name, tensorFromTf(graph, t.name, trained.get(t.name)!, t.shape)]));
    return {
      architecture: definition.name, variant, config, patchSize: source.size, graph, tensors, mean, std, history,
      seconds: secondsBefore + (performance.now() - start) / 1000, samples, backend: `${pkg} (${backend})`, resumedEpochs: epoch0,
    };
  } finally {
    tf.dispose([...parameters.values(), ...buffers.values(), ...[...moments.values()].flatMap((a) => [a.m, a.v])]);
  }
}
