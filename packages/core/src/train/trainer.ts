/**
 * Native FocusLiteNN training: forward and backward passes in the addon (trainForward /
 * trainBackward), loss, Adam and StepLR here. Defaults follow the FocusLiteNN repository
 * (lr 1e-2, StepLR step 60 gamma 0.1, batch 50, 120 epochs, PLCC loss); everything is seeded.
 */
import { createNativeModel, trainBackward, trainForward, type FocusLiteNNSpec } from '@fqa/native';
import { UsageError } from '../errors.js';
import { FOCUSLITENN_VARIANTS } from '../model-file.js';
import { expectInteger, expectOneOf } from '../validate.js';
import { gaussian, seededRandom } from './random.js';
import { patchSetSource, type Batch, type BatchSource } from './batches.js';
import type { PatchSet } from './synthetic.js';

export type LossName = 'plcc' | 'mse' | 'mae';

/** One epoch's record: mean loss, the learning rate it ran at, its wall time. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  learningRate: number;
  seconds: number;
}

/** What every trainer takes: loss, Adam with a StepLR schedule, seed, input normalization, progress. */
export interface CommonTrainOptions {
  loss?: LossName;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** StepLR: the learning rate is multiplied by `gamma` every `stepSize` epochs. */
  stepSize?: number;
  gamma?: number;
  seed?: number;
  /** The input normalization (x/255 - mean) / std, stored in the model. */
  mean?: [number, number, number];
  std?: [number, number, number];
  onEpoch?: (epoch: EpochRecord) => void;
  /** Called after every batch (for progress bars). */
  onBatch?: (done: number, total: number) => void;
}

export interface TrainOptions extends CommonTrainOptions {
  kernels: number;
  variant: 235 | 64;
  /** Initial weights: 'focuslitenn' (default, as the FocusLiteNN repository) or 'uniform' (PyTorch's default). */
  init?: InitName;
  threads?: number;
}

export interface TrainResult {
  spec: FocusLiteNNSpec;
  history: EpochRecord[];
  seconds: number;
  /** Samples trained on (forward + backward), over all epochs. */
  samples: number;
}

/** Loss of the batch and its gradient with respect to each score. */
export function lossAndGradient(loss: LossName, scores: Float32Array, labels: Float32Array): { value: number; gradient: Float32Array } {
  const n = scores.length;
  const g = new Float32Array(n);
  if (loss === 'mse' || loss === 'mae') {
    let value = 0;
    for (let i = 0; i < n; i++) {
      const d = scores[i]! - labels[i]!;
      value += loss === 'mse' ? d * d : Math.abs(d);
      g[i] = loss === 'mse' ? (2 * d) / n : Math.sign(d) / n;
    }
    return { value: value / n, gradient: g };
  }
  // 1 - Pearson correlation of the batch (population statistics).
  let ms = 0;
  let my = 0;
  for (let i = 0; i < n; i++) { ms += scores[i]!; my += labels[i]!; }
  ms /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = scores[i]! - ms;
    const b = labels[i]! - my;
    sxy += a * b; sxx += a * a; syy += b * b;
  }
  const eps = 1e-12;
  const r = sxy / Math.sqrt(sxx * syy + eps);
  for (let i = 0; i < n; i++) {
    const a = scores[i]! - ms;
    const b = labels[i]! - my;
    // dr/ds_i = (b_i - r * sqrt(syy/sxx) * a_i) / sqrt(sxx * syy)
    g[i] = -(b - (r * Math.sqrt(syy / (sxx + eps))) * a) / Math.sqrt(sxx * syy + eps);
  }
  return { value: 1 - r, gradient: g };
}

/**
 * The options both trainers share, checked, with the FocusLiteNN repository's defaults (lr 1e-2,
 * StepLR step 60 gamma 0.1, batch 50, 120 epochs, PLCC loss).
 */
export function trainingSchedule(o: Omit<TrainOptions, 'threads'>, patchSize: number) {
  const kernels = expectInteger(o.kernels, 'kernels', 1, 256);
  if (o.variant !== 235 && o.variant !== 64) throw new UsageError(`Expected 235 or 64 for variant but received ${String(o.variant)}`);
  if (patchSize !== o.variant) throw new UsageError(`patches are ${patchSize} px but the ${o.variant} variant trains on ${o.variant} px`);
  return {
    kernels,
    loss: expectOneOf(o.loss ?? 'plcc', 'loss', ['plcc', 'mse', 'mae'] as const),
    epochs: expectInteger(o.epochs ?? 120, 'epochs', 1, 100000),
    batchSize: expectInteger(o.batchSize ?? 50, 'batchSize', 2, 100000),
    stepSize: expectInteger(o.stepSize ?? 60, 'stepSize', 1, 100000),
    gamma: o.gamma ?? 0.1,
    learningRate: o.learningRate ?? 1e-2,
  };
}

/**
 * The epoch loop both trainers share: seeded batches from the source, `step(batch, lr)` returns the
 * batch loss, StepLR every stepSize epochs, history and progress callbacks.
 */
export async function runEpochs(
  source: BatchSource, random: () => number,
  schedule: { epochs: number; batchSize: number; stepSize: number; gamma: number; learningRate: number },
  callbacks: Pick<TrainOptions, 'onEpoch' | 'onBatch'>,
  step: (batch: Batch, learningRate: number) => number,
): Promise<Omit<TrainResult, 'spec'>> {
  const history: TrainResult['history'] = [];
  const batchesPerEpoch = Math.max(1, Math.ceil((source.count - 1) / schedule.batchSize));
  let lr = schedule.learningRate;
  let samples = 0;
  const start = performance.now();
  for (let epoch = 1; epoch <= schedule.epochs; epoch++) {
    let total = 0;
    let batches = 0;
    for await (const batch of source.epoch(random, schedule.batchSize)) {
      total += step(batch, lr);
      batches++;
      samples += batch.count;
      callbacks.onBatch?.(batches, batchesPerEpoch);
    }
    const record = { epoch, loss: total / Math.max(1, batches), learningRate: lr, seconds: (performance.now() - start) / 1000 };
    history.push(record);
    callbacks.onEpoch?.(record);
    if (epoch % schedule.stepSize === 0) lr *= schedule.gamma;
  }
  return { history, seconds: (performance.now() - start) / 1000, samples };
}

export type InitName = 'focuslitenn' | 'uniform';

/**
 * Initial weights from a seeded source; both trainers start here.
 * - 'focuslitenn' (the FocusLiteNN repository): conv and fc weights N(0, sqrt(2 / (kh * kw * out))),
 *   biases PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in));
 * - 'uniform': PyTorch's default for everything, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the shipped
 *   default model's recipe was trained from this).
 */
export function focusLiteInit(kernels: number, variant: 235 | 64, random: () => number, init: InitName = 'focuslitenn') {
  const geometry = FOCUSLITENN_VARIANTS[variant];
  const K = geometry.convKernel;
  const uniform = (bound: number) => (2 * random() - 1) * bound;
  const convBound = 1 / Math.sqrt(3 * K * K);
  if (init === 'uniform') {
    return {
      conv: Float64Array.from({ length: kernels * 3 * K * K }, () => uniform(convBound)),
      bias: Float64Array.from({ length: kernels }, () => uniform(convBound)),
      fc: Float64Array.from({ length: kernels }, () => uniform(1 / Math.sqrt(kernels))),
      fcBias: Float64Array.from({ length: 1 }, () => uniform(1 / Math.sqrt(kernels))),
    };
  }
  if (init !== 'focuslitenn') throw new UsageError(`Expected one of focuslitenn, uniform for init but received '${String(init)}'`);
  const convStd = Math.sqrt(2 / (K * K * kernels));
  return {
    conv: Float64Array.from({ length: kernels * 3 * K * K }, () => convStd * gaussian(random)),
    bias: Float64Array.from({ length: kernels }, () => uniform(convBound)),
    fc: Float64Array.from({ length: kernels }, () => Math.SQRT2 * gaussian(random)),
    fcBias: Float64Array.from({ length: 1 }, () => uniform(1 / Math.sqrt(kernels))),
  };
}

export async function trainFocusLite(data: PatchSet | BatchSource, o: TrainOptions): Promise<TrainResult> {
  const source = 'patches' in data ? patchSetSource(data) : data;
  const { kernels, loss, epochs, batchSize, stepSize, gamma, learningRate } = trainingSchedule(o, source.size);
  const geometry = FOCUSLITENN_VARIANTS[o.variant];
  const random = seededRandom(o.seed ?? 1);
  const params = focusLiteInit(kernels, o.variant, random, o.init);
  const adam = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, { m: new Float64Array(v.length), v: new Float64Array(v.length) }])) as Record<keyof typeof params, { m: Float64Array; v: Float64Array }>;
  const spec = (): FocusLiteNNSpec => ({
    architecture: 'focuslitenn', patchSize: o.variant, mean: o.mean ?? [0, 0, 0], std: o.std ?? [1, 1, 1], kernels, ...geometry,
    convWeight: Float32Array.from(params.conv), convBias: Float32Array.from(params.bias),
    ...(kernels > 1 ? { fcWeight: Float32Array.from(params.fc), fcBias: params.fcBias[0]! } : {}),
  });
  let step = 0;
  const run = await runEpochs(source, random, { epochs, batchSize, stepSize, gamma, learningRate }, o, ({ pixels, labels, count }, lr) => {
    const model = createNativeModel(spec());
    const forward = trainForward(model, pixels, count, source.size, o.threads ?? 0);
    const { value, gradient } = lossAndGradient(loss, forward.scores, labels);
    const grads = trainBackward(model, pixels, count, source.size, forward, gradient);
    step++;
    const b1 = 0.9;
    const b2 = 0.999;
    for (const key of Object.keys(params) as (keyof typeof params)[]) {
      if (kernels === 1 && (key === 'fc' || key === 'fcBias')) continue;
      const p = params[key];
      const g = grads[key === 'conv' ? 'conv' : key === 'bias' ? 'bias' : key === 'fc' ? 'fc' : 'fcBias'];
      const { m, v } = adam[key];
      for (let i = 0; i < p.length; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
        const mh = m[i]! / (1 - b1 ** step);
        const vh = v[i]! / (1 - b2 ** step);
        p[i] = p[i]! - (lr * mh) / (Math.sqrt(vh) + 1e-8);
      }
    }
    return value;
  });
  return { spec: spec(), ...run };
}
