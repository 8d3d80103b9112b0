/**
 * scanSlide(): a whole slide (or a plain image) swept with a model, background skipped.
 *
 * open → tissue mask on a low-resolution level → level/resampling for the model's µm/px → patch
 * grid → regions of whole patches, read here (OpenSlide reads run on libuv threads) and scored in a
 * Piscina pool (one native thread per worker) → score grid in working pixels, geometry reported
 * in level-0 pixels.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { kernelNames, type KernelName, type NativeModel } from '@fqa/native';
import { resolveDevice, trustDevice, verifyKernel, type Device } from '../device.js';
import { FqaError, InputError, UsageError, TooSmallError } from '../errors.js';
import { MPP_RANGE, plausibleMpp } from '../limits.js';
import { DEFAULT_MODEL_PATH, loadModel, type ModelHeader } from '../model-file.js';
import { expectFiniteScores } from '../score.js';
import { openSource, type SlideSource } from '../slide-source.js';
import { checkBackground, penWarning, verdictBlocker } from '../domain.js';
import { detectTissue, patchTissueFractions, type TissueMask } from '../tissue.js';
import { expectInteger, expectOneOf } from '../validate.js';
import { MASK_SIDE, STREAMED_MASK_PIXELS, streamedMaskImage, wholeLevelMaskImage } from './mask-thumbnail.js';
import { chooseLevel, planRegions, requireUpsamplingWithinBound, type GridRegion } from './plan.js';
import { BACKEND_NAMES, type BackendName } from '../models/registry.js';
import { backendAvailable } from '../models/backends/scorer.js';
import type { RegionTask } from './worker.js';

export interface ScanOptions {
  /** Model file path (each worker loads it); default fqa's shipped model (DEFAULT_MODEL_PATH). */
  model?: string;
  /** Patch size and stride in working pixels; default the model's. */
  patchSize?: number;
  stride?: number;
  /** µm/px of level 0 when the slide has no metadata (or to override it). */
  mpp?: number;
  /** Score above which a patch is out of focus; default the model file's (none for reference weights). */
  threshold?: number;
  /** Minimum tissue fraction of a patch to score it (default 0.5). */
  minTissue?: number;
  /** Largest fraction of tissue allowed out of focus before the slide fails QC (default 0.05). */
  maxOutOfFocus?: number;
  /** Worker threads (default, and at most: the number of cores; more only adds memory). */
  workers?: number;
  kernel?: KernelName;
  /** 'auto' (default: CUDA when built and a GPU answers, else the CPU with a notice in warnings), 'cuda' or 'cpu'. */
  device?: Device;
  /** 'auto' (default: the model's fastest available backend: native for FocusLiteNN/EONSS, else ONNX Runtime, else tfjs), or one of them. */
  backend?: BackendName | 'auto';
  signal?: AbortSignal;
  onProgress?: (progress: { regionsDone: number; regions: number }) => void;
  /**
   * true (default): where the direct JPEG-tile reader serves the scanned level as is, or decoded at
   * 1/2, 1/4 or 1/8 in place of resampling (a 40x slide for a 20x model), and the native CPU kernels
   * score, decode and score each region in one native pass; false: read regions into JS and score
   * them in the worker pool, as for every other slide (the same scores for a level read as is; for a
   * scaled decode, lanczos3 resampling in its place: close scores, not the same).
   */
  fusedSweep?: boolean;
}

export interface ScanSummary {
  tissueFraction: number;
  /** Fraction of the slide's area excluded as marker pen (neither tissue nor scored). */
  penFraction: number;
  patchesScored: number;
  /** Tissue-weighted fraction of scored patches above the threshold; null without a threshold. */
  outOfFocusFraction: number | null;
  mean: number;
  p10: number;
  p90: number;
  threshold: number | null;
  verdict: 'pass' | 'fail' | 'no-tissue' | 'unknown';
  /** Why the verdict is 'unknown' or 'no-tissue' (the model cannot judge this slide), else null. */
  verdictReason: string | null;
}

/** The model a scan used, for provenance: its name, file and the SHA-256 of the file's bytes. */
export interface ScanModelInfo {
  name: string;
  /** What the score means (the model file's score scale), e.g. "estimated defocus level". */
  scoreScale: string;
  file: string;
  sha256: string;
}

/** The options that decide a scan's scores and verdict, resolved (defaults filled in). */
export interface ResolvedScanOptions {
  patchSize: number;
  stride: number;
  /** µm/px given for level 0 (overriding the slide's metadata), or null. */
  mpp: number | null;
  threshold: number | null;
  minTissue: number;
  maxOutOfFocus: number;
}

export interface ScanResult {
  file: string;
  vendor: string;
  width: number;
  height: number;
  level: number;
  /** µm per level-0 pixel (metadata or --mpp), or null. */
  slideMpp: number | null;
  /** µm per working pixel, or null. */
  mpp: number | null;
  level0PerWorkingPixel: number;
  patchSize: number;
  stride: number;
  columns: number;
  rows: number;
  /** Row-major; NaN where the patch was not scored (background). */
  scores: Float32Array;
  /** Tissue fraction of each patch. */
  tissue: Float32Array;
  /** The tissue mask, and the RGB thumbnail it was computed from (same size). */
  tissueMask: TissueMask & { level0PerMaskPixel: number; thumbnail: Uint8Array };
  summary: ScanSummary;
  timings: { openSeconds: number; tissueSeconds: number; scoreSeconds: number; totalSeconds: number };
  kernel: string;
  /** Where the patches were scored. */
  device: 'cuda' | 'cpu';
  /**
   * Why the scan did not run on the GPU, when device 'auto' fell back (a fact about the machine,
   * not the slide: kept out of warnings so a batch can say it once).
   */
  deviceNotice: string | null;
  model: ScanModelInfo;
  options: ResolvedScanOptions;
  /**
   * Which reader served the pixels, and the JPEG tiles it decoded (each once) or served from cache;
   * decodeScale d > 1: the level was decoded at 1/d by libjpeg's scaled IDCT in place of resampling.
   */
  reader: { reader: 'direct' | 'openslide' | 'image'; tilesDecoded: number; tileCacheHits: number; tilesRedecoded: number; decodeScale: number };
  /** 'fused': regions decoded and scored in one native pass each; 'pool': read into JS, scored in the worker pool. */
  pipeline: 'fused' | 'pool';
  warnings: string[];
}

/** A patch is scored when at least this fraction of it is tissue. */
export const DEFAULT_MIN_TISSUE = 0.5;
/** A slide fails QC when more than this fraction of its tissue scores above the threshold. */
export const DEFAULT_MAX_OUT_OF_FOCUS = 0.05;

/** The options that decide scores and verdict, with the model's and fqa's defaults filled in. */
export function resolveScanOptions(header: ModelHeader, o: ScanOptions): ResolvedScanOptions {
  return {
    patchSize: o.patchSize ?? header.patchSize,
    stride: o.stride ?? header.stride,
    mpp: o.mpp ?? null,
    threshold: o.threshold ?? header.score.threshold,
    minTissue: o.minTissue ?? DEFAULT_MIN_TISSUE,
    maxOutOfFocus: o.maxOutOfFocus ?? DEFAULT_MAX_OUT_OF_FOCUS,
  };
}

/** Checks scanSlide's options (a UsageError naming the option); the CLI calls it before any slide. */
export function validateScanOptions(o: ScanOptions) {
  if (typeof o !== 'object' || o === null) throw new UsageError('Expected an options object');
  if (o.model !== undefined && typeof o.model !== 'string') throw new UsageError('Expected a model file path for model');
  if (o.patchSize !== undefined) expectInteger(o.patchSize, 'patchSize', 8, 4096);
  if (o.stride !== undefined) expectInteger(o.stride, 'stride', 1, 4096);
  if (o.workers !== undefined) expectInteger(o.workers, 'workers', 1, 256);
  if (o.mpp !== undefined && !(typeof o.mpp === 'number' && plausibleMpp(o.mpp))) throw new UsageError(`Expected number between ${MPP_RANGE.min} and ${MPP_RANGE.max} for mpp but received ${String(o.mpp)}`);
  if (o.threshold !== undefined && !Number.isFinite(o.threshold)) throw new UsageError(`Expected finite number for threshold but received ${String(o.threshold)}`);
  for (const [name, v] of [['minTissue', o.minTissue], ['maxOutOfFocus', o.maxOutOfFocus]] as const) {
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) throw new UsageError(`Expected number between 0 and 1 for ${name} but received ${String(v)}`);
  }
  if (o.kernel !== undefined) expectOneOf(o.kernel, 'kernel', kernelNames);
  if (o.backend !== undefined) expectOneOf(o.backend, 'backend', ['auto', ...BACKEND_NAMES] as const);
  if (o.fusedSweep !== undefined && typeof o.fusedSweep !== 'boolean') throw new UsageError(`Expected boolean for fusedSweep but received ${String(o.fusedSweep)}`);
}

/** Tissue mask from the smallest level at least 512 px on its long side, shrunk to <= 1024 px. */
async function tissueOf(source: SlideSource): Promise<TissueMask & { level0PerMaskPixel: number; thumbnail: Uint8Array }> {
  let level = 0;
  for (let i = 0; i < source.levels.length; i++) if (Math.max(source.levels[i]!.width, source.levels[i]!.height) >= 512) level = i;
  const L = source.levels[level]!;
  // A level too large to hold (no pyramid) is read at 1/2 .. 1/8 in the JPEG decoder where the direct
  // reader can (the smallest such decode still as large as the mask), else in bands, averaged down as
  // it streams.
  const tooLarge = (l: { width: number; height: number }) => l.width * l.height > STREAMED_MASK_PIXELS;
  const scaled = source.scaledLevels
    .filter((s) => s.level === level && !tooLarge(s) && Math.max(s.width, s.height) >= MASK_SIDE)
    .sort((a, b) => a.width - b.width)[0];
  const { width, height, pixels } = !tooLarge(L) ? await wholeLevelMaskImage(source, level)
    : scaled ? await wholeLevelMaskImage(source, scaled.index)
    : await streamedMaskImage(source, level);
  const mask = detectTissue(pixels, width, height);
  return { ...mask, level0PerMaskPixel: source.levels[0]!.width / width, thumbnail: pixels };
}

function percentile(sorted: Float32Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = (sorted.length - 1) * p;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (i - lo);
}

/** scanImage(): the same scan for a single image given as a path or as encoded bytes. */
export async function scanImage(input: string | Uint8Array, options: ScanOptions = {}): Promise<ScanResult> {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) throw new UsageError('Expected a path or a Uint8Array for the image');
  return scanSlide(input, options);
}

export async function scanSlide(input: string | Uint8Array, options: ScanOptions = {}): Promise<ScanResult> {
  validateScanOptions(options);
  const modelFile = options.model ?? DEFAULT_MODEL_PATH;
  // Before anything is opened: device 'cuda' without a GPU is a usage error.
  let device = resolveDevice(options.device ?? 'auto');
  const path = typeof input === 'string' ? input : 'image buffer';
  const t0 = performance.now();
  const model = await loadModel(modelFile);
  const modelSha256 = createHash('sha256').update(await readFile(modelFile)).digest('hex');
  const resolved = resolveScanOptions(model.header, options);
  const { patchSize, stride, minTissue, threshold, maxOutOfFocus } = resolved;
  const requested = options.backend ?? 'auto';
  const backend: BackendName | undefined = requested === 'auto' ? model.backends.find(backendAvailable) : requested;
  if (!backend || !model.backends.includes(backend)) throw new UsageError(`${modelFile}: ${model.header.architecture} runs on ${model.backends.join(', ')}; backend '${requested}' is not one of them`);
  if (!backendAvailable(backend)) throw new UsageError(`backend ${backend}: onnxruntime-node is not installed (npm install onnxruntime-node), or its binary does not load here`);
  if (backend !== 'native') {
    // The GPU path is the native sweep's; the other backends score on the CPU in the pool.
    if (options.device === 'cuda') throw new UsageError(`device cuda: the ${backend} backend scores on the CPU in this build; use --device cpu or auto`);
    device = { device: 'cpu', notice: null, cudaBuild: device.cudaBuild };
  }
  // The GPU is trusted only after it reproduces the CPU reference with this model and geometry.
  device = trustDevice(options.device ?? 'auto', device, () => verifyKernel(model.native!, 'cuda', patchSize, stride));
  // --mpp is refused before the slide is opened; a slide's own resolution once it is.
  if (options.mpp !== undefined) requireUpsamplingWithinBound(path, options.mpp, model.header.micronsPerPixel, 'mpp-option');
  const source = await openSource(input);
  const warnings: string[] = [];
  let pool: Piscina | undefined;
  try {
    if (options.mpp === undefined) requireUpsamplingWithinBound(path, source.mpp, model.header.micronsPerPixel, 'metadata');
    const tOpen = performance.now();
    const tissueMask = await tissueOf(source);
    const tTissue = performance.now();

    const slideMpp = options.mpp ?? source.mpp;
    // The fused path (the direct JPEG-tile reader's levels scored on the CPU by the native kernels:
    // each region decoded and swept in one native pass, no pixels in JS) may also read a level at
    // 1/2, 1/4 or 1/8 in the decode where the working resolution needs that: a 40x slide at 20x.
    const fusable = options.fusedSweep !== false && backend === 'native' && device.device === 'cpu' && model.native !== undefined && source.sweepRegions !== null;
    const choice = chooseLevel(source.levels, slideMpp, model.header.micronsPerPixel, fusable ? source.scaledLevels : []);
    warnings.push(...choice.warnings);
    if (slideMpp === null && model.header.micronsPerPixel === null) warnings.push('no resolution (mpp) known for the slide or the model: scanned at level 0');
    const level0 = source.levels[0]!;
    const workW = Math.floor(level0.width / choice.level0PerWorking);
    const workH = Math.floor(level0.height / choice.level0PerWorking);
    if (workW < patchSize || workH < patchSize) {
      throw new TooSmallError(`${path}: ${workW}x${workH} working pixels is smaller than one ${patchSize} px patch: nothing to score`);
    }
    const columns = Math.floor((workW - patchSize) / stride) + 1;
    const rows = Math.floor((workH - patchSize) / stride) + 1;
    const tissue = patchTissueFractions(tissueMask, tissueMask.level0PerMaskPixel / choice.level0PerWorking, { columns, rows, patchSize, stride });
    const scores = new Float32Array(columns * rows).fill(Number.NaN);
    const cores = Math.max(1, os.availableParallelism());
    // Each worker holds a region's pixels and scores; more workers than cores is only memory.
    const workers = Math.min(options.workers ?? cores, cores);
    if (options.workers !== undefined && options.workers > cores) warnings.push(`workers ${options.workers} capped at the ${cores} cores`);
    // Regions of whole patches, ~2048 px square, row by row: the rows and columns they share with
    // their neighbours are still in the direct reader's tile cache when the neighbour is read, so
    // each JPEG tile is decoded once; regions without tissue are never read.
    const regions: GridRegion[] = planRegions(columns, rows, patchSize, stride).filter((r) => {
      for (let row = r.row0; row < r.row1; row++) for (let col = r.col0; col < r.col1; col++) if (tissue[row * columns + col]! >= minTissue) return true;
      return false;
    });

    const skipOf = (r: GridRegion) => {
      const cols = r.col1 - r.col0;
      const skip = new Uint8Array(cols * (r.row1 - r.row0));
      for (let row = r.row0; row < r.row1; row++) for (let col = r.col0; col < r.col1; col++) skip[(row - r.row0) * cols + (col - r.col0)] = tissue[row * columns + col]! >= minTissue ? 0 : 1;
      return skip;
    };
    const store = (r: GridRegion, regionScores: Float32Array, skip: Uint8Array) => {
      const cols = r.col1 - r.col0;
      expectFiniteScores(regionScores, skip, cols, `${path} (region at ${r.x}, ${r.y} working px) scored with ${modelFile}`);
      for (let row = r.row0; row < r.row1; row++) for (let col = r.col0; col < r.col1; col++) scores[row * columns + col] = regionScores[(row - r.row0) * cols + (col - r.col0)]!;
    };
    const cancelled = () => new FqaError(`${path}: scan cancelled`, 130, { cause: options.signal?.reason });
    let kernel = 'none';
    const fused = fusable && (choice.scaled !== null || (choice.resample === 1 && source.directLevels.includes(choice.level)));
    if (fused) {
      kernel = await sweepFused({
        source, model: model.native!, level: choice.scaled?.index ?? choice.level, regions, skipOf, store, threads: workers, patchSize, stride,
        level0PerWorking: choice.level0PerWorking, kernel: options.kernel ?? 'auto', signal: options.signal, onProgress: options.onProgress, cancelled,
      });
    } else {
      pool = new Piscina({
        filename: new URL('./worker.js', import.meta.url).href,
        maxThreads: workers,
        minThreads: Math.min(workers, regions.length),
        idleTimeout: 2000,
        maxQueue: workers * 4,
      });
      let done = 0;
      const inFlight = new Set<Promise<void>>();
      const scoreOne = async (r: GridRegion) => {
        const levelW = Math.ceil(r.width * choice.resample);
        const levelH = Math.ceil(r.height * choice.resample);
        let pixels = await source.readRegion(choice.level, Math.round(r.x * choice.level0PerWorking), Math.round(r.y * choice.level0PerWorking), levelW, levelH);
        if (choice.resample !== 1) {
          const out = await sharp(pixels, { raw: { width: levelW, height: levelH, channels: 3 } }).resize(r.width, r.height, { kernel: 'lanczos3', fit: 'fill' }).raw().toBuffer();
          pixels = new Uint8Array(out.buffer, out.byteOffset, out.length);
        }
        const skip = skipOf(r);
        const task: RegionTask = { modelPath: modelFile, pixels, width: r.width, height: r.height, patchSize, stride, skip, kernel: device.device === 'cuda' ? 'cuda' : (options.kernel ?? 'auto'), backend };
        const result = (await pool!.run(task, { transferList: [pixels.buffer as ArrayBuffer] })) as { scores: Float32Array; kernel: string };
        kernel = result.kernel;
        store(r, result.scores, skip);
        done++;
        options.onProgress?.({ regionsDone: done, regions: regions.length });
      };
      try {
        for (const r of regions) {
          // Cancellation is checked between regions: a running native sweep cannot be interrupted.
          if (options.signal?.aborted) throw cancelled();
          const p: Promise<void> = scoreOne(r).finally(() => inFlight.delete(p));
          inFlight.add(p);
          if (inFlight.size >= workers * 2) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
      } catch (err) {
        // Regions already in a worker finish first: destroying the pool while a worker is inside
        // the native sweep terminates that worker mid-call, which aborts the whole process.
        await Promise.allSettled(inFlight);
        throw err;
      }
    }
    const tScore = performance.now();

    // Summary over scored patches; "out of focus" is weighted by each patch's tissue.
    const scored: number[] = [];
    let tissueWeight = 0;
    let blurWeight = 0;
    scores.forEach((s, i) => {
      if (Number.isNaN(s)) return;
      scored.push(s);
      tissueWeight += tissue[i]!;
      if (threshold !== null && s > threshold) blurWeight += tissue[i]!;
    });
    const sorted = Float32Array.from(scored).sort();
    const outOfFocusFraction = threshold === null || tissueWeight === 0 ? null : blurWeight / tissueWeight;
    const background = checkBackground(tissueMask.thumbnail, tissueMask.width, tissueMask.height);
    // A dark background is named first: there the brightfield tissue detector finds "no tissue".
    const blocker = scored.length === 0 && !background.darkBackground
      ? 'no tissue found: nothing was scored'
      : verdictBlocker({ darkBackground: background.darkBackground, patchesScored: scored.length, threshold, resolutionKnown: slideMpp !== null || model.header.micronsPerPixel === null });
    const summary: ScanSummary = {
      tissueFraction: tissueMask.fraction,
      penFraction: tissueMask.penFraction,
      patchesScored: scored.length,
      outOfFocusFraction,
      mean: scored.length ? scored.reduce((a, b) => a + b, 0) / scored.length : Number.NaN,
      p10: percentile(sorted, 0.1),
      p90: percentile(sorted, 0.9),
      threshold,
      verdict: scored.length === 0 && !background.darkBackground ? 'no-tissue' : blocker !== null || outOfFocusFraction === null ? 'unknown' : outOfFocusFraction > maxOutOfFocus ? 'fail' : 'pass',
      verdictReason: blocker,
    };
    if (blocker !== null) warnings.push(scored.length === 0 || threshold === null ? blocker : `no verdict: ${blocker}`);
    const pen = penWarning(tissueMask.penFraction);
    if (pen !== null) warnings.push(pen);
    const end = performance.now();
    return {
      file: path,
      vendor: source.vendor,
      width: level0.width,
      height: level0.height,
      level: choice.level,
      slideMpp,
      mpp: choice.mpp,
      level0PerWorkingPixel: choice.level0PerWorking,
      patchSize,
      stride,
      columns,
      rows,
      scores,
      tissue,
      tissueMask,
      summary,
      timings: { openSeconds: (tOpen - t0) / 1000, tissueSeconds: (tTissue - tOpen) / 1000, scoreSeconds: (tScore - tTissue) / 1000, totalSeconds: (end - t0) / 1000 },
      kernel,
      device: device.device,
      // A CPU-only build falling back is the expected case, not worth a notice.
      deviceNotice: device.cudaBuild ? device.notice : null,
      model: { name: model.header.name, scoreScale: model.header.score.scale, file: modelFile, sha256: modelSha256 },
      options: resolved,
      reader: { ...source.readerStats(), decodeScale: choice.scaled?.denom ?? 1 },
      pipeline: fused ? 'fused' : 'pool',
      warnings,
    };
  } finally {
    source.close();
    await pool?.destroy();
  }
}

/**
 * The fused path: every region decoded and swept natively on `threads` threads (regions in order,
 * so the tiles neighbours share are decoded once), scores stored as regions finish. Cancellation
 * stops the native threads between bands; progress is reported for every region, in order.
 */
async function sweepFused(a: {
  source: SlideSource;
  model: NativeModel;
  level: number;
  regions: GridRegion[];
  skipOf: (r: GridRegion) => Uint8Array;
  store: (r: GridRegion, scores: Float32Array, skip: Uint8Array) => void;
  threads: number;
  patchSize: number;
  stride: number;
  level0PerWorking: number;
  kernel: KernelName;
  signal: AbortSignal | undefined;
  onProgress: ScanOptions['onProgress'];
  cancelled: () => FqaError;
}): Promise<string> {
  if (a.signal?.aborted) throw a.cancelled();
  const geometry = new Float64Array(a.regions.length * 4);
  const skips = a.regions.map((r, i) => {
    geometry.set([Math.round(r.x * a.level0PerWorking), Math.round(r.y * a.level0PerWorking), r.col1 - r.col0, r.row1 - r.row0], 4 * i);
    return a.skipOf(r);
  });
  const skip = new Uint8Array(skips.reduce((n, s) => n + s.length, 0));
  skips.reduce((offset, s) => (skip.set(s, offset), offset + s.length), 0);
  let reported = 0;
  let callbackError: unknown;
  const report = (done: number) => {
    while (reported < done) {
      reported++;
      a.onProgress?.({ regionsDone: reported, regions: a.regions.length });
    }
  };
  const run = a.source.sweepRegions!(a.model, a.level, geometry, skip, { patchSize: a.patchSize, stride: a.stride, threads: a.threads, kernel: a.kernel, shareConvolution: true }, (done) => {
    try {
      report(done);
    } catch (err) {
      // The caller's callback threw: the scan stops and rejects with that error, as on the pool path.
      callbackError ??= err;
      run.cancel();
    }
  });
  const onAbort = () => run.cancel();
  a.signal?.addEventListener('abort', onAbort, { once: true });
  let result;
  try {
    result = await run.promise;
  } catch (err) {
    if (callbackError !== undefined) throw callbackError;
    if (a.signal?.aborted) throw a.cancelled();
    throw err;
  } finally {
    a.signal?.removeEventListener('abort', onAbort);
  }
  let offset = 0;
  a.regions.forEach((r, i) => {
    a.store(r, result.scores.subarray(offset, offset + skips[i]!.length), skips[i]!);
    offset += skips[i]!.length;
  });
  report(a.regions.length);
  return result.kernel;
}
