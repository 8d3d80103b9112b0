/** Scoring whole plain images with a dense patch grid (no tissue filtering). */
import { kernelNames, sweep, type KernelName, type SweepResult } from '@fqa/native';
import { resolveDevice, type Device } from './device.js';
import { decodeImage, type RgbImage } from './image.js';
import { loadModel, type LoadedModel } from './model-file.js';
import { UsageError } from './errors.js';
import { expectInteger, expectOneOf } from './validate.js';

export interface ScoreOptions {
  /** A model file path or an already loaded model. */
  model: string | LoadedModel;
  /** Patch size in pixels; defaults to the model's. */
  patchSize?: number;
  /** Grid stride in pixels; defaults to the model's. */
  stride?: number;
  /** Native threads; 0 = all cores. */
  threads?: number;
  kernel?: KernelName;
  /** 'cpu' (default for scoring: images are small), 'cuda', or 'auto'; a GPU ignores threads and kernel. */
  device?: Device;
  /** Share the conv map between overlapping patches (FocusLiteNN; same scores, less work). */
  shareConvolution?: boolean;
}

export interface ImageScores {
  file: string;
  width: number;
  height: number;
  /** Mean over scored patches. */
  mean: number;
  rows: number;
  cols: number;
  /** Side of the square patch requested; a smaller image is one window over all of it. */
  patchSize: number;
  stride: number;
  /** Row-major, rows = y. */
  scores: Float32Array;
  kernel: SweepResult['kernel'];
  sharedConvolution: boolean;
}

export interface ResolvedScoreOptions {
  /** Marks options that went through resolveScoreOptions (it returns them unchanged). */
  resolved: true;
  model: LoadedModel;
  patchSize: number;
  stride: number;
  threads: number;
  kernel: KernelName | 'cuda';
  shareConvolution: boolean;
  /** Why device 'auto' fell back to the CPU, or null. */
  deviceNotice: string | null;
}

export async function resolveScoreOptions(options: ScoreOptions | ResolvedScoreOptions): Promise<ResolvedScoreOptions> {
  if (typeof options !== 'object' || options === null) throw new UsageError('Expected an options object');
  if ('resolved' in options && options.resolved === true) return options;
  return resolveFresh(options as ScoreOptions);
}

async function resolveFresh(options: ScoreOptions): Promise<ResolvedScoreOptions> {
  const model = typeof options.model === 'string' ? await loadModel(options.model) : options.model;
  if (!model || typeof model !== 'object' || !('native' in model)) throw new UsageError('Expected a model file path or a loaded model for model');
  const device = resolveDevice(options.device ?? 'cpu');
  const kernel = expectOneOf(options.kernel ?? 'auto', 'kernel', kernelNames);
  return {
    resolved: true,
    model,
    patchSize: expectInteger(options.patchSize ?? model.header.patchSize, 'patchSize', 8, 4096),
    stride: expectInteger(options.stride ?? model.header.stride, 'stride', 1, 4096),
    threads: expectInteger(options.threads ?? 0, 'threads', 0, 1024),
    kernel: device.device === 'cuda' ? 'cuda' : kernel,
    shareConvolution: options.shareConvolution ?? true,
    deviceNotice: device.notice,
  };
}

/** Scores one decoded RGB image. */
export async function scoreRgb(image: RgbImage, label: string, o: ResolvedScoreOptions): Promise<ImageScores> {
  const patchWidth = Math.min(o.patchSize, image.width);
  const patchHeight = Math.min(o.patchSize, image.height);
  if (o.model.header.architecture === 'eonss' && (patchWidth !== o.model.header.patchSize || patchHeight !== o.model.header.patchSize)) {
    throw new UsageError(`${label}: EONSS scores fixed ${o.model.header.patchSize} px patches; got a ${patchWidth}x${patchHeight} window (image ${image.width}x${image.height}, patch ${o.patchSize})`);
  }
  const result = await sweep(o.model.native, image.pixels, {
    width: image.width,
    height: image.height,
    rowStride: image.rowStride,
    patchWidth,
    patchHeight,
    stride: o.stride,
    threads: o.threads,
    kernel: o.kernel,
    shareConvolution: o.shareConvolution,
  });
  let sum = 0;
  let n = 0;
  for (const s of result.scores) if (!Number.isNaN(s)) { sum += s; n++; }
  return {
    file: label,
    width: image.width,
    height: image.height,
    mean: n > 0 ? sum / n : Number.NaN,
    rows: result.rows,
    cols: result.columns,
    patchSize: o.patchSize,
    stride: o.stride,
    scores: result.scores,
    kernel: result.kernel,
    sharedConvolution: result.sharedConvolution,
  };
}

/** Decodes an image (path or encoded bytes) and scores it with dense patches. */
export async function scoreImage(input: string | Uint8Array, options: ScoreOptions | ResolvedScoreOptions): Promise<ImageScores> {
  const o = await resolveScoreOptions(options);
  const label = typeof input === 'string' ? input : 'image buffer';
  return scoreRgb(await decodeImage(input, label), label, o);
}
