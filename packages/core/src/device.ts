/**
 * Where sweeps run: 'cpu', 'cuda' (GPU 0; an error when there is none) or 'auto' (CUDA when this
 * build has it and a GPU answers, otherwise the CPU with a one-line notice saying why).
 */
import { gpuInfo } from '@fqa/native';
import { UsageError } from './errors.js';
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

export function resolveDevice(requested: Device | undefined = 'auto'): ResolvedDevice {
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
    : { device: 'cpu', notice: `device auto: running on the CPU (${gpu.error})`, cudaBuild: gpu.compiled };
}
