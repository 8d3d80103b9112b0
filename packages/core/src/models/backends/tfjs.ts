/**
 * The layer graph in TensorFlow.js (NHWC), on the fastest tfjs package installed (loadTf):
 * tfjs-node-gpu, tfjs-node, else pure JS. Weights are converted once from the model file's
 * PyTorch layouts.
 */
import type * as TF from '@tensorflow/tfjs';
import { loadTf, type Tf } from '../../train/tfjs-models.js';
import type { Graph, GraphNode } from '../graph.js';

/** PyTorch conv [out][in/groups][ky][kx] -> tfjs [ky][kx][in/groups][out] (depth-wise: [ky][kx][C][1], the same bytes). */
export function convToTf(w: Float32Array, shape: number[]): Float32Array {
  const [out, inC, kh, kw] = shape as [number, number, number, number];
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inC; i++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) t[((y * kw + x) * inC + i) * out + o] = w[((o * inC + i) * kh + y) * kw + x]!;
  return t;
}

export interface TfjsGraph {
  tf: Tf;
  /** tfjs package and backend, e.g. '@tensorflow/tfjs (cpu)'. */
  detail: string;
  /** Normalized input [n][3][size][size] (NCHW, as ONNX) -> n scores. */
  run(input: Float32Array, count: number, size: number): Promise<Float32Array>;
  dispose(): void;
}

export async function tfjsGraph(graph: Graph, tensors: Map<string, Float32Array>): Promise<TfjsGraph> {
  const { tf, package: pkg, backend } = await loadTf();
  const shapes = new Map(graph.tensors.map((t) => [t.name, t.shape]));
  const weights = new Map<string, TF.Tensor>();
  const data = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`missing tensor '${name}'`);
    return t;
  };
  for (const n of graph.nodes) {
    if (n.op === 'conv') {
      const shape = shapes.get(n.weight)!;
      const depthwise = n.groups > 1;
      if (depthwise && !(n.groups === n.inChannels && n.groups === n.outChannels)) throw new Error(`${n.weight}: tfjs runs plain and depth-wise convs only (groups ${n.groups})`);
      weights.set(n.weight, tf.tensor4d(convToTf(data(n.weight), shape), depthwise ? [n.kernel, n.kernel, n.inChannels, 1] : [n.kernel, n.kernel, n.inChannels, n.outChannels]));
      if (n.bias) weights.set(n.bias, tf.tensor1d(data(n.bias)));
    } else if (n.op === 'batchnorm') {
      for (const s of ['weight', 'bias', 'running_mean', 'running_var']) weights.set(`${n.prefix}.${s}`, tf.tensor1d(data(`${n.prefix}.${s}`)));
    } else if (n.op === 'gdn') {
      // gamma[j][c] multiplies x_j^2 in channel c's norm: norm = x^2 (row vector) . gamma + beta.
      weights.set(`${n.prefix}.gamma`, tf.tensor2d(data(`${n.prefix}.gamma`), [n.channels, n.channels]));
      weights.set(`${n.prefix}.beta`, tf.tensor1d(data(`${n.prefix}.beta`)));
    } else if (n.op === 'linear') {
      weights.set(n.weight, tf.tensor2d(data(n.weight), [n.outFeatures, n.inFeatures]));
      weights.set(n.bias, tf.tensor1d(data(n.bias)));
    }
  }
  const forward = (x0: TF.Tensor4D) => graphForward(tf, graph, (name) => weights.get(name)!, x0);
  return {
    tf,
    detail: `${pkg} (${backend})`,
    async run(input, count, size) {
      const out = tf.tidy(() => forward(tf.transpose(tf.tensor4d(input, [count, 3, size, size]), [0, 2, 3, 1])));
      const scores = (await out.data()) as Float32Array;
      out.dispose();
      return Float32Array.from(scores);
    },
    dispose: () => weights.forEach((t) => t.dispose()),
  };
}

/** A [k][k][in][out] filter with dilation d as the equivalent [(k-1)d+1]^2 filter (zeros between taps), differentiable. */
export function dilatedFilter(tf: Tf, w: TF.Tensor4D, d: number): TF.Tensor4D {
  const [k, , inC, outC] = w.shape;
  const spread = tf.pad(w.reshape([k, 1, k, 1, inC, outC]), [[0, 0], [0, d - 1], [0, 0], [0, d - 1], [0, 0], [0, 0]]);
  return spread.reshape([k * d, k * d, inC, outC]).slice([0, 0, 0, 0], [(k - 1) * d + 1, (k - 1) * d + 1, inC, outC]) as TF.Tensor4D;
}

/** Training hooks: what runs a graph's conv and BatchNorm nodes in place of the inference ops. */
export interface GraphForwardOptions {
  /** A conv node on its unpadded input, filter in tfjs layout (training: faster gradients). */
  conv?: (x: TF.Tensor4D, filter: TF.Tensor4D, node: Extract<GraphNode, { op: 'conv' }>) => TF.Tensor4D;
  /** A BatchNorm node (training: batch statistics instead of the running ones). */
  batchNorm?: (x: TF.Tensor4D, prefix: string) => TF.Tensor4D;
}

/** The graph's forward pass on NHWC input, weights in tfjs layouts by tensor name: scores [n]. */
export function graphForward(tf: Tf, graph: Graph, w: (name: string) => TF.Tensor, x0: TF.Tensor4D, o: GraphForwardOptions = {}): TF.Tensor1D {
  const values = new Map<string, TF.Tensor4D>([[graph.input, x0]]);
  for (const n of graph.nodes) {
    const x = values.get(n.inputs[0]!)!;
    let y: TF.Tensor4D;
    switch (n.op) {
      case 'conv': {
        if (o.conv) {
          y = o.conv(x, w(n.weight) as TF.Tensor4D, n);
        } else {
          // Explicit zero padding, then 'valid': the same arithmetic on every tfjs backend.
          const xp = n.pad > 0 ? tf.pad(x, [[0, 0], [n.pad, n.pad], [n.pad, n.pad], [0, 0]]) : x;
          // tfjs takes a stride or a dilation, not both, and has no gradient for dilated depth-wise
          // convs: a dilated filter is written out as the larger filter with zeros between its taps.
          const filter = n.dilation > 1 ? dilatedFilter(tf, w(n.weight) as TF.Tensor4D, n.dilation) : (w(n.weight) as TF.Tensor4D);
          y = n.groups > 1 ? tf.depthwiseConv2d(xp, filter, n.stride, 'valid') : tf.conv2d(xp, filter, n.stride, 'valid');
        }
        if (n.bias) y = tf.add(y, w(n.bias));
        break;
      }
      case 'batchnorm':
        y = o.batchNorm
          ? o.batchNorm(x, n.prefix)
          : tf.batchNorm(x, w(`${n.prefix}.running_mean`) as TF.Tensor1D, w(`${n.prefix}.running_var`) as TF.Tensor1D, w(`${n.prefix}.bias`) as TF.Tensor1D, w(`${n.prefix}.weight`) as TF.Tensor1D, 1e-5);
        break;
      case 'relu':
        y = tf.relu(x);
        break;
      case 'relu6':
        y = tf.relu6(x);
        break;
      case 'maxpool': {
        // Padded cells never win. The CPU backend's padded max pool skips them itself (and its
        // gradient is cheap); elsewhere pad with the lowest float, then 'valid' (floor) pooling.
        if (n.pad > 0 && tf.getBackend() === 'cpu') y = tf.maxPool(x, n.kernel, n.stride, n.pad);
        else {
          const xp = n.pad > 0 ? tf.pad(x, [[0, 0], [n.pad, n.pad], [n.pad, n.pad], [0, 0]], -3.4e38) : x;
          y = tf.maxPool(xp, n.kernel, n.stride, 'valid');
        }
        break;
      }
      case 'avgpool':
        if (n.pad > 0) {
          // Padded cells do not count: the zero-padded window sum over the number of in-image cells.
          const pads: [number, number][] = [[0, 0], [n.pad, n.pad], [n.pad, n.pad], [0, 0]];
          const cells = tf.avgPool(tf.pad(tf.onesLike(x.slice([0, 0, 0, 0], [1, -1, -1, 1])), pads), n.kernel, n.stride, 'valid');
          y = tf.div(tf.avgPool(tf.pad(x, pads), n.kernel, n.stride, 'valid'), cells);
        } else {
          y = tf.avgPool(x, n.kernel, n.stride, 'valid');
        }
        break;
      case 'globalavg':
        y = tf.mean(x, [1, 2], true);
        break;
      // As a max pool over the whole map, not tf.max: where the largest value occurs more than once (a
      // max pool's plateau) tf.max's gradient reaches every copy in full, a pool's (and PyTorch's
      // MaxPool2d, which DARTS-FQA uses here) reaches one.
      case 'globalmax':
        y = tf.maxPool(x, [x.shape[1], x.shape[2]], 1, 'valid');
        break;
      case 'globalmin':
        y = tf.neg(tf.maxPool(tf.neg(x), [x.shape[1], x.shape[2]], 1, 'valid'));
        break;
      case 'add':
        y = tf.add(x, values.get(n.inputs[1]!)!);
        break;
      case 'concat':
        y = tf.concat(n.inputs.map((v) => values.get(v)!), 3);
        break;
      case 'shift':
        y = tf.slice(x, [0, 1, 1, 0], [-1, -1, -1, -1]);
        break;
      case 'gdn': {
        const [b, h, wd, c] = x.shape;
        const norm = tf.add(tf.matMul(tf.square(x).reshape([-1, c]), w(`${n.prefix}.gamma`) as TF.Tensor2D), w(`${n.prefix}.beta`));
        y = tf.div(x, tf.sqrt(norm).reshape([b, h, wd, c]));
        break;
      }
      case 'linear':
        y = tf.add(tf.matMul(x.reshape([x.shape[0], n.inFeatures]), w(n.weight) as TF.Tensor2D, false, true), w(n.bias)).reshape([x.shape[0], 1, 1, n.outFeatures]);
        break;
    }
    values.set(n.output, y);
  }
  return values.get(graph.output)!.reshape([-1]) as TF.Tensor1D;
}

/** A tensor of the model file (PyTorch layout) in the tfjs layout graphForward reads. */
export function tensorToTf(graph: Graph, name: string, data: Float32Array, shape: number[]): Float32Array {
  return graph.nodes.some((n) => n.op === 'conv' && n.weight === name) ? convToTf(data, shape) : data;
}

/** The inverse of tensorToTf (tfjs layout back to the model file's PyTorch layout). */
export function tensorFromTf(graph: Graph, name: string, data: Float32Array, shape: number[]): Float32Array {
  return graph.nodes.some((n) => n.op === 'conv' && n.weight === name) ? convFromTf(data, shape) : data;
}

/** tfjs [ky][kx][in/groups][out] (depth-wise [ky][kx][C][1]) -> PyTorch conv [out][in/groups][ky][kx] of `shape`. */
export function convFromTf(data: Float32Array, shape: number[]): Float32Array {
  const [out, inC, kh, kw] = shape as [number, number, number, number];
  const t = new Float32Array(data.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inC; i++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) t[((o * inC + i) * kh + y) * kw + x] = data[((y * kw + x) * inC + i) * out + o]!;
  return t;
}

/** The tfjs shape of a graph tensor (the layouts graphForward reads). */
export function tfShape(graph: Graph, name: string, shape: number[]): number[] {
  const n = graph.nodes.find((m) => (m.op === 'conv' && m.weight === name) || (m.op === 'linear' && m.weight === name) || (m.op === 'gdn' && `${m.prefix}.gamma` === name));
  if (n?.op === 'conv') return n.groups > 1 ? [n.kernel, n.kernel, n.inChannels, 1] : [n.kernel, n.kernel, n.inChannels, n.outChannels];
  return n ? shape.slice(0, 2) : [shape.reduce((a, b) => a * b, 1)];
}
