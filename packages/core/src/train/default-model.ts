/**
 * The recipe of fqa's shipped default model, one function so that `fqa-scan train-default`
 * reproduces the shipped file: FocusLiteNN with 2 kernels (235 px variant) trained by fqa's native
 * trainer with a PLCC loss on synthetic defocus series (Gaussian PSF, sigma = 0.5 px per level,
 * levels 0-9, sensor noise) cut from real in-focus H&E and IHC tissue in ../shared/data, then
 * calibrated by least squares so that its score estimates the defocus level.
 */
import { createNativeModel, trainForward } from '@fqa/native';
import path from 'node:path';
import { trainedModelFile } from './export.js';
import { syntheticDefocus, type PatchSet } from './synthetic.js';
import { plcc, srcc } from './metrics.js';
import { trainFocusLite } from './trainer.js';
import { fitLevels, foldCalibration } from './calibrate.js';

export const DEFAULT_RECIPE = {
  kernels: 2,
  variant: 235 as const,
  loss: 'plcc' as const,
  epochs: 45,
  stepSize: 30,
  gamma: 0.1,
  learningRate: 1e-2,
  batchSize: 50,
  trainSeed: 3,
  /** PyTorch's default uniform init (fqa's trainers default to the FocusLiteNN repository's). */
  init: 'uniform' as const,
  dataSeed: 7,
  count: 1500,
  levels: 10,
  sigmaPerLevel: 0.5,
  noise: 2,
  minTissue: 0.6,
  /** Working resolution of the training tissue (CMU-1-Small-Region is 0.499 µm/px). */
  micronsPerPixel: 0.5,
  /** Defocus level above which a patch is out of focus: between sigma 1.0 and 1.5 px. */
  threshold: 2.5,
  sources: [
    'slides/CMU-1-Small-Region.svs',
    'tiles/tissue-level0-4302-10273-4814-10785.png',
    'tiles/tissue-level0-7352-11762-7864-12274.png',
    'tiles/very-low-nuclei-score-level0.png',
    'tiles/medium-nuclei-score-level0.png',
    'tiles/high-nuclei-score-level0.png',
    'tiles/ihc.png',
  ],
};

export interface DefaultModelBuild {
  bytes: Buffer;
  trainPlcc: number;
  trainSrcc: number;
  seconds: number;
}

/** Runs the recipe on the data under `sharedData` (../shared/data) and returns the model file. */
export async function buildDefaultModel(sharedData: string, log: (line: string) => void = () => {}, recipe: Partial<typeof DEFAULT_RECIPE> = {}): Promise<DefaultModelBuild> {
  const R = { ...DEFAULT_RECIPE, ...recipe };
  const start = performance.now();
  const data: PatchSet = await syntheticDefocus({
    sources: R.sources.map((s) => path.join(sharedData, s)), count: R.count, patchSize: R.variant, levels: R.levels,
    sigmaPerLevel: R.sigmaPerLevel, seed: R.dataSeed, noise: R.noise, minTissue: R.minTissue,
  });
  log(`synthetic defocus: ${data.count} patches in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  const trained = await trainFocusLite(data, {
    kernels: R.kernels, variant: R.variant, loss: R.loss, epochs: R.epochs, stepSize: R.stepSize, gamma: R.gamma, learningRate: R.learningRate,
    batchSize: R.batchSize, seed: R.trainSeed, init: R.init, onEpoch: (e) => log(`epoch ${e.epoch}/${R.epochs} loss ${e.loss.toFixed(4)} lr ${e.learningRate}`),
  });
  // Calibrate: least-squares a*score + b ~ level on the training set, folded into the fc layer.
  const { a, b } = fitLevels(trained.spec, data);
  const spec = foldCalibration(trained.spec, a, b);
  const calibrated = trainForward(createNativeModel(spec), data.patches, data.count, data.size).scores;
  const bytes = trainedModelFile(spec, {
    name: 'fqa-default-focuslitenn2-synthetic-v1',
    stride: 128,
    score: {
      scale: `estimated defocus level: level L = Gaussian blur of sigma ${R.sigmaPerLevel}*L px at ${R.micronsPerPixel} um/px (0 = in focus); higher = blurrier`,
      threshold: R.threshold,
    },
    micronsPerPixel: R.micronsPerPixel,
    provenance: {
      source: 'trained by fqa (fqa-scan train-default) on synthetic defocus of real tissue from ../shared/data',
      license: 'same as fqa',
      createdBy: 'fqa native trainer',
      createdAt: 'recipe DEFAULT_RECIPE (seeded; the file is reproducible)',
      notes: `training PLCC ${plcc(calibrated, data.labels).toFixed(4)}, SRCC ${srcc(calibrated, data.labels).toFixed(4)}, calibration a=${a.toFixed(5)} b=${b.toFixed(5)}`,
    },
  });
  return { bytes, trainPlcc: plcc(calibrated, data.labels), trainSrcc: srcc(calibrated, data.labels), seconds: (performance.now() - start) / 1000 };
}
