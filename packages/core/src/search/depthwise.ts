/**
 * Depth-wise convolution for training on tfjs's pure-JS CPU backend. Its filter gradient reads every
 * value through TensorBuffer.get (most of a search step's time, and most of its garbage), and it has
 * no gradient at all for dilated filters; here forward and both gradients are plain loops over the
 * typed arrays, for any stride, padding and dilation (DARTS's dil_conv in a reduction cell has both
 * stride 2 and dilation 2). Other backends get tf.depthwiseConv2d with the dilated filter written out.
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
