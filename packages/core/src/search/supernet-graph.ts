/**
 * The DARTS-FQA search network (supernet.ts) as a node list for the torch engine: the same stem,
 * reduction cells, mixed edges (a 'mix' node: the softmax(alpha)-weighted sum of each edge's ops),
 * BatchNorms without affine parameters ('norm'), global max pool and linear score, with tensors in
 * PyTorch layouts taken from the tfjs supernet's initial values — so one seed starts both engines
 * from the same network.
 */
import type { TorchTensorSpec } from '@fqa/torch';
import { convFromTf } from '../models/backends/tfjs.js';
import { edgeCount, PRIMITIVES, type Primitive } from './genotype.js';
import type { Supernet, SupernetShape } from './supernet.js';

export interface SupernetGraph {
  nodes: object[];
  input: string;
  output: string;
  tensors: TorchTensorSpec[];
}

export const ALPHAS = 'alphas';

/** Nodes and tensors for `net` (its current values, as the tfjs supernet holds them). */
export function supernetGraph(net: Supernet): SupernetGraph {
  const shape: SupernetShape = net.shape;
  const nodes: object[] = [];
  const tensors: TorchTensorSpec[] = [];
  let count = 0;
  const node = (op: Record<string, unknown>, inputs: string[]): string => {
    const output = `${op.op as string}#${count++}`;
    nodes.push({ ...op, inputs, output });
    return output;
  };
  const filter = (name: string, depthwise = false) => {
    const v = net.weights.get(name)!;
    const [k, , inC, out] = v.shape as [number, number, number, number];
    const outC = depthwise ? inC : out;
    const torchShape = [outC, depthwise ? 1 : inC, k, k];
    tensors.push({ name, shape: torchShape, kind: 'parameter', data: convFromTf(Float32Array.from(v.dataSync() as Float32Array), torchShape) });
    return { k, outC };
  };
  const conv = (x: string, name: string, o: { stride?: number; pad?: number; dilation?: number; depthwise?: boolean } = {}) => {
    const { k, outC } = filter(name, o.depthwise);
    return node({ op: 'conv', weight: name, bias: null, kernel: k, stride: o.stride ?? 1, pad: o.pad ?? 0, dilation: o.dilation ?? 1, groups: o.depthwise ? outC : 1 }, [x]);
  };
  const norm = (x: string) => node({ op: 'norm' }, [x]);
  const relu = (x: string) => node({ op: 'relu' }, [x]);
  const factorizedReduce = (x: string, name: string) => {
    const r = relu(x);
    const a = conv(r, `${name}.conv_1.weight`, { stride: 2 });
    const b = conv(node({ op: 'shift' }, [r]), `${name}.conv_2.weight`, { stride: 2 });
    return norm(node({ op: 'concat' }, [a, b]));
  };
  const operation = (op: Primitive, x: string, name: string, stride: number): string | null => {
    switch (op) {
      case 'none':
        return null;
      case 'max_pool_3x3':
        return norm(node({ op: 'maxpool', kernel: 3, stride, pad: 1 }, [x]));
      case 'avg_pool_3x3':
        return norm(node({ op: 'avgpool', kernel: 3, stride, pad: 1 }, [x]));
      case 'skip_connect':
        return stride === 1 ? x : factorizedReduce(x, name);
      case 'sep_conv_3x3':
      case 'sep_conv_5x5': {
        const pad = op === 'sep_conv_3x3' ? 1 : 2;
        const y = norm(conv(conv(relu(x), `${name}.op.1.weight`, { stride, pad, depthwise: true }), `${name}.op.2.weight`));
        return norm(conv(conv(relu(y), `${name}.op.5.weight`, { pad, depthwise: true }), `${name}.op.6.weight`));
      }
      case 'dil_conv_3x3':
      case 'dil_conv_5x5': {
        const pad = op === 'dil_conv_3x3' ? 2 : 4;
        return norm(conv(conv(relu(x), `${name}.op.1.weight`, { stride, pad, dilation: 2, depthwise: true }), `${name}.op.2.weight`));
      }
    }
  };

  const stemChannels = 3 * shape.channels;
  let stem = conv('input', 'stem.0.weight', { pad: 1 });
  for (const [suffix, kind] of [['weight', 'parameter'], ['bias', 'parameter'], ['running_mean', 'buffer'], ['running_var', 'buffer']] as const) {
    const data = suffix === 'weight' || suffix === 'bias' ? Float32Array.from(net.weights.get(`stem.1.${suffix}`)!.dataSync() as Float32Array) : new Float32Array(stemChannels).fill(suffix === 'running_var' ? 1 : 0);
    tensors.push({ name: `stem.1.${suffix}`, shape: [stemChannels], kind, data });
  }
  stem = node({ op: 'batchnorm', prefix: 'stem.1' }, [stem]);
  let [s0, s1] = [stem, stem];
  for (let i = 0; i < shape.layers; i++) {
    const p = `cells.${i}`;
    const t0 = i > 0 ? factorizedReduce(s0, `${p}.preprocess0`) : norm(conv(relu(s0), `${p}.preprocess0.op.1.weight`));
    const t1 = norm(conv(relu(s1), `${p}.preprocess1.op.1.weight`));
    const states = [t0, t1];
    let edge = 0;
    for (let step = 0; step < shape.steps; step++) {
      const terms: string[] = [];
      const rows: number[] = [];
      const columns: number[] = [];
      states.forEach((h, j) => {
        PRIMITIVES.forEach((op, k) => {
          const y = operation(op, h, `${p}._ops.${edge}._ops.${k}`, j < 2 ? 2 : 1);
          if (y === null) return;
          terms.push(y);
          rows.push(edge);
          columns.push(k);
        });
        edge++;
      });
      states.push(node({ op: 'mix', alpha: ALPHAS, rows, columns }, terms));
    }
    [s0, s1] = [s1, node({ op: 'concat' }, states.slice(-shape.multiplier))];
  }
  const classifier = net.weights.get('classifier.weight')!;
  const features = classifier.shape[0]!;
  tensors.push({ name: 'classifier.weight', shape: [1, features], kind: 'parameter', data: Float32Array.from(classifier.dataSync() as Float32Array) });
  tensors.push({ name: 'classifier.bias', shape: [1], kind: 'parameter', data: Float32Array.from(net.weights.get('classifier.bias')!.dataSync() as Float32Array) });
  tensors.push({ name: ALPHAS, shape: [edgeCount(shape.steps), PRIMITIVES.length], kind: 'architecture', data: Float32Array.from(net.alphas.dataSync() as Float32Array) });
  const output = node({ op: 'linear', weight: 'classifier.weight', bias: 'classifier.bias', inFeatures: features, outFeatures: 1 }, [node({ op: 'globalmax' }, [s1])]);
  return { nodes, input: 'input', output, tensors };
}
