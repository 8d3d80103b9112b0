// Training passes: the forward matches the sweep's scalar reference, and the analytic gradients
// match central finite differences of the same forward.
import { describe, expect, test } from 'vitest';
import { createNativeModel, sweepSync, trainBackward, trainForward, type FocusLiteNNSpec } from '../dist/index.js';

function rng(seed: number) {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 4294967296;
  };
}

function spec(k: number, variant: 64 | 235, r: () => number): FocusLiteNNSpec {
  return {
    architecture: 'focuslitenn', patchSize: variant, mean: [0.6, 0.5, 0.7], std: [0.2, 0.25, 0.15], kernels: k,
    convKernel: 7, convStride: variant === 235 ? 5 : 1, convPad: variant === 235 ? 1 : 0,
    convWeight: Float32Array.from({ length: k * 147 }, () => (r() - 0.5) * 0.3),
    convBias: Float32Array.from({ length: k }, () => r() - 0.5),
    ...(k > 1 ? { fcWeight: Float32Array.from({ length: k }, () => r() - 0.5), fcBias: 0.2 } : {}),
  };
}

describe.each([[1, 64], [3, 64], [2, 235]] as const)('FocusLiteNN k=%i, %i px', (k, size) => {
  const r = rng(k * 100 + size);
  const count = 6;
  const patches = Uint8Array.from({ length: count * size * size * 3 }, (_, i) => Math.floor(128 + 100 * Math.sin(i * 0.013) * Math.cos(i * 0.0007) + 27 * r()));
  const s = spec(k, size, r);
  const upstream = Float32Array.from({ length: count }, () => r() - 0.5);
  const loss = (sp: FocusLiteNNSpec) => trainForward(createNativeModel(sp), patches, count, size, 2).scores.reduce((a, v, n) => a + v * upstream[n]!, 0);

  test('forward scores equal the sweep reference on the same patches', () => {
    const model = createNativeModel(s);
    const f = trainForward(model, patches, count, size, 2);
    for (let n = 0; n < count; n++) {
      const ref = sweepSync(model, patches.subarray(n * size * size * 3, (n + 1) * size * size * 3), {
        width: size, height: size, rowStride: size * 3, patchWidth: size, patchHeight: size, stride: size, threads: 1, kernel: 'reference', shareConvolution: false,
      });
      expect(Math.abs(f.scores[n]! - ref.scores[0]!)).toBeLessThan(1e-4);
    }
  });

  test('gradients match central finite differences', () => {
    const model = createNativeModel(s);
    const g = trainBackward(model, patches, count, size, trainForward(model, patches, count, size, 2), upstream);
    // The min makes the loss piecewise linear: take the largest step that leaves every argmin in
    // place on both sides, where the central difference is exact up to float rounding.
    const argmins = (sp: FocusLiteNNSpec) => Array.from(trainForward(createNativeModel(sp), patches, count, size, 2).argmin).join();
    const base = argmins(s);
    const probe = (name: 'convWeight' | 'convBias' | 'fcWeight', index: number, analytic: number) => {
      for (const eps of [1e-2, 3e-3, 1e-3, 3e-4]) {
        const plus = { ...s, [name]: Float32Array.from(s[name]!) };
        const minus = { ...s, [name]: Float32Array.from(s[name]!) };
        plus[name]![index]! += eps;
        minus[name]![index]! -= eps;
        if (argmins(plus) !== base || argmins(minus) !== base) continue;
        const numeric = (loss(plus) - loss(minus)) / (2 * eps);
        expect(Math.abs(numeric - analytic), `${name}[${index}] eps ${eps}: numeric ${numeric} analytic ${analytic}`).toBeLessThan(2e-3 + 2e-3 * Math.abs(analytic));
        return;
      }
      throw new Error(`${name}[${index}]: every step moved an argmin`);
    };
    for (const i of [0, 24, 73, 146, k * 147 - 1]) probe('convWeight', i, g.conv[i]!);
    for (let i = 0; i < k; i++) probe('convBias', i, g.bias[i]!);
    if (k > 1) {
      for (let i = 0; i < k; i++) probe('fcWeight', i, g.fc[i]!);
      const plus = loss({ ...s, fcBias: s.fcBias! + 1e-2 });
      const minus = loss({ ...s, fcBias: s.fcBias! - 1e-2 });
      expect(Math.abs((plus - minus) / 2e-2 - g.fcBias[0]!)).toBeLessThan(1e-3);
    }
  });
});

test('bad batches are errors naming the argument', () => {
  const model = createNativeModel(spec(1, 64, rng(1)));
  expect(() => trainForward(model, new Uint8Array(10), 1, 64)).toThrow(/patches holds 10 bytes/);
  expect(() => trainForward(model, new Uint8Array(6 * 6 * 3), 1, 6)).toThrow(/smaller than the convolution/);
});
