// Scanning with a deep model: DenseNet-13 (converted from the published weights) through the scan's
// worker pool on a real Aperio slide, with the usual reports; every scored patch must equal the
// model scored directly on the same pixels (read back with OpenSlide) on both backends.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { createScorer, loadModel, loadOnnxRuntime, scanSlide, scoreImage } from '@fqa/core';
import { openSlide } from '@fqa/native';
import { hasShared, missing, repoRoot, shared } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-deep-'));
const model = path.join(work, 'densenet13.fqa');
const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');
const onnx = !missing(loadOnnxRuntime() !== null, 'onnxruntime-node (npm install onnxruntime-node)');

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!hasShared)('scans with DenseNet-13', () => {
  beforeAll(() => {
    const r = fqa('convert-reference', shared('reference', 'deep', 'densenet13.json'), '--arch', 'densenet13', '--out', model);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/densenet13.*patch 64/);
  });

  test.skipIf(!onnx)('fqa-scan slide.svs --model densenet13.fqa writes the usual reports (ONNX Runtime in the pool)', () => {
    const out = path.join(work, 'report');
    const r = fqa(svs, '--model', model, '--out', out, '--threshold=-4', '--workers', '2');
    expect(r.code, r.stderr).toBeLessThanOrEqual(1); // pass or fail QC, not an error
    for (const ext of ['scores.tsv', 'heatmap.png', 'overview.png', 'geojson', 'json']) expect(existsSync(path.join(out, `CMU-1-Small-Region.${ext}`)), ext).toBe(true);
    const report = JSON.parse(readFileSync(path.join(out, 'CMU-1-Small-Region.json'), 'utf8'));
    expect(report.kernel).toBe('onnx');
    expect(report.patch.size).toBe(64);
    expect(report.summary.patchesScored).toBeGreaterThan(1000);
    expect(['pass', 'fail']).toContain(report.summary.verdict);
    const rows = readFileSync(path.join(out, 'CMU-1-Small-Region.scores.tsv'), 'utf8').trim().split('\n').slice(1);
    expect(rows).toHaveLength(report.summary.patchesScored);
  });

  for (const backend of ['onnx', 'tfjs'] as const) {
    test.skipIf(backend === 'onnx' && !onnx)(`scanSlide on ${backend}: scored patches equal the model on the same pixels`, async () => {
      // A 400 px square of tissue as a plain image keeps the pure-JS backend quick.
      const slide = await openSlide(svs);
      const pixels = await slide.readRegion(0, 900, 1200, 400, 400);
      slide.close();
      const sharp = (await import('sharp')).default;
      const png = await sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.length), { raw: { width: 400, height: 400, channels: 3 } }).png().toBuffer();
      const result = await scanSlide(png, { model, backend, workers: 2, minTissue: 0, stride: 64 });
      expect(result.kernel).toBe(backend);
      expect([result.columns, result.rows]).toEqual([6, 6]);
      const loaded = await loadModel(model);
      const scorer = await createScorer(loaded, { backend });
      try {
        for (const [col, row] of [[0, 0], [3, 2], [5, 5]] as const) {
          const patch = new Uint8Array(64 * 64 * 3);
          for (let y = 0; y < 64; y++) patch.set(pixels.subarray(((row * 64 + y) * 400 + col * 64) * 3, ((row * 64 + y) * 400 + col * 64 + 64) * 3), y * 64 * 3);
          const [direct] = await scorer.score(patch, 1, 64);
          expect(result.scores[row * 6 + col]).toBeCloseTo(direct!, 4);
        }
      } finally {
        await scorer.dispose();
      }
      // fqa-scan score's path (dense grid, no tissue mask) gives the same grid.
      const scored = await scoreImage(png, { model: loaded, backend, stride: 64 });
      expect(scored.scores.length).toBe(36);
      scored.scores.forEach((s, i) => expect(s).toBeCloseTo(result.scores[i]!, 4));
    }, 120_000);
  }
});
