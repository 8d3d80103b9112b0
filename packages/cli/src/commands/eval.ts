/** fqa-scan eval --dataset KIND --root DIR --labels FILE [--model FILE ...] [--plots DIR] [--out FILE] */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_MODEL_PATH, UsageError, evaluateModel, expectOneOf, loadDataset, parseIntegerOption, prSvg, rocSvg, scatterSvg, summarizeTrials, writeAtomic,
  type EvaluationResult,
} from '@fqa/core';
import type { Command } from '../index.js';
import { ProgressLine } from '../progress-bar.js';

const usage = `Usage: fqa-scan eval --dataset focuspath|bioimage|deepfocus|tcga|csv --root DIR --labels FILE [options]

Scores every image of the dataset with dense crops (image score = mean of crop scores, as the papers)
and prints PLCC, SRCC, KRCC, RMSE, and for binary labels ROC-AUC, PR-AUC (trapezoid), average
precision and the best-threshold accuracy. Give --model several times (e.g. the models of several
training trials) for the mean +- std over them.

Options:
  --model FILE     model file, repeatable (default: fqa's shipped model)
  --patch P        crop size (default: the model's)
  --stride S       crop stride (default: the model's)
  --allow-missing  skip label rows whose image is not in the folder
  --plots DIR      write scatter.svg, and roc.svg / pr.svg for binary labels
  --out FILE       also write the metrics and per-image scores as JSON`;

export const evalCommand: Command = {
  summary: 'evaluate models on a labelled dataset (PLCC, SRCC, KRCC, RMSE, ROC/PR, plots)',
  usage,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        dataset: { type: 'string' }, root: { type: 'string' }, labels: { type: 'string' }, model: { type: 'string', multiple: true },
        patch: { type: 'string' }, stride: { type: 'string' }, out: { type: 'string' }, plots: { type: 'string' }, 'allow-missing': { type: 'boolean', default: false },
      },
    });
    if (!values.root || !values.labels) throw new UsageError('--root and --labels are required (see fqa-scan eval --help)');
    const kind = expectOneOf(values.dataset, 'dataset', ['focuspath', 'bioimage', 'deepfocus', 'tcga', 'csv'] as const);
    const dataset = loadDataset(kind, values.root, values.labels, { allowMissing: values['allow-missing'] });
    const models = values.model?.length ? values.model : [DEFAULT_MODEL_PATH];
    const patchSize = parseIntegerOption(values.patch, 'patch', 8, 4096);
    const stride = parseIntegerOption(values.stride, 'stride', 1, 4096);
    const line = new ProgressLine();
    const results: EvaluationResult[] = [];
    for (const [i, model] of models.entries()) {
      results.push(await evaluateModel(dataset.items, { model, patchSize, stride, onProgress: (done, total) => line.bar(`model ${i + 1}/${models.length}`, done, total, 'images') }));
    }
    line.clear();
    process.stdout.write(`${kind}: ${dataset.items.length} images, crops ${results[0]!.patchSize} px stride ${results[0]!.stride}, ${models.length} model(s)\n`);
    const summary = summarizeTrials(results.map((r) => r.metrics));
    process.stdout.write('metric\tmean\tstd\n');
    for (const [name, m] of Object.entries(summary)) process.stdout.write(`${name}\t${m.mean.toFixed(4)}\t${m.std === null ? 'n/a' : m.std.toFixed(4)}\n`);
    if (values.plots) {
      await mkdir(values.plots, { recursive: true });
      const first = results[0]!;
      await writeAtomic(path.join(values.plots, 'scatter.svg'), scatterSvg(first.scores.map((s) => s.target), first.scores.map((s) => s.score), `${kind}: score vs label (${path.basename(first.model)})`));
      const targets = first.scores.map((s) => s.target);
      if (targets.every((t) => t === 0 || t === 1) && new Set(targets).size === 2) {
        const series = results.map((r) => ({ name: path.basename(r.model), scores: r.scores.map((s) => s.score), positives: r.scores.map((s) => s.target === 1) }));
        await writeAtomic(path.join(values.plots, 'roc.svg'), rocSvg(series));
        await writeAtomic(path.join(values.plots, 'pr.svg'), prSvg(series));
      }
    }
    if (values.out) await writeAtomic(values.out, JSON.stringify({ dataset: kind, summary, models: results }, null, 1) + '\n');
    return 0;
  },
};
