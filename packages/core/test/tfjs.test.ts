// The tfjs trainer against the native one: same initial weights for a seed, same forward scores,
// same gradients of the same batch loss; EONSS as a tfjs graph reproduces the PyTorch golden scores
// with the published weights; a tfjs-trained model written as a model file scores the same through
// the native kernels; a short run lowers the loss.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import { createNativeModel, trainBackward, trainForward, type EonssSpec, type FocusLiteNNSpec } from '@fqa/native';
import {
  conv2dTrainable, convertReferenceFile, decodeImage, eonssTfModel, focusLiteTfModel, initialTfModel, loadTf, lossAndGradient, parseModelFile,
  seededRandom, tfGradients, tfToTorchConv, toNativeSpec, trainFocusLite, trainTfjs, trainedModelFile, type LossName,
} from '../dist/index.js';
import { hasShared, shared, tcgaImages } from '../../../test/helpers/shared.js';

const { tf } = await loadTf();

function patchesFrom(seed: number, count: number, size: number): Uint8Array {
  const r = seededRandom(seed);
  // Smooth structure plus noise, so the min of the conv map is unique (no ties between positions).
  return Uint8Array.from({ length: count * size * size * 3 }, (_, i) => Math.floor(128 + 90 * Math.sin(i * 0.011 + seed) * Math.cos(i * 0.0009) + 30 * r()));
}

/** Max |a - b| relative to the largest |b| (or to `floor` when larger: a PLCC loss has a zero bias gradient). */
function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  expect(a.length).toBe(b.length);
  let scale = floor;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (scale + 1e-12));
  return worst;
}

describe.each([
  [1, 235, 'plcc'], [2, 235, 'mse'], [10, 235, 'plcc'], [3, 64, 'mae'], [10, 64, 'plcc'],
] as const)('FocusLiteNN k=%i %i px, %s loss: native vs tfjs', (kernels, size, loss) => {
  const count = 8;
  const pixels = patchesFrom(kernels * 7 + size, count, size);
  const labels = Float32Array.from({ length: count }, (_, i) => i % 5);
  const mean: [number, number, number] = [0.6, 0.45, 0.65];
  const std: [number, number, number] = [0.2, 0.22, 0.18];
  const { model } = initialTfModel(tf, { architecture: 'focuslitenn', kernels, variant: size, seed: 11, mean, std });
  const spec = model.toSpec() as FocusLiteNNSpec;
  const native = createNativeModel(spec);
  const x = model.input(pixels, count, size);
  const forward = trainForward(native, pixels, count, size, 2);

  test('same forward scores', () => {
    const tfScores = model.forward(x);
    expect(maxRelativeError(tfScores.dataSync(), forward.scores)).toBeLessThan(1e-4);
    tfScores.dispose();
  });

  test('same gradients of the batch loss', () => {
    const { value, gradient } = lossAndGradient(loss as LossName, forward.scores, labels);
    const nativeGrads = trainBackward(native, pixels, count, size, forward, gradient);
    const y = tf.tensor1d(labels);
    const tfg = tfGradients(tf, model, x, y, loss as LossName);
    y.dispose();
    expect(Math.abs(tfg.value - value)).toBeLessThan(1e-4);
    const convScale = nativeGrads.conv.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(convScale).toBeGreaterThan(0);
    expect(maxRelativeError(tfToTorchConv(tfg.gradients.get('conv.weight')!, kernels, 3, 7), nativeGrads.conv), 'conv.weight').toBeLessThan(2e-3);
    expect(maxRelativeError(tfg.gradients.get('conv.bias')!, nativeGrads.bias, convScale), 'conv.bias').toBeLessThan(2e-3);
    if (kernels > 1) {
      expect(maxRelativeError(tfg.gradients.get('fc.weight')!, nativeGrads.fc), 'fc.weight').toBeLessThan(2e-3);
      expect(maxRelativeError(tfg.gradients.get('fc.bias')!, nativeGrads.fcBias, convScale), 'fc.bias').toBeLessThan(2e-3);
    }
  });
});

test("conv2dTrainable's im2col filter gradient equals tfjs's own conv2d gradients", () => {
  for (const [n, h, w, ci, co, k, stride, pad] of [[3, 11, 13, 4, 5, 5, 2, 2], [2, 9, 9, 3, 4, 3, 1, 0], [1, 8, 8, 2, 3, 1, 1, 0]] as const) {
    const x = tf.randomNormal([n, h, w, ci], 0, 1, 'float32', 7) as TF.Tensor4D;
    const f = tf.randomNormal([k, k, ci, co], 0, 1, 'float32', 8) as TF.Tensor4D;
    const g = tf.randomNormal(tf.conv2d(x, f, stride, pad).shape, 0, 1, 'float32', 9);
    const loss = (conv: (a: TF.Tensor4D, b: TF.Tensor4D) => TF.Tensor) => (a: TF.Tensor, b: TF.Tensor) => tf.sum(tf.mul(conv(a as TF.Tensor4D, b as TF.Tensor4D), g));
    const [dx1, dw1] = tf.grads(loss((a, b) => conv2dTrainable(tf, a, b, stride, pad)))([x, f]);
    const [dx2, dw2] = tf.grads(loss((a, b) => tf.conv2d(a, b, stride, pad)))([x, f]);
    expect(maxRelativeError(dx1!.dataSync(), dx2!.dataSync())).toBeLessThan(1e-5);
    expect(maxRelativeError(dw1!.dataSync(), dw2!.dataSync())).toBeLessThan(1e-5);
  }
});

describe.skipIf(!hasShared)('EONSS as a tfjs graph', () => {
  test('reproduces the PyTorch golden scores with the published weights', async () => {
    const file = parseModelFile(await convertReferenceFile(shared('reference', 'focuslitenn', 'eonss.json'), { architecture: 'eonss' }));
    const spec = toNativeSpec(file) as EonssSpec;
    const golden = JSON.parse(readFileSync(shared('reference', 'focuslitenn', 'golden-scores.json'), 'utf8')).models.eonss as Record<string, { patch_scores: number[] }>;
    const model = eonssTfModel(tf, spec);
    for (const [key, name] of Object.entries(tcgaImages)) {
      const image = await decodeImage(shared('data', 'tcga-focus', name));
      // The golden grid: 235 px crops at stride 128; the first row of crops is enough here.
      const crops: number[] = [];
      const pixels = new Uint8Array(3 * 235 * 235 * 3);
      for (let c = 0; c < 3; c++) {
        for (let row = 0; row < 235; row++) pixels.set(image.pixels.subarray(row * image.rowStride + c * 128 * 3, row * image.rowStride + (c * 128 + 235) * 3), (c * 235 + row) * 235 * 3);
        crops.push(golden[key]!.patch_scores[c]!);
      }
      const x = model.input(pixels, 3, 235);
      const scores = model.forward(x);
      expect(maxRelativeError(scores.dataSync(), crops), key).toBeLessThan(1e-4);
      tf.dispose([x.tensor, scores]);
    }
    model.dispose();
  });
});

test('a short tfjs run lowers the loss, and its model file scores the same through the native kernels', async () => {
  const size = 64;
  const count = 60;
  const r = seededRandom(5);
  // Patches whose label is their blur: box-filtered noise, wider filter = higher label.
  const patches = new Uint8Array(count * size * size * 3);
  const labels = new Float32Array(count);
  for (let n = 0; n < count; n++) {
    const level = n % 4;
    labels[n] = level;
    const noise = Float32Array.from({ length: size * size }, () => r() * 255);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        let s = 0;
        let m = 0;
        for (let dy = -level; dy <= level; dy++)
          for (let dx = -level; dx <= level; dx++) {
            const yy = Math.min(size - 1, Math.max(0, y + dy));
            const xx = Math.min(size - 1, Math.max(0, x + dx));
            s += noise[yy * size + xx]!;
            m++;
          }
        for (let c = 0; c < 3; c++) patches[((n * size + y) * size + x) * 3 + c] = Math.round(s / m);
      }
  }
  const result = await trainTfjs({ patches, labels, count, size }, { kernels: 2, variant: 64, epochs: 6, batchSize: 20, learningRate: 1e-2, seed: 2, loss: 'plcc' });
  expect(result.backend).toMatch(/tensorflow/);
  expect(result.history).toHaveLength(6);
  expect(result.history.at(-1)!.loss).toBeLessThan(result.history[0]!.loss - 0.05);
  const bytes = trainedModelFile(result.spec, {
    name: 'tfjs-test', stride: 32, score: { scale: 'test', threshold: null }, micronsPerPixel: null,
    provenance: { source: 'test', license: null, createdBy: 'fqa tfjs trainer', createdAt: 'test' },
  });
  const file = parseModelFile(bytes);
  const native = trainForward(createNativeModel(toNativeSpec(file)), patches, count, size, 2).scores;
  const exported = focusLiteTfModel(tf, result.spec as FocusLiteNNSpec);
  const x = exported.input(patches, count, size);
  const tfScores = exported.forward(x);
  expect(maxRelativeError(native, tfScores.dataSync())).toBeLessThan(1e-4);
  tf.dispose([x.tensor, tfScores]);
  exported.dispose();
}, 120_000);

test('whole runs agree: native and tfjs trainers, several epochs across a StepLR step, same losses and weights', async () => {
  const size = 64;
  const count = 40;
  const pixels = patchesFrom(21, count, size);
  const labels = Float32Array.from({ length: count }, (_, i) => (i * 7) % 5);
  const options = { kernels: 2, variant: 64 as const, epochs: 4, stepSize: 2, gamma: 0.1, batchSize: 20, learningRate: 1e-2, seed: 3, loss: 'plcc' as const };
  const native = await trainFocusLite({ patches: pixels, labels, count, size }, options);
  const tfjs = await trainTfjs({ patches: pixels, labels, count, size }, options);
  // The schedule both ran: lr 1e-2 for epochs 1-2, 1e-3 after the step.
  [1e-2, 1e-2, 1e-3, 1e-3].forEach((lr, i) => expect(native.history[i]!.learningRate).toBeCloseTo(lr, 12));
  expect(tfjs.history.map((h) => h.learningRate)).toEqual(native.history.map((h) => h.learningRate));
  // Same loss every epoch, and the same final weights, to float rounding accumulated over 8 Adam steps.
  // The biases are left out: PLCC is blind to a constant shift of the scores, so their gradient is
  // rounding noise, which Adam's normalization turns into steps of ±lr in either trainer.
  native.history.forEach((h, i) => expect(Math.abs(h.loss - tfjs.history[i]!.loss), `epoch ${h.epoch}`).toBeLessThan(1e-4));
  const a = native.spec;
  const b = tfjs.spec as FocusLiteNNSpec;
  expect(maxRelativeError(b.convWeight, a.convWeight)).toBeLessThan(1e-4);
  expect(maxRelativeError(b.fcWeight!, a.fcWeight!)).toBeLessThan(1e-4);
  // Not vacuous: the trained weights differ from a run that stopped before the step.
  const short = await trainFocusLite({ patches: pixels, labels, count, size }, { ...options, epochs: 2 });
  expect(maxRelativeError(short.spec.convWeight, a.convWeight)).toBeGreaterThan(1e-4);
});

