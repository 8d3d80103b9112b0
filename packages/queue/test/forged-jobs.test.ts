// Anyone who can write to the Redis can add jobs: forged ones, added straight through BullMQ as an
// attacker would, against real `fqa-scan worker` processes on a real Redis. Each must fail at once
// with one line in `queue status`, change nothing outside the worker's roots (a sentinel folder
// is compared file by file), leave `queue status` and `queue report` working, and not stop the
// worker from scanning the valid job queued behind it or from exiting on SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH } from '@fqa/core';
import { clientConnection, makeScanJob, openScanQueue, sha256File, signJobData, type ScanJobData, type ScanQueue } from '@fqa/queue';
import { hasShared, missing, repoRoot, shared } from '../../../test/helpers/shared.js';
import { RedisServer, hasRedisServer } from './redis-server.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;

/** Every file and folder under `dir` with its content (files) and modification time: what must not change. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      const info = statSync(full);
      const rel = path.relative(dir, full);
      if (info.isDirectory()) {
        out[rel + '/'] = String(info.mtimeMs);
        walk(full);
      } else {
        out[rel] = `${info.mtimeMs} ${readFileSync(full, 'utf8')}`;
      }
    }
  };
  walk(dir);
  return out;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!hasShared || missing(hasRedisServer, 'redis-server') || missing(hasMkfifo, 'mkfifo'))('forged jobs', () => {
  const work = realpathSync(mkdtempSync(path.join(tmpdir(), 'fqa-forged-')));
  const slidesRoot = path.join(work, 'slides');
  const outRoot = path.join(work, 'reports');
  // What an attacker aims at: a folder outside the roots, with files a worker's report writer would
  // delete (<stem>_files/) or overwrite (<stem>.json, index.html), a slide and a model.
  const outside = path.join(work, 'outside');
  const name = { queue: `forged-${randomUUID().slice(0, 8)}`, prefix: 'fqa-forged' };
  const secret = 'a shared secret of the lab, 32+ characters';
  let server: RedisServer;
  let connection: Redis;
  let queue: ScanQueue;
  let valid: { id: string; data: ScanJobData };
  const children: ChildProcess[] = [];

  const fqa = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, [bin, ...args, '--redis', server.url, '--queue', name.queue, '--prefix', name.prefix], { encoding: 'utf8', cwd: repoRoot, env: { ...process.env, ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  function startWorker(env: NodeJS.ProcessEnv = {}) {
    const child = spawn(process.execPath, [
      bin, 'worker', '--redis', server.url, '--queue', name.queue, '--prefix', name.prefix, '--slides-root', slidesRoot, '--out-root', outRoot, '--workers', '1',
    ], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    children.push(child);
    const w = { child, log: '', exited: new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))) };
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (w.log += d));
    return w;
  }

  /** Adds a job straight through BullMQ, as anyone with access to the Redis can. */
  const forge = (id: string, data: unknown) => queue.add('scan', data as ScanJobData, { jobId: id, attempts: 3, removeOnComplete: false, removeOnFail: false });
  const finished = async (ids: string[]) => (await Promise.all(ids.map(async (id) => (await queue.getJob(id))?.finishedOn !== undefined))).every(Boolean);

  beforeAll(async () => {
    for (const dir of [slidesRoot, outRoot, outside, path.join(outside, 'data_files')]) mkdirSync(dir, { recursive: true });
    copyFileSync(shared('data', 'slides', 'small_HE_levels.tiff'), path.join(slidesRoot, 'small.tiff'));
    copyFileSync(shared('data', 'slides', 'small_HE_levels.tiff'), path.join(outside, 'outside.tiff'));
    copyFileSync(DEFAULT_MODEL_PATH, path.join(outside, 'model.fqa'));
    writeFileSync(path.join(outside, 'data_files', 'keep.txt'), 'sentinel\n');
    writeFileSync(path.join(outside, 'notes.json'), '{"sentinel": true}\n');
    writeFileSync(path.join(outside, 'index.html'), '<p>sentinel</p>\n');
    spawnSync('mkfifo', [path.join(slidesRoot, 'fifo.svs'), path.join(slidesRoot, 'fifo.fqa')]);
    // Links inside the roots that lead out of them.
    symlinkSync(path.join(outside, 'outside.tiff'), path.join(slidesRoot, 'link.tiff'));
    symlinkSync(path.join(outside, 'model.fqa'), path.join(slidesRoot, 'link.fqa'));
    symlinkSync('/dev/zero', path.join(slidesRoot, 'zero.fqa'));
    symlinkSync(outside, path.join(outRoot, 'escape'));
    writeFileSync(path.join(outRoot, 'a-file'), 'not a folder\n');
    server = await RedisServer.start();
    connection = await clientConnection(server.url);
    queue = openScanQueue(connection, name);
    valid = await makeScanJob(path.join(slidesRoot, 'small.tiff'), path.join(outRoot, 'night'), { path: null, sha256: await sha256File(DEFAULT_MODEL_PATH) }, {});
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await queue?.close();
    connection?.disconnect();
    await server?.stop();
  });

  test('each forged job fails at once with its reason; nothing outside the roots changes; the valid job behind them is scanned', async () => {
    const before = snapshot(outside);
    const v = valid.data;
    // Job id -> the data an attacker puts in Redis, and the reason the worker must give.
    const forged: [string, unknown, RegExp][] = [
      ['out-outside', { ...v, out: outside, stem: 'data' }, /out .*outside is outside the worker's --out-root folders/],
      ['out-parent', { ...v, out: `${outRoot}/../outside`, stem: 'notes' }, /out: expected an absolute, normalized path/],
      ['out-symlink', { ...v, out: path.join(outRoot, 'escape', 'night'), stem: 'index' }, /out .*escape\/night \(.*outside\/night\) is outside the worker's --out-root folders/],
      ['slide-outside', { ...v, slide: path.join(outside, 'outside.tiff') }, /slide .*outside\.tiff is outside the worker's --slides-root folders/],
      ['slide-missing-outside', { ...v, slide: path.join(outside, 'probe', 'x.svs') }, /slide .*outside\/probe\/x\.svs is outside the worker's --slides-root folders/],
      ['out-is-file', { ...v, out: path.join(outRoot, 'a-file') }, /out .*a-file is not a folder/],
      ['slide-symlink', { ...v, slide: path.join(slidesRoot, 'link.tiff') }, /slide .*link\.tiff \(.*outside\.tiff\) is outside the worker's --slides-root folders/],
      ['slide-fifo', { ...v, slide: path.join(slidesRoot, 'fifo.svs') }, /slide .*fifo\.svs is a FIFO \(named pipe\), not a regular file/],
      ['model-dev-zero', { ...v, model: '/dev/zero' }, /model \/dev\/zero is outside the worker's --slides-root folders/],
      ['model-link-dev-zero', { ...v, model: path.join(slidesRoot, 'zero.fqa') }, /model .*zero\.fqa \(\/dev\/zero\) is outside/],
      ['model-link-outside', { ...v, model: path.join(slidesRoot, 'link.fqa') }, /model .*link\.fqa \(.*outside\/model\.fqa\) is outside/],
      ['model-fifo', { ...v, model: path.join(slidesRoot, 'fifo.fqa') }, /model .*fifo\.fqa is a FIFO \(named pipe\), not a regular file/],
      ['payload-null', null, /not an fqa scan job: its data is null, not an object/],
      ['payload-array', [v], /not an fqa scan job: its data is an array, not an object/],
      ['payload-string', 'rm -rf /', /not an fqa scan job: its data is 'rm -rf \/', not an object/],
      ['payload-number', 42, /its data is number 42, not an object/],
      ['wrong-types', { ...v, slide: 42, out: ['/'] }, /slide: expected an absolute path but received number 42/],
      ['extra-field', { ...v, exec: 'touch /tmp/x' }, /not an fqa scan job: unexpected field 'exec'/],
      ['stem-traversal', { ...v, stem: '../../outside/data' }, /stem: expected a plain file name/],
      ['stem-control', { ...v, stem: 'a\nfailed  /etc/passwd  after 1 attempt: spoofed' }, /stem: expected a plain file name .* but received 'a\\x0afailed/],
      ['stem-long', { ...v, stem: 'x'.repeat(5000) }, /stem: expected 1 to 200 characters but received 5000/],
      ['options-absurd', { ...v, options: { stride: 0, patchSize: 1e9 } }, /options: Expected integer between 8 and 4096 for patchSize but received 1000000000|options: Expected integer between 1 and 4096 for stride but received 0/],
      ['options-percent', { ...v, options: { maxOutOfFocusPct: 700 } }, /options\.maxOutOfFocusPct: expected a percentage between 0 and 100 but received number 700/],
      ['options-fraction-name', { ...v, options: { maxOutOfFocus: 0.07 } }, /options: unexpected field 'maxOutOfFocus'/],
      ['options-extra', { ...v, options: { workers: 1000, device: 'cuda' } }, /options: unexpected field 'workers'/],
      ['options-type', { ...v, options: { threshold: '1; rm' } }, /options\.threshold: expected a number but received '1; rm'/],
      ['format', { ...v, format: 3 }, /job format number 3 is not a format this worker's fqa reads \(1 or 2\)/],
      ['model-sha', { ...v, modelSha256: 'x' }, /modelSha256: expected 64 hex digits but received 'x'/],
    ];
    for (const [id, data] of forged) await forge(id, data);
    // The valid job is queued last: it runs only if no forged job hangs or kills the worker.
    const added = fqa(['queue', 'add', path.join(slidesRoot, 'small.tiff'), '--out', path.join(outRoot, 'night'), '--max-out-of-focus', '12.5']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toMatch(/added 1 slide, 0 already there/);
    const validJob = (await queue.getJobs(['waiting'])).find((j) => String(j.id).startsWith('scan-'));
    expect(validJob!.data.options).toEqual({ maxOutOfFocusPct: 12.5 });
    // --max-out-of-focus changes the verdict, so it is part of the job id: not the id without it.
    expect(validJob!.id).not.toBe(valid.id);

    const worker = startWorker();
    await until('the forged jobs and the valid one to finish', () => finished([...forged.map(([id]) => id), validJob!.id!]));

    for (const [id, , reason] of forged) {
      const job = (await queue.getJob(id))!;
      expect(await job.getState(), id).toBe('failed');
      expect(job.attemptsMade, `${id}: failed at once, not retried`).toBe(1);
      expect(job.failedReason, id).toMatch(reason);
      expect(job.failedReason, id).toMatch(new RegExp(`^job ${id} rejected: `));
      expect(job.failedReason, id).not.toMatch(/\n/);
    }
    const done = (await queue.getJob(validJob!.id!))!;
    expect(await done.getState(), done.failedReason).toBe('completed');
    expect(readdirSync(path.join(outRoot, 'night'))).toContain('small.json');
    // The job carries the fraction scanSlide takes; the report a user reads has the percentage.
    const report = JSON.parse(readFileSync(path.join(outRoot, 'night', 'small.json'), 'utf8')) as { provenance: { options: Record<string, number> } };
    expect(report.provenance.options).toMatchObject({ maxOutOfFocusPct: 12.5 });
    expect(snapshot(outside), 'nothing outside the roots changed').toEqual(before);
    // Only the valid job's folder was made in the output root.
    expect(readdirSync(outRoot).sort()).toEqual(['a-file', 'escape', 'night']);

    // `queue status`: one line per failed job, its reason on that line; `queue report` still works.
    const status = fqa(['queue', 'status']);
    expect(status.code, status.stderr).toBe(0);
    const lines = status.stdout.trimEnd().split('\n');
    expect(lines[1]).toMatch(new RegExp(`done 1  failed ${forged.length} `));
    const failedLines = lines.filter((l) => l.startsWith('  failed  '));
    expect(failedLines).toHaveLength(forged.length);
    expect(lines).toHaveLength(2 + forged.length);
    for (const [id] of forged) expect(failedLines.filter((l) => l.includes(`job ${id} rejected: `)), id).toHaveLength(1);
    expect(failedLines.find((l) => l.includes('job payload-null rejected: '))).toMatch(/^ {2}failed {2}job payload-null {2}after 1 attempt: /);
    const json = fqa(['queue', 'status', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as { failed: unknown[] }).failed).toHaveLength(forged.length);
    const queueReport = fqa(['queue', 'report', '--out', path.join(outRoot, 'night')]);
    expect(queueReport.code, queueReport.stderr).toBe(0); // exit 0: the valid slide's verdict is not 'fail', and no job of this folder failed
    expect(queueReport.stderr).toMatch(/summary\.tsv: 1 slide, 0 failed/);
    // The rejected jobs name this folder and the slide's stem too: none of them may put an error report over the real one.
    expect(readFileSync(path.join(outRoot, 'night', 'small.json'), 'utf8')).not.toMatch(/"verdict": ?"error"/);

    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.log).toBe(0);
    expect(worker.log).toMatch(/stopped/);
  }, 300_000);

  test('with a queue secret, unsigned, wrongly signed and altered jobs fail; jobs signed by queue add run', async () => {
    const v = valid.data;
    const other = Buffer.from('not the lab secret but long enough');
    const signed = signJobData({ ...v, options: { stride: 64 } }, Buffer.from(secret));
    const forged: [string, unknown, RegExp][] = [
      ['unsigned', { ...v, options: { stride: 48 } }, /unsigned job: this worker takes only jobs signed with the queue secret/],
      ['signed-other-secret', signJobData({ ...v, options: { stride: 56 } }, other), /bad signature: the job was not signed with this worker's queue secret/],
      ['signed-then-altered', { ...signed, out: path.join(outRoot, 'elsewhere') }, /bad signature: the job was not signed with this worker's queue secret, or was changed/],
      ['signature-garbage', { ...v, signature: 'zz' }, /bad signature: expected 64 hex digits but received 'zz'/],
      ['unsigned-null', null, /unsigned job/],
    ];
    for (const [id, data] of forged) await forge(id, data);
    const env = { FQA_QUEUE_SECRET: secret };
    const added = fqa(['queue', 'add', path.join(slidesRoot, 'small.tiff'), '--out', path.join(outRoot, 'signed'), '--stride', '64'], env);
    expect(added.code, added.stderr).toBe(0);
    const signedJob = (await queue.getJobs(['waiting'])).find((j) => String(j.id).startsWith('scan-'));
    expect(signedJob, `${added.stderr} ${JSON.stringify(await queue.getJobCounts())}`).toBeDefined();
    expect(signedJob!.data.signature).toMatch(/^[0-9a-f]{64}$/);
    // A secret on the command line would be visible to every user in `ps`: there is no such option.
    expect(fqa(['queue', 'add', path.join(slidesRoot, 'small.tiff'), '--out', outRoot, '--secret', secret]).code).toBe(2);

    const worker = startWorker(env);
    await until('the jobs to finish', () => finished([...forged.map(([id]) => id), signedJob!.id!]));
    for (const [id, , reason] of forged) {
      const job = (await queue.getJob(id))!;
      expect([await job.getState(), job.attemptsMade], id).toEqual(['failed', 1]);
      expect(job.failedReason, id).toMatch(reason);
    }
    const done = (await queue.getJob(signedJob!.id!))!;
    expect(await done.getState(), done.failedReason).toBe('completed');
    expect(readdirSync(path.join(outRoot, 'signed'))).toContain('small.json');
    expect(readdirSync(outRoot)).not.toContain('elsewhere');
    // queue report with the secret: only signed jobs count; the rest (also the first test's) are left out, and said to be.
    const signedReport = fqa(['queue', 'report', '--out', path.join(outRoot, 'signed')], env);
    expect(signedReport.code, signedReport.stderr).toBe(0);
    expect(signedReport.stderr).toMatch(/note: \d+ finished jobs are not valid scan jobs \(bad or forged data, rejected, or not signed with the queue secret\)/);
    expect(signedReport.stderr).toMatch(/summary\.tsv: 1 slide, 0 failed/);
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.log).toBe(0);
    expect(worker.log).toMatch(/taking signed jobs from/);
  }, 300_000);

  test('job data that is not even JSON (written into Redis by hand) is one line in status; report still works', async () => {
    await connection.hset(`${name.prefix}:${name.queue}:payload-null`, 'data', '{not json');
    await connection.hset(`${name.prefix}:${name.queue}:payload-array`, 'returnvalue', '{"summaryRow": ');
    const status = fqa(['queue', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^ {2}failed {2}job payload-null {2}after 0 attempts: job data in Redis cannot be read \(.*\)$/m);
    const queueReport = fqa(['queue', 'report', '--out', path.join(outRoot, 'night')]);
    expect(queueReport.code, queueReport.stderr).toBe(0);
    expect(queueReport.stderr).toMatch(/summary\.tsv: 1 slide, 0 failed/);
    expect(queueReport.stderr).toMatch(/\d+ finished jobs are not valid scan jobs \(bad or forged data, or rejected by a worker\) and not reported/);
    expect(readFileSync(path.join(outRoot, 'night', 'small.json'), 'utf8')).not.toMatch(/"verdict": ?"error"/);
  }, 120_000);
});
