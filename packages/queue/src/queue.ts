/**
 * The producer side: enqueue slides, read the queue's state, collect finished jobs for a report.
 * Completed and failed jobs are kept in Redis (removeOnComplete/removeOnFail off): they are the
 * record `queue report` builds summary.tsv from, and a kept job id is what makes adding idempotent.
 */
import path from 'node:path';
import { Queue, type Job, type JobState } from 'bullmq';
import type { Redis } from 'ioredis';
import { FqaError, UsageError, errorRow } from '@fqa/core';
import { QUEUE_DEFAULTS } from './defaults.js';
import { hasValidSignature, isRejected, printable, scanJobDataOrNull, signJobData } from './job-check.js';
import type { ScanJobData, ScanJobResult } from './scan-job.js';

export interface QueueName {
  queue?: string;
  prefix?: string;
}

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** Queue name and prefix become Redis keys: plain names only (':' is BullMQ's key separator). */
export function resolveQueueName(name: QueueName = {}): { queue: string; prefix: string } {
  const queue = name.queue ?? QUEUE_DEFAULTS.queue;
  const prefix = name.prefix ?? QUEUE_DEFAULTS.prefix;
  for (const [option, value] of [['queue', queue], ['prefix', prefix]] as const) {
    if (!NAME.test(value)) throw new UsageError(`Expected 1 to 100 letters, digits, '.', '_' or '-' for ${option} but received '${value}'`);
  }
  return { queue, prefix };
}

export type ScanQueue = Queue<ScanJobData, ScanJobResult>;

export function openScanQueue(connection: Redis, name: QueueName = {}): ScanQueue {
  const { queue, prefix } = resolveQueueName(name);
  return new Queue<ScanJobData, ScanJobResult>(queue, { connection, prefix });
}

export interface EnqueueOptions {
  attempts?: number;
  /** Re-add slides whose job already completed or failed (a job still waiting or running is left alone). */
  force?: boolean;
  /** The queue secret (loadQueueSecret): each job is signed with it, for workers that require signed jobs. */
  secret?: Buffer | null;
}

export interface EnqueueResult {
  added: ScanJobData[];
  /** Jobs already in the queue with the same id, and their state. */
  existing: { data: ScanJobData; state: string }[];
}

export async function enqueueScans(queue: ScanQueue, jobs: { id: string; data: ScanJobData }[], options: EnqueueOptions = {}): Promise<EnqueueResult> {
  // Two slides with one stem in one folder would overwrite each other's reports.
  const owners = new Map<string, string>();
  for (const { data } of jobs) {
    const key = `${data.out}\0${data.stem}`;
    const owner = owners.get(key);
    if (owner !== undefined && owner !== data.slide) throw new UsageError(`${owner} and ${data.slide} would both write ${data.stem}.json in ${data.out}: rename one or enqueue them with different --out folders`);
    owners.set(key, data.slide);
  }
  const result: EnqueueResult = { added: [], existing: [] };
  const toAdd: { id: string; data: ScanJobData }[] = [];
  const seen = new Set<string>();
  for (const job of jobs) {
    if (seen.has(job.id)) continue;
    seen.add(job.id);
    // A job under this id that BullMQ cannot read (its data overwritten in Redis) is not ours to judge.
    const previous = await queue.getJob(job.id).catch((err: Error) => {
      throw new FqaError(`job ${job.id} for ${job.data.slide} is in the queue but cannot be read (${printable(err.message)}): remove it from Redis, then add again`, 3, { cause: err });
    });
    if (previous) {
      const state = await previous.getState();
      if (!(options.force && (state === 'completed' || state === 'failed'))) {
        result.existing.push({ data: job.data, state });
        continue;
      }
      await previous.remove();
    }
    toAdd.push(job);
  }
  const attempts = options.attempts ?? QUEUE_DEFAULTS.attempts;
  // Adding an id that exists is a no-op in BullMQ, so two producers racing cannot duplicate a slide.
  await queue.addBulk(toAdd.map(({ id, data }) => ({
    name: 'scan',
    data: options.secret ? signJobData(data, options.secret) : data,
    opts: { jobId: id, attempts, backoff: { type: 'exponential', delay: 1000 * QUEUE_DEFAULTS.backoffSeconds }, removeOnComplete: false, removeOnFail: false },
  })));
  result.added = toAdd.map((j) => j.data);
  return result;
}

export interface QueueStatus {
  counts: { waiting: number; active: number; delayed: number; completed: number; failed: number; prioritized: number };
  active: { slide: string; progress: number; worker: string | null; attempt: number }[];
  failed: { slide: string; reason: string; attempts: number }[];
}

/** Progress of a running job, 0..1 (the worker reports regions done / regions). */
function progressOf(job: Job): number {
  return typeof job.progress === 'number' && Number.isFinite(job.progress) ? Math.min(1, Math.max(0, job.progress)) : 0;
}

/**
 * A job as the queue's readers see it. Anyone who can write to the Redis can put anything in a job,
 * so its data is checked (null when it is not an fqa scan job) and the rest printed with care.
 */
interface ListedJob {
  id: string;
  job: Job<ScanJobData, ScanJobResult> | null;
  data: ScanJobData | null;
  /** The slide, or `job <id>` when the data names none. */
  label: string;
  /** Why the job could not be read at all (data that is not JSON), else null. */
  unreadable: string | null;
}

function listed(id: string, job: Job<ScanJobData, ScanJobResult> | null, unreadable: string | null = null): ListedJob {
  const data = job === null ? null : scanJobDataOrNull(job.data);
  return { id, job, data, label: data !== null ? printable(data.slide) : `job ${printable(id)}`, unreadable };
}

/**
 * Every job in the given states, in pages (a night's scan is thousands). A page BullMQ cannot parse
 * (job data that is not JSON, written to Redis by hand) is read job by job, and the job that
 * cannot be read is listed as unreadable rather than failing the whole command.
 */
async function allJobs(queue: ScanQueue, states: JobState[]): Promise<ListedJob[]> {
  const out: ListedJob[] = [];
  const page = 1000;
  for (let start = 0; ; start += page) {
    let jobs: ListedJob[];
    let size: number;
    try {
      const found = (await queue.getJobs(states, start, start + page - 1, true)).filter(Boolean);
      jobs = found.map((j) => listed(String(j.id), j));
      size = found.length;
    } catch {
      const ids = await queue.getRanges(states, start, start + page - 1, true);
      size = ids.length;
      jobs = [];
      for (const id of ids) {
        try {
          const job = await queue.getJob(id);
          if (job) jobs.push(listed(id, job));
        } catch (err) {
          jobs.push(listed(id, null, `job data in Redis cannot be read (${(err as Error).message})`));
        }
      }
    }
    out.push(...jobs);
    if (size < page) return out;
  }
}

export async function queueStatus(queue: ScanQueue): Promise<QueueStatus> {
  const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
  const counts = { waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0, prioritized: c.prioritized ?? 0 };
  const active = (await allJobs(queue, ['active'])).map((j) => ({
    slide: j.label, progress: j.job ? progressOf(j.job) : 0, worker: j.job?.processedBy ? printable(j.job.processedBy) : null, attempt: j.job?.attemptsStarted ?? 0,
  }));
  const failed = (await allJobs(queue, ['failed'])).map((j) => ({
    slide: j.label, reason: printable(j.unreadable ?? j.job?.failedReason ?? 'failed'), attempts: j.job?.attemptsMade ?? 0,
  }));
  return { counts, active, failed };
}

export interface FinishedSlides {
  /** The jobs whose latest attempt for their report failed for good. */
  failedJobs: { slide: string; stem: string; reason: string }[];
  /** Model files of the finished jobs (null: the workers' shipped model). */
  models: string[];
  /** One summary row per slide report in the folder: the latest finished job for each stem. */
  rows: string[];
  verdicts: string[];
  failed: number;
  /** Jobs for this folder not finished yet. */
  unfinished: number;
  /**
   * Finished jobs in the queue that are not fqa scan jobs (bad or forged data), that a worker
   * rejected, or (with a secret) that are not signed with it: listed by `queue status`, never reported.
   */
  invalid: number;
}

/**
 * The finished jobs whose reports went to `out`: completed jobs give their summary row, failed ones
 * an error row with the last error. A slide enqueued again with other options has one report file
 * (the later overwrote the earlier), so it gets one row: the job that finished last. Jobs whose
 * data is not a valid scan job, that a worker rejected (forged), or, given the queue secret, that
 * are not signed with it are counted, never used: their stem would name the error report written
 * here, over the report of the real slide.
 */
export async function finishedSlides(queue: ScanQueue, out: string, secret: Buffer | null = null): Promise<FinishedSlides> {
  const latest = new Map<string, { finishedOn: number; row: string; verdict: string; data: ScanJobData; reason: string }>();
  let failed = 0;
  let invalid = 0;
  for (const { job, data } of await allJobs(queue, ['completed', 'failed'])) {
    if (job === null || data === null || isRejected(job) || (secret !== null && !hasValidSignature(job.data, secret))) {
      invalid++;
      continue;
    }
    if (data.out !== out) continue;
    const finishedOn = job.finishedOn ?? 0;
    const previous = latest.get(data.stem);
    if (previous && previous.finishedOn > finishedOn) continue;
    const result = job.returnvalue as Partial<ScanJobResult> | null | undefined;
    const completed = typeof result?.summaryRow === 'string';
    const reason = printable(job.failedReason ?? 'failed');
    latest.set(data.stem, completed
      ? { finishedOn, row: result!.summaryRow!, verdict: String(result!.verdict), data, reason }
      : { finishedOn, row: errorRow(data.slide, reason, data.stem), verdict: 'error', data, reason });
  }
  const unfinished = (await allJobs(queue, ['waiting', 'active', 'delayed', 'prioritized'])).filter((j) => j.data?.out === out).length;
  const entries = [...latest.values()].sort((a, b) => (a.row < b.row ? -1 : 1));
  for (const e of entries) if (e.verdict === 'error') failed++;
  const failedJobs = entries.filter((e) => e.verdict === 'error').map((e) => ({ slide: e.data.slide, stem: e.data.stem, reason: e.reason }));
  const models = [...new Set(entries.map((e) => (e.data.model === null ? 'shipped model' : path.basename(e.data.model))))].sort();
  return { rows: entries.map((e) => e.row), verdicts: entries.map((e) => e.verdict), failed, unfinished, failedJobs, models, invalid };
}

/** The output folders jobs in this queue write to (for a message when --out names none of them). */
export async function queueFolders(queue: ScanQueue): Promise<string[]> {
  const folders = new Set<string>();
  for (const { data } of await allJobs(queue, ['completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized'])) if (data) folders.add(printable(data.out));
  return [...folders].sort();
}
