/**
 * Initial weights for training any registry graph from scratch, seeded, as torchvision initializes
 * its ResNets, MobileNetV2 and DenseNet: convolutions Kaiming-normal (fan-out, ReLU gain:
 * std = sqrt(2 / (out x k x k))), BatchNorm weight 1 and bias 0 with running mean 0 and variance 1,
 * linear layers and conv biases PyTorch's default U(+-1/sqrt(fan-in)) for weights and 0 for the
 * linear bias, and GDN at EONSS's start (beta 1, gamma 0.1 x identity).
 */
import type { Graph } from '../models/graph.js';
import { gaussian, seededRandom } from './random.js';

export function initialGraphWeights(graph: Graph, seed: number): Map<string, Float32Array> {
  const random = seededRandom(seed);
  const out = new Map<string, Float32Array>();
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const shapes = new Map(graph.tensors.map((t) => [t.name, t.shape]));
  const set = (name: string, f: (i: number) => number) => out.set(name, Float32Array.from({ length: size(shapes.get(name)!) }, (_, i) => f(i)));
  for (const n of graph.nodes) {
    if (n.op === 'conv') {
      const std = Math.sqrt(2 / (n.outChannels * n.kernel * n.kernel));
      set(n.weight, () => std * gaussian(random));
      const bound = 1 / Math.sqrt((n.inChannels / n.groups) * n.kernel * n.kernel);
      if (n.bias) set(n.bias, () => (2 * random() - 1) * bound);
    } else if (n.op === 'batchnorm') {
      set(`${n.prefix}.weight`, () => 1);
      set(`${n.prefix}.bias`, () => 0);
      set(`${n.prefix}.running_mean`, () => 0);
      set(`${n.prefix}.running_var`, () => 1);
    } else if (n.op === 'linear') {
      const bound = 1 / Math.sqrt(n.inFeatures);
      set(n.weight, () => (2 * random() - 1) * bound);
      set(n.bias, () => 0);
    } else if (n.op === 'gdn') {
      set(`${n.prefix}.gamma`, (i) => (i % (n.channels + 1) === 0 ? 0.1 : 0));
      set(`${n.prefix}.beta`, () => 1);
    }
  }
  for (const t of graph.tensors) if (!out.has(t.name)) throw new Error(`graph-init: no rule for tensor '${t.name}'`);
  return out;
}
