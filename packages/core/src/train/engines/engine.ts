/**
 * Training engines: what runs the tensor work of the graph trainer (graph-trainer.ts), which keeps
 * the loop, data, checkpoints, resume and history. Two engines, one interface: `tfjs` (always
 * installed, slow: pure JavaScript) and `torch` (libtorch through the optional @fqa/torch addon).
 * Both build the network from the registry's layer graph and exchange tensors in the model file's
 * PyTorch layouts, so a checkpoint written by one resumes on the other and the trained file is the
 * same `.fqa` whichever engine ran.
 */
import type { Graph } from '../../models/graph.js';
import type { LossName } from '../trainer.js';

export type EngineName = 'tfjs' | 'torch';
export const ENGINE_NAMES: readonly EngineName[] = ['torch', 'tfjs'];

export interface EngineSessionOptions {
  architecture: string;
  graph: Graph;
  patchSize: number;
  /** Every graph tensor (parameters and BatchNorm buffers), model-file layouts. */
  tensors: Map<string, Float32Array>;
  /** Adam moments by parameter name (a resume); zeros when absent. */
  moments?: Map<string, { m: Float32Array; v: Float32Array }>;
  /** Adam steps taken before (bias correction continues from here). */
  step: number;
  loss: LossName;
  mean: readonly number[];
  std: readonly number[];
  /** cpu (default) or cuda (torch with a CUDA libtorch). */
  device?: 'cpu' | 'cuda';
}

export interface EngineSession {
  /** What ran, for the run's records: e.g. 'torch (libtorch 1.13.1, cpu, 1 thread)'. */
  readonly detail: string;
  /** One Adam step on a batch of NHWC bytes; returns the batch loss (before the step). */
  step(pixels: Uint8Array, labels: Float32Array, count: number, rate: number): number;
  /** Every graph tensor (model-file layouts), plus `name#adam.m` / `name#adam.v` with `withAdam`. */
  snapshot(withAdam: boolean): Map<string, Float32Array>;
  dispose(): void;
}

export type EngineStatus = { name: EngineName; available: true; detail: string } | { name: EngineName; available: false; reason: string };

export interface TrainingEngine {
  name: EngineName;
  status(): Promise<EngineStatus>;
  open(o: EngineSessionOptions): Promise<EngineSession>;
}

/** Adam as torch.optim.Adam (no weight decay): both engines use these constants. */
export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } as const;
export const BN_MOMENTUM = 0.1;
export const BN_EPSILON = 1e-5;
