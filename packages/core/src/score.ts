/** Scoring whole plain images with a dense patch grid (no tissue filtering). */
import sharp from 'sharp';
import { kernelNames, sweep, type KernelName, type SweepResult } from '@fqa/native';
import { resolveDevice, type Device } from './device.js';
import { checkBackground, DARK_BACKGROUND_WARNING, SCORE_MIN_TISSUE } from './domain.js';
import { decodeImage, type RgbImage } from './image.js';
import { detectTissue, patchTissueFractions } from './tissue.js';
import { loadModel, type LoadedModel } from './model-file.js';
import { InputError, UsageError } from './errors.js';
import { expectInteger, expectOneOf } from './validate.js';
import { BACKEND_NAMES, type BackendName } from './models/registry.js';
import { createScorer, scoreGrid, type PatchScorer } from './models/backends/scorer.js';

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
  /** 'auto' (default: the model's fastest available backend), 'native', 'onnx' or 'tfjs'. */
  backend?: BackendName | 'auto';
  /**
   * µm/px of the images: they are resampled to the model's working resolution before scoring
   * (as a slide scan does). Without it images are scored as they are.
   */
  mpp?: number;
}

export interface ImageScores {
  file: string;
  width: number;
  height: number;
  /** Mean over scored patches; NaN when no patch has tissue. */
  mean: number;
  /** Patches with tissue, scored (the others are NaN in scores). */
  patchesScored: number;
  /** Tissue fraction of each patch, row-major. */
  tissue: Float32Array;
  /** No patch has tissue (blank glass, pen only): nothing to judge. */
  noTissue: boolean;
  /** A dark background (fluorescence): scored whole, but outside the model's domain (see warnings). */
  darkBackground: boolean;
  warnings: string[];
  rows: number;
  cols: number;
  /** Side of the square patch requested; a smaller image is one window over all of it. */
  patchSize: number;
  stride: number;
  /** Row-major, rows = y. */
  scores: Float32Array;
  /** The native kernel, or the backend that scored ('onnx', 'tfjs'). */
  kernel: SweepResult['kernel'] | BackendName;
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
  /** The batched scorer for models scored outside the native sweep (deep models, or a backend asked for). */
  scorer: PatchScorer | null;
  /** Why device 'auto' fell back to the CPU, or null. */
  deviceNotice: string | null;
  /** Images' µm/px, or null: scored as they are. */
  mpp: number | null;
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
  const backend = expectOneOf(options.backend ?? 'auto', 'backend', ['auto', ...BACKEND_NAMES] as const);
  const native = model.native !== null && (backend === 'auto' || backend === 'native');
  const threads = expectInteger(options.threads ?? 0, 'threads', 0, 1024);
  if (options.mpp !== undefined && !(typeof options.mpp === 'number' && options.mpp > 0 && options.mpp < 100)) throw new UsageError(`Expected number between 0 and 100 for mpp but received ${String(options.mpp)}`);
  if (options.mpp !== undefined && model.header.micronsPerPixel === null) throw new UsageError(`mpp: the model ${model.header.name} has no working resolution (µm/px) to resample to`);
  return {
    resolved: true,
    model,
    patchSize: expectInteger(options.patchSize ?? model.header.patchSize, 'patchSize', 8, 4096),
    stride: expectInteger(options.stride ?? model.header.stride, 'stride', 1, 4096),
    threads,
    kernel: device.device === 'cuda' ? 'cuda' : kernel,
    shareConvolution: options.shareConvolution ?? true,
    scorer: native ? null : await createScorer(model, { backend, threads }),
    deviceNotice: device.notice,
    mpp: options.mpp ?? null,
  };
}

/** Side of the smallest window a FocusLiteNN scores (its convolution must fit); EONSS is checked below. */
function smallestFocusLiteWindow(model: LoadedModel): number {
  const g = model.header.focuslitenn;
  return model.header.architecture === 'focuslitenn' && g ? Math.max(1, g.convKernel - 2 * g.convPad) : 1;
}

/**
 * A patch that was scored must have a finite score: NaN means "not scored" (background) and an
 * infinite score would pass any threshold test silently. `skip` marks the patches not scored.
 */
export function expectFiniteScores(scores: Float32Array, skip: Uint8Array | null, columns: number, what: string): void {
  for (let i = 0; i < scores.length; i++) {
    if (Number.isFinite(scores[i]!) || (skip !== null && skip[i] !== 0)) continue;
    throw new InputError(`${what}: the model gives a non-finite score (${scores[i]}) for patch ${i % columns}, ${Math.floor(i / columns)} (column, row): its weights are damaged or not a trained model`);
  }
}

/** Scores one decoded RGB image. */
export async function scoreRgb(image: RgbImage, label: string, o: ResolvedScoreOptions): Promise<ImageScores> {
  const patchWidth = Math.min(o.patchSize, image.width);
  const patchHeight = Math.min(o.patchSize, image.height);
  const smallest = smallestFocusLiteWindow(o.model);
  if (patchWidth < smallest || patchHeight < smallest) {
    throw new InputError(`${label}: ${image.width}x${image.height} pixels is smaller than the model's smallest window (${smallest} px)`);
  }
  if (o.model.header.architecture === 'eonss' && (patchWidth !== o.model.header.patchSize || patchHeight !== o.model.header.patchSize)) {
    throw new UsageError(`${label}: EONSS scores fixed ${o.model.header.patchSize} px patches; got a ${patchWidth}x${patchHeight} window (image ${image.width}x${image.height}, patch ${o.patchSize})`);
  }
  const result = await gridScores(image, label, o, patchWidth, patchHeight);
  expectFiniteScores(result.scores, null, result.columns, `${label} scored with ${o.model.file}`);
  // Background patches are not scored: a blank patch has no focus. On a dark background (fluorescence)
  // the brightfield tissue detector does not apply, so every patch is kept, with a warning.
  const background = checkBackground(image.pixels, image.width, image.height, image.rowStride);
  const tissueMask = detectTissue(image.pixels, image.width, image.height, image.rowStride);
  const tissue = patchTissueFractions(tissueMask, 1, { columns: result.columns, rows: result.rows, patchSize: patchWidth, patchHeight, stride: o.stride });
  const warnings: string[] = [];
  if (background.darkBackground) warnings.push(DARK_BACKGROUND_WARNING);
  let sum = 0;
  let n = 0;
  for (let i = 0; i < result.scores.length; i++) {
    if (!background.darkBackground && tissue[i]! < SCORE_MIN_TISSUE) result.scores[i] = Number.NaN;
    const s = result.scores[i]!;
    if (!Number.isNaN(s)) { sum += s; n++; }
  }
  if (n === 0) warnings.push('no tissue: nothing to judge (blank glass, background or pen only)');
  return {
    file: label,
    width: image.width,
    height: image.height,
    mean: n > 0 ? sum / n : Number.NaN,
    patchesScored: n,
    tissue,
    noTissue: n === 0,
    darkBackground: background.darkBackground,
    warnings,
    rows: result.rows,
    cols: result.columns,
    patchSize: o.patchSize,
    stride: o.stride,
    scores: result.scores,
    kernel: result.kernel,
    sharedConvolution: result.sharedConvolution,
  };
}

/** The dense grid's scores: the native sweep, or batches through the model's scorer (deep models). */
async function gridScores(image: RgbImage, label: string, o: ResolvedScoreOptions, patchWidth: number, patchHeight: number): Promise<{ scores: Float32Array; rows: number; columns: number; kernel: ImageScores['kernel']; sharedConvolution: boolean }> {
  if (o.scorer || !o.model.native) {
    if (patchWidth !== o.patchSize || patchHeight !== o.patchSize) {
      throw new UsageError(`${label}: ${o.model.header.architecture} scores whole ${o.patchSize} px patches; the image is ${image.width}x${image.height}`);
    }
    const scorer = o.scorer ?? (await createScorer(o.model, { threads: o.threads }));
    const grid = await scoreGrid(scorer, image, o.patchSize, o.stride);
    return { ...grid, kernel: scorer.backend, sharedConvolution: false };
  }
  return sweep(o.model.native, image.pixels, {
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
}

/** Decodes an image (path or encoded bytes) and scores it with dense patches. */
export async function scoreImage(input: string | Uint8Array, options: ScoreOptions | ResolvedScoreOptions): Promise<ImageScores> {
  const o = await resolveScoreOptions(options);
  const label = typeof input === 'string' ? input : 'image buffer';
  const image = await decodeImage(input, label);
  return scoreRgb(o.mpp === null ? image : await resample(image, o.mpp / o.model.header.micronsPerPixel!), label, o);
}

/** The image scaled by `factor` (Lanczos, as a slide scan resamples), e.g. 0.25 µm/px to 0.5: 0.5. */
async function resample(image: RgbImage, factor: number): Promise<RgbImage> {
  if (Math.abs(factor - 1) < 1e-3) return image;
  const width = Math.max(1, Math.round(image.width * factor));
  const height = Math.max(1, Math.round(image.height * factor));
  const out = await sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: 3 } }).resize(width, height, { kernel: 'lanczos3', fit: 'fill' }).raw().toBuffer();
  return { pixels: new Uint8Array(out.buffer, out.byteOffset, out.length), width, height, rowStride: width * 3 };
}
