/**
 * Piscina worker: scores one region with the native sweep on this thread (sweepSync, 1 native
 * thread). The pool is the parallelism, so workers never start native threads of their own.
 * Models are loaded once per worker and cached by path.
 */
import { sweepSync, type KernelName } from '@fqa/native';
import { loadModel, type LoadedModel } from '../model-file.js';

export interface RegionTask {
  modelPath: string;
  pixels: Uint8Array;
  width: number;
  height: number;
  patchSize: number;
  stride: number;
  skip: Uint8Array;
  kernel: KernelName | 'cuda';
}

const models = new Map<string, Promise<LoadedModel>>();

export default async function scoreRegion(task: RegionTask): Promise<{ scores: Float32Array; kernel: string }> {
  let model = models.get(task.modelPath);
  if (!model) {
    model = loadModel(task.modelPath);
    models.set(task.modelPath, model);
  }
  const loaded = await model;
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
