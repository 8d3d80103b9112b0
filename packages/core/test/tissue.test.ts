// Tissue detection against the named real tiles in ../shared/data/tiles (histolab fixtures) and
// the almost-empty kidney overview slide.
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { classifyPixel, detectTissue, patchTissueFractions, PixelClass } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

async function tissueOf(file: string) {
  const { data, info } = await sharp(file).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return detectTissue(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height);
}
const tile = (name: string) => shared('data', 'tiles', name);

test('pixel classes on hand-picked colours', () => {
  expect(classifyPixel(240, 238, 242)).toBe(PixelClass.Background); // glass
  expect(classifyPixel(205, 120, 170)).toBe(PixelClass.Tissue); // eosin
  expect(classifyPixel(90, 60, 140)).toBe(PixelClass.Tissue); // hematoxylin
  expect(classifyPixel(150, 100, 60)).toBe(PixelClass.Tissue); // DAB brown
  expect(classifyPixel(40, 160, 60)).toBe(PixelClass.Pen); // green pen
  expect(classifyPixel(30, 50, 190)).toBe(PixelClass.Pen); // blue pen
  expect(classifyPixel(200, 30, 60)).toBe(PixelClass.Pen); // red pen
  expect(classifyPixel(10, 12, 8)).toBe(PixelClass.Ink);
});

test('the mask is cleaned: an isolated tissue pixel on glass is dropped', () => {
  const w = 9;
  const rgb = new Uint8Array(w * w * 3).fill(245);
  rgb.set([200, 100, 150], (4 * w + 4) * 3);
  expect(detectTissue(rgb, w, w).fraction).toBe(0);
});

test('patch tissue fractions map level-0 patches onto the mask', () => {
  const mask = { width: 4, height: 2, mask: Uint8Array.from([1, 1, 0, 0, 1, 1, 0, 0]), fraction: 0.5, penFraction: 0 };
  // Mask pixel = 100 level-0 px; patches of 200 px at stride 200: left patch all tissue, right none.
  expect(Array.from(patchTissueFractions(mask, 100, { columns: 2, rows: 1, patchSize: 200, stride: 200 }))).toEqual([1, 0]);
  expect(Array.from(patchTissueFractions(mask, 100, { columns: 1, rows: 1, patchSize: 200, stride: 200, originX: 100 }))).toEqual([0.5]);
});

test('patch fractions (summed-area table) equal a direct count, any downsample, origin and shape', () => {
  let state = 12345;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const width = 37;
  const height = 23;
  const mask = { width, height, mask: Uint8Array.from({ length: width * height }, () => (random() < 0.4 ? 1 : 0)), fraction: 0, penFraction: 0 };
  for (const [down, patchSize, patchHeight, stride, originX, originY] of [[1, 8, 8, 5, 0, 0], [1, 9, 4, 3, 2, 1], [3, 20, 14, 7, 5, 4], [2.5, 11, 11, 6, 1, 0], [4, 100, 100, 50, 0, 0]] as const) {
    const columns = 6;
    const rows = 4;
    const got = patchTissueFractions(mask, down, { columns, rows, patchSize, patchHeight, stride, originX, originY });
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < columns; c++) {
        // The oracle: count the mask pixels under the patch one by one.
        const x0 = Math.min(width, Math.floor((originX + c * stride) / down));
        const y0 = Math.min(height, Math.floor((originY + r * stride) / down));
        const x1 = Math.min(width, Math.max(x0 + 1, Math.ceil((originX + c * stride + patchSize) / down)));
        const y1 = Math.min(height, Math.max(y0 + 1, Math.ceil((originY + r * stride + patchHeight) / down)));
        let on = 0;
        let all = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) { on += mask.mask[y * width + x]!; all++; }
        expect(got[r * columns + c], `${down} ${patchSize}x${patchHeight} patch ${c},${r}`).toBeCloseTo(all > 0 ? on / all : 0, 6);
      }
  }
});

describe.skipIf(!hasShared)('real tiles', () => {
  test.each([
    'tissue-level0-4302-10273-4814-10785.png',
    'tissue-level0-7352-11762-7864-12274.png',
    'tissue-level2-1784-6289-5880-10386.png',
    'tissue-level2-3000-7666-7096-11763.png',
    'tissue-level2-4640-4649-8736-8746.png',
    'tissue-level2-4760-5241-8856-9338.png',
    'very-low-nuclei-score-level0.png',
    'medium-nuclei-score-level1-2.png',
    'ihc.png',
  ])('%s is mostly tissue', async (name) => {
    expect((await tissueOf(tile(name))).fraction).toBeGreaterThan(0.5);
  });

  test.each(['no-tissue.png', 'no-tissue2.png', 'no-tissue-line.png', 'almost-white-1.png', 'almost-white-2.png', 'liver-level2-38626-13514-39426-14315.png'])(
    '%s has (almost) no tissue',
    async (name) => {
      expect((await tissueOf(tile(name))).fraction).toBeLessThan(0.03);
    },
  );

  test('green pen on glass is pen, not tissue; green pen over tissue keeps the tissue', async () => {
    const onGlass = await tissueOf(tile('no-tissue-green-pen.png'));
    expect(onGlass.fraction).toBeLessThan(0.01);
    expect(onGlass.penFraction).toBeGreaterThan(0.5);
    const overTissue = await tissueOf(tile('medium-nuclei-score-green-pen-level1.png'));
    expect(overTissue.penFraction).toBeGreaterThan(0.2);
    expect(overTissue.fraction).toBeGreaterThan(0.5);
  });

  test('red pen is found where the tiles have it', async () => {
    for (const name of ['no-tissue-red-pen.png', 'very-low-nuclei-score-red-pen-level1.png', 'high-nuclei-score-red-pen-level1.png']) {
      expect((await tissueOf(tile(name))).penFraction, name).toBeGreaterThan(0.05);
    }
  });

  test('kidney-48-5.tif: almost all background, one tiny fragment', async () => {
    const t = await tissueOf(shared('data', 'slides', 'kidney-48-5.tif'));
    expect(t.fraction).toBeGreaterThan(0);
    expect(t.fraction).toBeLessThan(0.02);
  });
});
