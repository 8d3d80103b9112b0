/** fqa-scan [scan] <slide|folder|glob...> [--model FILE] [options]: whole-slide focus QC with reports. */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BACKEND_NAMES, MPP_RANGE, TooSmallError, DEFAULT_MAX_OUT_OF_FOCUS, DEFAULT_MIN_TISSUE, DEFAULT_MODEL_PATH, DEFAULT_VIEW_SIZE, FqaError, InputError, OutputError, UsageError,
  adoptMovedReport, allocateStem, claimOutputFolder, deviceNames, expectOneOf, kernelNames, loadModel, lockOutputFolder, nativeVersion, outputFullCode, outputFullError,
  parseIntegerOption, parseNumberOption, readReportFolder, removeAbandonedStages, reportKey, reportStands, reportStem, requireRegularFile, resolveDevice, resolveScanOptions, scanSlide,
  fractionToPercent, optionsInPercent, slideFingerprint, startSlideView, summaryJson, tsvField, upgradeReportJson, validateScanOptions, writeAtomic, writeErrorReport, writeIndexPage, writeSlideReports, writeSummaryTsv,
  type ScanOptions,
} from '@fqa/core';
import type { Command } from '../index.js';
import { parsePercent } from '../percent-option.js';
import { expandInputs, type SkippedFile } from '../inputs.js';

const usage = `Usage: fqa-scan [scan] <slide|folder|glob...> [--model FILE] [options]

Sweeps each slide's tissue with the model and writes into the output folder, per slide,
<name>.scores.tsv, <name>.overview.png, <name>.heatmap.png, <name>.geojson (QuPath), <name>.html with
its zoomable view, and <name>.json (written last: its presence marks the slide done); then
summary.tsv and index.html over every slide reported in the folder (earlier runs' included).
A slide whose report was made from the same slide content, model and options is not scanned again.

Options:
  --model FILE             fqa model file (default: fqa's shipped model, see packages/core/models/README.md)
  --out DIR                output folder (default: fqa-report)
  --recursive              also scan the slides in subfolders of the folders given
  --follow-links           with --recursive, also walk links to folders (each folder is walked once)
  --patch P                patch size in working pixels (default: the model's)
  --stride S               stride in working pixels (default: the model's)
  --mpp X                  µm/px of level 0 for slides without metadata (or to override it)
  --threshold T            score above which a patch is out of focus (default: the model's)
  --max-out-of-focus PCT   a slide fails when more than PCT % of its tissue is out of focus (default ${100 * DEFAULT_MAX_OUT_OF_FOCUS})
  --min-tissue PCT         score a patch when at least PCT % of it is tissue (default ${100 * DEFAULT_MIN_TISSUE})
  --workers N              worker threads (default: the number of cores)
  --device D               auto (default: CUDA when this build has it and a GPU answers, else the CPU) | cuda | cpu
  --backend B              auto (default: native for FocusLiteNN/EONSS, else ONNX Runtime when installed, else tfjs) | native | onnx | tfjs
  --kernel K               CPU kernel: ${kernelNames.join(' | ')} (default auto)
  --view-size PX           longest side of each slide page's zoomable view (default ${DEFAULT_VIEW_SIZE}; 0: none)
  --reuse                  keep existing reports even when the model, options or slide changed
  --force                  rescan every slide, even when its report is up to date
  --json                   print one JSON line per slide in the input (scanned, kept or failed: "run" says which)
  --exit-on WHICH          new (default): the exit code reflects the slides scanned in this run; all: every
                           slide of the input, reports kept from earlier runs included

The output folder is marked as fqa's (.fqa-output) and locked while a run writes it: a second run
into it stops with one line, and a folder fqa did not make is refused if it holds files fqa would
overwrite (summary.tsv, index.html, a slide's <name>.html, <name>_files/, ...).

Exit codes (of the slides scanned in this run; --exit-on all: of every slide in the input): 0 every
slide passed; 1 some slide did not pass (fail, no-tissue or unknown); 2 usage error; 3 some input
could not be read, or nothing to scan was found; 4 the output folder could not be written (disk
full, over quota, read-only) or is in use by another run. A report kept from an earlier run (same
file, model and options; an unreadable file's error included) does not count again, so a nightly
'|| notify' fires once per problem, not every night.`;

/** Creates the output folder and proves a file can be written in it, before any slide is scanned. */
function ensureWritableFolder(dir: string): void {
  const probe = path.join(dir, `.fqa-write-test.${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'is a file, not a folder' : `is not writable (${code ?? (err as Error).message})`;
    throw new UsageError(`--out ${dir}: ${why}`);
  }
}

function skippedLine(skipped: SkippedFile[], listFile?: string): string {
  const shown = skipped.slice(0, 3).map((s) => `${s.file} (${s.reason})`).join('; ');
  return `skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'} that ${skipped.length === 1 ? 'is' : 'are'} not scanned: ${shown}${skipped.length > 3 ? '; ...' : ''}${listFile ? ` (all in ${listFile})` : ''}`;
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
        force: { type: 'boolean', default: false }, device: { type: 'string' }, recursive: { type: 'boolean', default: false },
        'follow-links': { type: 'boolean', default: false },
        reuse: { type: 'boolean', default: false }, 'max-out-of-focus': { type: 'string' }, 'min-tissue': { type: 'string' },
        kernel: { type: 'string' }, 'view-size': { type: 'string' }, backend: { type: 'string' }, 'exit-on': { type: 'string', default: 'new' },
      },
    });
    if (positionals.length === 0) throw new UsageError('no slides given (see fqa-scan scan --help)');
    if (values.force && values.reuse) throw new UsageError('--force and --reuse contradict each other: give one');
    if (values['follow-links'] && !values.recursive) throw new UsageError('--follow-links only applies to the walk of subfolders: give --recursive with it');
    const device = expectOneOf(values.device ?? 'auto', 'device', deviceNames);
    const exitOnAll = expectOneOf(values['exit-on'], 'exit-on', ['new', 'all'] as const) === 'all';
    const shareNotices: string[] = [];
    const modelFile = values.model ?? DEFAULT_MODEL_PATH;
    const options: ScanOptions = {
      model: modelFile,
      patchSize: parseIntegerOption(values.patch, 'patch', 8, 4096),
      stride: parseIntegerOption(values.stride, 'stride', 1, 4096),
      workers: parseIntegerOption(values.workers, 'workers', 1, 256),
      mpp: parseNumberOption(values.mpp, 'mpp', { range: MPP_RANGE }),
      threshold: parseNumberOption(values.threshold, 'threshold'),
      maxOutOfFocus: parsePercent(values['max-out-of-focus'], 'max-out-of-focus', (line) => shareNotices.push(line)),
      minTissue: parsePercent(values['min-tissue'], 'min-tissue', (line) => shareNotices.push(line)),
      kernel: values.kernel === undefined ? undefined : expectOneOf(values.kernel, 'kernel', kernelNames),
      device,
      backend: values.backend === undefined ? undefined : expectOneOf(values.backend, 'backend', ['auto', ...BACKEND_NAMES] as const),
    };
    validateScanOptions(options);
    const viewSize = parseIntegerOption(values['view-size'], 'view-size', 0, 65536) ?? DEFAULT_VIEW_SIZE;
    // The model is read once up front: a bad model file is one error before any slide, and the
    // report key needs its bytes.
    const model = await loadModel(modelFile);
    const modelSha256 = createHash('sha256').update(readFileSync(modelFile)).digest('hex');
    const resolvedOptions = resolveScanOptions(model.header, options);
    // Checked once, after the other options: --device cuda without a GPU is a usage error before any
    // slide is read. A CPU-only build is quietly the CPU; a CUDA build without a GPU, or an explicit
    // --device auto, says so, once per run.
    const resolved = resolveDevice(device);
    const notices = new Set<string>();
    const notice = (text: string | null) => {
      if (text && !notices.has(text)) process.stderr.write(`fqa-scan: note: ${text}\n`);
      if (text) notices.add(text);
    };
    if (resolved.cudaBuild || values.device === 'auto') notice(resolved.notice);
    for (const line of shareNotices) notice(line);
    const cores = Math.max(1, availableParallelism());
    if (options.workers !== undefined && options.workers > cores) notice(`--workers ${options.workers} capped at the ${cores} cores`);

    const { slides, skipped } = expandInputs(positionals, { recursive: values.recursive, followLinks: values['follow-links'], out: values.out });
    const skippedFile = path.join(values.out, 'skipped.tsv');
    if (slides.length === 0) {
      const why = skipped.length === 0 ? 'no files found' : skippedLine(skipped);
      throw new InputError(`nothing to scan in ${positionals.join(', ')}: ${why}`);
    }
    ensureWritableFolder(values.out);
    // Report names before anything is written: a folder fqa did not make is refused when it holds
    // one of them (reportStem: allocateStem only adds suffixes to names an fqa folder already holds).
    await writeOutput(values.out, 'its marker', async () => claimOutputFolder(values.out, slides.map(reportStem)));
    // Released when the process exits, however the run ends; a run killed outright leaves a lock
    // that the next run finds stale (its pid is gone).
    process.once('exit', await writeOutput(values.out, 'its lock', async () => lockOutputFolder(values.out)));
    removeAbandonedStages(values.out);
    await writeOutput(values.out, 'skipped.tsv', () => writeAtomic(skippedFile, ['file\treason', ...skipped.map((s) => `${tsvField(s.file)}\t${tsvField(s.reason)}`)].join('\n') + '\n'));
    if (skipped.length > 0) process.stderr.write(`fqa-scan: ${skippedLine(skipped, skippedFile)}\n`);

    const folder = readReportFolder(values.out);
    const taken = new Map([...folder.values()].map((r) => [r.stem, r.input]));
    // Inputs the folder already has a report for: looked up per slide, so a set rather than a scan of every report.
    const reportedInputs = new Set([...folder.values()].map((r) => r.input));
    let worstVerdict = 0;
    let unreadable = false;
    let internalError = false;
    // Report names this run wrote: summary.tsv's and the index's `new` column.
    const scannedNow = new Set<string>();
    // A full or read-only folder stops the run: every later slide would fail the same way. The
    // reports already there are kept, and the summary is still written if it fits.
    let outputFailure: OutputError | null = null;
    let notScanned = 0;
    const tty = process.stderr.isTTY;
    for (const [i, slide] of slides.entries()) {
      if (outputFailure) {
        notScanned++;
        continue;
      }
      let fingerprint: string | null = null;
      try {
        await requireRegularFile(slide, 'slide'); // a FIFO named on the command line would block the open below
        fingerprint = await slideFingerprint(slide);
      } catch {
        // unreadable: scanSlide below says why, in its own words
      }
      const key = fingerprint === null ? null : reportKey(fingerprint, modelSha256, resolvedOptions);
      // A slide moved (a folder into archive/) keeps its report under its old name, not a second row.
      const moved = fingerprint === null || reportedInputs.has(path.resolve(slide)) ? null : await writeOutput(values.out, 'a moved slide\'s report', () => adoptMovedReport(values.out, folder, taken, slide, fingerprint!));
      if (moved !== null) reportedInputs.add(path.resolve(slide));
      const stem = moved ?? allocateStem(slide, taken);
      // tsvField: a control character in a slide's name must not drive the terminal or break the line.
      const step = `[${i + 1}/${slides.length}] ${tsvField(slide)}`;
      const previous = folder.get(stem);
      if (!values.force && reportStands(previous, key, values.reuse)) {
        const why = moved !== null ? `up to date (slide moved from ${tsvField(previous.summaryRow.split('\t')[0] ?? '')})` : previous.key === key ? 'up to date' : 'kept (--reuse; made with another model, options or slide content)';
        process.stderr.write(`${step}: ${previous.verdict}, report ${why}: ${stem}.json\n`);
        if (exitOnAll && previous.verdict === 'error') unreadable = true;
        else if (exitOnAll && previous.verdict === 'too-small') worstVerdict = 1;
        else if (exitOnAll && previous.verdict !== 'pass') worstVerdict = 1;
        if (values.json) process.stdout.write(keptReportJson(values.out, stem) + '\n');
        continue;
      }
      // The zoomable view is written while the slide is scanned (it needs only the slide's pixels).
      const view = startSlideView(values.out, stem, slide, viewSize);
      try {
        const result = await scanSlide(slide, {
          ...options,
          onProgress: tty
            ? (p) => {
                const width = 30;
                const filled = Math.round((width * p.regionsDone) / Math.max(1, p.regions));
                process.stderr.write(`\r[${i + 1}/${slides.length}] ${path.basename(slide)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.regionsDone}/${p.regions} regions`);
              }
            : undefined,
        });
        if (tty) process.stderr.write('\r\x1b[K');
        notice(result.deviceNotice);
        await writeSlideReports(values.out, stem, result, { viewSize, view: view ?? undefined, provenance: { input: path.resolve(slide), fingerprint: fingerprint!, key: key! } });
        scannedNow.add(stem);
        if (result.summary.verdict !== 'pass') worstVerdict = 1;
        const s = result.summary;
        const blur = s.outOfFocusFraction === null ? 'n/a' : `${(100 * s.outOfFocusFraction).toFixed(1)}%`;
        process.stderr.write(`${step}: ${s.verdict}, ${s.patchesScored} patches, out of focus ${blur} of tissue, ${result.timings.totalSeconds.toFixed(1)} s -> ${stem}.html\n`);
        if (values.json) process.stdout.write(summaryJson(result, { run: 'scanned', report: stem }).replace(/\n\s*/g, ' ').trim() + '\n');
      } catch (err) {
        await view?.discard();
        if (err instanceof FqaError && err.exitCode === 2) throw err; // a usage error applies to every slide
        if (tty) process.stderr.write('\r\x1b[K');
        // Not the slide's fault: its previous report (if any) stays, without an error row over it.
        if (err instanceof OutputError) {
          outputFailure = err;
          notScanned++;
          continue;
        }
        // Anything else is this slide's error report; the batch goes on. An error fqa did not expect
        // (a bug) says so and makes the run's exit code 70 once every slide is done.
        const message = err instanceof FqaError ? err.message : `${slide}: internal error: ${(err as Error).message ?? String(err)}`;
        process.stderr.write(`fqa-scan: ${tsvField(message)}\n`);
        try {
          const identity = fingerprint !== null && key !== null ? { fingerprint, key } : undefined;
          const verdict = err instanceof TooSmallError ? 'too-small' : 'error';
          await writeOutput(values.out, `the error report of ${slide}`, () => writeErrorReport(values.out, stem, slide, message, identity, verdict));
          scannedNow.add(stem);
          if (values.json) process.stdout.write(JSON.stringify({ file: slide, run: verdict === 'error' ? 'error' : 'scanned', report: stem, summary: { verdict }, error: message }) + '\n');
        } catch (writeErr) {
          if (!(writeErr instanceof OutputError)) throw writeErr;
          outputFailure = writeErr;
        }
        if (err instanceof TooSmallError) worstVerdict = 1; // readable, but nothing to score: a slide that does not pass
        else if (err instanceof FqaError) unreadable = true;
        else internalError = true;
      }
    }
    const date = new Date().toISOString();
    const header = [
      `# fqa ${nativeVersion}`,
      `# model: ${tsvField(model.header.name)} (sha256 ${modelSha256.slice(0, 12)}) ${tsvField(path.resolve(modelFile))}`,
      // The options as a reader of summary.tsv sees them: shares in percent, as typed on the command line.
      `# options: ${JSON.stringify(optionsInPercent(resolvedOptions))}`,
      `# date: ${date}`,
      '# rows: every slide reported in this folder, earlier runs included; each row\'s model and options are in <report>.json',
    ];
    try {
      await writeOutput(values.out, 'summary.tsv', () => writeSummaryTsv(values.out, header, scannedNow));
      await writeOutput(values.out, 'index.html', () => writeIndexPage(values.out, { date, model: model.header.name, maxOutOfFocusPct: fractionToPercent(resolvedOptions.maxOutOfFocus) }, scannedNow));
      process.stderr.write(`report: ${path.join(values.out, 'index.html')}\n`);
    } catch (err) {
      if (!(err instanceof OutputError)) throw err;
      outputFailure ??= err;
    }
    if (outputFailure) {
      const left = notScanned > 0 ? `; ${notScanned} slide${notScanned === 1 ? '' : 's'} got no new report` : '';
      throw new OutputError(`${outputFailure.message}${left}; the reports already in the folder are kept`);
    }
    return internalError ? 70 : unreadable ? 3 : worstVerdict;
  },
};

/**
 * A kept report as one --json line: the slide's JSON report without its rows, marked "run": "kept".
 * A report of an earlier fqa is printed as this one writes it (shares in percent), so every line of
 * a run reads the same.
 */
function keptReportJson(dir: string, stem: string): string {
  const { summaryRow: _row, ...report } = upgradeReportJson(JSON.parse(readFileSync(path.join(dir, `${stem}.json`), 'utf8')) as Record<string, unknown>);
  return JSON.stringify({ ...report, run: 'kept', report: stem });
}

/** Runs a write into the output folder; a full, over-quota or read-only folder becomes an OutputError naming `what`. */
async function writeOutput<T>(dir: string, what: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof OutputError) throw err;
    const code = outputFullCode(err);
    throw code === null ? err : outputFullError(dir, code, what, err);
  }
}
