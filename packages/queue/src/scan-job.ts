/**
 * A scan job: one slide, the folder its reports go to, the model and the scan options. Jobs carry
 * paths, not pixels: every worker must see the slide, the model and the output folder at the same
 * path (shared storage, see docs/queue.md).
 *
 * The job id is a hash of the slide (path, size, modification time), the model's bytes, the options
 * and the output folder, so enqueueing is idempotent: the same slide with the same model and options
 * is one job however often it is added, and a changed slide, model or option is a new one.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_MODEL_PATH, InputError, MAX_MODEL_FILE_BYTES, readRegularFile, reportStem, type ScanOptions } from '@fqa/core';

/**
 * The scan options that change a slide's scores or verdict (device and threads do not). Shares are
 * percentages, as typed on `queue add`'s command line and written in every report: a job is a record
 * people read too (queue dashboards, redis-cli). scanOptionsOfJob gives scanSlide its fractions.
 */
export interface ScanJobOptions {
  patchSize?: number;
  stride?: number;
  mpp?: number;
  threshold?: number;
  minTissuePct?: number;
  maxOutOfFocusPct?: number;
}

/** Every key a job's options may have, in the order they are hashed and signed. */
export const SCAN_JOB_OPTION_KEYS = ['patchSize', 'stride', 'mpp', 'threshold', 'minTissuePct', 'maxOutOfFocusPct'] as const;

/** A job's options as scanSlide takes them: the shares as fractions. */
export function scanOptionsOfJob(options: ScanJobOptions): Pick<ScanOptions, 'patchSize' | 'stride' | 'mpp' | 'threshold' | 'minTissue' | 'maxOutOfFocus'> {
  const { minTissuePct, maxOutOfFocusPct, ...rest } = options;
  return {
    ...rest,
    ...(minTissuePct === undefined ? {} : { minTissue: minTissuePct / 100 }),
    ...(maxOutOfFocusPct === undefined ? {} : { maxOutOfFocus: maxOutOfFocusPct / 100 }),
  };
}

export interface ScanJobData {
  /** Format of this record (SCAN_JOB_FORMAT); a worker refuses jobs from a newer fqa. */
  format: typeof SCAN_JOB_FORMAT;
  /** Absolute path of the slide. */
  slide: string;
  /** Absolute output folder, and the stem of this slide's report files in it. */
  out: string;
  stem: string;
  /** Absolute model path, or null for the shipped model of the worker's fqa. */
  model: string | null;
  /** Checked by the worker before it scans: every machine must score with the same model. */
  modelSha256: string;
  options: ScanJobOptions;
  /** HMAC-SHA256 of the rest (job-check.ts), present when `queue add` had the queue secret. */
  signature?: string;
}

export interface ScanJobResult {
  /** The slide's summary.tsv row (core's summaryRow). */
  summaryRow: string;
  verdict: string;
  /** The per-slide JSON report (written last; its presence marks the slide done). */
  report: string;
  /** host:pid of the worker that wrote the report. */
  worker: string;
  /** True when the report was already there from an earlier attempt of this job (a worker that died after writing it). */
  reused: boolean;
}

/** 2: shares in percent (minTissuePct, maxOutOfFocusPct). */
export const SCAN_JOB_FORMAT = 2;
/**
 * Jobs that `queue add` of an earlier fqa wrote, with the shares as fractions (minTissue,
 * maxOutOfFocus): still read (job-check.ts turns them into format 2), so a queue filled before an
 * upgrade is scanned and reported.
 */
export const FRACTIONS_JOB_FORMAT = 1;

/** SHA-256 of a model file: a regular file of bounded size, so a FIFO or /dev/zero is an error, not a hang. */
export async function sha256File(file: string, what = 'model'): Promise<string> {
  return createHash('sha256').update(await readRegularFile(file, MAX_MODEL_FILE_BYTES, what)).digest('hex');
}

/** Options in a fixed key order without undefined values, so equal options hash equally. */
function canonicalOptions(o: ScanJobOptions): ScanJobOptions {
  const out: ScanJobOptions = {};
  for (const key of SCAN_JOB_OPTION_KEYS) if (o[key] !== undefined) out[key] = o[key];
  return out;
}

/** A job for one slide; the slide must exist here (it is stat'ed for the id). */
export async function makeScanJob(slide: string, out: string, model: { path: string | null; sha256: string }, options: ScanJobOptions): Promise<{ id: string; data: ScanJobData }> {
  const absolute = path.resolve(slide);
  let info;
  try {
    info = await stat(absolute);
  } catch (err) {
    throw new InputError(`${slide}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
  if (!info.isFile()) throw new InputError(`${slide}: not a file`);
  const data: ScanJobData = {
    format: SCAN_JOB_FORMAT,
    slide: absolute,
    out: path.resolve(out),
    stem: reportStem(absolute),
    model: model.path === null ? null : path.resolve(model.path),
    modelSha256: model.sha256,
    options: canonicalOptions(options),
  };
  const identity = JSON.stringify([data.slide, info.size, Math.round(info.mtimeMs), data.out, data.modelSha256, data.options]);
  // BullMQ job ids must not be integers and may not contain ':' (its key separator).
  return { id: `scan-${createHash('sha256').update(identity).digest('hex').slice(0, 40)}`, data };
}

/** The model a job names, as this machine sees it. */
export function jobModelPath(data: ScanJobData): string {
  return data.model ?? DEFAULT_MODEL_PATH;
}
