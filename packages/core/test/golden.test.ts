// The published reference: converted FocusLiteNN (6 weight files) and EONSS weights scoring the two
// TCGA@Focus patches (235 px, stride 128, 7x7 grid) must reproduce every PyTorch golden value
// within 1e-4, on every CPU kernel this machine runs (each instruction set, and AVX-512 with its
// row conversion by byte shuffles switched off) and on the scalar reference. A single weight perturbed
// by 1e-3 must break that, or the test could not catch a wrong weight.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { convertReferenceFile, cpuInfo, decodeImage, parseModelFile, scoreRgb, toLoadedModel, resolveScoreOptions, type KernelName, type ModelFile, type RgbImage } from '../dist/index.js';
import { hasShared, shared, tcgaImages } from '../../../test/helpers/shared.js';

const TOLERANCE = 1e-4;

interface Golden {
  models: Record<string, Record<string, { mean: number; patch_scores: number[] }>>;
}

async function scoresOf(model: ModelFile, image: RgbImage, kernel: KernelName, byteShuffles = true) {
  const loaded = toLoadedModel(model, 'test');
  const o = await resolveScoreOptions({ model: loaded, patchSize: 235, stride: 128, kernel });
  // FQA_DISABLE_BYTE_SHUFFLES is read by the native kernels at each sweep (setenv through process.env).
  if (!byteShuffles) process.env.FQA_DISABLE_BYTE_SHUFFLES = '1';
  try {
    return await scoreRgb(image, 'tcga', o);
  } finally {
    delete process.env.FQA_DISABLE_BYTE_SHUFFLES;
  }
}

// Every kernel path the CPU supports: the scalar reference, each instruction set, and the AVX2 and
// AVX-512 kernels once more with the scalar row conversion (CPUs without VBMI take it for AVX-512).
const kernelPaths: { kernel: KernelName; byteShuffles: boolean }[] = [
  ...cpuInfo().supported.map((kernel) => ({ kernel, byteShuffles: true })),
  ...cpuInfo().supported.filter((k) => k === 'avx2' || k === 'avx512').map((kernel) => ({ kernel, byteShuffles: false })),
];

function maxError(scores: Float32Array, expected: number[]): number {
  expect(scores.length).toBe(expected.length);
  let worst = 0;
  scores.forEach((s, i) => (worst = Math.max(worst, Math.abs(s - expected[i]!))));
  return worst;
}

describe.skipIf(!hasShared)('published reference weights (golden-scores.json)', async () => {
  const golden = hasShared ? (JSON.parse(readFileSync(shared('reference', 'focuslitenn', 'golden-scores.json'), 'utf8')) as Golden) : { models: {} };
  const images: Record<string, RgbImage> = {};
  if (hasShared) for (const [key, file] of Object.entries(tcgaImages)) images[key] = await decodeImage(shared('data', 'tcga-focus', file));

  test('the golden file covers all six FocusLiteNN weight files and EONSS', () => {
    expect(Object.keys(golden.models).sort()).toEqual(
      ['eonss', 'focuslitenn-10kernel', 'focuslitenn-10kernel-mse', 'focuslitenn-1kernel', 'focuslitenn-1kernel-mse', 'focuslitenn-2kernel', 'focuslitenn-2kernel-mse'],
    );
  });

  for (const name of Object.keys(golden.models)) {
    const architecture = name === 'eonss' ? 'eonss' : 'focuslitenn';
    const load = async () => parseModelFile(await convertReferenceFile(shared('reference', 'focuslitenn', `${name}.json`), { architecture }));

    test(`${name}: every patch within ${TOLERANCE} of PyTorch (every CPU kernel path and the reference)`, async () => {
      const model = await load();
      for (const [key, image] of Object.entries(images)) {
        const expected = golden.models[name]![key]!;
        for (const { kernel, byteShuffles } of kernelPaths) {
          const r = await scoresOf(model, image, kernel, byteShuffles);
          expect(r.rows * r.cols).toBe(49);
          expect(maxError(r.scores, expected.patch_scores), `${name} ${key} ${kernel}${byteShuffles ? '' : ' without VBMI'}`).toBeLessThan(TOLERANCE);
          expect(Math.abs(r.mean - expected.mean)).toBeLessThan(TOLERANCE);
        }
      }
    });

    test(`${name}: any single weight perturbed by 1e-3 fails the golden comparison`, async () => {
      const model = await load();
      // One value of each tensor, by exactly 1e-3, must alone be caught. A conv weight's effect
      // on the score is scaled by its kernel's fc weight, so the conv kernel with the largest
      // |fc weight| is the one perturbed (the centre tap of its red channel).
      const image = images['tcga-out-of-focus']!;
      const expected = golden.models[name]!['tcga-out-of-focus']!.patch_scores;
      const fc = model.tensors.get('fc.weight');
      const strongest = fc ? fc.reduce((best, v, i) => (Math.abs(v) > Math.abs(fc[best]!) ? i : best), 0) : 0;
      const targets: [string, number][] =
        architecture === 'eonss'
          ? [['conv1.weight', 12], ['conv1.bias', 0], ['conv2.weight', 0], ['conv4.weight', 0], ['st2_fc2.bias', 0]]
          : [['conv.weight', ((strongest * 3 + 0) * 7 + 3) * 7 + 3], ['conv.bias', strongest], ...(fc ? ([['fc.weight', strongest], ['fc.bias', 0]] as [string, number][]) : [])];
      for (const [tensorName, index] of targets) {
        const weights = model.tensors.get(tensorName)!;
        const original = weights[index]!;
        weights[index] = original + 1e-3;
        const err = maxError((await scoresOf(model, image, 'auto')).scores, expected);
        weights[index] = original;
        expect(err, `perturbing ${tensorName}[${index}] by 1e-3 must move some patch by more than ${TOLERANCE}`).toBeGreaterThan(TOLERANCE);
      }
    });
  }

  test('the 1-kernel model gives the authors\' -1.548026 on the out-of-focus patch', async () => {
    const model = parseModelFile(await convertReferenceFile(shared('reference', 'focuslitenn', 'focuslitenn-1kernel.json'), { architecture: 'focuslitenn' }));
    const r = await scoresOf(model, images['tcga-out-of-focus']!, 'auto');
    expect(Math.abs(r.mean - -1.548026)).toBeLessThan(1e-4);
    const inFocus = await scoresOf(model, images['tcga-in-focus']!, 'auto');
    expect(Math.abs(inFocus.mean - -5.203037)).toBeLessThan(1e-4);
  });
});
