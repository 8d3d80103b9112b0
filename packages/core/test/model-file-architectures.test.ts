// Model files of every registered architecture: written and read back through the registry, and
// hostile headers (unknown architecture or variant, tensors of the wrong shape, missing or extra
// tensors) rejected with one line naming the file. Old FocusLiteNN/EONSS files keep loading.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, MODEL_FORMAT_VERSION, architectures, encodeModelFile, modelArchitecture, parseModelFile, randomModelFile, readModelFile, type ModelHeader } from '../dist/index.js';

/** Re-encodes a model file with its header edited (the weights stay consistent with their hash). */
function edited(bytes: Buffer, edit: (h: ModelHeader, tensors: { name: string; shape: number[]; data: Float32Array }[]) => void): Buffer {
  const m = parseModelFile(bytes, 'x.fqa');
  const tensors = m.header.tensors.map((t) => ({ name: t.name, shape: [...t.shape], data: m.tensors.get(t.name)! }));
  const header = structuredClone(m.header);
  edit(header, tensors);
  const { tensors: _t, weightsByteLength: _l, weightsSha256: _s, ...rest } = header;
  return encodeModelFile(rest, tensors);
}

describe('model files for every architecture', () => {
  test.each(architectures().flatMap((d) => Object.keys(d.variants).map((v) => [d.name, v])))('%s %s: written, read back, same graph', (architecture, variant) => {
    const m = parseModelFile(randomModelFile(architecture, variant, 1), 'm.fqa');
    expect(m.header.architecture).toBe(architecture);
    const { graph } = modelArchitecture(m);
    expect(m.header.tensors.map((t) => t.name)).toEqual(graph.tensors.map((t) => t.name));
  });

  test(`the shipped default model (format ${MODEL_FORMAT_VERSION}, FocusLiteNN) loads on the native backend`, async () => {
    expect(readFileSync(DEFAULT_MODEL_PATH).readUInt32LE(8), 'the format version after the magic').toBe(MODEL_FORMAT_VERSION);
    const m = await readModelFile(DEFAULT_MODEL_PATH);
    expect(modelArchitecture(m).backends[0]).toBe('native');
  });

  const darts = randomModelFile('darts-fqa', 'bioimage', 1);
  test.each([
    ['an unknown architecture', (h: ModelHeader) => (h.architecture = 'resnet18'), /x\.fqa: unknown architecture 'resnet18' \(expected one of focuslitenn, eonss, densenet13/],
    ['an unknown variant', (h: ModelHeader) => (h.variant = 'imagenet'), /x\.fqa: unknown darts-fqa variant 'imagenet' \(expected focuspath, bioimage, deepfocus\)/],
    ['another genotype\'s variant', (h: ModelHeader) => (h.variant = 'focuspath'), /x\.fqa: unexpected tensor 'cells\.0\._ops\.1\.conv_1\.weight' for darts-fqa/],
  ] as const)('rejects %s', (_what, edit, message) => {
    expect(() => parseModelFile(edited(darts, (h) => edit(h)), 'x.fqa')).toThrow(message);
  });

  test('rejects a tensor of the wrong shape and a missing tensor', () => {
    const wrongShape = edited(darts, (_h, t) => {
      const i = t.findIndex((x) => x.name === 'classifier.weight');
      t[i] = { name: 'classifier.weight', shape: [1, 80, 2], data: new Float32Array(160) };
    });
    expect(() => parseModelFile(wrongShape, 'x.fqa')).toThrow(/x\.fqa: tensor 'classifier\.weight' has shape \[1, 80, 2\] but darts-fqa needs \[1, 160\]/);
    const missing = edited(darts, (_h, t) => t.splice(t.findIndex((x) => x.name === 'stem.1.running_var'), 1));
    expect(() => parseModelFile(missing, 'x.fqa')).toThrow(/x\.fqa: missing tensor 'stem\.1\.running_var'/);
  });

  test('rejects an EONSS whose layers do not chain', () => {
    const eonss = randomModelFile('eonss', 'bioimage', 1);
    const broken = edited(eonss, (_h, t) => {
      const i = t.findIndex((x) => x.name === 'conv2.weight');
      t[i] = { name: 'conv2.weight', shape: [16, 9, 5, 5], data: new Float32Array(16 * 9 * 25) };
    });
    expect(() => parseModelFile(broken, 'x.fqa')).toThrow(/x\.fqa: conv2\.weight takes 9 input channels, the layer before gives 8/);
  });
});
