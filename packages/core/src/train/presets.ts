/**
 * The paper's training settings per dataset, as its code runs them (mahdihosseini/DARTS-FQA
 * train_model.py): PLCC loss, Adam, StepLR by 0.1, batch 8, 120 epochs; FocusLiteNN at lr 0.01 with a
 * step every 60 epochs, every other network at lr 0.001 every 40; random crops of 235 px, or 64 px for
 * the "64" copies and DeepFocus; each dataset normalized with its own published channel statistics.
 * `synthetic` and `synthetic64` are fqa's stand-ins for machines without the datasets (synthetic
 * defocus of in-focus tissue, normalized with the training split's statistics).
 */
import { UsageError } from '../errors.js';
import type { Normalization } from '../models/registry.js';
import type { DatasetKind } from './datasets.js';
import type { LossName } from './trainer.js';

export interface DatasetPreset {
  name: string;
  /** As the paper's tables write it. */
  title: string;
  kind: DatasetKind | 'synthetic';
  patchSize: 64 | 235;
  /** The published statistics, or 'dataset' (the training split's). */
  normalization: Normalization | 'dataset';
  /** The label file's name in the published layout (../shared/data/labels has them all). */
  labels: string | null;
  /** The DARTS-FQA genotype searched on this dataset (none: DARTS-FQA takes 64 px only). */
  dartsGenotype: string | null;
}

const stats = (mean: number[], std: number[]): Normalization => ({
  mean: mean.map((v) => v / 255) as [number, number, number],
  std: std.map((v) => v / 255) as [number, number, number],
});
const FOCUSPATH = stats([178.4304, 147.1354, 181.2755], [34.032, 33.6027, 27.5137]);
const BIOIMAGE = stats([150.5639, 150.5639, 150.5639], [37.7143, 37.7143, 37.7143]);
const DEEPFOCUS = stats([164.9529, 151.1183, 169.3709], [28.3038, 27.5698, 24.8911]);

const presets: DatasetPreset[] = [
  { name: 'focuspath', title: 'FocusPath', kind: 'focuspath', patchSize: 235, normalization: FOCUSPATH, labels: 'focuspath_full_metadata.csv', dartsGenotype: null },
  { name: 'focuspath64', title: 'FocusPath64', kind: 'focuspath', patchSize: 64, normalization: FOCUSPATH, labels: 'focuspath_full_metadata.csv', dartsGenotype: 'focuspath' },
  { name: 'bioimage', title: 'BioImage', kind: 'bioimage', patchSize: 235, normalization: BIOIMAGE, labels: 'bioimage_full_metadata.csv', dartsGenotype: null },
  { name: 'bioimage64', title: 'BioImage64', kind: 'bioimage', patchSize: 64, normalization: BIOIMAGE, labels: 'bioimage_full_metadata.csv', dartsGenotype: 'bioimage' },
  { name: 'deepfocus', title: 'DeepFocus', kind: 'deepfocus', patchSize: 64, normalization: DEEPFOCUS, labels: 'deepfocus_full_metadata.csv', dartsGenotype: 'deepfocus' },
  { name: 'synthetic', title: 'synthetic defocus', kind: 'synthetic', patchSize: 235, normalization: 'dataset', labels: null, dartsGenotype: null },
  { name: 'synthetic64', title: 'synthetic defocus 64', kind: 'synthetic', patchSize: 64, normalization: 'dataset', labels: null, dartsGenotype: 'focuspath' },
];

export const DATASET_PRESETS: ReadonlyMap<string, DatasetPreset> = new Map(presets.map((p) => [p.name, p]));

export function getDatasetPreset(name: unknown): DatasetPreset {
  const p = typeof name === 'string' ? DATASET_PRESETS.get(name) : undefined;
  if (!p) throw new UsageError(`Expected one of ${[...DATASET_PRESETS.keys()].join(', ')} for preset but received '${String(name)}'`);
  return p;
}

/** The paper's schedule for an architecture (train_model.py's defaults and its comment on FocusLiteNN). */
export function paperSchedule(architecture: string): { loss: LossName; epochs: number; batchSize: number; learningRate: number; stepSize: number; gamma: number } {
  const focusLite = architecture === 'focuslitenn';
  return { loss: 'plcc', epochs: 120, batchSize: 8, learningRate: focusLite ? 1e-2 : 1e-3, stepSize: focusLite ? 60 : 40, gamma: 0.1 };
}
