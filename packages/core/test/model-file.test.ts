// Model files are data only and validated on load: every malformed variant is a clear error.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ModelFileError, encodeModelFile, loadModel, parseModelFile, readModelFile, convertReference, scoreImage } from '../dist/index.js';
import type { ModelHeader } from '../dist/index.js';

type HeaderIn = Omit<ModelHeader, 'tensors' | 'weightsByteLength' | 'weightsSha256'>;

function header(k: number): HeaderIn {
  return {
    architecture: 'focuslitenn',
    name: 'test',
    patchSize: 64,
    stride: 32,
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] },
    score: { scale: 'arbitrary', threshold: null },
    micronsPerPixel: null,
    focuslitenn: { kernels: k, convKernel: 7, convStride: 1, convPad: 0 },
    provenance: { source: 'unit test', license: null, createdBy: 'test', createdAt: '2026-01-01T00:00:00Z' },
  };
}

function tensors(k: number) {
  const t = [
    { name: 'conv.weight', shape: [k, 3, 7, 7], data: Float32Array.from({ length: k * 147 }, (_, i) => Math.cos(i) * 0.05) },
    { name: 'conv.bias', shape: [k], data: Float32Array.from({ length: k }, (_, i) => i) },
  ];
  if (k > 1) t.push({ name: 'fc.weight', shape: [1, k, 1, 1], data: Float32Array.from({ length: k }, () => 0.5) }, { name: 'fc.bias', shape: [1], data: Float32Array.of(0.1) });
  return t;
}

/** Version 2 layout: 16-byte preamble, SHA-256 of the header, header JSON, weights. */
const HEADER_AT = 48;

/** Rewrites a file's header JSON (and the length and header checksum) without touching the weights. */
function withHeader(bytes: Buffer, edit: (h: Record<string, unknown>) => void, fixSha = true): Buffer {
  const len = bytes.readUInt32LE(12);
  const h = JSON.parse(bytes.toString('utf8', HEADER_AT, HEADER_AT + len)) as Record<string, unknown>;
  const weights = bytes.subarray(HEADER_AT + len);
  edit(h);
  if (fixSha && h.weightsSha256 === undefined) h.weightsSha256 = createHash('sha256').update(weights).digest('hex');
  const json = Buffer.from(JSON.stringify(h));
  const pre = Buffer.from(bytes.subarray(0, HEADER_AT));
  pre.writeUInt32LE(json.length, 12);
  createHash('sha256').update(json).digest().copy(pre, 16);
  return Buffer.concat([pre, json, weights]);
}

/** Replaces the header text itself (same length), keeping the checksum valid. */
function withHeaderText(bytes: Buffer, edit: (text: string) => string): Buffer {
  const len = bytes.readUInt32LE(12);
  const b = Buffer.from(bytes);
  const text = Buffer.from(edit(b.toString('utf8', HEADER_AT, HEADER_AT + len)));
  text.copy(b, HEADER_AT);
  createHash('sha256').update(text).digest().copy(b, 16);
  return b;
}

describe('model file', () => {
  const good = encodeModelFile(header(2), tensors(2));

  test('round-trips header and tensors exactly', () => {
    const m = parseModelFile(good);
    expect(m.header.focuslitenn).toEqual({ kernels: 2, convKernel: 7, convStride: 1, convPad: 0 });
    expect(m.header.weightsByteLength).toBe(4 * (2 * 147 + 2 + 2 + 1));
    for (const t of tensors(2)) expect(Array.from(m.tensors.get(t.name)!)).toEqual(Array.from(t.data));
  });

  test.each([
    ['no signature', () => Buffer.from('hello world, not a model'), /no FQAMODEL signature/],
    ['zero bytes', () => Buffer.alloc(0), /no FQAMODEL signature/],
    ['future version', () => { const b = Buffer.from(good); b.writeUInt32LE(99, 8); return b; }, /version 99 is not supported/],
    ['truncated weights', () => good.subarray(0, good.length - 10), /truncated/],
    ['truncated header', () => good.subarray(0, 40), /truncated: header/],
    ['corrupted weight byte', () => { const b = Buffer.from(good); b[b.length - 3]! ^= 0xff; return b; }, /SHA-256/],
    ['unknown architecture', () => withHeader(good, (h) => { h.architecture = 'resnet18'; }), /unknown architecture 'resnet18'/],
    ['wrong tensor shape', () => withHeader(good, (h) => { (h.focuslitenn as { kernels: number }).kernels = 3; }), /shape \[2, 3, 7, 7\] but focuslitenn needs \[3, 3, 7, 7\]/],
    ['missing tensor', () => withHeader(good, (h) => { h.tensors = (h.tensors as { name: string }[]).filter((t) => t.name !== 'fc.bias'); }), /missing tensor 'fc.bias'/],
    ['bad patch size', () => withHeader(good, (h) => { h.patchSize = 0; }), /patchSize must be an integer/],
    ['bad std', () => withHeader(good, (h) => { h.normalization = { mean: [0, 0, 0], std: [1, 0, 1] }; }), /normalization.std/],
    ['header not JSON', () => withHeaderText(good, (text) => '{{{{' + text.slice(4)), /not valid JSON/],
    ['version 1 (no header checksum)', () => { const b = Buffer.from(good); b.writeUInt32LE(1, 8); return b; }, /version 1 is not supported .*no header checksum/],
    ['micronsPerPixel 0', () => withHeader(good, (h) => { h.micronsPerPixel = 0; }), /micronsPerPixel must be null or a number between 0.05 and 50, got 0/],
    ['micronsPerPixel 300 dpi', () => withHeader(good, (h) => { h.micronsPerPixel = 84.7; }), /micronsPerPixel must be null or a number between/],
    ['threshold 3e38', () => withHeader(good, (h) => { h.score = { scale: 'x', threshold: 3e38 }; }), /score.threshold must be null or a number between/],
    ['threshold as text', () => withHeader(good, (h) => { h.score = { scale: 'x', threshold: '2.5' }; }), /score.threshold/],
    ['std 1e-38', () => withHeader(good, (h) => { h.normalization = { mean: [0, 0, 0], std: [1e-38, 1, 1] }; }), /normalization.std must be 3 numbers between 0.001 and 10/],
    ['mean 1e30', () => withHeader(good, (h) => { h.normalization = { mean: [1e30, 0, 0], std: [1, 1, 1] }; }), /normalization.mean/],
    ['name not a string', () => withHeader(good, (h) => { h.name = 42; }), /name must be a string/],
    ['provenance missing', () => withHeader(good, (h) => { delete h.provenance; }), /provenance must hold/],
    // Found by parsers.fuzz.test.ts: String() of such a value throws a TypeError, not a ModelFileError.
    ['architecture {"toString": false}', () => withHeader(good, (h) => { h.architecture = { toString: false }; }), /unknown architecture '\{"toString":false\}'/],
    ['patchSize {"toString": false}', () => withHeader(good, (h) => { h.patchSize = { toString: false }; }), /patchSize must be an integer .*got \{"toString":false\}/],
    ['kernels {"toString": false}', () => withHeader(good, (h) => { (h.focuslitenn as Record<string, unknown>).kernels = { valueOf: false, toString: false }; }), /focuslitenn.kernels must be an integer/],
  ])('rejects %s', (_name, make, message) => {
    expect(() => parseModelFile(make(), 'm.fqa')).toThrow(ModelFileError);
    expect(() => parseModelFile(make(), 'm.fqa')).toThrow(message);
  });

  test('one flipped bit anywhere in the preamble, header checksum or header is caught', () => {
    const end = HEADER_AT + good.readUInt32LE(12);
    // Every byte of the header region, one bit each (the bit rotates so every bit position is hit).
    for (let i = 8; i < end; i++) {
      const b = Buffer.from(good);
      b[i]! ^= 1 << (i % 8);
      expect(() => parseModelFile(b, 'm.fqa'), `byte ${i}`).toThrow(ModelFileError);
    }
  });

  test('rejects finite weights no trained model has (they overflow scores to ±Inf)', () => {
    for (const bad of [3e38, -3e38, 1e7]) {
      const t = tensors(1);
      t[0]!.data[5] = bad;
      expect(() => parseModelFile(encodeModelFile(header(1), t))).toThrow(/beyond the ±1000000 any trained weight has/);
    }
  });

  test('rejects NaN and Inf weights', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const t = tensors(1);
      t[0]!.data[10] = bad;
      expect(() => parseModelFile(encodeModelFile(header(1), t))).toThrow(/non-finite value .* at index 10/);
    }
  });

  test('missing and unreadable files are ModelFileErrors', async () => {
    await expect(readModelFile('/nonexistent/model.fqa')).rejects.toThrow(/model file not found/);
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-model-'));
    await expect(readModelFile(dir)).rejects.toThrow(ModelFileError);
  });

  test('normalization from the model file is applied (64 px variant, mean/std) and matches the reference kernel', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-model-'));
    const file = path.join(dir, 'm.fqa');
    writeFileSync(file, good);
    const model = await loadModel(file);
    // A synthetic PNG made with sharp, 150x100.
    const sharp = (await import('sharp')).default;
    const raw = Buffer.from(Array.from({ length: 150 * 100 * 3 }, (_, i) => (i * 37) % 256));
    const png = await sharp(raw, { raw: { width: 150, height: 100, channels: 3 } }).png().toBuffer();
    const fast = await scoreImage(png, { model });
    const ref = await scoreImage(png, { model, kernel: 'reference' });
    expect([fast.cols, fast.rows, fast.stride, fast.patchSize]).toEqual([3, 2, 32, 64]);
    fast.scores.forEach((s, i) => expect(Math.abs(s - ref.scores[i]!)).toBeLessThan(1e-4));
    // Without normalization the scores differ: the header's mean/std really is used.
    const plain = encodeModelFile({ ...header(2), normalization: { mean: [0, 0, 0], std: [1, 1, 1] } }, tensors(2));
    writeFileSync(file, plain);
    const other = await scoreImage(png, { model: await loadModel(file) });
    expect(Math.abs(other.mean - fast.mean)).toBeGreaterThan(1e-3);
  });

  test('an image smaller than the patch is scored as one window over the whole image', async () => {
    const sharp = (await import('sharp')).default;
    const raw = Buffer.from(Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 13) % 256));
    const png = await sharp(raw, { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer();
    const bytes = convertReference(
      { 'conv.weight': { shape: [1, 3, 7, 7], data: Array.from({ length: 147 }, (_, i) => Math.sin(i)) }, 'conv.bias': { shape: [1], data: [0.3] } },
      { architecture: 'focuslitenn' },
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-model-'));
    writeFileSync(path.join(dir, 'small.fqa'), bytes);
    const model = await loadModel(path.join(dir, 'small.fqa'));
    const r = await scoreImage(png, { model });
    const ref = await scoreImage(png, { model, kernel: 'reference' });
    expect([r.rows, r.cols]).toEqual([1, 1]);
    expect(Math.abs(r.scores[0]! - ref.scores[0]!)).toBeLessThan(1e-4);
  });

  test('convert-reference rejects unexpected or missing tensors', () => {
    expect(() => convertReference({ 'conv.weight': { shape: [1, 3, 7, 7], data: new Array(147).fill(0) } }, { architecture: 'focuslitenn' })).toThrow(/missing tensor 'conv.bias'/);
    expect(() =>
      convertReference({ 'conv.weight': { shape: [1, 3, 7, 7], data: new Array(147).fill(0) }, 'conv.bias': { shape: [1], data: [0] }, extra: { shape: [1], data: [0] } }, { architecture: 'focuslitenn' }),
    ).toThrow(/unexpected tensors for focuslitenn: extra/);
  });
});
