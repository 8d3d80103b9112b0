/**
 * The recipe of fqa's shipped default model, one function so that `fqa-scan train-default`
 * reproduces the shipped file: FocusLiteNN with 10 kernels (235 px variant) trained by fqa's native
 * trainer with a PLCC loss on scanner-like synthetic defocus (scanner-defocus.ts: stain variation in
 * optical density, a defocused-aperture PSF in linear light, sensor noise, colour and JPEG steps) of
 * every in-focus tissue source in ../shared/data, then calibrated by least squares so that its score
 * estimates the defocus level (the radius in px of the defocus disk at 0.5 um/px).
 *
 * Validation data (../shared/data/zstacks, the TCGA@Focus pair, BBBC006) are never training sources.
 */
import { createNativeModel, trainForward } from '@fqa/native';
import path from 'node:path';
import { trainedModelFile } from './export.js';
import { DEFAULT_SCANNER, scannerDefocus } from './scanner-defocus.js';
import type { PatchSet } from './synthetic.js';
import { plcc, srcc } from './metrics.js';
import { trainFocusLite } from './trainer.js';
import { fitLevels, foldCalibration } from './calibrate.js';

/** In-focus tissue tiles of ../shared/data/tiles (H&E and IHC at several magnifications; no pen, no blank). */
const TISSUE_TILES = [
  'high-nuclei-score-level0', 'high-nuclei-score-level2', 'ihc', 'low-nuclei-score-level0', 'low-nuclei-score-level1',
  'medium-nuclei-score-level0', 'medium-nuclei-score-level1', 'medium-nuclei-score-level1-2', 'medium-nuclei-score-level2',
  'tissue-level0-4302-10273-4814-10785', 'tissue-level0-7352-11762-7864-12274', 'tissue-level2-1784-6289-5880-10386',
  'tissue-level2-3000-7666-7096-11763', 'tissue-level2-4640-4649-8736-8746', 'tissue-level2-4760-5241-8856-9338',
  'very-low-nuclei-score-level0',
];

export const DEFAULT_RECIPE = {
  name: 'fqa-default-focuslitenn10-scanner-v2',
  kernels: 10,
  variant: 235 as const,
  loss: 'plcc' as const,
  epochs: 60,
  stepSize: 42,
  gamma: 0.1,
  learningRate: 1e-2,
  batchSize: 50,
  trainSeed: 3,
  /** The FocusLiteNN repository's init (PyTorch's uniform one settles anti-correlated for some seeds). */
  init: 'focuslitenn' as const,
  dataSeed: 1,
  /** Tissue crops; each is rendered at levelsPerCrop defocus levels. */
  crops: 2000,
  levelsPerCrop: 2,
  /** Levels are defocus-disk radii in px at micronsPerPixel, continuous in 0..maxLevel. */
  maxLevel: 16,
  inFocusShare: 0.2,
  /** Trained on level^labelPower (finer ranking near focus), calibrated back onto the level. */
  labelPower: 0.5,
  minTissue: 0.3,
  /** Working resolution (CMU-1-Small-Region is 0.499 um/px). */
  micronsPerPixel: 0.5,
  /**
   * The threshold is set where at most this share of the in-focus (level 0) training patches score
   * above it, rounded up to half a level: the same 5 % as the slide rule, so an in-focus slide like the
   * training tissue passes.
   */
  inFocusFalsePositives: 0.05,
  scanner: DEFAULT_SCANNER,
  sources: ['slides/CMU-1-Small-Region.svs', ...TISSUE_TILES.map((t) => `tiles/${t}.png`)],
};

export interface DefaultModelBuild {
  bytes: Buffer;
  /** The threshold written into the model (see DEFAULT_RECIPE.inFocusFalsePositives). */
  threshold: number;
  trainPlcc: number;
  trainSrcc: number;
  seconds: number;
}

export type DefaultRecipe = typeof DEFAULT_RECIPE;

/** Stage 1 of the recipe: the training patches (the slow part; deterministic for a recipe). */
export async function makeDefaultTrainingSet(sharedData: string, recipe: Partial<DefaultRecipe> = {}): Promise<PatchSet> {
  const R = { ...DEFAULT_RECIPE, ...recipe };
  return scannerDefocus({
    sources: R.sources.map((s) => path.join(sharedData, s)), count: R.crops, levelsPerCrop: R.levelsPerCrop, patchSize: R.variant,
    maxLevel: R.maxLevel, inFocusShare: R.inFocusShare, seed: R.dataSeed, minTissue: R.minTissue, scanner: R.scanner,
  });
}

/** Runs the recipe on the data under `sharedData` (../shared/data) and returns the model file. */
export async function buildDefaultModel(sharedData: string, log: (line: string) => void = () => {}, recipe: Partial<DefaultRecipe> = {}): Promise<DefaultModelBuild> {
  const start = performance.now();
  const data = await makeDefaultTrainingSet(sharedData, recipe);
  log(`scanner-like synthetic defocus: ${data.count} patches in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  const build = await trainDefaultModel(data, log, recipe);
  return { ...build, seconds: (performance.now() - start) / 1000 };
}

/** Stage 2: train on the patches, calibrate onto the level, write the model file. */
export async function trainDefaultModel(data: PatchSet, log: (line: string) => void = () => {}, recipe: Partial<DefaultRecipe> = {}): Promise<DefaultModelBuild> {
  const R = { ...DEFAULT_RECIPE, ...recipe };
  const start = performance.now();
  const target = { ...data, labels: data.labels.map((l) => l ** R.labelPower) };
  const trained = await trainFocusLite(target, {
    kernels: R.kernels, variant: R.variant, loss: R.loss, epochs: R.epochs, stepSize: R.stepSize, gamma: R.gamma, learningRate: R.learningRate,
    batchSize: R.batchSize, seed: R.trainSeed, init: R.init, onEpoch: (e) => log(`epoch ${e.epoch}/${R.epochs} loss ${e.loss.toFixed(4)} lr ${e.learningRate}`),
  });
  // Calibrate: least-squares a*score + b ~ level on the training set, folded into the fc layer.
  const { a, b } = fitLevels(trained.spec, data);
  const spec = foldCalibration(trained.spec, a, b);
  const calibrated = trainForward(createNativeModel(spec), data.patches, data.count, data.size).scores;
  const threshold = inFocusThreshold(calibrated, data.labels, R.inFocusFalsePositives);
  log(`threshold ${threshold}: ${(100 * R.inFocusFalsePositives).toFixed(0)} % of in-focus training patches above it at most`);
  const bytes = trainedModelFile(spec, {
    name: R.name,
    stride: 128,
    score: {
      scale: `estimated defocus level: level L = defocus blur disk of radius L px at ${R.micronsPerPixel} um/px (0 = in focus); higher = blurrier`,
      threshold,
    },
    micronsPerPixel: R.micronsPerPixel,
    provenance: {
      source: 'trained by fqa (fqa-scan train-default) on scanner-like synthetic defocus of real in-focus tissue from ../shared/data',
      license: 'same as fqa',
      createdBy: 'fqa native trainer',
      createdAt: 'recipe DEFAULT_RECIPE (seeded; the file is reproducible)',
      notes: `training PLCC ${plcc(calibrated, data.labels).toFixed(4)}, SRCC ${srcc(calibrated, data.labels).toFixed(4)}, calibration a=${a.toFixed(5)} b=${b.toFixed(5)}`,
    },
  });
  return { bytes, threshold, trainPlcc: plcc(calibrated, data.labels), trainSrcc: srcc(calibrated, data.labels), seconds: (performance.now() - start) / 1000 };
}

/** The smallest multiple of 0.5 with at most `share` of the level-0 scores above it. */
export function inFocusThreshold(scores: Float32Array, levels: Float32Array, share: number): number {
  const inFocus = Float32Array.from(scores.filter((_, i) => levels[i] === 0)).sort();
  if (inFocus.length === 0) throw new RangeError('no in-focus patches to set the threshold on');
  const quantile = inFocus[Math.min(inFocus.length - 1, Math.ceil((1 - share) * inFocus.length) - 1)]!;
  return Math.ceil(quantile * 2) / 2;
}
