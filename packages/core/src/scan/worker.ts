/**
 * Piscina worker: scores one region on this thread, with the native sweep (sweepSync, 1 native
 * thread) or, for models without a native kernel, batched patches through ONNX Runtime or tfjs
 * (one intra-op thread; session.run blocks this worker, not the scan's event loop). The pool is the
 * parallelism, so workers never start threads of their own. Models and scorers are loaded once per
 * worker and cached by path.
 */
import { sweepSync, type KernelName } from '@fqa/native';
import { loadModel, type LoadedModel } from '../model-file.js';
import { createScorer, scoreGrid, type PatchScorer } from '../models/backends/scorer.js';
import type { BackendName } from '../models/registry.js';

export interface RegionTask {
  modelPath: string;
  pixels: Uint8Array;
  width: number;
  height: number;
  patchSize: number;
  stride: number;
  skip: Uint8Array;
  kernel: KernelName | 'cuda';
  backend: BackendName | 'auto';
}

const models = new Map<string, Promise<LoadedModel>>();
const scorers = new Map<string, Promise<PatchScorer>>();

export default async function scoreRegion(task: RegionTask): Promise<{ scores: Float32Array; kernel: string }> {
  let model = models.get(task.modelPath);
  if (!model) {
    model = loadModel(task.modelPath);
    models.set(task.modelPath, model);
  }
  const loaded = await model;
  if (!loaded.native || (task.backend !== 'auto' && task.backend !== 'native')) {
    const key = `${task.modelPath}\0${task.backend}`;
    let scorer = scorers.get(key);
    if (!scorer) {
      scorer = createScorer(loaded, { backend: task.backend, threads: 1 });
      scorers.set(key, scorer);
    }
    const s = await scorer;
    const grid = await scoreGrid(s, { pixels: task.pixels, width: task.width, height: task.height, rowStride: task.width * 3 }, task.patchSize, task.stride, task.skip);
    return { scores: grid.scores, kernel: s.backend };
  }
  const result = sweepSync(loaded.native, task.pixels, {
    width: task.width,
    height: task.height,
    rowStride: task.width * 3,
    patchWidth: task.patchSize,
    patchHeight: task.patchSize,
    stride: task.stride,
    skip: task.skip,
    threads: 1,
    kernel: task.kernel,
    shareConvolution: true,
  });
  // The scores are a few hundred floats: a structured-clone copy is cheaper than a transfer.
  return { scores: result.scores, kernel: result.kernel };
}
