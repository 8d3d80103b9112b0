// Property-based fuzzing (fast-check) of the TypeScript parsers that read untrusted input: the
// model file parser and the CLI's option parsers. Whatever the bytes or text, the outcome is a
// valid value or the parser's own error class with a message, never another exception.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, ModelFileError, UsageError, parseIntegerOption, parseModelFile, parseNumberOption } from '../dist/index.js';

const shipped = readFileSync(DEFAULT_MODEL_PATH);
const HEADER_AT = 48;
const headerLength = shipped.readUInt32LE(12);
const headerJson = JSON.parse(shipped.toString('utf8', HEADER_AT, HEADER_AT + headerLength)) as Record<string, unknown>;
const weights = shipped.subarray(HEADER_AT + headerLength);

/** parseModelFile's outcome: 'ok', or the error (rethrown when it is not a ModelFileError). */
function outcome(bytes: Uint8Array): 'ok' | ModelFileError {
  try {
    parseModelFile(bytes, 'fuzzed.fqa');
    return 'ok';
  } catch (err) {
    if (err instanceof ModelFileError) return err;
    throw err;
  }
}

/** A file with this header JSON and the shipped weights, its header checksum valid. */
function fileWithHeader(header: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const pre = Buffer.from(shipped.subarray(0, HEADER_AT));
  pre.writeUInt32LE(json.length, 12);
  createHash('sha256').update(json).digest().copy(pre, 16);
  return Buffer.concat([pre, json, weights]);
}

describe('model file parser', () => {
  test('the shipped model parses (the properties below start from it)', () => {
    expect(outcome(shipped)).toBe('ok');
  });

  test('arbitrary bytes, with or without the signature: a ModelFileError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), (bytes, signed) => {
        const input = signed ? Buffer.concat([shipped.subarray(0, 12), bytes]) : bytes;
        expect(outcome(input)).toBeInstanceOf(ModelFileError);
      }),
      { numRuns: 2000 },
    );
  });

  test('any change to any byte of a valid file (flip, overwrite, truncation) is caught', () => {
    fc.assert(
      fc.property(fc.nat({ max: shipped.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.boolean(), (at, xor, truncate) => {
        const bytes = truncate ? shipped.subarray(0, at) : Buffer.from(shipped);
        if (!truncate) bytes[at]! ^= xor;
        expect(outcome(bytes)).toBeInstanceOf(ModelFileError);
      }),
      { numRuns: 3000 },
    );
  });

  test('header fields replaced by arbitrary JSON (checksum made valid): a model or a ModelFileError', () => {
    const fields = [...Object.keys(headerJson), 'focuslitenn.kernels', 'normalization.std', 'normalization.mean', 'score.threshold', 'tensors.0.offset', 'tensors.0.shape', 'provenance.source'];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.jsonValue(), (field, value) => {
        const header = structuredClone(headerJson) as Record<string, unknown>;
        const keys = field.split('.');
        let target = header as Record<string, unknown>;
        for (const k of keys.slice(0, -1)) target = target[k] as Record<string, unknown>;
        target[keys[keys.length - 1]!] = value;
        const result = outcome(fileWithHeader(header));
        // What loads has every header field in range.
        if (result === 'ok') {
          const m = parseModelFile(fileWithHeader(header));
          expect(m.header.patchSize).toBeGreaterThanOrEqual(8);
          expect(m.header.micronsPerPixel === null || (m.header.micronsPerPixel >= 0.05 && m.header.micronsPerPixel <= 50)).toBe(true);
          expect(m.header.score.threshold === null || Number.isFinite(m.header.score.threshold)).toBe(true);
          for (const s of m.header.normalization.std) expect(s).toBeGreaterThanOrEqual(1e-3);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('CLI option parsers', () => {
  test('parseIntegerOption: an integer in range or a UsageError naming the option', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer().map(String), fc.double().map(String)), (text) => {
        try {
          const v = parseIntegerOption(text, 'workers', 1, 256)!;
          expect(Number.isInteger(v) && v >= 1 && v <= 256).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(UsageError);
          expect((err as Error).message).toMatch(/for workers but received/);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('parseNumberOption: a finite number in range or a UsageError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.double().map(String)), (text) => {
        try {
          const v = parseNumberOption(text, 'mpp', { range: { min: 0.05, max: 50 } })!;
          expect(v >= 0.05 && v <= 50).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(UsageError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
