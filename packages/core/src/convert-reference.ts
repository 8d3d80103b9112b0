/**
 * Converts the published reference layout ({name: {shape, data}} with PyTorch state_dict names,
 * as in ../shared/reference/focuslitenn/) into an fqa model file. For tests and comparisons only:
 * the reference weights are non-commercial and are never shipped with fqa.
 */
import { readFile } from 'node:fs/promises';
import { InputError, UsageError } from './errors.js';
import { EONSS_LAYERS, FOCUSLITENN_VARIANTS, encodeModelFile, type Architecture, type ModelHeader } from './model-file.js';

export interface ConvertOptions {
  architecture: Architecture;
  /** FocusLiteNN variant: 235 (7x7 s5 p1) or 64 (7x7 s1 p0). Ignored for EONSS (235). */
  patchSize?: 235 | 64;
  name?: string;
  /** Written into the model's provenance. */
  source?: string;
}

interface ReferenceTensor {
  shape: number[];
  data: number[];
}

export async function convertReferenceFile(file: string, options: ConvertOptions): Promise<Buffer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`${file}: cannot read reference weights (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return convertReference(json, { source: file, ...options });
}

export function convertReference(json: unknown, options: ConvertOptions): Buffer {
  const source = options.source ?? 'reference weights';
  if (typeof json !== 'object' || json === null) throw new InputError(`${source}: expected an object of tensors`);
  const ref = json as Record<string, ReferenceTensor>;
  const take = (name: string) => {
    const t = ref[name];
    if (!t || !Array.isArray(t.shape) || !Array.isArray(t.data)) throw new InputError(`${source}: missing tensor '${name}' for ${options.architecture}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new InputError(`${source}: tensor '${name}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    return { name, shape: t.shape, data: Float32Array.from(t.data) };
  };
  const provenance = {
    source: `converted from ${source}`,
    license: 'as the source weights (FocusLiteNN reference: Prosperity Public License 3.0.0, noncommercial)',
    createdBy: 'fqa-scan convert-reference',
    createdAt: new Date().toISOString(),
  };
  const base = {
    normalization: { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] },
    score: { scale: 'arbitrary (as trained); higher = blurrier', threshold: null },
    micronsPerPixel: null,
    provenance,
  };
  const known = new Set<string>();
  let header: Omit<ModelHeader, 'tensors' | 'weightsByteLength' | 'weightsSha256'>;
  let tensors: ReturnType<typeof take>[];
  if (options.architecture === 'focuslitenn') {
    const variant = options.patchSize ?? 235;
    const geometry = FOCUSLITENN_VARIANTS[variant];
    if (!geometry) throw new UsageError(`Expected 235 or 64 for patch but received ${String(variant)}`);
    const conv = take('conv.weight');
    const k = conv.shape[0]!;
    if (conv.shape.length !== 4 || conv.shape[1] !== 3 || conv.shape[2] !== geometry.convKernel || conv.shape[3] !== geometry.convKernel) {
      throw new InputError(`${source}: conv.weight has shape [${conv.shape.join(', ')}], expected [k, 3, ${geometry.convKernel}, ${geometry.convKernel}]`);
    }
    tensors = [conv, take('conv.bias')];
    if (k > 1) tensors.push(take('fc.weight'), take('fc.bias'));
    header = {
      architecture: 'focuslitenn',
      name: options.name ?? `focuslitenn-${k}kernel-${variant}`,
      patchSize: variant,
      stride: geometry.stride,
      focuslitenn: { kernels: k, convKernel: geometry.convKernel, convStride: geometry.convStride, convPad: geometry.convPad },
      ...base,
    };
  } else if (options.architecture === 'eonss') {
    tensors = [];
    for (const L of EONSS_LAYERS) {
      tensors.push(take(`${L.name}.weight`), take(`${L.name}.bias`));
      if (L.gdn) tensors.push(take(`${L.gdn}.gamma`), take(`${L.gdn}.beta`));
    }
    header = { architecture: 'eonss', name: options.name ?? 'eonss', patchSize: 235, stride: 128, eonss: { layers: EONSS_LAYERS }, ...base };
  } else {
    throw new UsageError(`Expected one of focuslitenn, eonss for arch but received '${String(options.architecture)}'`);
  }
  for (const t of tensors) known.add(t.name);
  const extra = Object.keys(ref).filter((n) => !known.has(n));
  if (extra.length > 0) throw new InputError(`${source}: unexpected tensors for ${options.architecture}: ${extra.join(', ')}`);
  return encodeModelFile(header, tensors);
}
