/**
 * One training experiment as the paper runs it: load a dataset (or make synthetic defocus data),
 * split it by slide with a seed, normalize with the training split's statistics, train with the
 * native or the tfjs trainer, evaluate the test split with dense crops, repeat for several trials
 * (fresh split and init each), and write everything a person needs into one folder:
 *   model.fqa (model-trialN.fqa for several trials), history.tsv, test-scores.tsv, result.json
 *   (metrics per trial and mean ± std), scatter.svg, and roc.svg / pr.svg for binary labels.
 * Each finished trial is also kept as trial-N.json, and the graph trainer (every architecture but
 * FocusLiteNN and the 235 px EONSS of the dedicated trainers) checkpoints every epoch, so `resume`
 * continues an interrupted run: finished trials are read back, an unfinished one continues from
 * its last epoch.
 */
import { createNativeModel, trainForward, version as nativeVersion, type FocusLiteNNSpec } from '@fqa/native';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeAtomic } from '../atomic-write.js';
import { UsageError } from '../errors.js';
import { createScorer } from '../models/backends/scorer.js';
import { getArchitecture, variantConfig, type ArchitectureDefinition, type Normalization, type TrainerName } from '../models/index.js';
import { FOCUSLITENN_VARIANTS, parseModelFile, toLoadedModel, type LoadedModel } from '../model-file.js';
import { expectInteger, expectOneOf } from '../validate.js';
import { patchSetStats, randomCropSource, splitByCrop, type BatchSource } from './batches.js';
import { channelStats, loadDataset, splitDataset, type DatasetKind, type DatasetItem } from './datasets.js';
import { torchEngine } from './engines/torch-engine.js';
import { evaluateModel } from './evaluate.js';
import { fitLevels, foldCalibration } from './calibrate.js';
import { DEFAULT_RECIPE, inFocusThreshold } from './default-model.js';
import { architectureModelFile, trainedModelFile } from './export.js';
import { trainArchitecture } from './graph-trainer.js';
import { averagePrecision, bestThresholdAccuracy, krcc, plcc, prAucTrapezoid, rmse, rocAuc, srcc } from './metrics.js';
import { prSvg, rocSvg, scatterSvg } from './plots.js';
import { getDatasetPreset, paperSchedule } from './presets.js';
import { seededRandom } from './random.js';
import { scannerDefocus } from './scanner-defocus.js';
import { syntheticDefocus, type PatchSet } from './synthetic.js';
import { trainTfjs } from './tfjs-trainer.js';
import { trainFocusLite, type EpochRecord, type TrainOptions, type TrainResult } from './trainer.js';

/** The normalization of the published code (TCGA@Focus channel statistics, x/255 scale). */
export const PAPER_NORMALIZATION = {
  mean: [168.3571 / 255, 125.3874 / 255, 158.8208 / 255] as [number, number, number],
  std: [46.684 / 255, 52.881 / 255, 42.0803 / 255] as [number, number, number],
};

export type TrainDatasetSpec =
  | { kind: DatasetKind; root: string; labels: string; allowMissing?: boolean }
  | { kind: 'synthetic'; sources: string[]; count: number; levels?: number; sigmaPerLevel?: number; psf?: 'gaussian' | 'disk' | 'scanner'; noise?: number; jpegQuality?: number };

export type TrainProgress =
  | { phase: 'prepare'; message: string }
  | { phase: 'decode'; trial: number; done: number; total: number }
  | { phase: 'batch'; trial: number; epoch: number; epochs: number; done: number; total: number }
  | { phase: 'epoch'; trial: number; epoch: number; epochs: number; loss: number; seconds: number }
  | { phase: 'evaluate'; trial: number; done: number; total: number };

/** The trainers' own options (schedule, loss, init, seed, threads) plus the experiment around them. */
export interface TrainRunOptions extends Pick<TrainOptions, 'loss' | 'epochs' | 'batchSize' | 'learningRate' | 'stepSize' | 'gamma' | 'seed' | 'init' | 'threads'> {
  dataset: TrainDatasetSpec;
  outDir: string;
  /** The paper's settings for a dataset (DATASET_PRESETS) as defaults for every option not given. */
  preset?: string;
  /** Any registered architecture (`fqa-scan models`). */
  architecture?: string;
  /** Its variant (DARTS-FQA: the genotype; EONSS: bioimage, focuspath or 64px); FocusLiteNN takes `kernels`. */
  variant?: string;
  kernels?: number;
  patchSize?: 235 | 64;
  /** auto (default): native for FocusLiteNN, torch for the others where its addon is built, else tfjs. */
  trainer?: 'auto' | 'native' | 'torch' | 'tfjs';
  /** cpu (default) or cuda: the torch engine on a CUDA libtorch. */
  device?: 'cpu' | 'cuda';
  trials?: number;
  split?: { train: number; validation: number; test: number };
  /** Training split statistics, the published TCGA statistics, none, or given values (a preset's). */
  normalization?: 'dataset' | 'paper' | 'none' | Normalization;
  /** Continue a run in `outDir`: finished trials are kept, an unfinished one resumes from its checkpoint. */
  resume?: boolean;
  /** Stops the graph trainer after its current epoch (the checkpoint is written first). */
  signal?: AbortSignal;
  /** Evaluation crop stride (default: 128 for 235 px, 32 for 64 px, as the paper). */
  evalStride?: number;
  cacheBytes?: number;
  /**
   * Synthetic data: the calibrated model's threshold in levels (default: sigma 1.25 px, 2.5 levels at
   * 0.5 px per level; --psf scanner: the default recipe's rule, inFocusThreshold on the training patches).
   */
  thresholdLevel?: number;
  /** µm/px the model works at (the training tissue's resolution), written into the model file. */
  micronsPerPixel?: number;
  onProgress?: (p: TrainProgress) => void;
}

/**
 * The default recipe's threshold rule for a model trained on the scanner model: the smallest half
 * level with at most DEFAULT_RECIPE.inFocusFalsePositives of the in-focus training patches above it.
 */
function scannerThreshold(spec: FocusLiteNNSpec, data: PatchSet): number {
  if (!data.labels.includes(0)) throw new UsageError(`none of the ${data.count} training patches is in focus, so the threshold rule has nothing to go on: raise --count or give --threshold-level`);
  const scores = trainForward(createNativeModel(spec), data.patches, data.count, data.size).scores;
  return inFocusThreshold(scores, data.labels, DEFAULT_RECIPE.inFocusFalsePositives);
}

export interface MetricSummary {
  mean: number;
  /** Sample standard deviation over the trials (null for one trial). */
  std: number | null;
  n: number;
}

export interface TrialResult {
  trial: number;
  seed: number;
  model: string;
  trainImages: number;
  testImages: number;
  seconds: number;
  samples: number;
  samplesPerSecond: number;
  finalLoss: number;
  metrics: Record<string, number | null>;
}

export interface TrainRunResult {
  outDir: string;
  trainer: string;
  trials: TrialResult[];
  summary: Record<string, MetricSummary>;
  files: string[];
}

function testMetrics(scores: number[], targets: number[]): Record<string, number | null> {
  const safe = (f: () => number) => {
    try {
      return f();
    } catch {
      return null;
    }
  };
  const m: Record<string, number | null> = { plcc: safe(() => plcc(scores, targets)), srcc: safe(() => srcc(scores, targets)), krcc: safe(() => krcc(scores, targets)), rmse: safe(() => rmse(scores, targets)) };
  if (targets.every((t) => t === 0 || t === 1)) {
    const positives = targets.map((t) => t === 1);
    m.rocAuc = safe(() => rocAuc(scores, positives));
    m.prAucTrapezoid = safe(() => prAucTrapezoid(scores, positives));
    m.averagePrecision = safe(() => averagePrecision(scores, positives));
    m.bestAccuracy = safe(() => bestThresholdAccuracy(scores, positives).accuracy);
  }
  return m;
}

/** Mean and sample standard deviation of each metric over the trials (null values skipped). */
export function summarizeTrials(metrics: Record<string, number | null>[]): Record<string, MetricSummary> {
  const out: Record<string, MetricSummary> = {};
  const names = [...new Set(metrics.flatMap((m) => Object.keys(m)))];
  for (const name of names) {
    const v = metrics.map((m) => m[name]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    if (v.length === 0) continue;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : null;
    out[name] = { mean, std, n: v.length };
  }
  return out;
}

/** What trial-N.json keeps of a finished trial, for --resume. */
interface FinishedTrial {
  run: Record<string, unknown>;
  backend: string;
  result: TrialResult;
  history: string[];
  testRows: string[];
  series: { name: string; scores: number[]; targets: number[] };
}

function checkNormalization(n: Normalization): Normalization {
  const ok = (v: unknown, positive: boolean) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  if (!ok(n.mean, false) || !ok(n.std, true)) throw new UsageError(`Expected three means and three positive standard deviations for normalization but received ${JSON.stringify(n)}`);
  return n;
}

/**
 * A preset's settings for every option left unset: the paper's patch size, normalization and
 * schedule for the dataset and architecture, and the DARTS-FQA genotype or EONSS definition it used.
 */
export function applyPreset(o: TrainRunOptions): TrainRunOptions {
  if (o.preset === undefined) return o;
  const p = getDatasetPreset(o.preset);
  if (o.dataset.kind !== p.kind) throw new UsageError(`preset ${p.name} trains on ${p.kind} data, not ${o.dataset.kind}`);
  const architecture = getArchitecture(o.architecture ?? 'focuslitenn', 'arch').name;
  const s = paperSchedule(architecture);
  const variant = architecture === 'darts-fqa' ? (p.dartsGenotype ?? undefined)
    : architecture === 'eonss' ? (p.patchSize === 64 ? '64px' : p.kind === 'focuspath' ? 'focuspath' : 'bioimage')
      : undefined;
  return {
    ...o, patchSize: o.patchSize ?? p.patchSize, normalization: o.normalization ?? p.normalization, variant: o.variant ?? variant,
    loss: o.loss ?? s.loss, epochs: o.epochs ?? s.epochs, batchSize: o.batchSize ?? s.batchSize, learningRate: o.learningRate ?? s.learningRate,
    stepSize: o.stepSize ?? s.stepSize, gamma: o.gamma ?? s.gamma,
  };
}

/**
 * The trainer that runs: a named one if the architecture has it (and, for torch, its addon is
 * built), else a UsageError saying which would; auto takes the architecture's first that can run.
 */
async function resolveTrainer(definition: ArchitectureDefinition, asked: 'auto' | TrainerName): Promise<TrainerName> {
  const torch = definition.trainers.includes('torch') ? await torchEngine.status() : undefined;
  if (asked === 'auto') return definition.trainers.find((t) => t !== 'torch' || torch?.available)!;
  if (!definition.trainers.includes(asked)) throw new UsageError(`the ${asked} trainer does not train ${definition.name}: use --trainer ${definition.trainers.join(' or ')} (the native trainer trains FocusLiteNN)`);
  if (asked === 'torch' && torch && !torch.available) throw new UsageError(`the torch trainer is not available: ${torch.reason}`);
  return asked;
}

export async function runTraining(given: TrainRunOptions): Promise<TrainRunResult> {
  const o = applyPreset(given);
  const definition = getArchitecture(o.architecture ?? 'focuslitenn', 'arch');
  const architecture = definition.name;
  const askedTrainer = expectOneOf(o.trainer ?? 'auto', 'trainer', ['auto', 'native', 'torch', 'tfjs'] as const);
  const patchSize = o.patchSize ?? (architecture === 'darts-fqa' ? 64 : 235);
  if (patchSize !== 235 && patchSize !== 64) throw new UsageError(`Expected 235 or 64 for patch but received ${String(patchSize)}`);
  const kernels = expectInteger(o.kernels ?? 1, 'kernels', 1, 256);
  // FocusLiteNN (native or tfjs) and, on tfjs, EONSS's 235 px FocusLiteNN definition keep their
  // dedicated trainers; every other architecture and variant trains from its registry graph.
  const eonssVariant = o.variant ?? (patchSize === 64 ? '64px' : 'bioimage');
  // EONSS's 235 px bioimage definition has its own (tfjs) trainer and schedule: auto keeps it there
  // whether or not libtorch is installed, so what a run trains never depends on the machine.
  const dedicatedEonss = architecture === 'eonss' && eonssVariant === 'bioimage' && patchSize === 235;
  const trainer = dedicatedEonss && askedTrainer === 'auto' ? 'tfjs' : await resolveTrainer(definition, askedTrainer);
  const onGraph = architecture !== 'focuslitenn' && !(trainer === 'tfjs' && dedicatedEonss);
  const variant = onGraph ? variantConfig(definition, architecture === 'eonss' ? eonssVariant : o.variant).variant : undefined;
  if (onGraph) {
    const sizes = definition.patchSizes(variantConfig(definition, variant).config);
    if (!sizes.includes(patchSize)) throw new UsageError(`${architecture} ${variant} takes ${sizes.join(' or ')} px patches, not ${patchSize} (--patch)`);
  } else if (o.variant !== undefined && architecture === 'focuslitenn') {
    throw new UsageError('FocusLiteNN takes --kernels and --patch, not --variant');
  }
  const trials = expectInteger(o.trials ?? 1, 'trials', 1, 100);
  const seed = expectInteger(o.seed ?? 1, 'seed', 0, 2 ** 31);
  const normalization = typeof o.normalization === 'object' ? checkNormalization(o.normalization) : expectOneOf(o.normalization ?? 'dataset', 'normalization', ['dataset', 'paper', 'none'] as const);
  const split = o.split ?? { train: 0.8, validation: 0, test: 0.2 };
  const evalStride = o.evalStride ?? FOCUSLITENN_VARIANTS[patchSize].stride;
  const progress = o.onProgress ?? (() => {});
  await mkdir(o.outDir, { recursive: true });

  // The data: image datasets by file, synthetic patches in memory (generated once, split per trial).
  let items: DatasetItem[] | undefined;
  let synthetic: PatchSet | undefined;
  const ds = o.dataset;
  if (ds.kind === 'synthetic') {
    if (ds.sources.length === 0) throw new UsageError('synthetic training needs at least one --source slide or image');
    progress({ phase: 'prepare', message: `making ${ds.count} synthetic defocus patches of ${patchSize} px` });
    synthetic = ds.psf === 'scanner'
      // The default model's scanner model and levels (DEFAULT_RECIPE): continuous defocus-disk radii
      // 0..levels-1 px (default 0..maxLevel), levelsPerCrop per crop, the same in-focus share and tissue.
      ? await scannerDefocus({
        sources: ds.sources, count: Math.ceil(ds.count / DEFAULT_RECIPE.levelsPerCrop), levelsPerCrop: DEFAULT_RECIPE.levelsPerCrop, patchSize,
        maxLevel: ds.levels !== undefined ? ds.levels - 1 : DEFAULT_RECIPE.maxLevel, inFocusShare: DEFAULT_RECIPE.inFocusShare, minTissue: DEFAULT_RECIPE.minTissue,
        scanner: DEFAULT_RECIPE.scanner, seed,
      })
      : await syntheticDefocus({
        sources: ds.sources, count: ds.count, patchSize, levels: ds.levels ?? 10, sigmaPerLevel: ds.sigmaPerLevel ?? 0.5, psf: ds.psf, seed,
        noise: ds.noise ?? 2, jpegQuality: ds.jpegQuality, minTissue: 0.6,
      });
  } else {
    items = loadDataset(ds.kind, ds.root, ds.labels, { allowMissing: ds.allowMissing }).items;
    progress({ phase: 'prepare', message: `${ds.kind}: ${items.length} labelled images` });
  }

  const history: string[] = ['trial\tepoch\tloss\tlearning_rate\tseconds'];
  const testRows: string[] = ['trial\tfile\ttarget\tscore'];
  const results: TrialResult[] = [];
  const plotSeries: { name: string; scores: number[]; targets: number[] }[] = [];
  let backend = trainer === 'native' ? `native (${nativeVersion})` : '';
  const files: string[] = [];
  for (let trial = 1; trial <= trials; trial++) {
    const trialSeed = seed + trial - 1;
    // Split, normalization and the training batches of this trial.
    let source: BatchSource | PatchSet;
    let trainCount: number;
    let mean: [number, number, number] = [0, 0, 0];
    let std: [number, number, number] = [1, 1, 1];
    let testItems: DatasetItem[] = [];
    let testPatches: PatchSet | undefined;
    if (synthetic) {
      // Split by crop: the levels of one crop are the same tissue and stay on one side.
      const parts = splitByCrop(synthetic, Math.max(2, Math.round(synthetic.count * split.test)), seededRandom(trialSeed));
      testPatches = parts.first;
      source = parts.rest;
      trainCount = source.count;
      if (normalization === 'dataset') ({ mean, std } = patchSetStats(source));
    } else {
      const parts = splitDataset(items!, split, trialSeed);
      testItems = parts.test;
      trainCount = parts.train.length;
      if (normalization === 'dataset') {
        progress({ phase: 'prepare', message: `trial ${trial}: channel statistics of ${Math.min(200, parts.train.length)} training images` });
        ({ mean, std } = await channelStats(parts.train, { sample: 200, seed: trialSeed }));
      }
      source = randomCropSource(parts.train, { size: patchSize, cacheBytes: o.cacheBytes, onDecode: (done, total) => progress({ phase: 'decode', trial, done, total }) });
    }
    // What the trainers fit: the source, or for the scanner model the recipe's level^labelPower.
    const target: BatchSource | PatchSet = ds.kind === 'synthetic' && ds.psf === 'scanner' ? { ...(source as PatchSet), labels: (source as PatchSet).labels.map((l) => l ** DEFAULT_RECIPE.labelPower) } : source;
    if (normalization === 'paper') ({ mean, std } = PAPER_NORMALIZATION);
    else if (typeof normalization === 'object') ({ mean, std } = normalization);

    const epochs = o.epochs ?? 120;
    let currentEpoch = 1;
    // The FocusLiteNN repository's schedule for FocusLiteNN; the paper's (DARTS-FQA train_model.py) for the others.
    const common = {
      kernels, variant: patchSize, loss: o.loss ?? 'plcc', epochs, batchSize: o.batchSize ?? (onGraph ? 8 : 50), learningRate: o.learningRate ?? (onGraph ? 1e-3 : 1e-2),
      stepSize: o.stepSize ?? (onGraph ? 40 : 60), gamma: o.gamma ?? 0.1, seed: trialSeed, init: o.init, mean, std,
      onBatch: (done: number, total: number) => progress({ phase: 'batch', trial, epoch: currentEpoch, epochs, done, total }),
      onEpoch: (e: EpochRecord) => {
        progress({ phase: 'epoch', trial, epoch: e.epoch, epochs, loss: e.loss, seconds: e.seconds });
        currentEpoch = e.epoch + 1;
      },
    };
    const datasetName = ds.kind === 'synthetic' ? 'synthetic defocus' : ds.kind;
    const modelName = trials === 1 ? 'model.fqa' : `model-trial${trial}.fqa`;
    const trialFile = path.join(o.outDir, `trial-${trial}.json`);
    // The graph trainer's engine is not part of the run: a trial finished on one engine is kept on the other.
    const run = { architecture, variant: variant ?? null, kernels, patchSize, trainer: onGraph ? 'graph' : trainer, dataset: ds, split, normalization, seed: trialSeed, loss: common.loss, epochs, batchSize: common.batchSize, learningRate: common.learningRate, stepSize: common.stepSize, gamma: common.gamma, init: o.init ?? null, evalStride };
    if (o.resume && existsSync(trialFile)) {
      const done = JSON.parse(await readFile(trialFile, 'utf8')) as FinishedTrial;
      if (JSON.stringify(done.run) !== JSON.stringify(run)) throw new UsageError(`${trialFile}: a trial of a different run (other options); use the same options with --resume, or another --out`);
      progress({ phase: 'prepare', message: `trial ${trial}: finished before (${trialFile})` });
      history.push(...done.history);
      testRows.push(...done.testRows);
      plotSeries.push(done.series);
      results.push(done.result);
      files.push(modelName);
      backend = done.backend;
      continue;
    }
    let spec: TrainResult['spec'] | Awaited<ReturnType<typeof trainTfjs>>['spec'] | undefined;
    let trained: Omit<TrainResult, 'spec'>;
    let graphTrained: Awaited<ReturnType<typeof trainArchitecture>> | undefined;
    if (onGraph) {
      graphTrained = await trainArchitecture(target, {
        ...common, architecture, variant, checkpoint: path.join(o.outDir, `checkpoint-trial${trial}.bin`), resume: o.resume, signal: o.signal,
        engine: trainer === 'torch' ? 'torch' : 'tfjs', device: o.device,
      });
      backend = graphTrained.backend;
      trained = graphTrained;
    } else if (trainer === 'native') {
      const t = await trainFocusLite(target, { ...common, threads: o.threads });
      spec = t.spec;
      trained = t;
    } else {
      const t = await trainTfjs(target, { ...common, architecture: architecture as 'focuslitenn' | 'eonss' });
      backend = t.backend;
      spec = t.spec;
      trained = t;
    }
    const trialHistory = trained.history.map((e) => `${trial}\t${e.epoch}\t${e.loss}\t${e.learningRate}\t${e.seconds.toFixed(3)}`);
    history.push(...trialHistory);

    // Synthetic levels are a physical scale: calibrate FocusLiteNN's score onto them (least squares on
    // the training patches) so the model's threshold means "this much blur". A positive factor folds
    // into the weights exactly (min(a * x) = a * min(x) for a > 0); a negative one is left alone.
    let score: { scale: string; threshold: number | null } = { scale: `higher = blurrier; trained on ${datasetName} targets with a ${common.loss} loss (not calibrated)`, threshold: null };
    let calibration = '';
    if (synthetic && ds.kind === 'synthetic' && spec?.architecture === 'focuslitenn') {
      const fit = fitLevels(spec, source as PatchSet);
      if (fit.a > 0) {
        spec = foldCalibration(spec, fit.a, fit.b);
        const sigma = ds.sigmaPerLevel ?? 0.5;
        const psf = ds.psf ?? 'gaussian';
        score = psf === 'scanner'
          ? { scale: 'estimated defocus level: level L = defocus blur disk of radius L px (0 = in focus); higher = blurrier', threshold: o.thresholdLevel ?? scannerThreshold(spec, source as PatchSet) }
          : {
            scale: `estimated defocus level: level L = ${psf === 'disk' ? `disk PSF of radius ${2 * sigma}*L px` : `Gaussian blur of sigma ${sigma}*L px`} (0 = in focus); higher = blurrier`,
            threshold: o.thresholdLevel ?? Math.round((1.25 / sigma) * 2) / 2,
          };
        calibration = `, calibrated onto the levels: a=${fit.a.toFixed(5)} b=${fit.b.toFixed(5)}`;
        if (psf === 'scanner') {
          calibration += `, trained on level^${DEFAULT_RECIPE.labelPower}`;
          if (o.thresholdLevel === undefined) calibration += `, threshold: at most ${100 * DEFAULT_RECIPE.inFocusFalsePositives} % of the in-focus training patches above it`;
        }
      } else {
        calibration = ', not calibrated (the fit onto the levels had a negative slope)';
      }
    }
    const info = {
      name: `${architecture}${architecture === 'focuslitenn' ? `-${kernels}kernel` : variant && variant !== architecture ? `-${variant}` : ''}-${patchSize}-${ds.kind}-trial${trial}`,
      stride: evalStride,
      score,
      micronsPerPixel: o.micronsPerPixel ?? null,
      provenance: {
        source: `trained by fqa (${onGraph ? 'graph' : trainer} trainer, ${backend}) on ${datasetName}, seed ${trialSeed}`,
        license: 'follows the training data licence',
        createdBy: 'fqa-scan train',
        createdAt: new Date().toISOString(),
        notes: `${epochs} epochs, batch ${common.batchSize}, ${common.loss} loss, Adam lr ${common.learningRate}, StepLR ${common.stepSize}/${common.gamma}, normalization ${typeof normalization === 'object' ? 'given' : normalization}${calibration}`,
      },
    };
    const bytes = graphTrained ? architectureModelFile(graphTrained, info) : trainedModelFile(spec!, info);
    await writeAtomic(path.join(o.outDir, modelName), bytes);
    files.push(modelName);
    const parsed = parseModelFile(bytes, modelName);
    const loaded: LoadedModel = toLoadedModel(parsed, path.join(o.outDir, modelName));

    // Test split: dense crops per image (the paper), or each synthetic patch whole.
    const scores: number[] = [];
    const targets: number[] = [];
    const trialTestRows: string[] = [];
    if (testPatches) {
      const scorer = await createScorer(loaded, { threads: 1 });
      try {
        const out = await scorer.score(testPatches.patches, testPatches.count, patchSize);
        for (let i = 0; i < testPatches.count; i++) {
          scores.push(out[i]!);
          targets.push(testPatches.labels[i]!);
          trialTestRows.push(`${trial}\tsynthetic:${i}\t${testPatches.labels[i]}\t${out[i]}`);
        }
      } finally {
        await scorer.dispose();
      }
    } else {
      const evaluation = await evaluateModel(testItems, { model: loaded, patchSize, stride: evalStride, onProgress: (done, total) => progress({ phase: 'evaluate', trial, done, total }) });
      for (const s of evaluation.scores) {
        scores.push(s.score);
        targets.push(s.target);
        trialTestRows.push(`${trial}\t${s.file}\t${s.target}\t${s.score}`);
      }
    }
    testRows.push(...trialTestRows);
    const series = { name: `trial ${trial}`, scores, targets };
    plotSeries.push(series);
    const result: TrialResult = {
      trial, seed: trialSeed, model: modelName, trainImages: trainCount, testImages: scores.length, seconds: trained.seconds, samples: trained.samples,
      samplesPerSecond: trained.samples / trained.seconds, finalLoss: trained.history.at(-1)!.loss, metrics: testMetrics(scores, targets),
    };
    results.push(result);
    const finished: FinishedTrial = { run, backend, result, history: trialHistory, testRows: trialTestRows, series };
    await writeAtomic(trialFile, JSON.stringify(finished) + '\n');
  }

  const summary = summarizeTrials(results.map((r) => r.metrics));
  const write = async (name: string, text: string) => {
    await writeAtomic(path.join(o.outDir, name), text);
    files.push(name);
  };
  await write('history.tsv', history.join('\n') + '\n');
  await write('test-scores.tsv', testRows.join('\n') + '\n');
  await write('scatter.svg', scatterSvg(plotSeries[0]!.targets, plotSeries[0]!.scores, `Test split, trial 1: score vs label`));
  if (plotSeries[0]!.targets.every((t) => t === 0 || t === 1) && new Set(plotSeries[0]!.targets).size === 2) {
    const series = plotSeries.map((s) => ({ name: s.name, scores: s.scores, positives: s.targets.map((t) => t === 1) }));
    await write('roc.svg', rocSvg(series));
    await write('pr.svg', prSvg(series));
  }
  const { onProgress: _omit, signal: _signal, ...options } = o;
  await write('result.json', JSON.stringify({ fqaVersion: nativeVersion, trainer: backend, options, trials: results, summary }, null, 1) + '\n');
  return { outDir: o.outDir, trainer: backend, trials: results, summary, files };
}
