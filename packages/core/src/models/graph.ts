/**
 * The layer graph every architecture is written in, once: the parameter count, the FLOPs, the
 * tensor names a model file must hold, the tfjs forward pass and the ONNX graph are all read from
 * it. Values are per-sample [channels, height, width] (NCHW semantics, batch implicit); tensor
 * names are PyTorch state_dict names, so published weights load by name.
 */
import { ModelFileError } from '../errors.js';

export type NodeOp =
  | { op: 'conv'; weight: string; bias: string | null; inChannels: number; outChannels: number; kernel: number; stride: number; pad: number; dilation: number; groups: number }
  | { op: 'batchnorm'; prefix: string; channels: number }
  | { op: 'relu' }
  | { op: 'relu6' }
  | { op: 'maxpool'; kernel: number; stride: number; pad: number }
  /** Zero padding that is not counted in the average (PyTorch count_include_pad=False, ONNX's default). */
  | { op: 'avgpool'; kernel: number; stride: number; pad: number }
  | { op: 'globalavg' }
  | { op: 'globalmax' }
  | { op: 'globalmin' }
  | { op: 'add' }
  | { op: 'concat' }
  /** x[:, :, 1:, 1:] (DARTS FactorizedReduce's second path). */
  | { op: 'shift' }
  /** y_c = x_c / sqrt(beta_c + sum_j gamma[j][c] x_j^2), tensors `${prefix}.gamma` [C,C] and `.beta` [C]. */
  | { op: 'gdn'; prefix: string; channels: number }
  /** On a 1x1 map: [C,1,1] -> [out,1,1]; `weight` is [out, in] as torch.nn.Linear. */
  | { op: 'linear'; weight: string; bias: string; inFeatures: number; outFeatures: number };

export type GraphNode = NodeOp & { inputs: string[]; output: string };

export interface GraphTensor {
  name: string;
  shape: number[];
  /** Trained parameter (counted) or BatchNorm running statistic (a buffer). */
  kind: 'parameter' | 'buffer';
}

export interface Graph {
  nodes: GraphNode[];
  /** In state_dict order (the order the layers were added). */
  tensors: GraphTensor[];
  input: string;
  output: string;
}

/** A value's per-sample shape. */
export type ValueShape = [channels: number, height: number, width: number];

/** The input cannot pass through the graph (a size the layers do not fit). */
export class GraphShapeError extends ModelFileError {}

export const GRAPH_INPUT = 'input';

/** Builds a Graph; tracks channel counts so each layer states only its output width. */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly tensors: GraphTensor[] = [];
  private readonly channelsOf = new Map<string, number>([[GRAPH_INPUT, 3]]);
  private count = 0;

  channels(x: string): number {
    const c = this.channelsOf.get(x);
    if (c === undefined) throw new Error(`graph: unknown value '${x}'`);
    return c;
  }

  private push(op: NodeOp, inputs: string[], channels: number, label?: string): string {
    for (const x of inputs) this.channels(x);
    const output = `${label ?? op.op}#${this.count++}`;
    this.nodes.push({ ...op, inputs, output } as GraphNode);
    this.channelsOf.set(output, channels);
    return output;
  }

  private tensor(name: string, shape: number[], kind: GraphTensor['kind'] = 'parameter') {
    if (this.tensors.some((t) => t.name === name)) throw new Error(`graph: tensor '${name}' defined twice`);
    this.tensors.push({ name, shape, kind });
  }

  conv(x: string, name: string, outChannels: number, kernel: number, o: { stride?: number; pad?: number; dilation?: number; groups?: number; bias?: boolean } = {}): string {
    const inChannels = this.channels(x);
    const groups = o.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) throw new Error(`graph: ${name}: groups ${groups} do not divide ${inChannels} -> ${outChannels}`);
    this.tensor(`${name}.weight`, [outChannels, inChannels / groups, kernel, kernel]);
    if (o.bias) this.tensor(`${name}.bias`, [outChannels]);
    const op: NodeOp = { op: 'conv', weight: `${name}.weight`, bias: o.bias ? `${name}.bias` : null, inChannels, outChannels, kernel, stride: o.stride ?? 1, pad: o.pad ?? 0, dilation: o.dilation ?? 1, groups };
    return this.push(op, [x], outChannels, name);
  }

  batchNorm(x: string, prefix: string): string {
    const channels = this.channels(x);
    this.tensor(`${prefix}.weight`, [channels]);
    this.tensor(`${prefix}.bias`, [channels]);
    this.tensor(`${prefix}.running_mean`, [channels], 'buffer');
    this.tensor(`${prefix}.running_var`, [channels], 'buffer');
    return this.push({ op: 'batchnorm', prefix, channels }, [x], channels, prefix);
  }

  relu(x: string): string {
    return this.push({ op: 'relu' }, [x], this.channels(x));
  }

  relu6(x: string): string {
    return this.push({ op: 'relu6' }, [x], this.channels(x));
  }

  maxPool(x: string, kernel: number, stride = kernel, pad = 0): string {
    return this.push({ op: 'maxpool', kernel, stride, pad }, [x], this.channels(x));
  }

  avgPool(x: string, kernel: number, stride = kernel, pad = 0): string {
    return this.push({ op: 'avgpool', kernel, stride, pad }, [x], this.channels(x));
  }

  globalAvg(x: string): string {
    return this.push({ op: 'globalavg' }, [x], this.channels(x));
  }

  globalMax(x: string): string {
    return this.push({ op: 'globalmax' }, [x], this.channels(x));
  }

  globalMin(x: string): string {
    return this.push({ op: 'globalmin' }, [x], this.channels(x));
  }

  add(a: string, b: string): string {
    if (this.channels(a) !== this.channels(b)) throw new Error(`graph: add of ${this.channels(a)} and ${this.channels(b)} channels`);
    return this.push({ op: 'add' }, [a, b], this.channels(a));
  }

  concat(xs: string[]): string {
    if (xs.length === 1) return xs[0]!;
    return this.push({ op: 'concat' }, xs, xs.reduce((s, x) => s + this.channels(x), 0));
  }

  shift(x: string): string {
    return this.push({ op: 'shift' }, [x], this.channels(x));
  }

  gdn(x: string, prefix: string): string {
    const channels = this.channels(x);
    this.tensor(`${prefix}.gamma`, [channels, channels]);
    this.tensor(`${prefix}.beta`, [channels]);
    return this.push({ op: 'gdn', prefix, channels }, [x], channels, prefix);
  }

  linear(x: string, name: string, outFeatures: number): string {
    const inFeatures = this.channels(x);
    this.tensor(`${name}.weight`, [outFeatures, inFeatures]);
    this.tensor(`${name}.bias`, [outFeatures]);
    return this.push({ op: 'linear', weight: `${name}.weight`, bias: `${name}.bias`, inFeatures, outFeatures }, [x], outFeatures, name);
  }

  /** The graph with `x` as its output: one score per sample. */
  finish(x: string): Graph {
    if (this.channels(x) !== 1) throw new Error(`graph: the output must have 1 channel, has ${this.channels(x)}`);
    return { nodes: this.nodes, tensors: this.tensors, input: GRAPH_INPUT, output: x };
  }
}

const outSize = (size: number, kernel: number, stride: number, pad: number, dilation = 1) => Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;

/**
 * Every value's shape for a square input of `size` px, or a GraphShapeError naming the first node
 * the input does not fit (empty maps, mismatched adds/concats, a linear layer on a map > 1x1).
 */
export function inferShapes(graph: Graph, size: number): Map<string, ValueShape> {
  const shapes = new Map<string, ValueShape>([[graph.input, [3, size, size]]]);
  for (const n of graph.nodes) {
    const [c, h, w] = shapes.get(n.inputs[0]!)!;
    let out: ValueShape;
    switch (n.op) {
      case 'conv':
        out = [n.outChannels, outSize(h, n.kernel, n.stride, n.pad, n.dilation), outSize(w, n.kernel, n.stride, n.pad, n.dilation)];
        break;
      case 'maxpool':
        out = [c, outSize(h, n.kernel, n.stride, n.pad), outSize(w, n.kernel, n.stride, n.pad)];
        break;
      case 'avgpool':
        out = [c, outSize(h, n.kernel, n.stride, n.pad), outSize(w, n.kernel, n.stride, n.pad)];
        break;
      case 'globalavg':
      case 'globalmax':
      case 'globalmin':
        out = [c, 1, 1];
        break;
      case 'shift':
        out = [c, h - 1, w - 1];
        break;
      case 'add':
      case 'concat': {
        const all = n.inputs.map((x) => shapes.get(x)!);
        if (!all.every((s) => s[1] === h && s[2] === w)) {
          throw new GraphShapeError(`${n.output}: ${n.op} of maps ${all.map((s) => `${s[1]}x${s[2]}`).join(' and ')} at input ${size} px`);
        }
        out = [n.op === 'add' ? c : all.reduce((s, x) => s + x[0], 0), h, w];
        break;
      }
      case 'linear':
        if (h !== 1 || w !== 1) throw new GraphShapeError(`${n.output}: a linear layer needs a 1x1 map, got ${h}x${w} at input ${size} px`);
        out = [n.outFeatures, 1, 1];
        break;
      default:
        out = [c, h, w];
    }
    if (out[1] < 1 || out[2] < 1) throw new GraphShapeError(`${n.output}: input ${size} px leaves an empty ${out[1]}x${out[2]} map`);
    shapes.set(n.output, out);
  }
  const [, h, w] = shapes.get(graph.output)!;
  if (h !== 1 || w !== 1) throw new GraphShapeError(`input ${size} px ends on a ${h}x${w} map, not one score`);
  return shapes;
}

/** Whether a square input of `size` px fits the graph (all maps non-empty and consistent). */
export function fitsSize(graph: Graph, size: number): boolean {
  try {
    inferShapes(graph, size);
    return true;
  } catch (err) {
    if (err instanceof GraphShapeError) return false;
    throw err;
  }
}

/** Trained parameters (BatchNorm running statistics are buffers, not counted: torch's sum(p.numel())). */
export function parameterCount(graph: Graph): number {
  return graph.tensors.reduce((s, t) => s + (t.kind === 'parameter' ? t.shape.reduce((a, b) => a * b, 1) : 0), 0);
}

/** FLOPs of one forward pass at `size` px: 2 x the multiply-accumulates of the convolutions and linear layers. */
export function flops(graph: Graph, size: number): number {
  const shapes = inferShapes(graph, size);
  let macs = 0;
  for (const n of graph.nodes) {
    if (n.op === 'conv') {
      const [, h, w] = shapes.get(n.output)!;
      macs += n.outChannels * h * w * (n.inChannels / n.groups) * n.kernel * n.kernel;
    } else if (n.op === 'linear') {
      macs += n.inFeatures * n.outFeatures;
    }
  }
  return 2 * macs;
}

/** Number of convolutions (every conv node, 1x1 and depth-wise included). */
export function convCount(graph: Graph): number {
  return graph.nodes.filter((n) => n.op === 'conv').length;
}
