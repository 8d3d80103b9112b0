// End-to-end: the fqa-scan CLI as a user runs it (node packages/cli/bin/fqa-scan.js = npx fqa-scan).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { hasShared, repoRoot, shared, tcgaImages } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-cli-'));

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('help lists the commands; unknown commands are usage errors (exit 2)', () => {
  const help = fqa('--help');
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/score/);
  expect(help.stdout).toMatch(/convert-reference/);
  const bad = fqa('frobnicate');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/unknown command 'frobnicate' \(see fqa-scan --help\)/);
  // A mistyped command gets a suggestion, as a mistyped option does.
  const typo = fqa('trian');
  expect(typo.code).toBe(2);
  expect(typo.stderr).toMatch(/unknown command 'trian'; did you mean train\?/);
});

test('info reports the native build', () => {
  const r = fqa('info', '--json');
  expect(r.code).toBe(0);
  const info = JSON.parse(r.stdout) as { cpu: { supported: string[] } };
  expect(info.cpu.supported).toContain('reference');
});

describe.skipIf(!hasShared)('with the published reference weights', () => {
  const f1 = path.join(work, 'f1.fqa');
  const outOfFocus = shared('data', 'tcga-focus', tcgaImages['tcga-out-of-focus']);
  const inFocus = shared('data', 'tcga-focus', tcgaImages['tcga-in-focus']);

  test('convert-reference then score --json gives the authors\' -1.548026', () => {
    const conv = fqa('convert-reference', shared('reference', 'focuslitenn', 'focuslitenn-1kernel.json'), '--arch', 'focuslitenn', '--out', f1);
    expect(conv.code, conv.stderr).toBe(0);
    const r = fqa('score', outOfFocus, '--model', f1, '--patch', '235', '--stride', '128', '--json');
    expect(r.code, r.stderr).toBe(0);
    const [result] = JSON.parse(r.stdout) as { file: string; mean: number; rows: number; cols: number; patchSize: number; stride: number; scores: number[] }[];
    expect(Math.abs(result!.mean - -1.548026)).toBeLessThan(1e-4);
    expect([result!.rows, result!.cols, result!.patchSize, result!.stride, result!.scores.length]).toEqual([7, 7, 235, 128, 49]);
    const golden = JSON.parse(readFileSync(shared('reference', 'focuslitenn', 'golden-scores.json'), 'utf8'));
    result!.scores.forEach((s, i) => expect(Math.abs(s - golden.models['focuslitenn-1kernel']['tcga-out-of-focus'].patch_scores[i])).toBeLessThan(1e-4));
  });

  test('patch and stride default to the model file\'s (235 / 128); plain output has one line per image', () => {
    const r = fqa('score', inFocus, outOfFocus, '--model', f1);
    expect(r.code, r.stderr).toBe(0);
    // A header names the model, its score scale and threshold; then a column header and one line per image.
    const [comment, columns, ...lines] = r.stdout.trim().split('\n');
    expect(comment).toMatch(/^# model .*; threshold none \(no verdict\)/);
    expect(columns).toBe('file\tmean_score\tverdict\tpatches');
    expect(lines).toHaveLength(2);
    expect(lines[0]!.split('\t')[2]).toBe('unknown');
    expect(Number(lines[0]!.split('\t')[1])).toBeCloseTo(-5.203037, 4);
    expect(Number(lines[1]!.split('\t')[1])).toBeCloseTo(-1.548026, 4);
  });

  test('the 64 px variant converts and scores (7x7 stride 1, no padding)', () => {
    const f64 = path.join(work, 'f64.fqa');
    expect(fqa('convert-reference', shared('reference', 'focuslitenn', 'focuslitenn-10kernel.json'), '--arch', 'focuslitenn', '--patch', '64', '--out', f64).code).toBe(0);
    const fast = JSON.parse(fqa('score', outOfFocus, '--model', f64, '--json').stdout)[0];
    const ref = JSON.parse(fqa('score', outOfFocus, '--model', f64, '--json', '--kernel', 'reference').stdout)[0];
    expect([fast.patchSize, fast.stride, fast.rows, fast.cols]).toEqual([64, 32, 31, 31]);
    fast.scores.forEach((s: number, i: number) => expect(Math.abs(s - ref.scores[i])).toBeLessThan(2e-4));
  });

  test('bad inputs: one clear line on stderr and a non-zero exit code', () => {
    const text = path.join(work, 'notes.png');
    writeFileSync(text, 'this is not an image');
    const cases: [string[], number, RegExp][] = [
      [['score', path.join(work, 'missing.png'), '--model', f1], 3, /missing\.png: file not found/],
      [['score', text, '--model', f1], 3, /notes\.png: not a readable image/],
      [['score', outOfFocus, '--model', text], 3, /not an fqa model file/],
      [['score', outOfFocus, '--model', path.join(work, 'nope.fqa')], 3, /model file not found/],
      [['score', outOfFocus, '--model', f1, '--stride', '0'], 2, /Expected integer between 1 and 4096 for stride but received 0/],
      [['score', '--model', f1], 2, /no images given/],
      [['convert-reference', shared('reference', 'focuslitenn', 'eonss.json'), '--arch', 'focuslitenn', '--out', path.join(work, 'x.fqa')], 3, /missing tensor 'conv.weight'/],
    ];
    for (const [args, code, message] of cases) {
      const r = fqa(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });

  test('score exits 1 for an out-of-focus image (the QC failure code), 0 when every image is in focus', () => {
    const blurry = fqa('score', inFocus, outOfFocus, '--mpp', '0.5');
    expect(blurry.code, blurry.stderr).toBe(1);
    expect(blurry.stdout).toMatch(/\tout-of-focus\t/);
    const sharp = fqa('score', inFocus, '--mpp', '0.5');
    expect(sharp.code, sharp.stderr).toBe(0);
    expect(sharp.stdout).toMatch(/\tin-focus\t/);
  });

  test('a bad image among good ones is reported and the good ones are still scored', () => {
    const text = path.join(work, 'bad.jpg');
    writeFileSync(text, '');
    const r = fqa('score', inFocus, text, outOfFocus, '--model', f1);
    expect(r.code).toBe(3);
    expect(r.stdout.trim().split('\n').filter((l) => l.startsWith(path.dirname(inFocus)))).toHaveLength(2);
    expect(r.stderr).toMatch(/bad\.jpg/);
  });
});

test('demo sizes beyond the image library\'s limit are usage errors at once, not an internal error after a minute', () => {
  const r = fqa('demo', '--size', '16384', '--out', path.join(work, 'demo-too-big'));
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/Expected integer between 1024 and 8192 for size but received 16384/);
});

describe.skipIf(!hasShared)('a slide named twice', () => {
  test('is scanned once and listed in skipped.tsv with the reason', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-twice-'));
    copyFileSync(shared('data', 'tiles', 'medium-nuclei-score-level0.png'), path.join(dir, 'tile.png'));
    symlinkSync(path.join(dir, 'tile.png'), path.join(dir, 'link.png'));
    const out = path.join(dir, 'report');
    const r = spawnSync(process.execPath, [bin, 'tile.png', './tile.png', path.join(dir, 'tile.png'), 'link.png', '--mpp', '0.25', '--out', out], { encoding: 'utf8', cwd: dir });
    expect([0, 1]).toContain(r.status);
    const rows = readFileSync(path.join(out, 'summary.tsv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(rows.slice(1)).toHaveLength(1);
    const skipped = readFileSync(path.join(out, 'skipped.tsv'), 'utf8');
    expect(skipped.match(/named twice in the input: scanned once/g)).toHaveLength(3);
  });
});
