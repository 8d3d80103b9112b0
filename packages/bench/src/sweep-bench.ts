/**
 * FocusLiteNN and EONSS sweep throughput (patches/s, MP/s, GFLOP/s, % of the measured FMA peak) beside
 * the PyTorch peers (../shared/peers/torch_focuslitenn.py, peers/torch_eonss.py) run in the same
 * invocation. Nothing is timed before it is checked: the published weights must reproduce the
 * golden scores (../shared/reference, 1e-4) on the kernel the bench times, and every timed
 * configuration must match the scalar reference kernel on a corner of its region.
 *
 *   npm run bench -w @fqa/bench [-- --seconds 2 --peer-seconds 5 --json out.json --no-peer --threads 1,2]
 *                                  [--only 'FocusLiteNN-1 235'] (rows whose "model patch" starts with it; for perf)
 *
 * fqa's side includes everything the scan pays per region: u8 RGB in, normalization, conv, min,
 * fc. The peer gets random float tensors already in memory (its best batch size). Models use
 * random weights: only speed is measured. "Shared" rows sweep at stride P/2, where the conv map
 * is shared between overlapping patches; their GFLOP/s is effective (per-patch FLOPs counted as
 * if each patch were computed alone) and may exceed the peak.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { convertReferenceFile, decodeImage, parseModelFile, resolveScoreOptions, scoreRgb, seededRandom, toLoadedModel } from '@fqa/core';
import { cpuInfo, createNativeModel, flopsPerPatch, measureFmaPeak, sweep, type NativeModel, type EonssLayerSpec } from '@fqa/native';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    'peer-seconds': { type: 'string', default: '5' },
    json: { type: 'string' },
    'no-peer': { type: 'boolean', default: false },
    threads: { type: 'string', default: '1,2' },
    only: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const peerSeconds = Number(values['peer-seconds']);
const threadCounts = values.threads.split(',').map(Number);
/** Whether a configuration is measured: --only 'FocusLiteNN-1 235' keeps that model and patch size. */
const selected = (model: string, patch: number) => values.only === undefined || `${model} ${patch}`.startsWith(values.only);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const sharedRoot = path.resolve(repoRoot, '..', 'shared');
const focusPeerScript = path.resolve(sharedRoot, 'peers', 'torch_focuslitenn.py');
const eonssPeerScript = path.resolve(repoRoot, 'packages', 'bench', 'peers', 'torch_eonss.py');

/** Seeded numbers in [-0.5, 0.5). */
function rng(seed: number) {
  const uniform = seededRandom(seed);
  return () => uniform() - 0.5;
}

function focusLiteModel(k: number, patch: 235 | 64): NativeModel {
  const r = rng(k * 1000 + patch);
  const geometry = patch === 235 ? { convKernel: 7, convStride: 5, convPad: 1 } : { convKernel: 7, convStride: 1, convPad: 0 };
  return createNativeModel({
    architecture: 'focuslitenn',
    patchSize: patch,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    kernels: k,
    ...geometry,
    convWeight: Float32Array.from({ length: k * 147 }, r),
    convBias: Float32Array.from({ length: k }, r),
    ...(k > 1 ? { fcWeight: Float32Array.from({ length: k }, r), fcBias: 0.1 } : {}),
  });
}

function eonssModel(): NativeModel {
  const r = rng(7);
  const shapes: [number, number, number, number, number, boolean, boolean][] = [
    [3, 8, 5, 2, 2, true, true], [8, 16, 5, 2, 2, true, true], [16, 32, 5, 2, 2, true, true],
    [32, 64, 3, 1, 0, true, true], [64, 256, 1, 1, 0, true, false], [256, 1, 1, 1, 0, false, false],
  ];
  const layers: EonssLayerSpec[] = shapes.map(([inC, outC, k, stride, pad, gdn, maxPool]) => ({
    inChannels: inC, outChannels: outC, kernel: k, stride, pad, gdn, maxPool,
    weight: Float32Array.from({ length: outC * inC * k * k }, () => r() * 0.2),
    bias: Float32Array.from({ length: outC }, r),
    ...(gdn ? { gdnGamma: Float32Array.from({ length: outC * outC }, () => Math.abs(r()) * 0.01), gdnBeta: Float32Array.from({ length: outC }, () => 1) } : {}),
  }));
  return createNativeModel({ architecture: 'eonss', patchSize: 235, mean: [0, 0, 0], std: [1, 1, 1], layers });
}

/** A region of `across` x `across` patches of side `patch` with texture, like tissue. */
function region(side: number): Uint8Array {
  const r = rng(side);
  const px = new Uint8Array(side * side * 3);
  for (let i = 0; i < px.length; i++) px[i] = Math.max(0, Math.min(255, 128 + 100 * Math.sin(i * 0.001) + 40 * r()));
  return px;
}

interface Row {
  model: string;
  patch: number;
  stride: number;
  threads: number;
  kernel: string;
  shared: boolean;
  patchesPerSecond: number;
  megapixelsPerSecond: number;
  gflops: number;
  percentOfPeak: number;
  peerPatchesPerSecond?: number;
  peerMode?: string;
}

async function measure(model: NativeModel, patch: number, stride: number, threads: number, side: number, pixels: Uint8Array) {
  const options = { width: side, height: side, rowStride: side * 3, patchWidth: patch, patchHeight: patch, stride, threads, kernel: 'auto' as const, shareConvolution: true };
  let result = await sweep(model, pixels, options); // warm-up
  const start = process.hrtime.bigint();
  let patches = 0;
  let elapsed = 0;
  do {
    result = await sweep(model, pixels, options);
    patches += result.rows * result.columns;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < seconds);
  return { patchesPerSecond: patches / elapsed, kernel: result.kernel, shared: result.sharedConvolution };
}

function peer(script: string, args: string[]): { patches_per_s: number; mode: string } | string {
  if (values['no-peer']) return 'peer disabled (--no-peer)';
  if (!existsSync('/usr/bin/python3')) return 'peer skipped: /usr/bin/python3 not found';
  if (!existsSync(script)) return `peer skipped: ${script} not found`;
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return 'peer skipped: python3-torch is not installed (apt-get install -y python3-torch)';
  const run = spawnSync('/usr/bin/python3', [script, ...args, '--seconds', String(peerSeconds)], { encoding: 'utf8' });
  if (run.status !== 0) return `peer failed: ${run.stderr.trim().split('\n').pop()}`;
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as { patches_per_s: number; mode: string };
}

/** |fast - ref| <= 2e-4 + 1e-5 |ref|, the C++ core test's tolerance (float vs double accumulation). */
function withinTolerance(fast: number, ref: number): boolean {
  return Math.abs(fast - ref) <= 2e-4 + 1e-5 * Math.abs(ref);
}

/**
 * Before anything is timed: the kernel the bench times ('auto') against the scalar reference on the
 * top-left corner of the timed region (3 x 3 patches at the timed stride), through the same entry.
 */
async function checkAgainstReference(label: string, model: NativeModel, patch: number, stride: number, side: number, pixels: Uint8Array) {
  const corner = Math.min(side, patch + 2 * stride);
  const options = { width: corner, height: corner, rowStride: side * 3, patchWidth: patch, patchHeight: patch, stride, threads: 2, shareConvolution: true };
  const fast = await sweep(model, pixels, { ...options, kernel: 'auto' });
  const ref = await sweep(model, pixels, { ...options, kernel: 'reference' });
  fast.scores.forEach((v, i) => {
    if (!withinTolerance(v, ref.scores[i]!)) throw new Error(`${label} stride ${stride}: ${fast.kernel} patch ${i} scores ${v}, the scalar reference ${ref.scores[i]}: not timing a wrong kernel`);
  });
}

/**
 * Before anything is timed: the published FocusLiteNN-1/-10 and EONSS weights on the two TCGA@Focus
 * patches must reproduce PyTorch's golden scores within 1e-4 on the kernel the bench times.
 */
async function checkGolden(): Promise<string> {
  const dir = path.resolve(sharedRoot, 'reference', 'focuslitenn');
  const data = path.resolve(sharedRoot, 'data', 'tcga-focus');
  if (!existsSync(path.resolve(dir, 'golden-scores.json')) || !existsSync(data)) return `golden check skipped: ${dir} or ${data} not found`;
  const golden = JSON.parse(readFileSync(path.resolve(dir, 'golden-scores.json'), 'utf8')) as { models: Record<string, Record<string, { patch_scores: number[] }>> };
  const images = { 'tcga-in-focus': 'TCGA@Focus_patch_i_32381_j_37784.png', 'tcga-out-of-focus': 'TCGA@Focus_patch_i_9651_j_81514.png' };
  let worst = 0;
  for (const name of ['focuslitenn-1kernel', 'focuslitenn-10kernel', 'eonss']) {
    const file = parseModelFile(await convertReferenceFile(path.resolve(dir, `${name}.json`), { architecture: name === 'eonss' ? 'eonss' : 'focuslitenn' }));
    const options = await resolveScoreOptions({ model: toLoadedModel(file, name), patchSize: 235, stride: 128, kernel: 'auto' });
    for (const [key, png] of Object.entries(images)) {
      const r = await scoreRgb(await decodeImage(path.resolve(data, png)), key, options);
      const expected = golden.models[name]![key]!.patch_scores;
      r.scores.forEach((v, i) => {
        const err = Math.abs(v - expected[i]!);
        worst = Math.max(worst, err);
        if (!(err < 1e-4)) throw new Error(`golden check: ${name} on ${key} patch ${i} scores ${v}, PyTorch ${expected[i]}: not timing a wrong kernel`);
      });
    }
  }
  return `golden check passed: published FocusLiteNN-1, -10 and EONSS weights on the TCGA@Focus patches, max |error| ${worst.toExponential(1)} (limit 1e-4)`;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));

async function main() {
  const cpu = cpuInfo();
  const model = os.cpus()[0]?.model ?? 'unknown CPU';
  const peaks = new Map<number, number>();
  for (const t of threadCounts) peaks.set(t, measureFmaPeak('auto', t, 0.5));
  console.log(`fqa sweep benchmark — ${new Date().toISOString().slice(0, 10)}, ${model}, ${os.cpus().length} CPUs, kernel ${cpu.best}`);
  console.log(`measured FMA peak (${cpu.best}): ${threadCounts.map((t) => `${t} thread${t > 1 ? 's' : ''} ${peaks.get(t)!.toFixed(1)} GFLOP/s`).join(', ')}`);
  console.log(await checkGolden());
  const rows: Row[] = [];
  const notes = new Set<string>();
  for (const patch of [64, 235] as const) {
    const across = patch === 64 ? 24 : 12;
    const side = patch * across;
    const pixels = region(side);
    for (const k of [1, 10]) {
      if (!selected(`FocusLiteNN-${k}`, patch)) continue;
      const m = focusLiteModel(k, patch);
      const flops = flopsPerPatch(m, patch, patch);
      for (const stride of [patch, patch === 235 ? 115 : 32]) await checkAgainstReference(`FocusLiteNN-${k} ${patch} px`, m, patch, stride, side, pixels);
      for (const threads of threadCounts) {
        for (const stride of [patch, patch === 235 ? 115 : 32]) {
          // 235/2 is not a multiple of the conv stride 5, so the shared sweep uses 115 (~P/2).
          const r = await measure(m, patch, stride, threads, side, pixels);
          const row: Row = {
            model: `FocusLiteNN-${k}`, patch, stride, threads, kernel: r.kernel, shared: r.shared,
            patchesPerSecond: r.patchesPerSecond,
            megapixelsPerSecond: (r.patchesPerSecond * patch * patch) / 1e6,
            gflops: (r.patchesPerSecond * flops) / 1e9,
            percentOfPeak: (100 * r.patchesPerSecond * flops) / 1e9 / peaks.get(threads)!,
          };
          if (stride === patch) {
            const p = peer(focusPeerScript, ['--kernels', String(k), '--patch', String(patch), '--threads', String(threads)]);
            if (typeof p === 'string') notes.add(p);
            else { row.peerPatchesPerSecond = p.patches_per_s; row.peerMode = p.mode; }
          }
          rows.push(row);
        }
      }
    }
  }
  if (selected('EONSS', 235)) {
    const m = eonssModel();
    const side = 235 * 4;
    const pixels = region(side);
    await checkAgainstReference('EONSS', m, 235, 235, side, pixels);
    for (const threads of threadCounts) {
      const r = await measure(m, 235, 235, threads, side, pixels);
      const flops = flopsPerPatch(m, 235, 235);
      const row: Row = { model: 'EONSS', patch: 235, stride: 235, threads, kernel: r.kernel, shared: false, patchesPerSecond: r.patchesPerSecond,
        megapixelsPerSecond: (r.patchesPerSecond * 235 * 235) / 1e6, gflops: (r.patchesPerSecond * flops) / 1e9, percentOfPeak: (100 * r.patchesPerSecond * flops) / 1e9 / peaks.get(threads)! };
      const p = peer(eonssPeerScript, ['--threads', String(threads)]);
      if (typeof p === 'string') notes.add(p);
      else { row.peerPatchesPerSecond = p.patches_per_s; row.peerMode = p.mode; }
      rows.push(row);
    }
  }
  const header = ['model', 'patch', 'stride', 'thr', 'kernel', 'patches/s', 'MP/s', 'GFLOP/s', '% peak', 'peer patches/s', 'vs peer'];
  const table = rows.map((r) => [
    r.model, String(r.patch), `${r.stride}${r.shared ? ' shared' : ''}`, String(r.threads), r.kernel, fmt(r.patchesPerSecond), fmt(r.megapixelsPerSecond),
    `${r.gflops.toFixed(1)}${r.shared ? ' eff' : ''}`, `${r.percentOfPeak.toFixed(0)}%`,
    r.peerPatchesPerSecond ? `${fmt(r.peerPatchesPerSecond)} (${r.peerMode})` : '', r.peerPatchesPerSecond ? `${(r.patchesPerSecond / r.peerPatchesPerSecond).toFixed(2)}x` : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const t of table) console.log(line(t));
  for (const n of notes) console.log(n);
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), cpu: model, peaks: Object.fromEntries(peaks), rows }, null, 1));
}

await main();
