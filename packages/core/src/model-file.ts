/**
 * The fqa model file: data only, versioned, validated on load, never executed.
 *
 *   bytes 0..7    "FQAMODEL"
 *   bytes 8..11   format version (u32 little-endian), currently 2
 *   bytes 12..15  header length H in bytes (u32 LE)
 *   bytes 16..47  SHA-256 of the H header bytes
 *   bytes 48..    header: UTF-8 JSON (ModelHeader), space-padded so the weights start 8-aligned
 *   then          float32 little-endian weights; each tensor's byte offset and shape are in the
 *                 header, with the total length and its SHA-256 so truncation or corruption is
 *                 caught before a single weight is used.
 *
 * Version 1 had no header checksum: one flipped bit in the threshold, patch size or µm/px loaded
 * silently and changed verdicts, so it is no longer read. Every header field is also checked for
 * type, finiteness and a plausible range.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createNativeModel, modelLimits, type NativeModel, type NativeModelSpec } from '@fqa/native';
import { writeAtomic } from './atomic-write.js';
import { ModelFileError } from './errors.js';
import { architectureNames, findArchitecture, type ArchitectureDefinition, type BackendName, type Graph } from './models/index.js';
import type { FocusLiteNNGeometry } from './models/architectures/focuslitenn.js';
import type { EonssLayerHeader } from './models/architectures/eonss.js';

export { FOCUSLITENN_VARIANTS } from './models/architectures/focuslitenn.js';
export { EONSS_LAYERS, type EonssLayerHeader } from './models/architectures/eonss.js';
import { MAX_MODEL_FILE_BYTES, MPP_RANGE, plausibleMpp } from './limits.js';
import { readRegularFile } from './regular-file.js';

export const MODEL_MAGIC = 'FQAMODEL';
export const MODEL_FORMAT_VERSION = 2;
const PREAMBLE_BYTES = 48;
const HEADER_SHA_AT = 16;
/** Weights and normalization beyond these are not a trained model but damage or an attack: they overflow float32 scores. */
const MAX_ABS_WEIGHT = 1e6;
const STD_RANGE = { min: 1e-3, max: 10 };
const MEAN_RANGE = { min: -1, max: 2 };
const MAX_ABS_THRESHOLD = 1e6;

/** A registered architecture's name (models/index.ts lists them). */
export type Architecture = string;

export interface TensorEntry {
  name: string;
  shape: number[];
  /** Byte offset inside the weights section. */
  offset: number;
}

export interface ModelHeader {
  architecture: Architecture;
  name: string;
  /** The window the model was trained on, in pixels at its working resolution. */
  patchSize: number;
  /** Default sweep stride for scoring (the paper evaluates 235 px patches at stride 128). */
  stride: number;
  /** Applied after x / 255, per RGB channel. */
  normalization: { mean: [number, number, number]; std: [number, number, number] };
  /** What the score means. Higher is always blurrier. */
  score: { scale: string; threshold: number | null };
  /** Working resolution in µm/px, when known. */
  micronsPerPixel: number | null;
  /** The architecture's named configuration (deep models; e.g. the DARTS-FQA genotype). */
  variant?: string;
  /** A searched DARTS-FQA genotype (fqa-scan search), instead of a named variant; validated by the architecture. */
  genotype?: unknown;
  focuslitenn?: FocusLiteNNGeometry;
  eonss?: { layers: EonssLayerHeader[] };
  provenance: { source: string; license: string | null; createdBy: string; createdAt: string; notes?: string };
  tensors: TensorEntry[];
  weightsByteLength: number;
  weightsSha256: string;
}

export interface ModelFile {
  header: ModelHeader;
  tensors: Map<string, Float32Array>;
}

function fail(source: string, message: string): never {
  throw new ModelFileError(`${source}: ${message}`);
}

function isIntegerIn(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function expectTriple(v: unknown, source: string, name: string, range: { min: number; max: number }): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && x >= range.min && x <= range.max)) {
    fail(source, `${name} must be 3 numbers between ${range.min} and ${range.max}, got ${JSON.stringify(v)}`);
  }
  return v as [number, number, number];
}

/** A header value in an error message: short, and never throws (String() does for {"toString": false}). */
export function shown(v: unknown): string {
  if (typeof v === 'string') return v.slice(0, 80);
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    text = undefined;
  }
  return (text ?? typeof v).slice(0, 80);
}

function isText(v: unknown, maxLength = 10_000): v is string {
  return typeof v === 'string' && v.length <= maxLength;
}

/** Tensor names and shapes the header's architecture and configuration need (from its layer graph). */
function expectedShapes(h: ModelHeader, source: string): Map<string, number[]> {
  const definition = findArchitecture(h.architecture)!;
  const graph = definition.graph(definition.configFromHeader(h, (message) => fail(source, message)));
  return new Map(graph.tensors.map((t) => [t.name, t.shape]));
}

function validateHeader(raw: unknown, source: string): ModelHeader {
  if (typeof raw !== 'object' || raw === null) fail(source, 'header is not a JSON object');
  const h = raw as ModelHeader;
  if (!findArchitecture(h.architecture)) {
    fail(source, `unknown architecture '${shown(h.architecture)}' (expected one of ${architectureNames().join(', ')})`);
  }
  const patchLimits = modelLimits().patchSize;
  if (!isIntegerIn(h.patchSize, ...patchLimits)) fail(source, `patchSize must be an integer ${patchLimits.join('..')}, got ${shown(h.patchSize)}`);
  if (!isIntegerIn(h.stride, 1, 4096)) fail(source, `stride must be an integer 1..4096, got ${shown(h.stride)}`);
  if (!isText(h.name, 200)) fail(source, 'name must be a string of at most 200 characters');
  if (typeof h.normalization !== 'object' || h.normalization === null) fail(source, 'missing normalization');
  expectTriple(h.normalization.mean, source, 'normalization.mean', MEAN_RANGE);
  expectTriple(h.normalization.std, source, 'normalization.std', STD_RANGE);
  if (typeof h.score !== 'object' || h.score === null || !isText(h.score.scale)) fail(source, 'missing score.scale');
  if (h.score.threshold !== null && !(typeof h.score.threshold === 'number' && Math.abs(h.score.threshold) <= MAX_ABS_THRESHOLD)) {
    fail(source, `score.threshold must be null or a number between -${MAX_ABS_THRESHOLD} and ${MAX_ABS_THRESHOLD}, got ${shown(h.score.threshold)}`);
  }
  if (h.micronsPerPixel !== null && !(typeof h.micronsPerPixel === 'number' && plausibleMpp(h.micronsPerPixel))) {
    fail(source, `micronsPerPixel must be null or a number between ${MPP_RANGE.min} and ${MPP_RANGE.max}, got ${shown(h.micronsPerPixel)}`);
  }
  const p = h.provenance;
  if (typeof p !== 'object' || p === null || !isText(p.source) || !(p.license === null || isText(p.license)) || !isText(p.createdBy) || !isText(p.createdAt) || !(p.notes === undefined || isText(p.notes))) {
    fail(source, 'provenance must hold source, license (or null), createdBy and createdAt as strings');
  }
  if (!Array.isArray(h.tensors)) fail(source, 'missing tensors list');
  if (!isIntegerIn(h.weightsByteLength, 0, 2 ** 40)) fail(source, 'bad weightsByteLength');
  if (typeof h.weightsSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.weightsSha256)) fail(source, 'bad weightsSha256');
  return h;
}

/** Parses and validates a model file's bytes. `source` names it in errors. */
export function parseModelFile(bytes: Uint8Array, source = 'model file'): ModelFile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MODEL_MAGIC) {
    fail(source, `not an fqa model file (no ${MODEL_MAGIC} signature)`);
  }
  const version = buf.readUInt32LE(8);
  if (version !== MODEL_FORMAT_VERSION) {
    const hint = version === 1 ? '; version 1 had no header checksum: convert or train the model again' : '';
    fail(source, `model format version ${version} is not supported (this fqa reads version ${MODEL_FORMAT_VERSION}${hint})`);
  }
  if (buf.length < PREAMBLE_BYTES) fail(source, `truncated: header needs a ${PREAMBLE_BYTES}-byte preamble, file has ${buf.length} bytes`);
  const headerBytes = buf.readUInt32LE(12);
  if (PREAMBLE_BYTES + headerBytes > buf.length) fail(source, `truncated: header needs ${headerBytes} bytes, file has ${buf.length - PREAMBLE_BYTES}`);
  const headerSha = createHash('sha256').update(buf.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerBytes)).digest();
  if (!headerSha.equals(buf.subarray(HEADER_SHA_AT, HEADER_SHA_AT + 32))) fail(source, 'header does not match its SHA-256 (corrupted file)');
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8', PREAMBLE_BYTES, PREAMBLE_BYTES + headerBytes));
  } catch (err) {
    fail(source, `header is not valid JSON (${(err as Error).message})`);
  }
  const header = validateHeader(raw, source);
  const weightsStart = PREAMBLE_BYTES + headerBytes;
  const weights = buf.subarray(weightsStart);
  if (weights.length !== header.weightsByteLength) {
    fail(source, `truncated or padded: header declares ${header.weightsByteLength} weight bytes, file holds ${weights.length}`);
  }
  if (createHash('sha256').update(weights).digest('hex') !== header.weightsSha256) {
    fail(source, 'weights do not match their SHA-256 (corrupted file)');
  }
  const want = expectedShapes(header, source);
  const tensors = new Map<string, Float32Array>();
  for (const t of header.tensors) {
    if (typeof t?.name !== 'string' || !Array.isArray(t.shape) || !t.shape.every((d) => isIntegerIn(d, 1, 2 ** 24))) {
      fail(source, `bad tensor entry ${JSON.stringify(t)}`);
    }
    if (!want.has(t.name)) fail(source, `unexpected tensor '${t.name}' for ${header.architecture}`);
    if (tensors.has(t.name)) fail(source, `tensor '${t.name}' appears twice`);
    const expected = want.get(t.name)!;
    if (expected.join('x') !== t.shape.join('x')) {
      fail(source, `tensor '${t.name}' has shape [${t.shape.join(', ')}] but ${header.architecture} needs [${expected.join(', ')}]`);
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (!isIntegerIn(t.offset, 0, header.weightsByteLength) || t.offset % 4 !== 0 || t.offset + 4 * count > weights.length) {
      fail(source, `tensor '${t.name}' lies outside the weights section`);
    }
    // A byte copy (little-endian hosts, as the file): per-value reads take seconds for ResNet-101.
    const bytes = new Uint8Array(4 * count);
    bytes.set(weights.subarray(t.offset, t.offset + 4 * count));
    const values = new Float32Array(bytes.buffer);
    for (let i = 0; i < count; i++) {
      if (!Number.isFinite(values[i]!)) fail(source, `tensor '${t.name}' holds a non-finite value (${values[i]}) at index ${i}`);
      if (Math.abs(values[i]!) > MAX_ABS_WEIGHT) fail(source, `tensor '${t.name}' holds ${values[i]} at index ${i}, beyond the ±${MAX_ABS_WEIGHT} any trained weight has`);
    }
    tensors.set(t.name, values);
  }
  for (const name of want.keys()) if (!tensors.has(name)) fail(source, `missing tensor '${name}'`);
  return { header, tensors };
}

export async function readModelFile(file: string): Promise<ModelFile> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(file, MAX_MODEL_FILE_BYTES, 'model file');
  } catch (err) {
    const message = (err as Error).message.replace(`${file}: no such file`, `${file}: model file not found`);
    throw new ModelFileError(message, { cause: err });
  }
  return parseModelFile(bytes, file);
}

/** Serializes a model; tensors are written in the order given. */
export function encodeModelFile(header: Omit<ModelHeader, 'tensors' | 'weightsByteLength' | 'weightsSha256'>, tensors: { name: string; shape: number[]; data: Float32Array }[]): Buffer {
  let offset = 0;
  const entries: TensorEntry[] = [];
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new ModelFileError(`tensor '${t.name}': shape [${t.shape.join(', ')}] needs ${count} values, got ${t.data.length}`);
    entries.push({ name: t.name, shape: t.shape, offset });
    offset += 4 * count;
  }
  const weights = Buffer.alloc(offset);
  for (const [i, t] of tensors.entries()) weights.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), entries[i]!.offset);
  const full: ModelHeader = { ...header, tensors: entries, weightsByteLength: offset, weightsSha256: createHash('sha256').update(weights).digest('hex') };
  let json = JSON.stringify(full, null, 1);
  json += ' '.repeat((8 - ((PREAMBLE_BYTES + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const preamble = Buffer.alloc(PREAMBLE_BYTES);
  preamble.write(MODEL_MAGIC, 0, 'latin1');
  preamble.writeUInt32LE(MODEL_FORMAT_VERSION, 8);
  preamble.writeUInt32LE(headerBytes.length, 12);
  createHash('sha256').update(headerBytes).digest().copy(preamble, HEADER_SHA_AT);
  return Buffer.concat([preamble, headerBytes, weights]);
}

/** Writes a model file atomically. */
export async function writeModelFile(file: string, bytes: Buffer): Promise<void> {
  await writeAtomic(file, bytes);
}

function tensor(m: ModelFile, name: string): Float32Array {
  const t = m.tensors.get(name);
  if (!t) throw new ModelFileError(`missing tensor '${name}'`);
  return t;
}

/** The architecture, its configuration and layer graph of a parsed model. */
export function modelArchitecture(m: ModelFile): { definition: ArchitectureDefinition<unknown>; config: unknown; graph: Graph; backends: BackendName[] } {
  const definition = findArchitecture(m.header.architecture);
  if (!definition) throw new ModelFileError(`unknown architecture '${m.header.architecture}'`);
  const config = definition.configFromHeader(m.header, (message) => {
    throw new ModelFileError(message);
  });
  return { definition, config, graph: definition.graph(config), backends: definition.backends(config) };
}

/** The spec the native addon takes (architectures with a native kernel); the native side re-validates it. */
export function toNativeSpec(m: ModelFile): NativeModelSpec {
  const { definition, config, backends } = modelArchitecture(m);
  if (!definition.nativeSpec || !backends.includes('native')) throw new ModelFileError(`${m.header.architecture} has no native kernel (backends: ${backends.join(', ')})`);
  return definition.nativeSpec(config, (name) => tensor(m, name), m.header);
}

/** A model ready to score: its header, weights and graph, plus the native handle where one runs it. */
export interface LoadedModel {
  header: ModelHeader;
  /** The validated native model, or null for architectures without a native kernel (deep models). */
  native: NativeModel | null;
  tensors: Map<string, Float32Array>;
  graph: Graph;
  /** Backends that can run this model, fastest first. */
  backends: BackendName[];
  file: string;
}

export async function loadModel(file: string): Promise<LoadedModel> {
  return toLoadedModel(await readModelFile(file), file);
}

/** A parsed model made ready to score (the native handle created where the architecture has one). */
export function toLoadedModel(m: ModelFile, file: string): LoadedModel {
  try {
    const { graph, backends } = modelArchitecture(m);
    const native = backends.includes('native') ? createNativeModel(toNativeSpec(m)) : null;
    return { header: m.header, native, tensors: m.tensors, graph, backends, file };
  } catch (err) {
    throw new ModelFileError(`${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The model shipped with fqa (trained by fqa; see models/README.md), used when none is given. */
export const DEFAULT_MODEL_PATH = fileURLToPath(new URL('../models/fqa-default.fqa', import.meta.url));
