/**
 * Converts the published reference layout ({name: {shape, data}} with PyTorch state_dict names,
 * as in ../shared/reference/focuslitenn/) into an fqa model file. For tests and comparisons only:
 * the reference weights are non-commercial and are never shipped with fqa.
 */
import { readFile } from 'node:fs/promises';
import { InputError, UsageError } from './errors.js';
import { EONSS_LAYERS, FOCUSLITENN_VARIANTS, encodeModelFile, type Architecture, type ModelHeader } from './model-file.js';
import { architectures, getArchitecture, variantConfig } from './models/index.js';

export interface ConvertOptions {
  architecture: Architecture;
  /** FocusLiteNN variant: 235 (7x7 s5 p1) or 64 (7x7 s1 p0). Ignored for EONSS (235). */
  patchSize?: 235 | 64;
  /** Deep models: the variant (e.g. the DARTS-FQA genotype); default inferred from the weights. */
  variant?: string;
  name?: string;
  /** Written into the model's provenance. */
  source?: string;
}

interface ReferenceTensor {
  shape: number[];
  /** "float32" (default) or "int64" (BatchNorm's num_batches_tracked, unused at inference). */
  dtype?: string;
  data: number[];
}

/** Architectures convert-reference takes: the two FocusLiteNN-repository families and those with a published-weights recipe. */
export function referenceArchitectures(): string[] {
  return ['focuslitenn', 'eonss', ...architectures().filter((d) => d.reference).map((d) => d.name)];
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
    const definition = getArchitecture(options.architecture);
    const recipe = definition.reference;
    if (!recipe) throw new UsageError(`Expected one of ${referenceArchitectures().join(', ')} for arch but received '${String(options.architecture)}'`);
    // BatchNorm's batch counters only matter for training.
    for (const [name, t] of Object.entries(ref)) if (name.endsWith('.num_batches_tracked') && t?.dtype === 'int64') known.add(name);
    const shapes = new Map(Object.entries(ref).map(([name, t]) => [name, Array.isArray(t?.shape) ? t.shape : []]));
    const { variant, config } = variantConfig(definition, options.variant ?? recipe.variantOf(shapes));
    const graph = definition.graph(config);
    tensors = graph.tensors.map((want) => {
      const t = take(want.name);
      if (t.shape.join('x') !== want.shape.join('x')) throw new InputError(`${source}: tensor '${want.name}' has shape [${t.shape.join(', ')}] but ${definition.name} ${variant} needs [${want.shape.join(', ')}]`);
      return t;
    });
    const patchSize = definition.patchSizes(config)[0]!;
    header = {
      architecture: definition.name,
      name: options.name ?? (definition.name === variant ? variant : `${definition.name}-${variant}`),
      patchSize,
      stride: definition.defaultStride(patchSize),
      ...base,
      normalization: { mean: [...recipe.normalization.mean], std: [...recipe.normalization.std] },
      ...definition.headerFields(config, variant),
      provenance: { ...provenance, license: recipe.license, notes: `input normalization: ${recipe.normalizationNote}` },
    };
  }
  for (const t of tensors) known.add(t.name);
  const extra = Object.keys(ref).filter((n) => !known.has(n));
  if (extra.length > 0) throw new InputError(`${source}: unexpected tensors for ${options.architecture}: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`);
  return encodeModelFile(header, tensors);
}
