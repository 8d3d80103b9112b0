/**
 * Training ops for tfjs's pure-JS CPU backend, where the search and the evaluation network spend
 * nearly all their time in generic per-element loops (TensorBuffer.get, transposes for reductions
 * over N, H, W, broadcasting by index) and the garbage they make:
 * - depth-wise convolution: tfjs reads every value of its filter gradient through TensorBuffer.get
 *   and has no gradient at all for dilated filters; here forward and both gradients are plain loops,
 *   for any stride, padding and dilation (DARTS's dil_conv in a reduction cell has stride 2 and
 *   dilation 2);
 * - training-mode BatchNorm: batch statistics and the gradient in closed form, in one pass each.
 * Other backends get the equivalent tf ops.
 */
import type * as TF from '@tensorflow/tfjs';
import { dilatedFilter } from '../models/backends/tfjs.js';
import type { Tf } from '../train/tfjs-models.js';

interface Geometry {
  n: number; h: number; w: number; c: number; k: number; oh: number; ow: number; stride: number; pad: number; dilation: number;
}

/** Calls visit(outIndex, inIndex, tapIndex) for every in-image (output, input, filter tap) triple. */
function eachTap(g: Geometry, visit: (o: number, i: number, t: number) => void): void {
  const { n, h, w, c, k, oh, ow, stride, pad, dilation } = g;
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        const o = ((b * oh + oy) * ow + ox) * c;
        for (let ky = 0; ky < k; ky++) {
          const y = oy * stride - pad + ky * dilation;
          if (y < 0 || y >= h) continue;
          for (let kx = 0; kx < k; kx++) {
            const x = ox * stride - pad + kx * dilation;
            if (x < 0 || x >= w) continue;
            const i = ((b * h + y) * w + x) * c;
            const t = (ky * k + kx) * c;
            for (let ch = 0; ch < c; ch++) visit(o + ch, i + ch, t + ch);
          }
        }
      }
}

/** y = depthwise(x, f) with f [k][k][C][1], zero padding `pad` on each side. */
export function depthwiseConv2dTrainable(tf: Tf, x: TF.Tensor4D, f: TF.Tensor4D, stride: number, pad: number, dilation = 1): TF.Tensor4D {
  if (tf.getBackend() !== 'cpu') return tf.depthwiseConv2d(x, dilation > 1 ? dilatedFilter(tf, f, dilation) : f, stride, pad);
  const [n, h, w, c] = x.shape;
  const k = f.shape[0];
  const span = (k - 1) * dilation + 1;
  const g: Geometry = { n, h, w, c, k, stride, pad, dilation, oh: Math.floor((h + 2 * pad - span) / stride) + 1, ow: Math.floor((w + 2 * pad - span) / stride) + 1 };
  const op = tf.customGrad((...args: unknown[]) => {
    const [input, filter, save] = args as [TF.Tensor4D, TF.Tensor4D, (t: TF.Tensor[]) => void];
    save([input, filter]);
    const xv = input.dataSync() as Float32Array;
    const fv = filter.dataSync() as Float32Array;
    const out = new Float32Array(n * g.oh * g.ow * c);
    eachTap(g, (o, i, t) => (out[o]! += xv[i]! * fv[t]!));
    return {
      value: tf.tensor4d(out, [n, g.oh, g.ow, c]),
      gradFunc: (dy: TF.Tensor4D, saved: TF.Tensor[]) => {
        const [xi, fi] = saved as [TF.Tensor4D, TF.Tensor4D];
        const xs = xi.dataSync() as Float32Array;
        const fs = fi.dataSync() as Float32Array;
        const dys = dy.dataSync() as Float32Array;
        const dx = new Float32Array(xs.length);
        const df = new Float32Array(fs.length);
        eachTap(g, (o, i, t) => {
          dx[i]! += fs[t]! * dys[o]!;
          df[t]! += xs[i]! * dys[o]!;
        });
        return [tf.tensor4d(dx, xi.shape), tf.tensor4d(df, fi.shape)];
      },
    };
  });
  return op(x, f) as TF.Tensor4D;
}

const BN_EPS = 1e-5;

/**
 * BatchNorm in training mode over (batch, rows, cols): (x - mean) / sqrt(var + 1e-5) with the
 * batch's biased variance, times `scale` plus `offset` when given (affine). `onStatistics` receives
 * the batch mean and biased variance per channel (to update running statistics).
 */
export function batchNormTrainable(tf: Tf, x: TF.Tensor4D, affine?: { scale: TF.Tensor1D; offset: TF.Tensor1D }, onStatistics?: (mean: Float32Array, variance: Float32Array, count: number) => void): TF.Tensor4D {
  const c = x.shape[3];
  const count = x.shape[0] * x.shape[1] * x.shape[2];
  if (tf.getBackend() !== 'cpu') {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    if (onStatistics) onStatistics(Float32Array.from(mean.dataSync()), Float32Array.from(variance.dataSync()), count);
    const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, BN_EPS)));
    return (affine ? tf.add(tf.mul(y, affine.scale), affine.offset) : y) as TF.Tensor4D;
  }
  const normalize = (xv: Float32Array) => {
    const mean = new Float64Array(c);
    const sq = new Float64Array(c);
    for (let i = 0; i < xv.length; i++) mean[i % c]! += xv[i]!;
    for (let ch = 0; ch < c; ch++) mean[ch]! /= count;
    for (let i = 0; i < xv.length; i++) {
      const d = xv[i]! - mean[i % c]!;
      sq[i % c]! += d * d;
    }
    const variance = Float32Array.from(sq, (s) => s / count);
    const invStd = Float32Array.from(variance, (v) => 1 / Math.sqrt(v + BN_EPS));
    const xhat = new Float32Array(xv.length);
    for (let i = 0; i < xv.length; i++) xhat[i] = (xv[i]! - mean[i % c]!) * invStd[i % c]!;
    return { xhat, mean: Float32Array.from(mean), variance, invStd };
  };
  const scaled = (xhat: Float32Array, scale: Float32Array | null, offset: Float32Array | null) => {
    if (!scale || !offset) return xhat;
    const y = new Float32Array(xhat.length);
    for (let i = 0; i < y.length; i++) y[i] = xhat[i]! * scale[i % c]! + offset[i % c]!;
    return y;
  };
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args.at(-1) as (t: TF.Tensor[]) => void;
    const [input, scale, offset] = args as [TF.Tensor4D, TF.Tensor1D | undefined, TF.Tensor1D | undefined];
    const n = normalize(input.dataSync() as Float32Array);
    onStatistics?.(n.mean, n.variance, count);
    const scaleValues = affine ? (scale!.dataSync() as Float32Array) : null;
    const xhat = tf.tensor4d(n.xhat, input.shape);
    const invStd = tf.tensor1d(n.invStd);
    save(affine ? [xhat, invStd, scale!] : [xhat, invStd]);
    return {
      value: tf.tensor4d(scaled(n.xhat, scaleValues, affine ? (offset!.dataSync() as Float32Array) : null), input.shape),
      gradFunc: (dy: TF.Tensor4D, saved: TF.Tensor[]) => {
        const xh = saved[0]!.dataSync() as Float32Array;
        const inv = saved[1]!.dataSync() as Float32Array;
        const g = affine ? (saved[2]!.dataSync() as Float32Array) : null;
        const dyv = dy.dataSync() as Float32Array;
        // dx = invStd / M * (M dxhat - sum(dxhat) - xhat sum(dxhat xhat)), dxhat = dy * scale.
        const sumD = new Float64Array(c);
        const sumDX = new Float64Array(c);
        const sumDy = new Float64Array(c);
        const sumDyX = new Float64Array(c);
        for (let i = 0; i < dyv.length; i++) {
          const ch = i % c;
          const d = g ? dyv[i]! * g[ch]! : dyv[i]!;
          sumD[ch]! += d;
          sumDX[ch]! += d * xh[i]!;
          sumDy[ch]! += dyv[i]!;
          sumDyX[ch]! += dyv[i]! * xh[i]!;
        }
        const dx = new Float32Array(dyv.length);
        for (let i = 0; i < dyv.length; i++) {
          const ch = i % c;
          const d = g ? dyv[i]! * g[ch]! : dyv[i]!;
          dx[i] = (inv[ch]! / count) * (count * d - sumD[ch]! - xh[i]! * sumDX[ch]!);
        }
        const dxTensor = tf.tensor4d(dx, dy.shape);
        return affine ? [dxTensor, tf.tensor1d(Float32Array.from(sumDyX)), tf.tensor1d(Float32Array.from(sumDy))] : [dxTensor];
      },
    };
  });
  return (affine ? op(x, affine.scale, affine.offset) : op(x)) as TF.Tensor4D;
}

/**
 * FactorizedReduce's two samplings of an even-sized map in one op: pixels (2i, 2j) in channels
 * 0..C-1 and pixels (2i+1, 2j+1) in channels C..2C-1 (a plain loop and its scatter on the CPU backend,
 * where a strided slice has no gradient and a rank-6 slice walks every value by index).
 */
export function evenOddPixels(tf: Tf, x: TF.Tensor4D): TF.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [oh, ow] = [h / 2, w / 2];
  if (tf.getBackend() !== 'cpu') {
    const grid = x.reshape([n, oh, 2, ow, 2, c]);
    const pick = (o: number) => grid.slice([0, 0, o, 0, o, 0], [n, oh, 1, ow, 1, c]).reshape([n, oh, ow, c]);
    return tf.concat([pick(0), pick(1)], 3) as TF.Tensor4D;
  }
  const each = (visit: (out: number, at: number) => void) => {
    for (let b = 0; b < n; b++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++)
          for (let o = 0; o < 2; o++) {
            const out = ((b * oh + i) * ow + j) * 2 * c + o * c;
            const at = ((b * h + 2 * i + o) * w + 2 * j + o) * c;
            for (let ch = 0; ch < c; ch++) visit(out + ch, at + ch);
          }
  };
  const op = tf.customGrad((...args: unknown[]) => {
    const input = args[0] as TF.Tensor4D;
    const xv = input.dataSync() as Float32Array;
    const out = new Float32Array(n * oh * ow * 2 * c);
    each((o, i) => (out[o] = xv[i]!));
    return {
      value: tf.tensor4d(out, [n, oh, ow, 2 * c]),
      gradFunc: (dy: TF.Tensor4D) => {
        const dyv = dy.dataSync() as Float32Array;
        const dx = new Float32Array(n * h * w * c);
        each((o, i) => (dx[i] = dyv[o]!));
        return [tf.tensor4d(dx, [n, h, w, c])];
      },
    };
  });
  return op(x) as TF.Tensor4D;
}

/**
 * 3x3 average pool with padding 1 that does not count padded cells (torch's count_include_pad=False).
 * tfjs's padded avgPool computes exactly that forward, but its gradient divides by 9 everywhere; the
 * gradient here divides by each window's own cell count. Other backends: the padded sum over the counts.
 */
export function avgPool3x3Trainable(tf: Tf, x: TF.Tensor4D, stride: number): TF.Tensor4D {
  if (tf.getBackend() !== 'cpu') {
    const pads: [number, number][] = [[0, 0], [1, 1], [1, 1], [0, 0]];
    const cells = tf.avgPool(tf.pad(tf.onesLike(x.slice([0, 0, 0, 0], [1, -1, -1, 1])), pads), 3, stride, 'valid');
    return tf.div(tf.avgPool(tf.pad(x, pads), 3, stride, 'valid'), cells) as TF.Tensor4D;
  }
  const [n, h, w, c] = x.shape;
  const k = 3;
  const g: Geometry = { n, h, w, c, k, stride, pad: 1, dilation: 1, oh: Math.floor((h - 1) / stride) + 1, ow: Math.floor((w - 1) / stride) + 1 };
  const inside = (o: number, size: number) => Math.min(size - 1, o * stride + 1) - Math.max(0, o * stride - 1) + 1;
  const op = tf.customGrad((...args: unknown[]) => {
    const input = args[0] as TF.Tensor4D;
    return {
      value: tf.avgPool(input, 3, stride, 1),
      gradFunc: (dy: TF.Tensor4D) => {
        const dyv = dy.dataSync() as Float32Array;
        const share = new Float32Array(dyv.length);
        for (let b = 0; b < n; b++)
          for (let i = 0; i < g.oh; i++)
            for (let j = 0; j < g.ow; j++) {
              const cells = inside(i, h) * inside(j, w);
              const base = ((b * g.oh + i) * g.ow + j) * c;
              for (let ch = 0; ch < c; ch++) share[base + ch] = dyv[base + ch]! / cells;
            }
        const dx = new Float32Array(n * h * w * c);
        eachTap(g, (o, i) => (dx[i]! += share[o]!));
        return [tf.tensor4d(dx, [n, h, w, c])];
      },
    };
  });
  return op(x) as TF.Tensor4D;
}
