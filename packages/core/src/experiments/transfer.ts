/**
 * The paper's transfer experiment (Table 5, Figure 7) as one run: every network is trained on every
 * training dataset with that dataset's preset (`trials` times, seeds recorded), each trial's model
 * is evaluated on TCGA@Focus with dense crops as the paper's test code takes them (64 px at stride 32,
 * TCGA's own normalization; image score = mean of its crops), and the ROC-AUC and
 * PR-AUC are summarized as mean ± sample standard deviation per cell. Written to `outDir`:
 *   cells/<dataset>/<network>/   the training run (train/) and cell.json (per-trial AUCs and TCGA scores)
 *   table5.tsv, table5.md        every cell beside the paper's value
 *   figure7-<dataset>-roc.svg, figure7-<dataset>-pr.svg   best two and worst two networks by mean ROC-AUC
 * A finished cell (cell.json of the same settings) is read back, never retrained, so an interrupted
 * run continues where it stopped and a finished one rewrites the same tables byte for byte.
 * With `jobs` > 1 the cells train at once in child processes (transfer-cell-process.ts), one per
 * core, each with one training thread and its share of the image cache: processes side by side beat
 * threads inside one on a busy machine. A cell that fails stops the run: no new cell starts, the
 * running ones are ended (their trials resume next time), and the error is the cell's own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism, totalmem } from 'node:os';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeAtomic } from '../atomic-write.js';
import { InputError, UsageError } from '../errors.js';
import { loadDataset, type DatasetItem } from '../train/datasets.js';
import { evaluateModel } from '../train/evaluate.js';
import { averagePrecision, prAucTrapezoid, rocAuc } from '../train/metrics.js';
import { prSvg, rocSvg } from '../train/plots.js';
import { getDatasetPreset, type DatasetPreset } from '../train/presets.js';
import { PAPER_NORMALIZATION, runTraining, summarizeTrials, type MetricSummary, type TrainDatasetSpec, type TrainRunOptions } from '../train/train-run.js';
import { readModelFile, toLoadedModel } from '../model-file.js';
import { fitsSize } from '../models/graph.js';
import { expectInteger } from '../validate.js';
import { getTransferNetwork, paperCell, type PaperCell, type TransferNetwork } from './table5.js';

/** The paper's TCGA@Focus test crops. */
const TCGA_CROP = { patchSize: 64, stride: 32 };

export interface TransferDataset {
  /** A dataset preset name (focuspath, focuspath64, bioimage, bioimage64, deepfocus, synthetic, synthetic64). */
  preset: string;
  /** Where its images are (its kind must be the preset's). */
  data: TrainDatasetSpec;
}

export interface TransferOptions {
  datasets: TransferDataset[];
  /** Network names (TABLE5_NETWORKS). */
  networks: string[];
  /** Default 5, as the paper. */
  trials?: number;
  /** TCGA@Focus in its published layout (or a copy of part of it: allowMissing). */
  tcga: { root: string; labels: string; allowMissing?: boolean };
  outDir: string;
  seed?: number;
  /** Changes to the presets' training settings (fewer epochs for small runs), applied to every cell. */
  training?: Pick<TrainRunOptions, 'epochs' | 'batchSize' | 'learningRate' | 'stepSize' | 'gamma' | 'split' | 'cacheBytes' | 'threads' | 'trainer'>;
  /** Epochs per network name (over `training.epochs` and the presets' 120), e.g. { resnet10: 6 }. */
  epochsByNetwork?: Record<string, number>;
  /** Cells trained at once, each in its own process (default: the machine's cores; 1 = in this process). */
  jobs?: number;
  onProgress?: (message: string) => void;
}

export interface CellTrial {
  trial: number;
  seed: number;
  model: string;
  rocAuc: number;
  prAuc: number;
  averagePrecision: number;
  /** TCGA image scores in label-file order (for the curves). */
  scores: number[];
}

/** How a cell's networks were trained, for the table (what "trained until" means in each cell). */
export interface CellTraining {
  epochs: number;
  /** Training patches (synthetic) or images (a dataset) per trial. */
  trainItems: number;
  /** Held-out split of the training dataset: SRCC per trial (null where undefined). */
  heldOutSrcc: (number | null)[];
  /** The engine that trained the cell, e.g. 'torch: libtorch 1.13.0 (cpu, 1 thread)'. */
  trainer: string;
  trainSeconds: number;
}

export interface TransferCell {
  dataset: string;
  network: string;
  training?: CellTraining;
  /** The settings the cell was trained with; a cell of other settings is retrained. */
  run: Record<string, unknown>;
  trials: CellTrial[];
  roc: MetricSummary;
  pr: MetricSummary;
  /** TCGA labels (1 = out of focus), in label-file order. */
  targets: number[];
  seconds: number;
}

export interface TransferResult {
  cells: TransferCell[];
  /** Cells trained by this run (the others were read back). */
  trained: string[];
  files: string[];
}

/** "93.35 ± 0.25" from fractions: percent, two decimals; a single trial has no spread ("93.35"). */
export function formatPercent(s: { mean: number; std: number | null } | null): string {
  if (!s) return '—';
  return s.std === null ? (100 * s.mean).toFixed(2) : `${(100 * s.mean).toFixed(2)} ± ${(100 * s.std).toFixed(2)}`;
}

const formatPaper = (v: [number, number] | undefined) => (v ? `${v[0].toFixed(2)} ± ${v[1].toFixed(2)}` : '—');

/** DARTS-FQA takes 64 px only: no cell on the 235 px datasets, as in the paper. */
function applies(network: TransferNetwork, preset: DatasetPreset): boolean {
  return network.architecture !== 'darts-fqa' || preset.patchSize === 64;
}

export async function runTransferExperiment(o: TransferOptions): Promise<TransferResult> {
  const trials = expectInteger(o.trials ?? 5, 'trials', 1, 100);
  const seed = expectInteger(o.seed ?? 1, 'seed', 0, 2 ** 31);
  if (o.datasets.length === 0) throw new UsageError('the transfer experiment needs at least one training dataset (--datasets)');
  if (o.networks.length === 0) throw new UsageError('the transfer experiment needs at least one network (--archs)');
  const datasets = o.datasets.map((d) => {
    const preset = getDatasetPreset(d.preset);
    if (d.data.kind !== preset.kind) throw new UsageError(`dataset ${preset.name} needs ${preset.kind} data, not ${d.data.kind}`);
    return { ...d, preset };
  });
  const networks = [...new Set(o.networks)].map(getTransferNetwork);
  const progress = o.onProgress ?? (() => {});
  const tcga = loadDataset('tcga', o.tcga.root, o.tcga.labels, { allowMissing: o.tcga.allowMissing }).items;
  const targets = tcga.map((i) => i.target);
  if (!targets.includes(0) || !targets.includes(1)) throw new UsageError(`${o.tcga.labels}: the TCGA@Focus images found hold only one class; ROC and PR need in- and out-of-focus images`);
  await mkdir(o.outDir, { recursive: true });

  const jobs = expectInteger(o.jobs ?? availableParallelism(), 'jobs', 1, 256);
  const epochsByNetwork = o.epochsByNetwork ?? {};
  for (const [name, epochs] of Object.entries(epochsByNetwork)) {
    getTransferNetwork(name);
    expectInteger(epochs, `epochs of ${name}`, 1, 100000);
  }
  // Every cell in table order; finished ones are read back, the others trained (at most `jobs` at once).
  const cells = new Map<string, TransferCell>();
  const order: string[] = [];
  const pending: CellTask[] = [];
  for (const d of datasets) {
    for (const network of networks) {
      if (!applies(network, d.preset)) continue;
      const id = `${d.preset.name}/${network.name}`;
      order.push(id);
      const dir = path.join(o.outDir, 'cells', d.preset.name, network.name);
      // What decides a cell's numbers (threads and the image cache do not; the trainer does, and is
      // recorded in the cell's training record, but a finished cell is not retrained for it).
      const { threads: _threads, cacheBytes: _cache, trainer: _trainer, ...common } = o.training ?? {};
      const training = epochsByNetwork[network.name] === undefined ? common : { ...common, epochs: epochsByNetwork[network.name] };
      const run = { network: network.name, preset: d.preset.name, data: d.data, trials, seed, training, tcga: tcga.map((i) => [path.relative(o.tcga.root, i.file), i.target]) };
      const cellFile = path.join(dir, 'cell.json');
      if (existsSync(cellFile)) {
        const cell = JSON.parse(await readFile(cellFile, 'utf8')) as TransferCell;
        if (JSON.stringify(cell.run) === JSON.stringify(run)) {
          progress(`${id}: finished before (${cellFile})`);
          cells.set(id, cell);
          continue;
        }
        progress(`${id}: settings changed since ${cellFile}; training again`);
      }
      pending.push({
        id, dir, run, dataset: d.preset.name, network: network.name, trials, seed, tcga: o.tcga,
        training: {
          ...o.training, ...training, dataset: d.data, preset: d.preset.name, architecture: network.architecture, kernels: network.kernels,
          // --trainer picks the deep networks' engine; FocusLiteNN keeps its native trainer.
          trainer: network.architecture === 'focuslitenn' ? undefined : o.training?.trainer,
          ...(jobs > 1 ? { threads: o.training?.threads ?? 1, cacheBytes: Math.floor((o.training?.cacheBytes ?? totalmem() / 2) / jobs) } : {}),
        },
      });
    }
  }
  const trained: string[] = [];
  const children = new Set<ChildProcess>();
  let failure: unknown;
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(jobs, pending.length) }, async () => {
    while (next < pending.length && failure === undefined) {
      const task = pending[next++]!;
      try {
        const cell = jobs === 1 ? await trainTransferCell(task, progress) : await cellInChildProcess(task, progress, children);
        cells.set(task.id, cell);
        trained.push(task.id);
      } catch (err) {
        failure ??= err;
        for (const child of children) child.kill('SIGTERM');
      }
    }
  }));
  if (failure !== undefined) throw failure;
  const ordered = order.map((id) => cells.get(id)!);
  const files = await writeTables(o.outDir, ordered, datasets.map((d) => d.preset), networks);
  return { cells: ordered, trained: order.filter((id) => trained.includes(id)), files };
}

/** One cell to train: everything a child process needs, as plain data. */
export interface CellTask {
  id: string;
  dir: string;
  run: TransferCell['run'];
  dataset: string;
  network: string;
  trials: number;
  seed: number;
  tcga: TransferOptions['tcga'];
  training: Omit<TrainRunOptions, 'outDir' | 'trials' | 'seed' | 'resume' | 'onProgress' | 'signal'>;
}

/** Trains a cell's trials (resumable), scores each model on TCGA@Focus and writes cell.json. */
export async function trainTransferCell(task: CellTask, progress: (message: string) => void): Promise<TransferCell> {
  const tcga = loadDataset('tcga', task.tcga.root, task.tcga.labels, { allowMissing: task.tcga.allowMissing }).items;
  const targets = tcga.map((i) => i.target);
  progress(`${task.id}: training ${task.trials} trial(s)`);
  const start = performance.now();
  const result = await runTraining({
    ...task.training, trials: task.trials, seed: task.seed, outDir: path.join(task.dir, 'train'), resume: true,
    onProgress: (p) => {
      if (p.phase === 'epoch') progress(`${task.id}: trial ${p.trial} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)}`);
    },
  });
  const cellTrials: CellTrial[] = [];
  for (const t of result.trials) {
    progress(`${task.id}: trial ${t.trial} on TCGA@Focus (${tcga.length} images, dense crops)`);
    const scores = await scoreTcga(path.join(task.dir, 'train', t.model), tcga);
    const positives = targets.map((v) => v === 1);
    cellTrials.push({ trial: t.trial, seed: t.seed, model: path.join('train', t.model), rocAuc: rocAuc(scores, positives), prAuc: prAucTrapezoid(scores, positives), averagePrecision: averagePrecision(scores, positives), scores });
  }
  const summary = summarizeTrials(cellTrials.map((t) => ({ roc: t.rocAuc, pr: t.prAuc })));
  const training: CellTraining = {
    epochs: task.training.epochs ?? 120, trainItems: result.trials[0]!.trainImages, heldOutSrcc: result.trials.map((t) => t.metrics.srcc ?? null),
    trainer: result.trainer, trainSeconds: result.trials.reduce((s, t) => s + t.seconds, 0),
  };
  const cell: TransferCell = { dataset: task.dataset, network: task.network, training, run: task.run, trials: cellTrials, roc: summary.roc!, pr: summary.pr!, targets, seconds: (performance.now() - start) / 1000 };
  await writeAtomic(path.join(task.dir, 'cell.json'), JSON.stringify(cell, null, 1) + '\n');
  return cell;
}

/** What a cell's process sends back: progress lines, then its cell or its error (class and exit code kept). */
export type CellMessage = { progress: string } | { cell: TransferCell } | { error: { name: string; message: string; exitCode?: number } };

/** trainTransferCell in a child process (its progress lines come back over IPC; its error is this one's). */
function cellInChildProcess(task: CellTask, progress: (message: string) => void, children: Set<ChildProcess>): Promise<TransferCell> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL('./transfer-cell-process.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let settled = false;
    child.on('message', (m: CellMessage) => {
      if ('progress' in m) progress(m.progress);
      else if ('cell' in m) {
        settled = true;
        resolve(m.cell);
      } else {
        settled = true;
        const Class = m.error.name === 'UsageError' ? UsageError : m.error.name === 'InputError' ? InputError : Error;
        reject(Object.assign(new Class(`${task.id}: ${m.error.message}`), m.error.exitCode === undefined ? {} : { exitCode: m.error.exitCode }));
      }
    });
    child.on('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
    child.on('exit', (code, signal) => {
      if (!settled) reject(new Error(`${task.id}: the cell's process ended (${signal ?? `exit ${code}`}) before it finished; run again to resume`));
      settled = true;
    });
    child.send(task);
  });
}

/**
 * TCGA@Focus scores as the paper's test code (DARTS-FQA test_model.py, testing_set 'tcga') takes them
 * for every network: 64 px crops at stride 32, normalized with TCGA@Focus's own statistics (not the
 * training set's), image score = mean of its crops. A network whose graph cannot take 64 px (EONSS's
 * 235 px definitions) keeps its own patch and stride.
 */
async function scoreTcga(file: string, items: DatasetItem[]): Promise<number[]> {
  const m = await readModelFile(file);
  const model = toLoadedModel({ ...m, header: { ...m.header, normalization: PAPER_NORMALIZATION } }, file);
  const crops = fitsSize(model.graph, TCGA_CROP.patchSize) ? TCGA_CROP : { patchSize: m.header.patchSize, stride: m.header.stride };
  const evaluation = await evaluateModel(items, { model, ...crops });
  return evaluation.scores.map((s) => s.score);
}

async function writeTables(outDir: string, cells: TransferCell[], datasets: DatasetPreset[], networks: TransferNetwork[]): Promise<string[]> {
  const files: string[] = [];
  const write = async (name: string, text: string) => {
    await writeAtomic(path.join(outDir, name), text);
    files.push(name);
  };
  const find = (dataset: string, network: string) => cells.find((c) => c.dataset === dataset && c.network === network);
  const fixed = (v: number | null | undefined) => (v === null || v === undefined ? '' : (100 * v).toFixed(2));
  const tsv = ['dataset\tnetwork\ttrials\troc_auc_mean\troc_auc_std\tpr_auc_mean\tpr_auc_std\tpaper_roc_mean\tpaper_roc_std\tpaper_pr_mean\tpaper_pr_std\tseeds\tepochs\ttrain_items\theldout_srcc_mean\ttrainer'];
  const meanSrcc = (c: TransferCell) => {
    const v = (c.training?.heldOutSrcc ?? []).filter((x): x is number => x !== null);
    return v.length === 0 ? '' : (v.reduce((a, b) => a + b, 0) / v.length).toFixed(3);
  };
  for (const d of datasets) {
    for (const n of networks) {
      const c = find(d.name, n.name);
      if (!c) continue;
      const p: PaperCell | null = paperCell(n.name, d.name);
      tsv.push([d.name, n.name, c.trials.length, fixed(c.roc.mean), fixed(c.roc.std), fixed(c.pr.mean), fixed(c.pr.std), p?.roc[0] ?? '', p?.roc[1] ?? '', p?.pr[0] ?? '', p?.pr[1] ?? '', c.trials.map((t) => t.seed).join(','),
        c.training?.epochs ?? '', c.training?.trainItems ?? '', meanSrcc(c), c.training?.trainer ?? ''].join('\t'));
    }
  }
  await write('table5.tsv', tsv.join('\n') + '\n');

  const md = [
    '# Transfer to TCGA@Focus (Table 5)',
    '',
    'ROC-AUC and PR-AUC in %, mean ± standard deviation over the trials, each cell beside the paper\'s (in parentheses).',
    '',
    `| Network | ${datasets.map((d) => `${d.title} ROC | ${d.title} PR`).join(' | ')} |`,
    `|---|${datasets.map(() => '---|---').join('|')}|`,
  ];
  for (const n of networks) {
    const cols = datasets.flatMap((d) => {
      const c = find(d.name, n.name);
      const p = paperCell(n.name, d.name);
      const paper = (v: [number, number] | undefined) => (p ? ` (${formatPaper(v)})` : '');
      return c ? [`${formatPercent(c.roc)}${paper(p?.roc)}`, `${formatPercent(c.pr)}${paper(p?.pr)}`] : ['—', '—'];
    });
    md.push(`| ${n.label} | ${cols.join(' | ')} |`);
  }
  const how = cells.filter((c) => c.training);
  if (how.length > 0) {
    md.push('', 'How each cell was trained (held-out SRCC: the training dataset\'s own test split, mean over the trials):', '',
      '| Dataset | Network | Epochs | Training items | Held-out SRCC | Training time (s, all trials) | Trainer |', '|---|---|---|---|---|---|---|');
    for (const c of how) {
      const label = networks.find((n) => n.name === c.network)?.label ?? c.network;
      md.push(`| ${datasets.find((d) => d.name === c.dataset)?.title ?? c.dataset} | ${label} | ${c.training!.epochs} | ${c.training!.trainItems} | ${meanSrcc(c)} | ${c.training!.trainSeconds.toFixed(0)} | ${c.training!.trainer} |`);
    }
  }
  await write('table5.md', md.join('\n') + '\n');

  // Figure 7: per dataset, the two best and the two worst networks by mean ROC-AUC (trial 1's curves).
  for (const d of datasets) {
    const ranked = cells.filter((c) => c.dataset === d.name).sort((a, b) => b.roc.mean - a.roc.mean || a.network.localeCompare(b.network));
    if (ranked.length === 0) continue;
    const chosen = ranked.length <= 4 ? ranked : [...ranked.slice(0, 2), ...ranked.slice(-2)];
    const label = (c: TransferCell) => networks.find((n) => n.name === c.network)!.label;
    const series = chosen.map((c) => ({ name: label(c), scores: c.trials[0]!.scores, positives: c.targets.map((t) => t === 1) }));
    await write(`figure7-${d.name}-roc.svg`, rocSvg(series, `Trained on ${d.title}, tested on TCGA@Focus: ROC`));
    await write(`figure7-${d.name}-pr.svg`, prSvg(series, `Trained on ${d.title}, tested on TCGA@Focus: precision-recall`));
  }
  return files;
}
