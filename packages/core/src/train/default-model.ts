/**
 * The recipe of fqa's shipped default model, one function so that `fqa-scan train-default`
 * reproduces the shipped file: FocusLiteNN with 2 kernels (235 px variant) trained by fqa's native
 * trainer with a PLCC loss on synthetic defocus series (Gaussian PSF, sigma = 0.5 px per level,
 * levels 0-9, sensor noise) cut from real in-focus H&E and IHC tissue in ../shared/data, then
 * calibrated by least squares so that its score estimates the defocus level.
 */
import { createNativeModel, trainForward } from '@fqa/native';
import path from 'node:path';
import { encodeModelFile, type ModelHeader } from '../model-file.js';
import { syntheticDefocus, type PatchSet } from './synthetic.js';
import { plcc, srcc } from './metrics.js';
import { trainFocusLite } from './trainer.js';

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
  const scores = trainForward(createNativeModel(trained.spec), data.patches, data.count, data.size).scores;
  const n = scores.length;
  const ms = scores.reduce((x, y) => x + y, 0) / n;
  const ml = data.labels.reduce((x, y) => x + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (scores[i]! - ms) * (data.labels[i]! - ml); sxx += (scores[i]! - ms) ** 2; }
  const a = sxy / sxx;
  const b = ml - a * ms;
  const spec = trained.spec;
  const fcWeight = Float32Array.from(spec.fcWeight!, (w) => a * w);
  const fcBias = a * spec.fcBias! + b;
  const calibrated = trainForward(createNativeModel({ ...spec, fcWeight, fcBias }), data.patches, data.count, data.size).scores;
  const header: Omit<ModelHeader, 'tensors' | 'weightsByteLength' | 'weightsSha256'> = {
    architecture: 'focuslitenn',
    name: 'fqa-default-focuslitenn2-synthetic-v1',
    patchSize: R.variant,
    stride: 128,
    focuslitenn: { kernels: R.kernels, convKernel: spec.convKernel, convStride: spec.convStride, convPad: spec.convPad },
    normalization: { mean: [0, 0, 0], std: [1, 1, 1] },
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
  };
  const bytes = encodeModelFile(header, [
    { name: 'conv.weight', shape: [R.kernels, 3, spec.convKernel, spec.convKernel], data: spec.convWeight },
    { name: 'conv.bias', shape: [R.kernels], data: spec.convBias },
    { name: 'fc.weight', shape: [1, R.kernels, 1, 1], data: fcWeight },
    { name: 'fc.bias', shape: [1], data: Float32Array.of(fcBias) },
  ]);
  return { bytes, trainPlcc: plcc(calibrated, data.labels), trainSrcc: srcc(calibrated, data.labels), seconds: (performance.now() - start) / 1000 };
}
