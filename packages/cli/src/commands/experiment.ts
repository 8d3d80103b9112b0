/** fqa-scan experiment transfer: the paper's Table 5 and Figure 7 in one resumable run. */
import { parseArgs } from 'node:util';
import { DATASET_PRESETS, TABLE5_NETWORKS, UsageError, expectOneOf, formatPercent, getDatasetPreset, parseIntegerOption, parseNumberOption, runTransferExperiment, type TrainDatasetSpec, type TransferDataset } from '@fqa/core';
import type { Command } from '../index.js';
import { ProgressLine } from '../progress-bar.js';

const usage = `Usage: fqa-scan experiment transfer --datasets D,... --archs A,... --tcga-root DIR --tcga-labels FILE --out DIR [options]

The paper's transfer experiment: trains every network (--archs) on every training dataset
(--datasets) with that dataset's preset (fqa-scan train --preset), --trials times with recorded
seeds, evaluates each model on TCGA@Focus with dense crops, and writes ROC-AUC and PR-AUC mean +- std
per cell beside the paper's Table 5 (table5.tsv, table5.md) and the best/worst curves of Figure 7
(figure7-<dataset>-roc.svg / -pr.svg). Run it again with the same options to continue after an
interruption: finished cells are read back, never retrained.

  --datasets D,...     ${[...DATASET_PRESETS.keys()].join(', ')}
  --archs A,...        ${TABLE5_NETWORKS.map((n) => n.name).join(', ')} (default: all)
  --trials N           trials per cell (default 5, as the paper)
  --tcga-root DIR      TCGA@Focus folder; --tcga-labels FILE its TCGA@Focus.txt
  --focuspath-root DIR, --focuspath-labels FILE      FocusPath (focuspath, focuspath64)
  --bioimage-root DIR, --bioimage-labels FILE        BBBC006 / BioImage (bioimage, bioimage64)
  --deepfocus-root DIR, --deepfocus-labels FILE      DeepFocus
  --source FILE...     in-focus slides or images for synthetic / synthetic64
  --count N            synthetic patches per dataset (default 1500)
  --allow-missing      keep only label rows whose image exists (partial copies of the datasets)
  --epochs N[,NET=N...] epochs for every network, and per network (e.g. 30,resnet10=8,densenet13=10)
  --batch N, --lr X, --step N, --gamma X, --split A,B,C   override the presets (small runs)
  --jobs N             cells trained at once, each in its own process (default: the machine's cores)
  --trainer T          auto (default: native for FocusLiteNN, torch for the others where built) | torch | tfjs
  --seed N             first trial's seed (default 1; trial t uses seed + t - 1)
  --cache-mb N         decoded training images kept in memory
  --threads N          native trainer threads`;

function list(text: string | undefined): string[] | undefined {
  return text?.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export const experimentCommand: Command = {
  summary: 'the paper\'s experiments: transfer (Table 5, Figure 7)',
  usage,
  async run(args) {
    const [which, ...rest] = args;
    if (which !== 'transfer') throw new UsageError(`Expected 'transfer' after fqa-scan experiment but received '${which ?? ''}' (see fqa-scan experiment --help)`);
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        datasets: { type: 'string' }, archs: { type: 'string' }, trials: { type: 'string' }, out: { type: 'string' },
        'tcga-root': { type: 'string' }, 'tcga-labels': { type: 'string' },
        'focuspath-root': { type: 'string' }, 'focuspath-labels': { type: 'string' }, 'bioimage-root': { type: 'string' }, 'bioimage-labels': { type: 'string' },
        'deepfocus-root': { type: 'string' }, 'deepfocus-labels': { type: 'string' }, source: { type: 'string', multiple: true }, count: { type: 'string' },
        'allow-missing': { type: 'boolean', default: false }, epochs: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' }, step: { type: 'string' },
        gamma: { type: 'string' }, split: { type: 'string' }, seed: { type: 'string' }, 'cache-mb': { type: 'string' }, threads: { type: 'string' },
        jobs: { type: 'string' }, trainer: { type: 'string' },
      },
    });
    if (!values.out) throw new UsageError('--out DIR is required (see fqa-scan experiment --help)');
    if (!values['tcga-root'] || !values['tcga-labels']) throw new UsageError('--tcga-root and --tcga-labels are required: the models are evaluated on TCGA@Focus');
    const names = list(values.datasets);
    if (!names?.length) throw new UsageError(`--datasets is required (${[...DATASET_PRESETS.keys()].join(', ')})`);
    const sources = [...(values.source ?? []), ...positionals];
    const datasets: TransferDataset[] = names.map((name) => {
      const preset = getDatasetPreset(name);
      let data: TrainDatasetSpec;
      if (preset.kind === 'synthetic') {
        if (sources.length === 0) throw new UsageError(`--datasets ${name} needs --source in-focus slides or images`);
        data = { kind: 'synthetic', sources, count: parseIntegerOption(values.count, 'count', 20, 1_000_000) ?? 1500 };
      } else {
        const kind = preset.kind as 'focuspath' | 'bioimage' | 'deepfocus';
        const root = values[`${kind}-root`];
        const labels = values[`${kind}-labels`];
        if (!root || !labels) throw new UsageError(`--datasets ${name} needs --${kind}-root and --${kind}-labels (the published ${preset.labels})`);
        data = { kind, root, labels, allowMissing: values['allow-missing'] };
      }
      return { preset: name, data };
    });
    let split: { train: number; validation: number; test: number } | undefined;
    if (values.split !== undefined) {
      const parts = values.split.split(',').map(Number);
      if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v) || v < 0)) throw new UsageError(`Expected three fractions like 0.8,0,0.2 for split but received '${values.split}'`);
      split = { train: parts[0]!, validation: parts[1]!, test: parts[2]! };
    }
    const cacheMb = parseIntegerOption(values['cache-mb'], 'cache-mb', 0, 1 << 22);
    // --epochs 30,resnet10=8: a plain number for every network, NAME=N for one.
    const epochParts = list(values.epochs) ?? [];
    const epochsByNetwork: Record<string, number> = {};
    let epochs: number | undefined;
    for (const part of epochParts) {
      const [name, value] = part.includes('=') ? part.split('=') as [string, string] : [undefined, part];
      const n = parseIntegerOption(value, name ? `epochs of ${name}` : 'epochs', 1, 100000)!;
      if (name === undefined) epochs = n;
      else epochsByNetwork[name] = n;
    }
    const line = new ProgressLine();
    const result = await runTransferExperiment({
      datasets,
      networks: list(values.archs) ?? TABLE5_NETWORKS.map((n) => n.name),
      trials: parseIntegerOption(values.trials, 'trials', 1, 100),
      tcga: { root: values['tcga-root'], labels: values['tcga-labels'], allowMissing: values['allow-missing'] },
      outDir: values.out,
      seed: parseIntegerOption(values.seed, 'seed', 0, 2 ** 31),
      training: {
        epochs,
        trainer: values.trainer === undefined ? undefined : expectOneOf(values.trainer, 'trainer', ['auto', 'torch', 'tfjs'] as const),
        batchSize: parseIntegerOption(values.batch, 'batch', 2, 100000),
        learningRate: parseNumberOption(values.lr, 'lr', { positive: true }),
        stepSize: parseIntegerOption(values.step, 'step', 1, 100000),
        gamma: parseNumberOption(values.gamma, 'gamma', { positive: true }),
        split,
        cacheBytes: cacheMb === undefined ? undefined : cacheMb * 2 ** 20,
        threads: parseIntegerOption(values.threads, 'threads', 0, 1024),
      },
      epochsByNetwork,
      jobs: parseIntegerOption(values.jobs, 'jobs', 1, 256),
      onProgress: (message) => line.log(message),
    });
    line.clear();
    process.stdout.write(`${result.cells.length} cell(s), ${result.trained.length} trained now; files in ${values.out}: ${result.files.join(', ')}\n`);
    process.stdout.write('dataset\tnetwork\tROC-AUC %\tPR-AUC %\n');
    for (const c of result.cells) process.stdout.write(`${c.dataset}\t${c.network}\t${formatPercent(c.roc)}\t${formatPercent(c.pr)}\n`);
    return 0;
  },
};
