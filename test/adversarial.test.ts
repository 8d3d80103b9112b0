// Adversarial and careless inputs (issue 14): nothing aborts the process, nothing is scored as if it
// were fine. Each test names the case it covers; each failed before its fix (exit 134 aborts, exit
// 70 stack traces, or a silently wrong answer).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, EONSS_LAYERS, encodeModelFile, parseModelFile, scanImage, scanSlide, scoreImage, type ModelHeader } from '@fqa/core';
import { openSlide, tileCache } from '@fqa/native';
import { repoRoot } from './helpers/shared.js';
import { damageTile, endTileEarly, makeNoiseSlide, setTileByteCount } from './helpers/slides.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-adversarial-'));
const at = (name: string) => path.join(work, name);

/**
 * Runs Node in a child process and collects its output. Asynchronous: a scan can run for a minute,
 * and a synchronous spawn would block the test worker (vitest's RPC times out).
 */
function run(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const fqa = (...args: string[]) => run([bin, ...args]);

/** Runs an ES module snippet in a fresh Node process (so an abort is an exit code, not a dead test runner). */
const node = (code: string) => run(['--input-type=module', '-e', code]);

/** Summary rows (no provenance, no column header). */
const summaryRows = (dir: string) => readFileSync(path.join(dir, 'summary.tsv'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#')).slice(1);

/** A default-model file with its header edited (re-encoded, so its checksums are valid). */
function modelWith(file: string, edit: (h: ModelHeader) => void): string {
  const m = parseModelFile(readFileSync(DEFAULT_MODEL_PATH));
  const { tensors: entries, weightsByteLength: _l, weightsSha256: _s, ...header } = structuredClone(m.header);
  edit(header as ModelHeader);
  writeFileSync(file, encodeModelFile(header, entries.map((t) => ({ name: t.name, shape: t.shape, data: m.tensors.get(t.name)! }))));
  return file;
}

async function noisePng(file: string, width: number, height: number, options: { density?: number } = {}) {
  let img = sharp({ create: { width, height, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).linear([0.4, 0.35, 0.4], [150, 70, 120]);
  if (options.density) img = img.withMetadata({ density: options.density });
  await (file.endsWith('.jpg') ? img.jpeg() : img.png()).toFile(file);
  return file;
}

// A 6144² slide: 3 x 3 regions of ~2048 px, so workers are busy while the main thread reads on.
const big = at('noise-6k.tiff');
const bigDamaged = at('noise-6k-damaged.tiff');
const GARBAGE_TILE = 12 * 24 + 20; // level 0 is 24 x 24 tiles; this one lies in the 6th region
beforeAll(async () => {
  await makeNoiseSlide(big, 6144);
  copyFileSync(big, bigDamaged);
  damageTile(bigDamaged, GARBAGE_TILE);
}, 120_000);

describe('1. a scan that fails or is cancelled while workers are inside the native sweep', () => {
  test('a garbage tile mid-scan (2 workers): an error row and exit 3, not an abort (was exit 134)', async () => {
    const out = at('garbage-report');
    const r = await fqa(bigDamaged, '--out', out, '--workers', '2', '--stride', '16');
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`noise-6k-damaged\\.tiff: JPEG tile ${GARBAGE_TILE} of level 0 is damaged`));
    expect(summaryRows(out)).toEqual([expect.stringMatching(/\terror\t.*JPEG tile/)]);
  });

  test('an AbortSignal fired mid-scan rejects with "cancelled" and the process lives on (was exit 134)', async () => {
    const r = await node(`
      import { DEFAULT_MODEL_PATH, scanSlide } from '@fqa/core';
      const controller = new AbortController();
      try {
        await scanSlide(${JSON.stringify(big)}, { model: DEFAULT_MODEL_PATH, workers: 2, stride: 16, signal: controller.signal, onProgress: () => controller.abort() });
        console.log('finished');
      } catch (err) {
        console.log('rejected: ' + err.message);
      }`);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rejected: .*noise-6k\.tiff: scan cancelled/);
  });
});

describe('2. pixel limits come from the header, before any decode', () => {
  /** A PNG whose header declares 45,000² px; the data is cut short (the check must not need it). */
  function hugePng(file: string) {
    const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
    const crc = (b: Buffer) => { let c = 0xffffffff; for (const x of b) c = crcTable[(c ^ x) & 255]! ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
    const chunk = (type: string, data: Buffer) => {
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      body.copy(out, 4);
      out.writeUInt32BE(crc(body), 8 + data.length);
      return out;
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(45000, 0);
    ihdr.writeUInt32BE(45000, 4);
    ihdr[8] = 8; // 8-bit
    ihdr[9] = 2; // RGB
    writeFileSync(file, Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0xda, 0x63, 0x00])), chunk('IEND', Buffer.alloc(0))]));
    return file;
  }

  test('a 45,000² PNG is refused by scan and by score, naming its size; the next image is still scored', async () => {
    const png = hugePng(at('huge.png'));
    const small = await noisePng(at('small.png'), 300, 300);
    const scan = await fqa(png, '--out', at('huge-report'));
    expect(scan.code, scan.stderr).toBe(3);
    expect(scan.stderr).toMatch(/huge\.png: 45000x45000 pixels is more than a plain image may have \(268435456\)/);
    const score = await fqa('score', png, small);
    expect(score.code, score.stderr).toBe(3);
    expect(score.stderr).toMatch(/huge\.png: 45000x45000 pixels is more than/);
    expect(score.stdout).toMatch(/small\.png\t-?\d/);
  });
});

describe('3. every error inside a batch is an error row or a one-line usage error, never exit 70', () => {
  test('--patch 8 --stride 1: millions of detections stream into the GeoJSON (one string would overflow)', async () => {
    const slide = at('noise-1600.tiff');
    const out = at('dense-report');
    await makeNoiseSlide(slide, 1600);
    const r = await fqa(slide, '--out', out, '--patch', '8', '--stride', '1', '--workers', '2');
    expect([0, 1], r.stderr).toContain(r.code);
    const geojson = path.join(out, 'noise-1600.geojson');
    // Larger than the longest string V8 can hold (2^29 - 24 characters).
    expect(statSync(geojson).size).toBeGreaterThan(2 ** 29);
    const text = readFileSync(geojson);
    expect(text.subarray(0, 40).toString()).toBe('{"type":"FeatureCollection","features":[');
    expect(text.subarray(text.length - 4).toString()).toBe('}]}\n');
    expect(summaryRows(out)).toEqual([expect.stringMatching(/^\S*noise-1600\.tiff\t/)]);
  }, 300_000);

  test('a model with micronsPerPixel 0 is one line and exit 3 before any slide', async () => {
    const model = modelWith(at('mpp0.fqa'), (h) => { h.micronsPerPixel = 0; });
    const r = await fqa(big, '--model', model, '--out', at('mpp0-report'));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr.trim().split('\n').filter((l) => !l.includes('note:'))).toEqual([expect.stringMatching(/mpp0\.fqa: micronsPerPixel must be null or a number between 0\.05 and 50, got 0$/)]);
  });

  test('--out that is a file is a usage error before any slide', async () => {
    const file = at('not-a-folder');
    writeFileSync(file, 'x');
    for (const out of [file, path.join(file, 'sub')]) {
      const r = await fqa(big, '--out', out);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--out .*not-a-folder.*: is a file, not a folder/);
    }
  });

  test('score: an image smaller than the model\'s smallest window is an error for that image only', async () => {
    const tiny = await noisePng(at('tiny.png'), 4, 4);
    const small = await noisePng(at('small2.png'), 300, 300);
    const r = await fqa('score', tiny, small);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/tiny\.png: 4x4 pixels is smaller than the model's smallest window \(5 px\)/);
    expect(r.stdout).toMatch(/small2\.png\t-?\d/);
  });
});

describe('4. damaged JPEG data is an error naming slide and tile, as OpenSlide says', () => {
  test('a tile whose data ends early (libjpeg only warns, and fills grey): the scan rejects, as OpenSlide does', async () => {
    const slide = at('noise-2k-corrupt.tiff');
    await makeNoiseSlide(slide, 2048);
    const tile = 4 * 8 + 4;
    endTileEarly(slide, tile);
    const s = await openSlide(slide);
    await expect(s.readRegion(0, 1024, 1024, 256, 256, 'openslide')).rejects.toThrow(/Corrupt JPEG data: premature end of data segment/);
    await expect(s.readRegion(0, 1024, 1024, 256, 256, 'direct')).rejects.toThrow(new RegExp(`noise-2k-corrupt\\.tiff: JPEG tile ${tile} of level 0 is damaged`));
    s.close();
    await expect(scanSlide(slide, { model: DEFAULT_MODEL_PATH, workers: 1 })).rejects.toThrow(new RegExp(`JPEG tile ${tile} of level 0 is damaged`));
  });
});

describe('5. model files that would flip a verdict or score ±Inf/NaN', () => {
  test('a model that scores NaN (negative GDN beta) is an error, not background that passes', async () => {
    const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
    const shapes: Record<string, number[]> = { conv1: [2, 3, 5, 5], conv2: [2, 2, 5, 5], conv3: [2, 2, 5, 5], conv4: [2, 2, 3, 3], st2_fc1: [2, 2, 1, 1], st2_fc2: [1, 2, 1, 1] };
    for (const L of EONSS_LAYERS) {
      const shape = shapes[L.name]!;
      const n = shape.reduce((a, b) => a * b, 1);
      tensors.push({ name: `${L.name}.weight`, shape, data: Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 0.1) });
      tensors.push({ name: `${L.name}.bias`, shape: [shape[0]!], data: new Float32Array(shape[0]!) });
      if (L.gdn) {
        tensors.push({ name: `${L.gdn}.gamma`, shape: [shape[0]!, shape[0]!], data: new Float32Array(shape[0]! ** 2).fill(0.1) });
        tensors.push({ name: `${L.gdn}.beta`, shape: [shape[0]!], data: new Float32Array(shape[0]!).fill(-1) });
      }
    }
    const file = at('eonss-nan.fqa');
    writeFileSync(file, encodeModelFile({
      architecture: 'eonss', name: 'nan', patchSize: 235, stride: 128,
      normalization: { mean: [0, 0, 0], std: [1, 1, 1] }, score: { scale: 'test', threshold: 0 }, micronsPerPixel: null,
      eonss: { layers: EONSS_LAYERS }, provenance: { source: 'test', license: null, createdBy: 'test', createdAt: '2026-01-01' },
    }, tensors));
    const png = await noisePng(at('eonss.png'), 300, 300);
    await expect(scoreImage(png, { model: file })).rejects.toThrow(/eonss\.png scored with .*eonss-nan\.fqa: the model gives a non-finite score \(NaN\)/);
    await expect(scanImage(png, { model: file, minTissue: 0 })).rejects.toThrow(/the model gives a non-finite score \(NaN\)/);
  });
});

describe('6. resolution only from a plausible range; CMYK refused', () => {
  test('a plain image tagged 300 dpi is read at its pixels (no 84.7 µm/px, no 169x upsampling)', async () => {
    const jpg = await noisePng(at('dpi300.jpg'), 512, 512, { density: 300 });
    const r = await scanSlide(jpg, { model: DEFAULT_MODEL_PATH, workers: 1 });
    expect(r.slideMpp).toBeNull();
    expect(r.level0PerWorkingPixel).toBe(1);
    expect(r.warnings.join(' ')).toMatch(/no resolution \(mpp\)/);
  });

  test('a TIFF strip at 20,000 px/cm is read as 0.5 µm/px (sharp reports pixels per inch whatever the unit)', async () => {
    const tif = at('strip-cm.tif');
    await sharp({ create: { width: 600, height: 600, channels: 3, background: '#b04a90' } }).tiff({ xres: 2000, yres: 2000, resolutionUnit: 'cm' }).toFile(tif);
    const r = await scanSlide(tif, { model: DEFAULT_MODEL_PATH, workers: 1 });
    expect(r.slideMpp).toBeCloseTo(0.5, 6);
  });

  test('--mpp 99 is a usage error', async () => {
    const r = await fqa(big, '--mpp', '99', '--out', at('mpp99-report'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Expected number between 0\.05 and 50 for mpp but received '99'/);
  });

  test('a CMYK JPEG is refused with a clear error', async () => {
    const cmyk = at('cmyk.jpg');
    await sharp({ create: { width: 300, height: 300, channels: 3, background: '#b04a90' } }).toColourspace('cmyk').jpeg().toFile(cmyk);
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    await expect(scoreImage(cmyk, { model: DEFAULT_MODEL_PATH })).rejects.toThrow(/cmyk\.jpg: CMYK image \(a print colour space\): convert it to RGB first/);
  });
});

describe('7. memory stays bounded', () => {
  test('a TileByteCounts entry of ~4 GiB is an error before any allocation (was 4.3 GB RSS)', async () => {
    const slide = at('noise-2k-bytecount.tiff');
    await makeNoiseSlide(slide, 2048);
    setTileByteCount(slide, 36, 0xffffff00);
    const r = await node(`
      import { DEFAULT_MODEL_PATH, scanSlide } from '@fqa/core';
      try { await scanSlide(${JSON.stringify(slide)}, { model: DEFAULT_MODEL_PATH, workers: 1 }); console.log('finished'); }
      catch (err) { console.log('rejected: ' + err.message); }
      console.log('maxRSS ' + process.resourceUsage().maxRSS);`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rejected: .*JPEG tile 36 of level 0 claims 4294967040 bytes at offset \d+, beyond the end of the \d+-byte file/);
    const maxRssKiB = Number(/maxRSS (\d+)/.exec(r.stdout)![1]);
    expect(maxRssKiB).toBeLessThan(1024 * 1024);
  });

  test('--workers beyond the cores is capped, with a warning', async () => {
    const png = await noisePng(at('workers.png'), 600, 600);
    const r = await scanImage(png, { model: DEFAULT_MODEL_PATH, workers: 256 });
    expect(r.warnings.join(' ')).toMatch(/workers 256 capped at the \d+ cores/);
  });

  test('one tile-cache budget per process: a multi-band scan decodes each tile once within it, and evicts under a small one', async () => {
    const defaults = tileCache();
    expect(defaults.budgetBytes).toBe(768 * 2 ** 20);
    try {
      const whole = await scanSlide(big, { model: DEFAULT_MODEL_PATH, workers: 2 });
      expect(whole.reader).toMatchObject({ reader: 'direct', tilesRedecoded: 0 });
      // 3 x 3 regions in 3 bands: the tiles a band shares with the next stay cached.
      expect(whole.reader.tileCacheHits).toBeGreaterThan(0);
      tileCache(4 * 2 ** 20); // ~21 tiles of 256² RGB: far less than a band
      const squeezed = await scanSlide(big, { model: DEFAULT_MODEL_PATH, workers: 2 });
      expect(squeezed.reader.tilesRedecoded).toBeGreaterThan(0);
      expect(Array.from(squeezed.scores)).toEqual(Array.from(whole.scores));
      expect(tileCache().cachedBytes).toBe(0); // both slides closed: nothing held
    } finally {
      tileCache(defaults.budgetBytes);
    }
  });
});

