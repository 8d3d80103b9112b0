// End-to-end slide scans: the CLI on a real Aperio slide and on bad inputs, and the API on a real
// tissue region whose right half was defocused.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, openSource, scanImage, scanSlide } from '@fqa/core';
import { openSlide } from '@fqa/native';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-scan-'));
const model = path.join(work, 'f1.fqa');
const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!hasShared)('fqa-scan on slides', () => {
  beforeAll(() => {
    const r = fqa('convert-reference', shared('reference', 'focuslitenn', 'focuslitenn-1kernel.json'), '--arch', 'focuslitenn', '--out', model);
    expect(r.code, r.stderr).toBe(0);
  });

  test('a real Aperio slide: every report file parses', async () => {
    const out = path.join(work, 'report');
    const r = fqa(svs, '--model', model, '--out', out, '--threshold=-3', '--workers', '2');
    expect(r.code, r.stderr).toBe(0);
    const tsv = readFileSync(path.join(out, 'CMU-1-Small-Region.scores.tsv'), 'utf8').trim().split('\n');
    expect(tsv[0]).toBe('x\ty\twidth\theight\tscore\ttissue_pct');
    const rows = tsv.slice(1).map((l) => l.split('\t').map(Number));
    expect(rows.length).toBeGreaterThan(50);
    for (const [x, y, w, h, score, tissue] of rows) {
      expect(x! + w!).toBeLessThanOrEqual(2220);
      expect(y! + h!).toBeLessThanOrEqual(2967);
      expect([w, h]).toEqual([235, 235]);
      expect(Number.isFinite(score)).toBe(true);
      // Percent, like every share in fqa's files: at least the default --min-tissue of 50 %.
      expect(tissue).toBeGreaterThanOrEqual(50);
      expect(tissue).toBeLessThanOrEqual(100);
    }
    // QuPath GeoJSON: a FeatureCollection of detections with a focus_score, classified.
    const geo = JSON.parse(readFileSync(path.join(out, 'CMU-1-Small-Region.geojson'), 'utf8'));
    expect(geo.type).toBe('FeatureCollection');
    const detections = geo.features.filter((f: { properties: { objectType: string } }) => f.properties.objectType === 'detection');
    expect(detections).toHaveLength(rows.length);
    for (const f of detections) {
      expect(f.geometry.type).toBe('Polygon');
      expect(f.geometry.coordinates[0]).toHaveLength(5);
      expect(typeof f.properties.measurements.focus_score).toBe('number');
      expect(f.properties.measurements.tissue_pct).toBeGreaterThanOrEqual(50);
      expect(['In focus', 'Out of focus']).toContain(f.properties.classification.name);
    }
    // Heatmap (transparent background) at the thumbnail's aspect; the overview figure holds the
    // thumbnail and the heatmap side by side below a title band, with a legend band under them.
    const heat = await sharp(path.join(out, 'CMU-1-Small-Region.heatmap.png')).metadata();
    const overview = await sharp(path.join(out, 'CMU-1-Small-Region.overview.png')).metadata();
    expect([heat.channels, heat.hasAlpha]).toEqual([4, true]);
    expect(overview.width).toBeGreaterThan(2 * heat.width!);
    expect(overview.height).toBeGreaterThan(heat.height! + 100);
    expect(Math.abs(heat.width! / heat.height! - 2220 / 2967)).toBeLessThan(0.01);
    const { data: corner } = await sharp(path.join(out, 'CMU-1-Small-Region.heatmap.png')).extract({ left: 0, top: 0, width: 1, height: 1 }).raw().toBuffer({ resolveWithObject: true });
    expect(corner[3]).toBe(0); // glass in the corner: transparent
    const json = JSON.parse(readFileSync(path.join(out, 'CMU-1-Small-Region.json'), 'utf8'));
    expect(json.vendor).toBe('aperio');
    expect(json.slideMpp).toBeCloseTo(0.499, 3);
    expect(json.summary.patchesScored).toBe(rows.length);
    expect(json.summary.verdict).toBe('pass');
    const summary = readFileSync(path.join(out, 'summary.tsv'), 'utf8').replace(/\n$/, '').split('\n');
    expect(summary.filter((l) => l.startsWith('#')).map((l) => l.split(':')[0])).toEqual(['# fqa 0.1.0', '# model', '# options', '# date', '# rows']);
    const cols = summary.find((l) => l.startsWith('slide\t'))!.split('\t');
    const row = summary[summary.length - 1]!.split('\t');
    expect(row).toHaveLength(cols.length);
    expect(row[cols.indexOf('verdict')]).toBe('pass');
    // The JSON's shares are the summary row's, in percent and named with the unit; no fraction is left.
    expect(json.summary.tissuePct.toFixed(2)).toBe(row[cols.indexOf('tissue_pct')]);
    expect(json.summary.outOfFocusPctOfTissue.toFixed(2)).toBe(row[cols.indexOf('out_of_focus_pct_of_tissue')]);
    expect(json.summary.penPctOfSlide.toFixed(2)).toBe(row[cols.indexOf('artefact_pct_of_slide')]);
    expect(json.provenance.options).toMatchObject({ minTissuePct: 50, maxOutOfFocusPct: 5 });
    expect(JSON.stringify(json)).not.toMatch(/Fraction"|"(minTissue|maxOutOfFocus)"/);
    // Resumable: the second run skips the slide, --force scans it again.
    const again = fqa(svs, '--model', model, '--out', out, '--threshold=-3');
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/pass, report up to date/);
    expect(readFileSync(path.join(out, 'summary.tsv'), 'utf8')).toMatch(/\tpass\t/);
    // The same report as an earlier fqa wrote it, its shares fractions under the old names (labs keep
    // such folders): still up to date, and read back in percent, so the --json line and summary.tsv
    // say what this fqa's report said.
    const reportFile = path.join(out, 'CMU-1-Small-Region.json');
    const { tissuePct, penPctOfSlide, outOfFocusPctOfTissue, ...otherSummary } = json.summary;
    const { minTissuePct, maxOutOfFocusPct, ...otherOptions } = json.provenance.options;
    const old = {
      ...json,
      provenance: { ...json.provenance, options: { ...otherOptions, minTissue: minTissuePct / 100, maxOutOfFocus: maxOutOfFocusPct / 100 } },
      summary: { tissueFraction: tissuePct / 100, penFraction: penPctOfSlide / 100, ...otherSummary, outOfFocusFraction: outOfFocusPctOfTissue / 100 },
    };
    writeFileSync(reportFile, JSON.stringify(old, null, 1));
    const artefactBefore = row[cols.indexOf('artefact_pct_of_slide')];
    const kept = fqa(svs, '--model', model, '--out', out, '--threshold=-3', '--json');
    expect(kept.stderr).toMatch(/pass, report up to date/);
    const line = JSON.parse(kept.stdout);
    expect(line.run).toBe('kept');
    expect(line.summary.tissuePct).toBeCloseTo(tissuePct, 9);
    expect(line.summary.penPctOfSlide).toBeCloseTo(penPctOfSlide, 9);
    expect(line.summary.outOfFocusPctOfTissue).toBeCloseTo(outOfFocusPctOfTissue, 9);
    expect(line.provenance.options).toMatchObject({ minTissuePct: 50, maxOutOfFocusPct: 5 });
    expect(kept.stdout).not.toMatch(/Fraction"|"(minTissue|maxOutOfFocus)"/);
    const keptRow = readFileSync(path.join(out, 'summary.tsv'), 'utf8').replace(/\n$/, '').split('\n').pop()!.split('\t');
    expect(keptRow[cols.indexOf('artefact_pct_of_slide')]).toBe(artefactBefore);
    expect(fqa(svs, '--model', model, '--out', out, '--threshold=-3', '--force').stderr).not.toMatch(/up to date/);
  });

  test('bad inputs: each gets a one-line error in stderr and summary.tsv; good slides are reported; exit 3', () => {
    const dir = path.join(work, 'mixed');
    mkdirSync(dir);
    copyFileSync(svs, path.join(dir, 'good.svs'));
    const bytes = readFileSync(svs);
    writeFileSync(path.join(dir, 'truncated.svs'), bytes.subarray(0, 100_000));
    writeFileSync(path.join(dir, 'text.svs'), 'not a slide\n');
    writeFileSync(path.join(dir, 'zero.svs'), '');
    const out = path.join(work, 'mixed-report');
    const r = fqa(dir, path.join(dir, 'missing.svs'), '--model', model, '--out', out);
    expect(r.code).toBe(3);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('fqa-scan:') && !l.startsWith('fqa-scan: note:'));
    expect(errors).toHaveLength(4);
    expect(r.stderr).toMatch(/missing\.svs: file not found/);
    expect(r.stderr).toMatch(/zero\.svs: empty file/);
    expect(r.stderr).toMatch(/text\.svs: neither a slide format OpenSlide can read nor an image/);
    expect(r.stderr).toMatch(/truncated\.svs: /);
    const summary = readFileSync(path.join(out, 'summary.tsv'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#')).slice(1);
    expect(summary).toHaveLength(5);
    expect(summary.filter((l) => l.includes('\terror\t'))).toHaveLength(4);
    expect(existsSync(path.join(out, 'good.scores.tsv'))).toBe(true);
  });

  test('small_HE_levels.tiff (4-level deflate pyramid, synthetic colour blocks): reports parse, no tissue', async () => {
    const out = path.join(work, 'small');
    const r = fqa(shared('data', 'slides', 'small_HE_levels.tiff'), '--out', out);
    expect(r.code, r.stderr).toBe(1); // no-tissue is not a pass: a nightly run must look at it
    const json = JSON.parse(readFileSync(path.join(out, 'small_HE_levels.json'), 'utf8'));
    expect([json.vendor, json.width, json.height]).toEqual(['generic-tiff', 300, 250]);
    // Saturated red, green and blue blocks are marker-pen colours, not stained tissue.
    expect(json.summary.verdict).toBe('no-tissue');
    expect(json.warnings.join(' ')).toMatch(/no resolution \(mpp\)/);
    expect(readFileSync(path.join(out, 'small_HE_levels.scores.tsv'), 'utf8')).toBe('x\ty\twidth\theight\tscore\ttissue_pct\n');
    expect(JSON.parse(readFileSync(path.join(out, 'small_HE_levels.geojson'), 'utf8'))).toEqual({ type: 'FeatureCollection', features: [] });
    const heat = await sharp(path.join(out, 'small_HE_levels.heatmap.png')).metadata();
    expect([heat.width, heat.height]).toEqual([300, 250]);
    // --mpp overrides the missing metadata: at 0.25 µm/px the 0.5 µm/px model reads level 1 (downsample 2).
    const withMpp = await scanSlide(shared('data', 'slides', 'small_HE_levels.tiff'), { model: DEFAULT_MODEL_PATH, mpp: 0.25, patchSize: 64, stride: 32 });
    expect([withMpp.level, withMpp.level0PerWorkingPixel, withMpp.slideMpp, withMpp.mpp]).toEqual([1, 2, 0.25, 0.5]);
    expect(withMpp.warnings.join(' ')).not.toMatch(/no resolution/);
  });

  test('defocusing half of a real tissue region makes that half score blurrier', async () => {
    const source = await openSource(svs);
    const w = 1200;
    const h = 900;
    const region = await source.readRegion(0, 600, 1200, w, h);
    source.close();
    const half = w / 2;
    const left = await sharp(Buffer.from(region), { raw: { width: w, height: h, channels: 3 } }).extract({ left: 0, top: 0, width: half, height: h }).raw().toBuffer();
    const right = await sharp(Buffer.from(region), { raw: { width: w, height: h, channels: 3 } }).extract({ left: half, top: 0, width: half, height: h }).blur(3).raw().toBuffer();
    const file = path.join(work, 'half-blurred.png');
    await sharp({ create: { width: w, height: h, channels: 3, background: '#fff' } })
      .composite([{ input: left, raw: { width: half, height: h, channels: 3 }, left: 0, top: 0 }, { input: right, raw: { width: half, height: h, channels: 3 }, left: half, top: 0 }])
      .png()
      .toFile(file);
    const r = await scanSlide(file, { model, patchSize: 235, stride: 64, minTissue: 0 });
    const sides = { left: [] as number[], right: [] as number[] };
    for (let row = 0; row < r.rows; row++)
      for (let col = 0; col < r.columns; col++) {
        const x = col * r.stride;
        if (x + r.patchSize <= half) sides.left.push(r.scores[row * r.columns + col]!);
        else if (x >= half) sides.right.push(r.scores[row * r.columns + col]!);
      }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    expect(sides.left.length).toBeGreaterThan(5);
    expect(sides.right.length).toBeGreaterThan(5);
    expect(mean(sides.right)).toBeGreaterThan(mean(sides.left) + 1);
    // Not just the means: every defocused patch scores blurrier than the median sharp patch.
    const sortedLeft = [...sides.left].sort((a, b) => a - b);
    expect(Math.min(...sides.right)).toBeGreaterThan(sortedLeft[Math.floor(sortedLeft.length / 2)]!);
  });
});

describe.skipIf(!hasShared)('scanSlide / scanImage in one process', () => {
  test('several scans, buffers, progress and cancellation; slides open after a pool has run', async () => {
    const model = DEFAULT_MODEL_PATH;
    const progress: number[] = [];
    const first = await scanSlide(svs, { model, workers: 2, onProgress: (p) => progress.push(p.regionsDone) });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[progress.length - 1]).toBe(progress.length);
    // The addon is loaded in the pool's worker threads too; opening and scanning again afterwards
    // must still work (per-environment addon state).
    // Direct JPEG-tile reader, bands read top to bottom: the slide's 10 x 13 tiles of 240 px are
    // each decoded exactly once (the tissue mask reads them all, the bands hit the cache).
    expect(first.reader).toMatchObject({ reader: 'direct', tilesDecoded: 130, tilesRedecoded: 0 });
    expect(first.reader.tileCacheHits).toBeGreaterThan(0);
    const again = await scanSlide(svs, { model, workers: 2 });
    expect(Array.from(again.scores)).toEqual(Array.from(first.scores));
    const slide = await openSlide(svs);
    expect(slide.info().vendor).toBe('aperio');
    slide.close();
    const png = readFileSync(shared('data', 'tcga-focus', 'TCGA@Focus_patch_i_9651_j_81514.png'));
    const fromBuffer = await scanImage(png, { model });
    const fromPath = await scanImage(shared('data', 'tcga-focus', 'TCGA@Focus_patch_i_9651_j_81514.png'), { model });
    expect(fromBuffer.file).toBe('image buffer');
    expect(Array.from(fromBuffer.scores)).toEqual(Array.from(fromPath.scores));
    const controller = new AbortController();
    controller.abort();
    await expect(scanSlide(svs, { model, signal: controller.signal })).rejects.toThrow(/cancelled/);
    await expect(scanSlide(svs, { model, patchSize: 0 })).rejects.toThrow(/Expected integer between 8 and 4096 for patchSize but received 0/);
  });
});
