/**
 * One door to score patches with any model: the native sweep (FocusLiteNN, EONSS), ONNX Runtime or
 * tfjs, picked as the fastest available backend the architecture lists, or as asked.
 */
import { sweepSync, type KernelName } from '@fqa/native';
import { UsageError } from '../../errors.js';
import type { LoadedModel } from '../../model-file.js';
import type { BackendName, Normalization } from '../registry.js';
import { loadOnnxRuntime, onnxGraph } from './onnxruntime.js';
import { tfjsGraph } from './tfjs.js';

export interface PatchScorer {
  backend: BackendName;
  /** Which runtime, e.g. 'onnxruntime-node 1.30.0 (cpu)'. */
  detail: string;
  /** u8 RGB patches, `count` of them, each size x size x 3 (row-major) -> one score each. */
  score(pixels: Uint8Array, count: number, size: number): Promise<Float32Array>;
  /** Already normalized input [count][3][size][size] (NCHW); not for the native backend. */
  scoreNormalized?(input: Float32Array, count: number, size: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface ScorerOptions {
  /** 'auto' (default): the first of the model's backends that is available here. */
  backend?: BackendName | 'auto';
  /** Threads for the backend (the scan pool passes 1: it is the parallelism). 0 = the runtime's default. */
  threads?: number;
  /** Native kernel (FocusLiteNN/EONSS), or 'cuda' for the GPU sweep. */
  kernel?: KernelName | 'cuda';
}

/** u8 HWC patches -> (x/255 - mean)/std as float32 NCHW. */
export function patchesToNchw(pixels: Uint8Array, count: number, size: number, n: Normalization): Float32Array {
  const plane = size * size;
  const out = new Float32Array(count * 3 * plane);
  const table = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (Math.fround(v / 255) - n.mean[c]!) / n.std[c]!));
  for (let p = 0; p < count; p++)
    for (let i = 0; i < plane; i++)
      for (let c = 0; c < 3; c++) out[(p * 3 + c) * plane + i] = table[c]![pixels[(p * plane + i) * 3 + c]!]!;
  return out;
}

/** Whether a backend can run here (installed and loadable), without loading a model. */
export function backendAvailable(backend: BackendName): boolean {
  return backend === 'onnx' ? loadOnnxRuntime() !== null : true;
}

export async function createScorer(model: LoadedModel, o: ScorerOptions = {}): Promise<PatchScorer> {
  const wanted = o.backend ?? 'auto';
  const backend = wanted === 'auto' ? model.backends.find(backendAvailable) : wanted;
  if (!backend || !model.backends.includes(backend)) {
    throw new UsageError(`${model.file}: ${model.header.architecture} runs on ${model.backends.join(', ')}; backend '${wanted}' is not one of them`);
  }
  if (!backendAvailable(backend)) throw new UsageError(`backend ${backend}: onnxruntime-node is not installed (npm install onnxruntime-node), or its binary does not load on this machine`);
  const normalization = model.header.normalization;
  if (backend === 'native') {
    const native = model.native!;
    return {
      backend,
      detail: o.kernel === 'cuda' ? 'fqa native (cuda)' : 'fqa native',
      async score(pixels, count, size) {
        // The patches stacked into one image (size wide, count x size tall), one patch per row.
        const r = sweepSync(native, pixels, { width: size, height: size * count, rowStride: size * 3, patchWidth: size, patchHeight: size, stride: size, threads: o.threads ?? 1, kernel: o.kernel ?? 'auto', shareConvolution: false });
        return r.scores;
      },
      dispose: async () => {},
    };
  }
  const g = backend === 'onnx' ? await onnxGraph(model.graph, model.tensors, { threads: o.threads }) : await tfjsGraph(model.graph, model.tensors);
  return {
    backend,
    detail: g.detail,
    score: (pixels, count, size) => g.run(patchesToNchw(pixels, count, size, normalization), count, size),
    scoreNormalized: (input, count, size) => g.run(input, count, size),
    dispose: async () => {
      await g.dispose();
    },
  };
}

export interface GridScores {
  rows: number;
  columns: number;
  /** Row-major; NaN where skipped. */
  scores: Float32Array;
}

/** Patches gathered per backend call: large enough to amortize a call, small enough for memory (300 px: 34 MB of floats). */
const BATCH = 32;

/**
 * A dense patch grid over an RGB image (window patch x patch, step stride), scored in batches;
 * patches whose `skip` byte is set are not scored (NaN), as in the native sweep.
 */
export async function scoreGrid(scorer: PatchScorer, image: { pixels: Uint8Array; width: number; height: number; rowStride: number }, patch: number, stride: number, skip?: Uint8Array): Promise<GridScores> {
  const columns = Math.floor((image.width - patch) / stride) + 1;
  const rows = Math.floor((image.height - patch) / stride) + 1;
  const scores = new Float32Array(Math.max(0, rows * columns)).fill(Number.NaN);
  const todo: number[] = [];
  for (let i = 0; i < scores.length; i++) if (!skip || skip[i] === 0) todo.push(i);
  const bytes = patch * patch * 3;
  const batch = new Uint8Array(Math.min(BATCH, todo.length) * bytes);
  for (let start = 0; start < todo.length; start += BATCH) {
    const ids = todo.slice(start, start + BATCH);
    ids.forEach((id, k) => {
      const y = Math.floor(id / columns) * stride;
      const x = (id % columns) * stride;
      for (let r = 0; r < patch; r++) {
        const from = (y + r) * image.rowStride + x * 3;
        batch.set(image.pixels.subarray(from, from + patch * 3), k * bytes + r * patch * 3);
      }
    });
    const out = await scorer.score(batch.subarray(0, ids.length * bytes), ids.length, patch);
    ids.forEach((id, k) => (scores[id] = out[k]!));
  }
  return { rows, columns, scores };
}
