// The heatmap scale must read the same for the one reader in twelve (men) with a red-green
// deficiency: every colour below the threshold far from every colour above it, and the two ends
// far apart, under simulated protanopia, deuteranopia and tritanopia.
//
// Oracle: Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of
// color vision deficiency", severity 1.0 matrices, applied to linear sRGB; distances are CIELAB
// ΔE*ab (D65). ΔE 2.3 is a just-noticeable difference; 40 is two clearly different colours.
import { describe, expect, test } from 'vitest';
import { COLOUR_STOPS, scaleColour } from '@fqa/core';

type Rgb = readonly [number, number, number];
type Matrix = readonly [Rgb, Rgb, Rgb];

const VISION: Record<string, Matrix> = {
  normal: [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
  protanopia: [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
  deuteranopia: [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]],
  tritanopia: [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.3039]],
};

const toLinear = (c: number) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);

/** CIELAB of an sRGB colour as a reader with this colour vision sees it. */
function seenLab(rgb: Rgb, m: Matrix): Rgb {
  const lin = rgb.map(toLinear);
  const [r, g, b] = m.map((row) => Math.min(1, Math.max(0, row[0] * lin[0]! + row[1] * lin[1]! + row[2] * lin[2]!))) as unknown as Rgb;
  const x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
  const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
  return [116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

const deltaE = (a: Rgb, b: Rgb) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

/** The smallest ΔE between any colour below the threshold and any above it (41 samples). */
function closestAcrossThreshold(colour: (v: number) => Rgb, m: Matrix): number {
  const samples = Array.from({ length: 41 }, (_, i) => i / 40);
  const below = samples.filter((v) => v < 0.5).map((v) => seenLab(colour(v), m));
  const above = samples.filter((v) => v >= 0.5).map((v) => seenLab(colour(v), m));
  return Math.min(...below.flatMap((a) => above.map((b) => deltaE(a, b))));
}

/** The scale fqa shipped before (green to dark red): the test's proof that it can fail. */
const GREEN_TO_RED: [number, Rgb][] = [[0, [0, 104, 55]], [0.25, [26, 152, 80]], [0.5, [166, 217, 106]], [0.5, [253, 174, 97]], [0.75, [215, 48, 39]], [1, [120, 0, 30]]];
function greenToRed(v: number): Rgb {
  for (let i = 1; i < GREEN_TO_RED.length; i++) {
    const [p0, c0] = GREEN_TO_RED[i - 1]!;
    const [p1, c1] = GREEN_TO_RED[i]!;
    if (v < p1 || i === GREEN_TO_RED.length - 1) {
      const f = p1 > p0 ? Math.min(1, (v - p0) / (p1 - p0)) : 0;
      return [0, 1, 2].map((k) => c0[k]! + (c1[k]! - c0[k]!) * f) as unknown as Rgb;
    }
  }
  return GREEN_TO_RED[GREEN_TO_RED.length - 1]![1];
}

describe('the heatmap colour scale under simulated colour-vision deficiencies', () => {
  for (const [vision, m] of Object.entries(VISION)) {
    test(`${vision}: sharp and blurry never look alike`, () => {
      expect(closestAcrossThreshold(scaleColour, m)).toBeGreaterThan(40);
      expect(deltaE(seenLab(scaleColour(0), m), seenLab(scaleColour(1), m))).toBeGreaterThan(40);
      // The step at the threshold itself is visible, not only the ends.
      expect(deltaE(seenLab(scaleColour(0.4999), m), seenLab(scaleColour(0.5), m))).toBeGreaterThan(40);
    });
  }

  test('the oracle fails the old green-to-red scale under deuteranopia and protanopia', () => {
    expect(closestAcrossThreshold(greenToRed, VISION.deuteranopia!)).toBeLessThan(10);
    expect(closestAcrossThreshold(greenToRed, VISION.protanopia!)).toBeLessThan(10);
    expect(closestAcrossThreshold(greenToRed, VISION.normal!)).toBeGreaterThan(40);
  });

  test('the legend draws the stops the heatmap uses', () => {
    for (const [p, c] of COLOUR_STOPS) if (p !== 0.5) expect(scaleColour(p)).toEqual([...c]);
  });
});
