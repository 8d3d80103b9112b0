// The published deep models (DenseNet-13 from FocusLiteNN, DARTS-FQA's three genotypes) converted by
// convert-reference must reproduce PyTorch's outputs (golden-deep.json: TCGA crops and a seeded
// random input, raw and TCGA-normalized) on both backends, within 1e-4 relative of the float64
// forward pass; the converted files carry the normalization their test code applies.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { convertReferenceFile, createScorer, decodeImage, loadOnnxRuntime, parseModelFile, patchesToNchw, toLoadedModel, type BackendName, type LoadedModel, type Normalization, type RgbImage } from '../dist/index.js';
import { hasShared, missing, shared } from '../../../test/helpers/shared.js';

interface Value { value: number; value_f64: number }
interface Case { image?: string; y?: number; x?: number; size: number; raw: Value; tcga_norm: Value }
interface Golden {
  normalization: { tcga_mean_float32: number[]; tcga_std_float32: number[] };
  models: Record<string, { weights: string; crops: Case[]; random: Case; param_count: number }>;
  random_input: { data: number[] };
}

const golden: Golden | null = hasShared ? JSON.parse(readFileSync(shared('reference', 'deep', 'golden-deep.json'), 'utf8')) : null;
const onnx = !missing(loadOnnxRuntime() !== null, 'onnxruntime-node (npm install onnxruntime-node)');
const close = (got: number, want: number) => Math.abs(got - want) <= 1e-4 * Math.max(1, Math.abs(want));

/** A crop as float32 NCHW, normalized per channel ((x/255 - mean)/std). */
function crop(image: RgbImage, c: Case, n: Normalization): Float32Array {
  const s = c.size;
  const pixels = new Uint8Array(s * s * 3);
  for (let r = 0; r < s; r++) pixels.set(image.pixels.subarray((c.y! + r) * image.rowStride + c.x! * 3, (c.y! + r) * image.rowStride + (c.x! + s) * 3), r * s * 3);
  return patchesToNchw(pixels, 1, s, n);
}

describe.skipIf(!hasShared)('published deep models (golden-deep.json)', async () => {
  const g = golden!;
  const raw: Normalization = { mean: [0, 0, 0], std: [1, 1, 1] };
  const tcga = { mean: g.normalization.tcga_mean_float32, std: g.normalization.tcga_std_float32 } as Normalization;
  const images = new Map<string, RgbImage>();
  for (const file of new Set(Object.values(g.models).flatMap((m) => m.crops.map((c) => c.image!)))) images.set(file, await decodeImage(shared('data', 'tcga-focus', file)));
  const models = new Map<string, LoadedModel>();
  const load = async (name: string) => {
    if (!models.has(name)) {
      const architecture = name === 'densenet13' ? 'densenet13' : 'darts-fqa';
      const bytes = await convertReferenceFile(shared('reference', 'deep', g.models[name]!.weights), { architecture });
      models.set(name, toLoadedModel(parseModelFile(bytes, `${name}.fqa`), `${name}.fqa`));
    }
    return models.get(name)!;
  };

  test('convert-reference infers each DARTS-FQA genotype from the weights and stores the intended normalization', async () => {
    for (const name of Object.keys(g.models)) {
      const m = await load(name);
      const count = m.graph.tensors.filter((t) => t.kind === 'parameter').reduce((s, t) => s + m.tensors.get(t.name)!.length, 0);
      expect(count).toBe(g.models[name]!.param_count);
      if (name === 'densenet13') {
        expect(m.header.normalization).toEqual(raw);
        expect(m.header.patchSize).toBe(64);
      } else {
        expect(m.header.variant).toBe(name.replace('darts-fqa-', ''));
        m.header.normalization.mean.forEach((v, c) => expect(Math.fround(v)).toBeCloseTo(tcga.mean[c]!, 7));
      }
    }
  });

  test.skipIf(!onnx)('a single weight perturbed by 1e-3 breaks the comparison (the test can fail)', async () => {
    const name = 'darts-fqa-focuspath';
    const model = await load(name);
    const tensors = new Map(model.tensors);
    const weight = Float32Array.from(tensors.get('classifier.weight')!);
    weight[0]! += 1e-3;
    tensors.set('classifier.weight', weight);
    const scorer = await createScorer({ ...model, tensors }, { backend: 'onnx', threads: 1 });
    try {
      const c = g.models[name]!.crops[0]!;
      const [s] = await scorer.scoreNormalized!(crop(images.get(c.image!)!, c, tcga), 1, 64);
      expect(close(s!, c.tcga_norm.value_f64)).toBe(false);
    } finally {
      await scorer.dispose();
    }
  });

  for (const backend of ['onnx', 'tfjs'] as BackendName[]) {
    for (const name of Object.keys(golden?.models ?? {})) {
      test.skipIf(backend === 'onnx' && !onnx)(`${name} on ${backend}: every crop and the random input, raw and TCGA-normalized, within 1e-4`, async () => {
        const model = await load(name);
        const scorer = await createScorer(model, { backend, threads: 1 });
        try {
          const spec = g.models[name]!;
          for (const [key, n] of [['raw', raw], ['tcga_norm', tcga]] as const) {
            for (const size of new Set(spec.crops.map((c) => c.size))) {
              const cases = spec.crops.filter((c) => c.size === size);
              const input = new Float32Array(cases.length * 3 * size * size);
              cases.forEach((c, i) => input.set(crop(images.get(c.image!)!, c, n), i * 3 * size * size));
              const out = await scorer.scoreNormalized!(input, cases.length, size);
              cases.forEach((c, i) => expect(close(out[i]!, c[key].value_f64), `${name} ${c.image} (${c.y},${c.x}) ${size}px ${key}: ${out[i]} vs ${c[key].value_f64}`).toBe(true));
            }
            const random = Float32Array.from(g.random_input.data, (v, i) => (v - n.mean[Math.floor(i / 4096)]!) / n.std[Math.floor(i / 4096)]!);
            const [r] = await scorer.scoreNormalized!(random, 1, 64);
            expect(close(r!, spec.random[key].value_f64), `${name} random ${key}: ${r} vs ${spec.random[key].value_f64}`).toBe(true);
          }
          // The u8 door (scans) normalizes with the model file's own mean/std: the intended input.
          const intended = name === 'densenet13' ? 'raw' : 'tcga_norm';
          const c = spec.crops[0]!;
          const pixels = new Uint8Array(64 * 64 * 3);
          const image = images.get(c.image!)!;
          for (let r = 0; r < 64; r++) pixels.set(image.pixels.subarray((c.y! + r) * image.rowStride + c.x! * 3, (c.y! + r) * image.rowStride + (c.x! + 64) * 3), r * 64 * 3);
          const [s] = await scorer.score(pixels, 1, 64);
          expect(close(s!, c[intended].value_f64), `${name} u8 ${intended}: ${s} vs ${c[intended].value_f64}`).toBe(true);
        } finally {
          await scorer.dispose();
        }
      }, 120_000);
    }
  }
});
