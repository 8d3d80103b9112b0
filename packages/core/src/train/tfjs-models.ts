/**
 * FocusLiteNN and EONSS as TensorFlow.js graphs, for the tfjs trainer (and the deep models that will
 * follow it). The backend is the fastest one installed: @tensorflow/tfjs-node-gpu, then
 * @tensorflow/tfjs-node (both optional: they download libtensorflow on install), else the pure-JS CPU
 * backend of @tensorflow/tfjs. Weights convert to and from the native specs (PyTorch layouts), so a
 * tfjs-trained model is written as the same model file and scanned by the native kernels.
 */
import type { EonssLayerSpec, EonssSpec, FocusLiteNNSpec } from '@fqa/native';
import type * as TF from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';

export type Tf = typeof TF;

export interface TfRuntime {
  tf: Tf;
  /** The package that provided tf. */
  package: string;
  /** tf.getBackend() after setup: 'tensorflow' for the node packages, 'cpu' for pure JS. */
  backend: string;
}

let runtime: Promise<TfRuntime> | undefined;

/** Loads tfjs once per process, preferring the native backends when they are installed. */
export function loadTf(): Promise<TfRuntime> {
  runtime ??= (async () => {
    // Pure-JS tfjs greets Node users with a banner suggesting tfjs-node (console.log/warn); fqa
    // reports the backend it uses itself, so the banner is held back while tfjs loads.
    const quiet = (write: (...a: unknown[]) => void) => (...a: unknown[]) => {
      const text = a.map(String).join(' ');
      if (!/tfjs-node|TensorFlow\.js in Node\.js|^=+$|^\s*$/.test(text.trim())) write(...a);
    };
    const { log, warn } = console;
    console.log = quiet(log);
    console.warn = quiet(warn);
    try {
      for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs']) {
        try {
          const module = (await import(name)) as Tf & { default?: Tf };
          const tf = (module.default ?? module) as Tf;
          await tf.ready();
          tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)));  // the banner comes with the first op
          return { tf, package: name, backend: tf.getBackend() };
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
        }
      }
    } finally {
      console.log = log;
      console.warn = warn;
    }
    throw new UsageError('@tensorflow/tfjs is not installed (npm install @tensorflow/tfjs)');
  })();
  return runtime;
}

/** Trainable parameters, by the model-file tensor name, in tfjs layouts (conv [ky][kx][in][out]). */
export type TfParams = Map<string, TF.Variable>;

export interface TfModel {
  architecture: 'focuslitenn' | 'eonss';
  params: TfParams;
  /** The input of forward() for u8 RGB patches (normalized with the model's mean/std). */
  input(pixels: Uint8Array, count: number, size: number): FirstLayerInput;
  /** Scores [n]. */
  forward(input: FirstLayerInput): TF.Tensor1D;
  /** Keeps constrained parameters valid after a step (GDN beta > 0, gamma >= 0). */
  project(): void;
  /** Current weights as a native spec (PyTorch layouts). */
  toSpec(): FocusLiteNNSpec | EonssSpec;
  dispose(): void;
}

/**
 * The first convolution's input, ready for the backend. tfjs-backend-cpu computes a conv filter
 * gradient with a naive loop (5 s for 20 patches of FocusLiteNN-2 at 64 px, 50x its matMul), so on
 * the pure-JS backend the first layer runs as im2col + matMul, the columns built here straight from
 * the u8 pixels (the input needs no gradient). Other backends get the image and tf.conv2d.
 */
export interface FirstLayerInput {
  tensor: TF.Tensor;
  count: number;
  /** Output rows/cols of the first conv when `tensor` holds im2col columns; 0 for an image tensor. */
  columnsOut: number;
}

export function firstLayerInput(tf: Tf, pixels: Uint8Array, count: number, size: number, conv: { kernel: number; stride: number; pad: number }, mean: readonly number[], std: readonly number[]): FirstLayerInput {
  if (tf.getBackend() !== 'cpu') return { tensor: patchesToTensor(tf, pixels, count, size, mean, std), count, columnsOut: 0 };
  const { kernel: K, stride: s, pad: p } = conv;
  const out = Math.floor((size + 2 * p - K) / s) + 1;
  const width = K * K * 3;
  const columns = new Float32Array(count * out * out * width);
  const table = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - mean[c]!) / std[c]!));
  for (let n = 0; n < count; n++)
    for (let i = 0; i < out; i++)
      for (let j = 0; j < out; j++) {
        const base = ((n * out + i) * out + j) * width;
        for (let ky = 0; ky < K; ky++) {
          const y = i * s - p + ky;
          if (y < 0 || y >= size) continue; // zero padding
          for (let kx = 0; kx < K; kx++) {
            const x = j * s - p + kx;
            if (x < 0 || x >= size) continue;
            const from = ((n * size + y) * size + x) * 3;
            const to = base + (ky * K + kx) * 3;
            columns[to] = table[0]![pixels[from]!]!;
            columns[to + 1] = table[1]![pixels[from + 1]!]!;
            columns[to + 2] = table[2]![pixels[from + 2]!]!;
          }
        }
      }
  return { tensor: tf.tensor2d(columns, [count * out * out, width]), count, columnsOut: out };
}

/** The first conv (no bias) on a FirstLayerInput: [n, out, out, channels]. */
function firstConv(tf: Tf, input: FirstLayerInput, w: TF.Tensor4D, stride: number, pad: number): TF.Tensor4D {
  if (input.columnsOut === 0) return tf.conv2d(input.tensor as TF.Tensor4D, w, stride, pad);
  const [K, , inC, outC] = w.shape;
  const o = input.columnsOut;
  return tf.matMul(input.tensor as TF.Tensor2D, w.reshape([K * K * inC, outC]) as TF.Tensor2D).reshape([input.count, o, o, outC]) as TF.Tensor4D;
}

/**
 * tf.conv2d whose filter gradient, on the pure-JS backend, is im2col(x)^T . dy (one matMul) instead
 * of tfjs-backend-cpu's loop (19 s for the filter gradient of EONSS conv2 on 20 patches, 260 ms for its
 * forward). The input gradient stays tfjs's own (conv2dTranspose). Other backends: plain tf.conv2d.
 */
export function conv2dTrainable(tf: Tf, x: TF.Tensor4D, w: TF.Tensor4D, stride: number, pad: number): TF.Tensor4D {
  if (tf.getBackend() !== 'cpu') return tf.conv2d(x, w, stride, pad);
  const op = tf.customGrad((...args: unknown[]) => {
    const [input, filter, save] = args as [TF.Tensor4D, TF.Tensor4D, (t: TF.Tensor[]) => void];
    save([input, filter]);
    return {
      value: tf.conv2d(input, filter, stride, pad),
      gradFunc: (dy: TF.Tensor4D, saved: TF.Tensor[]) => {
        const [xi, fi] = saved as [TF.Tensor4D, TF.Tensor4D];
        const [n, h, wd, c] = xi.shape;
        const [K, , , outC] = fi.shape;
        const [, oh, ow] = dy.shape as [number, number, number, number];
        const data = xi.dataSync() as Float32Array;
        const cols = new Float32Array(n * oh * ow * K * K * c);
        for (let b = 0; b < n; b++)
          for (let i = 0; i < oh; i++)
            for (let j = 0; j < ow; j++) {
              const row = ((b * oh + i) * ow + j) * K * K * c;
              for (let ky = 0; ky < K; ky++) {
                const y = i * stride - pad + ky;
                if (y < 0 || y >= h) continue;
                for (let kx = 0; kx < K; kx++) {
                  const xx = j * stride - pad + kx;
                  if (xx < 0 || xx >= wd) continue;
                  cols.set(data.subarray(((b * h + y) * wd + xx) * c, ((b * h + y) * wd + xx + 1) * c), row + (ky * K + kx) * c);
                }
              }
            }
        const dw = tf.matMul(tf.tensor2d(cols, [n * oh * ow, K * K * c]), dy.reshape([n * oh * ow, outC]) as TF.Tensor2D, true, false).reshape([K, K, c, outC]);
        const dx = tf.conv2dTranspose(dy, fi, [n, h, wd, c], stride, pad);
        return [dx, dw];
      },
    };
  });
  return op(x, w) as TF.Tensor4D;
}

/** PyTorch [out][in][ky][kx] -> tfjs [ky][kx][in][out]. */
function torchToTfConv(w: Float32Array, out: number, inC: number, k: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inC; i++)
      for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) t[((y * k + x) * inC + i) * out + o] = w[((o * inC + i) * k + y) * k + x]!;
  return t;
}

export function tfToTorchConv(t: Float32Array, out: number, inC: number, k: number): Float32Array {
  const w = new Float32Array(t.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inC; i++)
      for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) w[((o * inC + i) * k + y) * k + x] = t[((y * k + x) * inC + i) * out + o]!;
  return w;
}

function values(v: TF.Variable): Float32Array {
  return Float32Array.from(v.dataSync() as Float32Array);
}

export function focusLiteTfModel(tf: Tf, spec: FocusLiteNNSpec): TfModel {
  const { kernels: k, convKernel: K } = spec;
  const params: TfParams = new Map();
  params.set('conv.weight', tf.variable(tf.tensor4d(torchToTfConv(spec.convWeight, k, 3, K), [K, K, 3, k])));
  params.set('conv.bias', tf.variable(tf.tensor1d(spec.convBias)));
  if (k > 1) {
    params.set('fc.weight', tf.variable(tf.tensor2d(spec.fcWeight!, [k, 1])));
    params.set('fc.bias', tf.variable(tf.tensor1d([spec.fcBias!])));
  }
  const p = (name: string) => params.get(name)!;
  return {
    architecture: 'focuslitenn',
    params,
    input: (pixels, count, size) => firstLayerInput(tf, pixels, count, size, { kernel: K, stride: spec.convStride, pad: spec.convPad }, spec.mean, spec.std),
    forward: (x) =>
      tf.tidy(() => {
        const conv = firstConv(tf, x, p('conv.weight') as TF.Tensor4D, spec.convStride, spec.convPad);
        const mins = tf.min(tf.add(conv, p('conv.bias')), [1, 2]) as TF.Tensor2D; // [n, k]
        return (k > 1 ? tf.add(tf.matMul(mins, p('fc.weight') as TF.Tensor2D), p('fc.bias')) : mins).reshape([-1]) as TF.Tensor1D;
      }),
    project: () => {},
    toSpec: () => ({
      ...spec,
      convWeight: tfToTorchConv(values(p('conv.weight')), k, 3, K),
      convBias: values(p('conv.bias')),
      ...(k > 1 ? { fcWeight: values(p('fc.weight')), fcBias: values(p('fc.bias'))[0]! } : {}),
    }),
    dispose: () => params.forEach((v) => v.dispose()),
  };
}

/** EONSS channel widths and kernels as published (conv1-4, st2_fc1, st2_fc2). */
export const EONSS_SHAPES = [
  { inChannels: 3, outChannels: 8, kernel: 5 },
  { inChannels: 8, outChannels: 16, kernel: 5 },
  { inChannels: 16, outChannels: 32, kernel: 5 },
  { inChannels: 32, outChannels: 64, kernel: 3 },
  { inChannels: 64, outChannels: 256, kernel: 1 },
  { inChannels: 256, outChannels: 1, kernel: 1 },
];

export function eonssTfModel(tf: Tf, spec: EonssSpec): TfModel {
  const params: TfParams = new Map();
  spec.layers.forEach((L, i) => {
    params.set(`${i}.weight`, tf.variable(tf.tensor4d(torchToTfConv(L.weight, L.outChannels, L.inChannels, L.kernel), [L.kernel, L.kernel, L.inChannels, L.outChannels])));
    params.set(`${i}.bias`, tf.variable(tf.tensor1d(L.bias)));
    if (L.gdn) {
      // gamma[j][i] multiplies x_j^2 in channel i's norm: norm = x^2 (row vector) . gamma + beta.
      params.set(`${i}.gamma`, tf.variable(tf.tensor2d(L.gdnGamma!, [L.outChannels, L.outChannels])));
      params.set(`${i}.beta`, tf.variable(tf.tensor1d(L.gdnBeta!)));
    }
  });
  const p = (name: string) => params.get(name)!;
  return {
    architecture: 'eonss',
    params,
    input: (pixels, count, size) => {
      const L = spec.layers[0]!;
      return firstLayerInput(tf, pixels, count, size, { kernel: L.kernel, stride: L.stride, pad: L.pad }, spec.mean, spec.std);
    },
    forward: (x) =>
      tf.tidy(() => {
        let h = firstConv(tf, x, p('0.weight') as TF.Tensor4D, spec.layers[0]!.stride, spec.layers[0]!.pad);
        spec.layers.forEach((L, i) => {
          if (i > 0) h = conv2dTrainable(tf, h, p(`${i}.weight`) as TF.Tensor4D, L.stride, L.pad);
          h = tf.add(h, p(`${i}.bias`));
          if (L.gdn) {
            const [n, H, W, C] = h.shape;
            const norm = tf.add(tf.matMul(tf.square(h).reshape([-1, C]), p(`${i}.gamma`) as TF.Tensor2D), p(`${i}.beta`));
            h = tf.div(h, tf.sqrt(norm).reshape([n, H, W, C])) as TF.Tensor4D;
          }
          if (L.maxPool) h = tf.maxPool(h, 2, 2, 'valid');
        });
        return h.reshape([-1]) as TF.Tensor1D;
      }),
    project: () =>
      tf.tidy(() => {
        spec.layers.forEach((L, i) => {
          if (!L.gdn) return;
          p(`${i}.beta`).assign(tf.maximum(p(`${i}.beta`), 1e-6));
          p(`${i}.gamma`).assign(tf.maximum(p(`${i}.gamma`), 0));
        });
      }),
    toSpec: () => ({
      ...spec,
      layers: spec.layers.map((L, i): EonssLayerSpec => ({
        ...L,
        weight: tfToTorchConv(values(p(`${i}.weight`)), L.outChannels, L.inChannels, L.kernel),
        bias: values(p(`${i}.bias`)),
        ...(L.gdn ? { gdnGamma: values(p(`${i}.gamma`)), gdnBeta: values(p(`${i}.beta`)) } : {}),
      })),
    }),
    dispose: () => params.forEach((v) => v.dispose()),
  };
}

/** A freshly initialized EONSS (PyTorch-style uniform conv init; GDN beta 1, gamma 0.1 I as in common GDN code). */
export function eonssInit(random: () => number, patchSize = 235): EonssSpec {
  const uniform = (bound: number) => (2 * random() - 1) * bound;
  const geometry = [
    { stride: 2, pad: 2, gdn: true, maxPool: true },
    { stride: 2, pad: 2, gdn: true, maxPool: true },
    { stride: 2, pad: 2, gdn: true, maxPool: true },
    { stride: 1, pad: 0, gdn: true, maxPool: true },
    { stride: 1, pad: 0, gdn: true, maxPool: false },
    { stride: 1, pad: 0, gdn: false, maxPool: false },
  ];
  const layers = EONSS_SHAPES.map((s, i): EonssLayerSpec => {
    const bound = 1 / Math.sqrt(s.inChannels * s.kernel * s.kernel);
    const g = geometry[i]!;
    return {
      ...s,
      ...g,
      weight: Float32Array.from({ length: s.outChannels * s.inChannels * s.kernel * s.kernel }, () => uniform(bound)),
      bias: Float32Array.from({ length: s.outChannels }, () => uniform(bound)),
      ...(g.gdn
        ? { gdnGamma: Float32Array.from({ length: s.outChannels * s.outChannels }, (_, j) => (j % (s.outChannels + 1) === 0 ? 0.1 : 0)), gdnBeta: new Float32Array(s.outChannels).fill(1) }
        : {}),
    };
  });
  return { architecture: 'eonss', patchSize, mean: [0, 0, 0], std: [1, 1, 1], layers };
}

/** u8 RGB patches -> normalized [n, size, size, 3] tensor, (x/255 - mean) / std as the native kernels. */
export function patchesToTensor(tf: Tf, pixels: Uint8Array, count: number, size: number, mean: readonly number[], std: readonly number[]): TF.Tensor4D {
  const data = new Float32Array(count * size * size * 3);
  const table = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - mean[c]!) / std[c]!));
  for (let i = 0; i < data.length; i++) data[i] = table[i % 3]![pixels[i]!]!;
  return tf.tensor4d(data, [count, size, size, 3]);
}
