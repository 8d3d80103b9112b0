/** fqa-scan [scan] <slide|folder|glob...> --model FILE [options]: whole-slide focus QC with reports. */
import { existsSync, readdirSync, readFileSync, statSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BACKEND_NAMES, DEFAULT_MODEL_PATH, deviceNames, expectOneOf, parseNumberOption, resolveDevice,
  FqaError, SUMMARY_COLUMNS, UsageError, errorRow, nativeVersion, parseIntegerOption, reportStem, scanSlide, summaryJson, summaryRow, writeAtomic,
  writeSlideReports,
} from '@fqa/core';
import type { Command } from '../index.js';

const usage = `Usage: fqa-scan [scan] <slide|folder|glob...> [--model FILE] [options]

Sweeps each slide's tissue with the model and writes, per slide, <name>.scores.tsv, <name>.heatmap.png,
<name>.overlay.png, <name>.geojson (QuPath) and <name>.json (written last: its presence marks the slide
done), plus summary.tsv for the run. Slides whose report exists are skipped unless --force.

Options:
  --model FILE       fqa model file (default: fqa's shipped model, see packages/core/models/README.md)
  --out DIR          output folder (default: fqa-report)
  --patch P          patch size in working pixels (default: the model's)
  --stride S         stride in working pixels (default: the model's)
  --mpp X            µm/px of level 0 for slides without metadata (or to override it)
  --threshold T      score above which a patch is out of focus (default: the model's)
  --workers N        worker threads (default: the number of cores)
  --device D         auto (default: CUDA when this build has it and a GPU answers, else the CPU) | cuda | cpu
  --backend B        auto (default: native for FocusLiteNN/EONSS, else ONNX Runtime when installed, else tfjs) | native | onnx | tfjs
  --json             print each slide's summary as JSON lines
  --force            rescan slides that already have a report

Exit codes: 0 all slides pass, 1 some slide fails QC, 2 usage error, 3 some input could not be read.`;

const SLIDE_EXTENSIONS = /\.(svs|tif|tiff|ndpi|vms|vmu|scn|mrxs|svslide|bif|png|jpe?g)$/i;

/** Files, folders (their slide files) and simple globs (* and ? in the last path part). */
export function expandInputs(args: string[]): string[] {
  const out: string[] = [];
  for (const arg of args) {
    if (/[*?]/.test(path.basename(arg))) {
      const dir = path.dirname(arg);
      const re = new RegExp('^' + path.basename(arg).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
      const matches = existsSync(dir) ? readdirSync(dir).filter((f) => re.test(f)).sort() : [];
      if (matches.length === 0) out.push(arg); // reported as missing
      for (const f of matches) out.push(path.join(dir, f));
    } else if (existsSync(arg) && statSync(arg).isDirectory() && !arg.endsWith('.svs')) {
      for (const f of readdirSync(arg).sort()) if (SLIDE_EXTENSIONS.test(f)) out.push(path.join(arg, f));
    } else {
      out.push(arg);
    }
  }
  return out;
}

export const scanCommand: Command = {
  summary: 'scan slides for out-of-focus tissue and write reports (the default command)',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: 'string' }, out: { type: 'string', default: 'fqa-report' }, patch: { type: 'string' }, stride: { type: 'string' },
        mpp: { type: 'string' }, threshold: { type: 'string' }, workers: { type: 'string' }, json: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false }, device: { type: 'string' }, backend: { type: 'string' },
      },
    });
    if (positionals.length === 0) throw new UsageError("no slides given (see fqa-scan scan --help)");
    const device = expectOneOf(values.device ?? 'auto', 'device', deviceNames);
    const modelFile = values.model ?? DEFAULT_MODEL_PATH;
    const options = {
      model: modelFile,
      patchSize: parseIntegerOption(values.patch, 'patch', 8, 4096),
      stride: parseIntegerOption(values.stride, 'stride', 1, 4096),
      workers: parseIntegerOption(values.workers, 'workers', 1, 256),
      mpp: parseNumberOption(values.mpp, 'mpp'),
      threshold: parseNumberOption(values.threshold, 'threshold'),
      device,
      backend: values.backend === undefined ? undefined : expectOneOf(values.backend, 'backend', ['auto', ...BACKEND_NAMES] as const),
    };
    // Checked once, after the other options: --device cuda without a GPU is a usage error before any
    // slide is read. A CPU-only build is quietly the CPU; a CUDA build without a GPU, or an explicit
    // --device auto, says so.
    const resolved = resolveDevice(device);
    if (resolved.notice && (resolved.cudaBuild || values.device === 'auto')) process.stderr.write(`fqa-scan: note: ${resolved.notice}\n`);
    const slides = expandInputs(positionals);
    mkdirSync(values.out, { recursive: true });
    const rows: string[] = [];
    let exit = 0;
    const tty = process.stderr.isTTY;
    for (const [i, slide] of slides.entries()) {
      const stem = reportStem(slide);
      const jsonFile = path.join(values.out, `${stem}.json`);
      if (!values.force && existsSync(jsonFile)) {
        try {
          const previous = JSON.parse(readFileSync(jsonFile, 'utf8')) as { summaryRow?: string; summary?: { verdict?: string } };
          if (previous.summaryRow) {
            rows.push(previous.summaryRow);
            if (previous.summary?.verdict === 'fail') exit = Math.max(exit, 1);
            process.stderr.write(`[${i + 1}/${slides.length}] ${slide}: report exists, skipped (--force to rescan)\n`);
            continue;
          }
        } catch {
          // unreadable previous report: scan again
        }
      }
      try {
        const result = await scanSlide(slide, {
          ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
          model: options.model,
          onProgress: tty
            ? (p) => {
                const width = 30;
                const filled = Math.round((width * p.regionsDone) / Math.max(1, p.regions));
                process.stderr.write(`\r[${i + 1}/${slides.length}] ${path.basename(slide)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.regionsDone}/${p.regions} regions`);
              }
            : undefined,
        });
        const row = summaryRow(result);
        await writeSlideReports(values.out, stem, result, { summaryRow: row });
        rows.push(row);
        if (result.summary.verdict === 'fail') exit = Math.max(exit, 1);
        const s = result.summary;
        const blur = s.outOfFocusFraction === null ? 'n/a' : `${(100 * s.outOfFocusFraction).toFixed(1)}%`;
        if (tty) process.stderr.write('\r\x1b[K');
        process.stderr.write(`[${i + 1}/${slides.length}] ${slide}: ${s.verdict}, ${s.patchesScored} patches, out of focus ${blur} of tissue, ${result.timings.totalSeconds.toFixed(1)} s\n`);
        if (values.json) process.stdout.write(summaryJson(result).replace(/\n\s*/g, ' ').trim() + '\n');
      } catch (err) {
        if (!(err instanceof FqaError)) throw err;
        if (err.exitCode === 2) throw err; // a usage error applies to every slide
        if (tty) process.stderr.write('\r\x1b[K');
        process.stderr.write(`fqa-scan: ${err.message}\n`);
        rows.push(errorRow(slide, err.message));
        exit = 3;
      }
    }
    const header = [
      `# fqa ${nativeVersion}`,
      `# model: ${path.resolve(options.model)}`,
      `# options: ${JSON.stringify(Object.fromEntries(Object.entries(options).filter(([k, v]) => v !== undefined && k !== 'model')))}`,
      `# date: ${new Date().toISOString()}`,
      SUMMARY_COLUMNS.join('\t'),
    ];
    await writeAtomic(path.join(values.out, 'summary.tsv'), header.concat(rows).join('\n') + '\n');
    return exit;
  },
};
