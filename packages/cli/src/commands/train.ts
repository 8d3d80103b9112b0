/** fqa-scan train: train any registry architecture on a public dataset, a CSV dataset or synthetic defocus. */
import { parseArgs } from 'node:util';
import { DATASET_PRESETS, DEFAULT_RECIPE, UsageError, architectures, expectOneOf, getDatasetPreset, parseIntegerOption, parseNumberOption, runTraining } from '@fqa/core';
import type { Command } from '../index.js';
import { ProgressLine } from '../progress-bar.js';
import { DATASET_KINDS, datasetFromOptions } from '../dataset-options.js';

const trainable = architectures().filter((d) => d.trainers.length > 0).map((d) => d.name).join(' | ');
const usage = `Usage: fqa-scan train --dataset KIND [data options] --out DIR [options]

Trains a model the way the paper does: a seeded split by slide, normalization with the training
split's channel statistics, one random crop per image per epoch (235 px, or 64 px for the paper's
FocusPath64 / BioImage64), Adam with StepLR, then dense-crop evaluation of the test split. Several
--trials repeat it with a fresh split and init and report mean +- std. --preset sets the paper's
settings for a dataset; FocusLiteNN trains natively, every other architecture from its registry
graph (same graph as scoring) on libtorch where it is installed (bash scripts/install.sh --train),
else on tfjs, with a checkpoint every epoch (--resume continues, on either engine).

Data:
  --preset P           ${[...DATASET_PRESETS.keys()].join(', ')}
                       the paper's settings for that dataset (patch, published normalization, PLCC
                       loss, Adam, batch 8, 120 epochs, lr 0.01 / step 60 for FocusLiteNN, 0.001 / 40
                       for the others); flags override them
  --dataset KIND       focuspath | bioimage | deepfocus | tcga | csv | synthetic (default: the preset's)
  --root DIR           dataset folder (image paths in the label file are relative to it)
  --labels FILE        label file in the dataset's published layout (csv: 'file,label' header)
  --allow-missing      skip label rows whose image is not in the folder
  --source FILE...     synthetic: in-focus slides or images (several after one --source, or repeated)
  --count N            synthetic: patches to make (default 1500)
  --psf P              synthetic: gaussian (default, sigma 0.5 px per level) | disk (radius 1 px per level) |
                       scanner (the default model's recipe: stain, linear-light disk PSF, noise, JPEG; radius
                       1 px per level, trained on level^${DEFAULT_RECIPE.labelPower})
  --levels N           synthetic: defocus levels 0..N-1 (default 10; scanner: ${DEFAULT_RECIPE.maxLevel + 1}, the default recipe's)
  --threshold-level L  synthetic: the calibrated model's threshold in levels (default: sigma 1.25 px;
                       scanner: the default recipe's rule, ${100 * DEFAULT_RECIPE.inFocusFalsePositives} % of in-focus training patches above it)
  --mpp X              µm/px of the training tissue, written into the model (scans resample to it)

Model and training:
  --arch A             ${trainable} (default focuslitenn)
  --variant V          the architecture's variant (fqa-scan models): darts-fqa genotype, eonss definition
  --kernels K          FocusLiteNN kernels: 1, 2, 10, ... (default 1)
  --patch P            235 (default) or 64
  --trainer T          auto (default: native for FocusLiteNN; torch for the others where built, else
                       tfjs) | native | torch | tfjs   (fqa-scan info lists the engines and why one is missing)
  --device D           cpu (default) | cuda (the torch engine on a CUDA libtorch)
  --loss L             plcc (default) | mse | mae
  --epochs N           default 120          --batch N        default 50
  --lr X               default 0.01         --step N         StepLR step (default 60)
  --gamma X            StepLR factor (default 0.1)
  --seed N             default 1            --trials N       default 1
  --init I             focuslitenn (default: N(0, sqrt(2/(k*k*out))) as the FocusLiteNN repository) | uniform
  --split A,B,C        train,validation,test fractions (default 0.8,0,0.2)
  --normalize M        dataset (default: training split statistics) | paper | none
  --eval-stride S      test crop stride (default 128 for 235 px, 32 for 64 px)
  --cache-mb N         decoded images kept in memory (default: half the machine's memory)
  --threads N          native trainer threads (default: all cores)
  --resume             continue a run in --out: finished trials are kept, the graph trainer goes on
                       from its last checkpoint (checkpoint-trialN.bin, written every epoch)

Output (--out DIR): model.fqa (model-trialN.fqa), history.tsv, test-scores.tsv, result.json (seeds
and metrics per trial, mean +- std), trial-N.json, scatter.svg, and roc.svg / pr.svg for binary labels. A FocusLiteNN trained on synthetic defocus is
calibrated so that its score estimates the defocus level, with a threshold, ready for fqa-scan.`;

function fraction(text: string | undefined): { train: number; validation: number; test: number } | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map(Number);
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v) || v < 0)) throw new UsageError(`Expected three fractions like 0.8,0,0.2 for split but received '${text}'`);
  return { train: parts[0]!, validation: parts[1]!, test: parts[2]! };
}


export const trainCommand: Command = {
  summary: 'train any architecture on a dataset (native, torch or tfjs trainer; paper presets), with evaluation and plots',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        dataset: { type: 'string' }, root: { type: 'string' }, labels: { type: 'string' }, 'allow-missing': { type: 'boolean', default: false },
        source: { type: 'string', multiple: true }, count: { type: 'string' }, psf: { type: 'string' }, levels: { type: 'string' }, 'threshold-level': { type: 'string' }, mpp: { type: 'string' }, arch: { type: 'string' }, kernels: { type: 'string' },
        patch: { type: 'string' }, trainer: { type: 'string' }, device: { type: 'string' }, loss: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' },
        lr: { type: 'string' }, step: { type: 'string' }, gamma: { type: 'string' }, seed: { type: 'string' }, trials: { type: 'string' },
        split: { type: 'string' }, normalize: { type: 'string' }, 'eval-stride': { type: 'string' }, 'cache-mb': { type: 'string' },
        threads: { type: 'string' }, out: { type: 'string' }, init: { type: 'string' },
        preset: { type: 'string' }, variant: { type: 'string' }, resume: { type: 'boolean', default: false },
      },
    });
    if (!values.out) throw new UsageError('--out DIR is required (see fqa-scan train --help)');
    const preset = values.preset === undefined ? undefined : getDatasetPreset(values.preset);
    const kind = expectOneOf(values.dataset ?? preset?.kind, 'dataset', DATASET_KINDS);
    // `--source a.svs b.svs ...` (a shell glob) gives the extra files as positionals.
    const dataset = datasetFromOptions('train', kind, values, positionals, { min: 20, default: 1500 });
    const patch = parseIntegerOption(values.patch, 'patch', 64, 235);
    if (patch !== undefined && patch !== 64 && patch !== 235) throw new UsageError(`Expected 235 or 64 for patch but received ${patch}`);
    const line = new ProgressLine();
    const cacheMb = parseIntegerOption(values['cache-mb'], 'cache-mb', 0, 1 << 22);
    const result = await runTraining({
      dataset,
      outDir: values.out,
      preset: preset?.name,
      architecture: values.arch,
      variant: values.variant,
      resume: values.resume,
      kernels: parseIntegerOption(values.kernels, 'kernels', 1, 256),
      patchSize: patch as 235 | 64 | undefined,
      trainer: values.trainer === undefined ? undefined : expectOneOf(values.trainer, 'trainer', ['auto', 'native', 'torch', 'tfjs'] as const),
      device: values.device === undefined ? undefined : expectOneOf(values.device, 'device', ['cpu', 'cuda'] as const),
      loss: values.loss === undefined ? undefined : expectOneOf(values.loss, 'loss', ['plcc', 'mse', 'mae'] as const),
      epochs: parseIntegerOption(values.epochs, 'epochs', 1, 100000),
      batchSize: parseIntegerOption(values.batch, 'batch', 2, 100000),
      learningRate: parseNumberOption(values.lr, 'lr', { positive: true }),
      stepSize: parseIntegerOption(values.step, 'step', 1, 100000),
      gamma: parseNumberOption(values.gamma, 'gamma', { positive: true }),
      seed: parseIntegerOption(values.seed, 'seed', 0, 2 ** 31),
      trials: parseIntegerOption(values.trials, 'trials', 1, 100),
      init: values.init === undefined ? undefined : expectOneOf(values.init, 'init', ['focuslitenn', 'uniform'] as const),
      split: fraction(values.split),
      normalization: values.normalize === undefined ? undefined : expectOneOf(values.normalize, 'normalize', ['dataset', 'paper', 'none'] as const),
      evalStride: parseIntegerOption(values['eval-stride'], 'eval-stride', 1, 4096),
      cacheBytes: cacheMb === undefined ? undefined : cacheMb * 2 ** 20,
      threads: parseIntegerOption(values.threads, 'threads', 0, 1024),
      thresholdLevel: parseNumberOption(values['threshold-level'], 'threshold-level', { positive: true }),
      micronsPerPixel: parseNumberOption(values.mpp, 'mpp', { positive: true }),
      onProgress: (p) => {
        if (p.phase === 'prepare') line.log(p.message);
        else if (p.phase === 'decode') line.bar(`trial ${p.trial} decoding`, p.done, p.total, 'images');
        else if (p.phase === 'batch') line.bar(`trial ${p.trial} epoch ${p.epoch}/${p.epochs}`, p.done, p.total, 'batches');
        else if (p.phase === 'epoch') line.log(`trial ${p.trial} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} (${p.seconds.toFixed(1)} s)`);
        else line.bar(`trial ${p.trial} evaluating`, p.done, p.total, 'images');
      },
    });
    line.clear();
    process.stdout.write(`trainer ${result.trainer}; ${result.trials.length} trial(s); files in ${result.outDir}: ${result.files.join(', ')}\n`);
    for (const t of result.trials) process.stdout.write(`trial ${t.trial}: ${t.seconds.toFixed(1)} s, ${t.samplesPerSecond.toFixed(0)} samples/s, final loss ${t.finalLoss.toFixed(4)}\n`);
    process.stdout.write('test metric\tmean\tstd\n');
    for (const [name, m] of Object.entries(result.summary)) process.stdout.write(`${name}\t${m.mean.toFixed(4)}\t${m.std === null ? 'n/a' : m.std.toFixed(4)}\n`);
    return 0;
  },
};
