/**
 * A convolution for training on the pure-JS tfjs backend, where conv2d and both of its gradients are
 * direct loops: here the forward pass, the filter gradient and the input gradient are each one
 * matMul (tfjs-backend-cpu's blocked matMul) around an im2col / col2im in plain JS. Zero padding,
 * dilation 1, one group. DenseNet-13 at 64 px trains several
 * times faster this way; the test checks values and gradients against tf.conv2d's own.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './tfjs-models.js';

interface Geometry {
  n: number;
  h: number;
  w: number;
  c: number;
  K: number;
  stride: number;
  pad: number;
  oh: number;
  ow: number;
}

/**
 * Visits every (column row, filter tap) pair that falls inside the image: `visit(imageOffset,
 * columnOffset)` for the c channels there. Taps in the zero padding are skipped (their columns stay 0).
 */
function forEachTap(g: Geometry, visit: (image: number, column: number) => void): void {
  const width = g.K * g.K * g.c;
  for (let b = 0; b < g.n; b++)
    for (let i = 0; i < g.oh; i++)
      for (let j = 0; j < g.ow; j++) {
        const row = ((b * g.oh + i) * g.ow + j) * width;
        for (let ky = 0; ky < g.K; ky++) {
          const y = i * g.stride - g.pad + ky;
          if (y < 0 || y >= g.h) continue;
          for (let kx = 0; kx < g.K; kx++) {
            const x = j * g.stride - g.pad + kx;
            if (x < 0 || x >= g.w) continue;
            visit(((b * g.h + y) * g.w + x) * g.c, row + (ky * g.K + kx) * g.c);
          }
        }
      }
}

/** x [n,h,w,c] (NHWC) -> columns [n*oh*ow, K*K*c], in the filter's [ky][kx][c] order. */
function im2col(x: Float32Array, g: Geometry): Float32Array {
  const cols = new Float32Array(g.n * g.oh * g.ow * g.K * g.K * g.c);
  forEachTap(g, (image, column) => cols.set(x.subarray(image, image + g.c), column));
  return cols;
}

/** The adjoint of im2col: columns summed back into an [n,h,w,c] image. */
function col2im(cols: Float32Array, g: Geometry): Float32Array {
  const x = new Float32Array(g.n * g.h * g.w * g.c);
  forEachTap(g, (image, column) => {
    for (let k = 0; k < g.c; k++) x[image + k]! += cols[column + k]!;
  });
  return x;
}

/** Convolution of x [n,h,w,c] with filter [K,K,c,out], zero padding `pad`, with matMul-based gradients. */
export function conv2dIm2col(tf: Tf, x: TF.Tensor4D, filter: TF.Tensor4D, stride: number, pad: number): TF.Tensor4D {
  const op = tf.customGrad((...args: unknown[]) => {
    const [input, f, save] = args as [TF.Tensor4D, TF.Tensor4D, (t: TF.Tensor[]) => void];
    const [n, h, w, c] = input.shape;
    const [K, , , out] = f.shape;
    const oh = Math.floor((h + 2 * pad - K) / stride) + 1;
    const ow = Math.floor((w + 2 * pad - K) / stride) + 1;
    const g: Geometry = { n, h, w, c, K, stride, pad, oh, ow };
    // A 1x1 conv at stride 1 needs no columns: the image is its own [n*h*w, c] matrix.
    const direct = K === 1 && stride === 1 && pad === 0;
    const cols = direct ? input.reshape([n * h * w, c]) as TF.Tensor2D : tf.tensor2d(im2col(input.dataSync() as Float32Array, g), [n * oh * ow, K * K * c]);
    save([cols, f]);
    return {
      value: tf.matMul(cols, f.reshape([K * K * c, out]) as TF.Tensor2D).reshape([n, oh, ow, out]) as TF.Tensor4D,
      gradFunc: (dy: TF.Tensor4D, saved: TF.Tensor[]) => {
        const [columns, fs] = saved as [TF.Tensor2D, TF.Tensor4D];
        const dy2 = dy.reshape([n * oh * ow, out]) as TF.Tensor2D;
        const dw = tf.matMul(columns, dy2, true, false).reshape([K, K, c, out]);
        const dcols = tf.matMul(dy2, fs.reshape([K * K * c, out]) as TF.Tensor2D, false, true);
        if (direct) return [dcols.reshape([n, h, w, c]), dw];
        const dx = tf.tensor4d(col2im(dcols.dataSync() as Float32Array, g), [n, h, w, c]);
        dcols.dispose();
        return [dx, dw];
      },
    };
  });
  return op(x, filter) as TF.Tensor4D;
}
