// Scanner-like synthetic defocus: seeded, copies of a crop differ only in focus, the JPEG step is a
// real re-compression, and blur lowers the patches' high-frequency energy as the level grows.
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { scannerDefocus, srcc, type ScannerDefocusOptions } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

const options = (o: Partial<ScannerDefocusOptions> = {}): ScannerDefocusOptions => ({
  sources: [shared('data', 'tiles', 'ihc.png'), shared('data', 'tiles', 'medium-nuclei-score-level0.png')],
  count: 6,
  levelsPerCrop: 2,
  patchSize: 64,
  maxLevel: 6,
  inFocusShare: 0.3,
  seed: 21,
  ...o,
});

/** Mean squared difference of horizontal neighbours: the high-frequency energy of a patch. */
function gradientEnergy(p: Uint8Array, size: number): number {
  let e = 0;
  for (let y = 0; y < size; y++) for (let x = 1; x < size; x++) for (let c = 0; c < 3; c++) e += (p[(y * size + x) * 3 + c]! - p[(y * size + x - 1) * 3 + c]!) ** 2;
  return e / (size * (size - 1) * 3);
}

describe.skipIf(!hasShared)('scannerDefocus', () => {
  test('the same seed gives the same patches and labels; another seed does not', async () => {
    const a = await scannerDefocus(options());
    const b = await scannerDefocus(options());
    const c = await scannerDefocus(options({ seed: 22 }));
    expect(Buffer.from(a.patches).equals(Buffer.from(b.patches))).toBe(true);
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(Buffer.from(a.patches).equals(Buffer.from(c.patches))).toBe(false);
    expect(a.count).toBe(12);
    for (const l of a.labels) expect(l).toBeGreaterThanOrEqual(0), expect(l).toBeLessThanOrEqual(6);
  });

  test('copies of one crop differ only in focus: equal levels give identical pixels, the blurrier copy has less detail', async () => {
    // Every level 0: each crop's two copies must be byte-identical (same stain, noise, colour, JPEG).
    const sharpPairs = await scannerDefocus(options({ inFocusShare: 1, count: 4 }));
    const n = 64 * 64 * 3;
    for (let i = 0; i < sharpPairs.count; i += 2) {
      expect(Buffer.from(sharpPairs.patches.subarray(i * n, (i + 1) * n)).equals(Buffer.from(sharpPairs.patches.subarray((i + 1) * n, (i + 2) * n)))).toBe(true);
    }
    const pairs = await scannerDefocus(options({ count: 10, inFocusShare: 0, scanner: { jpeg: 0 } }));
    for (let i = 0; i < pairs.count; i += 2) {
      const [la, lb] = [pairs.labels[i]!, pairs.labels[i + 1]!];
      if (Math.abs(la - lb) < 1) continue;
      const ea = gradientEnergy(pairs.patches.subarray(i * n, (i + 1) * n), 64);
      const eb = gradientEnergy(pairs.patches.subarray((i + 1) * n, (i + 2) * n), 64);
      expect(la < lb ? ea > eb : eb > ea, `levels ${la.toFixed(2)} / ${lb.toFixed(2)}: energies ${ea.toFixed(1)} / ${eb.toFixed(1)}`).toBe(true);
    }
  });

  test('within a crop detail falls with every level step; across crops detail alone does not tell the level', async () => {
    const set = await scannerDefocus(options({ count: 40, levelsPerCrop: 3, inFocusShare: 0.1, patchSize: 96 }));
    const n = 96 * 96 * 3;
    const energy = Float32Array.from({ length: set.count }, (_, i) => Math.log(gradientEnergy(set.patches.subarray(i * n, (i + 1) * n), 96)));
    for (let crop = 0; crop < 40; crop++) {
      const idx = [0, 1, 2].map((k) => 3 * crop + k).sort((a, b) => set.labels[a]! - set.labels[b]!);
      for (let k = 1; k < 3; k++) if (set.labels[idx[k]!]! - set.labels[idx[k - 1]!]! > 0.5) expect(energy[idx[k]!]).toBeLessThan(energy[idx[k - 1]!]!);
    }
    // Stain strength, contrast and noise vary independently of focus, so a model cannot score
    // "low contrast" as "blurry": the raw detail of a patch is only a weak cue across crops.
    expect(Math.abs(srcc(energy, set.labels))).toBeLessThan(0.7);
  });

  test('the JPEG step is a re-compression at the drawn quality, and the only difference when it is switched on', async () => {
    const raw = await scannerDefocus(options({ count: 2, levelsPerCrop: 1, scanner: { jpeg: 0, jpegQuality: [80, 80] } }));
    const jpeg = await scannerDefocus(options({ count: 2, levelsPerCrop: 1, scanner: { jpeg: 1, jpegQuality: [80, 80] } }));
    expect(Array.from(jpeg.labels)).toEqual(Array.from(raw.labels));
    const n = 64 * 64 * 3;
    for (let i = 0; i < raw.count; i++) {
      const original = raw.patches.subarray(i * n, (i + 1) * n);
      const encoded = await sharp(Buffer.from(original), { raw: { width: 64, height: 64, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
      const expected = await sharp(encoded).raw().toBuffer();
      expect(Buffer.from(jpeg.patches.subarray(i * n, (i + 1) * n)).equals(expected)).toBe(true);
      expect(Buffer.from(original).equals(expected)).toBe(false);
    }
  });

  test('too small or tissue-free sources are a clear error', async () => {
    await expect(scannerDefocus(options({ sources: [shared('data', 'tiles', 'liver-level2-10907-7808-11707-8608.png')] }))).rejects.toThrow(/large enough/);
    await expect(scannerDefocus(options({ sources: [shared('data', 'tiles', 'no-tissue.png')], count: 2 }))).rejects.toThrow(/could not find/);
  });
});
