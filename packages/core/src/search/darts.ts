/**
 * First-order DARTS (Liu et al. 2019, train_search.py without --unrolled) over the DARTS-FQA search
 * space, with DARTS-FQA's settings as defaults: each step first moves the architecture weights alpha
 * on a batch of the validation half (Adam), then the network weights w on a batch of the training
 * half (SGD with momentum, weight decay and gradient-norm clipping), both on the PLCC loss. The
 * network runs on libtorch (autograd) where the torch engine is built, else on tfjs with the
 * hand-written gradients of cpu-ops.ts; one seed starts both from the same network.
 */
import type { BatchSource } from '../train/batches.js';
import { seededRandom } from '../train/random.js';
import { loadTf, patchesToTensor } from '../train/tfjs-models.js';
import { tfLoss } from '../train/tfjs-trainer.js';
import type { Genotype } from '../models/architectures/darts-fqa.js';
import { expectInteger, expectOneOf } from '../validate.js';
import { loadTorch } from '../train/engines/torch-engine.js';
import { UsageError } from '../errors.js';
import { deriveGenotype, PRIMITIVES, softmaxRows } from './genotype.js';
import { createSupernet, type SupernetShape } from './supernet.js';
import { ALPHAS, supernetGraph } from './supernet-graph.js';

/** The search's settings; defaults are DARTS-FQA's (train_search.py, search_demo.sh). */
export interface DartsSettings extends SupernetShape {
  epochs: number;
  batchSize: number;
  /** SGD on w (upstream 0.175, constant: its cosine schedule is commented out). */
  learningRate: number;
  momentum: number;
  weightDecay: number;
  /** Clip the global norm of w's gradient (upstream 5). */
  gradClip: number;
  /** Adam on alpha (3e-4, betas 0.5 / 0.999, L2 weight decay 1e-3). */
  archLearningRate: number;
  archWeightDecay: number;
  /** Share of the training set that trains w; the rest trains alpha (0.5). */
  trainPortion: number;
  patchSize: number;
  seed: number;
}

export const DARTS_FQA_SEARCH: DartsSettings = {
  epochs: 60, batchSize: 50, learningRate: 0.175, momentum: 0.9, weightDecay: 3e-4, gradClip: 5,
  archLearningRate: 3e-4, archWeightDecay: 1e-3, trainPortion: 0.5,
  channels: 8, layers: 3, steps: 2, multiplier: 1, patchSize: 64, seed: 1,
};

/** Settings with defaults filled in, each checked with the one message shape. */
export function resolveDartsSettings(o: Partial<DartsSettings>): DartsSettings {
  const s: DartsSettings = { ...DARTS_FQA_SEARCH };
  for (const key of Object.keys(DARTS_FQA_SEARCH) as (keyof DartsSettings)[]) if (o[key] !== undefined) s[key] = o[key]!;
  expectInteger(s.epochs, 'epochs', 1, 100_000);
  expectInteger(s.batchSize, 'batch', 2, 100_000);
  expectInteger(s.channels, 'channels', 2, 256);
  if (s.channels % 2 !== 0) throw new UsageError(`Expected an even number for channels but received ${s.channels} (FactorizedReduce halves it)`);
  expectInteger(s.layers, 'layers', 1, 6);
  expectInteger(s.steps, 'steps', 1, 8);
  expectInteger(s.multiplier, 'multiplier', 1, s.steps);
  expectInteger(s.seed, 'seed', 0, 2 ** 31);
  expectInteger(s.patchSize, 'patch', 2 ** s.layers, 1024);
  if (s.patchSize % 2 ** s.layers !== 0) throw new UsageError(`Expected a patch size divisible by ${2 ** s.layers} (one halving per cell) but received ${s.patchSize}`);
  for (const [name, v] of [['lr', s.learningRate], ['arch-lr', s.archLearningRate], ['grad-clip', s.gradClip]] as const) {
    if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new UsageError(`Expected a positive number for ${name} but received ${String(v)}`);
  }
  for (const [name, v] of [['momentum', s.momentum], ['weight-decay', s.weightDecay], ['arch-weight-decay', s.archWeightDecay]] as const) {
    if (!(typeof v === 'number' && v >= 0 && v < 1)) throw new UsageError(`Expected number between 0 and 1 for ${name} but received ${String(v)}`);
  }
  if (!(s.trainPortion > 0 && s.trainPortion < 1)) throw new UsageError(`Expected number between 0 and 1 (exclusive) for train-portion but received ${String(s.trainPortion)}`);
  return s;
}

export interface SearchEpoch {
  epoch: number;
  /** Mean PLCC loss of the w steps (training half) and of the alpha steps (validation half, before each update). */
  trainLoss: number;
  validLoss: number;
  seconds: number;
  /** softmax(alpha) [edge][op] after the epoch. */
  weights: number[][];
  genotype: Genotype;
}

export interface DartsResult {
  settings: DartsSettings;
  genotype: Genotype;
  /** softmax(alpha) before the first step. */
  initialWeights: number[][];
  history: SearchEpoch[];
  backend: string;
}

export interface DartsRunOptions {
  mean: readonly number[];
  std: readonly number[];
  /** softmax(alpha) before the first step. */
  onStart?: (weights: number[][]) => void;
  onEpoch?: (e: SearchEpoch) => void | Promise<void>;
  onBatch?: (done: number, total: number) => void;
  /** auto (default): torch where its addon is built, else tfjs. */
  engine?: 'auto' | 'torch' | 'tfjs';
}

/** An endless series of batches from a source, epoch after epoch, in a seeded order. */
async function* cycle(source: BatchSource, random: () => number, batchSize: number) {
  for (;;) {
    let any = false;
    for await (const batch of source.epoch(random, batchSize)) {
      any = true;
      yield batch;
    }
    if (!any) throw new UsageError(`the validation half has fewer than 2 patches: nothing to train alpha on`);
  }
}

/** One search network on one engine: the two first-order DARTS steps and the current softmax(alpha). */
interface SearchSession {
  detail: string;
  /** Adam on alpha from a validation batch (w held where it is); returns the batch loss. */
  architectureStep(pixels: Uint8Array, labels: Float32Array, count: number): number;
  /** Clipped SGD with momentum on w from a training batch; returns the batch loss. */
  weightStep(pixels: Uint8Array, labels: Float32Array, count: number): number;
  weights(): number[][];
  dispose(): void;
}

/** The supernet on tfjs: its hand-written ops (cpu-ops.ts) on the pure-JS backend. */
async function tfjsSearch(s: DartsSettings, random: () => number, mean: readonly number[], std: readonly number[]): Promise<SearchSession> {
  const { tf, package: pkg, backend } = await loadTf();
  const net = createSupernet(tf, s, random);
  const wVars = [...net.weights.values()];
  const wOptimizer = tf.train.momentum(s.learningRate, s.momentum);
  const aOptimizer = tf.train.adam(s.archLearningRate, 0.5, 0.999, 1e-8);
  const toInput = (pixels: Uint8Array, count: number) => patchesToTensor(tf, pixels, count, s.patchSize, mean, std);
  return {
    detail: `tfjs: ${pkg} (${backend})`,
    architectureStep: (pixels, labels, count) => tf.tidy(() => {
      const x = toInput(pixels, count);
      const y = tf.tensor1d(labels);
      const { value, grads } = tf.variableGrads(() => tfLoss(tf, 'plcc', net.forward(x), y), [net.alphas]);
      // torch Adam's weight_decay: L2 added to the gradient.
      const g = tf.add(grads[net.alphas.name]!, tf.mul(net.alphas, s.archWeightDecay));
      aOptimizer.applyGradients([{ name: net.alphas.name, tensor: g }]);
      return value.dataSync()[0]!;
    }),
    weightStep: (pixels, labels, count) => tf.tidy(() => {
      const x = toInput(pixels, count);
      const y = tf.tensor1d(labels);
      const { value, grads } = tf.variableGrads(() => tfLoss(tf, 'plcc', net.forward(x), y), wVars);
      // train_search.py: clip_grad_norm_ on the loss's gradient (scale all by min(1, clip / global
      // norm)), then SGD adds weight decay inside its step.
      const norm = Math.sqrt(tf.addN(wVars.map((v) => tf.sum(tf.square(grads[v.name]!)))).dataSync()[0]!);
      const scale = Math.min(1, s.gradClip / (norm + 1e-6));
      wOptimizer.applyGradients(wVars.map((v) => ({ name: v.name, tensor: tf.add(tf.mul(grads[v.name]!, scale), tf.mul(v, s.weightDecay)) })));
      return value.dataSync()[0]!;
    }),
    weights: () => tf.tidy(() => tf.softmax(net.alphas).arraySync() as number[][]),
    dispose: () => {
      net.dispose();
      wOptimizer.dispose();
      aOptimizer.dispose();
    },
  };
}

/** The same supernet (the same initial values, from the tfjs one) on libtorch: autograd instead of hand-written gradients. */
async function torchSearch(s: DartsSettings, random: () => number, mean: readonly number[], std: readonly number[]): Promise<SearchSession> {
  const { tf } = await loadTf();
  const load = await loadTorch();
  if (!load.ok) throw new UsageError(`the torch training engine is not available: ${load.reason}`);
  const net = createSupernet(tf, s, random);
  const graph = supernetGraph(net);
  net.dispose();
  const trainer = new load.binding.GraphTrainer({ ...graph, step: 0, loss: 'plcc', mean, std, threads: 1, device: 'cpu', channelsLast: false });
  const info = load.binding.buildInfo();
  const alphaShape = graph.tensors.find((t) => t.name === ALPHAS)!.shape as [number, number];
  return {
    detail: `torch: libtorch ${info.torchVersion} (cpu, 1 thread)`,
    architectureStep: (pixels, labels, count) => trainer.searchStep(pixels, labels, count, s.patchSize, 'architecture', { learningRate: s.archLearningRate, weightDecay: s.archWeightDecay }),
    weightStep: (pixels, labels, count) => trainer.searchStep(pixels, labels, count, s.patchSize, 'weights', { learningRate: s.learningRate, weightDecay: s.weightDecay, momentum: s.momentum, gradClip: s.gradClip }),
    weights: () => softmaxRows(Array.from({ length: alphaShape[0] }, (_, e) => Array.from(trainer.tensors(false).tensors[ALPHAS]!.subarray(e * alphaShape[1], (e + 1) * alphaShape[1])))),
    dispose: () => trainer.dispose(),
  };
}

export async function runDarts(train: BatchSource, validation: BatchSource, settings: DartsSettings, o: DartsRunOptions): Promise<DartsResult> {
  const s = settings;
  if (train.size !== s.patchSize || validation.size !== s.patchSize) throw new UsageError(`the search data is ${train.size} px but the search runs on ${s.patchSize} px patches`);
  const engine = expectOneOf(o.engine ?? 'auto', 'engine', ['auto', 'torch', 'tfjs'] as const);
  const onTorch = engine === 'torch' || (engine === 'auto' && (await loadTorch()).ok);
  const random = seededRandom(s.seed);
  const session = onTorch ? await torchSearch(s, random, o.mean, o.std) : await tfjsSearch(s, random, o.mean, o.std);
  const valid = cycle(validation, seededRandom(s.seed + 1), s.batchSize);
  const history: SearchEpoch[] = [];
  const batchesPerEpoch = Math.floor(train.count / s.batchSize) + (train.count % s.batchSize >= 2 ? 1 : 0);
  let initialWeights: number[][];
  try {
    initialWeights = session.weights();
    o.onStart?.(initialWeights);
    for (let epoch = 1; epoch <= s.epochs; epoch++) {
      const started = performance.now();
      let trainSum = 0;
      let validSum = 0;
      let steps = 0;
      for await (const batch of train.epoch(random, s.batchSize)) {
        // Architecture step on a validation batch (first order: w held where it is), then a weight step.
        const vb = (await valid.next()).value!;
        validSum += session.architectureStep(vb.pixels, vb.labels, vb.count);
        trainSum += session.weightStep(batch.pixels, batch.labels, batch.count);
        steps++;
        o.onBatch?.(steps, batchesPerEpoch);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const weights = session.weights();
      const e: SearchEpoch = {
        epoch, trainLoss: trainSum / steps, validLoss: validSum / steps, seconds: (performance.now() - started) / 1000,
        weights, genotype: deriveGenotype(weights, s.steps, s.multiplier),
      };
      if (!Number.isFinite(e.trainLoss) || !Number.isFinite(e.validLoss)) throw new Error(`search diverged in epoch ${epoch} (loss ${e.trainLoss} / ${e.validLoss}): try a smaller --lr`);
      history.push(e);
      await o.onEpoch?.(e);
    }
  } finally {
    await valid.return(undefined);
    session.dispose();
  }
  return { settings: s, genotype: history.at(-1)!.genotype, initialWeights, history, backend: session.detail };
}

/** Header of the alphas history: epoch, edge, the edge's node and input state, one column per op. */
export function alphasTsvHeader(): string {
  return ['epoch', 'edge', 'node', 'input', ...PRIMITIVES].join('\t');
}

/** Rows of softmax(alpha) for one epoch (0 = before the search). */
export function alphasTsvRows(epoch: number, weights: number[][], steps: number): string[] {
  const rows: string[] = [];
  let edge = 0;
  for (let node = 0; node < steps; node++)
    for (let input = 0; input < 2 + node; input++, edge++) rows.push([epoch, edge, node + 2, input, ...weights[edge]!.map((v) => v.toPrecision(6))].join('\t'));
  return rows;
}
