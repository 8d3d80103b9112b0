// The search's hand-written gradients (search/cpu-ops.ts, the tfjs engine's fast ops for DARTS on
// the pure-JS backend) against central finite differences of their own forward pass: for a random
// weighting r, d/dx sum(op(x) * r) at sampled coordinates, for every stride, padding and dilation
// DARTS uses. The ops are linear (depth-wise convolution, pixel sampling, average pooling) or smooth
// (BatchNorm), so a difference step of 1e-2 leaves only float32 rounding.
import { expect, test } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import { loadTf } from '../dist/index.js';
import { avgPool3x3Trainable, batchNormTrainable, depthwiseConv2dTrainable, evenOddPixels } from '../dist/search/cpu-ops.js';

const { tf } = await loadTf();

/** Analytic gradients of sum(op(...inputs) * r) against central differences at `samples` coordinates per input. */
function checkGradients(op: (...x: TF.Tensor[]) => TF.Tensor, inputs: TF.Tensor[], samples = 24) {
  const r = tf.randomNormal(op(...inputs).shape, 0, 1, 'float32', 5);
  const loss = (...x: TF.Tensor[]) => tf.sum(tf.mul(op(...x), r));
  const analytic = tf.grads(loss)(inputs).map((g) => g.dataSync() as Float32Array);
  let random = 7;
  const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  inputs.forEach((input, which) => {
    const base = Float32Array.from(input.dataSync() as Float32Array);
    const scale = Math.max(...Array.from(analytic[which]!, Math.abs));
    expect(scale, `input ${which}: a gradient that is not all zero`).toBeGreaterThan(0);
    for (let s = 0; s < samples; s++) {
      const i = Math.floor(next() * base.length);
      const at = (delta: number) => {
        const moved = Float32Array.from(base);
        moved[i]! += delta;
        const args = inputs.map((t, k) => (k === which ? tf.tensor(moved, t.shape) : t));
        return loss(...args).dataSync()[0]!;
      };
      const h = 1e-2;
      const numeric = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(numeric - analytic[which]![i]!), `input ${which} coordinate ${i}: ${numeric} vs ${analytic[which]![i]}`).toBeLessThanOrEqual(2e-3 * scale + 1e-3);
    }
  });
}

test('depth-wise convolution: input and filter gradients for DARTS strides, paddings and dilations', () => {
  for (const [k, stride, pad, dilation] of [[3, 1, 1, 1], [5, 2, 2, 1], [3, 2, 2, 2], [5, 1, 4, 2]] as const) {
    const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 11) as TF.Tensor4D;
    const f = tf.randomNormal([k, k, 3, 1], 0, 1, 'float32', 12) as TF.Tensor4D;
    checkGradients((a, b) => depthwiseConv2dTrainable(tf, a as TF.Tensor4D, b as TF.Tensor4D, stride, pad, dilation), [x, f]);
  }
});

test('training BatchNorm, with and without affine parameters', () => {
  const x = tf.randomNormal([3, 4, 5, 4], 1, 2, 'float32', 21) as TF.Tensor4D;
  const scale = tf.randomNormal([4], 1, 0.3, 'float32', 22) as TF.Tensor1D;
  const offset = tf.randomNormal([4], 0, 0.3, 'float32', 23) as TF.Tensor1D;
  checkGradients((a) => batchNormTrainable(tf, a as TF.Tensor4D), [x]);
  checkGradients((a, s, o) => batchNormTrainable(tf, a as TF.Tensor4D, { scale: s as TF.Tensor1D, offset: o as TF.Tensor1D }), [x, scale, offset]);
});

test('FactorizedReduce sampling and the 3x3 average pool that does not count padding', () => {
  const x = tf.randomNormal([2, 8, 6, 3], 0, 1, 'float32', 31) as TF.Tensor4D;
  checkGradients((a) => evenOddPixels(tf, a as TF.Tensor4D), [x]);
  for (const stride of [1, 2]) checkGradients((a) => avgPool3x3Trainable(tf, a as TF.Tensor4D, stride), [tf.randomNormal([2, 7, 7, 3], 0, 1, 'float32', 32)]);
});
