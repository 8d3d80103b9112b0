/**
 * The layer graph as an ONNX model (opset 13, NCHW, batch and spatial size dynamic), written from
 * the graph and the weights with no Python step. Field numbers are onnx.proto3's.
 */
import { ProtoWriter } from './protobuf.js';
import type { Graph } from '../graph.js';

const OPSET = 13;
const IR_VERSION = 7;
const FLOAT = 1;
const INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, INTS: 7 } as const;

type Attribute = [name: string, value: number | number[], kind?: 'float'];

interface OnnxNode {
  op: string;
  inputs: string[];
  output: string;
  attributes?: Attribute[];
}

interface Initializer {
  name: string;
  dims: number[];
  type: typeof FLOAT | typeof INT64;
  data: Float32Array | BigInt64Array;
}

function writeAttribute(w: ProtoWriter, [name, value, kind]: Attribute) {
  w.string(1, name);
  if (Array.isArray(value)) w.packedInts(8, value).int(20, ATTR.INTS);
  else if (kind === 'float') w.float(2, value).int(20, ATTR.FLOAT);
  else w.int(3, value).int(20, ATTR.INT);
}

function writeTensor(w: ProtoWriter, t: Initializer) {
  w.packedInts(1, t.dims).int(2, t.type).string(8, t.name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)); // raw_data, little-endian
}

function writeValueInfo(w: ProtoWriter, name: string, dims: (number | string)[]) {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, FLOAT).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
}

/** ONNX model bytes for the graph; input 'input' [N,3,H,W] float32 (normalized), output 'score' [N,1]. */
export function exportOnnx(graph: Graph, tensors: Map<string, Float32Array>, name = 'fqa'): Uint8Array {
  const nodes: OnnxNode[] = [];
  const initializers: Initializer[] = [];
  const used = new Set<string>();
  const weight = (n: string) => {
    if (!used.has(n)) {
      const data = tensors.get(n);
      if (!data) throw new Error(`missing tensor '${n}'`);
      initializers.push({ name: n, dims: graph.tensors.find((t) => t.name === n)!.shape, type: FLOAT, data });
      used.add(n);
    }
    return n;
  };
  const constant = (n: string, dims: number[], data: Float32Array | BigInt64Array) => {
    if (!used.has(n)) {
      initializers.push({ name: n, dims, type: data instanceof Float32Array ? FLOAT : INT64, data });
      used.add(n);
    }
    return n;
  };
  let temp = 0;
  const tmp = (base: string) => `${base}/${temp++}`;
  for (const n of graph.nodes) {
    const x = n.inputs[0]!;
    const out = n.output;
    switch (n.op) {
      case 'conv':
        nodes.push({
          op: 'Conv', inputs: [x, weight(n.weight), ...(n.bias ? [weight(n.bias)] : [])], output: out,
          attributes: [['kernel_shape', [n.kernel, n.kernel]], ['strides', [n.stride, n.stride]], ['pads', [n.pad, n.pad, n.pad, n.pad]], ['dilations', [n.dilation, n.dilation]], ['group', n.groups]],
        });
        break;
      case 'batchnorm': {
        const p = n.prefix;
        nodes.push({ op: 'BatchNormalization', inputs: [x, weight(`${p}.weight`), weight(`${p}.bias`), weight(`${p}.running_mean`), weight(`${p}.running_var`)], output: out, attributes: [['epsilon', 1e-5, 'float']] });
        break;
      }
      case 'relu':
        nodes.push({ op: 'Relu', inputs: [x], output: out });
        break;
      case 'relu6':
        nodes.push({ op: 'Clip', inputs: [x, constant('relu6/min', [], Float32Array.of(0)), constant('relu6/max', [], Float32Array.of(6))], output: out });
        break;
      case 'maxpool':
        nodes.push({ op: 'MaxPool', inputs: [x], output: out, attributes: [['kernel_shape', [n.kernel, n.kernel]], ['strides', [n.stride, n.stride]], ['pads', [n.pad, n.pad, n.pad, n.pad]]] });
        break;
      case 'avgpool':
        // count_include_pad defaults to 0: padded cells are not averaged in, as the graph defines.
        nodes.push({ op: 'AveragePool', inputs: [x], output: out, attributes: [['kernel_shape', [n.kernel, n.kernel]], ['strides', [n.stride, n.stride]], ['pads', [n.pad, n.pad, n.pad, n.pad]]] });
        break;
      case 'globalavg':
        nodes.push({ op: 'GlobalAveragePool', inputs: [x], output: out });
        break;
      case 'globalmax':
        nodes.push({ op: 'GlobalMaxPool', inputs: [x], output: out });
        break;
      case 'globalmin': {
        const negated = tmp(out);
        const max = tmp(out);
        nodes.push({ op: 'Neg', inputs: [x], output: negated }, { op: 'GlobalMaxPool', inputs: [negated], output: max }, { op: 'Neg', inputs: [max], output: out });
        break;
      }
      case 'add':
        nodes.push({ op: 'Add', inputs: n.inputs, output: out });
        break;
      case 'concat':
        nodes.push({ op: 'Concat', inputs: n.inputs, output: out, attributes: [['axis', 1]] });
        break;
      case 'shift':
        nodes.push({ op: 'Slice', inputs: [x, constant('shift/starts', [2], BigInt64Array.of(1n, 1n)), constant('shift/ends', [2], BigInt64Array.of(2n ** 62n, 2n ** 62n)), constant('shift/axes', [2], BigInt64Array.of(2n, 3n))], output: out });
        break;
      case 'gdn': {
        // norm_c = beta_c + sum_j gamma[j][c] x_j^2: a 1x1 conv of x^2 with weight[c][j] = gamma[j][c].
        const C = n.channels;
        const gamma = tensors.get(`${n.prefix}.gamma`)!;
        const transposed = new Float32Array(C * C);
        for (let j = 0; j < C; j++) for (let c = 0; c < C; c++) transposed[c * C + j] = gamma[j * C + c]!;
        const squared = tmp(out);
        const norm = tmp(out);
        const root = tmp(out);
        nodes.push(
          { op: 'Mul', inputs: [x, x], output: squared },
          { op: 'Conv', inputs: [squared, constant(`${n.prefix}.gamma^T`, [C, C, 1, 1], transposed), weight(`${n.prefix}.beta`)], output: norm, attributes: [['kernel_shape', [1, 1]]] },
          { op: 'Sqrt', inputs: [norm], output: root },
          { op: 'Div', inputs: [x, root], output: out },
        );
        break;
      }
      case 'linear': {
        const flat = tmp(out);
        const gemm = tmp(out);
        nodes.push(
          { op: 'Flatten', inputs: [x], output: flat },
          { op: 'Gemm', inputs: [flat, weight(n.weight), weight(n.bias)], output: gemm, attributes: [['transB', 1]] },
          { op: 'Reshape', inputs: [gemm, constant('linear/shape', [4], BigInt64Array.of(0n, -1n, 1n, 1n))], output: out },
        );
        break;
      }
    }
  }
  nodes.push({ op: 'Flatten', inputs: [graph.output], output: 'score' });

  const model = new ProtoWriter();
  model.int(1, IR_VERSION).string(2, 'fqa');
  model.message(7, (g) => {
    for (const [i, n] of nodes.entries()) {
      g.message(1, (w) => {
        for (const input of n.inputs) w.string(1, input);
        w.string(2, n.output).string(3, `${n.op}_${i}`).string(4, n.op);
        for (const a of n.attributes ?? []) w.message(5, (aw) => writeAttribute(aw, a));
      });
    }
    g.string(2, name);
    for (const t of initializers) g.message(5, (w) => writeTensor(w, t));
    g.message(11, (w) => writeValueInfo(w, graph.input, ['N', 3, 'H', 'W']));
    g.message(12, (w) => writeValueInfo(w, 'score', ['N', 1]));
  });
  model.message(8, (op) => op.string(1, '').int(2, OPSET));
  return model.finish();
}
