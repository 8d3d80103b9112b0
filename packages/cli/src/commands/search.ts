/** fqa-scan search: first-order DARTS over the DARTS-FQA search space, then the found genotype's evaluation network. */
import { parseArgs } from 'node:util';
import { DARTS_FQA_SEARCH, UsageError, expectOneOf, formatGenotype, parseIntegerOption, parseNumberOption, readGenotypeFile, runSearch } from '@fqa/core';
import type { Command } from '../index.js';
import { ProgressLine } from '../progress-bar.js';
import { DATASET_KINDS, datasetFromOptions } from '../dataset-options.js';

const d = DARTS_FQA_SEARCH;
const usage = `Usage: fqa-scan search --dataset KIND [data options] --out DIR [options]

Searches a DARTS-FQA cell with first-order DARTS (Liu et al. 2019) as the paper did: ${d.layers} reduction
cells of ${d.steps} nodes, every edge a softmax(alpha)-weighted mix of none, max/avg pool, skip, sep conv 3/5,
dil conv 3/5, on ${d.patchSize} px patches with the PLCC loss. The training set is split in halves: each step
moves alpha on a batch of one half (Adam), then the weights on a batch of the other (SGD). Prints the
losses and the current genotype per epoch; then trains the found genotype's evaluation network
(DARTS-FQA, C = 20) for a few steps, saves it as model.fqa and scores the other half with it.

Data (as fqa-scan train):
  --dataset KIND       focuspath | bioimage | deepfocus | tcga | csv | synthetic
  --root DIR, --labels FILE, --allow-missing     image datasets (crops of ${d.patchSize} px)
  --source FILE...     synthetic: in-focus slides or images
  --count N            synthetic: patches to make (default 400)
  --psf P              synthetic: gaussian (default) | disk | scanner
  --levels N           synthetic: defocus levels 0..N-1 (default 10)

Search (defaults: DARTS-FQA's train_search.py):
  --epochs N           default ${d.epochs}            --batch N          default ${d.batchSize}
  --lr X               SGD on the weights (default ${d.learningRate}, constant)
  --momentum X         default ${d.momentum}           --weight-decay X   default ${d.weightDecay}
  --grad-clip X        gradient norm clip (default ${d.gradClip})
  --arch-lr X          Adam on alpha (default ${d.archLearningRate}; betas 0.5, 0.999)
  --arch-weight-decay X  default ${d.archWeightDecay}
  --train-portion X    share of the data that trains the weights (default ${d.trainPortion})
  --channels C         initial channels (default ${d.channels})   --layers N   cells (default ${d.layers})
  --steps N            nodes per cell (default ${d.steps})
  --seed N             default ${d.seed}; the same seed and data give the same genotype
  --trainer T          auto (default: torch where built, else tfjs) | torch (autograd) | tfjs
  --cache-mb N         decoded images kept in memory

Evaluation network:
  --eval-steps N       Adam steps of the minimal training loop (default 30; 0 = none)
  --eval-lr X          default 0.001
  --genotype FILE      skip the search: train this genotype.json's evaluation network

Output (--out DIR): genotype.json, alphas.tsv (softmax(alpha) per epoch and edge), history.tsv,
model.fqa and eval-history.tsv. Use the model with fqa-scan --model DIR/model.fqa.`;

export const searchCommand: Command = {
  summary: 'DARTS architecture search (first-order, DARTS-FQA search space) and the found cell\'s network',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        dataset: { type: 'string' }, root: { type: 'string' }, labels: { type: 'string' }, 'allow-missing': { type: 'boolean', default: false },
        source: { type: 'string', multiple: true }, count: { type: 'string' }, psf: { type: 'string' }, levels: { type: 'string' },
        epochs: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, 'weight-decay': { type: 'string' },
        'grad-clip': { type: 'string' }, 'arch-lr': { type: 'string' }, 'arch-weight-decay': { type: 'string' }, 'train-portion': { type: 'string' },
        channels: { type: 'string' }, layers: { type: 'string' }, steps: { type: 'string' }, seed: { type: 'string' }, 'cache-mb': { type: 'string' },
        'eval-steps': { type: 'string' }, 'eval-lr': { type: 'string' }, genotype: { type: 'string' }, out: { type: 'string' }, trainer: { type: 'string' },
      },
    });
    if (!values.out) throw new UsageError('--out DIR is required (see fqa-scan search --help)');
    const kind = expectOneOf(values.dataset, 'dataset', DATASET_KINDS);
    const dataset = datasetFromOptions('search', kind, values, positionals, { min: 8, default: 400 });
    // Read before any work, so a bad genotype file fails at once.
    const genotype = values.genotype === undefined ? undefined : readGenotypeFile(values.genotype);
    const cacheMb = parseIntegerOption(values['cache-mb'], 'cache-mb', 0, 1 << 22);
    const line = new ProgressLine();
    const result = await runSearch({
      dataset,
      outDir: values.out,
      genotype,
      engine: values.trainer === undefined ? undefined : expectOneOf(values.trainer, 'trainer', ['auto', 'torch', 'tfjs'] as const),
      epochs: parseIntegerOption(values.epochs, 'epochs', 1, 100_000),
      batchSize: parseIntegerOption(values.batch, 'batch', 2, 100_000),
      learningRate: parseNumberOption(values.lr, 'lr', { positive: true }),
      momentum: parseNumberOption(values.momentum, 'momentum', { range: { min: 0, max: 0.999 } }),
      weightDecay: parseNumberOption(values['weight-decay'], 'weight-decay', { range: { min: 0, max: 0.999 } }),
      gradClip: parseNumberOption(values['grad-clip'], 'grad-clip', { positive: true }),
      archLearningRate: parseNumberOption(values['arch-lr'], 'arch-lr', { positive: true }),
      archWeightDecay: parseNumberOption(values['arch-weight-decay'], 'arch-weight-decay', { range: { min: 0, max: 0.999 } }),
      trainPortion: parseNumberOption(values['train-portion'], 'train-portion', { range: { min: 0.01, max: 0.99 } }),
      channels: parseIntegerOption(values.channels, 'channels', 2, 256),
      layers: parseIntegerOption(values.layers, 'layers', 1, 6),
      steps: parseIntegerOption(values.steps, 'steps', 1, 8),
      seed: parseIntegerOption(values.seed, 'seed', 0, 2 ** 31),
      evalSteps: parseIntegerOption(values['eval-steps'], 'eval-steps', 0, 1_000_000),
      evalLearningRate: parseNumberOption(values['eval-lr'], 'eval-lr', { positive: true }),
      cacheBytes: cacheMb === undefined ? undefined : cacheMb * 2 ** 20,
      onProgress: (p) => {
        if (p.phase === 'prepare') line.log(p.message);
        else if (p.phase === 'batch') line.bar(`search epoch ${p.epoch}/${p.epochs}`, p.done, p.total, 'steps');
        else if (p.phase === 'epoch') {
          const e = p.result;
          line.log(`epoch ${e.epoch}/${p.epochs} train_loss ${e.trainLoss.toFixed(4)} valid_loss ${e.validLoss.toFixed(4)} (${e.seconds.toFixed(1)} s) genotype ${formatGenotype(e.genotype)}`);
        } else line.bar(`evaluation network step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`, p.step, p.steps, 'steps');
      },
    });
    line.clear();
    if (result.backend) process.stdout.write(`searched on ${result.backend}\n`);
    process.stdout.write(`genotype ${formatGenotype(result.genotype)}\n`);
    const ev = result.evaluation;
    if (ev) {
      const [first, last] = [ev.losses[0]!, ev.losses.at(-1)!];
      process.stdout.write(`evaluation network: loss ${first.toFixed(4)} (step 1) -> ${last.toFixed(4)} (step ${ev.losses.length}), per step in eval-history.tsv; PLCC ${ev.plcc.toFixed(3)}, SRCC ${ev.srcc.toFixed(3)} on ${ev.scored} patches of the other half, scored from model.fqa\n`);
    }
    process.stdout.write(`files in ${values.out}: ${result.files.join(', ')}\n`);
    return 0;
  },
};
