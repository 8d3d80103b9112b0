/**
 * Queue benchmark: what BullMQ + Redis cost per job, and slides/min with N worker processes.
 *
 * 1. Queue overhead: --jobs empty jobs through a worker whose processor does nothing, with the
 *    lock and stalled-check settings fqa's scan workers use: jobs/s is the ceiling the queue puts on
 *    a scan, whatever the slides.
 * 2. Slides/min: --slides copies of CMU-1-Small-Region.svs scanned by 1..--max-workers
 *    `fqa-scan worker` processes (threads per worker: the cores divided among them), beside one
 *    `fqa-scan scan` process over the same copies, measured in the same run.
 *
 * Uses $FQA_REDIS_URL, else starts a redis-server of its own on a free port.
 *
 *   npm run bench:queue -w @fqa/bench [-- --jobs 2000 --slides 6 --max-workers 3]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { QUEUE_DEFAULTS, REDIS_URL_ENV, clientConnection, enqueueScans, makeScanJob, openScanQueue, sha256File, workerConnection } from '@fqa/queue';
import { DEFAULT_MODEL_PATH } from '@fqa/core';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '2000' }, slides: { type: 'string', default: '6' }, 'max-workers': { type: 'string', default: '3' } } });
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const svs = path.resolve(repoRoot, '..', 'shared', 'data', 'slides', 'CMU-1-Small-Region.svs');
if (!existsSync(svs)) throw new Error(`${svs} not found: the benchmark scans copies of it`);
const cores = os.availableParallelism();

async function localRedis(): Promise<{ url: string; server: ChildProcess }> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as net.AddressInfo).port;
  probe.close();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(path.join(os.tmpdir(), 'fqa-bench-redis-'))], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      (await clientConnection(url, 500)).disconnect();
      return { url, server };
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const local = process.env[REDIS_URL_ENV] ? null : await localRedis();
const url = process.env[REDIS_URL_ENV] ?? local!.url;
const prefix = 'fqa-bench';
console.log(`Redis ${url}, ${cores} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}`);

// 1. Queue overhead with empty jobs.
const jobs = Number(values.jobs);
for (const concurrency of [1, 8]) {
  const name = `empty-${concurrency}-${process.pid}`;
  const connection = await clientConnection(url);
  const queue = new Queue(name, { connection, prefix });
  await queue.addBulk(Array.from({ length: jobs }, (_, i) => ({ name: 'empty', data: { i }, opts: { jobId: `empty-${i}`, removeOnComplete: false } })));
  let done = 0;
  const start = performance.now();
  const workerRedis = workerConnection(url);
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker(name, async () => ({}), {
      connection: workerRedis, prefix, concurrency, lockDuration: 1000 * QUEUE_DEFAULTS.lockSeconds, stalledInterval: 1000 * QUEUE_DEFAULTS.stalledSeconds,
    });
    worker.on('completed', () => {
      if (++done === jobs) void worker.close().then(() => resolve());
    });
  });
  await finished;
  workerRedis.disconnect();
  const seconds = (performance.now() - start) / 1000;
  console.log(`empty jobs, 1 worker process, concurrency ${concurrency}: ${jobs} jobs in ${seconds.toFixed(2)} s = ${(jobs / seconds).toFixed(0)} jobs/s (${((1000 * seconds) / jobs).toFixed(2)} ms/job)`);
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
}

// 2. Slides/min: one process vs N worker processes.
const slides = Number(values.slides);
const work = mkdtempSync(path.join(os.tmpdir(), 'fqa-bench-queue-'));
const slideDir = path.join(work, 'slides');
mkdirSync(slideDir);
for (let i = 0; i < slides; i++) copyFileSync(svs, path.join(slideDir, `cmu-${i}.svs`));

const t0 = performance.now();
const single = spawnSync(process.execPath, [bin, 'scan', slideDir, '--out', path.join(work, 'single'), '--workers', String(cores)], { encoding: 'utf8' });
if (single.status !== 0 && single.status !== 1) throw new Error(single.stderr);
const singleSeconds = (performance.now() - t0) / 1000;
console.log(`fqa-scan scan, one process, ${cores} threads: ${slides} slides in ${singleSeconds.toFixed(1)} s = ${((60 * slides) / singleSeconds).toFixed(1)} slides/min`);

const model = { path: null, sha256: await sha256File(DEFAULT_MODEL_PATH) };
for (let n = 1; n <= Number(values['max-workers']); n++) {
  const name = { queue: `slides-${n}-${process.pid}`, prefix };
  const connection = await clientConnection(url);
  const queue = openScanQueue(connection, name);
  const out = path.join(work, `queue-${n}`);
  const specs = [];
  for (let i = 0; i < slides; i++) specs.push(await makeScanJob(path.join(slideDir, `cmu-${i}.svs`), out, model, {}));
  const threads = Math.max(1, Math.floor(cores / n));
  const workers = Array.from({ length: n }, () =>
    spawn(process.execPath, [bin, 'worker', '--redis', url, '--queue', name.queue, '--prefix', prefix, '--slides-root', work, '--out-root', work, '--workers', String(threads)], { stdio: 'ignore' }));
  const start = performance.now();
  await enqueueScans(queue, specs);
  while ((await queue.getJobCountByTypes('completed', 'failed')) < slides) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - start) / 1000;
  const failed = await queue.getJobCountByTypes('failed');
  console.log(`fqa-scan worker x ${n}, ${threads} thread${threads === 1 ? '' : 's'} each: ${slides} slides in ${seconds.toFixed(1)} s = ${((60 * slides) / seconds).toFixed(1)} slides/min${failed ? ` (${failed} FAILED)` : ''}`);
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => once(w, 'exit')));
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
}
local?.server.kill('SIGTERM');
