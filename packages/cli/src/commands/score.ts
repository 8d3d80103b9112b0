/** fqa-scan score <image...> --model FILE [--patch P] [--stride S] [--json] */
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, DEFAULT_MODEL_PATH, FqaError, UsageError, deviceNames, expectOneOf, loadModel, parseIntegerOption, parseNumberOption, resolveScoreOptions, scoreImage, type ImageScores } from '@fqa/core';
import type { Command } from '../index.js';

const usage = `Usage: fqa-scan score <image...> [--model FILE] [options]

Scores whole images (PNG, JPEG, TIFF) with dense patches; patches without tissue are not scored. Prints a header
(model, score scale, threshold), then per image its mean score (higher = blurrier) and a verdict:
out-of-focus when the mean is above the model's threshold, in-focus otherwise (unknown without one).
Exit code: 0 when every image was scored and none is out of focus, 1 when one is out of focus (as a
failed slide in scan), 3 when an image could not be read (the others are still scored).

Options:
  --model FILE     fqa model file (default: fqa's shipped model, see packages/core/models/README.md)
  --patch P        patch size in pixels (default: the model's)
  --stride S       grid stride in pixels (default: the model's)
  --threads N      native threads, 0 = all cores (default 0)
  --mpp X          µm/px of the images: resampled to the model's µm/px first (default: scored as they are)
  --kernel NAME    auto | reference | baseline | avx2 | avx512 (default auto)
  --device D       cpu (default) | cuda | auto (CUDA when built and a GPU answers)
  --backend B      auto (default: native for FocusLiteNN/EONSS, else ONNX Runtime when installed, else tfjs) | native | onnx | tfjs
  --json           print [{file, mean, threshold, verdict, patchesScored, warnings, rows, cols, patchSize, stride, scores}]
                   (scores: null for patches without tissue)`;

export const scoreCommand: Command = {
  summary: 'score whole images with dense patches',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        patch: { type: 'string' },
        stride: { type: 'string' },
        threads: { type: 'string' },
        kernel: { type: 'string' },
        device: { type: 'string' },
        backend: { type: 'string' },
        mpp: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (positionals.length === 0) throw new UsageError("no images given (see fqa-scan score --help)");
    const modelFile = values.model ?? DEFAULT_MODEL_PATH;
    const options = await resolveScoreOptions({
      model: await loadModel(modelFile),
      patchSize: parseIntegerOption(values.patch, 'patch', 8, 4096),
      stride: parseIntegerOption(values.stride, 'stride', 1, 4096),
      threads: parseIntegerOption(values.threads, 'threads', 0, 1024),
      kernel: values.kernel as never,
      device: values.device === undefined ? undefined : expectOneOf(values.device, 'device', deviceNames),
      backend: values.backend === undefined ? undefined : expectOneOf(values.backend, 'backend', ['auto', ...BACKEND_NAMES] as const),
      mpp: parseNumberOption(values.mpp, 'mpp', { positive: true }),
    });
    const { name, score } = options.model.header;
    const threshold = score.threshold;
    if (!values.json) {
      process.stdout.write(`# model ${name}; score: ${score.scale}; threshold ${threshold ?? 'none (no verdict)'}${options.mpp === null ? '' : `; images at ${options.mpp} µm/px resampled to the model's ${options.model.header.micronsPerPixel}`}\n`);
      process.stdout.write('file\tmean_score\tverdict\tpatches\n');
    }
    // No tissue: nothing to judge; a dark background (fluorescence) is outside the model's domain.
    const verdict = (r: ImageScores) =>
      r.noTissue ? 'no-tissue' : threshold === null || r.darkBackground || Number.isNaN(r.mean) ? 'unknown' : r.mean > threshold ? 'out-of-focus' : 'in-focus';
    if (options.deviceNotice) process.stderr.write(`fqa-scan: note: ${options.deviceNotice}\n`);
    const results: ImageScores[] = [];
    let worstExit = 0;
    for (const file of positionals) {
      try {
        const r = await scoreImage(file, options);
        results.push(r);
        for (const w of r.warnings) process.stderr.write(`fqa-scan: warning: ${file}: ${w}\n`);
        if (!values.json) process.stdout.write(`${file}\t${r.noTissue ? '' : r.mean.toFixed(6)}\t${verdict(r)}\t${r.patchesScored} of ${r.cols}x${r.rows} (${r.patchSize} px, stride ${r.stride})\n`);
        // A script's `fqa-scan score img || alert` must see an out-of-focus image (exit 1, the QC failure code).
        if (verdict(r) === 'out-of-focus') worstExit = Math.max(worstExit, 1);
      } catch (err) {
        // One bad image does not stop the others; it is reported and sets the exit code (70 for
        // an error fqa did not expect, once every image is done).
        if (err instanceof FqaError && err.exitCode === 2) throw err;
        const message = err instanceof FqaError ? err.message : `${file}: internal error: ${(err as Error).message ?? String(err)}`;
        process.stderr.write(`fqa-scan: ${message}\n`);
        worstExit = Math.max(worstExit, err instanceof FqaError ? err.exitCode : 70);
      }
    }
    if (values.json) {
      const out = results.map((r) => ({ file: r.file, mean: r.mean, threshold, verdict: verdict(r), patchesScored: r.patchesScored, warnings: r.warnings, rows: r.rows, cols: r.cols, patchSize: r.patchSize, stride: r.stride, scores: Array.from(r.scores) }));
      process.stdout.write(JSON.stringify(out, null, 1) + '\n');
    }
    return worstExit;
  },
};
