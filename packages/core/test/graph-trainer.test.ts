// Training any registry architecture from its graph on the tfjs engine (the torch engine is tested
// against this one in packages/torch-engine/test). Oracles: tfjs's own ops and gradients
// for the training ops; PyTorch's BatchNorm definition for the running statistics; the loss of a
// real learnable task (synthetic defocus of real tissue) falling; the ONNX backend scoring the
// trained weights exactly as tfjs does; an uninterrupted run for a resumed one.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import {
  architectureModelFile, backendAvailable, batchNormTraining, conv2dIm2col, createScorer, loadTf, parseModelFile, readCheckpoint, syntheticDefocus,
  toLoadedModel, trainArchitecture, type PatchSet,
} from '../dist/index.js';
import { hasShared, missing, shared } from '../../../test/helpers/shared.js';

const { tf } = await loadTf();
const onnx = !missing(backendAvailable('onnx'), 'onnxruntime-node (npm install onnxruntime-node)');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-graph-train-'));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / scale;
}

/** Values and gradients (w.r.t. every input) of sum(op(inputs) * g) for two implementations. */
function compare(ours: (...x: TF.Tensor[]) => TF.Tensor, reference: (...x: TF.Tensor[]) => TF.Tensor, inputs: TF.Tensor[], tolerance: number) {
  const a = ours(...inputs);
  const b = reference(...inputs);
  expect(a.shape).toEqual(b.shape);
  expect(maxDiff(a.dataSync(), b.dataSync())).toBeLessThan(tolerance);
  const g = tf.randomNormal(b.shape, 0, 1, 'float32', 3);
  const ga = tf.grads((...x: TF.Tensor[]) => tf.sum(tf.mul(ours(...x), g)))(inputs);
  const gb = tf.grads((...x: TF.Tensor[]) => tf.sum(tf.mul(reference(...x), g)))(inputs);
  ga.forEach((t, i) => expect(maxDiff(t.dataSync(), gb[i]!.dataSync()), `gradient ${i}`).toBeLessThan(tolerance));
}

test("the matMul convolution equals tfjs's conv2d, values and both gradients (padding, strides, 1x1)", () => {
  for (const [n, h, ci, co, k, stride, pad] of [[2, 11, 4, 5, 3, 2, 1], [3, 9, 3, 4, 7, 2, 3], [2, 8, 6, 5, 1, 1, 0], [1, 10, 4, 3, 1, 2, 0]] as const) {
    const x = tf.randomNormal([n, h, h, ci], 0, 1, 'float32', 7);
    const f = tf.randomNormal([k, k, ci, co], 0, 1, 'float32', 8);
    compare((a, b) => conv2dIm2col(tf, a as TF.Tensor4D, b as TF.Tensor4D, stride, pad), (a, b) => tf.conv2d(tf.pad(a as TF.Tensor4D, [[0, 0], [pad, pad], [pad, pad], [0, 0]]), b as TF.Tensor4D, stride, 'valid'), [x, f], 1e-5);
  }
});

test("training BatchNorm equals tfjs's batchNorm on tf.moments, values and gradients; its moments are the batch's", () => {
  const x = tf.randomNormal([3, 5, 4, 6], 2, 3, 'float32', 11);
  const scale = tf.randomNormal([6], 1, 0.3, 'float32', 12);
  const offset = tf.randomNormal([6], 0, 0.3, 'float32', 13);
  let moments: { mean: Float32Array; variance: Float32Array; count: number } | undefined;
  compare(
    (a, s, o) => batchNormTraining(tf, a as TF.Tensor4D, s as TF.Tensor1D, o as TF.Tensor1D, 1e-5, (m) => (moments = m)),
    (a, s, o) => {
      const m = tf.moments(a, [0, 1, 2]);
      return tf.batchNorm(a as TF.Tensor4D, m.mean as TF.Tensor1D, m.variance as TF.Tensor1D, o as TF.Tensor1D, s as TF.Tensor1D, 1e-5);
    },
    [x, scale, offset], 2e-4,
  );
  const m = tf.moments(x, [0, 1, 2]);
  expect(moments!.count).toBe(60);
  expect(maxDiff(moments!.mean, m.mean.dataSync())).toBeLessThan(1e-5);
  expect(maxDiff(moments!.variance, m.variance.dataSync())).toBeLessThan(1e-5);
});

describe.skipIf(!hasShared)('DenseNet-13 trained from its registry graph (64 px, tiny data)', () => {
  let data: PatchSet;
  let model: ReturnType<typeof toLoadedModel>;
  test('the loss falls; BatchNorm statistics were tracked; the model file loads', async () => {
    data = await syntheticDefocus({ sources: [shared('data', 'tiles', 'tissue-level0-4302-10273-4814-10785.png')], count: 24, patchSize: 64, levels: 6, sigmaPerLevel: 0.8, seed: 3, noise: 2, minTissue: 0.6 });
    const trained = await trainArchitecture(data, { architecture: 'densenet13', epochs: 4, batchSize: 8, learningRate: 1e-3, seed: 5, engine: 'tfjs' });
    const losses = trained.history.map((h) => h.loss);
    expect(losses).toHaveLength(4);
    // 1 - PLCC per batch: from about 0.5 (barely correlated) to well below.
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.15);
    // Running statistics moved from their start (mean 0, variance 1) as PyTorch's momentum 0.1 moves them.
    expect(Math.abs(trained.tensors.get('features.norm0.running_var')![0]! - 1)).toBeGreaterThan(1e-3);
    const bytes = architectureModelFile(trained, {
      name: 'densenet13-test', stride: 32, score: { scale: 'test', threshold: null }, micronsPerPixel: null,
      provenance: { source: 'test', license: null, createdBy: 'test', createdAt: new Date(0).toISOString() },
    });
    model = toLoadedModel(parseModelFile(bytes, 'densenet13-test.fqa'), 'densenet13-test.fqa');
    expect(model.header.architecture).toBe('densenet13');
  }, 600_000);

  test.skipIf(!onnx)('the trained model file scores the same on tfjs and ONNX', async () => {
    const count = 6;
    const pixels = data.patches.subarray(0, count * 64 * 64 * 3);
    const viaTfjs = await (await createScorer(model, { backend: 'tfjs' })).score(pixels, count, 64);
    const viaOnnx = await (await createScorer(model, { backend: 'onnx' })).score(pixels, count, 64);
    for (let i = 0; i < count; i++) expect(Math.abs(viaTfjs[i]! - viaOnnx[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(viaOnnx[i]!)));
  }, 600_000);

  test('a run stopped after epoch 1 and resumed ends with the weights of an uninterrupted run, bit for bit', async () => {
    const small: PatchSet = { ...data, count: 8, patches: data.patches.subarray(0, 8 * 64 * 64 * 3), labels: data.labels.subarray(0, 8) };
    const options = { architecture: 'densenet13', epochs: 3, batchSize: 4, learningRate: 1e-3, stepSize: 2, seed: 9, engine: 'tfjs' } as const;
    const whole = await trainArchitecture(small, options);
    const checkpoint = path.join(work, 'resume.ckpt');
    const stop = new AbortController();
    await expect(trainArchitecture(small, { ...options, checkpoint, signal: stop.signal, onEpoch: () => stop.abort() })).rejects.toThrow(/stopped after epoch 1/);
    expect((await readCheckpoint(checkpoint)).header.epoch).toBe(1);
    const resumed = await trainArchitecture(small, { ...options, checkpoint, resume: true });
    expect(resumed.resumedEpochs).toBe(1);
    expect(resumed.history.map((h) => h.loss)).toEqual(whole.history.map((h) => h.loss));
    for (const [name, values] of whole.tensors) expect(Buffer.from(resumed.tensors.get(name)!.buffer).equals(Buffer.from(values.buffer)), name).toBe(true);
    // A checkpoint of other options, or a damaged one, is a one-line error naming the file.
    await expect(trainArchitecture(small, { ...options, learningRate: 1e-2, checkpoint, resume: true })).rejects.toThrow(/resume\.ckpt: the checkpoint is of a different run \(learningRate 0\.001 there, 0\.01 now\)/);
    writeFileSync(checkpoint, readFileSync(checkpoint).subarray(0, 200));
    await expect(trainArchitecture(small, { ...options, checkpoint, resume: true })).rejects.toThrow(/resume\.ckpt: not a usable fqa checkpoint/);
  }, 600_000);
});

test('architectures and patch sizes the graph does not take are usage errors', async () => {
  const patches: PatchSet = { patches: new Uint8Array(4 * 32 * 32 * 3), labels: Float32Array.of(0, 1, 2, 3), count: 4, size: 32 };
  await expect(trainArchitecture(patches, { architecture: 'resnet18' })).rejects.toThrow(/Expected one of focuslitenn, .* for arch but received 'resnet18'/);
  await expect(trainArchitecture(patches, { architecture: 'darts-fqa' })).rejects.toThrow(/darts-fqa focuspath does not take 32 px patches \(it takes 64 px\)/);
});
