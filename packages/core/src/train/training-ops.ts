/**
 * BatchNorm in training mode with a hand-written backward pass in plain JS: tfjs's own gradient of
 * batchNorm on tf.moments goes through broadcasting element loops (index arithmetic per element) on
 * the pure-JS backend, which cost more than the convolutions (DARTS-FQA ran at 0.2 patches/s). NHWC
 * float32; the test checks values and gradients against tfjs's own ops.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './tfjs-models.js';

export interface BatchMoments {
  mean: Float32Array;
  /** Biased (population) variance, as BatchNorm normalizes with. */
  variance: Float32Array;
  /** Values per channel (n x h x w). */
  count: number;
}

/**
 * y = (x - mean_c) / sqrt(var_c + eps) * scale_c + offset_c with the batch's own statistics over
 * n, h, w (PyTorch's BatchNorm2d in training); the statistics are handed to `onMoments`.
 */
export function batchNormTraining(tf: Tf, x: TF.Tensor4D, scale: TF.Tensor1D, offset: TF.Tensor1D, eps: number, onMoments: (m: BatchMoments) => void): TF.Tensor4D {
  const op = tf.customGrad((...args: unknown[]) => {
    const [input, gamma, beta, save] = args as [TF.Tensor4D, TF.Tensor1D, TF.Tensor1D, (t: TF.Tensor[]) => void];
    const c = input.shape[3];
    const xs = input.dataSync() as Float32Array;
    const g = gamma.dataSync() as Float32Array;
    const b = beta.dataSync() as Float32Array;
    const m = xs.length / c;
    const mean = new Float64Array(c);
    const sq = new Float64Array(c);
    for (let i = 0; i < xs.length; i++) mean[i % c]! += xs[i]!;
    for (let k = 0; k < c; k++) mean[k]! /= m;
    for (let i = 0; i < xs.length; i++) {
      const d = xs[i]! - mean[i % c]!;
      sq[i % c]! += d * d;
    }
    const inv = Float64Array.from(sq, (s) => 1 / Math.sqrt(s / m + eps));
    const xhat = new Float32Array(xs.length);
    const y = new Float32Array(xs.length);
    for (let i = 0; i < xs.length; i++) {
      const k = i % c;
      xhat[i] = (xs[i]! - mean[k]!) * inv[k]!;
      y[i] = xhat[i]! * g[k]! + b[k]!;
    }
    onMoments({ mean: Float32Array.from(mean), variance: Float32Array.from(sq, (s) => s / m), count: m });
    save([gamma]);
    return {
      value: tf.tensor4d(y, input.shape),
      gradFunc: (dy: TF.Tensor4D, saved: TF.Tensor[]) => {
        const gs = (saved[0] as TF.Tensor1D).dataSync() as Float32Array;
        const d = dy.dataSync() as Float32Array;
        const dBeta = new Float64Array(c);
        const dGamma = new Float64Array(c);
        for (let i = 0; i < d.length; i++) {
          dBeta[i % c]! += d[i]!;
          dGamma[i % c]! += d[i]! * xhat[i]!;
        }
        // dx = scale * inv / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)).
        const dx = new Float32Array(d.length);
        for (let i = 0; i < d.length; i++) {
          const k = i % c;
          dx[i] = (gs[k]! * inv[k]! / m) * (m * d[i]! - dBeta[k]! - xhat[i]! * dGamma[k]!);
        }
        return [tf.tensor4d(dx, input.shape), tf.tensor1d(Float32Array.from(dGamma)), tf.tensor1d(Float32Array.from(dBeta))];
      },
    };
  });
  return op(x, scale, offset) as TF.Tensor4D;
}
