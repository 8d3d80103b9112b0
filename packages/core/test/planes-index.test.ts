// zstacks/planes.csv, the accuracy suite's index of the through-focus series: the real file parses to
// its known series, and a damaged copy is one clear error naming the file and line, never NaN SRCCs.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { readPlanes } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

describe.skipIf(!hasShared)('zstacks/planes.csv', () => {
  const real = readFileSync(shared('data', 'zstacks', 'planes.csv'), 'utf8');

  test('the real index: three series, 17 / 19 / 13 planes, numbered 1..n', () => {
    const rows = readPlanes(shared('data'));
    const count = (series: string) => rows.filter((r) => r.series === series).map((r) => r.plane);
    expect(count('urjc-adipose-s1')).toEqual(Array.from({ length: 17 }, (_, i) => i + 1));
    expect(count('urjc-adipose-s2')).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(count('isl-phase-contrast')).toHaveLength(13);
    expect(rows.every((r) => r.tenengrad > 0)).toBe(true);
  });

  const damaged = (text: string) => {
    const root = mkdtempSync(path.join(tmpdir(), 'fqa-planes-'));
    mkdirSync(path.join(root, 'zstacks'));
    writeFileSync(path.join(root, 'zstacks', 'planes.csv'), text);
    return () => readPlanes(root);
  };
  const lines = real.trim().split(/\r?\n/); // the file has CRLF line ends

  test.each([
    ['a wrong header', ['file,plane', ...lines.slice(1)].join('\n'), /expected the header/],
    ['an empty plane', lines.map((l, i) => (i === 3 ? l.replace(/,\d+,([\d.]+)$/, ',,$1') : l)).join('\n'), /line 4 is not/],
    ['a non-numeric tenengrad', lines.map((l, i) => (i === 5 ? l.replace(/[\d.]+$/, 'abc') : l)).join('\n'), /line 6 is not/],
    ['a truncated row', [...lines, 'urjc-adipose-s1/plane18.png,urjc'].join('\n'), new RegExp(`line ${lines.length + 1} is not`)],
    ['a path out of zstacks/', [...lines, '../slides/x.png,s,1,2.0'].join('\n'), /a file inside zstacks/],
  ])('%s is one clear error naming the file and line', (_, text, message) => {
    expect(damaged(text)).toThrow(message);
    expect(damaged(text)).toThrow(/planes\.csv/);
  });

  test('a missing index says so', () => {
    expect(() => readPlanes(mkdtempSync(path.join(tmpdir(), 'fqa-planes-')))).toThrow(/planes\.csv: cannot read the z-stack index \(ENOENT\)/);
  });
});
