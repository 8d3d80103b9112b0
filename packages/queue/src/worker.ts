/**
 * The consumer side: a BullMQ worker that runs the normal scan (core's scanSlide and report
 * writers, the same code as `fqa-scan scan`), so a slide's verdict does not depend on where it ran.
 *
 * Delivery is at least once: a job whose worker died is run again elsewhere. Running it twice is
 * harmless: every report file is written atomically (temp file + rename) with the same content, and
 * the per-slide JSON, written last, records its report key (slide content, model, options), so a
 * retry of a job whose reports are complete returns them without scanning again.
 */
import os from 'node:os';
import path from 'node:path';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { FqaError, UsageError, loadModel, reportKey, resolveScanOptions, scanSlide, slideFingerprint, startSlideView, summaryRow, writeSlideReports, type Device } from '@fqa/core';
import { workerConnection } from './connection.js';
import { QUEUE_DEFAULTS } from './defaults.js';
import { resolveQueueName, type QueueName } from './queue.js';
import { RejectedJobError, admitScanJob, printable, rejectionReason, readPreviousReportFile, type JobRoots } from './job-check.js';
import { jobModelPath, scanOptionsOfJob, sha256File, type ScanJobData, type ScanJobResult } from './scan-job.js';

export interface ScanWorkerOptions extends QueueName {
  redis: string;
  /**
   * The only folders this worker reads slides and models from and writes reports to, as real
   * paths (resolveJobRoots); a job naming anything else fails. Required: a job is untrusted input.
   */
  roots: JobRoots;
  /** With a secret, only jobs signed with it (queue add with the same secret) are run. */
  secret?: Buffer | null;
  /** Slides scanned at once by this worker (default 1). */
  concurrency?: number;
  /** Scoring threads per slide (default: the cores divided by concurrency). */
  workers?: number;
  device?: Device;
  /** Lock on a running job, renewed every half of it; a dead worker's job is retried after it expires. */
  lockSeconds?: number;
  /** How often this worker looks for jobs whose lock expired. */
  stalledSeconds?: number;
  /** One line per event (job started, finished, failed; Redis lost and back). */
  log?: (line: string) => void;
}

export interface ScanWorker {
  /** Waits for the running scans, takes no new job, disconnects. */
  close(): Promise<void>;
  /** Stops the running scans between regions and puts their jobs back to waiting for another worker. */
  release(): void;
  /** Resolves once the worker has connected and is taking jobs. */
  ready: Promise<void>;
  readonly name: string;
}

interface PreviousReport {
  provenance?: { key?: string };
  summaryRow?: string;
  summary?: { verdict?: string };
}

async function readPreviousReport(file: string): Promise<PreviousReport | null> {
  const text = await readPreviousReportFile(file);
  try {
    return text === null ? null : (JSON.parse(text) as PreviousReport);
  } catch {
    return null; // none yet (or not ours to trust): scan
  }
}

/** How a job is named in lines: its slide when the data has one, else its id (garbage data has no slide). */
export function jobLabel(job: { id?: string; data: unknown }): string {
  const slide = (job.data as { slide?: unknown } | null)?.slide;
  return typeof slide === 'string' ? printable(slide) : `job ${printable(String(job.id))}`;
}

export function startScanWorker(options: ScanWorkerOptions): ScanWorker {
  const { queue, prefix } = resolveQueueName(options);
  const concurrency = options.concurrency ?? 1;
  const threads = options.workers ?? Math.max(1, Math.floor(os.availableParallelism() / concurrency));
  const name = `${os.hostname()}:${process.pid}`;
  const log = options.log ?? (() => {});
  const lockMs = 1000 * (options.lockSeconds ?? QUEUE_DEFAULTS.lockSeconds);
  const stalledMs = 1000 * (options.stalledSeconds ?? QUEUE_DEFAULTS.stalledSeconds);

  if (!options.roots || options.roots.slides.length === 0 || options.roots.out.length === 0) {
    throw new UsageError('a scan worker needs its slides and output roots (resolveJobRoots): it reads and writes only inside them');
  }
  const roots = options.roots;
  const secret = options.secret ?? null;

  /** Signature, schema and roots (job-check.ts): a job that fails them fails for good, with the reason. */
  async function admit(job: Job<ScanJobData, ScanJobResult>): Promise<{ data: ScanJobData; outDir: string }> {
    try {
      return await admitScanJob(job.data, roots, secret);
    } catch (err) {
      // The job's id, not its slide: a rejected job's slide may be anything.
      if (err instanceof RejectedJobError) throw new RejectedJobError(rejectionReason(String(job.id), err.message));
      if (err instanceof FqaError) throw new Error(`${jobLabel(job)}: ${err.message}`);
      throw err;
    }
  }

  async function processScan(job: Job<ScanJobData, ScanJobResult>, token?: string, signal?: AbortSignal): Promise<ScanJobResult> {
    const { data, outDir } = await admit(job);
    const modelPath = jobModelPath(data);
    const sha = await sha256File(modelPath).catch((err: Error) => {
      throw new Error(`${data.slide}: cannot read the model ${modelPath} on ${name}: ${err.message}`);
    });
    if (sha !== data.modelSha256) {
      throw new UnrecoverableError(`${data.slide}: the model ${modelPath} on ${name} is not the one enqueued (sha256 ${sha.slice(0, 12)}, enqueued ${data.modelSha256.slice(0, 12)}): every worker needs the same model file and fqa version`);
    }
    // The report key of core's folder reports (slide content, model, resolved options): a report
    // with this key is complete and current, from an earlier attempt or an earlier scan.
    const model = await loadModel(modelPath);
    const fingerprint = await slideFingerprint(data.slide).catch((err: Error) => {
      throw new Error(`${data.slide}: ${err.message}`);
    });
    const key = reportKey(fingerprint, sha, resolveScanOptions(model.header, { ...scanOptionsOfJob(data.options), model: modelPath }));
    const reportFile = path.join(outDir, `${data.stem}.json`);
    const previous = await readPreviousReport(reportFile);
    if (previous !== null && previous.provenance?.key === key && typeof previous.summaryRow === 'string') {
      log(`${data.slide}: report already complete and current (an earlier attempt or scan wrote it), not scanned again`);
      return { summaryRow: previous.summaryRow, verdict: previous.summary?.verdict ?? 'unknown', report: reportFile, worker: name, reused: true };
    }
    log(`${data.slide}: started job ${job.id} (attempt ${job.attemptsStarted})`);
    let lastProgress = 0;
    // The zoomable view is written while the slide is scanned, as fqa-scan does.
    const view = startSlideView(outDir, data.stem, data.slide);
    try {
      const result = await scanSlide(data.slide, {
        ...scanOptionsOfJob(data.options),
        model: modelPath,
        workers: threads,
        device: options.device,
        signal,
        onProgress: (p) => {
          // Progress is for `queue status`; a second's resolution is plenty and spares Redis.
          const now = Date.now();
          if (now - lastProgress < 1000 && p.regionsDone < p.regions) return;
          lastProgress = now;
          job.updateProgress(p.regionsDone / Math.max(1, p.regions)).catch(() => {});
        },
      });
      const row = summaryRow(result, data.stem);
      await writeSlideReports(outDir, data.stem, result, { view: view ?? undefined, provenance: { input: data.slide, fingerprint, key } });
      log(`${data.slide}: ${result.summary.verdict}, ${result.summary.patchesScored} patches, ${result.timings.totalSeconds.toFixed(1)} s`);
      return { summaryRow: row, verdict: result.summary.verdict, report: reportFile, worker: name, reused: false };
    } catch (err) {
      await view?.discard();
      if (signal?.aborted) {
        // Released on shutdown: back to waiting without spending one of the job's attempts.
        await job.moveToWait(token);
        log(`${data.slide}: released (worker shutting down)`);
        throw new WaitingError();
      }
      // A usage error (bad options in the job) fails the same way on every worker: no retry.
      if (err instanceof FqaError && err.exitCode === 2) throw new RejectedJobError(`${data.slide}: ${err.message}`);
      if (err instanceof FqaError) throw new Error(err.message);
      throw err;
    }
  }

  // BullMQ leaves a connection it was given open on close(); this one is closed below.
  const connection = workerConnection(options.redis);
  const worker = new Worker<ScanJobData, ScanJobResult>(queue, processScan, {
    connection,
    prefix,
    concurrency,
    name,
    lockDuration: lockMs,
    stalledInterval: stalledMs,
    maxStalledCount: QUEUE_DEFAULTS.maxStalledCount,
    autorun: true,
  });
  // One line per change of state, not one per reconnection attempt while Redis is down.
  let redisDown = false;
  let unreadableSeen = false;
  worker.on('error', (err: Error) => {
    // Job data written into Redis by hand that is not JSON: BullMQ cannot even build the job, so it
    // can neither run nor fail it (it stays active, and BullMQ meets it again every few seconds).
    // Not a lost Redis; said once, and the worker goes on with the other jobs.
    if (err instanceof SyntaxError) {
      if (!unreadableSeen) log(`a job's data in Redis is not JSON (${printable(err.message)}): it is not run (it shows as active in queue status; remove it from Redis by hand)`);
      unreadableSeen = true;
      return;
    }
    if (!redisDown) log(`Redis: ${err.message} (reconnecting)`);
    redisDown = true;
  });
  connection.on('ready', () => {
    if (redisDown) log('Redis: connected again');
    redisDown = false;
  });
  worker.on('failed', (job, err) => {
    if (!job || err instanceof WaitingError || err.message === 'bullmq:movedToWait') return;
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    log(`${jobLabel(job)}: attempt ${job.attemptsMade} failed${final ? ' (final: the job is in failed)' : ', will be retried'}: ${err.message}`);
  });
  return {
    name,
    ready: worker.waitUntilReady().then(() => {}),
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
    release: () => worker.cancelAllJobs('worker shutting down'),
  };
}
