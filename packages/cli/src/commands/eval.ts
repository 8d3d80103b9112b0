/** fqa-scan eval --dataset KIND --root DIR --labels FILE [--model FILE] [--patch P] [--stride S] [--out FILE] */
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_PATH, UsageError, evaluateModel, expectOneOf, loadDataset, parseIntegerOption, writeAtomic } from '@fqa/core';
import type { Command } from '../index.js';

const usage = `Usage: fqa-scan eval --dataset focuspath|bioimage|deepfocus|tcga|csv --root DIR --labels FILE [options]

Scores every image of the dataset with dense crops (image score = mean of crop scores, as the papers)
and prints PLCC, SRCC, KRCC, RMSE, and for binary labels ROC-AUC, PR-AUC (trapezoid), average
precision and the best-threshold accuracy.

Options:
  --model FILE     model file (default: fqa's shipped model)
  --patch P        crop size (default: the model's)
  --stride S       crop stride (default: the model's)
  --allow-missing  skip label rows whose image is not in the folder
  --out FILE       also write the metrics and per-image scores as JSON`;

export const evalCommand: Command = {
  summary: 'evaluate a model on a labelled dataset (PLCC, SRCC, KRCC, RMSE, ROC/PR)',
  usage,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        dataset: { type: 'string' }, root: { type: 'string' }, labels: { type: 'string' }, model: { type: 'string' },
        patch: { type: 'string' }, stride: { type: 'string' }, out: { type: 'string' }, 'allow-missing': { type: 'boolean', default: false },
      },
    });
    if (!values.root || !values.labels) throw new UsageError('--root and --labels are required (see fqa-scan eval --help)');
    const kind = expectOneOf(values.dataset, 'dataset', ['focuspath', 'bioimage', 'deepfocus', 'tcga', 'csv'] as const);
    const dataset = loadDataset(kind, values.root, values.labels, { allowMissing: values['allow-missing'] });
    const tty = process.stderr.isTTY;
    const result = await evaluateModel(dataset.items, {
      model: values.model ?? DEFAULT_MODEL_PATH,
      patchSize: parseIntegerOption(values.patch, 'patch', 8, 4096),
      stride: parseIntegerOption(values.stride, 'stride', 1, 4096),
      onProgress: tty ? (done, total) => process.stderr.write(`\r${done}/${total} images`) : undefined,
    });
    if (tty) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${kind}: ${result.images} images, crops ${result.patchSize} px stride ${result.stride}\n`);
    for (const [name, value] of Object.entries(result.metrics)) process.stdout.write(`${name}\t${value === null ? 'n/a' : value.toFixed(4)}\n`);
    if (values.out) await writeAtomic(values.out, JSON.stringify({ dataset: kind, ...result }, null, 1) + '\n');
    return 0;
  },
};
