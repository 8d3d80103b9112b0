// The zoomable view's Deep Zoom pyramid, streamed band by band: its layout against libvips's own dz
// writer (sharp's tile()) on real tissue, its pixels against the level they come from, the choice of
// level, and the whole-factor box mean against a scalar reference.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, test } from 'vitest';
import { encodeJpegTiles } from '@fqa/native';
import { openSource, planView, shrinkBand, writeDeepZoom } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'fqa-deepzoom-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

async function rgb(file: string | Buffer) {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** The largest level of a written view, reassembled from its tiles (each placed at its own position, overlaps included). */
async function reassemble(files: string, width: number, height: number): Promise<Uint8Array> {
  const top = String(Math.ceil(Math.log2(Math.max(width, height))));
  const image = new Uint8Array(width * height * 3);
  for (const tile of readdirSync(path.join(files, top))) {
    const [tx, ty] = tile.replace('.jpeg', '').split('_').map(Number) as [number, number];
    const t = await rgb(path.join(files, top, tile));
    const x0 = tx * 254 - (tx > 0 ? 1 : 0);
    const y0 = ty * 254 - (ty > 0 ? 1 : 0);
    for (let y = 0; y < t.height; y++) image.set(t.data.subarray(y * t.width * 3, (y + 1) * t.width * 3), ((y0 + y) * width + x0) * 3);
  }
  return image;
}

const meanDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;

/**
 * `view` against `expected` (width x height RGB): within 1.2x the error JPEG (quality 85) makes on
 * those pixels, and clearly closer than the same pixels one row off (a band read at the wrong row).
 */
async function expectSamePixels(view: Uint8Array, expected: Uint8Array, width: number, height: number): Promise<void> {
  const jpeg = await rgb(await sharp(expected, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer());
  const error = meanDiff(view, expected);
  expect(error).toBeLessThan(1.2 * meanDiff(new Uint8Array(jpeg.data), expected));
  expect(meanDiff(view.subarray(width * 3), expected.subarray(0, expected.length - width * 3))).toBeGreaterThan(1.5 * error);
}

describe('planView', () => {
  test('picks the largest view within the size, reading the fewest pixels for it', () => {
    const pyramid2x = [25000, 12500, 6250, 3125].map((w) => ({ width: w, height: w }));
    expect(planView(pyramid2x, 8192)).toEqual({ level: 2, factor: 1, width: 6250, height: 6250 });
    // Aperio 4x steps: level 1 halved (5750 px) beats level 2 as it is (2875 px).
    const aperio = [{ width: 46000, height: 32914 }, { width: 11500, height: 8228 }, { width: 2875, height: 2057 }];
    expect(planView(aperio, 8192)).toEqual({ level: 1, factor: 2, width: 5750, height: 4114 });
    // No pyramid: the one level, shrunk by whatever factor it takes.
    expect(planView([{ width: 25000, height: 20000 }], 8192)).toEqual({ level: 0, factor: 4, width: 6250, height: 5000 });
    expect(planView([{ width: 100000, height: 100 }], 8192)).toEqual({ level: 0, factor: 13, width: 7693, height: 8 });
    expect(planView([{ width: 2220, height: 2967 }], 8192)).toEqual({ level: 0, factor: 1, width: 2220, height: 2967 });
    // Scaled decodes (the direct reader's 1/2, 1/4, 1/8): the same view for less decoding.
    const aperioScaled = [{ index: 3, level: 1, width: 5750, height: 4114 }, { index: 4, level: 0, width: 5750, height: 4115 }];
    expect(planView(aperio, 8192, aperioScaled)).toEqual({ level: 3, factor: 1, width: 5750, height: 4114 });
    const pyramidScaled = [{ index: 4, level: 1, width: 6250, height: 6250 }, { index: 5, level: 0, width: 6250, height: 6250 }];
    expect(planView(pyramid2x, 8192, pyramidScaled)).toMatchObject({ level: 2, factor: 1 });
    expect(planView([{ width: 25000, height: 20000 }], 8192, [{ index: 1, level: 0, width: 6250, height: 5000 }])).toEqual({ level: 1, factor: 1, width: 6250, height: 5000 });
  });
});

describe('shrinkBand', () => {
  test('equals the mean of each box, edge boxes included', () => {
    const width = 23;
    const rows = 10;
    const pixels = new Uint8Array(width * rows * 3).map((_, i) => (i * 7919 + 13) % 256);
    for (const factor of [1, 2, 3, 4, 7]) {
      const out = shrinkBand(pixels, width, rows, factor);
      expect([out.width, out.rows]).toEqual([Math.ceil(width / factor), Math.ceil(rows / factor)]);
      for (let oy = 0; oy < out.rows; oy++) {
        for (let ox = 0; ox < out.width; ox++) {
          for (let c = 0; c < 3; c++) {
            let sum = 0;
            let n = 0;
            for (let y = oy * factor; y < Math.min(rows, (oy + 1) * factor); y++) {
              for (let x = ox * factor; x < Math.min(width, (ox + 1) * factor); x++, n++) sum += pixels[(y * width + x) * 3 + c]!;
            }
            expect(out.pixels[(oy * out.width + ox) * 3 + c]).toBe(Math.round(sum / n));
          }
        }
      }
    }
  });
});

describe('encodeJpegTiles (native, libjpeg-turbo)', () => {
  const width = 300;
  const rows = 40;
  // Smooth gradients (JPEG keeps them to within a level or two).
  const band = new Uint8Array(width * rows * 3).map((_, i) => {
    const x = Math.floor(i / 3) % width;
    const y = Math.floor(i / 3 / width);
    return [Math.floor(x * 0.8), 60 + 2 * y, 200 - Math.floor(x / 3)][i % 3]!;
  });

  test('cuts a band into JPEG tiles of the asked columns, the same pixels to JPEG precision', async () => {
    const files = await encodeJpegTiles(band, width * 3, rows, [0, 255, 253, 300], 90)!;
    expect(files).toHaveLength(2);
    const [left, right] = await Promise.all(files.map((f) => rgb(f)));
    expect([left!.width, left!.height, right!.width, right!.height]).toEqual([255, rows, 47, rows]);
    let diff = 0;
    for (let y = 0; y < rows; y++) for (let i = 0; i < 47 * 3; i++) diff += Math.abs(right!.data[y * 47 * 3 + i]! - band[(y * width + 253) * 3 + i]!);
    expect(diff / (rows * 47 * 3)).toBeLessThan(2);
  });

  test('refuses columns outside the band, a band shorter than its rows and a bad quality, as JS errors', async () => {
    expect(() => encodeJpegTiles(band, width * 3, rows, [0, 301], 85)).toThrow(RangeError);
    expect(() => encodeJpegTiles(band, width * 3, rows + 1, [0, 10], 85)).toThrow(/fewer than 41 rows/);
    expect(() => encodeJpegTiles(band, width * 3, rows, [0, 10, 5], 85)).toThrow(/pairs/);
    expect(() => encodeJpegTiles(band, width * 3, rows, [10, 10], 85)).toThrow(RangeError);
    expect(() => encodeJpegTiles(band, width * 3, rows, [0, 10], 0)).toThrow(RangeError);
  });
});

describe.skipIf(!hasShared)('writeDeepZoom', () => {
  const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');

  /** A `width` x `height` image of the slide's `crop` repeated (white where a repeat is cut off), to encode as wanted. */
  async function tissueRepeated(crop: { x: number; y: number; width: number; height: number }, width: number, height: number) {
    const source = await openSource(svs);
    const pixels = await source.readRegion(0, crop.x, crop.y, crop.width, crop.height);
    source.close();
    const tile = await sharp(pixels, { raw: { width: crop.width, height: crop.height, channels: 3 } }).png().toBuffer();
    return sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite([{ input: tile, tile: true }]);
  }

  test('lays out the tiles as libvips does, with the same pixels to JPEG precision', async () => {
    // A crop whose sides are not multiples of the tile size, so edge tiles and odd halvings occur.
    const source = await openSource(svs);
    const width = 1531;
    const height = 1109;
    const pixels = await source.readRegion(0, 300, 500, width, height);
    source.close();
    const png = path.join(work, 'crop.png');
    await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toFile(png);

    const ours = path.join(work, 'ours');
    const theirs = path.join(work, 'theirs');
    mkdirSync(ours, { recursive: true });
    const view = await writeDeepZoom(png, ours, 'v', 8192);
    expect(view).toMatchObject({ width, height, tileSize: 254, overlap: 1, format: 'jpeg' });
    await sharp(png).jpeg({ quality: 85 }).tile({ size: 254, overlap: 1, layout: 'dz' }).toFile(path.join(theirs, 'v.dz'));

    const tiles = filesUnder(path.join(ours, 'v_files'));
    expect(tiles).toEqual(filesUnder(path.join(theirs, 'v_files')).filter((f) => f.endsWith('.jpeg')));
    expect(tiles.length).toBeGreaterThan(30);
    for (const tile of tiles) {
      const a = await rgb(path.join(ours, 'v_files', tile));
      const b = await rgb(path.join(theirs, 'v_files', tile));
      expect([a.width, a.height], tile).toEqual([b.width, b.height]);
      let diff = 0;
      for (let i = 0; i < a.data.length; i++) diff += Math.abs(a.data[i]! - b.data[i]!);
      // Both are JPEG (quality 85) of the same pixels; lower levels are 2x2 box means in both.
      expect(diff / a.data.length, tile).toBeLessThan(2.5);
    }
    const dzi = readFileSync(path.join(ours, 'v.dzi'), 'utf8');
    expect(dzi).toContain(`<Size Height="${height}" Width="${width}"/>`);
    expect(dzi).toContain('TileSize="254"');
  });

  test('a slide level read in bands gives that level\'s pixels', async () => {
    // CMU-1-Small-Region has one level (2220 x 2967): a view of at most 1000 px shrinks it by 3.
    const dir = path.join(work, 'banded');
    mkdirSync(dir, { recursive: true });
    const view = await writeDeepZoom(svs, dir, 's', 1000);
    expect([view.width, view.height]).toEqual([740, 989]);
    const source = await openSource(svs);
    const level = await source.readRegion(0, 0, 0, 2220, 2967);
    source.close();
    const expected = shrinkBand(level, 2220, 2967, 3);
    await expectSamePixels(await reassemble(path.join(dir, 's_files'), 740, 989), expected.pixels, 740, 989);
  });

  test('a level wider than one read is read in column blocks side by side', async () => {
    // 20,000 x 240 px of real tissue: wider than the 16,384 columns the view reads at once.
    const wide = path.join(work, 'wide.png');
    await (await tissueRepeated({ x: 0, y: 1000, width: 2000, height: 240 }, 20000, 240)).png().toFile(wide);
    const dir = path.join(work, 'wide');
    mkdirSync(dir, { recursive: true });
    const view = await writeDeepZoom(wide, dir, 'w', 20000);
    expect([view.width, view.height]).toEqual([20000, 240]);
    const whole = await rgb(wide);
    await expectSamePixels(await reassemble(path.join(dir, 'w_files'), 20000, 240), new Uint8Array(whole.data), 20000, 240);
    expect(() => planView([{ width: 10, height: 10 }], 0)).toThrow(/view size/);
  });

  test('a pyramid level of a JPEG-tiled TIFF, read in bands by the direct reader, gives that level', async () => {
    // 6000 x 3000 of real tissue, 240 px JPEG tiles, a 2x pyramid: a 3000 px view is level 1 as it
    // is (cheaper than level 0 halved), read in two bands at level-0 coordinates.
    const tiff = path.join(work, 'pyramid.tiff');
    await (await tissueRepeated({ x: 0, y: 0, width: 2000, height: 1500 }, 6000, 3000))
      .tiff({ tile: true, tileWidth: 240, tileHeight: 240, pyramid: true, compression: 'jpeg', quality: 90 })
      .toFile(tiff);
    const slide = await openSource(tiff);
    expect(slide.directLevels).toContain(1);
    expect(planView(slide.levels, 3000)).toMatchObject({ level: 1, factor: 1 });
    const level1 = await slide.readRegion(1, 0, 0, 3000, 1500);
    slide.close();
    const dir = path.join(work, 'pyramid');
    mkdirSync(dir, { recursive: true });
    await writeDeepZoom(tiff, dir, 'p', 3000);
    await expectSamePixels(await reassemble(path.join(dir, 'p_files'), 3000, 1500), level1, 3000, 1500);
  });
});
