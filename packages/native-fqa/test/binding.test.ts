// The binding never trusts its inputs: bad calls are TypeError/RangeError naming the argument.
import { describe, expect, test } from 'vitest';
import { createNativeModel, sweep, sweepSync, cpuInfo, gpuInfo, type FocusLiteNNSpec, type SweepOptions } from '../dist/index.js';

function spec(k = 2): FocusLiteNNSpec {
  const n = k * 3 * 49;
  return {
    architecture: 'focuslitenn',
    patchSize: 64,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    kernels: k,
    convKernel: 7,
    convStride: 1,
    convPad: 0,
    convWeight: Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1),
    convBias: Float32Array.from({ length: k }, (_, i) => i * 0.01),
    fcWeight: Float32Array.from({ length: k }, (_, i) => 1 - i * 0.3),
    fcBias: 0.5,
  };
}

const W = 200;
const H = 150;
const pixels = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 7919) % 251);
const base: SweepOptions = { width: W, height: H, rowStride: W * 3, patchWidth: 64, patchHeight: 64, stride: 32, threads: 2, kernel: 'auto', shareConvolution: true };

describe('native binding', () => {
  const model = createNativeModel(spec());

  test('async and sync sweeps agree with the reference kernel', async () => {
    const ref = sweepSync(model, pixels, { ...base, kernel: 'reference' });
    const fast = await sweep(model, pixels, base);
    const sync = sweepSync(model, pixels, { ...base, threads: 1 });
    expect(fast.columns).toBe(Math.floor((W - 64) / 32) + 1);
    expect(fast.rows).toBe(Math.floor((H - 64) / 32) + 1);
    expect(fast.sharedConvolution).toBe(true);
    for (let i = 0; i < ref.scores.length; i++) {
      expect(Math.abs(fast.scores[i]! - ref.scores[i]!)).toBeLessThan(2e-4);
      expect(sync.scores[i]).toBe(fast.scores[i]);
    }
  });

  test('skip mask gives NaN for skipped patches only', async () => {
    const count = 5 * 3;
    const skip = Uint8Array.from({ length: count }, (_, i) => (i % 4 === 0 ? 1 : 0));
    const r = await sweep(model, pixels, { ...base, skip });
    r.scores.forEach((s, i) => expect(Number.isNaN(s)).toBe(skip[i] === 1));
  });

  test.each([
    ['buffer too short', { ...base, height: H + 1 }, RangeError, /region buffer holds/],
    ['zero width', { ...base, width: 0 }, RangeError, /width/],
    ['stride 0', { ...base, stride: 0 }, RangeError, /stride/],
    ['patch larger than region', { ...base, patchWidth: 300 }, RangeError, /larger than the region/],
    ['row stride too small', { ...base, rowStride: 10 }, RangeError, /rowStride/],
    // (height - 1) x rowStride wraps int64 to a negative byte count: it passed the buffer check and segfaulted.
    ['size arithmetic that overflows int64', { ...base, height: 2 ** 24 + 1, rowStride: 2 ** 39 }, RangeError, /overflows a 64-bit byte count/],
    ['non-integer size', { ...base, width: 10.5 }, RangeError, /width/],
    ['string kernel name unknown', { ...base, kernel: 'sse9' as never }, TypeError, /kernel/],
    ['skip of the wrong length', { ...base, skip: new Uint8Array(3) }, RangeError, /skip/],
    ['patch smaller than the conv kernel', { ...base, patchWidth: 5, patchHeight: 5 }, RangeError, /smaller than the 7x7/],
  ])('%s throws synchronously', (_name, options, ErrorClass, message) => {
    expect(() => sweep(model, pixels, options as SweepOptions)).toThrow(ErrorClass);
    expect(() => sweepSync(model, pixels, options as SweepOptions)).toThrow(message);
  });

  test('wrong argument types are TypeErrors', () => {
    expect(() => sweepSync({} as never, pixels, base)).toThrow(/NativeModel/);
    expect(() => sweepSync(model, new Float32Array(10) as never, base)).toThrow(TypeError);
    expect(() => sweepSync(model, pixels, { ...base, width: '200' as never })).toThrow(/number for width/);
  });

  test('an unsupported ISA is an error, not a crash', () => {
    const info = cpuInfo();
    for (const k of ['baseline', 'avx2', 'avx512'] as const) {
      if (info.supported.includes(k)) expect(sweepSync(model, pixels, { ...base, kernel: k }).kernel).toBe(k);
      else expect(() => sweepSync(model, pixels, { ...base, kernel: k })).toThrow(/not supported by this CPU/);
    }
  });

  test('model specs are validated natively', () => {
    const bad = spec();
    bad.convWeight[5] = Number.NaN;
    expect(() => createNativeModel(bad)).toThrow(/Non-finite/);
    expect(() => createNativeModel({ ...spec(), convWeight: new Float32Array(3) })).toThrow(/values for conv.weight/);
    expect(() => createNativeModel({ ...spec(), architecture: 'resnet' as never })).toThrow(/architecture/);
    expect(() => createNativeModel({ ...spec(), convPad: 7 })).toThrow(/pad/);
  });

  test('gpu probe reports a status without throwing', () => {
    const gpu = gpuInfo();
    expect(typeof gpu.compiled).toBe('boolean');
    if (gpu.deviceCount === 0) expect(gpu.error.length).toBeGreaterThan(0);
  });
});
