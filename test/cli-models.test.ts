// The registry at the command line: fqa-scan models, train and convert-reference choices and their
// errors, and fqa-scan score with converted deep models reproducing PyTorch's crops (golden-deep.json)
// through the file's own input normalization.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadOnnxRuntime } from '@fqa/core';
import { hasShared, missing, repoRoot, shared, tcgaImages } from './helpers/shared.js';

const onnx = !missing(loadOnnxRuntime() !== null, 'onnxruntime-node (npm install onnxruntime-node)');

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-models-'));

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('architectures on the command line', () => {
  test('fqa-scan models lists every architecture and variant from the registry', () => {
    const r = fqa('models', '--json');
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { architecture: string; variant: string; parameters: number }[];
    expect([...new Set(rows.map((x) => x.architecture))]).toEqual(['focuslitenn', 'eonss', 'densenet13', 'mobilenetv2', 'resnet10', 'resnet50', 'resnet101', 'darts-fqa']);
    expect(rows.find((x) => x.architecture === 'resnet101')!.parameters).toBe(42_502_209);
    expect(rows.filter((x) => x.architecture === 'darts-fqa').map((x) => x.variant)).toEqual(['focuspath', 'bioimage', 'deepfocus']);
  });

  test('train refuses a patch size the architecture does not take; unknown names list all of them', () => {
    const deep = fqa('train', '--dataset', 'synthetic', '--source', 'none.png', '--arch', 'darts-fqa', '--patch', '235', '--out', path.join(work, 't'));
    expect(deep.code).toBe(2);
    expect(deep.stderr).toMatch(/darts-fqa focuspath takes 64 px patches, not 235 \(--patch\)/);
    const unknown = fqa('train', '--dataset', 'synthetic', '--source', 'none.png', '--arch', 'resnet18', '--out', path.join(work, 't'));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Expected one of focuslitenn, eonss, densenet13, mobilenetv2, resnet10, resnet50, resnet101, darts-fqa for arch but received 'resnet18'/);
  });

  describe.skipIf(!hasShared)('converted published weights', () => {
    test('convert-reference refuses weights of another genotype or architecture with one line', () => {
      const genotype = fqa('convert-reference', shared('reference', 'deep', 'darts-fqa-bioimage.json'), '--arch', 'darts-fqa', '--variant', 'focuspath', '--out', path.join(work, 'x.fqa'));
      expect(genotype.code).toBe(3);
      expect(genotype.stderr.trim().split('\n')).toHaveLength(1);
      expect(genotype.stderr).toMatch(/darts-fqa-bioimage\.json: unexpected tensors for darts-fqa: cells\.0\._ops\.1\.conv_1\.weight/);
      const arch = fqa('convert-reference', shared('reference', 'deep', 'darts-fqa-bioimage.json'), '--arch', 'densenet13', '--out', path.join(work, 'x.fqa'));
      expect(arch.code).toBe(3);
      expect(arch.stderr).toMatch(/missing tensor 'features\.conv0\.weight' for densenet13/);
    });

    const golden = hasShared ? JSON.parse(readFileSync(shared('reference', 'deep', 'golden-deep.json'), 'utf8')) : null;
    for (const [name, arch, intended] of [['densenet13', 'densenet13', 'raw'], ['darts-fqa-focuspath', 'darts-fqa', 'tcga_norm']] as const) {
      test.skipIf(!onnx)(`fqa-scan score with converted ${name}: the crops at stride 256 are PyTorch's (${intended} input)`, () => {
        const model = path.join(work, `${name}.fqa`);
        const c = fqa('convert-reference', shared('reference', 'deep', `${name}.json`), '--arch', arch, '--out', model);
        expect(c.code, c.stderr).toBe(0);
        const image = shared('data', 'tcga-focus', tcgaImages['tcga-in-focus']);
        const r = fqa('score', image, '--model', model, '--stride', '256', '--json');
        expect(r.code, r.stderr).toBe(0);
        const [scored] = JSON.parse(r.stdout) as { cols: number; scores: number[] }[];
        expect(scored!.cols).toBe(4);
        const crops = (golden.models[name].crops as { image: string; y: number; x: number; size: number; raw: { value_f64: number }; tcga_norm: { value_f64: number } }[])
          .filter((k) => k.image === tcgaImages['tcga-in-focus'] && k.size === 64 && k.x % 256 === 0 && k.y % 256 === 0 && k.x < 1024 - 64 && k.y < 1024 - 64);
        expect(crops.length).toBe(3);
        for (const k of crops) {
          const got = scored!.scores[(k.y / 256) * 4 + k.x / 256]!;
          expect(Math.abs(got - k[intended].value_f64), `(${k.y},${k.x}) ${got} vs ${k[intended].value_f64}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(k[intended].value_f64)));
        }
      }, 120_000);
    }
  });
});
