/**
 * Where sweeps run: 'cpu', 'cuda' (GPU 0; an error when there is none) or 'auto' (CUDA when this
 * build has it and a GPU answers, otherwise the CPU with a one-line notice saying why).
 */
import { existsSync } from 'node:fs';
import { gpuInfo, sweepSync, type KernelName, type NativeModel } from '@fqa/native';
import { seededRandom } from './train/random.js';
import { FqaError, UsageError } from './errors.js';
import { expectOneOf } from './validate.js';

export type Device = 'auto' | 'cuda' | 'cpu';
export const deviceNames: readonly Device[] = ['auto', 'cuda', 'cpu'];

export interface ResolvedDevice {
  device: 'cuda' | 'cpu';
  /** Why 'auto' fell back to the CPU; null when it did not. */
  notice: string | null;
  /** Whether this build of the addon has CUDA support at all (a CPU-only build falls back silently in the CLI). */
  cudaBuild: boolean;
}

/**
 * Whether this machine has an NVIDIA driver loaded at all. A CUDA build on a machine without one is
 * the ordinary CPU case, not news: 'auto' then falls back silently (fqa-scan info still says why),
 * instead of printing the same driver note on every nightly run.
 */
export function nvidiaDriverPresent(): boolean {
  return existsSync('/proc/driver/nvidia') || existsSync('/dev/nvidiactl');
}

export function resolveDevice(requested: Device | undefined = 'auto', driverPresent: () => boolean = nvidiaDriverPresent): ResolvedDevice {
  const device = expectOneOf(requested, 'device', deviceNames);
  if (device === 'cpu') return { device: 'cpu', notice: null, cudaBuild: gpuInfo().compiled };
  const gpu = gpuInfo();
  const usable = gpu.compiled && gpu.deviceCount > 0;
  if (device === 'cuda') {
    if (!usable) throw new UsageError(`device cuda: no usable CUDA GPU (${gpu.error}); use device auto or cpu`);
    return { device: 'cuda', notice: null, cudaBuild: true };
  }
  return usable
    ? { device: 'cuda', notice: null, cudaBuild: true }
    : { device: 'cpu', notice: gpu.compiled && driverPresent() ? `device auto: running on the CPU (${gpu.error})` : null, cudaBuild: gpu.compiled };
}

export interface KernelCheck {
  ok: boolean;
  /** Largest |kernel - reference| relative to 1 + |reference|, when both ran. */
  maxError: number | null;
  /** Why the kernel is not trusted, or null. */
  reason: string | null;
}

/**
 * Runs `kernel` and the scalar reference on the same two overlapping patches of a seeded
 * tissue-like region with this model and geometry, and compares (tolerance 1e-3 relative). A scan
 * does this once before it trusts the GPU, so a faulty GPU path or driver can never produce a
 * report silently.
 */
export function verifyKernel(model: NativeModel, kernel: KernelName | 'cuda', patchSize: number, stride: number, run: typeof sweepSync = sweepSync): KernelCheck {
  const width = patchSize + stride;
  const height = patchSize;
  const random = seededRandom(17);
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        const smooth = 150 + 60 * Math.sin(x * 0.09 + c) * Math.cos(y * 0.07);
        pixels[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(smooth + 40 * (random() - 0.5))));
      }
  const options = { width, height, rowStride: width * 3, patchWidth: patchSize, patchHeight: patchSize, stride, threads: 1, shareConvolution: true };
  try {
    // `run` is the native sweep; tests pass one with a fault injected into the kernel under test.
    const reference = sweepSync(model, pixels, { ...options, kernel: 'reference' }).scores;
    const got = run(model, pixels, { ...options, kernel }).scores;
    let maxError = 0;
    reference.forEach((r, i) => (maxError = Math.max(maxError, Math.abs(got[i]! - r) / (1 + Math.abs(r)))));
    if (!(maxError <= 1e-3)) return { ok: false, maxError, reason: `${kernel} scores differ from the CPU reference by ${maxError.toExponential(2)} (relative)` };
    return { ok: true, maxError, reason: null };
  } catch (err) {
    return { ok: false, maxError: null, reason: (err as Error).message };
  }
}

/**
 * The device a scan runs on: a resolved GPU is trusted only when `check` (verifyKernel with the
 * scan's model and geometry) passes; otherwise auto falls back to the CPU with a notice and an
 * explicit 'cuda' stops with an error, so a faulty GPU path never writes a report.
 */
export function trustDevice(requested: Device, resolved: ResolvedDevice, check: () => KernelCheck): ResolvedDevice {
  if (resolved.device !== 'cuda') return resolved;
  const result = check();
  if (result.ok) return resolved;
  if (requested === 'cuda') throw new FqaError(`device cuda: not scanning on the GPU: ${result.reason}`, 1);
  return { device: 'cpu', notice: `device auto: running on the CPU because the GPU check failed: ${result.reason}`, cudaBuild: true };
}
