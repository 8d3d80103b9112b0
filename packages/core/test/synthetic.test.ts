// Synthetic defocus from real tissue: the disk PSF is a normalized, symmetric disk of the right
// area, and both PSFs make patches lose high-frequency energy monotonically with the level.
import { describe, expect, test } from 'vitest';
import { diskKernel, syntheticDefocus } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

test('diskKernel: normalized, symmetric, area close to pi r^2 taps', () => {
  for (const r of [0.6, 1, 2.5, 4]) {
    const { width, height, kernel } = diskKernel(r);
    expect(width).toBe(height);
    expect(kernel.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) expect(kernel[y * width + x]).toBeCloseTo(kernel[x * width + (width - 1 - y)]!, 12); // 90° rotation
    const peak = Math.max(...kernel);
    const area = kernel.reduce((a, b) => a + b / peak, 0);
    expect(Math.abs(area - Math.PI * r * r) / (Math.PI * r * r)).toBeLessThan(r < 1 ? 0.6 : 0.12);
  }
});

describe.skipIf(!hasShared)('defocus series of real tissue', () => {
  test.each(['gaussian', 'disk'] as const)('%s PSF: gradient energy falls with every level', async (psf) => {
    const size = 96;
    const set = await syntheticDefocus({ sources: [shared('data', 'tiles', 'tissue-level0-4302-10273-4814-10785.png')], count: 60, patchSize: size, levels: 5, sigmaPerLevel: 0.6, seed: 3, psf, minTissue: 0.3 });
    const energy = [0, 0, 0, 0, 0];
    const count = [0, 0, 0, 0, 0];
    for (let n = 0; n < set.count; n++) {
      let e = 0;
      for (let y = 0; y < size; y++)
        for (let x = 1; x < size; x++) {
          const i = ((n * size + y) * size + x) * 3 + 1;
          e += (set.patches[i]! - set.patches[i - 3]!) ** 2;
        }
      energy[set.labels[n]!]! += e;
      count[set.labels[n]!]!++;
    }
    const mean = energy.map((e, l) => e / count[l]!);
    for (let l = 1; l < 5; l++) expect(mean[l]!, `level ${l} vs ${l - 1}`).toBeLessThan(mean[l - 1]!);
  });
});
