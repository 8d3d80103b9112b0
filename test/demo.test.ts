// The README's main job: fqa-scan demo makes a synthetic slide with known defocus, scans it with
// the shipped model and reports the overlap with the truth.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { repoRoot } from './helpers/shared.js';

test('fqa-scan demo finds the defocused regions of its synthetic slide', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'fqa-demo-'));
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js'), 'demo', '--out', out, '--size', '3072'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const areaIou = Number(/known defocused area: IoU ([0-9.]+)/.exec(r.stdout)?.[1]);
  const patchIou = Number(/per patch \(truth at the patch centre\): IoU ([0-9.]+)/.exec(r.stdout)?.[1]);
  // Measured at 3072 px: area 0.691, per patch 0.471 (0.835 / 0.595 at the default 4096 px, where the
  // regions are larger against the 235 px patches); calling everything out of focus gives about 0.27.
  expect(areaIou).toBeGreaterThan(0.6);
  expect(patchIou).toBeGreaterThan(0.35);
  for (const f of ['demo-slide.tiff', 'demo-slide.scores.tsv', 'demo-slide.heatmap.png', 'demo-slide.overview.png', 'demo-slide.html', 'index.html', 'summary.tsv', 'demo-slide.geojson', 'demo-slide.json']) {
    expect(existsSync(path.join(out, f)), f).toBe(true);
  }
  // index.html links summary.tsv: one row, the demo slide's.
  expect(readFileSync(path.join(out, 'index.html'), 'utf8')).toMatch(/href="summary\.tsv"/);
  const rows = readFileSync(path.join(out, 'summary.tsv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  expect(rows).toHaveLength(2);
  expect(rows[1]).toMatch(/demo-slide\.tiff\t/);
  const json = JSON.parse(readFileSync(path.join(out, 'demo-slide.json'), 'utf8'));
  expect(json.vendor).toBe('generic-tiff');
  expect(json.slideMpp).toBeCloseTo(0.5, 6); // from the TIFF resolution tags
  expect(json.summary.verdict).toBe('fail');
  const geo = JSON.parse(readFileSync(path.join(out, 'demo-slide.geojson'), 'utf8'));
  expect(geo.features.some((f: { properties: { objectType: string } }) => f.properties.objectType === 'annotation')).toBe(true);
});
