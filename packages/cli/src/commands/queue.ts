/**
 * fqa-scan queue add|status|report: a scan spread over many machines. `add` enqueues one job per
 * slide in Redis (BullMQ), `fqa-scan worker` on any machine runs them, `status` shows where the
 * queue stands and `report` writes summary.tsv over the finished jobs.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_MAX_OUT_OF_FOCUS, DEFAULT_MIN_TISSUE, DEFAULT_MODEL_PATH, FqaError, MPP_RANGE, UsageError, loadModel, nativeVersion, parseIntegerOption, parseNumberOption,
  hasErrorReport, reportsWrittenSinceSummary, validateScanOptions, writeErrorReport, writeIndexPage, writeSummaryTsv,
} from '@fqa/core';
import {
  DEFAULT_REDIS_URL, QUEUE_DEFAULTS, QUEUE_SECRET_ENV, REDIS_URL_ENV, clientConnection, displayUrl, enqueueScans, finishedSlides, loadQueueSecret, makeScanJob,
  openScanQueue, queueFolders, queueStatus, resolveQueueName, scanOptionsOfJob, sha256File, type ScanQueue,
} from '@fqa/queue';
import type { Command } from '../index.js';
import { parsePercentage } from '../percent-option.js';
import { expandInputs } from '../inputs.js';

export const connectionHelp = `  --redis URL        Redis (default: $${REDIS_URL_ENV}, else ${DEFAULT_REDIS_URL})
  --queue NAME       queue name (default ${QUEUE_DEFAULTS.queue})
  --prefix P         Redis key prefix (default ${QUEUE_DEFAULTS.prefix}); labs sharing one Redis each take their own`;

const usage = `Usage: fqa-scan queue add <slide|folder|glob...> --out DIR [--model FILE] [scan options]
       fqa-scan queue status [--json]
       fqa-scan queue report --out DIR [--secret-file F]

A scan spread over machines (docs/queue.md): 'add' enqueues one job per slide, 'fqa-scan worker' on
each machine scans them with the normal scan, 'status' shows waiting/active/done/failed, 'report'
writes summary.tsv and index.html over the reports in DIR. Slides, model and DIR must be
at the same path on every machine (shared storage). Adding a slide already queued or done with the
same model and options adds nothing.

Options (add):
  --out DIR          output folder for the reports (required)
  --model FILE       fqa model file (default: the workers' shipped model, checked to be this one)
  --patch P, --stride S, --mpp X, --threshold T    as for fqa-scan scan
  --max-out-of-focus PCT   a slide fails when more than PCT % of its tissue is out of focus (default ${100 * DEFAULT_MAX_OUT_OF_FOCUS})
  --min-tissue PCT   score a patch when at least PCT % of it is tissue (default ${100 * DEFAULT_MIN_TISSUE})
  --attempts N       scan attempts per slide before it lands in failed (default ${QUEUE_DEFAULTS.attempts})
  --force            enqueue again slides whose job completed or failed
  --secret-file F    sign the jobs with the shared secret in F (default: $${QUEUE_SECRET_ENV} when set),
                     for workers that run only signed jobs; report: count only jobs signed with it
Options (all):
${connectionHelp}
  --json             status as JSON

Exit codes: add 0, or 3 when some input is missing; report 0 all pass, 1 some slide fails QC,
3 some slide failed every attempt; 2 usage error; 3 Redis unreachable.`;

function redisUrl(value: string | undefined): string {
  return value ?? process.env[REDIS_URL_ENV] ?? DEFAULT_REDIS_URL;
}

async function withQueue<T>(values: { redis?: string; queue?: string; prefix?: string }, use: (queue: ScanQueue, label: string) => Promise<T>): Promise<T> {
  const url = redisUrl(values.redis);
  const name = resolveQueueName(values);
  const connection = await clientConnection(url);
  const queue = openScanQueue(connection, name);
  try {
    return await use(queue, `${name.prefix}/${name.queue} at ${displayUrl(url)}`);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

const connectionOptions = { redis: { type: 'string' }, queue: { type: 'string' }, prefix: { type: 'string' } } as const;

async function add(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...connectionOptions, out: { type: 'string' }, model: { type: 'string' }, patch: { type: 'string' }, stride: { type: 'string' },
      mpp: { type: 'string' }, threshold: { type: 'string' }, attempts: { type: 'string' }, force: { type: 'boolean', default: false },
      'max-out-of-focus': { type: 'string' }, 'min-tissue': { type: 'string' }, 'secret-file': { type: 'string' },
    },
  });
  if (positionals.length === 0) throw new UsageError('no slides given (see fqa-scan queue --help)');
  if (values.out === undefined) throw new UsageError('--out DIR is required: the folder (on shared storage) the workers write the reports to');
  const options = {
    patchSize: parseIntegerOption(values.patch, 'patch', 8, 4096),
    stride: parseIntegerOption(values.stride, 'stride', 1, 4096),
    mpp: parseNumberOption(values.mpp, 'mpp', { range: MPP_RANGE }),
    threshold: parseNumberOption(values.threshold, 'threshold'),
    // Percent in the job, as typed: a job is a record people read too (see ScanJobOptions).
    minTissuePct: parsePercentage(values['min-tissue'], 'min-tissue'),
    maxOutOfFocusPct: parsePercentage(values['max-out-of-focus'], 'max-out-of-focus'),
  };
  // The checks a worker makes on the job's options: a bad value is one usage error here, not a failed job per slide.
  validateScanOptions(scanOptionsOfJob(options));
  const secret = await loadQueueSecret(values['secret-file']);
  const attempts = parseIntegerOption(values.attempts, 'attempts', 1, 100);
  // The model is validated here, once, so a bad model file is one error and not a failed job per slide.
  const modelFile = values.model ?? DEFAULT_MODEL_PATH;
  await loadModel(modelFile);
  const model = { path: values.model ?? null, sha256: await sha256File(modelFile) };
  const jobs: Awaited<ReturnType<typeof makeScanJob>>[] = [];
  let missing = 0;
  const { slides, skipped } = expandInputs(positionals, { out: values.out });
  for (const s of skipped) process.stderr.write(`fqa-scan: ${s.file}: not enqueued (${s.reason})\n`);
  for (const slide of slides) {
    try {
      jobs.push(await makeScanJob(slide, values.out, model, options));
    } catch (err) {
      if (!(err instanceof FqaError)) throw err;
      process.stderr.write(`fqa-scan: ${err.message}\n`);
      missing++;
    }
  }
  mkdirSync(values.out, { recursive: true });
  const result = await withQueue(values, async (queue, label) => {
    const r = await enqueueScans(queue, jobs, { attempts, force: values.force, secret });
    for (const e of r.existing) process.stderr.write(`${e.data.slide}: already in the queue (${e.state}), not added${e.state === 'completed' || e.state === 'failed' ? ' (--force to enqueue it again)' : ''}\n`);
    process.stderr.write(`queue ${label}: added ${r.added.length} slide${r.added.length === 1 ? '' : 's'}, ${r.existing.length} already there\n`);
    return r;
  });
  if (values.force && result.added.length === 0 && jobs.length > 0) process.stderr.write('note: nothing re-added: the jobs are still waiting or running\n');
  return missing > 0 ? 3 : 0;
}

async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...connectionOptions, json: { type: 'boolean', default: false } } });
  return withQueue(values, async (queue, label) => {
    const s = await queueStatus(queue);
    if (values.json) {
      process.stdout.write(JSON.stringify(s) + '\n');
      return 0;
    }
    const c = s.counts;
    const total = c.waiting + c.prioritized + c.delayed + c.active + c.completed + c.failed;
    const lines = [
      `queue ${label}`,
      `  waiting ${c.waiting + c.prioritized}  retrying ${c.delayed}  active ${c.active}  done ${c.completed}  failed ${c.failed}  (${total} slides, ${total ? ((100 * (c.completed + c.failed)) / total).toFixed(0) : 0}% finished)`,
    ];
    for (const a of s.active) lines.push(`  active  ${a.slide}  ${(100 * a.progress).toFixed(0)}%  on ${a.worker ?? '?'}  attempt ${a.attempt}`);
    for (const f of s.failed) lines.push(`  failed  ${f.slide}  after ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}: ${f.reason}`);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  });
}

async function report(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...connectionOptions, out: { type: 'string' }, 'secret-file': { type: 'string' } } });
  if (values.out === undefined) throw new UsageError('--out DIR is required: the report folder the jobs were enqueued with');
  const out = path.resolve(values.out);
  // With the queue secret, only signed jobs count: a forged one could otherwise put an error report over a real one.
  const secret = await loadQueueSecret(values['secret-file']);
  return withQueue(values, async (queue, label) => {
    const finished = await finishedSlides(queue, out, secret);
    if (finished.invalid > 0) {
      const why = secret ? 'bad or forged data, rejected, or not signed with the queue secret' : 'bad or forged data, or rejected by a worker';
      process.stderr.write(`note: ${finished.invalid} finished job${finished.invalid === 1 ? ' is' : 's are'} not valid scan jobs (${why}) and not reported: fqa-scan queue status lists them\n`);
    }
    if (finished.rows.length === 0 && finished.unfinished === 0) {
      const folders = await queueFolders(queue);
      throw new UsageError(`no job in queue ${label} writes to ${out}${folders.length ? ` (its folders: ${folders.slice(0, 5).join(', ')}${folders.length > 5 ? ', ...' : ''})` : ' (the queue is empty)'}`);
    }
    // A slide that failed every attempt gets core's error report, so the folder's summary.tsv and
    // index.html list it like a slide `fqa-scan scan` could not read. The same failure reported
    // again keeps its report (and its date): it is not new.
    for (const f of finished.failedJobs) if (!hasErrorReport(out, f.stem, f.slide, f.reason)) await writeErrorReport(out, f.stem, f.slide, f.reason);
    // `new`: the reports written since the previous report, which is what one batch of jobs wrote
    // (as `fqa-scan scan` marks the reports its run wrote).
    const writtenSinceLastReport = reportsWrittenSinceSummary(out);
    const date = new Date().toISOString();
    const header = [`# fqa ${nativeVersion}`, `# queue: ${label}`, `# date: ${date}`, "# rows: every slide reported in this folder; each row's model and options are in <report>.json; new: written since the previous report"];
    const rows = await writeSummaryTsv(out, header, writtenSinceLastReport);
    await writeIndexPage(out, { date, model: finished.models.join(', ') }, writtenSinceLastReport);
    const file = path.join(out, 'summary.tsv');
    const pending = finished.unfinished ? `; ${finished.unfinished} not finished yet (run report again when they are)` : '';
    process.stderr.write(`${file}: ${rows} slide${rows === 1 ? '' : 's'}, ${finished.failed} failed${pending}; report: ${path.join(out, 'index.html')}\n`);
    return finished.failed > 0 ? 3 : finished.verdicts.includes('fail') ? 1 : 0;
  });
}

export const queueCommand: Command = {
  summary: 'spread a scan over machines: queue add|status|report (Redis, BullMQ)',
  usage,
  async run(args) {
    const [sub, ...rest] = args;
    if (sub === 'add') return add(rest);
    if (sub === 'status') return status(rest);
    if (sub === 'report') return report(rest);
    throw new UsageError(`Expected one of add, status, report for queue but received ${sub === undefined ? 'nothing' : `'${sub}'`}`);
  },
};
