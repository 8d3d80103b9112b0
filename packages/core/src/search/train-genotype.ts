/**
 * A minimal trainer for the DARTS-FQA evaluation network of a searched genotype: the registry's
 * layer graph (the same one every backend scores), run by the tfjs backend's forward pass in training
 * mode (BatchNorm on batch statistics, running statistics updated as torch does), Adam on the PLCC
 * loss. It proves a searched genotype trains end to end and gives a model file to scan with; the
 * paper's full 120-epoch schedule is the training command's job.
 */
import type * as TF from '@tensorflow/tfjs';
import { encodeModelFile } from '../model-file.js';
import { dartsFqaArchitecture, type Genotype } from '../models/architectures/darts-fqa.js';
import { convToTf, graphForward } from '../models/backends/tfjs.js';
import type { Graph } from '../models/graph.js';
import { randomWeights } from '../models/weights.js';
import type { BatchSource } from '../train/batches.js';
import { seededRandom } from '../train/random.js';
import { conv2dTrainable, loadTf, patchesToTensor, tfToTorchConv } from '../train/tfjs-models.js';
import { tfLoss } from '../train/tfjs-trainer.js';
import { expectInteger } from '../validate.js';
import { batchNormTrainable, depthwiseConv2dTrainable } from './cpu-ops.js';

export interface GenotypeTrainOptions {
  /** Optimizer steps (one batch each). */
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  mean: [number, number, number];
  std: [number, number, number];
  onStep?: (step: number, loss: number) => void;
}

export interface GenotypeTrainResult {
  graph: Graph;
  /** Every tensor of the graph in PyTorch layouts (running statistics included), ready for a model file. */
  tensors: Map<string, Float32Array>;
  /** The PLCC loss of each step, before its update. */
  losses: number[];
  backend: string;
}

/** torch's BatchNorm momentum. */
const BN_MOMENTUM = 0.1;

export async function trainGenotype(genotype: Genotype, data: BatchSource, o: GenotypeTrainOptions): Promise<GenotypeTrainResult> {
  const { tf, package: pkg, backend } = await loadTf();
  expectInteger(o.steps, 'eval-steps', 1, 1_000_000);
  expectInteger(o.batchSize, 'batch', 2, 100_000);
  const graph = dartsFqaArchitecture.graph(genotype);
  const init = randomWeights(graph, o.seed);
  const shapes = new Map(graph.tensors.map((t) => [t.name, t.shape]));
  const depthwise = new Set(graph.nodes.filter((n) => n.op === 'conv' && n.groups > 1).map((n) => (n as { weight: string }).weight));
  const convs = new Set(graph.nodes.filter((n) => n.op === 'conv').map((n) => (n as { weight: string }).weight));
  const linears = new Set(graph.nodes.filter((n) => n.op === 'linear').map((n) => (n as { weight: string }).weight));
  // Weights in tfjs layouts; BatchNorm scale 1 and shift 0 as torch initializes them.
  const params = new Map<string, TF.Variable>();
  // Running statistics start at torch's 0 / 1 and follow the batches (below).
  const running = new Map<string, Float32Array>();
  for (const t of graph.tensors) {
    const data0 = init.get(t.name)!;
    if (t.kind === 'buffer') running.set(t.name, new Float32Array(data0.length).fill(t.name.endsWith('running_var') ? 1 : 0));
    else if (convs.has(t.name)) {
      const [out, inC, k] = t.shape as [number, number, number];
      params.set(t.name, tf.variable(tf.tensor4d(convToTf(data0, t.shape), depthwise.has(t.name) ? [k, k, out, 1] : [k, k, inC, out])));
    } else if (linears.has(t.name)) params.set(t.name, tf.variable(tf.tensor2d(data0, t.shape as [number, number])));
    else if (t.shape.length === 1 && graph.nodes.some((n) => n.op === 'batchnorm' && t.name.startsWith(`${n.prefix}.`))) {
      params.set(t.name, tf.variable(t.name.endsWith('.weight') ? tf.ones([t.shape[0]!]) : tf.zeros([t.shape[0]!])));
    } else params.set(t.name, tf.variable(tf.tensor(data0, t.shape)));
  }
  const tensor = (name: string): TF.Tensor => params.get(name)!;
  const vars = [...params.values()];
  // Training-mode BatchNorm; the running statistics follow torch: (1 - m) running + m batch, unbiased batch variance.
  const trainingBatchNorm = (x: TF.Tensor4D, prefix: string) =>
    batchNormTrainable(tf, x, { scale: params.get(`${prefix}.weight`)! as TF.Tensor1D, offset: params.get(`${prefix}.bias`)! as TF.Tensor1D }, (mean, variance, count) => {
      const runningMean = running.get(`${prefix}.running_mean`)!;
      const runningVar = running.get(`${prefix}.running_var`)!;
      for (let c = 0; c < mean.length; c++) {
        runningMean[c] = (1 - BN_MOMENTUM) * runningMean[c]! + BN_MOMENTUM * mean[c]!;
        runningVar[c] = (1 - BN_MOMENTUM) * runningVar[c]! + BN_MOMENTUM * variance[c]! * (count / Math.max(1, count - 1));
      }
    });
  // tfjs's CPU conv gradients loop through TensorBuffer.get (minutes per step for this network):
  // point-wise convs as a matMul, depth-wise ones and the rest with their own gradients.
  const trainableConv = (x: TF.Tensor4D, f: TF.Tensor4D, n: { kernel: number; stride: number; pad: number; dilation: number; groups: number }): TF.Tensor4D => {
    if (n.groups > 1) return depthwiseConv2dTrainable(tf, x, f, n.stride, n.pad, n.dilation);
    if (n.kernel === 1 && n.stride === 1) {
      const [b, h, wd, c] = x.shape;
      return tf.matMul(x.reshape([b * h * wd, c]), f.reshape([c, f.shape[3]])).reshape([b, h, wd, f.shape[3]]) as TF.Tensor4D;
    }
    return conv2dTrainable(tf, x, f, n.stride, n.pad);
  };
  const optimizer = tf.train.adam(o.learningRate, 0.9, 0.999, 1e-8);
  const random = seededRandom(o.seed);
  const losses: number[] = [];
  try {
    while (losses.length < o.steps) {
      let any = false;
      for await (const batch of data.epoch(random, o.batchSize)) {
        any = true;
        const loss = tf.tidy(() => {
          const x = patchesToTensor(tf, batch.pixels, batch.count, data.size, o.mean, o.std);
          const y = tf.tensor1d(batch.labels);
          const value = optimizer.minimize(() => tfLoss(tf, 'plcc', graphForward(tf, graph, tensor, x, { conv: trainableConv, batchNorm: trainingBatchNorm }), y), true, vars)!;
          return value.dataSync()[0]!;
        });
        losses.push(loss);
        o.onStep?.(losses.length, loss);
        if (!Number.isFinite(loss)) throw new Error(`evaluation-network training diverged at step ${losses.length}: try a smaller learning rate`);
        if (losses.length >= o.steps) break;
      }
      if (!any) throw new Error('the training data gave no batch of at least 2 patches');
    }
    // Back to PyTorch layouts for the model file.
    const tensors = new Map<string, Float32Array>();
    for (const t of graph.tensors) {
      const values = running.get(t.name) ?? Float32Array.from(params.get(t.name)!.dataSync() as Float32Array);
      if (convs.has(t.name)) {
        const [out, inC, k] = shapes.get(t.name) as [number, number, number];
        tensors.set(t.name, tfToTorchConv(values, out, inC, k));
      } else tensors.set(t.name, values);
    }
    return { graph, tensors, losses, backend: `${pkg} (${backend})` };
  } finally {
    params.forEach((v) => v.dispose());
    optimizer.dispose();
  }
}

/** A model file of the evaluation network with a searched genotype (carried in the header). */
export function genotypeModelFile(genotype: Genotype, trained: GenotypeTrainResult, info: { name: string; mean: [number, number, number]; std: [number, number, number]; source: string; notes?: string }): Buffer {
  const patchSize = 64;
  return encodeModelFile(
    {
      architecture: dartsFqaArchitecture.name,
      name: info.name,
      patchSize,
      stride: dartsFqaArchitecture.defaultStride(patchSize),
      normalization: { mean: info.mean, std: info.std },
      score: { scale: 'higher = blurrier; DARTS-FQA evaluation network of a searched genotype, PLCC loss (not calibrated)', threshold: null },
      micronsPerPixel: null,
      ...dartsFqaArchitecture.headerFields(genotype, 'searched'),
      provenance: { source: info.source, license: 'follows the training data licence', createdBy: 'fqa-scan search', createdAt: new Date().toISOString(), notes: info.notes },
    },
    trained.graph.tensors.map((t) => ({ name: t.name, shape: t.shape, data: trained.tensors.get(t.name)! })),
  );
}
