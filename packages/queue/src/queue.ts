/**
 * The producer side: enqueue slides, read the queue's state, collect finished jobs for a report.
 * Completed and failed jobs are kept in Redis (removeOnComplete/removeOnFail off): they are the
 * record `queue report` builds summary.tsv from, and a kept job id is what makes adding idempotent.
 */
import path from 'node:path';
import { Queue, type Job, type JobState } from 'bullmq';
import type { Redis } from 'ioredis';
import { UsageError, errorRow } from '@fqa/core';
import { QUEUE_DEFAULTS } from './defaults.js';
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
    const previous = await queue.getJob(job.id);
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
    data,
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
  return typeof job.progress === 'number' ? job.progress : 0;
}

export async function queueStatus(queue: ScanQueue): Promise<QueueStatus> {
  const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
  const counts = { waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0, prioritized: c.prioritized ?? 0 };
  const active = (await queue.getJobs(['active'])).filter(Boolean).map((j) => ({ slide: j.data.slide, progress: progressOf(j), worker: j.processedBy ?? null, attempt: j.attemptsStarted }));
  const failed = (await queue.getJobs(['failed'])).filter(Boolean).map((j) => ({ slide: j.data.slide, reason: j.failedReason, attempts: j.attemptsMade }));
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
}

/** Every job in the queue, in pages (a night's scan is thousands). */
async function allJobs(queue: ScanQueue, states: JobState[]): Promise<Job<ScanJobData, ScanJobResult>[]> {
  const out: Job<ScanJobData, ScanJobResult>[] = [];
  const page = 1000;
  for (let start = 0; ; start += page) {
    const jobs = (await queue.getJobs(states, start, start + page - 1, true)).filter(Boolean);
    out.push(...jobs);
    if (jobs.length < page) return out;
  }
}

/**
 * The finished jobs whose reports went to `out`: completed jobs give their summary row, failed ones
 * an error row with the last error. A slide enqueued again with other options has one report file
 * (the later overwrote the earlier), so it gets one row: the job that finished last.
 */
export async function finishedSlides(queue: ScanQueue, out: string): Promise<FinishedSlides> {
  const latest = new Map<string, { finishedOn: number; row: string; verdict: string; job: Job<ScanJobData, ScanJobResult> }>();
  let failed = 0;
  for (const job of await allJobs(queue, ['completed', 'failed'])) {
    if (job.data.out !== out) continue;
    const finishedOn = job.finishedOn ?? 0;
    const previous = latest.get(job.data.stem);
    if (previous && previous.finishedOn > finishedOn) continue;
    const completed = job.returnvalue?.summaryRow !== undefined;
    latest.set(job.data.stem, completed
      ? { finishedOn, row: job.returnvalue.summaryRow, verdict: job.returnvalue.verdict, job }
      : { finishedOn, row: errorRow(job.data.slide, job.failedReason ?? 'failed', job.data.stem), verdict: 'error', job });
  }
  const unfinished = (await allJobs(queue, ['waiting', 'active', 'delayed', 'prioritized'])).filter((j) => j.data.out === out).length;
  const entries = [...latest.values()].sort((a, b) => (a.row < b.row ? -1 : 1));
  for (const e of entries) if (e.verdict === 'error') failed++;
  const failedJobs = entries.filter((e) => e.verdict === 'error').map((e) => ({ slide: e.job.data.slide, stem: e.job.data.stem, reason: e.job.failedReason ?? 'failed' }));
  const models = [...new Set(entries.map((e) => (e.job.data.model === null ? 'shipped model' : path.basename(e.job.data.model))))].sort();
  return { rows: entries.map((e) => e.row), verdicts: entries.map((e) => e.verdict), failed, unfinished, failedJobs, models };
}

/** The output folders jobs in this queue write to (for a message when --out names none of them). */
export async function queueFolders(queue: ScanQueue): Promise<string[]> {
  const folders = new Set<string>();
  for (const job of await allJobs(queue, ['completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized'])) folders.add(job.data.out);
  return [...folders].sort();
}
