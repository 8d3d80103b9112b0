/**
 * @fqa/native: the typed face of the C++ addon. Loads the binary (a local build first, then a
 * prebuilt platform package) and wraps its few functions. Option defaults and user-facing
 * validation live in @fqa/core; this layer only guarantees types.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const version: string = (require(path.join(packageRoot, 'package.json')) as { version: string }).version;

/** Which kernel a sweep runs: the best the CPU supports, the scalar reference, or a named ISA. */
export type KernelName = 'auto' | 'reference' | 'baseline' | 'avx2' | 'avx512';
export const kernelNames: readonly KernelName[] = ['auto', 'reference', 'baseline', 'avx2', 'avx512'];

export interface FocusLiteNNSpec {
  architecture: 'focuslitenn';
  patchSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  kernels: number;
  convKernel: number;
  convStride: number;
  convPad: number;
  convWeight: Float32Array;
  convBias: Float32Array;
  fcWeight?: Float32Array;
  fcBias?: number;
}

export interface EonssLayerSpec {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  pad: number;
  gdn: boolean;
  maxPool: boolean;
  weight: Float32Array;
  bias: Float32Array;
  gdnGamma?: Float32Array;
  gdnBeta?: Float32Array;
}

export interface EonssSpec {
  architecture: 'eonss';
  patchSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  layers: EonssLayerSpec[];
}

export type NativeModelSpec = FocusLiteNNSpec | EonssSpec;

/** Opaque handle to a validated, finalized model living in native memory. */
export interface NativeModel {
  readonly __nativeModel: unique symbol;
}

export interface SweepOptions {
  width: number;
  height: number;
  /** Bytes between rows, >= 3 * width. */
  rowStride: number;
  patchWidth: number;
  patchHeight: number;
  stride: number;
  /** One byte per patch, row-major; non-zero = not scored (score NaN). */
  skip?: Uint8Array;
  /** 0 = all cores. */
  threads: number;
  /** A CPU kernel, or 'cuda' for GPU 0 (an error when there is none: the caller decides on fallbacks). */
  kernel: KernelName | 'cuda';
  shareConvolution: boolean;
}

export interface SweepResult {
  /** One score per patch, row-major (rows = y). */
  scores: Float32Array;
  rows: number;
  columns: number;
  kernel: Exclude<KernelName, 'auto'> | 'cuda';
  sharedConvolution: boolean;
  threads: number;
  /** CUDA event time of the kernels, when kernel is 'cuda'. */
  gpuKernelMs?: number;
}

export interface CpuInfo {
  best: Exclude<KernelName, 'auto' | 'reference'>;
  supported: Exclude<KernelName, 'auto'>[];
  hardwareThreads: number;
}

export interface GpuInfo {
  compiled: boolean;
  deviceCount: number;
  deviceName: string;
  error: string;
}

export interface SlideLevelInfo {
  width: number;
  height: number;
  downsample: number;
}

export interface SlideInfo {
  /** OpenSlide's vendor name: aperio, hamamatsu, mirax, leica, philips, ventana, generic-tiff, ... */
  vendor: string;
  levels: SlideLevelInfo[];
  properties: Record<string, string>;
  /** Levels the direct JPEG-tile reader serves (libtiff + libjpeg-turbo); the rest go through OpenSlide. */
  directLevels: number[];
  /**
   * Direct levels decoded at 1/2, 1/4 or 1/8 by libjpeg's scaled IDCT (tile sides divisible by
   * `denom`): readRegion and sweepRegions take `index` (after the OpenSlide levels) as their level.
   */
  scaledLevels: ScaledLevelInfo[];
}

export interface ScaledLevelInfo extends SlideLevelInfo {
  /** The level number readRegion and sweepRegions take: levels.length + its position here. */
  index: number;
  /** The OpenSlide level it is decoded from, and the scale: 1/denom (2, 4 or 8). */
  level: number;
  denom: number;
}

export interface RegionSweepOptions {
  patchSize: number;
  stride: number;
  /** Native threads, each scoring whole regions in turn. */
  threads: number;
  kernel: KernelName;
  shareConvolution: boolean;
}

export interface RegionSweepResult {
  /** Every region's scores in turn, each row-major (columns x rows). */
  scores: Float32Array;
  kernel: Exclude<KernelName, 'auto'>;
  threads: number;
  sharedConvolution: boolean;
}

/** Which reader serves a region: the direct JPEG-tile reader where it can ('auto'), or one of them. */
export type SlideReaderName = 'auto' | 'direct' | 'openslide';

/** An open whole-slide image (OpenSlide). Close it when done; pending reads finish first. */
export interface NativeSlide {
  info(): SlideInfo;
  /**
   * RGB u8 (3 * width bytes per row); x, y in level-0 pixels, width and height at `level` (an
   * OpenSlide level, or the index of one of info().scaledLevels: the direct reader only).
   */
  readRegion(level: number, x: number, y: number, width: number, height: number, reader?: SlideReaderName): Promise<Uint8Array>;
  /**
   * Scores regions of a level the direct reader serves (info().directLevels, or a scaled level's
   * index from info().scaledLevels), decoding and sweeping
   * each region in one pass on `threads` native threads: only scores come back. regions: x, y
   * (level-0 pixels), columns, rows per region; skip: one byte per patch of every region in turn
   * (non-zero = background: NaN, never decoded). onProgress gets the count of regions done (not
   * every count: calls coalesce). cancel() stops the sweep between bands; the promise then rejects
   * with "cancelled".
   */
  sweepRegions(model: NativeModel, level: number, regions: Float64Array, skip: Uint8Array, options: RegionSweepOptions, onProgress: (regionsDone: number) => void): { promise: Promise<RegionSweepResult>; cancel(): void };
  /** JPEG tiles the direct reader decoded and reads its tile cache served. */
  readerStats(): { tilesDecoded: number; tileCacheHits: number; tilesRedecoded: number };
  /** Says `level` will be read top to bottom in bands: the direct reader then caches only the tile rows one band shares with the next. */
  readInBands(level: number): void;
  close(): void;
}

export interface TrainForward {
  scores: Float32Array;
  /** Per patch and kernel: conv minimum (before bias) and where it is (row * outWidth + col). */
  mins: Float32Array;
  argmin: Int32Array;
}

export interface TrainGradients {
  conv: Float64Array;
  bias: Float64Array;
  fc: Float64Array;
  fcBias: Float64Array;
}

interface Binding {
  NativeModel: new (spec: NativeModelSpec) => NativeModel;
  sweep(model: NativeModel, pixels: Uint8Array, options: SweepOptions): Promise<SweepResult>;
  sweepSync(model: NativeModel, pixels: Uint8Array, options: SweepOptions): SweepResult;
  cpuInfo(): CpuInfo;
  modelLimits(): ModelLimits;
  gpuInfo(): GpuInfo;
  measureFmaPeak(kernel: KernelName, threads: number, seconds: number): number;
  flopsPerPatch(model: NativeModel, patchWidth: number, patchHeight: number): number;
  openSlide(path: string): Promise<NativeSlide>;
  trainForward(model: NativeModel, patches: Uint8Array, count: number, size: number, threads: number): TrainForward;
  trainBackward(model: NativeModel, patches: Uint8Array, count: number, size: number, mins: Float32Array, argmin: Int32Array, upstream: Float32Array): TrainGradients;
  openslideVersion(): string;
  tileCache(budgetBytes?: number): { budgetBytes: number; cachedBytes: number };
  /** Absent from a build without libjpeg (no direct JPEG-tile reader either). */
  encodeJpegTiles?(band: Uint8Array, rowStride: number, rows: number, columns: number[], quality: number): Promise<Buffer[]>;
  version: string;
  builtWithWerror: boolean;
}

const binaryName = `fqa-v${version}.node`;
/** Prebuilt packages, best first: the CUDA build also runs on the CPU when there is no GPU. */
const platformPackages = [`@fqa/native-${process.platform}-${process.arch}-cuda`, `@fqa/native-${process.platform}-${process.arch}`];
let loadedFrom = '';

/**
 * A local build (build/Release), then the prebuilt platform packages. The file name carries the
 * version, so a stale build or platform package of another version is never loaded.
 */
function loadBinding(): Binding {
  const tried: string[] = [];
  const candidates = [path.join(packageRoot, 'build', 'Release', binaryName), path.join(packageRoot, 'build', binaryName)];
  for (const name of platformPackages) {
    try {
      candidates.push(path.join(path.dirname(require.resolve(`${name}/package.json`)), binaryName));
    } catch {
      tried.push(`${name} (not installed)`);
    }
  }
  for (const file of candidates) {
    if (!existsSync(file)) {
      tried.push(`${file} (not found)`);
      continue;
    }
    try {
      const b = require(file) as Binding;
      loadedFrom = file;
      return b;
    } catch (err) {
      tried.push(`${file} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  throw Object.assign(new Error(
    `fqa: no native binary ${binaryName} for ${process.platform}-${process.arch} could be loaded.\n` +
      `Tried:\n  ${tried.join('\n  ')}\nFixes:\n` +
      `  - install the prebuilt package: npm install ${platformPackages[1]} (or ${platformPackages[0]} for NVIDIA GPUs)\n` +
      `  - or build from source: npm run build -w @fqa/native (needs cmake >= 3.19 and a C++17 compiler; nvcc for CUDA)\n` +
      `  - a binary of another version does not load: reinstall or rebuild after upgrading fqa`,
  ), { code: 'FQA_NATIVE_MISSING' });
}

/** The file the native addon was loaded from (loads it if needed). */
export function nativeBinaryPath(): string {
  native();
  return loadedFrom;
}

let binding: Binding | undefined;
function native(): Binding {
  binding ??= loadBinding();
  return binding;
}

/** Validates a model spec natively (shapes, NaN/Inf, geometry) and keeps it in native memory. */
export function createNativeModel(spec: NativeModelSpec): NativeModel {
  return new (native().NativeModel)(spec);
}

/**
 * Scores every patch of the region on a libuv worker, multithreaded. Bad arguments throw
 * synchronously (TypeError/RangeError); failures during the sweep reject. The JS stack of the
 * caller is kept on native errors.
 */
export function sweep(model: NativeModel, pixels: Uint8Array, options: SweepOptions): Promise<SweepResult> {
  const callSite = new Error();
  // Not async: argument errors must throw here, synchronously; only processing failures reject.
  return native()
    .sweep(model, pixels, options)
    .catch((err: unknown) => {
      if (err instanceof Error && callSite.stack) {
        err.stack = `${err.name}: ${err.message}\n${callSite.stack.split('\n').slice(1).join('\n')}`;
      }
      throw err;
    });
}

/** The same sweep on the calling thread: for worker threads that already are the parallelism. */
export function sweepSync(model: NativeModel, pixels: Uint8Array, options: SweepOptions): SweepResult {
  return native().sweepSync(model, pixels, options);
}

export function cpuInfo(): CpuInfo {
  return native().cpuInfo();
}

/** Inclusive [min, max] ranges of a model spec, as the addon checks them (written once, in model.h). */
export interface ModelLimits {
  patchSize: [number, number];
  focusLiteNNKernels: [number, number];
  focusLiteNNConvKernel: [number, number];
  focusLiteNNConvStride: [number, number];
  eonssLayers: number;
  eonssChannels: [number, number];
  eonssKernel: [number, number];
  eonssStride: [number, number];
}

let limits: ModelLimits | undefined;
export function modelLimits(): ModelLimits {
  limits ??= native().modelLimits();
  return limits;
}

export function gpuInfo(): GpuInfo {
  return native().gpuInfo();
}

/** GFLOP/s of a register-only FMA loop on `threads` threads: the peak benchmarks compare to. */
export function measureFmaPeak(kernel: KernelName, threads: number, seconds: number): number {
  return native().measureFmaPeak(kernel, threads, seconds);
}

export function flopsPerPatch(model: NativeModel, patchWidth: number, patchHeight: number): number {
  return native().flopsPerPatch(model, patchWidth, patchHeight);
}

export function nativeVersion(): string {
  return native().version;
}

/** How the loaded binary was built: with warnings as errors (FQA_WERROR=ON, as CI builds it) or not. */
export function buildInfo(): { werror: boolean } {
  return { werror: native().builtWithWerror };
}

/** Opens a slide with libopenslide (loaded at run time; a clear error says how to install it). */
export function openSlide(path: string): Promise<NativeSlide> {
  return native().openSlide(path);
}

/**
 * The direct JPEG-tile reader's decoded-tile cache, one budget for every slide open in the process
 * (default 768 MiB): sets the budget when given (bytes, >= 1 MiB), returns it and what is held now.
 */
export function tileCache(budgetBytes?: number): { budgetBytes: number; cachedBytes: number } {
  return budgetBytes === undefined ? native().tileCache() : native().tileCache(budgetBytes);
}

/**
 * JPEG files (4:2:0, `quality` 1..100) of tiles cut from one band of `rows` rows of RGB, `rowStride`
 * bytes apart: columns [x0, x1, x0, x1, ...] in pixels, one file per pair, encoded on a libuv thread
 * with libjpeg-turbo. Null when this build has no libjpeg.
 */
export function encodeJpegTiles(band: Uint8Array, rowStride: number, rows: number, columns: number[], quality: number): Promise<Buffer[]> | null {
  const binding = native();
  return binding.encodeJpegTiles ? binding.encodeJpegTiles(band, rowStride, rows, columns, quality) : null;
}

/** The libopenslide version, or throws with install instructions when it is missing. */
export function openslideVersion(): string {
  return native().openslideVersion();
}

/** FocusLiteNN forward on a batch of patches (count x size x size RGB u8), keeping the argmins. */
export function trainForward(model: NativeModel, patches: Uint8Array, count: number, size: number, threads = 0): TrainForward {
  return native().trainForward(model, patches, count, size, threads);
}

/** Gradient of sum(upstream[n] * score[n]) with respect to every FocusLiteNN parameter. */
export function trainBackward(model: NativeModel, patches: Uint8Array, count: number, size: number, forward: TrainForward, upstream: Float32Array): TrainGradients {
  return native().trainBackward(model, patches, count, size, forward.mins, forward.argmin, upstream);
}
