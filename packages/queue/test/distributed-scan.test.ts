// The queue's delivery guarantees end to end, as a lab runs it: real Redis (its own server, with
// persistence, restarted once), `fqa-scan queue add`, three `fqa-scan worker` processes, one of them
// SIGKILLed in the middle of a slide. Oracle: a single-machine `fqa-scan scan` of the same 12 slides;
// every slide must end with exactly one report and one summary row, with the same verdict and
// byte-identical patch scores.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { openScanQueue } from '@fqa/queue';
import { hasShared, missing, repoRoot, shared } from '../../../test/helpers/shared.js';
import { RedisServer, hasRedisServer } from './redis-server.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const SLIDES = ['CMU-1-Small-Region.svs', 'kidney-48-5.tif', 'small_HE_levels.tiff'];
const LARGE = /CMU-1-Small-Region/;

function fqa(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface WorkerProcess {
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
}

function startWorker(url: string, root: string): WorkerProcess {
  // Short lock and stalled check: a killed worker's slide is retried within seconds, not the default 35 s.
  const child = spawn(process.execPath, [bin, 'worker', '--redis', url, '--slides-root', root, '--out-root', root, '--workers', '1', '--lock-seconds', '5', '--stalled-seconds', '1'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  const w: WorkerProcess = { child, log: '', exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (w.log += d));
  return w;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** summary.tsv rows by slide, without the timing column (the only one that differs between runs). */
function summaryBySlide(file: string): Map<string, string[]> {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  const columns = lines[0]!.split('\t');
  // When and by which run a report was made differ between the two folders; the results must not.
  const runSpecific = new Set(['seconds', 'scanned_at', 'new'].map((c) => columns.indexOf(c)));
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const cells = line.split('\t');
    expect(rows.has(cells[0]!), `one row for ${cells[0]}`).toBe(false);
    rows.set(cells[0]!, cells.filter((_, i) => !runSpecific.has(i)));
  }
  return rows;
}

describe.skipIf(!hasShared || missing(hasRedisServer, 'redis-server (apt-get install redis-server)'))('a scan spread over three workers', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'fqa-queue-'));
  const slidesDir = path.join(work, 'slides');
  let redis: RedisServer | undefined;
  const workers: WorkerProcess[] = [];
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await redis?.stop();
  });

  test('SIGKILL mid-slide and a Redis restart lose and duplicate nothing; verdicts match a single-machine scan', async () => {
    mkdirSync(slidesDir);
    const stems: string[] = [];
    for (let i = 0; i < 12; i++) {
      const source = SLIDES[i % SLIDES.length]!;
      const stem = `slide-${String(i + 1).padStart(2, '0')}-${source.replace(/\.[^.]+$/, '')}`;
      copyFileSync(shared('data', 'slides', source), path.join(slidesDir, stem + path.extname(source)));
      stems.push(stem);
    }

    // The oracle: one machine, one process.
    const single = path.join(work, 'single');
    const scan = fqa('scan', slidesDir, '--out', single, '--workers', '2');
    expect([0, 1], scan.stderr).toContain(scan.code);

    redis = await RedisServer.start();
    const distributed = path.join(work, 'distributed');
    const added = fqa('queue', 'add', slidesDir, '--out', distributed, '--redis', redis.url);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toMatch(/added 12 slides, 0 already there/);
    // Idempotent: the same slides, model and options again add nothing.
    expect(fqa('queue', 'add', slidesDir, '--out', distributed, '--redis', redis.url).stderr).toMatch(/added 0 slides, 12 already there/);

    for (let i = 0; i < 3; i++) workers.push(startWorker(redis.url, work));
    const client = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    client.on('error', () => {}); // expected while Redis restarts
    const queue = openScanQueue(client);
    queue.on('error', () => {}); // likewise
    try {
      // Kill a worker outright in the middle of a large slide: its job must move to another worker.
      const startedLarge = (w: WorkerProcess) => (w.log.match(/^\[worker \S+\] (\S+): started job (\S+)/gm) ?? []).find((l) => LARGE.test(l));
      await until('a worker to start a large slide', () => workers.some((w) => startedLarge(w) !== undefined));
      const victim = workers.find((w) => startedLarge(w) !== undefined)!;
      const [, killedSlide, killedJob] = /\] (\S+): started job (\S+)/.exec(startedLarge(victim)!)!;
      await new Promise((r) => setTimeout(r, 700));
      expect(victim.log, 'the victim had not finished the slide yet').not.toContain(`${killedSlide}: fail`);
      expect(victim.log).not.toContain(`${killedSlide}: pass`);
      victim.child.kill('SIGKILL');
      await victim.exited;

      // Redis goes down and comes back once while the others work; they reconnect and carry on.
      await until('6 slides done', async () => (await queue.getJobCounts('completed')).completed! >= 6);
      await redis.restart();
      await until('all 12 slides done', async () => (await queue.getJobCounts('completed')).completed === 12, 120_000);
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
      expect(counts).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0, completed: 12 });

      const retried = (await queue.getJob(killedJob!))!;
      expect(retried.returnvalue.worker).not.toBe(`${/\[worker (\S+)\]/.exec(victim.log)![1]}`);
      expect(retried.attemptsStarted + retried.stalledCounter).toBeGreaterThanOrEqual(2);
      const survivors = workers.filter((w) => w !== victim);
      expect(survivors.map((w) => w.log).join('')).toMatch(/Redis: connected again/);

      // SIGTERM: the survivors finish (nothing left) and exit cleanly.
      for (const w of survivors) w.child.kill('SIGTERM');
      expect(await Promise.all(survivors.map((w) => w.exited))).toEqual([0, 0]);
    } finally {
      await queue.close();
      client.disconnect();
    }

    const report = fqa('queue', 'report', '--out', distributed, '--redis', redis.url);
    expect([0, 1], report.stderr).toContain(report.code);
    expect(report.stderr).toMatch(/12 slides, 0 failed/);

    // Exactly one report per slide, nothing half-written visible, and the same results as one machine.
    // (The same file names as the single-machine scan's folder, which also lists what it skipped.)
    const visible = (dir: string) => readdirSync(dir).filter((f) => !f.startsWith('.') && f !== 'skipped.tsv').sort();
    expect(visible(distributed)).toEqual(visible(single));
    for (const stem of stems) expect(visible(distributed), stem).toContain(`${stem}.json`);
    const oneMachine = summaryBySlide(path.join(single, 'summary.tsv'));
    const queued = summaryBySlide(path.join(distributed, 'summary.tsv'));
    expect(queued.size).toBe(12);
    expect([...queued.keys()].sort()).toEqual([...oneMachine.keys()].sort());
    for (const [slide, row] of oneMachine) expect(queued.get(slide), slide).toEqual(row);
    // The large slides were really scanned (patches scored), not only the tiny ones.
    for (const [slide, row] of queued) if (LARGE.test(slide)) expect(Number(row[6]), slide).toBeGreaterThan(50);
    for (const stem of stems) {
      expect(readFileSync(path.join(distributed, `${stem}.scores.tsv`), 'utf8'), stem).toBe(readFileSync(path.join(single, `${stem}.scores.tsv`), 'utf8'));
    }
  }, 240_000);
});
