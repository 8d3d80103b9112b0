/**
 * Tables 3 and 4 of the paper for all ten CNNs, measured here beside the printed numbers:
 * parameters, FLOPs at 64 px (2 x conv/linear MACs, from the registry's graphs), latency per patch at
 * 64/128/235/300 px on each backend available (native for FocusLiteNN/EONSS, ONNX Runtime, tfjs),
 * and the hours 300 WSIs of 25k x 25k take at that latency (non-overlapping patches), with the
 * paper's GTX 1650 Ti figures. Seeded random weights (timings do not depend on them).
 *
 *   npm run bench:models -w @fqa/bench [-- --sizes 64,128,235,300 --backends native,onnx,tfjs
 *        --batch 8 --seconds 1 --max-patch-seconds 2 --threads 0 --device cpu|cuda --out DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BACKEND_NAMES, architectures, backendAvailable, createScorer, fitsSize, flops, parameterCount, parseModelFile, randomModelFile, toLoadedModel,
  type ArchitectureDefinition, type BackendName, type LoadedModel, type PaperRow,
} from '@fqa/core';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '64,128,235,300' }, backends: { type: 'string', default: BACKEND_NAMES.join(',') },
    batch: { type: 'string', default: '8' }, seconds: { type: 'string', default: '1' }, 'max-patch-seconds': { type: 'string', default: '2' },
    threads: { type: 'string', default: '0' }, out: { type: 'string' }, device: { type: 'string', default: 'cpu' },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const PAPER_SIZES = [64, 128, 235, 300];
const backends = values.backends.split(',').filter((b): b is BackendName => (BACKEND_NAMES as readonly string[]).includes(b) && backendAvailable(b as BackendName));
const batch = Number(values.batch);
const minSeconds = Number(values.seconds);
const maxPatchSeconds = Number(values['max-patch-seconds']);
const threads = Number(values.threads);
if (values.device !== 'cpu' && values.device !== 'cuda') throw new Error(`Expected cpu or cuda for device but received '${values.device}'`);
/** --device cuda: the native rows run the sweep's GPU kernel. */
const kernel = values.device === 'cuda' ? ('cuda' as const) : undefined;
/** A 25,000 x 25,000 WSI, 300 of them, in non-overlapping patches (the paper's Table 4). */
const hoursFor = (size: number, msPerPatch: number) => (300 * Math.floor(25_000 / size) ** 2 * msPerPatch) / 3.6e6;

interface Cell { backend: BackendName; size: number; variant: string; msPerPatch: number | null; note?: string }

/** The row's own variant, or (EONSS: one definition per patch size) another variant that ends on one score at this size. */
function variantFor(d: ArchitectureDefinition<unknown>, row: PaperRow, size: number): string | null {
  for (const v of [row.variant, ...Object.keys(d.variants)]) if (fitsSize(d.graph(d.variants[v]), size)) return v;
  return null;
}

async function timePatches(model: LoadedModel, backend: BackendName, size: number): Promise<{ ms: number; tooSlow: boolean }> {
  const scorer = await createScorer(model, { backend, threads, ...(backend === 'native' && kernel ? { kernel } : {}) });
  try {
    const one = new Uint8Array(size * size * 3).map((_, i) => (i * 2654435761) >>> 24);
    let t = performance.now();
    await scorer.score(one, 1, size); // warm-up (session and kernel setup)
    t = performance.now();
    await scorer.score(one, 1, size);
    const single = (performance.now() - t) / 1000;
    if (single > maxPatchSeconds) return { ms: single * 1000, tooSlow: true };
    const pixels = new Uint8Array(batch * size * size * 3);
    for (let i = 0; i < batch; i++) pixels.set(one, i * one.length);
    let patches = 0;
    const start = performance.now();
    while (performance.now() - start < minSeconds * 1000 || patches < 2 * batch) {
      await scorer.score(pixels, batch, size);
      patches += batch;
    }
    return { ms: (performance.now() - start) / patches, tooSlow: false };
  } finally {
    await scorer.dispose();
  }
}

const rows: { label: string; architecture: string; variant: string; params: number; flops64: number; paper: PaperRow; cells: Cell[] }[] = [];
for (const d of architectures()) {
  for (const paper of d.paper) {
    const graph = d.graph(d.variants[paper.variant]);
    const row = { label: paper.label, architecture: d.name, variant: paper.variant, params: parameterCount(graph), flops64: flops(graph, 64), paper, cells: [] as Cell[] };
    const models = new Map<string, LoadedModel>();
    for (const backend of backends) {
      let slow = false;
      for (const size of SIZES) {
        const variant = variantFor(d, paper, size);
        if (variant === null) {
          row.cells.push({ backend, size, variant: paper.variant, msPerPatch: null, note: 'no definition ends on one score at this size' });
          continue;
        }
        if (!models.has(variant)) models.set(variant, toLoadedModel(parseModelFile(randomModelFile(d.name, variant, 1), `${d.name}-${variant}`), `${d.name}-${variant}`));
        const model = models.get(variant)!;
        if (!model.backends.includes(backend)) continue;
        if (slow) {
          row.cells.push({ backend, size, variant, msPerPatch: null, note: `skipped: a smaller patch took over ${maxPatchSeconds} s` });
          continue;
        }
        let timed: { ms: number; tooSlow: boolean };
        try {
          timed = await timePatches(model, backend, size);
        } catch (err) {
          // A backend that cannot run this size (the native EONSS kernel takes its own patch size only).
          row.cells.push({ backend, size, variant, msPerPatch: null, note: (err as Error).message });
          continue;
        }
        const { ms, tooSlow } = timed;
        slow = tooSlow;
        row.cells.push({ backend, size, variant, msPerPatch: ms, ...(tooSlow ? { note: 'single patch (over the time cap)' } : {}) });
        process.stderr.write(`${paper.label} ${backend} ${size}px${variant !== paper.variant ? ` (${variant})` : ''}: ${ms.toFixed(3)} ms/patch\n`);
      }
    }
    rows.push(row);
  }
}

// As the paper prints them: 0.11M, 23.5M, 35.1K, 0.15K.
const fmtCount = (n: number) => (n >= 1e5 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(2)}K`);
const fmtMs = (ms: number | null | undefined) => (ms === null || ms === undefined ? '—' : ms < 10 ? ms.toFixed(2) : ms.toFixed(0));
const fmtHours = (h: number | null) => (h === null ? '—' : h < 10 ? h.toFixed(2) : h.toFixed(1));
const best = (row: (typeof rows)[number], size: number) => {
  const cells = row.cells.filter((c) => c.size === size && c.msPerPatch !== null && !c.note);
  return cells.length === 0 ? null : cells.reduce((a, b) => (a.msPerPatch! <= b.msPerPatch! ? a : b));
};

const cpu = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} threads`;
const lines: string[] = [];
lines.push(`Table 3 (ours: ${cpu}${kernel ? ', native rows on the GPU' : ''}; backends ${backends.join(', ')}; batch ${batch}; paper: GTX 1650 Ti)`);
lines.push('');
lines.push(`| model | params (paper) | MFLOPs@64 (paper) | ${backends.map((b) => `${b} ms/patch@64`).join(' | ')} | paper GPU ms@64 |`);
lines.push(`|---|---|---|${backends.map(() => '---|').join('')}---|`);
for (const r of rows) {
  const at64 = backends.map((b) => fmtMs(r.cells.find((c) => c.backend === b && c.size === 64)?.msPerPatch));
  lines.push(`| ${r.label} | ${fmtCount(r.params)} (${fmtCount(r.paper.params)}) | ${(r.flops64 / 1e6).toFixed(2)} (${r.paper.flops / 1e6}) | ${at64.join(' | ')} | ${r.paper.latencyMs} |`);
}
lines.push('');
lines.push('Table 4: hours per 300 WSIs of 25k x 25k (ours: fastest backend here; paper: GTX 1650 Ti)');
lines.push('');
lines.push(`| model | ${SIZES.map((s) => `${s} px ours (paper)`).join(' | ')} | fastest backend |`);
lines.push(`|---|${SIZES.map(() => '---|').join('')}---|`);
for (const r of rows) {
  const cells = SIZES.map((s) => {
    const b = best(r, s);
    const i = PAPER_SIZES.indexOf(s);
    const paper = i >= 0 ? ` (${r.paper.hours[i]})` : '';
    return `${fmtHours(b ? hoursFor(s, b.msPerPatch!) : null)}${paper}`;
  });
  const fastest = [...new Set(SIZES.map((s) => best(r, s)?.backend).filter(Boolean))].join('/');
  lines.push(`| ${r.label} | ${cells.join(' | ')} | ${fastest || '—'} |`);
}
console.log(lines.join('\n'));

if (values.out) {
  mkdirSync(values.out, { recursive: true });
  const result = { machine: cpu, backends, batch, sizes: SIZES, rows: rows.map((r) => ({ ...r, cells: r.cells.map((c) => ({ ...c, hoursPer300Wsi: c.msPerPatch === null ? null : hoursFor(c.size, c.msPerPatch) })) })) };
  writeFileSync(path.join(values.out, 'models-bench.json'), JSON.stringify(result, null, 1) + '\n');
  const tsv = ['model\tarchitecture\tvariant\tparams\tparams_paper\tflops64\tflops64_paper\tbackend\tpatch\tms_per_patch\thours_300_wsi\thours_paper\tnote'];
  for (const r of rows)
    for (const c of r.cells) {
      const i = PAPER_SIZES.indexOf(c.size);
      tsv.push([r.label, r.architecture, c.variant, r.params, r.paper.params, r.flops64, r.paper.flops, c.backend, c.size, c.msPerPatch ?? '', c.msPerPatch === null ? '' : hoursFor(c.size, c.msPerPatch), i >= 0 ? r.paper.hours[i] : '', c.note ?? ''].join('\t'));
    }
  writeFileSync(path.join(values.out, 'models-bench.tsv'), tsv.join('\n') + '\n');
  console.error(`wrote ${path.join(values.out, 'models-bench.json')} and models-bench.tsv`);
}
