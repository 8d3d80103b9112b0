/**
 * `--dataset` and its companions (`--root --labels` for the published datasets, `--source --count
 * --levels --psf` for synthetic defocus) as one TrainDatasetSpec: the parsing `train` and `search` share.
 */
import { UsageError, expectOneOf, parseIntegerOption, type TrainDatasetSpec } from '@fqa/core';

export const DATASET_KINDS = ['focuspath', 'bioimage', 'deepfocus', 'tcga', 'csv', 'synthetic'] as const;

export interface DatasetOptionValues {
  source?: string[];
  count?: string;
  levels?: string;
  psf?: string;
  root?: string;
  labels?: string;
  'allow-missing'?: boolean;
}

/**
 * The dataset of `kind`; extra positionals are more `--source` files (a shell glob), allowed only for
 * synthetic data. `count` bounds the synthetic patch count (its minimum and default).
 */
export function datasetFromOptions(
  command: string,
  kind: (typeof DATASET_KINDS)[number],
  values: DatasetOptionValues,
  positionals: string[],
  count: { min: number; default: number },
): TrainDatasetSpec {
  if (positionals.length > 0 && kind !== 'synthetic') throw new UsageError(`unexpected argument '${positionals[0]}' (see fqa-scan ${command} --help)`);
  if (kind === 'synthetic') {
    const sources = [...(values.source ?? []), ...positionals];
    if (sources.length === 0) throw new UsageError('--dataset synthetic needs at least one --source slide or image');
    return {
      kind, sources, count: parseIntegerOption(values.count, 'count', count.min, 1_000_000) ?? count.default,
      levels: parseIntegerOption(values.levels, 'levels', 2, 100),
      psf: values.psf === undefined ? undefined : expectOneOf(values.psf, 'psf', ['gaussian', 'disk', 'scanner'] as const),
    };
  }
  if (!values.root || !values.labels) throw new UsageError(`--dataset ${kind} needs --root and --labels`);
  return { kind, root: values.root, labels: values.labels, allowMissing: values['allow-missing'] };
}
