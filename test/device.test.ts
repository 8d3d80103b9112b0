// Device selection: 'auto' runs on CUDA when this build has it and a GPU answers, else on the CPU
// with a notice; 'cuda' without a GPU is a clear error; the result records where it ran. On a
// machine with a GPU the same tests check that CUDA scores match the CPU's.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { gpuInfo, sweepSync } from '@fqa/native';
import { DEFAULT_MODEL_PATH, FqaError, UsageError, cpuInfo, decodeImage, loadModel, nvidiaDriverPresent, resolveDevice, scanSlide, scoreImage, trustDevice, verifyKernel } from '@fqa/core';
import { hasShared, repoRoot, shared, tcgaImages } from './helpers/shared.js';

const gpu = gpuInfo();
const hasGpu = gpu.compiled && gpu.deviceCount > 0;
const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const fqa = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });

test('resolveDevice: cpu is the CPU, auto picks CUDA only with a usable GPU, cuda without one is a usage error', () => {
  expect(resolveDevice('cpu')).toMatchObject({ device: 'cpu', notice: null });
  const auto = resolveDevice('auto');
  expect(auto.device).toBe(hasGpu ? 'cuda' : 'cpu');
  expect(auto.cudaBuild).toBe(gpu.compiled);
  if (!hasGpu) {
    // A driver that is there but does not answer is news; no NVIDIA driver at all is the ordinary CPU machine.
    if (gpu.compiled) expect(resolveDevice('auto', () => true).notice).toMatch(/device auto: running on the CPU \(.+\)/);
    else expect(resolveDevice('auto', () => true).notice).toBeNull(); // a CPU-only build has nothing to explain
    expect(resolveDevice('auto', () => false).notice).toBeNull();
    expect(() => resolveDevice('cuda')).toThrow(UsageError);
    expect(() => resolveDevice('cuda')).toThrow(/no usable CUDA GPU/);
  }
  expect(() => resolveDevice('tpu' as never)).toThrow(/Expected one of auto, cuda, cpu for device/);
});

const sweepPixels = Uint8Array.from({ length: 600 * 600 * 3 }, (_, i) => (i * 2654435761) >>> 24);
const sweepOptions = { width: 600, height: 600, rowStride: 1800, patchWidth: 235, patchHeight: 235, stride: 115, threads: 1, shareConvolution: true } as const;

test.skipIf(!hasShared)('a score on a machine without an NVIDIA driver prints no device note (it did on every nightly run)', () => {
  const r = fqa('score', shared('data', 'tcga-focus', tcgaImages['tcga-in-focus']), '--mpp', '0.5');
  expect(r.status, r.stderr).toBe(0);
  if (!nvidiaDriverPresent()) expect(r.stderr).not.toMatch(/note:/);
  else if (!hasGpu) expect(r.stderr).toMatch(/note: device auto: running on the CPU/);
});

test.skipIf(hasGpu)("without a GPU the native sweep with kernel 'cuda' says why it cannot", async () => {
  const model = await loadModel(DEFAULT_MODEL_PATH);
  expect(() => sweepSync(model.native!, sweepPixels, { ...sweepOptions, kernel: 'cuda' })).toThrow(/kernel cuda: no usable CUDA device \(.+\)/);
});

test.skipIf(!hasGpu)("with a GPU the native sweep with kernel 'cuda' matches the reference, NaN for NaN", async () => {
  const model = await loadModel(DEFAULT_MODEL_PATH);
  // Every third patch skipped: the skipped patches must be NaN on both, and only those.
  const skip = Uint8Array.from({ length: 4 * 4 }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const cpu = sweepSync(model.native!, sweepPixels, { ...sweepOptions, skip, kernel: 'reference' });
  const cuda = sweepSync(model.native!, sweepPixels, { ...sweepOptions, skip, kernel: 'cuda' });
  expect(cuda.kernel).toBe('cuda');
  expect(Array.from(cuda.scores, Number.isNaN)).toEqual(Array.from(cpu.scores, Number.isNaN));
  expect(Array.from(cpu.scores, Number.isNaN)).toEqual(Array.from(skip, Boolean));
  cpu.scores.forEach((s, i) => Number.isNaN(s) || expect(Math.abs(cuda.scores[i]! - s)).toBeLessThan(1e-3 + 1e-4 * Math.abs(s)));
});

test('verifyKernel: the best CPU kernel agrees with the reference; the GPU is trusted only if it does too', async () => {
  const model = await loadModel(DEFAULT_MODEL_PATH);
  const cpu = verifyKernel(model.native!, cpuInfo().best, 235, 128);
  expect(cpu).toMatchObject({ ok: true, reason: null });
  expect(cpu.maxError!).toBeLessThan(1e-4);
  const cuda = verifyKernel(model.native!, 'cuda', 235, 128);
  if (hasGpu) expect(cuda, cuda.reason ?? '').toMatchObject({ ok: true });
  else expect(cuda).toMatchObject({ ok: false, maxError: null, reason: expect.stringMatching(/no usable CUDA device/) });
});

test('a faulty kernel is caught by verifyKernel; a scan then falls back (auto) or stops (cuda)', async () => {
  const model = await loadModel(DEFAULT_MODEL_PATH);
  const best = cpuInfo().best;
  // The real sweep with one fault injected into the kernel under test: the second patch's score is
  // off by 0.01 (relative to 1 + |score|: 10x the tolerance), or NaN.
  const faulty = (fault: (s: number) => number): typeof sweepSync => (m, pixels, options) => {
    const result = sweepSync(m, pixels, options);
    const scores = Float32Array.from(result.scores);
    scores[1] = fault(scores[1]!);
    return { ...result, scores };
  };
  const off = verifyKernel(model.native!, best, 235, 128, faulty((s) => s + 0.01 * (1 + Math.abs(s))));
  expect(off).toMatchObject({ ok: false, reason: expect.stringMatching(new RegExp(`${best} scores differ from the CPU reference by 1\\.0\\de-2`)) });
  const nan = verifyKernel(model.native!, best, 235, 128, faulty(() => Number.NaN));
  expect(nan).toMatchObject({ ok: false, reason: expect.stringMatching(/differ from the CPU reference by NaN/) });
  expect(verifyKernel(model.native!, best, 235, 128, faulty((s) => s + 1e-5))).toMatchObject({ ok: true });
  // What a scan does with the result (scanSlide calls trustDevice with the GPU's check).
  const gpu = { device: 'cuda' as const, notice: null, cudaBuild: true };
  const check = () => verifyKernel(model.native!, best, 235, 128, faulty((s) => s + 1));
  expect(trustDevice('auto', gpu, check)).toMatchObject({ device: 'cpu', notice: expect.stringMatching(/^device auto: running on the CPU because the GPU check failed: .* differ from the CPU reference/) });
  expect(() => trustDevice('cuda', gpu, check)).toThrow(FqaError);
  expect(() => trustDevice('cuda', gpu, check)).toThrow(/^device cuda: not scanning on the GPU: /);
  expect(trustDevice('auto', gpu, () => verifyKernel(model.native!, best, 235, 128))).toBe(gpu);
});

describe.skipIf(!hasShared)('scans record the device', () => {
  const slide = hasShared ? shared('data', 'tcga-focus', tcgaImages['tcga-out-of-focus']) : '';

  test('scanSlide with device auto runs and says where; device cuda without a GPU rejects before reading', async () => {
    const auto = await scanSlide(slide, { model: DEFAULT_MODEL_PATH, device: 'auto', mpp: 0.5, workers: 1 });
    expect(auto.device).toBe(hasGpu ? 'cuda' : 'cpu');
    expect(auto.summary.patchesScored).toBeGreaterThan(0);
    // Why it fell back is a fact about the machine: in deviceNotice (said once per run), never in the slide's warnings.
    if (gpu.compiled && !hasGpu && nvidiaDriverPresent()) expect(auto.deviceNotice).toMatch(/device auto: running on the CPU/);
    if (!nvidiaDriverPresent()) expect(auto.deviceNotice).toBeNull();
    expect(auto.warnings.join('\n')).not.toMatch(/device auto/);
    const cpu = await scanSlide(slide, { model: DEFAULT_MODEL_PATH, device: 'cpu', mpp: 0.5, workers: 1 });
    expect(cpu.device).toBe('cpu');
    if (!hasGpu) await expect(scanSlide(slide, { model: DEFAULT_MODEL_PATH, device: 'cuda' })).rejects.toThrow(/no usable CUDA GPU/);
    else {
      // The same patches scored (NaN = background on both), and the same scores.
      expect(Array.from(auto.scores, Number.isNaN)).toEqual(Array.from(cpu.scores, Number.isNaN));
      auto.scores.forEach((s, i) => Number.isNaN(s) || expect(Math.abs(s - cpu.scores[i]!)).toBeLessThan(1e-3 + 1e-4 * Math.abs(s)));
    }
  });

  test('fqa-scan --device: cuda without a GPU is exit 2 with one line; bad names are usage errors', async () => {
    const image = await decodeImage(slide);
    expect(image.width).toBeGreaterThan(0);
    const score = await scoreImage(slide, { model: DEFAULT_MODEL_PATH, device: 'cpu' });
    expect(score.kernel).not.toBe('cuda');
    const bad = fqa('score', slide, '--device', 'tpu');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/Expected one of auto, cuda, cpu for device/);
    if (!hasGpu) {
      for (const args of [['score', slide, '--device', 'cuda'], [slide, '--out', path.join(repoRoot, 'fqa-report', 'device-test'), '--device', 'cuda']]) {
        const r = fqa(...args);
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/device cuda: no usable CUDA GPU/);
      }
    }
  });
});
