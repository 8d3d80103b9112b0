/**
 * @fqa/torch: the typed face of the optional libtorch training engine. The addon is built only
 * where libtorch is installed (scripts/build.mjs); `loadTorchEngine()` says why it is missing
 * otherwise, so callers fall back to tfjs with a reason instead of a stack trace.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const version: string = (require(path.join(packageRoot, 'package.json')) as { version: string }).version;

/** One tensor of the graph, PyTorch layout; parameters may carry their Adam moments (a resume). */
export interface TorchTensorSpec {
  name: string;
  shape: number[];
  /** architecture: DARTS's alphas, moved only by searchStep('architecture'). */
  kind: 'parameter' | 'buffer' | 'architecture';
  data: Float32Array;
  m?: Float32Array;
  v?: Float32Array;
}

export interface GraphTrainerSpec {
  /** The registry graph's nodes, input and output (models/graph.ts). */
  nodes: readonly object[];
  input: string;
  output: string;
  tensors: TorchTensorSpec[];
  /** Adam steps taken before (bias correction continues from here). */
  step: number;
  loss: 'plcc' | 'mse' | 'mae';
  mean: readonly number[];
  std: readonly number[];
  threads: number;
  device: 'cpu' | 'cuda';
  /** Keep 4-D tensors in NHWC memory order (faster for some architectures). */
  channelsLast: boolean;
}

export interface GraphTrainer {
  /** One Adam step on a batch (NHWC bytes, one label per patch); returns the batch loss. */
  step(pixels: Uint8Array, labels: Float32Array, count: number, size: number, learningRate: number): number;
  /**
   * One first-order DARTS step: 'architecture' moves the architecture tensors (Adam, betas 0.5 /
   * 0.999, L2 decay), 'weights' the parameters (global-norm clip, then SGD with momentum and decay).
   */
  searchStep(pixels: Uint8Array, labels: Float32Array, count: number, size: number, which: 'architecture' | 'weights', settings: SearchStepSettings): number;
  /** The batch loss and every parameter's and architecture tensor's gradient; nothing moves. */
  gradients(pixels: Uint8Array, labels: Float32Array, count: number, size: number): { loss: number; gradients: Record<string, Float32Array> };
  /** Inference scores (running BatchNorm statistics). */
  scores(pixels: Uint8Array, count: number, size: number): Float32Array;
  /** Every tensor (PyTorch layouts), with `name#adam.m` / `name#adam.v` when asked. */
  tensors(withAdam: boolean): { step: number; tensors: Record<string, Float32Array> };
  dispose(): void;
}

export interface SearchStepSettings {
  learningRate: number;
  weightDecay: number;
  /** weights only */
  momentum?: number;
  /** weights only: the gradient's global norm is clipped to this */
  gradClip?: number;
}

export interface TorchBuildInfo {
  torchVersion: string;
  cuda: boolean;
  cudaDevices: number;
  threads: number;
}

export interface TorchBinding {
  GraphTrainer: new (spec: GraphTrainerSpec) => GraphTrainer;
  buildInfo(): TorchBuildInfo;
}

export type TorchEngineLoad = { ok: true; binding: TorchBinding; file: string } | { ok: false; reason: string };

let loaded: TorchEngineLoad | undefined;

/**
 * The addon, or why it is not there. OpenMP and OpenBLAS read their thread counts when libtorch
 * loads, and on a busy machine their spinning threads make two threads run slower than one: one
 * thread and a passive wait are set here first unless the environment already chose.
 */
export function loadTorchEngine(): TorchEngineLoad {
  if (loaded) return loaded;
  const file = path.join(packageRoot, 'build', 'Release', `fqa-torch-v${version}.node`);
  if (!existsSync(file)) {
    loaded = { ok: false, reason: 'not built: libtorch was not found when fqa was installed (bash scripts/install.sh --train installs it)' };
    return loaded;
  }
  for (const [name, value] of [['OMP_NUM_THREADS', '1'], ['OPENBLAS_NUM_THREADS', '1'], ['MKL_NUM_THREADS', '1'], ['OMP_WAIT_POLICY', 'PASSIVE']] as const) {
    process.env[name] ??= value;
  }
  try {
    loaded = { ok: true, binding: require(file) as TorchBinding, file };
  } catch (err) {
    loaded = { ok: false, reason: `cannot load ${file}: ${(err as Error).message.split('\n')[0]}` };
  }
  return loaded;
}
