/**
 * Training checkpoints: everything a run needs to continue exactly where it stopped (weights,
 * BatchNorm statistics, Adam moments, step and epoch, history), written atomically after every
 * epoch. Layout: the magic `FQACKPT1`, a little-endian u32 header length, the JSON header, zero
 * padding to 4 bytes, then the float32 arrays in header order. The arrays are stored bit for bit,
 * so a resumed run computes the same weights as an uninterrupted one. Version 2 holds the model file's
 * (PyTorch) layouts, whichever engine wrote it; version 1 (tfjs layouts) is still read.
 */
import { readFile } from 'node:fs/promises';
import { writeAtomic } from '../atomic-write.js';
import { InputError, UsageError } from '../errors.js';
import type { EpochRecord } from './trainer.js';

const MAGIC = 'FQACKPT1';

export interface CheckpointHeader {
  format: 'fqa-checkpoint';
  /** 2: model-file layouts; 1: the tfjs engine's layouts (converted on resume). */
  version: 1 | 2;
  /** The options that must match for a resume (architecture, schedule, data, seed, normalization). */
  run: Record<string, unknown>;
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  seconds: number;
  samples: number;
  history: EpochRecord[];
  arrays: { name: string; length: number }[];
}

export interface Checkpoint {
  header: CheckpointHeader;
  arrays: Map<string, Float32Array>;
}

export async function writeCheckpoint(file: string, header: Omit<CheckpointHeader, 'format' | 'version' | 'arrays'>, arrays: Map<string, Float32Array>): Promise<void> {
  const full: CheckpointHeader = { format: 'fqa-checkpoint', version: 2, ...header, arrays: [...arrays].map(([name, a]) => ({ name, length: a.length })) };
  const json = Buffer.from(JSON.stringify(full), 'utf8');
  const start = Math.ceil((MAGIC.length + 4 + json.length) / 4) * 4;
  const total = start + [...arrays.values()].reduce((s, a) => s + a.byteLength, 0);
  const out = Buffer.alloc(total);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(json.length, MAGIC.length);
  json.copy(out, MAGIC.length + 4);
  let offset = start;
  for (const a of arrays.values()) {
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(out, offset);
    offset += a.byteLength;
  }
  await writeAtomic(file, out);
}

/** Reads a checkpoint; a damaged or foreign file is an InputError naming it. */
export async function readCheckpoint(file: string): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new InputError(`${file}: cannot read the checkpoint (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  const bad = (why: string): never => {
    throw new InputError(`${file}: not a usable fqa checkpoint (${why}); delete it to train from the start`);
  };
  if (bytes.length < MAGIC.length + 4 || bytes.toString('latin1', 0, MAGIC.length) !== MAGIC) bad('no FQACKPT1 magic');
  const length = bytes.readUInt32LE(MAGIC.length);
  if (MAGIC.length + 4 + length > bytes.length) bad('header runs past the end of the file');
  let header: CheckpointHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', MAGIC.length + 4, MAGIC.length + 4 + length)) as CheckpointHeader;
  } catch {
    return bad('header is not JSON');
  }
  if (header?.format !== 'fqa-checkpoint' || (header.version !== 1 && header.version !== 2) || !Array.isArray(header.arrays) || !Array.isArray(header.history)) bad('unknown header');
  if (!Number.isInteger(header.epoch) || header.epoch < 1 || !Number.isInteger(header.step) || header.step < 0) bad('bad epoch or step');
  let offset = Math.ceil((MAGIC.length + 4 + length) / 4) * 4;
  const arrays = new Map<string, Float32Array>();
  for (const a of header.arrays) {
    if (typeof a?.name !== 'string' || !Number.isInteger(a.length) || a.length < 0) bad('bad array entry');
    if (offset + a.length * 4 > bytes.length) bad(`array '${a.name}' runs past the end of the file`);
    // A copy: the file's buffer is not necessarily 4-byte aligned.
    arrays.set(a.name, new Float32Array(new Uint8Array(bytes.subarray(offset, offset + a.length * 4)).buffer));
    offset += a.length * 4;
  }
  if (offset !== bytes.length) bad(`${bytes.length - offset} bytes after the last array`);
  return { header, arrays };
}

/** A resume must continue the same run: the first option that differs, named. */
export function checkCheckpointRun(file: string, saved: Record<string, unknown>, current: Record<string, unknown>): void {
  for (const key of new Set([...Object.keys(saved), ...Object.keys(current)])) {
    const a = JSON.stringify(saved[key]);
    const b = JSON.stringify(current[key]);
    if (a !== b) throw new UsageError(`${file}: the checkpoint is of a different run (${key} ${a ?? 'unset'} there, ${b ?? 'unset'} now); use the same options, or delete it to start over`);
  }
}
