// The output side of fqa-scan against a real file system: report names from hostile slide names,
// a view that a killed run leaves half-written, two runs into one folder, files fqa did not write,
// a full disk (a real 8 MiB tmpfs) and a reader that closes stdout early. Every case runs the real
// CLI on real tissue (a 512 px tile of ../shared/data/tiles).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { allocateStem, reportStem, tsvField } from '@fqa/core';
import { hasShared, missing, repoRoot, shared } from './helpers/shared.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const work = mkdtempSync(path.join(tmpdir(), 'fqa-outputs-'));
const model = path.join(work, 'f1.fqa');
const tile = path.join(work, 'tile.png');
const big = path.join(work, 'big', 'big.png');
// A 512 px tissue tile, scored at stride 64 (25 patches, enough for a verdict) with a threshold the
// one-kernel model's scores stay below: every scanned copy passes.
const scanArgs = ['--model', model, '--mpp', '0.5', '--stride', '64', '--threshold=0', '--workers', '1'];

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; pid: number }

/** Runs fqa-scan without blocking the test process; `onSpawn` sees the child (to kill it). */
function fqa(args: string[], onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: work });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, pid: child.pid! }));
    onSpawn?.(child);
  });
}

/** stderr without the per-slide progress lines and notes. */
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('fqa-scan: ') && !l.startsWith('fqa-scan: note:'));

/**
 * The unescaping rule of docs/scanning.md, written here from the docs (not imported): `\t`, `\n`,
 * `\r`, `\\` and `\xHH`.
 */
const unescapeField = (text: string) =>
  text.replace(/\\(x[0-9a-fA-F]{2}|[tnr\\])/g, (_, e: string) => ({ t: '\t', n: '\n', r: '\r', '\\': '\\' })[e] ?? String.fromCharCode(parseInt(e.slice(1), 16)));

/** summary.tsv rows as objects keyed by column, fields unescaped by the documented rule. */
function summary(out: string): Record<string, string>[] {
  const lines = readFileSync(path.join(out, 'summary.tsv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const columns = lines[0]!.split('\t');
  return lines.slice(1).map((l) => {
    const fields = l.split('\t');
    expect(fields).toHaveLength(columns.length);
    return Object.fromEntries(fields.map((v, i) => [columns[i], unescapeField(v)]));
  });
}

/** Files (not folders) under `dir`, recursively. */
function countFiles(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  return n;
}

/** A folder with `tile` copied under each name (a string, or raw bytes for names that are not UTF-8). */
function slidesNamed(folder: string, names: (string | Buffer)[]): string {
  const dir = path.join(work, folder);
  mkdirSync(dir, { recursive: true });
  for (const name of names) {
    const target = typeof name === 'string' ? path.join(dir, name) : Buffer.concat([Buffer.from(dir + '/'), name]);
    writeFileSync(target, readFileSync(tile));
  }
  return dir;
}

beforeAll(async () => {
  if (!hasShared) return;
  const r = spawnSync(process.execPath, [bin, 'convert-reference', shared('reference', 'focuslitenn', 'focuslitenn-1kernel.json'), '--arch', 'focuslitenn', '--out', model], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  copyFileSync(shared('data', 'tiles', 'tissue-level0-4302-10273-4814-10785.png'), tile);
  // 4096 px of tissue: its 4096 px view is ~400 tiles, long enough to kill a run while it writes them.
  mkdirSync(path.dirname(big), { recursive: true });
  const tiles = [];
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) tiles.push({ input: tile, left: 512 * x, top: 512 * y });
  await sharp({ create: { width: 4096, height: 4096, channels: 3, background: '#fff' } }).composite(tiles).png().toFile(big);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!hasShared)('fqa-scan output folders', () => {
  test('a run killed while writing the zoomable view leaves the previous complete view, and no half view is marked done', async () => {
    const out = path.join(work, 'killed');
    const viewArgs = [big, ...scanArgs, '--view-size', '4096', '--out', out];
    const first = await fqa(viewArgs);
    expect(first.code, first.stderr).toBe(0);
    const complete = countFiles(path.join(out, 'big_files'));
    expect(complete).toBeGreaterThan(100);
    // Killed as soon as any tile folder in the output (fqa's own or a staging one) is part-written.
    const partial = (dir: string): boolean => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        const sub = path.join(dir, e.name);
        if (e.name.endsWith('_files')) {
          const n = countFiles(sub);
          if (n > 0 && n < complete) return true;
        } else if (e.name.startsWith('.') && partial(sub)) return true;
      }
      return false;
    };
    const killed = await fqa([...viewArgs, '--force'], (child) => {
      const watch = setInterval(() => {
        try {
          if (partial(out)) {
            child.kill('SIGKILL');
            clearInterval(watch);
          }
        } catch {
          // a folder renamed while it was read: look again
        }
      }, 5);
      child.on('close', () => clearInterval(watch));
    });
    expect(killed.signal, 'the run finished before it could be killed mid-view').toBe('SIGKILL');
    const next = await fqa(viewArgs);
    expect(next.code, next.stderr).toBe(0);
    // Either the slide is rescanned or its earlier report stands; in both cases its view is whole.
    expect(countFiles(path.join(out, 'big_files'))).toBe(complete);
    expect(readdirSync(out).filter((n) => n.startsWith('.fqa-stage'))).toEqual([]);
  });

  test('a second run into a folder in use stops with one line naming the first; a lock left by a dead run is taken over', async () => {
    const out = path.join(work, 'locked');
    const lock = path.join(out, '.fqa-lock');
    // The second run starts once the first holds the lock (or, without a lock, has finished).
    let second!: Promise<Run>;
    const firstRun = await fqa([big, ...scanArgs, '--view-size', '0', '--out', out], (child) => {
      const watch = setInterval(() => {
        if (existsSync(lock) || child.exitCode !== null) {
          clearInterval(watch);
          second = fqa([tile, ...scanArgs, '--out', out]);
        }
      }, 20);
    });
    expect(firstRun.code, firstRun.stderr).toBe(0);
    const r = await second;
    expect(r.code).toBe(4);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`in use by another fqa run \\(pid ${firstRun.pid} `))]);
    expect(existsSync(path.join(out, 'tile.json'))).toBe(false);
    expect(existsSync(lock)).toBe(false); // released by the first run
    // A lock of this host whose process is gone (as after a kill -9): stale, taken over.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const tag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    writeFileSync(lock, `${gone} ${tag} ${hostname()} 2026-01-01T00:00:00.000Z\n`);
    const after = await fqa([tile, ...scanArgs, '--out', out]);
    expect(after.code, after.stderr).toBe(0);
    expect(existsSync(path.join(out, 'tile.json'))).toBe(true);
  });

  test('files fqa did not write are never overwritten: a folder holding them is refused with one line', async () => {
    const out = path.join(work, 'foreign');
    mkdirSync(path.join(out, 'tile_files'), { recursive: true });
    writeFileSync(path.join(out, 'tile_files', 'mine.txt'), 'mine');
    writeFileSync(path.join(out, 'index.html'), '<p>my index</p>');
    writeFileSync(path.join(out, 'summary.tsv'), 'my\tsummary\n');
    const r = await fqa([tile, ...scanArgs, '--out', out]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/not an fqa output folder .*summary\.tsv, index\.html, tile_files/)]);
    expect(readFileSync(path.join(out, 'index.html'), 'utf8')).toBe('<p>my index</p>');
    expect(readFileSync(path.join(out, 'summary.tsv'), 'utf8')).toBe('my\tsummary\n');
    expect(readFileSync(path.join(out, 'tile_files', 'mine.txt'), 'utf8')).toBe('mine');
    // Other files are no obstacle: the folder is marked as fqa's and used.
    const other = path.join(work, 'other-files');
    mkdirSync(other);
    writeFileSync(path.join(other, 'notes.txt'), 'notes');
    const ok = await fqa([tile, ...scanArgs, '--out', other]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(path.join(other, 'notes.txt'), 'utf8')).toBe('notes');
    expect(existsSync(path.join(other, '.fqa-output'))).toBe(true);
  });

  test('a 240-byte name, control characters, #?% and javascript: in names: every slide scanned, one summary row each', async () => {
    const names = ['x'.repeat(236) + '.png', 'ctl\u0001a.png', 'esc\u001b[31mred.png', 'tab\tnl\ncr\r.png', 'javascript:alert(1).png', 'h#q?p%.png', 'A.png', 'a.png', 'index.png'];
    const dir = slidesNamed('named', names);
    const out = path.join(work, 'named-report');
    const r = await fqa([dir, ...scanArgs, '--view-size', '64', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const rows = summary(out);
    expect(rows.map((row) => path.basename(row.slide!)).sort()).toEqual([...names].sort());
    expect(rows.every((row) => row.verdict === 'pass')).toBe(true);
    const reports = rows.map((row) => row.report!);
    expect(new Set(reports.map((s) => s.toLowerCase())).size).toBe(names.length);
    for (const stem of reports) {
      expect(stem).not.toMatch(/[\x00-\x1f\x7f#?%:]/);
      expect(Buffer.byteLength(`${stem}.overview.png`)).toBeLessThanOrEqual(255);
      expect(existsSync(path.join(out, `${stem}.json`))).toBe(true);
    }
    // Links in the index are relative paths that no name turns into a script, query or fragment.
    const index = readFileSync(path.join(out, 'index.html'), 'utf8');
    const data = JSON.parse(/<script type="application\/json" id="fqa-data">(.*?)<\/script>/s.exec(index)![1]!) as { page: string }[];
    for (const row of data) expect(row.page).toMatch(/^\.\/[^#?:]+\.html$/);
  });

  test('fuzzed file names: random characters, every control character, URL characters, names up to 255 bytes', async () => {
    // Seeded (FQA_FUZZ_SEED repeats a run); the seed is in every failure message.
    const seed = Number(process.env.FQA_FUZZ_SEED ?? randomBytes(4).readUInt32LE());
    let state = seed;
    const random = (n: number) => {
      state = (state + 0x6d2b79f5) >>> 0; // mulberry32
      let t = Math.imul(state ^ (state >>> 15), state | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) % n);
    };
    const controls = [...Array.from({ length: 31 }, (_, i) => i + 1), 0x7f];
    const prefixes = ['', '#', '?', '%', 'javascript:', 'JavaScript:'];
    const count = 24;
    const names = Array.from({ length: count }, (_, i) => {
      // Random code points (ASCII, accented, CJK, emoji), never NUL or /, then the suffix.
      const suffix = `-${i}.png`;
      const limit = i % 4 === 0 ? 255 : 1 + random(255);
      let name = prefixes[i % prefixes.length]! + String.fromCharCode(controls[i % 32]!, controls[(i + 16) % 32]!);
      while (true) {
        const plane = random(4);
        const code = plane === 0 ? 0x20 + random(0x5f) : plane === 1 ? 0xa0 + random(0x2000) : plane === 2 ? 0x4e00 + random(0x5000) : 0x1f300 + random(0x300);
        const ch = code === 0x2f ? '_' : String.fromCodePoint(code);
        if (Buffer.byteLength(name + ch + suffix) > limit) break;
        name += ch;
      }
      return name + suffix;
    });
    const why = `fuzz seed ${seed} (FQA_FUZZ_SEED=${seed} repeats it)`;
    const present = new Set(names.join('').split('').map((c) => c.charCodeAt(0)));
    expect(controls.filter((c) => !present.has(c)), why).toEqual([]);
    expect(Math.max(...names.map((n) => Buffer.byteLength(n))), why).toBe(255);
    const dir = slidesNamed(`fuzzed-${seed}`, names);
    const out = path.join(work, `fuzzed-${seed}-report`);
    const r = await fqa([dir, ...scanArgs, '--view-size', '64', '--out', out]);
    expect(r.code, `${why}\n${r.stderr}`).toBe(0);
    const rows = summary(out);
    expect(rows.map((row) => path.basename(row.slide!)).sort(), why).toEqual([...names].sort());
    expect(rows.every((row) => row.verdict === 'pass'), why).toBe(true);
    expect(new Set(rows.map((row) => row.report!.toLowerCase())).size, why).toBe(count);
    for (const row of rows) expect(existsSync(path.join(out, `${row.report}_files`)), why).toBe(true);
    expect(readFileSync(path.join(out, 'skipped.tsv'), 'utf8'), why).toBe('file\treason\n');
  });

  test('a model name with a tab, a newline and a control character stays on its `# model:` line', async () => {
    const evil = path.join(work, 'evil.fqa');
    const made = spawnSync(process.execPath, [bin, 'convert-reference', shared('reference', 'focuslitenn', 'focuslitenn-1kernel.json'), '--arch', 'focuslitenn', '--name', 'evil\tname\nrow\u0001', '--out', evil], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const out = path.join(work, 'evil-model-report');
    const r = await fqa([tile, ...scanArgs.slice(2), '--model', evil, '--out', out]); // scanArgs without its --model
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(path.join(out, 'summary.tsv'), 'utf8').trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('#'))).toHaveLength(5);
    const model = lines.find((l) => l.startsWith('# model: '))!;
    expect(unescapeField(model.slice('# model: '.length).split(' (sha256')[0]!)).toBe('evil\tname\nrow\u0001');
    expect(summary(out)).toHaveLength(1);
  });

  test('names that are not UTF-8 do not stop the run, and every row stays one row', async () => {
    const names = [Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x70, 0x6e, 0x67]), Buffer.concat([Buffer.from('ok-'), Buffer.from([0xc3, 0x28]), Buffer.from('\t.png')])];
    const dir = slidesNamed('not-utf8', [...names, 'plain.png']);
    const out = path.join(work, 'not-utf8-report');
    const r = await fqa([dir, ...scanArgs, '--view-size', '64', '--out', out]);
    expect(r.code === 0 || r.code === 3, r.stderr).toBe(true); // 3: the input side could not open a name Node cannot spell
    const rows = summary(out);
    const skipped = readFileSync(path.join(out, 'skipped.tsv'), 'utf8').trim().split('\n').slice(1);
    for (const line of skipped) expect(line.split('\t')).toHaveLength(2);
    // Node spells such a name with U+FFFD, a path that does not exist: listed with that reason, not as a broken link.
    expect(skipped.filter((line) => /file name is not UTF-8 text/.test(line))).toHaveLength(2);
    expect(rows.length + skipped.length).toBeGreaterThanOrEqual(3);
    expect(rows.find((row) => row.slide!.endsWith('plain.png'))?.verdict).toBe('pass');
  });

  test('a closed stdout (fqa-scan --json | head -1) still gets every report and summary.tsv written', async () => {
    const dir = slidesNamed('piped', ['p1.png', 'p2.png', 'p3.png']);
    const out = path.join(work, 'piped-report');
    const quoted = [process.execPath, bin, dir, ...scanArgs, '--view-size', '0', '--json', '--out', out].map((a) => `'${a}'`).join(' ');
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', `${quoted} | head -1; echo "exit \${PIPESTATUS[0]}" >&2`]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', () => resolve({ stdout, stderr }));
    });
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/exit 0\n$/);
    expect(r.stderr).not.toMatch(/EPIPE|internal error/);
    expect(summary(out).map((row) => row.verdict)).toEqual(['pass', 'pass', 'pass']);
  });

  test('report names: long names cut on a character boundary with a hash, case and replaced characters never collide', () => {
    const long = (tail: string) => `${'é'.repeat(130)}${tail}.svs`; // 2-byte characters, 260+ bytes
    const [a, b] = [reportStem(long('a')), reportStem(long('b'))];
    expect(a).not.toBe(b);
    for (const stem of [a, b]) {
      expect(Buffer.byteLength(stem)).toBeLessThanOrEqual(200);
      expect(Buffer.from(stem).toString('utf8')).toBe(stem); // not cut inside a character
    }
    const taken = new Map<string, string>();
    const stems = ['/s/A.svs', '/s/a.svs', '/s/a#b.svs', '/s/a?b.svs', '/s/a_b.svs', '/s/index.svs', '/s/.hidden.svs'].map((f) => allocateStem(f, taken));
    expect(new Set(stems.map((x) => x.toLowerCase())).size).toBe(stems.length);
    expect(stems.slice(5)).toEqual(['index_', '_hidden']);
    expect(allocateStem('/s/a#b.svs', taken)).toBe(stems[2]); // the same name in every run
  });

  test('TSV fields escape tabs, newlines, carriage returns, backslashes and control characters, and unescape back', () => {
    const text = 'a\tb\nc\rd\\e\u0001f\u001b[31m\u007fg';
    expect(tsvField(text)).toBe('a\\tb\\nc\\rd\\\\e\\x01f\\x1b[31m\\x7fg');
    expect(tsvField(text)).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(unescapeField(tsvField(text))).toBe(text);
  });
});

// A real full disk: an 8 MiB tmpfs, three good reports, then all but 300 KB filled.
const tmpfsOk = (() => {
  if (process.platform !== 'linux') return false;
  const probe = mkdtempSync(path.join(tmpdir(), 'fqa-tmpfs-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
})();

describe.skipIf(!hasShared || missing(tmpfsOk, 'permission to mount a tmpfs (root)'))('fqa-scan on a full disk', () => {
  const disk = mkdtempSync(path.join(tmpdir(), 'fqa-full-'));
  beforeAll(() => {
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', disk]).status).toBe(0);
  });
  afterAll(() => {
    spawnSync('umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  });

  test('ENOSPC: one line, exit 4, and --force keeps the good reports instead of error rows', async () => {
    const dir = slidesNamed('full-disk', ['d1.png', 'd2.png', 'd3.png']);
    const out = path.join(disk, 'report');
    const first = await fqa([dir, ...scanArgs, '--view-size', '256', '--out', out]);
    expect(first.code, first.stderr).toBe(0);
    const before = Object.fromEntries(['d1', 'd2', 'd3'].map((s) => [s, readFileSync(path.join(out, `${s}.json`), 'utf8')]));
    const free = Number(spawnSync('df', ['-k', '--output=avail', disk], { encoding: 'utf8' }).stdout.trim().split('\n')[1]);
    writeFileSync(path.join(disk, 'filler'), Buffer.alloc((free - 300) * 1024));
    const r = await fqa([dir, ...scanArgs, '--view-size', '256', '--out', out, '--force']);
    expect(r.code, r.stderr).toBe(4);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^fqa-scan: --out .*: no space left on the device \(ENOSPC\) while writing the report of .*d1\.png; 3 slides got no new report; the reports already in the folder are kept$/)]);
    for (const [stem, json] of Object.entries(before)) expect(readFileSync(path.join(out, `${stem}.json`), 'utf8')).toBe(json);
    expect(summary(out).map((row) => row.verdict)).toEqual(['pass', 'pass', 'pass']);
    expect(readdirSync(out).filter((n) => n.startsWith('.fqa-stage') || n.startsWith('.fqa-tmp'))).toEqual([]);
    expect(statSync(path.join(out, 'summary.tsv')).size).toBeGreaterThan(0);
  });
});
