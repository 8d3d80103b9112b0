/**
 * fqa-scan worker: takes scan jobs from the queue (`fqa-scan queue add`) until stopped. SIGTERM or
 * SIGINT: finish the slides being scanned, take no new one, exit. A second signal: stop the scans
 * between regions and put their jobs back for another worker. A worker that is killed outright
 * loses nothing: its job is retried elsewhere once its lock expires.
 */
import { parseArgs } from 'node:util';
import { deviceNames, expectOneOf, parseIntegerOption, resolveDevice } from '@fqa/core';
import {
  DEFAULT_REDIS_URL, QUEUE_DEFAULTS, QUEUE_SECRET_ENV, REDIS_URL_ENV, clientConnection, displayUrl, loadQueueSecret, resolveJobRoots, resolveQueueName, startScanWorker,
} from '@fqa/queue';
import type { Command } from '../index.js';
import { connectionHelp } from './queue.js';

const usage = `Usage: fqa-scan worker --slides-root DIR --out-root DIR [--redis URL] [--concurrency N] [--workers N] [--device D]

Scans the queue's slides (fqa-scan queue add) with the normal scan until stopped (SIGTERM/SIGINT:
finishes the current slides; a second signal puts them back in the queue). See docs/queue.md.

A job is untrusted input (anyone who can write to the Redis can add one): the worker reads slides
and model files only inside the --slides-root folders and writes reports only inside the --out-root
folders (symlinks resolved), and a job naming anything else fails with the reason. Both are
required and may be repeated.

Options:
  --slides-root DIR  a folder the jobs' slides and model files must lie in (required; repeatable)
  --out-root DIR     a folder the jobs' output folders must lie in (required; repeatable)
  --secret-file F    run only jobs signed with the shared secret in F (default: $${QUEUE_SECRET_ENV}
                     when set; without either, unsigned jobs are run)
${connectionHelp}
  --concurrency N    slides scanned at once (default 1)
  --workers N        scoring threads per slide (default: the cores / concurrency)
  --device D         auto (default) | cuda | cpu, as for fqa-scan scan
  --lock-seconds S   lock on a running job; a dead worker's job is retried after it (default ${QUEUE_DEFAULTS.lockSeconds})
  --stalled-seconds S  how often to look for jobs of dead workers (default ${QUEUE_DEFAULTS.stalledSeconds})`;

export const workerCommand: Command = {
  summary: 'scan the slides of a queue (fqa-scan queue add) until stopped',
  usage,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        redis: { type: 'string' }, queue: { type: 'string' }, prefix: { type: 'string' }, concurrency: { type: 'string' }, workers: { type: 'string' },
        device: { type: 'string' }, 'lock-seconds': { type: 'string' }, 'stalled-seconds': { type: 'string' },
        'slides-root': { type: 'string', multiple: true, default: [] }, 'out-root': { type: 'string', multiple: true, default: [] },
        'secret-file': { type: 'string' },
      },
    });
    const url = values.redis ?? process.env[REDIS_URL_ENV] ?? DEFAULT_REDIS_URL;
    const name = resolveQueueName(values);
    const device = expectOneOf(values.device ?? 'auto', 'device', deviceNames);
    const concurrency = parseIntegerOption(values.concurrency, 'concurrency', 1, 64);
    const workers = parseIntegerOption(values.workers, 'workers', 1, 256);
    const lockSeconds = parseIntegerOption(values['lock-seconds'], 'lock-seconds', 2, 3600);
    const stalledSeconds = parseIntegerOption(values['stalled-seconds'], 'stalled-seconds', 1, 3600);
    // Before anything connects: a worker without its roots would trust every job.
    const roots = await resolveJobRoots({ slides: values['slides-root'], out: values['out-root'] });
    const secret = await loadQueueSecret(values['secret-file']);
    const resolved = resolveDevice(device);
    if (resolved.notice && (resolved.cudaBuild || values.device === 'auto')) process.stderr.write(`fqa-scan: note: ${resolved.notice}\n`);
    // Reachable at start, or a clear error; once running, the worker rides out Redis restarts.
    (await clientConnection(url)).disconnect();
    const label = `${name.prefix}/${name.queue} at ${displayUrl(url)}`;
    const log = (line: string) => process.stderr.write(`[worker ${worker.name}] ${line}\n`);
    const worker = startScanWorker({ redis: url, ...name, roots, secret, device, concurrency, workers, lockSeconds, stalledSeconds, log });
    // The signal handlers go in before the "taking jobs" line: a supervisor (or a test) that stops the
    // worker as soon as it reads that line must find them installed.
    let signals = 0;
    const stop = new Promise<void>((resolve) => {
      const onSignal = (signal: string) => {
        signals++;
        if (signals === 1) {
          log(`${signal}: finishing the current slides, then exiting (again to put them back in the queue)`);
          resolve();
        } else {
          log(`${signal}: putting the current slides back in the queue`);
          worker.release();
        }
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
    });
    await worker.ready;
    log(`taking ${secret ? 'signed ' : ''}jobs from ${label}; slides from ${roots.slides.join(', ')}; reports to ${roots.out.join(', ')}`);
    await stop;
    await worker.close();
    log('stopped');
    return 0;
  },
};
