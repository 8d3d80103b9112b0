// The physics behind fqa's synthetic defocus: PSF shape and normalization, the fast convolution
// against its dense reference, light and stain transforms, sensor-noise statistics.
import { describe, expect, test } from 'vitest';
import { SRGB_TO_LINEAR, addSensorNoise, convolveChannel, defocusPsf, jitterStains, linearToSrgb, seededRandom } from '@fqa/core';
import { convolveChannelReference, gaussianBlur, linearToSrgbFast } from '../src/train/optics.js';
import { gaussian } from '../src/train/random.js';

/** Second moment E[dx^2 + dy^2] of a PSF's weights. */
function secondMoment(psf: ReturnType<typeof defocusPsf>): number {
  const size = 2 * psf.half + 1;
  let m = 0;
  psf.weights.forEach((w, i) => { m += w * ((Math.floor(i / size) - psf.half) ** 2 + ((i % size) - psf.half) ** 2); });
  return m;
}

describe('defocus PSF', () => {
  test('non-negative, sums to 1, support = the disk, for any radius and spherical aberration', () => {
    for (const radius of [0, 0.3, 0.5, 1, 1.7, 3, 5.5, 8, 12.4]) {
      for (const spherical of [-0.5, -0.2, 0, 0.3, 0.5]) {
        const psf = defocusPsf({ radius, spherical });
        expect(psf.half).toBe(radius < 0.5 ? 0 : Math.ceil(radius));
        expect(Math.min(...psf.weights)).toBeGreaterThanOrEqual(0);
        expect(psf.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      }
    }
  });

  test('radius <-> level: the second moment of a uniform disk is r^2 / 2 (plus pixel width), and grows with the radius', () => {
    let previous = -1;
    for (const radius of [2, 3, 4, 6, 8, 12]) {
      const m = secondMoment(defocusPsf({ radius }));
      // A disk of radius r has E[rho^2] = r^2 / 2; pixelization along rows adds ~1/12 per covered pixel.
      expect(Math.abs(m - radius * radius / 2) / (radius * radius / 2)).toBeLessThan(0.08);
      expect(m).toBeGreaterThan(previous);
      previous = m;
    }
  });

  test('spherical aberration moves light to the centre (s > 0) or the rim (s < 0)', () => {
    const m = (spherical: number) => secondMoment(defocusPsf({ radius: 6, spherical }));
    expect(m(0.4)).toBeLessThan(m(0));
    expect(m(-0.4)).toBeGreaterThan(m(0));
  });

  test('rejects radii and aberrations outside the model', () => {
    expect(() => defocusPsf({ radius: -1 })).toThrow(RangeError);
    expect(() => defocusPsf({ radius: 3, spherical: 0.8 })).toThrow(RangeError);
    expect(() => defocusPsf({ radius: Number.NaN })).toThrow(RangeError);
  });

  test('the run-length convolution equals the dense reference', () => {
    const random = seededRandom(11);
    const side = 64;
    const out = 40;
    const src = Float32Array.from({ length: side * side * 3 }, random);
    for (const [radius, spherical] of [[0.2, 0], [1.7, 0.3], [5.2, -0.4], [12, 0.1]] as const) {
      const psf = defocusPsf({ radius, spherical });
      const fast = new Float32Array(out * out * 3);
      const ref = new Float32Array(out * out * 3);
      for (let c = 0; c < 3; c++) {
        convolveChannel(src, side, side, c, psf, 12, out, fast);
        convolveChannelReference(src, side, side, c, psf, 12, out, ref);
      }
      let worst = 0;
      for (let i = 0; i < fast.length; i++) worst = Math.max(worst, Math.abs(fast[i]! - ref[i]!));
      expect(worst, `radius ${radius}`).toBeLessThan(1e-5);
    }
    expect(() => convolveChannel(src, side, side, 0, defocusPsf({ radius: 13 }), 12, out, new Float32Array(out * out * 3))).toThrow(/margin/);
  });

  test('a Gaussian blur keeps the mean of a flat image and smooths an edge', () => {
    const w = 32;
    const flat = new Float32Array(w * w * 3).fill(0.4);
    gaussianBlur(flat, w, w, 0.7);
    for (const v of flat) expect(v).toBeCloseTo(0.4, 5);
    const edge = Float32Array.from({ length: w * w * 3 }, (_, i) => ((i / 3) % w >= 16 ? 1 : 0));
    gaussianBlur(edge, w, w, 1);
    const at = (x: number) => edge[(10 * w + x) * 3]!;
    expect(at(15)).toBeGreaterThan(0.05);
    expect(at(16)).toBeLessThan(0.95);
    expect(at(15) + at(16)).toBeCloseTo(1, 3);
  });
});

describe('light and stain', () => {
  test('sRGB <-> linear round trip; the table is within 0.05 of the exact curve', () => {
    for (let v = 0; v < 256; v++) {
      expect(linearToSrgb(SRGB_TO_LINEAR[v]!)).toBeCloseTo(v, 4); // the table is float32
      expect(Math.abs(linearToSrgbFast(SRGB_TO_LINEAR[v]!) - v)).toBeLessThan(0.05);
    }
  });

  test('stain jitter: scale 1 shift 0 is the identity, scale 0 bleaches to white, scale < 1 lowers contrast', () => {
    const random = seededRandom(3);
    const tissue = Float32Array.from({ length: 300 }, () => 0.05 + 0.9 * random());
    const same = Float32Array.from(tissue);
    jitterStains(same, [1, 1, 1], [0, 0, 0]);
    same.forEach((v, i) => expect(v).toBeCloseTo(tissue[i]!, 4));
    const white = Float32Array.from(tissue);
    jitterStains(white, [0, 0, 0], [0, 0, 0]);
    for (const v of white) expect(v).toBeCloseTo(1, 6);
    const pale = Float32Array.from(tissue);
    jitterStains(pale, [0.5, 0.5, 0.5], [0, 0, 0]);
    const spread = (a: Float32Array) => Math.max(...a) - Math.min(...a);
    expect(spread(pale)).toBeLessThan(spread(tissue));
  });
});

describe('sensor noise', () => {
  test('Poisson-Gaussian: mean kept, variance = gain * level + read^2', () => {
    const random = seededRandom(5);
    for (const [level, gain, read] of [[0.2, 0.004, 0.01], [0.7, 0.002, 0.003], [0.5, 0, 0.02]] as const) {
      const n = 200_000;
      const image = new Float32Array(n).fill(level);
      const normals = Float32Array.from({ length: n }, () => gaussian(random));
      addSensorNoise(image, gain, read, normals);
      const mean = image.reduce((a, b) => a + b, 0) / n;
      const variance = image.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
      expect(mean).toBeCloseTo(level, 3);
      expect(Math.abs(variance - (gain * level + read * read)) / (gain * level + read * read)).toBeLessThan(0.03);
    }
    expect(() => addSensorNoise(new Float32Array(10), 0, 0, new Float32Array(5))).toThrow(RangeError);
  });
});
