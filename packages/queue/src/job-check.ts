/**
 * A job is input from whoever can write to the Redis, not a message from `queue add`: a worker
 * admits it in three stages before it reads or writes a byte for it.
 *
 *   1. signature: with a queue secret, the job must carry the HMAC-SHA256 of its data under that
 *      secret (compared in constant time), so only holders of the secret can make work;
 *   2. schema: every field has the type and range `queue add` gives it (the options go through
 *      core's validateScanOptions), and nothing else is there;
 *   3. roots: the slide and model resolve (symlinks followed) inside the input roots the worker was
 *      started with and are regular files; the output folder resolves inside an output root.
 *
 * A job that fails any stage fails at once with one line saying why (UnrecoverableError: it would
 * fail the same way on every attempt and every worker), and the worker goes on with the next.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { lstat, mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { InputError, OPTION_PERCENT_FIELDS, UsageError, fileKind, fractionToPercent, readRegularFile, validateScanOptions } from '@fqa/core';
import { JOB_LIMITS, QUEUE_SECRET_CHARS, QUEUE_SECRET_ENV } from './defaults.js';
import { FRACTIONS_JOB_FORMAT, SCAN_JOB_FORMAT, SCAN_JOB_OPTION_KEYS, scanOptionsOfJob, type ScanJobData } from './scan-job.js';

/** A job that no worker will run: its reason is one line, shown by `queue status`. */
export class RejectedJobError extends UnrecoverableError {}

/**
 * How a worker words a job's rejection (its failedReason), so `queue report` can leave the job out:
 * its report file would be written by whoever forged it.
 */
export function rejectionReason(id: string, reason: string): string {
  return `job ${printable(id)} rejected: ${reason}`;
}

export function isRejected(job: { id?: string; failedReason?: string }): boolean {
  return typeof job.failedReason === 'string' && job.failedReason.startsWith(rejectionReason(String(job.id), ''));
}

/** A string from a job, safe to print on one line: control characters escaped, length bounded. */
export function printable(text: string, max: number = JOB_LIMITS.reasonChars): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > max ? `${escaped.slice(0, max - 3)}...` : escaped;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `'${printable(value, 80)}'`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${printable(String(value), 80)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// 1. Signature

/**
 * The bytes a signature covers: the job's data without `signature`, as JSON with its keys sorted at
 * every level, so a producer and a worker agree whatever order the fields arrived in.
 */
export function canonicalJobBytes(data: Record<string, unknown>): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (!isPlainObject(value)) return value;
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  };
  const { signature: _ignored, ...rest } = data;
  return JSON.stringify(canonical(rest));
}

export function signJobData<T extends object>(data: T, secret: Buffer): T & { signature: string } {
  const signature = createHmac('sha256', secret).update(canonicalJobBytes(data as Record<string, unknown>)).digest('hex');
  return { ...data, signature };
}

/** True when the job data carries a valid signature under `secret` (for the queue's readers). */
export function hasValidSignature(raw: unknown, secret: Buffer): boolean {
  try {
    checkSignature(raw, secret);
    return true;
  } catch {
    return false;
  }
}

function checkSignature(raw: unknown, secret: Buffer): void {
  if (!isPlainObject(raw) || raw.signature === undefined) throw new RejectedJobError('unsigned job: this worker takes only jobs signed with the queue secret (queue add with the same secret signs them)');
  const given = raw.signature;
  if (typeof given !== 'string' || !/^[0-9a-f]{64}$/.test(given)) throw new RejectedJobError(`bad signature: expected 64 hex digits but received ${describe(given)}`);
  const expected = createHmac('sha256', secret).update(canonicalJobBytes(raw)).digest();
  if (!timingSafeEqual(Buffer.from(given, 'hex'), expected)) throw new RejectedJobError('bad signature: the job was not signed with this worker\'s queue secret, or was changed after signing');
}

/**
 * The queue secret: the contents of `secretFile` (a regular file, trimmed), else $FQA_QUEUE_SECRET,
 * else null (jobs are not signed). Never taken from the command line, where `ps` shows it.
 */
export async function loadQueueSecret(secretFile?: string, env: NodeJS.ProcessEnv = process.env): Promise<Buffer | null> {
  let text: string;
  let from: string;
  if (secretFile !== undefined) {
    text = (await readRegularFile(secretFile, QUEUE_SECRET_CHARS.max, 'queue secret file')).toString('utf8').trim();
    from = secretFile;
  } else if (env[QUEUE_SECRET_ENV] !== undefined) {
    text = env[QUEUE_SECRET_ENV]!.trim();
    from = `$${QUEUE_SECRET_ENV}`;
  } else {
    return null;
  }
  if (text.length < QUEUE_SECRET_CHARS.min || text.length > QUEUE_SECRET_CHARS.max) {
    throw new UsageError(`Expected ${QUEUE_SECRET_CHARS.min} to ${QUEUE_SECRET_CHARS.max} characters for the queue secret but ${from} has ${text.length}`);
  }
  return Buffer.from(text, 'utf8');
}

// ---------------------------------------------------------------------------------------------
// 2. Schema

const JOB_KEYS = new Set(['format', 'slide', 'out', 'stem', 'model', 'modelSha256', 'options', 'signature']);

/** An absolute, normalized path (no '..', no '//'), so what is checked lexically is what the kernel opens. */
function checkPath(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new RejectedJobError(`${field}: expected an absolute path but received ${describe(value)}`);
  if (value.length === 0 || value.length > JOB_LIMITS.pathChars) throw new RejectedJobError(`${field}: expected a path of 1 to ${JOB_LIMITS.pathChars} characters but received ${value.length}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new RejectedJobError(`${field}: control characters in ${describe(value)}`);
  if (!path.isAbsolute(value) || path.normalize(value) !== value || value.split(path.sep).includes('..')) {
    throw new RejectedJobError(`${field}: expected an absolute, normalized path but received ${describe(value)}`);
  }
  return value;
}

/** The stem names the report files `<stem>.json`, `<stem>_files/`, ...: one plain file name. */
function checkStem(value: unknown): string {
  if (typeof value !== 'string') throw new RejectedJobError(`stem: expected a file name but received ${describe(value)}`);
  if (value.length === 0 || value.length > JOB_LIMITS.stemChars) throw new RejectedJobError(`stem: expected 1 to ${JOB_LIMITS.stemChars} characters but received ${value.length}`);
  // eslint-disable-next-line no-control-regex
  if (/[/\\\u0000-\u001f\u007f]/.test(value) || value.startsWith('.')) {
    throw new RejectedJobError(`stem: expected a plain file name (no '/', '\\', control characters or leading '.') but received ${describe(value)}`);
  }
  return value;
}

function checkOptions(value: unknown): ScanJobData['options'] {
  if (!isPlainObject(value)) throw new RejectedJobError(`options: expected an object but received ${describe(value)}`);
  const allowed = new Set<string>(SCAN_JOB_OPTION_KEYS);
  for (const key of Object.keys(value)) if (!allowed.has(key)) throw new RejectedJobError(`options: unexpected field ${describe(key)} (expected only ${SCAN_JOB_OPTION_KEYS.join(', ')})`);
  for (const [key, v] of Object.entries(value)) if (typeof v !== 'number') throw new RejectedJobError(`options.${key}: expected a number but received ${describe(v)}`);
  for (const key of Object.values(OPTION_PERCENT_FIELDS)) {
    const v = value[key] as number | undefined;
    if (v !== undefined && !(v >= 0 && v <= 100)) throw new RejectedJobError(`options.${key}: expected a percentage between 0 and 100 but received ${describe(v)}`);
  }
  try {
    // The same checks, and messages, as `fqa-scan scan` gives its options.
    validateScanOptions(scanOptionsOfJob(value));
  } catch (err) {
    if (err instanceof UsageError) throw new RejectedJobError(`options: ${err.message}`);
    throw err;
  }
  return value as ScanJobData['options'];
}

/**
 * A format-1 job's options (shares as fractions: minTissue, maxOutOfFocus) as format 2 has them
 * (minTissuePct, maxOutOfFocusPct), checked afterwards like any job's. Anything that is not a plain
 * object, or not a number, is left for checkOptions to refuse.
 */
function sharesInPercent(options: unknown): unknown {
  if (!isPlainObject(options)) return options;
  return Object.fromEntries(Object.entries(options).map(([key, v]) => {
    const renamed = Object.hasOwn(OPTION_PERCENT_FIELDS, key) ? OPTION_PERCENT_FIELDS[key as keyof typeof OPTION_PERCENT_FIELDS] : undefined;
    return renamed === undefined ? [key, v] : [renamed, typeof v === 'number' ? fractionToPercent(v) : v];
  }));
}

/** The job's data if it is an fqa scan job, field by field; else a RejectedJobError saying what is wrong. */
export function parseScanJobData(raw: unknown): ScanJobData {
  if (!isPlainObject(raw)) throw new RejectedJobError(`not an fqa scan job: its data is ${describe(raw)}, not an object`);
  for (const key of Object.keys(raw)) if (!JOB_KEYS.has(key)) throw new RejectedJobError(`not an fqa scan job: unexpected field ${describe(key)}`);
  if (raw.format !== SCAN_JOB_FORMAT && raw.format !== FRACTIONS_JOB_FORMAT) {
    throw new RejectedJobError(`job format ${describe(raw.format)} is not a format this worker's fqa reads (${FRACTIONS_JOB_FORMAT} or ${SCAN_JOB_FORMAT}): run the same fqa version everywhere`);
  }
  const data: ScanJobData = {
    format: SCAN_JOB_FORMAT,
    slide: checkPath(raw.slide, 'slide'),
    out: checkPath(raw.out, 'out'),
    stem: checkStem(raw.stem),
    model: raw.model === null ? null : checkPath(raw.model, 'model'),
    modelSha256: '',
    options: checkOptions(raw.format === FRACTIONS_JOB_FORMAT ? sharesInPercent(raw.options) : raw.options),
  };
  if (typeof raw.modelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(raw.modelSha256)) throw new RejectedJobError(`modelSha256: expected 64 hex digits but received ${describe(raw.modelSha256)}`);
  data.modelSha256 = raw.modelSha256;
  if (raw.signature !== undefined) {
    if (typeof raw.signature !== 'string') throw new RejectedJobError(`signature: expected 64 hex digits but received ${describe(raw.signature)}`);
    data.signature = raw.signature;
  }
  return data;
}

/** The job's data when it passes the schema check, else null: for readers of the queue (status, report). */
export function scanJobDataOrNull(raw: unknown): ScanJobData | null {
  try {
    return parseScanJobData(raw);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Roots

/** The folders a worker reads slides and models from, and writes reports to, as real paths. */
export interface JobRoots {
  slides: string[];
  out: string[];
}

/** Real paths of the roots a worker is started with: existing folders, at least one of each. */
export async function resolveJobRoots(roots: { slides: string[]; out: string[] }): Promise<JobRoots> {
  const resolve = async (dirs: string[], option: string) => {
    if (dirs.length === 0) throw new UsageError(`--${option} DIR is required: a worker reads and writes only inside the folders it is given (see docs/queue.md)`);
    return Promise.all(dirs.map(async (dir) => {
      let info;
      let real;
      try {
        real = await realpath(dir);
        info = await stat(real);
      } catch (err) {
        throw new UsageError(`--${option} ${dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message}`);
      }
      if (!info.isDirectory()) throw new UsageError(`--${option} ${dir}: not a folder`);
      return real;
    }));
  };
  return { slides: await resolve(roots.slides, 'slides-root'), out: await resolve(roots.out, 'out-root') };
}

function insideAny(real: string, roots: string[]): boolean {
  return roots.some((root) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep));
}

/** The real path of `file`, or an InputError naming it (a missing slide may be a network mount's hiccup). */
async function realOf(file: string, field: string): Promise<string> {
  try {
    return await realpath(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${field} ${printable(file)}: ${code === 'ENOENT' ? 'no such file' : code === 'ELOOP' ? 'too many levels of symbolic links' : (err as Error).message}`, { cause: err });
  }
}

/**
 * Where a path would resolve: the real path of its deepest existing ancestor plus the rest (the
 * path is normalized, so the rest adds no symlink and no '..'). For a path that exists, its real path.
 */
async function plannedRealPath(file: string, field: string): Promise<string> {
  let existing = file;
  for (;;) {
    try {
      await lstat(existing);
      break;
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
  }
  return path.join(await realOf(existing, field), path.relative(existing, file));
}

function outsideRoots(field: string, file: string, real: string, option: string): RejectedJobError {
  return new RejectedJobError(`${field} ${printable(file)}${real === file ? '' : ` (${printable(real)})`} is outside the worker's ${option} folders`);
}

async function confineInput(file: string, roots: string[], field: 'slide' | 'model'): Promise<void> {
  // Outside the roots is refused whether the file exists or not: a job cannot probe the rest of the disk.
  const planned = await plannedRealPath(file, field);
  if (!insideAny(planned, roots)) throw outsideRoots(field, file, planned, '--slides-root');
  const real = await realOf(file, field);
  if (!insideAny(real, roots)) throw outsideRoots(field, file, real, '--slides-root');
  // A FIFO would block the scan forever, a device would be read without end: only regular files.
  const info = await stat(real);
  if (!info.isFile()) throw new RejectedJobError(`${field} ${printable(file)} is ${fileKind(info)}, not a regular file`);
}

/** The real output folder of a job, created inside an output root if missing, and resolved again once created. */
async function confineOutput(out: string, roots: string[]): Promise<string> {
  const planned = await plannedRealPath(out, 'out');
  if (!insideAny(planned, roots)) throw outsideRoots('out', out, planned, '--out-root');
  try {
    await mkdir(planned, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new RejectedJobError(`out ${printable(out)} is not a folder`);
    throw new InputError(`out ${printable(out)}: cannot create the folder (${code ?? (err as Error).message})`, { cause: err });
  }
  const real = await realOf(planned, 'out');
  if (!insideAny(real, roots)) throw outsideRoots('out', out, real, '--out-root');
  if (!(await stat(real)).isDirectory()) throw new RejectedJobError(`out ${printable(out)} is not a folder`);
  return real;
}

export interface AdmittedJob {
  data: ScanJobData;
  /** The output folder as a real path inside an output root: where the reports are written. */
  outDir: string;
}

/**
 * All three stages for one job. Rejections are RejectedJobError (final); a slide or model that is
 * missing is an InputError (retried: shared storage can be briefly away).
 */
export async function admitScanJob(raw: unknown, roots: JobRoots, secret: Buffer | null): Promise<AdmittedJob> {
  if (secret !== null) checkSignature(raw, secret);
  const data = parseScanJobData(raw);
  await confineInput(data.slide, roots.slides, 'slide');
  if (data.model !== null) await confineInput(data.model, roots.slides, 'model');
  const outDir = await confineOutput(data.out, roots.out);
  return { data, outDir };
}

/** The previous attempt's <stem>.json, read as a bounded regular file (a FIFO there must not hang the worker). */
export async function readPreviousReportFile(file: string): Promise<string | null> {
  try {
    return (await readRegularFile(file, JOB_LIMITS.previousReportBytes, 'report')).toString('utf8');
  } catch {
    return null;
  }
}
