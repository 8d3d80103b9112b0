/**
 * Whole-slide scan benchmark: fqa's scan beside its floor and its peer, all measured in this run,
 * on the same slide and the same number of threads:
 * - the libjpeg-turbo decode floor of the slide (../shared/peers/decode_floor.c, compiled here):
 *   every level-0 tile decoded, nothing else; no scan can be faster on the same cores;
 * - the pipeline a Python user runs today (../shared/peers/python_pipeline.py: OpenSlide regions,
 *   PyTorch FocusLiteNN-1 with the published weights, one process per thread, every patch scored);
 * - fqa scans with the published FocusLiteNN weights (../shared/reference/focuslitenn), --mpp 0.5:
 *   FocusLiteNN-1 and -10 at 235 px stride 235 (the 7x7 stride-5 model), FocusLiteNN-1 at 64 and
 *   128 px (the 7x7 stride-1 model, stride = patch), each on the fused native path and FocusLiteNN-1
 *   235 px also on the worker-pool path, each in its own process (peak RSS is that process's VmHWM).
 * - the whole `fqa-scan` process as a lab runs it (start-up, tissue mask, sweep, every report and the
 *   zoomable view): the default model and options, and FocusLiteNN-1 235 px with no view; the median
 *   of 3 runs each, peak RSS from the process's own VmHWM; and `fqa-scan --version`.
 * Then the ratios to the floor and the paper's Table 4 projection (300 slides of 25k²) beside its
 * GTX 1650 Ti hours. The slide is a 25,000² JPEG-tiled pyramidal TIFF (CMU-1-Small-Region.svs
 * replicated, 240-px tiles, quality 80), made once with sharp under --dir and reused.
 * A 40x run (bench40x below): the same pixels claimed at 0.25 µm/px in an Aperio-like layout
 * (levels at 4x steps, so none at 0.5 µm/px) scanned by the default model (0.5 µm/px) on the fused
 * path, which decodes level 0 at 1/2 (scaled IDCT), beside the decode floor of that level 0.
 *
 *   npm run bench:scan -w @fqa/bench [-- --size 25000 --dir /tmp --threads 2] [--only-40x]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { convertReferenceFile, DEFAULT_MODEL_PATH, getArchitecture, openSource, scanSlide } from '@fqa/core';
import { chainTiffs } from './tiff-chain.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '25000' },
    dir: { type: 'string', default: os.tmpdir() },
    threads: { type: 'string', default: '2' },
    // Internal: one scan in this (child) process, its result as one JSON line.
    'scan-one': { type: 'string' },
    // Internal: the 40x scan (bench40x) in this (child) process.
    'scan-40x': { type: 'boolean' },
    // Only the 40x run and its decode floor (bench40x), printed alone.
    'only-40x': { type: 'boolean' },
  },
});
const size = Number(values.size);
const threads = Number(values.threads);
const here = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(here), '..', '..', '..');
const shared = path.resolve(repoRoot, '..', 'shared');
const svs = path.join(shared, 'data', 'slides', 'CMU-1-Small-Region.svs');
const peers = path.join(shared, 'peers');
const weights = (k: number) => path.join(shared, 'reference', 'focuslitenn', `focuslitenn-${k}kernel.json`);
const slide = path.join(values.dir, `fqa-bench-${size}.tiff`);
const MPP = 0.5;

/** CPU seconds (user + system) of the waited-for children so far (/proc/self/stat cutime + cstime). */
function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100; // clock ticks, 100 per second on Linux
}

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface ScanConfig {
  label: string;
  kernels: 1 | 10;
  /** The published model's geometry: 235 (7x7 stride 5) or 64 (7x7 stride 1). */
  variant: 235 | 64;
  patch: number;
  fused: boolean;
}
interface ScanRun extends ScanConfig {
  seconds: number;
  /** CPU seconds of the scan (all threads, user + system): what the cores did, whatever else ran. */
  cpuSeconds: number;
  scoreSeconds: number;
  patchesScored: number;
  patches: number;
  tilesDecoded: number;
  tilesRedecoded: number;
  peakRssMiB: number;
  pipeline: string;
  kernel: string;
}

if (values['scan-40x']) {
  await scan40xChild();
  process.exit(0);
}

if (values['scan-one']) {
  // Child: one scan, timed from the call to its result (model load, tissue mask, decode, score).
  const c = JSON.parse(values['scan-one']) as ScanConfig & { model: string };
  const start = performance.now();
  const cpu = process.cpuUsage();
  const r = await scanSlide(slide, { model: c.model, patchSize: c.patch, stride: c.patch, mpp: MPP, workers: threads, fusedSweep: c.fused, minTissue: 0.5 });
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const run: ScanRun = {
    ...c, seconds, cpuSeconds: (used.user + used.system) / 1e6, scoreSeconds: r.timings.scoreSeconds, patchesScored: r.summary.patchesScored, patches: r.columns * r.rows,
    tilesDecoded: r.reader.tilesDecoded, tilesRedecoded: r.reader.tilesRedecoded, peakRssMiB: peakRssMiB(), pipeline: r.pipeline, kernel: r.kernel,
  };
  console.log(JSON.stringify(run));
  process.exit(0);
}

/** CMU-1-Small-Region.svs as a PNG: the tissue both benchmark slides repeat. */
async function tissueTilePng(): Promise<Buffer> {
  if (!existsSync(svs)) throw new Error(`${svs} not found: the benchmark slides are made from it`);
  const source = await openSource(svs);
  const { width, height } = source.levels[0]!;
  const tile = await source.readRegion(0, 0, 0, width, height);
  source.close();
  return sharp(tile, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

if (!existsSync(slide)) {
  const start = performance.now();
  const png = await tissueTilePng();
  await sharp({ create: { width: size, height: size, channels: 3, background: '#ffffff' }, limitInputPixels: false })
    .composite([{ input: png, tile: true }])
    .tiff({ tile: true, tileWidth: 240, tileHeight: 240, pyramid: true, compression: 'jpeg', quality: 80, xres: 1000 / 0.499, yres: 1000 / 0.499, resolutionUnit: 'cm' })
    .toFile(slide);
  console.log(`made ${slide} (${size} x ${size}) in ${((performance.now() - start) / 1000).toFixed(1)} s`);
}

const work = mkdtempSync(path.join(os.tmpdir(), 'fqa-scan-bench-'));
const notes: string[] = [];
if (values['only-40x']) {
  const lines = lines40x(await bench40x());
  rmSync(work, { recursive: true, force: true });
  console.log([...lines, ...notes.map((n) => `note: ${n}`)].join('\n'));
  process.exit(0);
}

/** The decode floor, compiled from the peer's source; null (with a note) where it cannot be built. */
function decodeFloor(file = slide): { seconds: number; cpuSeconds: number; megapixelsPerSecond: number; tiles: number } | null {
  const binary = path.join(work, 'decode_floor');
  try {
    execFileSync('cc', ['-O2', path.join(peers, 'decode_floor.c'), '-o', binary, '-ltiff', '-lturbojpeg', '-lpthread'], { stdio: 'pipe' });
  } catch (err) {
    notes.push(`decode floor not measured: cannot compile ${path.join(peers, 'decode_floor.c')} (needs cc, libtiff-dev, libturbojpeg0-dev): ${String((err as { stderr?: Buffer }).stderr ?? err).split('\n')[0]}`);
    return null;
  }
  const cpu = childrenCpuSeconds();
  const out = JSON.parse(execFileSync(binary, [file, String(threads)], { encoding: 'utf8' })) as { seconds: number; megapixels_per_s: number; tiles: number };
  // Its CPU time includes reading the raw tiles before its clock starts: a little above its decode.
  return { seconds: out.seconds, cpuSeconds: childrenCpuSeconds() - cpu, megapixelsPerSecond: out.megapixels_per_s, tiles: out.tiles };
}

/** The Python user's pipeline; null (with a note) where python3-torch or python3-openslide is missing. */
function pythonPipeline(): { seconds: number; cpuSeconds: number; patches: number } | null {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const cpu = childrenCpuSeconds();
  const r = spawnSync(python, [path.join(peers, 'python_pipeline.py'), slide, weights(1), String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) {
    notes.push(`Python pipeline not measured (needs Debian python3-torch python3-openslide): ${(r.stderr || String(r.error)).trim().split('\n').pop()}`);
    return null;
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; patches: number };
  return { seconds: out.seconds, cpuSeconds: childrenCpuSeconds() - cpu, patches: out.patches };
}

const models = new Map<string, string>();
async function modelFile(kernels: number, variant: 235 | 64): Promise<string> {
  const key = `${kernels}-${variant}`;
  if (!models.has(key)) {
    const file = path.join(work, `focuslitenn-${key}.fqa`);
    writeFileSync(file, await convertReferenceFile(weights(kernels), { architecture: 'focuslitenn', patchSize: variant, name: `FocusLiteNN-${kernels} (${variant} px)` }));
    models.set(key, file);
  }
  return models.get(key)!;
}

async function scan(c: ScanConfig): Promise<ScanRun> {
  const out = execFileSync(process.execPath, [here, '--size', String(size), '--dir', values.dir!, '--threads', String(threads), '--scan-one', JSON.stringify({ ...c, model: await modelFile(c.kernels, c.variant) })], { encoding: 'utf8' });
  const run = JSON.parse(out.trim().split('\n').pop()!) as ScanRun;
  process.stderr.write(`${run.label}${run.fused ? '' : ' (pool)'}: ${run.seconds.toFixed(2)} s\n`);
  return run;
}

const cliBin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const peakRssHook = path.join(path.dirname(here), 'peak-rss-hook.js');

interface CliRun {
  label: string;
  /** Medians of the runs: wall seconds, CPU seconds (user + system, all threads), peak RSS. */
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

/**
 * The whole fqa-scan process, `repeats` times into fresh output folders: the median wall and CPU
 * seconds and peak RSS (VmHWM, written at exit by peak-rss-hook).
 */
function cliRun(label: string, args: string[], repeats = 3): CliRun {
  const runs: { seconds: number; cpuSeconds: number; peakRssMiB: number }[] = [];
  for (let i = 0; i < repeats; i++) {
    const out = path.join(work, `cli-${runs.length}-${label.replace(/\W+/g, '-')}`);
    const rssFile = path.join(work, 'peak-rss');
    rmSync(rssFile, { force: true });
    const cpu = childrenCpuSeconds();
    const start = performance.now();
    const r = spawnSync(process.execPath, ['--import', peakRssHook, cliBin, ...args.map((a) => (a === '{out}' ? out : a))], {
      encoding: 'utf8', env: { ...process.env, FQA_BENCH_PEAK_RSS_FILE: rssFile },
    });
    const seconds = (performance.now() - start) / 1000;
    // Exit 1 is a slide that did not pass (the published one-kernel weights score on their own scale): a complete run.
    if (r.status !== 0 && r.status !== 1) throw new Error(`fqa-scan ${args.join(' ')} exited ${r.status}: ${r.stderr.trim().split('\n').pop()}`);
    runs.push({ seconds, cpuSeconds: childrenCpuSeconds() - cpu, peakRssMiB: existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8')) / 1024 : Number.NaN });
    rmSync(out, { recursive: true, force: true });
  }
  const median = (pick: (r: (typeof runs)[number]) => number) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
  const run = { label, seconds: median((r) => r.seconds), cpuSeconds: median((r) => r.cpuSeconds), peakRssMiB: median((r) => r.peakRssMiB) };
  process.stderr.write(`${label}: ${run.seconds.toFixed(2)} s\n`);
  return run;
}

const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
// The floor first: it also brings the slide's bytes into the page cache for everything after it.
const floor = decodeFloor();
const configs: ScanConfig[] = [
  { label: 'FocusLiteNN-1, 235 px stride 235', kernels: 1, variant: 235, patch: 235, fused: true },
  { label: 'FocusLiteNN-1, 235 px stride 235', kernels: 1, variant: 235, patch: 235, fused: false },
  { label: 'FocusLiteNN-10, 235 px stride 235', kernels: 10, variant: 235, patch: 235, fused: true },
  { label: 'FocusLiteNN-1, 64 px stride 64', kernels: 1, variant: 64, patch: 64, fused: true },
  { label: 'FocusLiteNN-1, 128 px stride 128', kernels: 1, variant: 64, patch: 128, fused: true },
  { label: 'FocusLiteNN-10, 64 px stride 64', kernels: 10, variant: 64, patch: 64, fused: true },
  { label: 'FocusLiteNN-10, 128 px stride 128', kernels: 10, variant: 64, patch: 128, fused: true },
];
const runs: ScanRun[] = [];
for (const c of configs) runs.push(await scan(c));
const threadsArgs = ['--workers', String(threads)];
const cliRuns: CliRun[] = [
  cliRun('fqa-scan slide.tiff (default model, options and view)', [slide, '--out', '{out}', ...threadsArgs]),
  cliRun('fqa-scan FocusLiteNN-1 235 px stride 235, --view-size 0', [slide, '--out', '{out}', '--model', await modelFile(1, 235), '--stride', '235', '--mpp', String(MPP), '--view-size', '0', ...threadsArgs]),
];
const version = cliRun('fqa-scan --version', ['--version'], 5);
const python = pythonPipeline();
const run40x = await bench40x();
rmSync(work, { recursive: true, force: true });

const mp = (size * size) / 1e6;
const lines: string[] = [];
lines.push(`fqa scan benchmark — ${startedAt}, ${os.cpus()[0]?.model ?? 'CPU'}, ${os.cpus().length} CPUs, ${threads} threads for everything below`);
lines.push(`slide ${slide}: ${size} x ${size} (${mp.toFixed(0)} MP), 240-px JPEG tiles, --mpp ${MPP}, published FocusLiteNN weights, patches with >= 50 % tissue scored`);
lines.push('seconds: wall clock of the decode (floor) or of the whole scanSlide call (fqa: model load, tissue mask, decode, score); CPU seconds: all threads, user + system (the floor\'s include reading its raw tiles), a measure other load on the machine disturbs less');
lines.push('');
lines.push('| what | seconds | x decode floor | CPU seconds | x floor CPU | patches scored | tiles decoded (again) | peak RSS MiB | path |');
lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
const ratio = (s: number) => (floor ? `${(s / floor.seconds).toFixed(2)}x` : '–');
const cpuRatio = (s: number) => (floor ? `${(s / floor.cpuSeconds).toFixed(2)}x` : '–');
if (floor) lines.push(`| libjpeg-turbo decode floor (every level-0 tile) | ${floor.seconds.toFixed(2)} | 1.00x | ${floor.cpuSeconds.toFixed(2)} | 1.00x | – | ${floor.tiles} | – | decode_floor.c, ${floor.megapixelsPerSecond.toFixed(0)} MP/s |`);
if (python) lines.push(`| Python: OpenSlide + PyTorch FocusLiteNN-1 235 px (every patch) | ${python.seconds.toFixed(2)} | ${ratio(python.seconds)} | ${python.cpuSeconds.toFixed(2)} | ${cpuRatio(python.cpuSeconds)} | ${python.patches} | – | – | python_pipeline.py, ${threads} processes |`);
for (const r of runs) {
  lines.push(`| fqa ${r.label} | ${r.seconds.toFixed(2)} | ${ratio(r.seconds)} | ${r.cpuSeconds.toFixed(2)} | ${cpuRatio(r.cpuSeconds)} | ${r.patchesScored} of ${r.patches} | ${r.tilesDecoded} (${r.tilesRedecoded}) | ${r.peakRssMiB.toFixed(0)} | ${r.pipeline}, ${r.kernel} |`);
}
lines.push('');
lines.push('Whole fqa-scan runs as a lab runs them (the CLI process: start-up, tissue mask, sweep, every report and the view), median of 3:');
lines.push('| run | seconds | x decode floor | CPU seconds | peak RSS MiB |');
lines.push('| --- | --- | --- | --- | --- |');
for (const r of cliRuns) lines.push(`| ${r.label} | ${r.seconds.toFixed(2)} | ${ratio(r.seconds)} | ${r.cpuSeconds.toFixed(2)} | ${r.peakRssMiB.toFixed(0)} |`);
lines.push(`| fqa-scan --version (median of 5) | ${version.seconds.toFixed(2)} | – | ${version.cpuSeconds.toFixed(2)} | ${version.peakRssMiB.toFixed(0)} |`);
const fusedFlnn1 = runs.find((r) => r.kernels === 1 && r.patch === 235 && r.fused)!;
const poolFlnn1 = runs.find((r) => r.kernels === 1 && r.patch === 235 && !r.fused)!;
lines.push('');
lines.push(`fused native path vs worker pool (FocusLiteNN-1 235 px): ${fusedFlnn1.seconds.toFixed(2)} s vs ${poolFlnn1.seconds.toFixed(2)} s (${(poolFlnn1.seconds / fusedFlnn1.seconds).toFixed(2)}x)`);
if (python) lines.push(`fqa FocusLiteNN-1 235 px vs the Python pipeline: ${(python.seconds / fusedFlnn1.seconds).toFixed(1)}x faster`);
lines.push('');
lines.push('Table 4 projection: hours for 300 slides of 25k², one after another on these threads (paper: GTX 1650 Ti)');
lines.push('| model | 64 px ours (paper) | 128 px ours (paper) | 235 px ours (paper) |');
lines.push('| --- | --- | --- | --- |');
const paperRows = getArchitecture('focuslitenn').paper ?? [];
for (const k of [1, 10] as const) {
  const paper = paperRows.find((p) => p.label === `FocusLiteNN-${k}`);
  const cells = [64, 128, 235].map((patch, i) => {
    const r = runs.find((x) => x.kernels === k && x.patch === patch && x.fused);
    return `${r ? ((300 * r.seconds) / 3600).toFixed(2) : '–'} (${paper ? paper.hours[i] : '–'})`;
  });
  lines.push(`| FocusLiteNN-${k} | ${cells.join(' | ')} |`);
}
lines.push('(ours: the whole scan of the 25k² slide above, tissue only; 64 and 128 px with the 7x7 stride-1 model, 235 px with the 7x7 stride-5 one)');
lines.push('', ...lines40x(run40x));
for (const n of notes) lines.push(`note: ${n}`);
console.log(lines.join('\n'));

// ---- 40x slides: level 0 decoded at 1/2 by the scaled IDCT inside the fused path (issue #26) ----

/** A function, not a constant: the top-level code above calls bench40x before this line runs. */
function slide40xPath(): string {
  return path.join(values.dir!, `fqa-bench-40x-${size}.tiff`);
}

interface Run40x {
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  pipeline: string;
  decodeScale: number;
  level: number;
  tilesDecoded: number;
  patchesScored: number;
  patches: number;
}

/**
 * The 40x slide, made once: the 25k² slide's pixels (CMU-1-Small-Region.svs replicated, 240-px
 * tiles, quality 80) at 0.25 µm/px, with levels at 4x and 16x as Aperio writes them (libvips writes
 * 2x pyramids only: each level is its own file, joined by tiff-chain.ts).
 */
async function make40xSlide(): Promise<void> {
  const slide40x = slide40xPath();
  if (existsSync(slide40x)) return;
  const start = performance.now();
  const png = await tissueTilePng();
  const options = { tile: true, tileWidth: 240, tileHeight: 240, compression: 'jpeg', quality: 80, xres: 1000 / 0.25, yres: 1000 / 0.25, resolutionUnit: 'cm' } as const;
  const parts = [0, 1, 2].map((i) => `${slide40x}.level${i}`);
  await sharp({ create: { width: size, height: size, channels: 3, background: '#ffffff' }, limitInputPixels: false })
    .composite([{ input: png, tile: true }])
    .tiff(options)
    .toFile(parts[0]!);
  for (const i of [1, 2]) {
    const side = Math.floor(size / 4 ** i);
    await sharp(parts[i - 1]!, { limitInputPixels: false }).resize(side, side, { kernel: 'lanczos3', fit: 'fill' }).tiff(options).toFile(parts[i]!);
  }
  chainTiffs(slide40x, parts);
  for (const part of parts) rmSync(part);
  console.log(`made ${slide40x} (${size} x ${size} at 0.25 µm/px, levels at 4x steps) in ${((performance.now() - start) / 1000).toFixed(1)} s`);
}

/** Child: the default model at its 0.5 µm/px on the 40x slide (mpp from the slide's metadata). */
async function scan40xChild(): Promise<void> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const r = await scanSlide(slide40xPath(), { model: DEFAULT_MODEL_PATH, workers: threads });
  const used = process.cpuUsage(cpu);
  const run: Run40x = {
    seconds: (performance.now() - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6, peakRssMiB: peakRssMiB(), pipeline: r.pipeline,
    decodeScale: r.reader.decodeScale, level: r.level, tilesDecoded: r.reader.tilesDecoded, patchesScored: r.summary.patchesScored, patches: r.columns * r.rows,
  };
  console.log(JSON.stringify(run));
}

async function bench40x(): Promise<{ floor: ReturnType<typeof decodeFloor>; run: Run40x }> {
  await make40xSlide();
  const floor = decodeFloor(slide40xPath());
  const out = execFileSync(process.execPath, [here, '--size', String(size), '--dir', values.dir!, '--threads', String(threads), '--scan-40x'], { encoding: 'utf8' });
  const run = JSON.parse(out.trim().split('\n').pop()!) as Run40x;
  process.stderr.write(`40x default model: ${run.seconds.toFixed(2)} s\n`);
  return { floor, run };
}

function lines40x({ floor, run }: Awaited<ReturnType<typeof bench40x>>): string[] {
  const ratio = (s: number, of: number | undefined) => (of ? `${(s / of).toFixed(2)}x` : '–');
  return [
    `40x slide ${slide40xPath()}: ${size} x ${size} at 0.25 µm/px, levels at 4x steps (none at 0.5 µm/px), the default model at its 0.5 µm/px`,
    '| what | seconds | x decode floor | CPU seconds | x floor CPU | patches scored | tiles decoded | peak RSS MiB | path |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...(floor ? [`| libjpeg-turbo decode floor (every level-0 tile, full size) | ${floor.seconds.toFixed(2)} | 1.00x | ${floor.cpuSeconds.toFixed(2)} | 1.00x | – | ${floor.tiles} | – | decode_floor.c |`] : []),
    `| fqa default model, level ${run.level} decoded at 1/${run.decodeScale} | ${run.seconds.toFixed(2)} | ${ratio(run.seconds, floor?.seconds)} | ${run.cpuSeconds.toFixed(2)} | ${ratio(run.cpuSeconds, floor?.cpuSeconds)} | ${run.patchesScored} of ${run.patches} | ${run.tilesDecoded} | ${run.peakRssMiB.toFixed(0)} | ${run.pipeline} |`,
  ];
}
