// DICOM VL Whole Slide Microscopy, read by fqa's own Part 10 reader, against pydicom as the oracle.
// pydicom (Debian's python3-pydicom, with python3-pil for JPEG) writes a two-level JPEG Baseline
// series from real tissue (a CMU-1-Small-Region region) and dumps its own decoding of every level;
// fqa must give the same pixels, the same scan as the same pixels in a PNG, and one error line for
// every broken or unsupported file.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, InputError, openSource, scanSlide } from '@fqa/core';
import { hasShared, missing, repoRoot, shared } from './helpers/shared.js';

// The absolute path: `python3` on PATH may be a pyenv without Debian's dist-packages.
const python = '/usr/bin/python3';
const hasPydicom = spawnSync(python, ['-c', 'import pydicom, PIL, numpy'], { encoding: 'utf8' }).status === 0;
const noPydicom = missing(hasPydicom, 'pydicom and Pillow for /usr/bin/python3 (apt: python3-pydicom python3-pil)');

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-dicom-'));
const out = path.join(work, 'dicom');
const level0Png = path.join(work, 'level0.png');
// Edge tiles padded; levels 1 and 2 under 512 px, so both scans take the tissue mask from level 0.
const LEVELS = [[1500, 1000, 'VOLUME'], [375, 250, 'VOLUME'], [150, 100, 'THUMBNAIL']] as const;
const MPP = 0.499;
const seriesFile = (i: number) => path.join(out, 'series', `level${i}.dcm`);

function pydicomLevel(i: number, kind: 'pillow' | 'pixel_array'): Uint8Array {
  return new Uint8Array(readFileSync(path.join(out, `level${i}.${kind}.rgb`)));
}

/** The error a file opens with (or null): must be one InputError line naming the file. */
async function openError(file: string): Promise<string | null> {
  try {
    const source = await openSource(file);
    // Opened: every frame must still decode or fail as one InputError.
    try {
      const L = source.levels[0]!;
      await source.readRegion(0, 0, 0, L.width, L.height);
    } finally {
      source.close();
    }
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    const message = (err as Error).message;
    expect(message.startsWith(file)).toBe(true);
    expect(message).not.toContain('\n');
    return message;
  }
}

function fqa(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args, '--workers', '1', '--view-size', '0'], { cwd: work });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!hasShared || noPydicom)('DICOM whole-slide images', () => {
  beforeAll(async () => {
    const svs = await openSource(shared('data', 'slides', 'CMU-1-Small-Region.svs'));
    const [w, h] = LEVELS[0];
    const region = await svs.readRegion(0, 300, 1967, w, h);
    svs.close();
    await sharp(Buffer.from(region), { raw: { width: w, height: h, channels: 3 } }).png().toFile(level0Png);
    const spec = { png: level0Png, out, tile: 256, mpp: MPP, levels: LEVELS };
    const r = spawnSync(python, [path.join(repoRoot, 'test', 'helpers', 'dicom_wsi.py')], { input: JSON.stringify(spec), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  test('every level equals pydicom pixel for pixel; regions across tiles and past the edge are white outside', async () => {
    // Opened through level 1: the series is found beside it and level 0 is its largest VOLUME.
    const source = await openSource(seriesFile(1));
    try {
      expect(source.kind).toBe('dicom');
      // The THUMBNAIL serves as the lowest level; the LABEL is no level.
      expect(source.levels).toEqual([{ width: 1500, height: 1000, downsample: 1 }, { width: 375, height: 250, downsample: 4 }, { width: 150, height: 100, downsample: 10 }]);
      expect(source.mpp).toBeCloseTo(MPP, 9);
      for (const [i, [w, h]] of LEVELS.entries()) {
        const ours = await source.readRegion(i, 0, 0, w, h);
        // Exact against pydicom's frames decoded by Pillow (libjpeg's YCbCr -> RGB, as sharp's).
        expect(Buffer.compare(Buffer.from(ours), Buffer.from(pydicomLevel(i, 'pillow')))).toBe(0);
        // pydicom's own pixel_array is YCbCr for YBR_FULL_422; its float colour conversion rounds
        // differently from libjpeg's integer one by at most 1 grey level on a few values.
        const array = pydicomLevel(i, 'pixel_array');
        let worst = 0;
        for (let k = 0; k < array.length; k++) worst = Math.max(worst, Math.abs(array[k]! - ours[k]!));
        expect(worst).toBeLessThanOrEqual(1);
      }
      // A region straddling four tiles and the matrix's bottom-right corner, in level-0 coordinates.
      const level0 = pydicomLevel(0, 'pillow');
      const [x, y, w, h] = [1400, 900, 300, 200];
      const region = await source.readRegion(0, x, y, w, h);
      let inside = 0;
      for (let row = 0; row < h; row++) {
        for (let col = 0; col < w; col++) {
          const [sx, sy] = [x + col, y + row];
          const o = (row * w + col) * 3;
          const want = sx < 1500 && sy < 1000 ? level0.subarray((sy * 1500 + sx) * 3, (sy * 1500 + sx) * 3 + 3) : [255, 255, 255];
          if (sx < 1500 && sy < 1000) inside++;
          expect([region[o], region[o + 1], region[o + 2]]).toEqual(Array.from(want));
        }
      }
      expect(inside).toBe(100 * 100);
      // Level 1 through level-0 coordinates: (400, 200) is level-1 pixel (100, 50).
      const small = await source.readRegion(1, 400, 200, 2, 1);
      const level1 = pydicomLevel(1, 'pillow');
      expect(Array.from(small)).toEqual(Array.from(level1.subarray((50 * 375 + 100) * 3, (50 * 375 + 102) * 3)));
      // Only the frames a region touches are decoded (a region inside one tile: one more frame at most).
      const before = source.readerStats().tilesDecoded;
      await source.readRegion(0, 10, 10, 50, 50);
      expect(source.readerStats().tilesDecoded - before).toBeLessThanOrEqual(1);
    } finally {
      source.close();
    }
  });

  test('a scan of the DICOM series gives the scores of the same pixels in a PNG', async () => {
    const png = path.join(work, 'same-pixels.png');
    const [w, h] = LEVELS[0];
    await sharp(Buffer.from(pydicomLevel(0, 'pillow')), { raw: { width: w, height: h, channels: 3 } }).png().toFile(png);
    const options = { model: DEFAULT_MODEL_PATH, mpp: MPP, workers: 1 };
    const dicom = await scanSlide(seriesFile(0), options);
    const plain = await scanSlide(png, options);
    expect(dicom.scores.length).toBe(plain.scores.length);
    let scored = 0;
    for (let i = 0; i < plain.scores.length; i++) {
      const [a, b] = [dicom.scores[i]!, plain.scores[i]!];
      expect(Number.isNaN(a)).toBe(Number.isNaN(b));
      if (Number.isNaN(b)) continue;
      scored++;
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-5);
    }
    expect(scored).toBeGreaterThan(10); // real tissue was scored, not just background compared
    expect(dicom.summary.verdict).toBe(plain.summary.verdict);
  });

  test('unsupported and broken files are one InputError line each', async () => {
    expect(await openError(path.join(out, 'sparse', 'slide.dcm'))).toMatch(/DimensionOrganizationType TILED_SPARSE: fqa reads TILED_FULL only/);
    expect(await openError(path.join(out, 'jpeg2000', 'slide.dcm'))).toMatch(/transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90 \(JPEG 2000 Lossless\) is not read by fqa/);
    expect(await openError(path.join(out, 'grid', 'slide.dcm'))).toMatch(/NumberOfFrames 23 does not match the TILED_FULL grid: 6x4 tiles/);
    expect(await openError(path.join(out, 'frames', 'slide.dcm'))).toMatch(/Basic Offset Table lists 23 frames but NumberOfFrames is 24/);
    expect(await openError(path.join(out, 'series', 'ct.dcm'))).toMatch(/not a VL Whole Slide Microscopy image \(SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2\)/);
    expect(await openError(path.join(out, 'series', 'label.dcm'))).toBeNull(); // a label opens its series' slide
    expect(await openError(path.join(out, 'series', 'implicit.dcm'))).toMatch(/transfer syntax 1\.2\.840\.10008\.1\.2 \(Implicit VR Little Endian\) is not read by fqa/);

    const good = readFileSync(seriesFile(0));
    const broken = path.join(work, 'broken');
    mkdirSync(broken, { recursive: true });
    const write = (name: string, bytes: Uint8Array) => {
      const file = path.join(broken, name);
      writeFileSync(file, bytes);
      return file;
    };
    // Cut inside the header, and inside the last frame.
    expect(await openError(write('cut-header.dcm', good.subarray(0, 700)))).toMatch(/truncated/);
    expect(await openError(write('cut-frames.dcm', good.subarray(0, good.length - 5000)))).toMatch(/beyond the end of the file|truncated/);
    // A sequence length far beyond the file (AcquisitionContextSequence, written empty by pydicom).
    const sq = good.indexOf(Buffer.from([0x40, 0x00, 0x55, 0x05, 0x53, 0x51]));
    expect(sq).toBeGreaterThan(132);
    const huge = Buffer.from(good);
    huge.writeUInt32LE(0x7ffffff0, sq + 8);
    expect(await openError(write('huge-length.dcm', huge))).toMatch(/sequence \(0040,0555\) declares 2147483632 bytes, beyond the end of the file \(\d+ bytes\): truncated or damaged/);
    // A forged tile size (Columns/Rows are 16-bit: 65535² would be a 12 GiB decode per frame).
    const tiles = Buffer.from(good);
    for (const element of [0x11, 0x10]) {
      const at = tiles.indexOf(Buffer.from([0x28, 0x00, element, 0x00, 0x55, 0x53, 0x02, 0x00]));
      expect(at).toBeGreaterThan(132);
      tiles.writeUInt16LE(65535, at + 8);
    }
    expect(await openError(write('huge-tiles.dcm', tiles))).toMatch(/tile size 65535x65535 is more than 268435456 px/);
    // No DICM magic after a .dcm name: not a slide format, said as such.
    expect(await openError(write('zeros.dcm', new Uint8Array(4096)))).toMatch(/neither a slide format|not a DICOM/);

    // Random damage to the header and the frame table: never a crash, a hang or a huge allocation.
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const pixelData = good.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
    let refused = 0;
    for (let n = 0; n < 60; n++) {
      const bad = Buffer.from(good);
      for (let k = 0; k < 4; k++) bad[132 + Math.floor(random() * (pixelData + 400 - 132))] = Math.floor(random() * 256);
      if ((await openError(write(`fuzz-${n}.dcm`, bad))) !== null) refused++;
    }
    expect(refused).toBeGreaterThan(0);
    // And to the JPEG frames: each decodes (JPEG tolerates some damage) or is one error line.
    for (let n = 0; n < 20; n++) {
      const bad = Buffer.from(good);
      for (let k = 0; k < 16; k++) bad[pixelData + 400 + Math.floor(random() * (good.length - pixelData - 400))] = Math.floor(random() * 256);
      await openError(write(`fuzz-frames-${n}.dcm`, bad));
    }
  });

  test('a folder of DICOM files is one slide per series; other DICOM files are listed as skipped', async () => {
    const folder = path.join(work, 'scanner-out');
    mkdirSync(path.join(folder, 'case1'), { recursive: true });
    for (const name of readdirSync(path.join(out, 'series'))) copyFileSync(path.join(out, 'series', name), path.join(folder, 'case1', name));
    // Scanners often write no extension: found by the DICM magic.
    copyFileSync(path.join(folder, 'case1', 'level1.dcm'), path.join(folder, 'case1', 'IM000002'));
    const report = path.join(work, 'scanner-report');
    const r = await fqa(folder, '--recursive', '--out', report);
    expect(r.code, r.stderr).toBe(0);
    const rows = readFileSync(path.join(report, 'summary.tsv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('slide\t'));
    expect(rows.map((row) => [path.relative(folder, row.split('\t')[0]!), row.split('\t')[1]])).toEqual([['case1/level0.dcm', 'dicom']]);
    const skipped = readFileSync(path.join(report, 'skipped.tsv'), 'utf8');
    expect(skipped).toMatch(/ct\.dcm\tDICOM but not a whole-slide image \(SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2\)/);
    expect(skipped).toMatch(/implicit\.dcm\tDICOM whole-slide image without a readable SeriesInstanceUID \(transfer syntax 1\.2\.840\.10008\.1\.2 \(Implicit VR Little Endian\)\)/);
    expect(skipped).not.toMatch(/level[12]\.dcm|label\.dcm|IM000002/);
    // A glob over the series' files is the same one slide.
    const globbed = await fqa(path.join(folder, 'case1', '*.dcm'), '--out', path.join(work, 'glob-report'), '--json');
    expect(globbed.code, globbed.stderr).toBe(0);
    expect(globbed.stdout.trim().split('\n').map((line) => path.relative(folder, JSON.parse(line).file))).toEqual(['case1/level0.dcm']);
  });
});
