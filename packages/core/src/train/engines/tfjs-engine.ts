/**
 * The tfjs engine: the graph's forward pass as inference runs it (graphForward), BatchNorm on batch
 * statistics with running statistics updated as PyTorch does (momentum 0.1, unbiased batch
 * variance), Adam as torch.optim.Adam. Always installed; on the pure-JS backend it is slow (see
 * docs/experiments.md), which is why the torch engine exists.
 */
import type * as TF from '@tensorflow/tfjs';
import { dilatedFilter, graphForward, tensorFromTf, tensorToTf, tfShape } from '../../models/backends/tfjs.js';
import type { GraphNode } from '../../models/graph.js';
import { conv2dIm2col } from '../im2col-conv.js';
import { loadTf, patchesToTensor } from '../tfjs-models.js';
import { tfLoss } from '../tfjs-trainer.js';
import { batchNormTraining, type BatchMoments } from '../training-ops.js';
import { ADAM, BN_EPSILON, BN_MOMENTUM, type EngineSession, type EngineSessionOptions, type TrainingEngine } from './engine.js';

export const tfjsEngine: TrainingEngine = {
  name: 'tfjs',
  async status() {
    const { package: pkg, backend } = await loadTf();
    return { name: 'tfjs', available: true, detail: `${pkg} (${backend})` };
  },
  open: openTfjsSession,
};

async function openTfjsSession(o: EngineSessionOptions): Promise<EngineSession> {
  const { tf, package: pkg, backend } = await loadTf();
  const { graph } = o;
  const parameters = new Map<string, TF.Variable>();
  const buffers = new Map<string, TF.Tensor>();
  const moments = new Map<string, { m: TF.Variable; v: TF.Variable }>();
  for (const t of graph.tensors) {
    const shape = tfShape(graph, t.name, t.shape);
    const toTf = (a: Float32Array) => tensorToTf(graph, t.name, a, t.shape);
    const init = toTf(o.tensors.get(t.name)!);
    if (t.kind === 'buffer') {
      buffers.set(t.name, tf.tensor(init, shape));
      continue;
    }
    // tidy frees the initial-value tensors (the variables keep their own reference to the data).
    parameters.set(t.name, tf.tidy(() => tf.variable(tf.tensor(init, shape))));
    const saved = o.moments?.get(t.name);
    moments.set(t.name, tf.tidy(() => ({
      m: tf.variable(saved ? tf.tensor(toTf(saved.m), shape) : tf.zeros(shape), false),
      v: tf.variable(saved ? tf.tensor(toTf(saved.v), shape) : tf.zeros(shape), false),
    })));
  }
  const weight = (name: string) => (parameters.get(name) ?? buffers.get(name))!;
  // The pure-JS backend's own conv gradients are element loops: plain convs run as matMuls there,
  // depth-wise and dilated ones as inference runs them.
  const pureJs = tf.getBackend() === 'cpu';
  const pureJsConv = (xi: TF.Tensor4D, filter: TF.Tensor4D, n: Extract<GraphNode, { op: 'conv' }>): TF.Tensor4D => {
    if (n.groups === 1 && n.dilation === 1) return conv2dIm2col(tf, xi, filter, n.stride, n.pad);
    const xp = n.pad > 0 ? tf.pad(xi, [[0, 0], [n.pad, n.pad], [n.pad, n.pad], [0, 0]]) : xi;
    const f = n.dilation > 1 ? dilatedFilter(tf, filter, n.dilation) : filter;
    return n.groups > 1 ? tf.depthwiseConv2d(xp, f, n.stride, 'valid') : tf.conv2d(xp, f, n.stride, 'valid');
  };
  const gdns = graph.nodes.filter((n) => n.op === 'gdn').map((n) => (n as { prefix: string }).prefix);
  const variables = [...parameters.values()];
  const names = [...parameters.keys()];
  let step = o.step;

  return {
    detail: `tfjs: ${pkg} (${backend})`,
    step(pixels, labels, count, rate) {
      const batchMoments: (BatchMoments & { prefix: string })[] = [];
      const x = patchesToTensor(tf, pixels, count, o.patchSize, o.mean, o.std);
      const y = tf.tensor1d(labels);
      const { value, grads } = tf.variableGrads(() => {
        const scores = graphForward(tf, graph, weight, x, {
          conv: pureJs ? pureJsConv : undefined,
          batchNorm: (xi, prefix) => batchNormTraining(tf, xi, weight(`${prefix}.weight`) as TF.Tensor1D, weight(`${prefix}.bias`) as TF.Tensor1D, BN_EPSILON, (m) => batchMoments.push({ prefix, ...m })),
        });
        return tfLoss(tf, o.loss, scores, y);
      }, variables);
      step++;
      const correction1 = 1 - ADAM.beta1 ** step;
      const correction2 = 1 - ADAM.beta2 ** step;
      tf.tidy(() => {
        names.forEach((name, i) => {
          const g = grads[variables[i]!.name]!;
          const { m, v } = moments.get(name)!;
          m.assign(tf.add(tf.mul(m, ADAM.beta1), tf.mul(g, 1 - ADAM.beta1)));
          v.assign(tf.add(tf.mul(v, ADAM.beta2), tf.mul(tf.square(g), 1 - ADAM.beta2)));
          // PyTorch's Adam: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps).
          const denominator = tf.add(tf.div(tf.sqrt(v), Math.sqrt(correction2)), ADAM.epsilon);
          parameters.get(name)!.assign(tf.sub(parameters.get(name)!, tf.mul(tf.div(m, denominator), rate / correction1)));
        });
        // GDN stays a valid normalization (EONSS's projection after each step).
        for (const prefix of gdns) {
          parameters.get(`${prefix}.beta`)!.assign(tf.maximum(parameters.get(`${prefix}.beta`)!, 1e-6));
          parameters.get(`${prefix}.gamma`)!.assign(tf.maximum(parameters.get(`${prefix}.gamma`)!, 0));
        }
      });
      // Running statistics as PyTorch: (1 - momentum) x old + momentum x batch, the variance unbiased.
      for (const b of batchMoments) {
        for (const [suffix, batch, scale] of [['running_mean', b.mean, 1], ['running_var', b.variance, b.count / Math.max(1, b.count - 1)]] as const) {
          const name = `${b.prefix}.${suffix}`;
          const old = buffers.get(name)!;
          const previous = old.dataSync() as Float32Array;
          buffers.set(name, tf.tensor1d(Float32Array.from(previous, (v, i) => (1 - BN_MOMENTUM) * v + BN_MOMENTUM * scale * batch[i]!)));
          old.dispose();
        }
      }
      const result = value.dataSync()[0]!;
      tf.dispose([x, y, value, ...Object.values(grads)]);
      return result;
    },
    snapshot(withAdam) {
      const out = new Map<string, Float32Array>();
      const fromTf = (name: string, shape: number[], t: TF.Tensor) => tensorFromTf(graph, name, Float32Array.from(t.dataSync() as Float32Array), shape);
      for (const t of graph.tensors) {
        out.set(t.name, fromTf(t.name, t.shape, weight(t.name)));
        if (withAdam && t.kind === 'parameter') {
          const { m, v } = moments.get(t.name)!;
          out.set(`${t.name}#adam.m`, fromTf(t.name, t.shape, m));
          out.set(`${t.name}#adam.v`, fromTf(t.name, t.shape, v));
        }
      }
      return out;
    },
    dispose() {
      tf.dispose([...parameters.values(), ...buffers.values(), ...[...moments.values()].flatMap((a) => [a.m, a.v])]);
    },
  };
}
