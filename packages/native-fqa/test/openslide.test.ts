// OpenSlide reader: metadata and pixels against OpenSlide's own tools (openslide-write-png), and
// every kind of bad slide as a clear error.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { openSlide, openslideVersion } from '../dist/index.js';
import { hasShared, missing, shared } from '../../../test/helpers/shared.js';

const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');
const noTools = missing(spawnSync('openslide-write-png', [], { encoding: 'utf8' }).error === undefined, 'openslide-write-png (openslide-tools)');

describe.skipIf(!hasShared)('OpenSlide reader', () => {
  test('reads the Aperio metadata', async () => {
    expect(openslideVersion()).toMatch(/^\d+\.\d+/);
    const slide = await openSlide(svs);
    const info = slide.info();
    expect(info.vendor).toBe('aperio');
    expect(info.levels[0]).toEqual({ width: 2220, height: 2967, downsample: 1 });
    expect(Number(info.properties['openslide.mpp-x'])).toBeCloseTo(0.499, 3);
    slide.close();
    expect(() => slide.info()).toThrow(/closed/);
  });

  test.skipIf(noTools)('pixels equal openslide-write-png for the same region', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-os-'));
    const png = path.join(dir, 'region.png');
    execFileSync('openslide-write-png', [svs, '300', '500', '0', '400', '300', png]);
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([400, 300]);
    const slide = await openSlide(svs);
    const ours = await slide.readRegion(0, 300, 500, 400, 300);
    expect(ours.length).toBe(400 * 300 * 3);
    let differing = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] !== data[i]) differing++;
    expect(differing).toBe(0);
    // A region past the slide's edge reads as white background, not garbage.
    const edge = await slide.readRegion(0, 2200, 2950, 40, 40);
    expect(edge[(39 * 40 + 39) * 3]).toBe(255);
    slide.close();
  });

  test('bad slides are one clear error each', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-bad-'));
    const bytes = readFileSync(svs);
    writeFileSync(path.join(dir, 'truncated.svs'), bytes.subarray(0, Math.floor(bytes.length / 3)));
    writeFileSync(path.join(dir, 'text.svs'), 'this is a text file, not a slide\n');
    writeFileSync(path.join(dir, 'empty.svs'), '');
    mkdirSync(path.join(dir, 'folder.svs'));
    await expect(openSlide(path.join(dir, 'missing.svs'))).rejects.toThrow(/file not found/);
    await expect(openSlide(path.join(dir, 'text.svs'))).rejects.toThrow(/not a slide format OpenSlide can read/);
    await expect(openSlide(path.join(dir, 'empty.svs'))).rejects.toThrow(/empty file/);
    await expect(openSlide(path.join(dir, 'folder.svs'))).rejects.toThrow(/is a directory/);
    // A truncated SVS may open (the directory survives) but then fails to read; either is an error.
    const truncated = await openSlide(path.join(dir, 'truncated.svs')).then(
      async (s) => {
        const { width, height } = s.info().levels[0]!;
        await s.readRegion(0, 0, 0, width, height);
        return 'read';
      },
      (err: Error) => err.message,
    ).catch((err: Error) => err.message);
    expect(truncated).toMatch(/truncated\.svs|OpenSlide/);
  });

  test('the direct JPEG-tile reader returns exactly OpenSlide\'s pixels', async () => {
    const slide = await openSlide(svs);
    expect(slide.info().directLevels).toEqual([0]);
    // Inside, over the far corner, from left of and above the origin, wider than the level on both
    // sides, wholly outside it (white where the region leaves the level).
    for (const [x, y, w, h] of [[0, 0, 2220, 2967], [300, 500, 400, 300], [2100, 2900, 200, 200], [-50, -20, 120, 80], [-30, 2940, 2300, 60], [2300, 100, 50, 40]] as const) {
      const viaOpenSlide = await slide.readRegion(0, x, y, w, h, 'openslide');
      const direct = await slide.readRegion(0, x, y, w, h, 'direct');
      expect(Buffer.compare(Buffer.from(direct), Buffer.from(viaOpenSlide)), `${x},${y} ${w}x${h}`).toBe(0);
    }
    expect(() => slide.readRegion(0, 0, 0, 10, 10, 'fast' as never)).toThrow(/reader/);
    slide.close();
  });

  test('on every level of a pyramid fqa writes (sharp, JPEG tiles), direct and OpenSlide pixels are identical, at offsets too', async () => {
    // The demo slide's writer: a JPEG-tiled pyramidal TIFF (libvips), 1500 x 1300 px: 4 levels whose
    // sizes do not divide the 256 px tiles evenly.
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'fqa-pyramid-')), 'pyramid.tiff');
    const raw = Buffer.from(Array.from({ length: 1500 * 1300 * 3 }, (_, i) => (Math.imul(i, 2654435761) >>> 24) & 0xff));
    await sharp(raw, { raw: { width: 1500, height: 1300, channels: 3 } })
      .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 80 })
      .toFile(file);
    const slide = await openSlide(file);
    const { levels, directLevels } = slide.info();
    expect(levels.length).toBeGreaterThanOrEqual(3);
    expect(directLevels).toEqual(levels.map((_, i) => i));
    const same = async (level: number, x: number, y: number, w: number, h: number, openslideX = x, openslideY = y) => {
      const direct = await slide.readRegion(level, x, y, w, h, 'direct');
      const viaOpenSlide = await slide.readRegion(level, openslideX, openslideY, w, h, 'openslide');
      expect(Buffer.compare(Buffer.from(direct), Buffer.from(viaOpenSlide)), `level ${level} at ${x},${y} ${w}x${h}`).toBe(0);
    };
    for (const [level, L] of levels.entries()) {
      const ds = L.downsample;
      await same(level, 0, 0, L.width, L.height);
      // The last level's downsample is not an integer (1500 / 187): only its origin is on its pixel grid.
      if (!Number.isInteger(ds)) continue;
      // Inside the level, over its right and bottom edges, and starting left of and above the origin.
      await same(level, 37 * ds, 91 * ds, Math.min(301, L.width - 40), Math.min(203, L.height - 95));
      await same(level, (L.width - 100) * ds, (L.height - 60) * ds, 180, 150);
      await same(level, -17 * ds, -9 * ds, 120, 90);
      // A level-0 position between two level pixels: OpenSlide paints the tiles at the sub-pixel
      // offset (interpolated), the direct reader reads the level's own pixel grid, i.e. what
      // OpenSlide returns at the level pixel below (a scan that resamples a level reads such positions).
      if (ds > 1) await same(level, 37 * ds + 1, 91 * ds + 1, 120, 90, 37 * ds, 91 * ds);
    }
    slide.close();
  });

  test('a slide whose tiles are cut off is a read error, not a crash', async () => {
    const bytes = readFileSync(svs);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'fqa-cut-')), 'cut.svs');
    // Keep the directory (at the start of this SVS) but drop the end of the tile data.
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const slide = await openSlide(file).catch((err: Error) => err);
    if (slide instanceof Error) {
      expect(slide.message).toMatch(/cut\.svs/);
      return;
    }
    const { width, height } = slide.info().levels[0]!;
    await expect(slide.readRegion(0, 0, 0, width, height, 'auto')).rejects.toThrow(/cut\.svs|OpenSlide/);
    slide.close();
  });

  test('argument errors are synchronous and name the argument', async () => {
    const slide = await openSlide(svs);
    expect(() => slide.readRegion(5, 0, 0, 10, 10)).toThrow(/level/);
    expect(() => slide.readRegion(0, 0, 0, 0, 10)).toThrow(/width/);
    expect(() => slide.readRegion(0, 0, 0, 10, 1.5)).toThrow(/height/);
    slide.close();
  });
});
