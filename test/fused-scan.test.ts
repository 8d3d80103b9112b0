// The fused native path of a scan (each region's JPEG tiles decoded and swept in one native pass,
// no pixels in JS) against the worker-pool path it replaces on direct-read slides, its oracle: the
// same scores bit for bit and scores.tsv byte for byte, on a real Aperio slide (default model,
// published FocusLiteNN-1 with overlapping patches, EONSS) and on a pyramid scanned at level 1;
// every JPEG tile decoded once; a damaged tile is the same one-line error on both paths.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { convertReferenceFile, DEFAULT_MODEL_PATH, openSource, scanSlide, scoresTsv, type ScanOptions } from '@fqa/core';
import { hasShared, shared } from './helpers/shared.js';
import { damageTile, makeNoiseSlide } from './helpers/slides.js';

const work = mkdtempSync(path.join(tmpdir(), 'fqa-fused-'));
const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');
const flnn1 = path.join(work, 'focuslitenn-1.fqa');
const eonss = path.join(work, 'eonss.fqa');
const pyramid = path.join(work, 'cmu-pyramid.tiff');

/** Scans twice, fused and through the pool; both must agree exactly. */
async function bothPaths(slide: string, options: ScanOptions) {
  const fused = await scanSlide(slide, { workers: 2, ...options });
  const pool = await scanSlide(slide, { workers: 2, ...options, fusedSweep: false });
  expect(fused.pipeline).toBe('fused');
  expect(pool.pipeline).toBe('pool');
  expect(fused.summary.patchesScored).toBeGreaterThan(10);
  // Bit for bit (NaN where background), and the report file byte for byte.
  expect(Buffer.from(fused.scores.buffer).equals(Buffer.from(pool.scores.buffer))).toBe(true);
  expect(scoresTsv(fused)).toBe(scoresTsv(pool));
  expect(fused.summary).toEqual(pool.summary);
  // Every tile decoded once on both paths; the fused one decodes no tile the pool does not.
  expect(fused.reader.tilesRedecoded).toBe(0);
  expect(pool.reader.tilesRedecoded).toBe(0);
  expect(fused.reader.tilesDecoded).toBeLessThanOrEqual(pool.reader.tilesDecoded);
  return { fused, pool };
}

describe.skipIf(!hasShared)('fused decode + sweep per region: the same scores as the worker-pool path', () => {
  beforeAll(async () => {
    writeFileSync(flnn1, await convertReferenceFile(shared('reference', 'focuslitenn', 'focuslitenn-1kernel.json'), { architecture: 'focuslitenn', patchSize: 235 }));
    writeFileSync(eonss, await convertReferenceFile(shared('reference', 'focuslitenn', 'eonss.json'), { architecture: 'eonss' }));
    // CMU-1-Small-Region twice across (4440 x 2967 px), claimed at 0.25 µm/px (sharp's xres is in
    // px/mm): a model at 0.5 µm/px scans its level 1 (2220 x 1483, downsample 2.0003) as is, with
    // level-0 region origins divided by that downsample natively.
    const source = await openSource(svs);
    const { width, height } = source.levels[0]!;
    const rgb = await source.readRegion(0, 0, 0, width, height);
    source.close();
    const half = await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
    await sharp({ create: { width: 2 * width, height, channels: 3, background: '#ffffff' } })
      .composite([{ input: half, left: 0, top: 0 }, { input: half, left: width, top: 0 }])
      .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 85, xres: 4000, yres: 4000, resolutionUnit: 'cm' })
      .toFile(pyramid);
  }, 60_000);

  test('a real Aperio slide, the shipped model: every one of its 130 tiles decoded once', async () => {
    const { fused } = await bothPaths(svs, { model: DEFAULT_MODEL_PATH });
    expect(fused.reader).toMatchObject({ reader: 'direct', tilesDecoded: 130, tilesRedecoded: 0 });
  });

  test('published FocusLiteNN-1, overlapping patches (shared conv map), a low tissue threshold', async () => {
    const { fused } = await bothPaths(svs, { model: flnn1, stride: 100, minTissue: 0.2 });
    expect(fused.stride).toBe(100);
  });

  test('EONSS (published weights)', async () => {
    await bothPaths(svs, { model: eonss });
  });

  test('a pyramid scanned at level 1: region origins in level pixels, background bands never decoded', async () => {
    const { fused } = await bothPaths(pyramid, { model: DEFAULT_MODEL_PATH, stride: 150 });
    expect(fused.level).toBe(1);
    expect(fused.level0PerWorkingPixel).toBeCloseTo(2.0003, 4);
  });

  test('a damaged tile mid-scan: the same one-line error naming file and tile on both paths', async () => {
    const slide = path.join(work, 'noise-3k.tiff');
    await makeNoiseSlide(slide, 3072);
    const damaged = path.join(work, 'noise-3k-damaged.tiff');
    copyFileSync(slide, damaged);
    const tile = 12 * 6 + 9; // level 0 is 12 x 12 tiles of 256 px; this one lies in the 2nd row of regions
    damageTile(damaged, tile);
    const message = new RegExp(`^${damaged.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: JPEG tile ${tile} of level 0 is damaged \\(`);
    await expect(scanSlide(damaged, { model: DEFAULT_MODEL_PATH, workers: 2 })).rejects.toThrow(message);
    await expect(scanSlide(damaged, { model: DEFAULT_MODEL_PATH, workers: 2, fusedSweep: false })).rejects.toThrow(message);
    // The undamaged slide scans on the fused path, so the error above came from that path.
    expect((await scanSlide(slide, { model: DEFAULT_MODEL_PATH, workers: 2 })).pipeline).toBe('fused');
  }, 60_000);
});
