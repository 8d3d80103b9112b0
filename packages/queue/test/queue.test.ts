// The queue's parts on a real Redis ($FQA_REDIS_URL, which .ci/run starts, or a redis-server of the
// test's own): option checks, idempotent enqueueing, and a worker in this process that fails a
// corrupt slide after its attempts, refuses a job made for another model, and gives a job back on
// shutdown without spending an attempt.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, FqaError, UsageError } from '@fqa/core';
import {
  REDIS_URL_ENV, clientConnection, enqueueScans, finishedSlides, makeScanJob, openScanQueue, parseRedisUrl, resolveQueueName, sha256File,
  hasValidSignature, loadQueueSecret, parseScanJobData, resolveJobRoots, signJobData, startScanWorker, type JobRoots, type ScanQueue,
} from '@fqa/queue';
import { hasShared, missing, repoRoot, shared } from '../../../test/helpers/shared.js';
import { RedisServer, hasRedisServer } from './redis-server.js';

const externalRedis = process.env[REDIS_URL_ENV];

test('Redis URLs, queue names and prefixes are checked before anything connects', () => {
  for (const bad of ['localhost:6379', 'http://127.0.0.1:6379', 'redis://', 'redis://host:6379/abc', 'not a url']) {
    expect(() => parseRedisUrl(bad), bad).toThrow(UsageError);
  }
  expect(parseRedisUrl('redis://user:pw@10.0.0.5:6380/2').port).toBe('6380');
  expect(() => resolveQueueName({ queue: 'a:b' })).toThrow(/Expected 1 to 100 letters.*for queue but received 'a:b'/);
  expect(() => resolveQueueName({ prefix: '' })).toThrow(/for prefix/);
  expect(resolveQueueName({})).toEqual({ queue: 'fqa-scan', prefix: 'fqa' });
});

test('an unreachable Redis is one error naming the URL, not a hang', async () => {
  const started = Date.now();
  const err = await clientConnection('redis://127.0.0.1:1', 2000).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FqaError);
  expect((err as FqaError).exitCode).toBe(3);
  expect((err as Error).message).toMatch(/^cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
  expect(Date.now() - started).toBeLessThan(5000);
});

test('the CLI: a usage error or an unreachable Redis is one line and its exit code', () => {
  const fqa = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js'), ...args], { encoding: 'utf8', cwd: repoRoot });
  const cases: [string[], number, RegExp][] = [
    [['queue'], 2, /^fqa-scan: Expected one of add, status, report for queue but received nothing\n$/],
    [['queue', 'add', 'x.svs'], 2, /^fqa-scan: --out DIR is required/],
    [['queue', 'report'], 2, /^fqa-scan: --out DIR is required/],
    [['queue', 'status', '--redis', 'localhost:6379'], 2, /^fqa-scan: Expected a redis:\/\/ or rediss:\/\/ URL for redis but received 'localhost:6379'\n$/],
    [['queue', 'status', '--queue', 'a:b'], 2, /for queue but received 'a:b'/],
    [['worker', '--concurrency', '0'], 2, /^fqa-scan: Expected integer between 1 and 64 for concurrency but received 0/],
    [['queue', 'status', '--redis', 'redis://127.0.0.1:1'], 3, /^fqa-scan: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED[^\n]*\n$/],
    // A worker without roots would read and write wherever a job says: it does not start.
    [['worker'], 2, /^fqa-scan: --slides-root DIR is required: a worker reads and writes only inside the folders it is given/],
    [['worker', '--slides-root', repoRoot], 2, /^fqa-scan: --out-root DIR is required/],
    [['worker', '--slides-root', path.join(repoRoot, 'no-such-folder'), '--out-root', repoRoot], 2, /^fqa-scan: --slides-root .*no-such-folder: no such folder\n$/],
    [['queue', 'add', 'x.svs', '--out', 'o', '--max-out-of-focus', '150'], 2, /^fqa-scan: Expected number between 0 and 100 for max-out-of-focus but received '150'\n$/],
    [['queue', 'add', 'x.svs', '--out', 'o', '--mpp', '300'], 2, /^fqa-scan: Expected number between 0\.05 and 50 for mpp but received '300'\n$/],
    // Never a secret on the command line (ps shows it to every user).
    [['worker', '--secret', 'a secret of more than 16 characters'], 2, /unknown option '--secret'/],
  ];
  for (const [args, code, message] of cases) {
    const r = fqa(...args);
    expect(r.status, args.join(' ')).toBe(code);
    expect(r.stderr, args.join(' ')).toMatch(message);
  }
});

test('a queue secret: from a regular file or $FQA_QUEUE_SECRET, long enough; signatures cover every field in any order', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fqa-secret-'));
  const file = path.join(dir, 'secret');
  writeFileSync(file, '  0123456789abcdef-secret\n');
  expect((await loadQueueSecret(file, {}))!.toString()).toBe('0123456789abcdef-secret');
  expect((await loadQueueSecret(undefined, { FQA_QUEUE_SECRET: 'from the environment, long enough' }))!.toString()).toBe('from the environment, long enough');
  expect(await loadQueueSecret(undefined, {})).toBeNull();
  await expect(loadQueueSecret(undefined, { FQA_QUEUE_SECRET: 'short' })).rejects.toThrow(/^Expected 16 to 4096 characters for the queue secret but \$FQA_QUEUE_SECRET has 5$/);
  await expect(loadQueueSecret(dir, {})).rejects.toThrow(/queue secret file is a folder, not a regular file/);
  if (spawnSync('mkfifo', [path.join(dir, 'fifo')]).status === 0) await expect(loadQueueSecret(path.join(dir, 'fifo'), {})).rejects.toThrow(/is a FIFO \(named pipe\), not a regular file/);

  const secret = Buffer.from('0123456789abcdef-secret');
  const data = { format: 1, slide: '/s/a.svs', out: '/o', stem: 'a', model: null, modelSha256: 'a'.repeat(64), options: { stride: 64, mpp: 0.5 } };
  const signed = signJobData(data, secret);
  expect(signed.signature).toMatch(/^[0-9a-f]{64}$/);
  expect(hasValidSignature(signed, secret)).toBe(true);
  // The same data in another key order (another producer, a JSON round trip) keeps its signature.
  const reordered = { options: { mpp: 0.5, stride: 64 }, signature: signed.signature, stem: 'a', out: '/o', slide: '/s/a.svs', modelSha256: 'a'.repeat(64), model: null, format: 1 };
  expect(hasValidSignature(reordered, secret)).toBe(true);
  for (const changed of [{ out: '/elsewhere' }, { options: { stride: 65, mpp: 0.5 } }, { model: '/m.fqa' }, { extra: 1 }]) {
    expect(hasValidSignature({ ...signed, ...changed }, secret), JSON.stringify(changed)).toBe(false);
  }
  expect(hasValidSignature(signed, Buffer.from('another secret, long enough'))).toBe(false);
  expect(hasValidSignature(data, secret)).toBe(false);
});

describe.skipIf(!hasShared || (!externalRedis && missing(hasRedisServer, 'redis-server (apt-get install redis-server)')))('on a real Redis', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'fqa-queue-api-'));
  const out = path.join(work, 'out');
  const name = { queue: `test-${randomUUID().slice(0, 8)}`, prefix: 'fqa-test' };
  let server: RedisServer | undefined;
  let url = '';
  let connection: Redis;
  let queue: ScanQueue;
  const defaultModel = { path: null, sha256: '' };
  let roots: JobRoots;

  beforeAll(async () => {
    if (externalRedis) url = externalRedis;
    else url = (server = await RedisServer.start()).url;
    connection = await clientConnection(url);
    queue = openScanQueue(connection, name);
    defaultModel.sha256 = await sha256File(DEFAULT_MODEL_PATH);
    roots = await resolveJobRoots({ slides: [work], out: [work] });
    mkdirSync(path.join(work, 'a'));
    mkdirSync(path.join(work, 'b'));
    for (const dir of ['a', 'b']) copyFileSync(shared('data', 'slides', 'small_HE_levels.tiff'), path.join(work, dir, 'small.tiff'));
  });
  afterAll(async () => {
    await queue?.obliterate({ force: true });
    await queue?.close();
    connection?.disconnect();
    await server?.stop();
  });

  test('a slide is one job per model, options and content, however often it is added', async () => {
    const slide = path.join(work, 'a', 'small.tiff');
    const job = await makeScanJob(slide, out, defaultModel, { stride: 100 });
    expect(job.id).toMatch(/^scan-[0-9a-f]{40}$/);
    // What queue add makes is what a worker admits, field for field.
    expect(parseScanJobData(JSON.parse(JSON.stringify(job.data)))).toEqual(job.data);
    const verdictOptions = await makeScanJob(slide, out, defaultModel, { stride: 100, maxOutOfFocusPct: 20, minTissuePct: 30 });
    expect(parseScanJobData(verdictOptions.data).options).toEqual({ stride: 100, minTissuePct: 30, maxOutOfFocusPct: 20 });
    // A job that `queue add` of an earlier fqa wrote (format 1, shares as fractions) is read with its shares in percent.
    const earlier = { ...verdictOptions.data, format: 1, options: { stride: 100, minTissue: 0.3, maxOutOfFocus: 0.07 } };
    expect(parseScanJobData(earlier)).toEqual({ ...verdictOptions.data, options: { stride: 100, minTissuePct: 30, maxOutOfFocusPct: 7 } });
    expect(() => parseScanJobData({ ...earlier, options: { maxOutOfFocus: 7 } })).toThrow(/options\.maxOutOfFocusPct: expected a percentage between 0 and 100 but received number 700/);
    expect(job.data).toMatchObject({ slide, out, stem: 'small', model: null, options: { stride: 100 } });
    // Same inputs, relative path, options in another order: the same id.
    const again = await makeScanJob(path.relative(process.cwd(), slide), out, defaultModel, { threshold: undefined, stride: 100 });
    expect(again.id).toBe(job.id);
    const others = [
      await makeScanJob(slide, out, defaultModel, { stride: 101 }),
      await makeScanJob(slide, path.join(work, 'out2'), defaultModel, { stride: 100 }),
      await makeScanJob(slide, out, { path: null, sha256: '0'.repeat(64) }, { stride: 100 }),
    ];
    utimesSync(slide, new Date(), new Date(Date.now() + 5000)); // the slide was rewritten
    others.push(await makeScanJob(slide, out, defaultModel, { stride: 100 }));
    // --max-out-of-focus and --min-tissue change the verdict: another job.
    expect(new Set([job.id, verdictOptions.id, ...others.map((o) => o.id)]).size).toBe(6);

    const first = await enqueueScans(queue, [job, again]);
    expect(first.added).toHaveLength(1);
    const second = await enqueueScans(queue, [job]);
    expect(second.added).toHaveLength(0);
    expect(second.existing).toEqual([{ data: job.data, state: 'waiting' }]);
    // --force re-adds only finished jobs: a waiting one stays as it is.
    expect((await enqueueScans(queue, [job], { force: true })).added).toHaveLength(0);
    expect(await queue.getJobCountByTypes('waiting')).toBe(1);
    await queue.drain();
  });

  test('inputs a lab gets wrong: a missing slide, a folder, two slides writing one report', async () => {
    await expect(makeScanJob(path.join(work, 'nope.svs'), out, defaultModel, {})).rejects.toThrow(/nope\.svs: no such file/);
    await expect(makeScanJob(work, out, defaultModel, {})).rejects.toThrow(/: not a file/);
    const a = await makeScanJob(path.join(work, 'a', 'small.tiff'), out, defaultModel, {});
    const b = await makeScanJob(path.join(work, 'b', 'small.tiff'), out, defaultModel, {});
    await expect(enqueueScans(queue, [a, b])).rejects.toThrow(/a\/small\.tiff and .*b\/small\.tiff would both write small\.json in/);
  });

  test('a corrupt slide fails after its attempts with the error, a wrong model at once; the rest goes on', async () => {
    const corrupt = path.join(work, 'corrupt.svs');
    writeFileSync(corrupt, Buffer.alloc(4096, 7));
    const good = await makeScanJob(path.join(work, 'a', 'small.tiff'), out, defaultModel, {});
    const bad = await makeScanJob(corrupt, out, defaultModel, {});
    const wrongModel = await makeScanJob(path.join(work, 'b', 'small.tiff'), path.join(work, 'out-b'), { path: null, sha256: 'f'.repeat(64) }, {});
    await enqueueScans(queue, [good, bad, wrongModel], { attempts: 2 });
    // Anyone who can write to the Redis can add jobs: one that names a relative path is refused.
    await queue.add('scan', { ...good.data, out: path.join(work, 'out-foreign'), slide: 'relative/small.tiff' }, { jobId: 'foreign-job', attempts: 2 });
    const lines: string[] = [];
    const worker = startScanWorker({ redis: url, ...name, roots, workers: 1, log: (l) => lines.push(l) });
    try {
      await worker.ready;
      const deadline = Date.now() + 60_000;
      while ((await queue.getJobCountByTypes('completed', 'failed')) < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await worker.close();
    }
    const badJob = (await queue.getJob(bad.id))!;
    expect(await badJob.getState()).toBe('failed');
    expect(badJob.attemptsMade).toBe(2);
    expect(badJob.failedReason).toContain(corrupt);
    const wrong = (await queue.getJob(wrongModel.id))!;
    expect(await wrong.getState()).toBe('failed');
    expect(wrong.attemptsMade).toBe(1);
    expect(wrong.failedReason).toMatch(/is not the one enqueued \(sha256 [0-9a-f]{12}, enqueued ffffffffffff\)/);
    const foreign = (await queue.getJob('foreign-job'))!;
    expect([await foreign.getState(), foreign.attemptsMade]).toEqual(['failed', 1]);
    expect(foreign.failedReason).toBe("job foreign-job rejected: slide: expected an absolute, normalized path but received 'relative/small.tiff'");
    expect(await (await queue.getJob(good.id))!.getState()).toBe('completed');
    expect(existsSync(path.join(out, 'small.json'))).toBe(true);
    expect(lines.join('\n')).toMatch(/corrupt\.svs: attempt 2 failed \(final: the job is in failed\)/);

    const finished = await finishedSlides(queue, out);
    expect(finished.rows).toHaveLength(2);
    expect(finished.verdicts.sort()).toEqual(['error', 'no-tissue']);
    expect(finished.failed).toBe(1);
    expect(finished.rows.find((r) => r.startsWith(corrupt))!.split('\t')[11]).toBe('error');
    // queue report: core's error report for the failed slide, then summary.tsv and index.html from the folder.
    const report = spawnSync(process.execPath, [path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js'), 'queue', 'report', '--out', out, '--redis', url, '--queue', name.queue, '--prefix', name.prefix], { encoding: 'utf8' });
    expect(report.status, report.stderr).toBe(3);
    expect(report.stderr).toMatch(/summary\.tsv: 2 slides, 1 failed; report: .*index\.html/);
    const summary = readFileSync(path.join(out, 'summary.tsv'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).slice(1);
    expect(summary.map((l) => l.split('\t')[11]).sort()).toEqual(['error', 'no-tissue']);
    expect(existsSync(path.join(out, 'index.html'))).toBe(true);

    // `new`, as for fqa-scan scan (the reports its run wrote): the reports written since the previous
    // queue report. First report: both. Again with nothing finished since: neither, and the failed
    // slide's error report is the same report (its date too), not a new failure.
    const queueReport = () => spawnSync(process.execPath, [path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js'), 'queue', 'report', '--out', out, '--redis', url, '--queue', name.queue, '--prefix', name.prefix], { encoding: 'utf8' });
    const newBySlide = () => {
      const [columns, ...rows] = readFileSync(path.join(out, 'summary.tsv'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t'));
      const [slideAt, newAt, scannedAt] = ['slide', 'new', 'scanned_at'].map((c) => columns!.indexOf(c));
      return Object.fromEntries(rows.map((r) => [path.basename(r[slideAt]!), [r[newAt], r[scannedAt]]]));
    };
    const first = newBySlide();
    expect([first['small.tiff']![0], first['corrupt.svs']![0]]).toEqual(['yes', 'yes']);
    expect(queueReport().status).toBe(3);
    const second = newBySlide();
    expect(second).toEqual({ 'small.tiff': ['no', first['small.tiff']![1]], 'corrupt.svs': ['no', first['corrupt.svs']![1]] });
    // A later batch: the slide it adds is new, the others are not.
    const later = path.join(work, 'a', 'later.tiff');
    copyFileSync(shared('data', 'slides', 'small_HE_levels.tiff'), later);
    const laterJob = await makeScanJob(later, out, defaultModel, {});
    await enqueueScans(queue, [laterJob]);
    const laterWorker = startScanWorker({ redis: url, ...name, roots, workers: 1 });
    try {
      await laterWorker.ready;
      const deadline = Date.now() + 60_000;
      while ((await (await queue.getJob(laterJob.id))!.getState()) !== 'completed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await laterWorker.close();
    }
    expect(queueReport().status).toBe(3);
    expect(Object.fromEntries(Object.entries(newBySlide()).map(([slide, [isNew]]) => [slide, isNew]))).toEqual({ 'small.tiff': 'no', 'corrupt.svs': 'no', 'later.tiff': 'yes' });
  });

  test('close() on SIGTERM finishes the running slide before the worker stops', async () => {
    const slide = path.join(work, 'cmu-graceful.svs');
    copyFileSync(shared('data', 'slides', 'CMU-1-Small-Region.svs'), slide);
    const job = await makeScanJob(slide, path.join(work, 'out-graceful'), defaultModel, {});
    await enqueueScans(queue, [job]);
    const lines: string[] = [];
    const worker = startScanWorker({ redis: url, ...name, roots, workers: 1, log: (l) => lines.push(l) });
    await worker.ready;
    const deadline = Date.now() + 30_000;
    while (!lines.some((l) => l.includes('cmu-graceful.svs: started')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await worker.close();
    const done = (await queue.getJob(job.id))!;
    expect(await done.getState()).toBe('completed');
    expect(done.attemptsMade).toBe(1);
    expect(existsSync(path.join(work, 'out-graceful', 'cmu-graceful.json'))).toBe(true);
  });

  test('release on shutdown puts a running job back without spending an attempt', async () => {
    const slide = path.join(work, 'cmu.svs');
    copyFileSync(shared('data', 'slides', 'CMU-1-Small-Region.svs'), slide);
    const job = await makeScanJob(slide, path.join(work, 'out-release'), defaultModel, {});
    await enqueueScans(queue, [job]);
    const lines: string[] = [];
    const worker = startScanWorker({ redis: url, ...name, roots, workers: 1, log: (l) => lines.push(l) });
    await worker.ready;
    const deadline = Date.now() + 30_000;
    while (!lines.some((l) => l.includes('cmu.svs: started')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    worker.release();
    await worker.close();
    const back = (await queue.getJob(job.id))!;
    expect(await back.getState()).toBe('waiting');
    expect(back.attemptsMade).toBe(0);
    expect(lines.join('\n')).toMatch(/cmu\.svs: released/);
    expect(existsSync(path.join(work, 'out-release', 'cmu.json'))).toBe(false);
  });
});
