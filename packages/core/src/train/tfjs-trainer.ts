/**
 * The tfjs trainer: FocusLiteNN or EONSS as tfjs graphs, the same losses, Adam + StepLR schedule,
 * seeded initialization and batch order as the native trainer, so the two can be compared run for run.
 * Slower on the CPU than the native trainer (see the README), but it is the path for EONSS and for
 * the deep models, and it uses tfjs-node(-gpu) when installed.
 */
import type { EonssSpec, FocusLiteNNSpec } from '@fqa/native';
import type * as TF from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';
import { FOCUSLITENN_VARIANTS } from '../model-file.js';
import { expectOneOf } from '../validate.js';
import { patchSetSource, type BatchSource } from './batches.js';
import { seededRandom } from './random.js';
import type { PatchSet } from './synthetic.js';
import { eonssInit, eonssTfModel, focusLiteTfModel, loadTf, type FirstLayerInput, type Tf, type TfModel } from './tfjs-models.js';
import { focusLiteInit, runEpochs, trainingSchedule, type InitName, type LossName, type TrainOptions, type TrainResult } from './trainer.js';

export interface TfTrainOptions extends Omit<TrainOptions, 'threads'> {
  architecture?: 'focuslitenn' | 'eonss';
}

export interface TfTrainResult extends Omit<TrainResult, 'spec'> {
  spec: FocusLiteNNSpec | EonssSpec;
  /** The tfjs package and backend that ran. */
  backend: string;
}

/** The batch loss as a tfjs scalar: 1 - Pearson correlation (population statistics), MSE or MAE. */
export function tfLoss(tf: Tf, loss: LossName, scores: TF.Tensor1D, labels: TF.Tensor1D): TF.Scalar {
  return tf.tidy(() => {
    if (loss === 'mse') return tf.mean(tf.square(tf.sub(scores, labels))) as TF.Scalar;
    if (loss === 'mae') return tf.mean(tf.abs(tf.sub(scores, labels))) as TF.Scalar;
    const a = tf.sub(scores, tf.mean(scores));
    const b = tf.sub(labels, tf.mean(labels));
    const r = tf.div(tf.sum(tf.mul(a, b)), tf.sqrt(tf.add(tf.mul(tf.sum(tf.square(a)), tf.sum(tf.square(b))), 1e-12)));
    return tf.sub(1, r) as TF.Scalar;
  });
}

/** A tfjs model with the native trainer's initial weights for the same seed. */
export function initialTfModel(tf: Tf, o: { architecture: 'focuslitenn' | 'eonss'; kernels: number; variant: 235 | 64; seed: number; init?: InitName; mean?: [number, number, number]; std?: [number, number, number] }): { model: TfModel; random: () => number } {
  const random = seededRandom(o.seed);
  const mean = o.mean ?? [0, 0, 0];
  const std = o.std ?? [1, 1, 1];
  if (o.architecture === 'eonss') {
    if (o.variant !== 235) throw new UsageError('EONSS is defined for 235 px patches only');
    return { model: eonssTfModel(tf, { ...eonssInit(random), mean, std }), random };
  }
  const geometry = FOCUSLITENN_VARIANTS[o.variant];
  const p = focusLiteInit(o.kernels, o.variant, random, o.init);
  const spec: FocusLiteNNSpec = {
    architecture: 'focuslitenn', patchSize: o.variant, mean, std, kernels: o.kernels,
    convKernel: geometry.convKernel, convStride: geometry.convStride, convPad: geometry.convPad,
    convWeight: Float32Array.from(p.conv), convBias: Float32Array.from(p.bias),
    ...(o.kernels > 1 ? { fcWeight: Float32Array.from(p.fc), fcBias: p.fcBias[0]! } : {}),
  };
  return { model: focusLiteTfModel(tf, spec), random };
}

/** Gradients of the batch loss for every parameter (tfjs layouts), for the cross-check against the native backward. */
export function tfGradients(tf: Tf, model: TfModel, x: FirstLayerInput, labels: TF.Tensor1D, loss: LossName): { value: number; gradients: Map<string, Float32Array> } {
  const names = [...model.params.keys()];
  const { value, grads } = tf.variableGrads(() => tfLoss(tf, loss, model.forward(x), labels), names.map((n) => model.params.get(n)!));
  const gradients = new Map(names.map((n) => [n, Float32Array.from(grads[model.params.get(n)!.name]!.dataSync() as Float32Array)]));
  const v = value.dataSync()[0]!;
  value.dispose();
  Object.values(grads).forEach((g) => g.dispose());
  return { value: v, gradients };
}

export async function trainTfjs(data: PatchSet | BatchSource, o: TfTrainOptions): Promise<TfTrainResult> {
  const { tf, package: pkg, backend } = await loadTf();
  const source = 'patches' in data ? patchSetSource(data) : data;
  const architecture = expectOneOf(o.architecture ?? 'focuslitenn', 'architecture', ['focuslitenn', 'eonss'] as const);
  const { kernels, loss, epochs, batchSize, stepSize, gamma, learningRate } = trainingSchedule(o, source.size);
  const mean = o.mean ?? [0, 0, 0];
  const std = o.std ?? [1, 1, 1];
  const { model, random } = initialTfModel(tf, { architecture, kernels, variant: o.variant, seed: o.seed ?? 1, init: o.init, mean, std });
  const optimizer = tf.train.adam(learningRate, 0.9, 0.999, 1e-8);
  const vars = [...model.params.values()];
  try {
    const run = await runEpochs(source, random, { epochs, batchSize, stepSize, gamma, learningRate }, o, (batch, lr) => {
      // AdamOptimizer reads its (protected) learningRate on every step: StepLR by assignment.
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const x = model.input(batch.pixels, batch.count, source.size);
      const y = tf.tensor1d(batch.labels);
      const value = optimizer.minimize(() => tfLoss(tf, loss, model.forward(x), y), true, vars)!;
      const loss0 = value.dataSync()[0]!;
      tf.dispose([x.tensor, y, value]);
      model.project();
      return loss0;
    });
    return { spec: model.toSpec(), ...run, backend: `${pkg} (${backend})` };
  } finally {
    model.dispose();
    optimizer.dispose();
  }
}
