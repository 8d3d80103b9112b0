// What fqa-scan takes as input, on real trees: real symlink loops, a real FIFO (mkfifo), hard
// links, output folders inside the input, hidden files, and resolutions that would need absurd
// up-sampling. Each case runs the real CLI (node packages/cli/bin/fqa-scan.js) in a temp folder.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { MAX_UPSAMPLING, OUTPUT_MARKER } from '@fqa/core';
import { hasShared, missing, repoRoot, shared } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const hasMkfifo = !missing(spawnSync('mkfifo', ['--version']).status === 0, 'mkfifo (coreutils)');

/**
 * Runs fqa-scan in `cwd`, asynchronously (a blocked worker misses vitest's own messages). The kill
 * after 100 s only turns a hang (a blocking open, an endless walk) into a failed test instead
 * of a stuck run; a healthy run of these tiny inputs takes seconds.
 */
function fqa(cwd: string, ...args: string[]): Promise<{ code: number | null; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args, '--view-size', '0'], { cwd, timeout: 100_000, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, stderr, timedOut: signal !== null }));
  });
}

/** The slide rows of an output folder's summary.tsv (header lines and the column line dropped). */
function summaryRows(out: string): string[][] {
  const lines = readFileSync(path.join(out, 'summary.tsv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  return lines.slice(1).map((l) => l.split('\t'));
}

/** Each slide row's (slide, verdict). */
function verdicts(out: string): [string, string][] {
  const lines = readFileSync(path.join(out, 'summary.tsv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const verdict = lines[0]!.split('\t').indexOf('verdict');
  return lines.slice(1).map((l) => [l.split('\t')[0]!, l.split('\t')[verdict]!]);
}

/** skipped.tsv as (file, reason) pairs. */
function skippedRows(out: string): [string, string][] {
  return readFileSync(path.join(out, 'skipped.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t') as [string, string]);
}

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('fqa-scan:') && !l.startsWith('fqa-scan: note:'));
}

/** A temp folder `in/` holding one real tissue tile as `in/tile.png` (PNG: no resolution, so --mpp 0.25). */
function inputTree(): { dir: string; input: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'fqa-inputs-'));
  const input = path.join(dir, 'in');
  mkdirSync(input);
  copyFileSync(shared('data', 'tiles', 'medium-nuclei-score-level0.png'), path.join(input, 'tile.png'));
  return { dir, input };
}

describe.skipIf(!hasShared)('fqa-scan inputs', () => {
  test('symlink loops under --recursive: the slide is scanned once and the walk ends, with or without --follow-links', async () => {
    const { dir, input } = inputTree();
    mkdirSync(path.join(input, 'sub'));
    symlinkSync('..', path.join(input, 'sub', 'up')); // ln -s .. sub/up
    symlinkSync('../sub', path.join(input, 'sub', 'again')); // a second loop
    for (const follow of [[], ['--follow-links']]) {
      const out = path.join(dir, `out${follow.length}`);
      const r = await fqa(dir, 'in', '--recursive', ...follow, '--mpp', '0.25', '--out', out);
      expect(r.timedOut, 'the walk never ended').toBe(false);
      expect([0, 1], r.stderr).toContain(r.code);
      expect(summaryRows(out).map((row) => row[0])).toEqual(['in/tile.png']);
      const links = skippedRows(out).filter(([file]) => /sub\/(up|again)$/.test(file));
      expect(links.map(([file]) => file)).toEqual(['in/sub/again', 'in/sub/up']);
      // Not followed unless asked; followed, each folder is still walked once.
      for (const [, reason] of links) expect(reason).toMatch(follow.length ? /reached again .*walked once/ : /link to a folder: not followed \(use --follow-links/);
    }
    // Without --recursive, --follow-links would do nothing: said at once rather than ignored.
    const alone = await fqa(dir, 'in', '--follow-links', '--out', path.join(dir, 'out-alone'));
    expect(alone.code).toBe(2);
    expect(errorLines(alone.stderr)).toEqual(['fqa-scan: --follow-links only applies to the walk of subfolders: give --recursive with it']);
  });

  test('a slide reached by two paths (a hard link) is scanned once: the same device and inode', async () => {
    const { dir, input } = inputTree();
    linkSync(path.join(input, 'tile.png'), path.join(input, 'same-tile.png'));
    const out = path.join(dir, 'out');
    const r = await fqa(dir, 'in', '--mpp', '0.25', '--out', out);
    expect([0, 1], r.stderr).toContain(r.code);
    expect(summaryRows(out)).toHaveLength(1);
    expect(skippedRows(out)).toContainEqual([expect.stringMatching(/tile\.png$/), 'named twice in the input: scanned once']);
  });

  test.skipIf(!hasMkfifo)('a FIFO named *.svs in a folder is skipped with the reason, never opened; the other slides are scanned', async () => {
    const { dir, input } = inputTree();
    expect(spawnSync('mkfifo', [path.join(input, 'pipe.svs')]).status).toBe(0);
    const out = path.join(dir, 'out');
    const r = await fqa(dir, 'in', '--mpp', '0.25', '--out', out);
    expect(r.timedOut, 'fqa-scan hung on the FIFO').toBe(false);
    expect([0, 1], r.stderr).toContain(r.code);
    expect(summaryRows(out).map((row) => row[0])).toEqual(['in/tile.png']);
    expect(skippedRows(out)).toContainEqual(['in/pipe.svs', 'a FIFO (named pipe): not a slide file, never opened']);
  });

  test.skipIf(!hasMkfifo)('a FIFO named on the command line is one error line (exit 3), not a hang; the slide beside it is scanned', async () => {
    const { dir, input } = inputTree();
    expect(spawnSync('mkfifo', [path.join(input, 'pipe.svs')]).status).toBe(0);
    const out = path.join(dir, 'out');
    const r = await fqa(dir, 'in/pipe.svs', 'in/tile.png', '--mpp', '0.25', '--out', out);
    expect(r.timedOut, 'fqa-scan hung on the FIFO').toBe(false);
    expect(r.code).toBe(3);
    expect(errorLines(r.stderr)).toEqual(['fqa-scan: in/pipe.svs: is a FIFO (named pipe), not a slide file']);
    expect(verdicts(out).map(([slide, verdict]) => [slide, verdict === 'error'])).toEqual([['in/pipe.svs', true], ['in/tile.png', false]]);
  });

  test.skipIf(!hasMkfifo)('--model /dev/zero, a FIFO or a folder is one error line before any slide (exit 3), never read until memory runs out', async () => {
    const { dir } = inputTree();
    expect(spawnSync('mkfifo', [path.join(dir, 'model.fqa')]).status).toBe(0);
    for (const [model, kind] of [['/dev/zero', 'a device'], ['model.fqa', 'a FIFO \\(named pipe\\)'], ['in', 'a folder']] as const) {
      const r = await fqa(dir, 'in/tile.png', '--mpp', '0.25', '--model', model, '--out', path.join(dir, 'out-model'));
      expect(r.timedOut, `fqa-scan hung on --model ${model}`).toBe(false);
      expect([r.code, errorLines(r.stderr)]).toEqual([3, [expect.stringMatching(new RegExp(`^fqa-scan: ${model}: model file is ${kind}, not a regular file$`))]]);
    }
  });

  test('dated output folders inside the input (in/qc-day1, in/qc-day2) are not scanned on the next run', async () => {
    const { dir } = inputTree();
    for (const day of ['qc-day1', 'qc-day2', 'qc-day3']) {
      const out = path.join('in', day);
      const r = await fqa(dir, 'in', '--recursive', '--mpp', '0.25', '--out', out);
      expect([0, 1], r.stderr).toContain(r.code);
      expect(existsSync(path.join(dir, out, OUTPUT_MARKER))).toBe(true);
      expect(summaryRows(path.join(dir, out)).map((row) => row[0])).toEqual(['in/tile.png']);
      // Each earlier night's folder is listed once, as a folder, not file by file.
      const outputs = skippedRows(path.join(dir, out)).filter(([, reason]) => reason === 'fqa output folder');
      expect(outputs.map(([file]) => file)).toEqual(['qc-day1', 'qc-day2'].filter((d) => d < day).map((d) => `in/${d}`));
      expect(skippedRows(path.join(dir, out)).filter(([file]) => file.startsWith('in/qc-'))).toHaveLength(outputs.length);
    }
  });

  test('an output folder written before the marker existed (summary.tsv beside fqa-assets/) is not scanned either', async () => {
    const { dir } = inputTree();
    const old = await fqa(dir, 'in', '--mpp', '0.25', '--out', 'in/qc-old');
    expect([0, 1], old.stderr).toContain(old.code);
    rmSync(path.join(dir, 'in', 'qc-old', OUTPUT_MARKER));
    const r = await fqa(dir, 'in', '--recursive', '--mpp', '0.25', '--out', 'in/qc-new');
    expect([0, 1], r.stderr).toContain(r.code);
    expect(summaryRows(path.join(dir, 'in', 'qc-new')).map((row) => row[0])).toEqual(['in/tile.png']);
    expect(skippedRows(path.join(dir, 'in', 'qc-new'))).toEqual([['in/qc-old', 'fqa output folder']]);
  });

  test('--out inside the input, named directly or through a symlink, is not scanned even without its marker', async () => {
    const { dir } = inputTree();
    const first = await fqa(dir, 'in', '--recursive', '--mpp', '0.25', '--out', 'in/qc');
    expect([0, 1], first.stderr).toContain(first.code);
    // As an output folder written before the marker existed: recognised as this run's --out by identity.
    rmSync(path.join(dir, 'in', 'qc', OUTPUT_MARKER));
    symlinkSync(path.join(dir, 'in', 'qc'), path.join(dir, 'qc-link'));
    const again = await fqa(dir, 'in', '--recursive', '--mpp', '0.25', '--out', 'qc-link');
    expect([0, 1], again.stderr).toContain(again.code);
    expect(again.stderr).toMatch(/up to date/);
    expect(summaryRows(path.join(dir, 'in', 'qc')).map((row) => row[0])).toEqual(['in/tile.png']);
    expect(skippedRows(path.join(dir, 'in', 'qc'))).toEqual([['in/qc', 'fqa output folder']]);
    // The direct spelling, once more without a marker.
    rmSync(path.join(dir, 'in', 'qc', OUTPUT_MARKER));
    const direct = await fqa(dir, 'in', '--recursive', '--mpp', '0.25', '--out', 'in/qc');
    expect(summaryRows(path.join(dir, 'in', 'qc'))).toHaveLength(1);
    expect(skippedRows(path.join(dir, 'in', 'qc'))).toEqual([['in/qc', 'fqa output folder']]);
    expect(direct.code).not.toBe(3);
  });

  test('hidden files and folders are listed in skipped.tsv with the reason; named explicitly, a hidden slide is scanned', async () => {
    const { dir, input } = inputTree();
    copyFileSync(path.join(input, 'tile.png'), path.join(input, '.tile-copy.png'));
    mkdirSync(path.join(input, '.snapshot'));
    copyFileSync(path.join(input, 'tile.png'), path.join(input, '.snapshot', 'old.png'));
    const out = path.join(dir, 'out');
    const r = await fqa(dir, 'in', '--recursive', '--mpp', '0.25', '--out', out);
    expect([0, 1], r.stderr).toContain(r.code);
    expect(summaryRows(out).map((row) => row[0])).toEqual(['in/tile.png']);
    expect(skippedRows(out)).toEqual([
      ['in/.snapshot', "hidden folder (name starts with '.'): not walked; name it to scan it"],
      ['in/.tile-copy.png', "hidden file (name starts with '.'): not scanned; name it to scan it"],
    ]);
    const named = await fqa(dir, 'in/.tile-copy.png', '--mpp', '0.25', '--out', path.join(dir, 'out-named'));
    expect([0, 1], named.stderr).toContain(named.code);
    expect(summaryRows(path.join(dir, 'out-named'))).toHaveLength(1);
  });

  test(`--mpp 50 (100x up-sampling for the 0.5 µm/px model) is refused at once with one line (exit 2)`, async () => {
    const { dir } = inputTree();
    const r = await fqa(dir, 'in', '--mpp', '50', '--out', 'out');
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([`fqa-scan: --mpp 50 µm/px is 100.0x coarser than the model's 0.5 µm/px; fqa up-samples at most ${MAX_UPSAMPLING}x (up-sampling adds no detail, only pixels to score)`]);
    // Within the bound (2x) it scans.
    const ok = await fqa(dir, 'in', '--mpp', '1', '--out', 'out-1');
    expect([0, 1], ok.stderr).toContain(ok.code);
  });

  test('a TIFF whose metadata says 50 µm/px is that slide\'s error row naming both resolutions; the batch goes on', async () => {
    const { dir, input } = inputTree();
    // 20 px/mm = 50 µm/px in the TIFF resolution tags, on a real tissue crop.
    await sharp(path.join(input, 'tile.png')).removeAlpha().extract({ left: 0, top: 0, width: 300, height: 300 }).tiff({ xres: 20, yres: 20 }).toFile(path.join(input, 'overview.tif'));
    const r = await fqa(dir, 'in/overview.tif', shared('data', 'slides', 'CMU-1-Small-Region.svs'), '--out', 'out');
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(3);
    expect(errorLines(r.stderr)).toEqual([
      `fqa-scan: in/overview.tif: not scanned: its resolution 50 µm/px (from the slide's metadata; --mpp overrides it) is 100.0x coarser than the model's 0.5 µm/px; fqa up-samples at most ${MAX_UPSAMPLING}x (up-sampling adds no detail, only pixels to score)`,
    ]);
    expect(new Map(verdicts(path.join(dir, 'out')))).toEqual(new Map([['in/overview.tif', 'error'], [shared('data', 'slides', 'CMU-1-Small-Region.svs'), 'pass']]));
  });
});
