/**
 * First-order DARTS (Liu et al. 2019, train_search.py without --unrolled) over the DARTS-FQA search
 * space, with DARTS-FQA's settings as defaults: each step first moves the architecture weights alpha
 * on a batch of the validation half (Adam), then the network weights w on a batch of the training
 * half (SGD with momentum, weight decay and gradient-norm clipping), both on the PLCC loss.
 */
import type { BatchSource } from '../train/batches.js';
import { seededRandom } from '../train/random.js';
import { loadTf, patchesToTensor } from '../train/tfjs-models.js';
import { tfLoss } from '../train/tfjs-trainer.js';
import type { Genotype } from '../models/architectures/darts-fqa.js';
import { expectInteger } from '../validate.js';
import { UsageError } from '../errors.js';
import { deriveGenotype, PRIMITIVES } from './genotype.js';
import { createSupernet, type SupernetShape } from './supernet.js';

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

export async function runDarts(train: BatchSource, validation: BatchSource, settings: DartsSettings, o: DartsRunOptions): Promise<DartsResult> {
  const { tf, package: pkg, backend } = await loadTf();
  const s = settings;
  if (train.size !== s.patchSize || validation.size !== s.patchSize) throw new UsageError(`the search data is ${train.size} px but the search runs on ${s.patchSize} px patches`);
  const random = seededRandom(s.seed);
  const net = createSupernet(tf, s, random);
  const wVars = [...net.weights.values()];
  const wOptimizer = tf.train.momentum(s.learningRate, s.momentum);
  const aOptimizer = tf.train.adam(s.archLearningRate, 0.5, 0.999, 1e-8);
  const softmaxWeights = () => tf.tidy(() => tf.softmax(net.alphas).arraySync() as number[][]);
  const initialWeights = softmaxWeights();
  o.onStart?.(initialWeights);
  const valid = cycle(validation, seededRandom(s.seed + 1), s.batchSize);
  const toInput = (pixels: Uint8Array, count: number) => patchesToTensor(tf, pixels, count, s.patchSize, o.mean, o.std);
  const history: SearchEpoch[] = [];
  const batchesPerEpoch = Math.floor(train.count / s.batchSize) + (train.count % s.batchSize >= 2 ? 1 : 0);
  try {
    for (let epoch = 1; epoch <= s.epochs; epoch++) {
      const started = performance.now();
      let trainSum = 0;
      let validSum = 0;
      let steps = 0;
      for await (const batch of train.epoch(random, s.batchSize)) {
        // Architecture step on a validation batch (first order: w held where it is).
        const vb = (await valid.next()).value!;
        const validLoss = tf.tidy(() => {
          const x = toInput(vb.pixels, vb.count);
          const y = tf.tensor1d(vb.labels);
          const { value, grads } = tf.variableGrads(() => tfLoss(tf, 'plcc', net.forward(x), y), [net.alphas]);
          // torch Adam's weight_decay: L2 added to the gradient.
          const g = tf.add(grads[net.alphas.name]!, tf.mul(net.alphas, s.archWeightDecay));
          aOptimizer.applyGradients([{ name: net.alphas.name, tensor: g }]);
          return value.dataSync()[0]!;
        });
        // Weight step on a training batch.
        const trainLoss = tf.tidy(() => {
          const x = toInput(batch.pixels, batch.count);
          const y = tf.tensor1d(batch.labels);
          const { value, grads } = tf.variableGrads(() => tfLoss(tf, 'plcc', net.forward(x), y), wVars);
          const decayed = wVars.map((v) => tf.add(grads[v.name]!, tf.mul(v, s.weightDecay)));
          // clip_grad_norm_: scale all gradients by min(1, clip / global norm).
          const norm = Math.sqrt(tf.addN(decayed.map((g) => tf.sum(tf.square(g)))).dataSync()[0]!);
          const scale = Math.min(1, s.gradClip / (norm + 1e-6));
          wOptimizer.applyGradients(wVars.map((v, i) => ({ name: v.name, tensor: scale < 1 ? tf.mul(decayed[i]!, scale) : decayed[i]! })));
          return value.dataSync()[0]!;
        });
        trainSum += trainLoss;
        validSum += validLoss;
        steps++;
        o.onBatch?.(steps, batchesPerEpoch);
      }
      const weights = softmaxWeights();
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
    net.dispose();
    wOptimizer.dispose();
    aOptimizer.dispose();
  }
  return { settings: s, genotype: history.at(-1)!.genotype, initialWeights, history, backend: `${pkg} (${backend})` };
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
