/**
 * `fqa-scan search` as one call: the data halves, first-order DARTS, then the evaluation network of
 * the found genotype trained for a few steps and scored from its saved model file. Writes into one
 * folder (each file atomically, history and genotype after every epoch so a long run shows progress):
 *   genotype.json   the genotype ({ reduce, concat } plus how it was found), for --genotype / the registry
 *   alphas.tsv      softmax(alpha) per epoch (0 = before the search), one row per edge
 *   history.tsv     per epoch: train and validation loss, seconds, genotype
 *   model.fqa, eval-history.tsv   the evaluation network and its per-step loss (when evalSteps > 0)
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeAtomic } from '../atomic-write.js';
import { UsageError } from '../errors.js';
import { parseModelFile, toLoadedModel } from '../model-file.js';
import type { Genotype } from '../models/architectures/darts-fqa.js';
import { createScorer } from '../models/backends/scorer.js';
import type { Batch } from '../train/batches.js';
import { plcc, srcc } from '../train/metrics.js';
import { seededRandom } from '../train/random.js';
import type { TrainDatasetSpec } from '../train/train-run.js';
import { expectInteger } from '../validate.js';
import { alphasTsvHeader, alphasTsvRows, resolveDartsSettings, runDarts, type DartsSettings, type SearchEpoch } from './darts.js';
import { formatGenotype } from './genotype.js';
import { searchData } from './search-data.js';
import { genotypeModelFile, trainGenotype } from './train-genotype.js';

export type SearchProgress =
  | { phase: 'prepare'; message: string }
  | { phase: 'batch'; epoch: number; epochs: number; done: number; total: number }
  | { phase: 'epoch'; epochs: number; result: SearchEpoch }
  | { phase: 'eval-step'; step: number; steps: number; loss: number };

export interface SearchRunOptions extends Partial<DartsSettings> {
  dataset: TrainDatasetSpec;
  outDir: string;
  /** Skip the search and train this genotype's evaluation network. */
  genotype?: Genotype;
  /** Steps of the evaluation network's minimal training (0 = none; default 30). */
  evalSteps?: number;
  evalLearningRate?: number;
  cacheBytes?: number;
  /** The search network's engine: auto (torch where built, else tfjs), torch or tfjs. */
  engine?: 'auto' | 'torch' | 'tfjs';
  onProgress?: (p: SearchProgress) => void;
}

export interface SearchRunResult {
  genotype: Genotype;
  history: SearchEpoch[];
  /** The evaluation network's loss per step, and its scores' agreement with the validation half's labels. */
  evaluation: { losses: number[]; plcc: number; srcc: number; scored: number; backend: string } | null;
  backend: string;
  files: string[];
}

async function firstBatches(batches: AsyncIterable<Batch>, limit: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of batches) {
    out.push(b);
    if (out.length >= limit) break;
  }
  return out;
}

export async function runSearch(o: SearchRunOptions): Promise<SearchRunResult> {
  const settings = resolveDartsSettings(o);
  const evalSteps = expectInteger(o.evalSteps ?? 30, 'eval-steps', 0, 1_000_000);
  const progress = o.onProgress ?? (() => {});
  await mkdir(o.outDir, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, text: string | Buffer) => {
    await writeAtomic(path.join(o.outDir, name), text);
    if (!files.includes(name)) files.push(name);
  };

  if (settings.patchSize !== 64 && evalSteps > 0) throw new UsageError(`the DARTS-FQA evaluation network takes 64 px patches: search with --patch 64 or pass --eval-steps 0`);
  progress({ phase: 'prepare', message: 'preparing the search data' });
  const data = await searchData(o.dataset, { patchSize: settings.patchSize, trainPortion: settings.trainPortion, seed: settings.seed, cacheBytes: o.cacheBytes });
  progress({ phase: 'prepare', message: `${data.description}; halves of ${data.train.count} (w) and ${data.validation.count} (alpha)` });

  let genotype: Genotype;
  let history: SearchEpoch[] = [];
  let backend = '';
  if (o.genotype) {
    genotype = o.genotype;
  } else {
    const alphaRows = [alphasTsvHeader()];
    const historyRows = ['epoch\ttrain_loss\tvalid_loss\tseconds\tgenotype'];
    let epochNow = 1;
    const result = await runDarts(data.train, data.validation, settings, {
      mean: data.mean,
      std: data.std,
      engine: o.engine,
      onStart: (weights) => {
        alphaRows.push(...alphasTsvRows(0, weights, settings.steps));
      },
      onBatch: (done, total) => progress({ phase: 'batch', epoch: epochNow, epochs: settings.epochs, done, total }),
      onEpoch: async (e) => {
        alphaRows.push(...alphasTsvRows(e.epoch, e.weights, settings.steps));
        historyRows.push(`${e.epoch}\t${e.trainLoss}\t${e.validLoss}\t${e.seconds.toFixed(3)}\t${formatGenotype(e.genotype)}`);
        await write('history.tsv', historyRows.join('\n') + '\n');
        await write('alphas.tsv', alphaRows.join('\n') + '\n');
        await writeGenotype(e.genotype, e.epoch);
        progress({ phase: 'epoch', epochs: settings.epochs, result: e });
        epochNow = e.epoch + 1;
      },
    });
    genotype = result.genotype;
    history = result.history;
    backend = result.backend;
  }
  async function writeGenotype(g: Genotype, epochsDone: number) {
    const search = { method: 'first-order DARTS (DARTS-FQA search space, reduction cells only)', dataset: o.dataset.kind, epochsDone, ...settings };
    await write('genotype.json', JSON.stringify({ ...g, search }, null, 1) + '\n');
  }

  let evaluation: SearchRunResult['evaluation'] = null;
  if (evalSteps > 0) {
    const evalRows = ['step\tloss'];
    const trained = await trainGenotype(genotype, data.train, {
      steps: evalSteps, batchSize: settings.batchSize, learningRate: o.evalLearningRate ?? 1e-3, seed: settings.seed, mean: data.mean, std: data.std,
      onStep: (step, loss) => {
        evalRows.push(`${step}\t${loss}`);
        progress({ phase: 'eval-step', step, steps: evalSteps, loss });
      },
    });
    const bytes = genotypeModelFile(genotype, trained, {
      name: `darts-fqa-searched-${o.dataset.kind}`, mean: data.mean, std: data.std,
      source: `DARTS-FQA evaluation network of a genotype found by fqa-scan search on ${o.dataset.kind}, seed ${settings.seed}`,
      notes: `${evalSteps} Adam steps (minimal loop), batch ${settings.batchSize}; genotype ${formatGenotype(genotype)}`,
    });
    await write('model.fqa', bytes);
    await write('eval-history.tsv', evalRows.join('\n') + '\n');
    // Score the validation half from the saved file, as fqa-scan would.
    const model = toLoadedModel(parseModelFile(bytes, 'model.fqa'), path.join(o.outDir, 'model.fqa'));
    const scorer = await createScorer(model, { backend: 'tfjs' });
    const scores: number[] = [];
    const labels: number[] = [];
    try {
      for (const b of await firstBatches(data.validation.epoch(seededRandom(settings.seed + 2), 50), 8)) {
        scores.push(...(await scorer.score(b.pixels, b.count, settings.patchSize)));
        labels.push(...b.labels);
      }
    } finally {
      await scorer.dispose();
    }
    evaluation = { losses: trained.losses, plcc: plcc(scores, labels), srcc: srcc(scores, labels), scored: scores.length, backend: trained.backend };
  }
  if (o.genotype) await write('genotype.json', JSON.stringify(genotype, null, 1) + '\n');
  return { genotype, history, evaluation, backend, files };
}
