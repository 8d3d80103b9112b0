// The binding never trusts its inputs: bad calls are TypeError/RangeError naming the argument.
import { describe, expect, test } from 'vitest';
import {
  createNativeModel, sweep, sweepSync, cpuInfo, gpuInfo, openSlide, tileCache, trainForward, trainBackward, measureFmaPeak, flopsPerPatch,
  type FocusLiteNNSpec, type SweepOptions,
} from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

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
    ['size arithmetic that overflows int64', { ...base, height: 2 ** 24 + 1, rowStride: 2 ** 39 }, RangeError, /region byte count overflows a 64-bit integer/],
    ['every size at its limit', { ...base, width: 2 ** 31, height: 2 ** 31, rowStride: 2 ** 40, patchWidth: 2 ** 31, patchHeight: 2 ** 31, stride: 2 ** 31 }, RangeError, /region byte count overflows/],
    ['a row wider than the row stride allows', { ...base, width: 2 ** 31, rowStride: 2 ** 32 }, RangeError, /rowStride must be at least 3 \* width \(6442450944\)/],
    ['a stride beyond the limit', { ...base, stride: 2 ** 31 + 1 }, RangeError, /stride/],
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

  // Every entry that sizes something from caller numbers, at and past its limits: a RangeError, never
  // a crash, a huge allocation or a silently short buffer (checked arithmetic, src/core/checked.h).
  test('model specs at the limits of their numbers are RangeErrors', () => {
    expect(() => createNativeModel({ ...spec(), patchSize: 2 ** 53 })).toThrow(RangeError);
    expect(() => createNativeModel({ ...spec(), kernels: 2 ** 31 })).toThrow(RangeError);
    expect(() => createNativeModel({ ...spec(), convKernel: 2 ** 31 })).toThrow(RangeError);
  });

  test('training batches of extreme count and size are RangeErrors before anything is allocated', () => {
    const patches = new Uint8Array(3);
    expect(() => trainForward(model, patches, 2 ** 24, 4096)).toThrow(RangeError);
    expect(() => trainForward(model, patches, 2 ** 24, 4096)).toThrow(/patches holds 3 bytes but 16777216 RGB patches of 4096 px need 844424930131968/);
    expect(() => trainForward(model, patches, 2 ** 24 + 1, 1)).toThrow(/count/);
    expect(() => trainForward(model, patches, 1, 4097)).toThrow(/size/);
    const forward = { scores: new Float32Array(1), mins: new Float32Array(2), argmin: new Int32Array(2) };
    expect(() => trainBackward(model, patches, 2 ** 24, 4096, forward, new Float32Array(1))).toThrow(RangeError);
  });

  test('the tile cache budget, the FMA probe and flopsPerPatch bound their numbers', () => {
    expect(() => tileCache(2 ** 41)).toThrow(RangeError);
    expect(() => tileCache(2 ** 19)).toThrow(RangeError);
    expect(() => measureFmaPeak('auto', 1, 1e300)).toThrow(RangeError);
    expect(() => measureFmaPeak('auto', 1, 0)).toThrow(RangeError);
    expect(() => measureFmaPeak('auto', 2 ** 31, 0.01)).toThrow(RangeError);
    expect(Number.isFinite(flopsPerPatch(model, 2 ** 30, 2 ** 30))).toBe(true);
    expect(() => flopsPerPatch(model, 2 ** 30 + 1, 1)).toThrow(RangeError);
  });

  describe.skipIf(!hasShared)('slide entries', () => {
    const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');

    test('readRegion: sizes past 2^28 pixels and positions past 2^40 are RangeErrors', async () => {
      const slide = await openSlide(svs);
      expect(() => slide.readRegion(0, 0, 0, 2 ** 16, 2 ** 16)).toThrow(RangeError);
      expect(() => slide.readRegion(0, 0, 0, 2 ** 16, 2 ** 16)).toThrow(/4294967296 pixels is larger than 2\^28/);
      expect(() => slide.readRegion(0, 2 ** 40 + 1, 0, 1, 1)).toThrow(RangeError);
      expect(() => slide.readRegion(0, 0, 0, 2 ** 16 + 1, 1)).toThrow(RangeError);
      // At the limits, a read far outside the level is white.
      const white = await slide.readRegion(0, 2 ** 40, -(2 ** 40), 2, 2);
      expect([...white]).toEqual(new Array(12).fill(255));
      slide.close();
    });

    test('sweepRegions: regions past 2^16 px and patch counts no skip mask can hold are RangeErrors, before the sweep is queued', async () => {
      const slide = await openSlide(svs);
      const options = { patchSize: 64, stride: 64, threads: 1, kernel: 'auto' as const, shareConvolution: true };
      const noop = () => {};
      // (columns - 1) * stride + patchSize = 2^32: wider than a region may be.
      expect(() => slide.sweepRegions(model, 0, new Float64Array([0, 0, 2 ** 16, 1]), new Uint8Array(2 ** 16), { ...options, stride: 2 ** 16 }, noop)).toThrow(/region 0 of 65536x1 patches is empty or wider than 65536 px/);
      // 3 * 2^32 patches: a skip mask of that length cannot exist, and nothing of that size is allocated.
      const huge = new Float64Array([0, 0, 2 ** 16, 2 ** 16, 0, 0, 2 ** 16, 2 ** 16, 0, 0, 2 ** 16, 2 ** 16]);
      expect(() => slide.sweepRegions(model, 0, huge, new Uint8Array(1), options, noop)).toThrow(RangeError);
      expect(() => slide.sweepRegions(model, 0, huge, new Uint8Array(1), options, noop)).toThrow(/Expected skip to hold 12884901888 entries/);
      expect(() => slide.sweepRegions(model, 0, new Float64Array([2 ** 40 + 1, 0, 1, 1]), new Uint8Array(1), options, noop)).toThrow(RangeError);
      expect(() => slide.sweepRegions(model, 0, new Float64Array([0, 0, 1, 1]), new Uint8Array(1), { ...options, patchSize: 2 ** 16 + 1 }, noop)).toThrow(RangeError);
      slide.close();
    });
  });

  test('gpu probe reports a status without throwing', () => {
    const gpu = gpuInfo();
    expect(typeof gpu.compiled).toBe('boolean');
    if (gpu.deviceCount === 0) expect(gpu.error.length).toBeGreaterThan(0);
  });
});
