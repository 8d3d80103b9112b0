/**
 * The backends agree on every registered architecture: ONNX Runtime and tfjs run the same graph
 * from two independent implementations (fqa's ONNX writer + ORT kernels, fqa's tfjs interpreter),
 * and where the native kernels run a model (FocusLiteNN, EONSS) they are the oracle for both
 * (their golden tests are against PyTorch). Seeded random weights, a few patches per model.
 */
import { describe, expect, test } from 'vitest';
import { architectures, createScorer, loadOnnxRuntime, parseModelFile, randomModelFile, toLoadedModel, type BackendName } from '../dist/index.js';
import { seededRandom } from '../dist/train/random.js';
import { missing } from '../../../test/helpers/shared.js';

const onnx = !missing(loadOnnxRuntime() !== null, 'onnxruntime-node (npm install onnxruntime-node)');
const cases = architectures().flatMap((d) => Object.keys(d.variants).filter((v) => !/^(2|10)-kernel/.test(v)).map((variant) => ({ architecture: d.name, variant })));

describe('backends agree', () => {
  test.skipIf(!onnx).each(cases)('$architecture $variant: onnx, tfjs (and native) give the same scores', async ({ architecture, variant }) => {
    const model = toLoadedModel(parseModelFile(randomModelFile(architecture, variant, 7), 'random.fqa'), 'random.fqa');
    const size = model.header.patchSize;
    const count = 2;
    const random = seededRandom(3);
    const pixels = Uint8Array.from({ length: count * size * size * 3 }, () => Math.floor(random() * 256));
    const results = new Map<BackendName, Float32Array>();
    for (const backend of model.backends) {
      const scorer = await createScorer(model, { backend, threads: 1 });
      results.set(backend, await scorer.score(pixels, count, size));
      await scorer.dispose();
    }
    const reference = results.get(model.backends[0]!)!;
    expect(reference.every(Number.isFinite)).toBe(true);
    expect(Math.abs(reference[0]! - reference[1]!)).toBeGreaterThan(0); // two different patches, two scores
    for (const [backend, scores] of results) {
      scores.forEach((s, i) => expect(Math.abs(s - reference[i]!), `${backend} patch ${i}: ${s} vs ${reference[i]}`).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(reference[i]!))));
    }
  }, 120_000);
});
