// The tissue-mask image of a slide without a small pyramid level: read in bands and area-averaged.
// Oracles: the plain mean of each thumbnail pixel's block of level pixels, computed here pixel by
// pixel; and, on real tissue, the whole-level resize the scan uses for pyramids.
import { describe, expect, test } from 'vitest';
import sharp from 'sharp';
import { detectTissue, maskSize, openSource, streamedMaskImage, wholeLevelMaskImage } from '@fqa/core';
import { hasShared, shared } from '../../../test/helpers/shared.js';

describe('streamed tissue-mask image', () => {
  test('each thumbnail pixel is the mean of its block of level pixels, whatever the band size', async () => {
    const [W, H] = [2600, 1900];
    const level = new Uint8Array(W * H * 3);
    for (let i = 0; i < level.length; i++) level[i] = (i * 2654435761) >>> 24;
    const png = await sharp(level, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    const source = await openSource(png);
    try {
      const { width, height } = maskSize(W, H);
      const expected = new Uint8Array(width * height * 3);
      const edge = (i: number, n: number, of: number) => Math.floor((i * of) / n);
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++)
          for (let k = 0; k < 3; k++) {
            let [sum, n] = [0, 0];
            for (let r = edge(y, height, H); r < edge(y + 1, height, H); r++)
              for (let c = edge(x, width, W); c < edge(x + 1, width, W); c++) [sum, n] = [sum + level[(r * W + c) * 3 + k]!, n + 1];
            expected[(y * width + x) * 3 + k] = Math.round(sum / n);
          }
      // One band, and bands of a few thumbnail rows (band edges inside the image, a short last band).
      for (const band of [2 ** 24, 2 ** 16, 7 * W]) {
        const got = await streamedMaskImage(source, 0, band);
        expect([got.width, got.height]).toEqual([width, height]);
        expect(Buffer.compare(Buffer.from(got.pixels), Buffer.from(expected)), `band ${band}`).toBe(0);
      }
    } finally {
      source.close();
    }
  });

  test.skipIf(!hasShared)('on real tissue the streamed mask agrees with the whole-level one', async () => {
    const source = await openSource(shared('data', 'slides', 'CMU-1-Small-Region.svs'));
    try {
      const whole = await wholeLevelMaskImage(source, 0);
      const streamed = await streamedMaskImage(source, 0, 2 ** 20);
      const a = detectTissue(whole.pixels, whole.width, whole.height).mask;
      const b = detectTissue(streamed.pixels, streamed.width, streamed.height).mask;
      let [both, either] = [0, 0];
      for (let i = 0; i < a.length; i++) [both, either] = [both + (a[i]! & b[i]!), either + (a[i]! | b[i]!)];
      expect(both / either).toBeGreaterThan(0.95);
    } finally {
      source.close();
    }
  });
});
