/**
 * The training engines side by side: patches/s of forward + backward + Adam through the graph
 * trainer at 64 px, batch 8, on synthetic defocus of real tissue (../shared/data), for each registry
 * architecture on torch (libtorch, one intra-op thread per process) in one process and in two
 * processes at once (each training its own copy, two trials at once as the experiment runs them),
 * and on tfjs (pure JS); then the hours of one FocusPath64 cell (5 trials x 120 epochs x 4,160
 * crops) at the two-process torch rate.
 *
 * Before any timing, every architecture is verified: one step from the same initial weights
 * (initialGraphWeights) on torch and on tfjs must give the same loss within 1e-4 relative, else the
 * run stops. The gradients of that step (Adam's first moment) are compared too, and printed.
 *
 *   npm run bench:train -w @fqa/bench [-- --archs densenet13,eonss:64px --patches 160 --seconds 10
 *        --tfjs-patches 16 --skip-tfjs]
 *
 * `--child SPEC` is the worker mode the parent forks (one per torch process): it makes the same
 * data, warms up, reports ready, waits for `go`, trains one epoch and sends its rate back.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  PAPER_NORMALIZATION, getArchitecture, initialGraphWeights, resolveEngine, syntheticDefocus, trainArchitecture, trainingEngines, variantConfig,
  type EngineName, type PatchSet,
} from '@fqa/core';

const { values } = parseArgs({
  options: {
    archs: { type: 'string', default: 'densenet13,resnet10,resnet50,mobilenetv2,darts-fqa:focuspath,eonss:64px' },
    patches: { type: 'string', default: '160' },
    'tfjs-patches': { type: 'string', default: '16' },
    seconds: { type: 'string', default: '10' },
    'skip-tfjs': { type: 'boolean', default: false },
    child: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});

const PATCH = 64;
const BATCH = 8;
/** Loss agreement between the engines on the verification step (relative). */
const LOSS_TOLERANCE = 1e-4;
/** Gradient agreement above which the verification prints a warning (relative L2 over all parameters). */
const GRADIENT_WARNING = 1e-3;
/** One FocusPath64 cell of Table 5: 5 trials x 120 epochs x 4,160 training crops. */
const CELL_SAMPLES = 5 * 120 * 4160;
/** The goals: DenseNet-13 on torch, per core and against tfjs. */
const GOAL_PER_CORE = 100;
const GOAL_SPEEDUP = 30;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const tile = path.resolve(repoRoot, '..', 'shared', 'data', 'tiles', 'tissue-level0-4302-10273-4814-10785.png');
const trainOptions = { epochs: 1, batchSize: BATCH, ...PAPER_NORMALIZATION };

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < BATCH) throw new Error(`Expected an integer >= ${BATCH} for --${name} but received '${value}'`);
  return n;
}

/** Synthetic defocus of the tissue tile, as the graph-trainer benchmark always made it. */
function makeData(count: number): Promise<PatchSet> {
  return syntheticDefocus({ sources: [tile], count, patchSize: PATCH, levels: 6, sigmaPerLevel: 0.8, seed: 3, noise: 2, minTissue: 0.6 });
}

function parseSpec(spec: string) {
  const [architecture, variant] = spec.split(':') as [string, string | undefined];
  const definition = getArchitecture(architecture, 'arch');
  const { variant: name, config } = variantConfig(definition, variant);
  if (!definition.patchSizes(config).includes(PATCH)) throw new Error(`${definition.name} ${name} does not take ${PATCH} px patches`);
  const label = Object.keys(definition.variants).length > 1 ? `${definition.title} (${name})` : definition.title;
  return { spec, architecture: definition.name, variant: name, graph: definition.graph(config), label };
}
type Arch = ReturnType<typeof parseSpec>;

// ---- child: one torch process ----------------------------------------------------------------

type ToParent = { type: 'ready' } | { type: 'result'; samples: number; seconds: number; cpuSeconds: number; backend: string };

/** CPU seconds this process used since `from` (user + system). */
function cpuSince(from?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
}

/** Busy CPU seconds of the whole machine so far, all cores (Linux /proc/stat; null elsewhere). */
function machineBusySeconds(): number | null {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = fields.map(Number) as number[];
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100; // USER_HZ
  } catch {
    return null;
  }
}

/** What else kept the CPU busy during a measurement: busy core-seconds not ours, per second of it. */
class Sharing {
  private readonly busy0 = machineBusySeconds();
  private readonly t0 = performance.now();
  /** Cores' worth of other work while it ran, given the CPU seconds the measurement itself used. */
  others(ownCpuSeconds: number): string {
    const busy1 = machineBusySeconds();
    if (this.busy0 === null || busy1 === null) return 'other load unknown';
    const wall = (performance.now() - this.t0) / 1000;
    return `other work used ${Math.max(0, (busy1 - this.busy0 - ownCpuSeconds) / wall).toFixed(1)} of ${os.cpus().length} cores meanwhile`;
  }
}

async function child(spec: string): Promise<void> {
  const arch = parseSpec(spec);
  const count = positive('patches', values.patches);
  const seed = Number(values.seed);
  const data = await makeData(count);
  const send = (m: ToParent) => new Promise<void>((resolve, reject) => process.send!(m, (e: Error | null) => (e ? reject(e) : resolve())));
  const go = new Promise<void>((resolve) => process.once('message', () => resolve()));
  // Warm-up (libtorch's first allocations and kernel choices), then wait for the other processes.
  await trainArchitecture({ ...data, count: BATCH }, { architecture: arch.architecture, variant: arch.variant, engine: 'torch', seed, ...trainOptions });
  await send({ type: 'ready' });
  await go;
  const cpu0 = process.cpuUsage();
  // Epochs over the same patches until at least --seconds have passed: a run of one or two seconds
  // swings by a third with the VM's speed from one moment to the next.
  const minimum = positive('seconds', values.seconds);
  let samples = 0;
  let seconds = 0;
  let backend = '';
  while (seconds < minimum) {
    const run = await trainArchitecture(data, { architecture: arch.architecture, variant: arch.variant, engine: 'torch', seed, ...trainOptions });
    samples += run.samples;
    seconds += run.seconds;
    backend = run.backend;
  }
  await send({ type: 'result', samples, seconds, cpuSeconds: cpuSince(cpu0), backend });
  process.disconnect();
}

// ---- parent ----------------------------------------------------------------------------------

interface Rate { rate: number; samples: number; backend: string; cpuSeconds: number }

/** `processes` torch processes training `arch` at once, started together after each warmed up. */
async function torchProcesses(arch: Arch, processes: number, patches: number): Promise<{ rates: Rate[]; wall: number; sharing: string }> {
  const script = fileURLToPath(import.meta.url);
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  const results: Promise<Rate>[] = [];
  for (let i = 0; i < processes; i++) {
    const c = fork(script, ['--child', arch.spec, '--patches', String(patches), '--seconds', values.seconds, '--seed', String(1 + i)], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(c);
    const exited = new Promise<never>((_, reject) => c.once('exit', (code, signal) => reject(new Error(`torch process ${i + 1} of ${processes} (${arch.spec}) exited (${signal ?? code}) before its result`))));
    exited.catch(() => {});
    const message = (type: ToParent['type']) => Promise.race([
      new Promise<ToParent>((resolve) => { const on = (m: ToParent) => { if (m.type === type) { c.off('message', on); resolve(m); } }; c.on('message', on); }),
      exited,
    ]);
    ready.push(message('ready').then(() => {}));
    results.push(message('result').then((m) => {
      if (m.type !== 'result') throw new Error('unexpected message');
      return { rate: m.samples / m.seconds, samples: m.samples, backend: m.backend, cpuSeconds: m.cpuSeconds };
    }));
  }
  let failed = true;
  try {
    await Promise.all(ready);
    const sharing = new Sharing();
    const parent0 = process.cpuUsage();
    const t0 = performance.now();
    for (const c of children) c.send('go');
    const rates = await Promise.all(results);
    // All samples over the span from 'go' to the last result (session set-up included): a lower
    // bound of the total where the processes did not finish together.
    const wall = rates.reduce((s, r) => s + r.samples, 0) / ((performance.now() - t0) / 1000);
    const others = sharing.others(rates.reduce((s, r) => s + r.cpuSeconds, 0) + cpuSince(parent0));
    failed = false;
    return { rates, wall, sharing: others };
  } finally {
    // Each child exits by itself after its result; on a failure the others are stopped.
    for (const c of children) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exit = new Promise((resolve) => c.once('exit', resolve));
      if (failed) c.kill();
      await exit;
    }
  }
}

/** One step on each engine from the same initial weights: the losses must agree. */
async function verify(arch: Arch, data: PatchSet, engines: EngineName[]) {
  const tensors = initialGraphWeights(arch.graph, Number(values.seed));
  const pixels = data.patches.subarray(0, BATCH * PATCH * PATCH * 3);
  const labels = data.labels.subarray(0, BATCH);
  const out = new Map<EngineName, { loss: number; gradients: Map<string, Float32Array>; detail: string }>();
  for (const name of engines) {
    const session = await (await resolveEngine(name)).open({
      architecture: arch.architecture, graph: arch.graph, patchSize: PATCH, tensors: new Map([...tensors].map(([k, v]) => [k, v.slice()])),
      step: 0, loss: 'plcc', ...PAPER_NORMALIZATION,
    });
    try {
      const loss = session.step(pixels, labels, BATCH, 1e-3);
      const snapshot = session.snapshot(true);
      // After the first step Adam's m is (1 - beta1) x gradient, the same scale on both engines.
      const gradients = new Map(arch.graph.tensors.filter((t) => t.kind === 'parameter').map((t) => [t.name, snapshot.get(`${t.name}#adam.m`)!]));
      out.set(name, { loss, gradients, detail: session.detail });
    } finally {
      session.dispose();
    }
  }
  return out;
}

function fmtRate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

function fmtDuration(hours: number): string {
  return hours >= 48 ? `${(hours / 24).toFixed(0)} days` : `${hours.toFixed(1)} h`;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':').slice(1).join(':').trim();
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model ?? 'unknown';
}

async function main(): Promise<void> {
  const torchPatches = positive('patches', values.patches);
  const tfjsPatches = positive('tfjs-patches', values['tfjs-patches']);
  const skipTfjs = values['skip-tfjs'];
  const archs = values.archs.split(',').filter(Boolean).map(parseSpec);
  const status = await trainingEngines();
  const torch = status.find((s) => s.name === 'torch')!;
  if (!torch.available) throw new Error(`the torch engine is not available: ${torch.reason}`);
  const tfjs = status.find((s) => s.name === 'tfjs')!;
  if (!skipTfjs && !tfjs.available) throw new Error(`the tfjs engine is not available: ${tfjs.reason} (--skip-tfjs times torch alone)`);
  // The verification needs tfjs even with --skip-tfjs: it is the reference torch is checked against.
  const engines: EngineName[] = tfjs.available ? ['torch', 'tfjs'] : ['torch'];
  const data = await makeData(Math.max(torchPatches, tfjsPatches));

  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`date ${new Date().toISOString().slice(0, 10)}; CPU ${cpuModel()} x ${os.cpus().length} (load average at start ${load()})`);
  console.log(`engines: ${status.map((s) => `${s.name}: ${s.available ? s.detail : `not available (${s.reason})`}`).join('; ')}`);
  console.log(`${PATCH} px, batch ${BATCH}, PLCC loss, Adam; torch ${torchPatches} patches per process, epochs over them for at least ${values.seconds} s after a warm-up batch, tfjs ${skipTfjs ? 'skipped' : `${tfjsPatches} patches after a warm-up batch`}`);

  console.log('\nverification (one step from the same initial weights, torch against tfjs):');
  if (engines.length < 2) {
    console.error('  tfjs is not available: nothing to verify torch against; not timing.');
    process.exit(1);
  }
  const details = new Map<string, string>();
  for (const arch of archs) {
    const v = await verify(arch, data, engines);
    const a = v.get('torch')!;
    const b = v.get('tfjs')!;
    const lossRel = Math.abs(a.loss - b.loss) / Math.max(Math.abs(b.loss), 1e-12);
    let d2 = 0;
    let n2 = 0;
    for (const [name, g] of b.gradients) {
      const h = a.gradients.get(name)!;
      for (let i = 0; i < g.length; i++) {
        d2 += (h[i]! - g[i]!) ** 2;
        n2 += g[i]! ** 2;
      }
    }
    const gradRel = Math.sqrt(d2 / Math.max(n2, 1e-30));
    details.set(arch.spec, `${a.detail}; ${b.detail}`);
    const ok = lossRel <= LOSS_TOLERANCE;
    console.log(`  ${arch.label}: loss torch ${a.loss.toFixed(6)}, tfjs ${b.loss.toFixed(6)}, relative ${lossRel.toExponential(1)} (tolerance ${LOSS_TOLERANCE.toExponential(0)}) ${ok ? 'ok' : 'MISMATCH'}; gradients relative L2 ${gradRel.toExponential(1)}${gradRel > GRADIENT_WARNING ? ` (warning: above ${GRADIENT_WARNING.toExponential(0)})` : ''}; ${a.detail}`);
    if (!ok) {
      console.error(`\n${arch.label}: the torch and tfjs engines disagree on the first step's loss (${a.loss} vs ${b.loss}, relative ${lossRel.toExponential(2)} > ${LOSS_TOLERANCE}); not timing.`);
      process.exit(1);
    }
  }

  const rows: { arch: Arch; one: number; two: Rate[]; tfjs: number | null }[] = [];
  for (const arch of archs) {
    console.log(`\ntiming ${arch.label} ...`);
    const single = await torchProcesses(arch, 1, torchPatches);
    const one = single.rates[0]!;
    console.log(`  torch, 1 process: ${fmtRate(one.rate)} patches/s (${one.backend}; ${single.sharing})`);
    const pair = await torchProcesses(arch, 2, torchPatches);
    const two = pair.rates;
    console.log(`  torch, 2 processes: ${two.map((r) => fmtRate(r.rate)).join(' + ')} = ${fmtRate(two.reduce((s, r) => s + r.rate, 0))} patches/s; ${fmtRate(pair.wall)} over the wall clock from start to the last one's end (${pair.sharing})`);
    let tfjsRate: number | null = null;
    if (!skipTfjs) {
      const o = { architecture: arch.architecture, variant: arch.variant, engine: 'tfjs' as const, ...trainOptions };
      await trainArchitecture({ ...data, count: BATCH }, o); // warm-up batch (tfjs kernels, first allocations)
      const sharing = new Sharing();
      const cpu0 = process.cpuUsage();
      const run = await trainArchitecture({ ...data, count: tfjsPatches }, o);
      tfjsRate = run.samples / run.seconds;
      console.log(`  tfjs: ${fmtRate(tfjsRate)} patches/s (${run.backend}; ${sharing.others(cpuSince(cpu0))})`);
    }
    rows.push({ arch, one: one.rate, two, tfjs: tfjsRate });
  }

  console.log(`\nload average at end ${load()} (${os.cpus().length} cores; a load above the processes this run started means the CPU was shared and the rates are lower bounds)`);
  console.log(`\n| architecture | torch 1 process patches/s | torch 2 processes patches/s (total) | tfjs patches/s | torch/tfjs | one FocusPath64 cell on torch (5 trials × 120 epochs × 4,160 crops, 2 at once) |`);
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    const total = r.two.reduce((s, x) => s + x.rate, 0);
    const twoCell = `${fmtRate(total)} (${r.two.map((x) => fmtRate(x.rate)).join(' + ')})`;
    const tfjsCell = r.tfjs === null ? '—' : fmtRate(r.tfjs);
    const ratio = r.tfjs === null ? '—' : `${(r.one / r.tfjs).toFixed(0)}×`;
    console.log(`| ${r.arch.label} | ${fmtRate(r.one)} | ${twoCell} | ${tfjsCell} | ${ratio} | ${fmtDuration(CELL_SAMPLES / total / 3600)} |`);
  }
  console.log('\nengine details:');
  for (const r of rows) console.log(`  ${r.arch.label}: ${details.get(r.arch.spec)}`);

  const dense = rows.find((r) => r.arch.architecture === 'densenet13');
  console.log('');
  if (!dense) {
    console.log('goals: DenseNet-13 not measured (add densenet13 to --archs)');
  } else {
    const perCore2 = dense.two.reduce((s, x) => s + x.rate, 0) / dense.two.length;
    console.log(`${dense.one >= GOAL_PER_CORE ? 'PASS' : 'FAIL'}: DenseNet-13 on torch ${fmtRate(dense.one)} patches/s per core (1 process, 1 thread; ${fmtRate(perCore2)} per process with 2 at once), goal >= ${GOAL_PER_CORE}`);
    if (dense.tfjs === null) console.log(`not measured: DenseNet-13 torch/tfjs (--skip-tfjs), goal >= ${GOAL_SPEEDUP}x`);
    else console.log(`${dense.one / dense.tfjs >= GOAL_SPEEDUP ? 'PASS' : 'FAIL'}: DenseNet-13 torch/tfjs ${(dense.one / dense.tfjs).toFixed(0)}x (1 process each), goal >= ${GOAL_SPEEDUP}x`);
  }
}

if (values.child !== undefined) await child(values.child);
else await main();
