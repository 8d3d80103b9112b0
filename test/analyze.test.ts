// fqa-scan analyze: KG/MC per conv layer and Figure 6 for converted published weights (DenseNet-13,
// checked against kg-mc-densenet13.json) and for the model fqa trained and ships, plus one-line
// errors for files that are not models and outputs that cannot be written.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, modelKnowledgeGain, readModelFile } from '@fqa/core';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-analyze-'));

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface ModeJson { rank: number; KG: number; MC: number; pos: number; unfoldShape: [number, number] }
interface LayerJson { name: string; KG: number; MC: number; depthwiseCopyOfNext: boolean; input: ModeJson; output: ModeJson }
interface AnalysisJson { models: { name: string; architecture: string; layers: LayerJson[]; averages: { kg: number; mc: number; layers: number } }[] }

const close = (got: number, want: number) => Math.abs(got - want) <= 1e-6 * Math.abs(want);

describe('fqa-scan analyze', () => {
  test('the shipped (fqa-trained FocusLiteNN) model: table, JSON and Figure 6', async () => {
    const json = path.join(work, 'default.json');
    const plot = path.join(work, 'default.svg');
    const r = fqa('analyze', '--json', json, '--plot', plot);
    expect(r.code, r.stderr).toBe(0);
    const model = await readModelFile(DEFAULT_MODEL_PATH);
    expect(r.stdout).toContain(`${model.header.name} (focuslitenn), 2 conv weights`);
    expect(r.stdout).toMatch(/^1\tconv\.weight\t10x3x7x7\t/m);
    const out = JSON.parse(readFileSync(json, 'utf8')) as AnalysisJson;
    const layers = out.models[0]!.layers;
    expect(layers.map((l) => l.name)).toEqual(['conv.weight', 'fc.weight']);
    for (const l of layers) {
      for (const m of [l.input, l.output]) {
        // rank = pos / channels, KG in [rank/channels.. rank], MC >= 1 unless the mode has rank 0.
        expect(m.rank).toBe(m.pos / m.unfoldShape[0]);
        expect(m.KG).toBeLessThanOrEqual(m.rank + 1e-15);
        if (m.pos === 0) expect([m.KG, m.MC]).toEqual([0, 0]);
        else expect(m.MC).toBeGreaterThanOrEqual(1);
      }
      expect(l.KG).toBe((l.input.KG + l.output.KG) / 2);
    }
    // The command reports what the library computes from the same file.
    const direct = modelKnowledgeGain(model, DEFAULT_MODEL_PATH);
    expect(layers.map((l) => [l.KG, l.MC])).toEqual(direct.layers.map((l) => [l.kg, l.mc]));
    const svg = readFileSync(plot, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    // The paper's panel: one point per model, large for a 235 px model.
    expect(svg).toMatch(/<circle [^>]*r="7"/);
    expect(svg).toContain(`${model.header.name} (focuslitenn, 235 px, 2 conv weights): mean KG ${direct.averages.kg.toFixed(4)}`);
  });

  test.skipIf(!hasShared)('DenseNet-13 converted at test time reproduces kg-mc-densenet13.json; two models share one Figure 6', () => {
    const model = path.join(work, 'densenet13.fqa');
    expect(fqa('convert-reference', shared('reference', 'deep', 'densenet13.json'), '--arch', 'densenet13', '--out', model).code).toBe(0);
    const json = path.join(work, 'densenet13.json');
    const plot = path.join(work, 'fig6.svg');
    const r = fqa('analyze', '--model', model, DEFAULT_MODEL_PATH, '--json', json, '--plot', plot);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^3\tfeatures\.denseblock1\.denselayer1\.conv2\.weight\t32x128x3x3\t16\/128\t0\.0668\d+\t3\.968\d\t12\/32\t/m);
    const oracle = JSON.parse(readFileSync(shared('reference', 'deep', 'kg-mc-densenet13.json'), 'utf8')) as { layers: { name: string; float64_variant: Record<'input_mode' | 'output_mode', { rank: number; KG: number; MC: number }> }[] };
    const got = (JSON.parse(readFileSync(json, 'utf8')) as AnalysisJson).models[0]!.layers;
    expect(got.map((l) => l.name)).toEqual(oracle.layers.map((l) => l.name));
    got.forEach((l, i) => {
      const want = oracle.layers[i]!.float64_variant;
      for (const [m, w] of [[l.input, want.input_mode], [l.output, want.output_mode]] as const) {
        expect(m.rank, l.name).toBe(w.rank);
        expect(close(m.KG, w.KG) && close(m.MC, w.MC), `${l.name}: KG ${m.KG} vs ${w.KG}, MC ${m.MC} vs ${w.MC}`).toBe(true);
      }
    });
    const svg = readFileSync(plot, 'utf8');
    // One point per model in the KG-vs-MC panel; one line per model in each per-layer panel.
    expect(svg.match(/<polyline /g)).toHaveLength(4);
    expect(svg.match(/<circle /g)).toHaveLength(2 + 2 * (12 + 2));
    expect(svg).toContain('densenet13 (densenet13 densenet13, 64 px, 12 conv weights): mean KG 0.0594');
  });

  test('a file that is not a model, a truncated model and a missing file fail with one line naming the file', () => {
    const garbage = path.join(work, 'garbage.fqa');
    writeFileSync(garbage, 'not a model at all');
    const truncated = path.join(work, 'truncated.fqa');
    const bytes = readFileSync(DEFAULT_MODEL_PATH);
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    for (const [file, message] of [
      [garbage, /garbage\.fqa: not an fqa model file \(no FQAMODEL signature\)/],
      [truncated, /truncated\.fqa: truncated or padded: header declares \d+ weight bytes, file holds \d+/],
      [path.join(work, 'none.fqa'), /none\.fqa: model file not found/],
    ] as const) {
      const r = fqa('analyze', '--model', file);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  test('an unwritable plot path and an unknown option fail with one line', () => {
    const r = fqa('analyze', '--plot', path.join(work, 'no-such-dir', 'fig6.svg'));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no-such-dir\/fig6\.svg: cannot write \(ENOENT\)/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const bad = fqa('analyze', '--plots', 'x.svg');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown option '--plots'; did you mean --plot\?/);
  });
});
