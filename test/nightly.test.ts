// A nightly QC run as a lab runs it: the same folders scanned again and again into one report
// folder. Real tissue from CMU-1-Small-Region.svs, once sharp and once defocused, so each case can
// tell from the verdicts whether a slide was really scanned or a stale report was kept.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, gpuInfo, loadModel, nvidiaDriverPresent, openSource, scanSlide } from '@fqa/core';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-nightly-'));
const sharpTissue = path.join(work, 'fixtures', 'sharp.png');
const blurredTissue = path.join(work, 'fixtures', 'blurred.png');
const f1 = path.join(work, 'fixtures', 'f1.fqa');

/** Runs fqa-scan without blocking the test process (long synchronous runs starve vitest's RPC). */
function fqa(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // --mpp: the fixtures are cut from a 0.499 µm/px slide, and PNGs carry no resolution.
    const child = spawn(process.execPath, [bin, ...args, '--workers', '1', '--view-size', '512', '--mpp', '0.499'], { cwd: work });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** summary.tsv rows as objects keyed by column. */
function summary(out: string): Record<string, string>[] {
  const lines = readFileSync(path.join(out, 'summary.tsv'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#'));
  const columns = lines[0]!.split('\t');
  return lines.slice(1).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [columns[i], v])));
}

/** A folder tree with the given files copied (or written) into it. */
function tree(name: string, files: Record<string, string | Buffer>): string {
  const root = path.join(work, name);
  for (const [file, from] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    if (typeof from === 'string') copyFileSync(from, path.join(root, file));
    else writeFileSync(path.join(root, file), from);
  }
  return root;
}

describe.skipIf(!hasShared)('nightly runs', () => {
  beforeAll(async () => {
    mkdirSync(path.dirname(sharpTissue), { recursive: true });
    const source = await openSource(shared('data', 'slides', 'CMU-1-Small-Region.svs'));
    const [w, h] = [1536, 767]; // 46 tissue patches, none out of focus with the shipped model
    const region = Buffer.from(await source.readRegion(0, 300, 2200, w, h));
    source.close();
    await sharp(region, { raw: { width: w, height: h, channels: 3 } }).png().toFile(sharpTissue);
    await sharp(region, { raw: { width: w, height: h, channels: 3 } }).blur(3).png().toFile(blurredTissue);
    const r = spawnSync(process.execPath, [bin, 'convert-reference', shared('reference', 'focuslitenn', 'focuslitenn-1kernel.json'), '--arch', 'focuslitenn', '--out', f1], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  test('two slides with the same file name in different folders get two reports', async () => {
    const root = tree('same-name', { 'a/slide.png': sharpTissue, 'b/slide.png': blurredTissue });
    const out = path.join(work, 'same-name-report');
    const r = await fqa(path.join(root, 'a', 'slide.png'), path.join(root, 'b', 'slide.png'), '--out', out);
    expect(r.code, r.stderr).toBe(1); // b is defocused: fail
    const rows = summary(out);
    expect(rows.map((row) => [path.relative(root, row.slide!), row.verdict])).toEqual([['a/slide.png', 'pass'], ['b/slide.png', 'fail']]);
    const reports = rows.map((row) => row.report!);
    expect(reports[0]).toBe('slide');
    expect(reports[1]).toMatch(/^slide-[0-9a-f]{8}$/);
    for (const report of reports) expect(JSON.parse(readFileSync(path.join(out, `${report}.json`), 'utf8')).provenance.input).toMatch(/[ab]\/slide\.png$/);
    // Stable across runs: the second run finds both reports up to date under the same names.
    const again = await fqa(path.join(root, 'b', 'slide.png'), path.join(root, 'a', 'slide.png'), '--out', out);
    expect(again.stderr.match(/report up to date/g)).toHaveLength(2);
    expect(summary(out).map((row) => row.report)).toEqual(reports);
  });

  test('nothing to scan is an error (exit 3) that says why; --recursive finds slides in subfolders', async () => {
    const root = tree('nested', { 'day1/slide.png': sharpTissue, 'notes.txt': Buffer.from('x\n') });
    const out = path.join(work, 'nested-report');
    const none = await fqa(root, '--out', out);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/nothing to scan in .*nested: skipped 2 files .*day1 \(folder \(use --recursive/);
    expect(existsSync(path.join(out, 'summary.tsv'))).toBe(false);
    expect((await fqa(path.join(work, 'no-such-folder'), '--out', path.join(work, 'missing-report'))).stderr).toMatch(/no-such-folder: file not found/);

    const deep = await fqa(root, '--recursive', '--out', out);
    expect(deep.code, deep.stderr).toBe(0);
    expect(summary(out).map((row) => [path.relative(root, row.slide!), row.verdict])).toEqual([['day1/slide.png', 'pass']]);
    // The file that is not a slide is listed, with the reason, in skipped.tsv and on stderr.
    expect(deep.stderr).toMatch(/skipped 1 file that is not scanned: .*notes\.txt \(not a slide or image file name/);
    expect(readFileSync(path.join(out, 'skipped.tsv'), 'utf8')).toMatch(/^file\treason\n.*notes\.txt\tnot a slide/);
    // The report folder inside the scanned folder is never scanned itself.
    const inside = await fqa(root, '--recursive', '--out', path.join(root, 'report'));
    expect(inside.code, inside.stderr).toBe(0);
    expect((await fqa(root, '--recursive', '--out', path.join(root, 'report'))).stderr).not.toMatch(/report\/.*\.png/);
  });

  test('DICOM files that are not readable whole-slide series are listed as skipped in folders and one error line when named', async () => {
    // "DICM" after the preamble and nothing else: a DICOM file by its magic, with no File Meta.
    // (Real series, one slide each, are scanned in test/dicom.test.ts.)
    const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.alloc(64)]);
    const root = tree('dicom', { 'series/0001.dcm': dicom, 'series/IM0002': dicom, 'slide.png': sharpTissue });
    const out = path.join(work, 'dicom-report');
    const r = await fqa(root, '--recursive', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(summary(out).map((row) => path.relative(root, row.slide!))).toEqual(['slide.png']);
    const skipped = readFileSync(path.join(out, 'skipped.tsv'), 'utf8');
    expect(skipped).toMatch(/0001\.dcm\tDICOM: unreadable header \(no Transfer Syntax UID \(0002,0010\) in the File Meta group\)/);
    // No extension: found as DICOM by its magic, not listed as a wrong file name.
    expect(skipped).toMatch(/IM0002\tDICOM: unreadable header/);
    expect(skipped).not.toMatch(/OpenSlide/);
    const named = await fqa(path.join(root, 'series', '0001.dcm'), '--out', out);
    expect(named.code).toBe(3);
    expect(named.stderr).toMatch(/0001\.dcm: DICOM: no Transfer Syntax UID \(0002,0010\) in the File Meta group/);
    expect(named.stderr).not.toMatch(/OpenSlide >= 4/);
  });

  test('a changed threshold, limit or model rescans; --reuse keeps the old report; summary.tsv keeps every slide', async () => {
    const root = tree('options', { 'blurry.png': blurredTissue, 'later/sharp.png': sharpTissue });
    const out = path.join(work, 'options-report');
    const json = () => JSON.parse(readFileSync(path.join(out, 'blurry.json'), 'utf8'));
    expect((await fqa(path.join(root, 'blurry.png'), '--out', out)).code).toBe(1);
    expect(json().summary.verdict).toBe('fail');
    // A threshold above every score: rescanned, and now it passes.
    const higher = await fqa(path.join(root, 'blurry.png'), '--out', out, '--threshold', '100');
    expect(higher.stderr).not.toMatch(/up to date/);
    expect(higher.code).toBe(0);
    expect([json().summary.verdict, json().provenance.options.threshold]).toEqual(['pass', 100]);
    // Back to the model's threshold with --reuse: the threshold-100 report is kept, and said so.
    const reused = await fqa(path.join(root, 'blurry.png'), '--out', out, '--reuse');
    expect(reused.stderr).toMatch(/pass, report kept \(--reuse/);
    expect(json().provenance.options.threshold).toBe(100);
    // The 5 % rule from the command line: 100 % allowed out of focus passes the defocused slide.
    const limit = await fqa(path.join(root, 'blurry.png'), '--out', out, '--max-out-of-focus', '100');
    expect(limit.code, limit.stderr).toBe(0);
    expect(json().provenance.options).toMatchObject({ threshold: (await loadModel(DEFAULT_MODEL_PATH)).header.score.threshold, maxOutOfFocusPct: 100 });
    // --min-tissue 100: only patches that are all tissue are scored.
    await fqa(path.join(root, 'blurry.png'), '--out', out, '--min-tissue', '100');
    const strict = json();
    await fqa(path.join(root, 'blurry.png'), '--out', out, '--min-tissue', '0');
    expect(strict.summary.patchesScored).toBeLessThan(json().summary.patchesScored);
    // Another model: rescanned, and the JSON names it.
    const other = await fqa(path.join(root, 'blurry.png'), '--out', out, '--model', f1, '--threshold=-3');
    expect(other.stderr).not.toMatch(/up to date/);
    expect(json().provenance.model.sha256).toBe(createHash('sha256').update(readFileSync(f1)).digest('hex'));
    // A later run over another slide: summary.tsv lists both.
    await fqa(path.join(root, 'later', 'sharp.png'), '--out', out);
    expect(summary(out).map((row) => row.report)).toEqual(['blurry', 'sharp']);
    // The slide's content changed under the same name: rescanned.
    copyFileSync(sharpTissue, path.join(root, 'blurry.png'));
    expect((await fqa(path.join(root, 'blurry.png'), '--out', out, '--model', f1, '--threshold=-3')).stderr).not.toMatch(/up to date/);
  });

  test('exit codes: 0 pass, 1 fail or no-tissue, 3 unreadable (over the others), 2 usage', async () => {
    const root = tree('exits', { 'sharp.png': sharpTissue, 'blurry.png': blurredTissue, 'broken.svs': Buffer.from('not a slide\n') });
    const out = path.join(work, 'exits-report');
    expect((await fqa(path.join(root, 'sharp.png'), '--out', out)).code).toBe(0);
    expect((await fqa(path.join(root, 'blurry.png'), '--out', out)).code).toBe(1);
    expect((await fqa(shared('data', 'slides', 'small_HE_levels.tiff'), '--out', out)).code).toBe(1);
    expect((await fqa(path.join(root, 'sharp.png'), path.join(root, 'broken.svs'), '--out', out)).code).toBe(3);
    expect(summary(out).find((row) => row.report === 'broken')?.verdict).toBe('error');
    // The same unchanged broken file is not retried (it would fail the same way, and alert every night);
    // --exit-on all still counts it, --force tries it again.
    const kept = await fqa(path.join(root, 'broken.svs'), '--out', out);
    expect([kept.code, kept.stderr]).toEqual([0, expect.stringMatching(/broken\.svs: error, report up to date/)]);
    expect((await fqa(path.join(root, 'broken.svs'), '--out', out, '--exit-on', 'all')).code).toBe(3);
    expect((await fqa(path.join(root, 'broken.svs'), '--out', out, '--force')).stderr).toMatch(/broken\.svs: neither a slide format/);
    const typo = await fqa(path.join(root, 'sharp.png'), '--out', out, '--treshold', '3');
    expect([typo.code, typo.stderr.trim()]).toEqual([2, "fqa-scan: unknown option '--treshold'; did you mean --threshold? (see fqa-scan scan --help)"]);
    expect((await fqa(path.join(root, 'sharp.png'), '--out', out, '--force', '--reuse')).code).toBe(2);
  });

  test('each slide JSON records its provenance; the device notice is said once per run, never in rows', async () => {
    const root = tree('provenance', { 'one.png': sharpTissue, 'two.png': blurredTissue });
    const out = path.join(work, 'provenance-report');
    const r = await fqa(root, '--out', out);
    const model = await loadModel(DEFAULT_MODEL_PATH);
    const json = JSON.parse(readFileSync(path.join(out, 'one.json'), 'utf8'));
    const version = JSON.parse(readFileSync(path.join(repoRoot, 'packages', 'cli', 'package.json'), 'utf8')).version;
    expect(json.provenance).toMatchObject({
      fqa: version,
      input: path.join(root, 'one.png'),
      model: { name: model.header.name, file: DEFAULT_MODEL_PATH, sha256: createHash('sha256').update(readFileSync(DEFAULT_MODEL_PATH)).digest('hex') },
      options: { patchSize: model.header.patchSize, stride: model.header.stride, mpp: 0.499, threshold: model.header.score.threshold, minTissuePct: 50, maxOutOfFocusPct: 5 },
      device: expect.stringMatching(/^(cpu|cuda)$/),
    });
    expect(Date.now() - Date.parse(json.provenance.date)).toBeLessThan(10 * 60_000);
    expect(json.provenance.key).toMatch(/^[0-9a-f]{16}$/);
    const notes = r.stderr.split('\n').filter((l) => l.startsWith('fqa-scan: note:'));
    const gpu = gpuInfo();
    expect(notes).toHaveLength(gpu.compiled && gpu.deviceCount === 0 && nvidiaDriverPresent() ? 1 : 0);
    for (const row of summary(out)) expect(row.warnings).not.toMatch(/device|CUDA/);
    expect(spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).stdout).toBe(`fqa-scan ${version}\n`);
  });

  test('a cron job: reruns alert once per problem; deleted slides are missing; a moved folder is not rescanned', async () => {
    const root = tree('cron', { 'day1/sharp.png': sharpTissue, 'day1/blurry.png': blurredTissue, 'day1/other.png': sharpTissue });
    const out = path.join(work, 'cron-report');
    const night = (...extra: string[]) => fqa(root, '--recursive', '--out', out, ...extra);
    const byName = () => Object.fromEntries(summary(out).map((row) => [path.basename(row.slide!), row]));

    // Night 1: the blurry slide fails (exit 1); every row is new and says when it was scanned.
    const first = await night();
    expect(first.code, first.stderr).toBe(1);
    expect(Object.values(byName()).map((row) => [row.verdict, row.new])).toEqual([['fail', 'yes'], ['pass', 'yes'], ['pass', 'yes']]);
    for (const row of summary(out)) expect(Date.now() - Date.parse(row.scanned_at!)).toBeLessThan(10 * 60_000);
    // Each slide's usable-tissue mask (PNG and GeoJSON) for tiling pipelines: most of the sharp slide, little of the blurry one.
    const usable = (stem: string) => JSON.parse(readFileSync(path.join(out, `${stem}.json`), 'utf8')).usableTissue;
    expect(usable('sharp')).toMatchObject({ png: 'sharp.usable.png', geojson: 'sharp.usable.geojson', micronsPerPixel: expect.any(Number) });
    expect(usable('sharp').usablePctOfTissue).toBeGreaterThan(80);
    expect(usable('blurry').usablePctOfTissue).toBeLessThan(20);
    for (const f of ['sharp.usable.png', 'sharp.usable.geojson']) expect(existsSync(path.join(out, f)), f).toBe(true);

    // Night 2, nothing changed: exit 0, nothing new; --json still has a line per slide; --exit-on all keeps the old rule.
    const second = await night('--json');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr.match(/report up to date/g)).toHaveLength(3);
    expect(second.stdout.trim().split('\n').map((l) => JSON.parse(l).run)).toEqual(['kept', 'kept', 'kept']);
    expect(Object.values(byName()).map((row) => row.new)).toEqual(['no', 'no', 'no']);
    expect((await night('--exit-on', 'all')).code).toBe(1);

    // A slide deleted: its row stays, as missing. A broken slide added: exit 3 that night only.
    rmSync(path.join(root, 'day1', 'other.png'));
    writeFileSync(path.join(root, 'day1', 'broken.svs'), 'not a slide\n');
    const third = await night();
    expect(third.code, third.stderr).toBe(3);
    expect(byName()['other.png']?.verdict).toBe('missing');
    expect([byName()['broken.svs']?.verdict, byName()['broken.svs']?.new]).toEqual(['error', 'yes']);
    expect((await night()).code).toBe(0);

    // The folder moved into archive/: recognised by content, not rescanned, no second row.
    mkdirSync(path.join(root, 'archive'));
    renameSync(path.join(root, 'day1'), path.join(root, 'archive', 'day1'));
    const moved = await night();
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stderr.match(/up to date \(slide moved from/g)).toHaveLength(3);
    const rows = summary(out);
    expect(rows.map((row) => [path.relative(root, row.slide!), row.verdict])).toEqual([
      ['archive/day1/blurry.png', 'fail'], ['archive/day1/broken.svs', 'error'], ['archive/day1/sharp.png', 'pass'], ['day1/other.png', 'missing'],
    ]);
    expect(JSON.parse(readFileSync(path.join(out, 'sharp.json'), 'utf8')).provenance).toMatchObject({ input: path.join(root, 'archive', 'day1', 'sharp.png'), movedFrom: [path.join(root, 'day1', 'sharp.png')] });
    // The index lists the new columns and explains every verdict it can show.
    const index = readFileSync(path.join(out, 'index.html'), 'utf8');
    for (const word of ['<b>unknown</b>', '<b>missing</b>', 'new this run', 'scanned at', '<section id="cohort">', 'by slide format (scanner vendor)']) expect(index).toContain(word);
  });

  test('an image smaller than one patch is too-small (exit 1, once), not an unreadable error (exit 3, every night)', async () => {
    const root = tree('small', { 'sharp.png': sharpTissue });
    await sharp(sharpTissue).extract({ left: 0, top: 0, width: 120, height: 120 }).toFile(path.join(root, 'tiny.png'));
    const out = path.join(work, 'small-report');
    const first = await fqa(root, '--out', out);
    expect(first.code, first.stderr).toBe(1);
    const tiny = summary(out).find((row) => row.report === 'tiny');
    expect([tiny?.verdict, tiny?.warnings]).toEqual(['too-small', expect.stringMatching(/tiny\.png: 120x120 working pixels is smaller than one \d+ px patch: nothing to score/)]);
    const again = await fqa(root, '--out', out);
    expect([again.code, again.stderr]).toEqual([0, expect.stringMatching(/tiny\.png: too-small, report up to date/)]);
    expect(readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('<b>too-small</b>');
  });

  test('a share below 1 % is said to be percent, once', async () => {
    const root = tree('share', { 'sharp.png': sharpTissue });
    const r = await fqa(root, '--out', path.join(work, 'share-report'), '--max-out-of-focus', '0.05');
    expect(r.stderr.match(/--max-out-of-focus 0\.05 is 0\.05 %, not 5 %: shares are given in percent/g)).toHaveLength(1);
  });

  test('scanSlide() uses the shipped model when none is given', async () => {
    const r = await scanSlide(sharpTissue, { workers: 1, mpp: 0.499 });
    expect(r.model).toMatchObject({ name: (await loadModel(DEFAULT_MODEL_PATH)).header.name, file: DEFAULT_MODEL_PATH });
    expect(r.summary.verdict).toBe('pass');
  });
});
