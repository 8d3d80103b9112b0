/**
 * The DARTS-FQA search network (dartsfqa_search.Network) in tfjs: a stem, then `layers` reduction
 * cells whose every edge is a mixed op, the softmax(alpha)-weighted sum of all PRIMITIVES, then a
 * global max pool and a linear score. All cells share one alpha matrix [edge][op] (every cell is a
 * reduction cell, so only alphas_reduce is ever used). As upstream with learnable_bn off, BatchNorm
 * inside cells has no affine parameters and pools are followed by a BatchNorm; BatchNorm always
 * normalizes with the batch's statistics (the search only trains).
 */
import type * as TF from '@tensorflow/tfjs';
import { gaussian } from '../train/random.js';
import { conv2dTrainable, type Tf } from '../train/tfjs-models.js';
import { avgPool3x3Trainable, batchNormTrainable, depthwiseConv2dTrainable, evenOddPixels } from './cpu-ops.js';
import { edgeCount, PRIMITIVES, type Primitive } from './genotype.js';

export interface SupernetShape {
  /** Initial channels C (upstream --init_channels 8); cells have 2C, 4C, 8C... */
  channels: number;
  /** Reduction cells (upstream --layers 3). */
  layers: number;
  /** Intermediate nodes per cell (upstream --node 2). */
  steps: number;
  /** The last `multiplier` nodes form the cell output (upstream 1). */
  multiplier: number;
}

export interface Supernet {
  shape: SupernetShape;
  /** Network weights w, by PyTorch-like names. */
  weights: Map<string, TF.Variable>;
  /** Architecture weights alpha [edges][PRIMITIVES.length]. */
  alphas: TF.Variable;
  /** Scores [n] for a normalized NHWC batch. */
  forward(x: TF.Tensor4D): TF.Tensor1D;
  dispose(): void;
}

export function createSupernet(tf: Tf, shape: SupernetShape, random: () => number): Supernet {
  const weights = new Map<string, TF.Variable>();
  const uniform = (count: number, fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn); // PyTorch's default conv / linear init bound
    return Float32Array.from({ length: count }, () => (2 * random() - 1) * bound);
  };
  /** A conv filter [k][k][in][out] (depth-wise: [k][k][C][1]). */
  const conv = (name: string, k: number, inC: number, outC: number, depthwise = false) => {
    const s: [number, number, number, number] = depthwise ? [k, k, inC, 1] : [k, k, inC, outC];
    weights.set(name, tf.variable(tf.tensor4d(uniform(s[0] * s[1] * s[2] * s[3], depthwise ? k * k : k * k * inC), s)));
  };
  const w = (name: string) => weights.get(name)!;

  // Training-mode BatchNorm over (batch, rows, cols); `affine` adds a learned scale and shift.
  const batchNorm = (x: TF.Tensor4D, affine?: string): TF.Tensor4D =>
    batchNormTrainable(tf, x, affine ? { scale: w(`${affine}.weight`) as TF.Tensor1D, offset: w(`${affine}.bias`) as TF.Tensor1D } : undefined);
  /** 1x1 conv as one matMul (fast forward and backward on every backend). */
  const pointwise = (x: TF.Tensor4D, name: string): TF.Tensor4D => {
    const [n, h, wd, c] = x.shape;
    const f = w(name);
    return tf.matMul(x.reshape([n * h * wd, c]), f.reshape([c, f.shape[3]!]) as TF.Tensor2D).reshape([n, h, wd, f.shape[3]!]) as TF.Tensor4D;
  };
  const depthwise = (x: TF.Tensor4D, name: string, stride: number, p: number, dilation = 1) => depthwiseConv2dTrainable(tf, x, w(name) as TF.Tensor4D, stride, p, dilation);
  // Operations (operations.py OPS with affine = False) and their weights.
  const defineFactorizedReduce = (name: string, inC: number, outC: number) => {
    conv(`${name}.conv_1.weight`, 1, inC, outC / 2);
    conv(`${name}.conv_2.weight`, 1, inC, outC / 2);
  };
  const factorizedReduce = (x: TF.Tensor4D, name: string): TF.Tensor4D => {
    // conv_1 on pixels (0, 2, 4, ...), conv_2 (on x[:, :, 1:, 1:]) on pixels (1, 3, 5, ...), concatenated:
    // one matMul of both samplings side by side with the block-diagonal [[conv_1, 0], [0, conv_2]].
    const pairs = evenOddPixels(tf, tf.relu(x));
    const [n, h, wd, c2] = pairs.shape;
    const c = c2 / 2;
    const half = w(`${name}.conv_1.weight`).shape[3]!;
    const zeros = tf.zeros([c, half]);
    const block = tf.concat([
      tf.concat([w(`${name}.conv_1.weight`).reshape([c, half]), zeros], 1),
      tf.concat([zeros, w(`${name}.conv_2.weight`).reshape([c, half])], 1),
    ], 0) as TF.Tensor2D;
    return batchNorm(tf.matMul(pairs.reshape([n * h * wd, c2]), block).reshape([n, h, wd, 2 * half]) as TF.Tensor4D);
  };
  const defineOp = (op: Primitive, name: string, C: number, stride: number) => {
    if (op === 'skip_connect' && stride === 2) defineFactorizedReduce(name, C, C);
    const sep = op === 'sep_conv_3x3' ? 3 : op === 'sep_conv_5x5' ? 5 : 0;
    if (sep) {
      for (const i of [1, 5]) conv(`${name}.op.${i}.weight`, sep, C, C, true);
      for (const i of [2, 6]) conv(`${name}.op.${i}.weight`, 1, C, C);
    }
    const dil = op === 'dil_conv_3x3' ? 3 : op === 'dil_conv_5x5' ? 5 : 0;
    if (dil) {
      conv(`${name}.op.1.weight`, dil, C, C, true);
      conv(`${name}.op.2.weight`, 1, C, C);
    }
  };
  const runOp = (op: Primitive, x: TF.Tensor4D, name: string, stride: number): TF.Tensor4D | null => {
    switch (op) {
      case 'none':
        return null; // zero: adds nothing to the mixed sum
      case 'max_pool_3x3':
        return batchNorm(tf.maxPool(x, 3, stride, 1)); // tfjs's padded max pool skips padded cells, as torch
      case 'avg_pool_3x3':
        return batchNorm(avgPool3x3Trainable(tf, x, stride)); // count_include_pad=False
      case 'skip_connect':
        return stride === 1 ? x : factorizedReduce(x, name);
      case 'sep_conv_3x3':
      case 'sep_conv_5x5': {
        const k = op === 'sep_conv_3x3' ? 3 : 5;
        let y = batchNorm(pointwise(depthwise(tf.relu(x), `${name}.op.1.weight`, stride, k >> 1), `${name}.op.2.weight`));
        y = batchNorm(pointwise(depthwise(tf.relu(y), `${name}.op.5.weight`, 1, k >> 1), `${name}.op.6.weight`));
        return y;
      }
      case 'dil_conv_3x3':
      case 'dil_conv_5x5': {
        const k = op === 'dil_conv_3x3' ? 3 : 5;
        return batchNorm(pointwise(depthwise(tf.relu(x), `${name}.op.1.weight`, stride, k - 1, 2), `${name}.op.2.weight`));
      }
    }
  };

  // The network (dartsfqa_search.Network.__init__).
  const stemChannels = 3 * shape.channels;
  conv('stem.0.weight', 3, 3, stemChannels);
  weights.set('stem.1.weight', tf.variable(tf.ones([stemChannels])));
  weights.set('stem.1.bias', tf.variable(tf.zeros([stemChannels])));
  const cells: { C: number; reducePrev: boolean }[] = [];
  let [cpp, cp, C] = [stemChannels, stemChannels, shape.channels];
  for (let i = 0; i < shape.layers; i++) {
    C *= 2;
    const p = `cells.${i}`;
    if (i > 0) defineFactorizedReduce(`${p}.preprocess0`, cpp, C);
    else conv(`${p}.preprocess0.op.1.weight`, 1, cpp, C);
    conv(`${p}.preprocess1.op.1.weight`, 1, cp, C);
    let edge = 0;
    for (let step = 0; step < shape.steps; step++)
      for (let j = 0; j < 2 + step; j++, edge++)
        for (const [k, op] of PRIMITIVES.entries()) defineOp(op, `${p}._ops.${edge}._ops.${k}`, C, j < 2 ? 2 : 1);
    cells.push({ C, reducePrev: i > 0 });
    [cpp, cp] = [cp, shape.multiplier * C];
  }
  weights.set('classifier.weight', tf.variable(tf.tensor2d(uniform(cp, cp), [cp, 1])));
  weights.set('classifier.bias', tf.variable(tf.tensor1d(uniform(1, cp))));

  // alphas_reduce = 1e-3 * randn(edges, ops)
  const edges = edgeCount(shape.steps);
  const alphas = tf.variable(tf.tensor2d(Float32Array.from({ length: edges * PRIMITIVES.length }, () => 1e-3 * gaussian(random)), [edges, PRIMITIVES.length]));

  const forward = (x: TF.Tensor4D): TF.Tensor1D => {
    const mix = tf.softmax(alphas); // [edges][ops]
    const mixWeights = tf.unstack(mix).map((row) => tf.unstack(row));
    const stem = batchNorm(conv2dTrainable(tf, x, w('stem.0.weight') as TF.Tensor4D, 1, 1), 'stem.1');
    let [s0, s1] = [stem, stem];
    cells.forEach((cell, i) => {
      const p = `cells.${i}`;
      const t0 = cell.reducePrev ? factorizedReduce(s0, `${p}.preprocess0`) : batchNorm(pointwise(tf.relu(s0), `${p}.preprocess0.op.1.weight`));
      const t1 = batchNorm(pointwise(tf.relu(s1), `${p}.preprocess1.op.1.weight`));
      const states = [t0, t1];
      let edge = 0;
      for (let step = 0; step < shape.steps; step++) {
        const terms: TF.Tensor4D[] = [];
        states.forEach((h, j) => {
          PRIMITIVES.forEach((op, k) => {
            const y = runOp(op, h, `${p}._ops.${edge}._ops.${k}`, j < 2 ? 2 : 1);
            if (y) terms.push(tf.mul(y, mixWeights[edge]![k]!));
          });
          edge++;
        });
        states.push(tf.addN(terms));
      }
      [s0, s1] = [s1, tf.concat(states.slice(-shape.multiplier), 3)];
    });
    // MaxPool2d(8) on the 8x8 map of a 64 px input, as a pool (tf.max's gradient reaches every tied cell in full).
    const pooled = tf.maxPool(s1, [s1.shape[1], s1.shape[2]], 1, 'valid').reshape([s1.shape[0], s1.shape[3]]) as TF.Tensor2D;
    return tf.add(tf.matMul(pooled, w('classifier.weight') as TF.Tensor2D), w('classifier.bias')).reshape([-1]) as TF.Tensor1D;
  };

  return {
    shape,
    weights,
    alphas,
    forward,
    dispose: () => {
      weights.forEach((v) => v.dispose());
      alphas.dispose();
    },
  };
}
