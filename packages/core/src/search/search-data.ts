/**
 * The search's data: the training set split in two halves (upstream --train_portion 0.5), one for
 * the network weights and one for the architecture weights, each a BatchSource of 64 px patches.
 * Image datasets are split by slide and cropped at random each epoch, as training does; synthetic
 * defocus patches are made once and split by crop with a seeded shuffle.
 */
import { UsageError } from '../errors.js';
import { randomCropSource, patchSetSource, patchSetStats, splitByCrop, type BatchSource } from '../train/batches.js';
import { channelStats, loadDataset, splitDataset } from '../train/datasets.js';
import { DEFAULT_RECIPE } from '../train/default-model.js';
import { seededRandom } from '../train/random.js';
import { scannerDefocus } from '../train/scanner-defocus.js';
import { syntheticDefocus, type PatchSet } from '../train/synthetic.js';
import type { TrainDatasetSpec } from '../train/train-run.js';

export interface SearchData {
  /** Batches for the weight step. */
  train: BatchSource;
  /** Batches for the architecture step. */
  validation: BatchSource;
  /** Per-channel normalization of the training half (the paper normalizes with each dataset's statistics). */
  mean: [number, number, number];
  std: [number, number, number];
  description: string;
}

export async function searchData(spec: TrainDatasetSpec, o: { patchSize: number; trainPortion: number; seed: number; cacheBytes?: number }): Promise<SearchData> {
  if (spec.kind === 'synthetic') {
    if (spec.sources.length === 0) throw new UsageError('synthetic search data needs at least one --source slide or image');
    const all = spec.psf === 'scanner'
      // The default recipe's scanner model and levels, as fqa-scan train --psf scanner.
      ? await scannerDefocus({
        sources: spec.sources, count: Math.ceil(spec.count / DEFAULT_RECIPE.levelsPerCrop), levelsPerCrop: DEFAULT_RECIPE.levelsPerCrop, patchSize: o.patchSize,
        maxLevel: spec.levels !== undefined ? spec.levels - 1 : DEFAULT_RECIPE.maxLevel, inFocusShare: DEFAULT_RECIPE.inFocusShare, minTissue: DEFAULT_RECIPE.minTissue,
        scanner: DEFAULT_RECIPE.scanner, seed: o.seed,
      })
      : await syntheticDefocus({
        sources: spec.sources, count: spec.count, patchSize: o.patchSize, levels: spec.levels ?? 10, sigmaPerLevel: spec.sigmaPerLevel ?? 0.5, psf: spec.psf,
        seed: o.seed, noise: spec.noise ?? 2, jpegQuality: spec.jpegQuality, minTissue: 0.6,
      });
    // By crop: the levels of one crop are the same tissue and stay in one half.
    const { first: train, rest: validation } = splitByCrop(all, Math.floor(all.count * o.trainPortion), seededRandom(o.seed));
    if (train.count < 2 || validation.count < 2) throw new UsageError(`the search needs at least 2 patches in each half, but ${all.count} patches split ${train.count} / ${validation.count}`);
    return { train: patchSetSource(train), validation: patchSetSource(validation), ...patchSetStats(train), description: `${all.count} synthetic defocus patches of ${o.patchSize} px` };
  }
  const items = loadDataset(spec.kind, spec.root, spec.labels, { allowMissing: spec.allowMissing }).items;
  const parts = splitDataset(items, { train: o.trainPortion, validation: 1 - o.trainPortion, test: 0 }, o.seed);
  const stats = await channelStats(parts.train, { sample: 200, seed: o.seed });
  return {
    train: randomCropSource(parts.train, { size: o.patchSize, cacheBytes: o.cacheBytes }),
    validation: randomCropSource(parts.validation, { size: o.patchSize, cacheBytes: o.cacheBytes }),
    ...stats,
    description: `${spec.kind}: ${parts.train.length} + ${parts.validation.length} images, random ${o.patchSize} px crops`,
  };
}
