/**
 * The architecture registry: one definition per architecture (one file per family, each calling
 * registerArchitecture) is the single source of its model-file header section and limits, layer
 * graph (hence parameter count and FLOPs), patch sizes, trainers and inference backends. The CLI's
 * choices, the docs' tables, the benchmark rows and the tests are all read from here.
 */
import type { NativeModelSpec } from '@fqa/native';
import type { ModelHeader } from '../model-file.js';
import { UsageError } from '../errors.js';
import type { Graph } from './graph.js';

export type BackendName = 'native' | 'onnx' | 'tfjs';
export const BACKEND_NAMES: readonly BackendName[] = ['native', 'onnx', 'tfjs'];
export type TrainerName = 'native' | 'torch' | 'tfjs';

/** The per-channel input normalization applied after x / 255. */
export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

export const NO_NORMALIZATION: Normalization = { mean: [0, 0, 0], std: [1, 1, 1] };

/** One row of the paper's Tables 3 and 4 (patch sizes 64, 128, 235, 300). */
export interface PaperRow {
  label: string;
  /** The configuration the row is measured with. */
  variant: string;
  layers: number;
  /** As printed: parameter count and FLOPs at 64 px. */
  params: number;
  flops: number;
  /** GTX 1650 Ti latency per 64 px patch (Table 3), ms. */
  latencyMs: number;
  /** Table 4: hours per 300 WSIs of 25k x 25k at patch 64, 128, 235, 300. */
  hours: [number, number, number, number];
}

/** What convert-reference needs to turn published weights into a model file. */
export interface ReferenceConversion {
  /** The variant the weights are, from their tensor names and shapes (or a one-line reason why none fits). */
  variantOf(shapes: Map<string, number[]>): string;
  /** The normalization the published test code applies to its input. */
  normalization: Normalization;
  /** Why that normalization (stored in the model's provenance). */
  normalizationNote: string;
  license: string;
}

export interface ArchitectureDefinition<Config = unknown> {
  /** CLI name and the model-file header's `architecture`. */
  name: string;
  title: string;
  /** Named configurations; the first is the default. */
  variants: Record<string, Config>;
  /** The configuration a header describes; `fail` throws a one-line error naming the file. */
  configFromHeader(header: ModelHeader, fail: (message: string) => never): Config;
  /** Header fields that record a configuration (merged into the model header when writing). */
  headerFields(config: Config, variant: string): Partial<ModelHeader>;
  graph(config: Config): Graph;
  /** Patch sizes the configuration is defined for; the first is its default. */
  patchSizes(config: Config): number[];
  /** Default sweep stride for a patch size. */
  defaultStride(patchSize: number): number;
  /** Backends that run this configuration, fastest first. */
  backends(config: Config): BackendName[];
  trainers: TrainerName[];
  /**
   * The torch engine keeps 4-D tensors channels_last (NHWC memory order): measured per architecture
   * (docs/experiments.md), it helps DenseNet-13 and slows ResNet-10 and MobileNetV2.
   */
  torchChannelsLast?: boolean;
  /** The native addon's spec, for configurations whose backends include 'native'. */
  nativeSpec?(config: Config, tensor: (name: string) => Float32Array, header: ModelHeader): NativeModelSpec;
  reference?: ReferenceConversion;
  paper: PaperRow[];
}

const registry = new Map<string, ArchitectureDefinition<never>>();

export function registerArchitecture<C>(definition: ArchitectureDefinition<C>): ArchitectureDefinition<C> {
  if (registry.has(definition.name)) throw new Error(`architecture '${definition.name}' registered twice`);
  if (Object.keys(definition.variants).length === 0) throw new Error(`architecture '${definition.name}' has no variants`);
  registry.set(definition.name, definition as unknown as ArchitectureDefinition<never>);
  return definition;
}

/** Registered names, in registration order (the paper's order). */
export function architectureNames(): string[] {
  return [...registry.keys()];
}

export function architectures(): ArchitectureDefinition<unknown>[] {
  return [...registry.values()] as ArchitectureDefinition<unknown>[];
}

export function findArchitecture(name: unknown): ArchitectureDefinition<unknown> | undefined {
  return typeof name === 'string' ? (registry.get(name) as ArchitectureDefinition<unknown> | undefined) : undefined;
}

/** The definition for a user-given name, or a UsageError listing the choices. */
export function getArchitecture(name: unknown, what = 'arch'): ArchitectureDefinition<unknown> {
  const found = findArchitecture(name);
  if (!found) throw new UsageError(`Expected one of ${architectureNames().join(', ')} for ${what} but received '${String(name)}'`);
  return found;
}

/** A named configuration, or a UsageError listing the architecture's variants. */
export function variantConfig<C>(definition: ArchitectureDefinition<C>, variant: string | undefined): { variant: string; config: C } {
  const names = Object.keys(definition.variants);
  const name = variant ?? names[0]!;
  if (!(name in definition.variants)) throw new UsageError(`Expected one of ${names.join(', ')} for ${definition.name} variant but received '${name}'`);
  return { variant: name, config: definition.variants[name]! };
}

/**
 * For architectures whose configuration is just a named variant (the deep models): the header's
 * `variant` (default the first) picks it.
 */
export function variantFromHeader<C>(variants: Record<string, C>, header: ModelHeader, fail: (message: string) => never): C {
  const names = Object.keys(variants);
  const name = header.variant ?? names[0]!;
  if (typeof name !== 'string' || !(name in variants)) fail(`unknown ${header.architecture} variant '${typeof name === 'string' ? name : JSON.stringify(name)}' (expected ${names.join(', ')})`);
  return variants[name]!;
}
