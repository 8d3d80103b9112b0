// fqa-scan search at the command line: bad inputs stop it with one line and the usage exit code
// (2) or the unreadable-input one (3), before any work; the search itself is tested in
// packages/core/test/search.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { repoRoot } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-cli-search-'));

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneLine(r: { stderr: string }, pattern: RegExp) {
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
}

describe('fqa-scan search: bad inputs', () => {
  const out = path.join(work, 'out');

  test('unknown dataset', () => {
    const r = fqa('search', '--dataset', 'imagenet', '--out', out);
    expect(r.code).toBe(2);
    oneLine(r, /^fqa-scan: Expected one of focuspath, bioimage, deepfocus, tcga, csv, synthetic for dataset but received 'imagenet' of type string$/m);
  });

  test('zero epochs, and other out-of-range settings', () => {
    const base = ['search', '--dataset', 'synthetic', '--source', 'tile.png', '--out', out];
    const zero = fqa(...base, '--epochs', '0');
    expect(zero.code).toBe(2);
    oneLine(zero, /^fqa-scan: Expected integer between 1 and 100000 for epochs but received 0 of type number$/m);
    const odd = fqa(...base, '--channels', '5');
    expect(odd.code).toBe(2);
    oneLine(odd, /Expected an even number for channels but received 5/);
    const portion = fqa(...base, '--train-portion', '1');
    expect(portion.code).toBe(2);
    oneLine(portion, /Expected number between 0.01 and 0.99 for train-portion but received '1'/);
  });

  test('corrupt or missing genotype JSON', () => {
    const corrupt = path.join(work, 'genotype.json');
    writeFileSync(corrupt, '{"reduce": [["max_pool_3x3", 0], ["sep_conv_3x3"');
    const r = fqa('search', '--dataset', 'synthetic', '--source', 'tile.png', '--genotype', corrupt, '--out', out);
    expect(r.code).toBe(3);
    oneLine(r, new RegExp(`^fqa-scan: ${corrupt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a genotype file \\(invalid JSON: `, 'm'));
    const wrongOp = path.join(work, 'op.json');
    writeFileSync(wrongOp, JSON.stringify({ reduce: [['conv_3x3', 0], ['max_pool_3x3', 1]], concat: [2] }));
    const op = fqa('search', '--dataset', 'synthetic', '--source', 'tile.png', '--genotype', wrongOp, '--out', out);
    expect(op.code).toBe(3);
    oneLine(op, /op\.json: genotype\.reduce\[0\]: unknown op "conv_3x3" \(expected max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5\)/);
    const missing = fqa('search', '--dataset', 'synthetic', '--source', 'tile.png', '--genotype', path.join(work, 'nope.json'), '--out', out);
    expect(missing.code).toBe(3);
    oneLine(missing, /nope\.json: cannot read the genotype file \(ENOENT\)/);
  });

  test('a source that is not an image', () => {
    const r = fqa('search', '--dataset', 'synthetic', '--source', path.join(work, 'missing.png'), '--epochs', '1', '--out', out);
    expect(r.code).toBe(3);
    // After the progress line, one error line naming the file.
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('fqa-scan:'))).toEqual([`fqa-scan: ${path.join(work, 'missing.png')}: file not found`]);
  });
});
