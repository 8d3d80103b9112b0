/**
 * Scan reports: per-slide patch TSV, JSON summary, images, GeoJSON and HTML page. Every file is
 * written atomically (temp file + rename), so an interrupted run never leaves a half-written one.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { version as fqaVersion } from '@fqa/native';
import { writeAtomic } from '../atomic-write.js';
import { patchUnionGrid } from './flagged-area.js';
import { geoJsonChunks } from './geojson.js';
import { DEFAULT_VIEW_SIZE, writeDeepZoom, type DeepZoomView } from '../report/deepzoom.js';
import { writeViewerAssets } from '../report/html-common.js';
import { STAGE_PREFIX, hostTag, outputFullCode, outputFullError } from '../report/output-folder.js';
import { writeSlidePage } from '../report/slide-page.js';
import { heatmapPng, heatmapRgba, startOverview } from './images.js';
import { fractionToPercent, optionsInPercent, summaryInPercent } from './report-json.js';
import { REPORT_FILES } from './report-files.js';
import { usableTissue, usableTissueGeoJson, usableTissuePng } from './usable-tissue.js';
import type { ScanResult } from './scan-slide.js';

/**
 * Longest report name in bytes. NAME_MAX is 255 bytes, and the longest name fqa makes from a stem is
 * <stem>-<8 hex> (allocateStem) + `.overview.png`: 200 leaves room for both and for a suffix or two
 * added later.
 */
export const MAX_STEM_BYTES = 200;

/**
 * Characters never put in a report name: control characters (they break terminals, TSV rows and
 * libvips's XML), `#`, `?` and `%` (they end or escape a URL path, so a link to the page would miss
 * it), `:` (a leading `javascript:` would make a link a script; Windows shares refuse it), `\`, and
 * U+FFFD, which stands for bytes that were not UTF-8.
 */
const UNSAFE_IN_NAME = /[\x00-\x1f\x7f-\x9f#?%:\\\ufffd]/g;

/** `text` cut to at most `bytes` UTF-8 bytes, never inside a character. */
function truncateUtf8(text: string, bytes: number): string {
  let used = 0;
  let end = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch);
    if (used + size > bytes) break;
    used += size;
    end += ch.length;
  }
  return text.slice(0, end);
}

/**
 * Report name of a slide: its file name without the extension, made safe for a file name and a link:
 * unsafe characters (UNSAFE_IN_NAME) and a leading `.` become `_`, `index` becomes `index_`, and a
 * name longer than MAX_STEM_BYTES is cut and gets 8 hex digits of the whole file name, so long names
 * that share their start stay apart. Two names that differ only in replaced characters or in case are told
 * apart by allocateStem.
 */
export function reportStem(file: string): string {
  const name = path.basename(file);
  let stem = name.replace(/\.[^.]+$/, '').replace(UNSAFE_IN_NAME, '_').replace(/^\./, '_') || '_';
  // <stem>.html of a slide named index would be the folder's index.html.
  if (stem.toLowerCase() === 'index') stem += '_';
  if (Buffer.byteLength(stem) <= MAX_STEM_BYTES) return stem;
  return `${truncateUtf8(stem, MAX_STEM_BYTES - 9)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/**
 * The escaping of every text field in fqa's TSV files (summary.tsv, skipped.tsv, the `#` header):
 * backslash becomes `\\`, tab `\t`, newline `\n`, carriage return `\r`, and any other control
 * character (U+0000–U+001F, U+007F) `\xHH`, so a field never splits a row or a column.
 */
export function tsvField(text: string): string {
  return text.replace(/[\\\x00-\x1f\x7f]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The inverse of tsvField. */
export function unescapeTsvField(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[tnr\\])/g, (_, e: string) =>
    e === 't' ? '\t' : e === 'n' ? '\n' : e === 'r' ? '\r' : e === '\\' ? '\\' : String.fromCharCode(parseInt(e.slice(1), 16)));
}

/** One row per scored patch: x, y, width, height in level-0 pixels, score, the patch's tissue in percent. */
export function scoresTsv(r: ScanResult): string {
  const lines = ['x\ty\twidth\theight\tscore\ttissue_pct'];
  const k = r.level0PerWorkingPixel;
  const size = Math.round(r.patchSize * k);
  for (let row = 0; row < r.rows; row++) {
    for (let col = 0; col < r.columns; col++) {
      const s = r.scores[row * r.columns + col]!;
      if (Number.isNaN(s)) continue;
      lines.push(`${Math.round(col * r.stride * k)}\t${Math.round(row * r.stride * k)}\t${size}\t${size}\t${s.toFixed(6)}\t${(100 * r.tissue[row * r.columns + col]!).toFixed(2)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Where a report came from, recorded in each slide's JSON. */
export interface ReportProvenance {
  /** Absolute path of the slide. */
  input: string;
  /** Content fingerprint of the slide (slideFingerprint) and the report key (reportKey). */
  fingerprint: string;
  key: string;
}

/**
 * The slide's JSON report. Shares are percentages with the unit in the name (summary.tissuePct,
 * provenance.options.maxOutOfFocusPct, ...: report-json.ts), like the command line and summary.tsv.
 */
export function summaryJson(r: ScanResult, extra: Record<string, unknown> = {}, provenance?: ReportProvenance): string {
  const k = r.level0PerWorkingPixel;
  return JSON.stringify(
    {
      file: r.file,
      provenance: provenance && {
        fqa: fqaVersion,
        date: new Date().toISOString(),
        ...provenance,
        model: r.model,
        options: optionsInPercent(r.options),
        device: r.device,
        deviceNotice: r.deviceNotice,
        kernel: r.kernel,
        node: process.version,
      },
      vendor: r.vendor,
      width: r.width,
      height: r.height,
      level: r.level,
      slideMpp: r.slideMpp,
      mpp: r.mpp,
      patch: { size: r.patchSize, stride: r.stride, sizeLevel0: r.patchSize * k, strideLevel0: r.stride * k, columns: r.columns, rows: r.rows },
      summary: summaryInPercent(r.summary),
      timings: r.timings,
      kernel: r.kernel,
      reader: r.reader,
      warnings: r.warnings,
      ...extra,
    },
    null,
    1,
  ) + '\n';
}

export const SUMMARY_COLUMNS = [
  'slide', 'vendor', 'width', 'height', 'mpp', 'tissue_pct', 'patches_scored', 'out_of_focus_pct_of_tissue',
  'mean_score', 'p10_score', 'p90_score', 'verdict', 'seconds', 'warnings', 'report',
] as const;

const num = (v: number | null, digits: number) => (v === null || Number.isNaN(v) ? '' : v.toFixed(digits));

/** The slide's summary.tsv row; `report` is its report name (<report>.json etc. in the folder). */
export function summaryRow(r: ScanResult, report = ''): string {
  const s = r.summary;
  return [
    tsvField(r.file), r.vendor, String(r.width), String(r.height), num(r.slideMpp, 4), num(100 * s.tissueFraction, 2), String(s.patchesScored),
    num(s.outOfFocusFraction === null ? null : 100 * s.outOfFocusFraction, 2), num(s.mean, 4), num(s.p10, 4), num(s.p90, 4), s.verdict,
    r.timings.totalSeconds.toFixed(2), tsvField(r.warnings.join('; ')), report,
  ].join('\t');
}

/** A row for a slide that could not be read: verdict "error", the message in warnings. */
export function errorRow(file: string, message: string, report = '', verdict: 'error' | 'too-small' = 'error'): string {
  return [tsvField(file), '', '', '', '', '', '', '', '', '', '', verdict, '', tsvField(message), report].join('\t');
}

/**
 * The report of a slide that could not be read: <stem>.json with verdict "error" and the message,
 * so the folder's summary and HTML report keep listing it until a later run reads it.
 */
export async function writeErrorReport(dir: string, stem: string, file: string, message: string, identity?: { fingerprint: string; key: string }, verdict: 'error' | 'too-small' = 'error'): Promise<void> {
  // With the slide's fingerprint and key, a nightly run knows the same unchanged file would fail the
  // same way, and keeps this report instead of retrying (and alerting) every night.
  const provenance = { fqa: fqaVersion, date: new Date().toISOString(), input: path.resolve(file), fingerprint: identity?.fingerprint ?? null, key: identity?.key ?? null };
  const json = { file, provenance, summary: { verdict }, error: message, summaryRow: errorRow(file, message, stem, verdict) };
  await writeAtomic(path.join(dir, `${stem}.json`), JSON.stringify(json, null, 1) + '\n');
}

export interface SlideReportOptions {
  /** The input's absolute path, content fingerprint and report key, recorded in the JSON. */
  provenance?: ReportProvenance;
  /**
   * Longest side in pixels of the zoomable view on the slide's HTML page (default
   * DEFAULT_VIEW_SIZE); 0 writes no pyramid and the page shows the overview figure instead.
   */
  viewSize?: number;
  /** The view, started while the slide was scanned (startSlideView); without it the view is written now. */
  view?: PendingView;
}

/** A slide's zoomable view being written in a staging folder of its own while the slide is scanned. */
export interface PendingView {
  /** Moves the finished view's files into `stage` (the report's staging folder): the view, or why there is none. */
  moveInto(stage: string): Promise<DeepZoomView | string>;
  /** Stops the view if it is still being written and deletes its folder (always call it once the report is written or failed). */
  discard(): Promise<void>;
}

/**
 * Starts writing the zoomable view of `file` into a staging folder in `dir` now, so that its decoding
 * and JPEG encoding overlap the slide's scan; writeSlideReports takes it with `view`. Null when no
 * view is asked for (`viewSize` 0) or the slide is not a file.
 */
export function startSlideView(dir: string, stem: string, file: string, viewSize = DEFAULT_VIEW_SIZE): PendingView | null {
  if (viewSize <= 0 || !existsSync(file)) return null;
  const abort = new AbortController();
  const folder = mkdir(dir, { recursive: true }).then(() => mkdtemp(path.join(dir, `${STAGE_PREFIX}${hostTag}.${process.pid}.`)));
  // The view is a convenience: a slide it cannot be made for still gets its report, with the reason.
  // A full disk is not the slide's fault, though: that stops the report.
  const result: Promise<DeepZoomView | string> = folder.then((f) => writeDeepZoom(file, f, stem, viewSize, abort.signal)).catch((err: unknown) => {
    if (outputFullCode(err) !== null) throw err;
    return (err as Error).message;
  });
  result.catch(() => undefined); // its rejection is seen by moveInto or discard
  return {
    async moveInto(stage) {
      const view = await result;
      if (typeof view !== 'string') {
        const from = await folder;
        await rename(path.join(from, `${stem}.dzi`), path.join(stage, `${stem}.dzi`));
        await rename(path.join(from, `${stem}_files`), path.join(stage, `${stem}_files`));
      }
      return view;
    },
    async discard() {
      abort.abort();
      await result.catch(() => undefined);
      const f = await folder.catch(() => null);
      if (f !== null) await rm(f, { recursive: true, force: true });
    },
  };
}

/**
 * Every per-slide report file in `dir`: <stem>.scores.tsv, .heatmap.png, .overview.png, .geojson,
 * .thumb.jpg, the HTML page <stem>.html with its pyramid (<stem>.dzi, <stem>_files/), and
 * <stem>.json last, so its presence marks a slide whose reports are complete.
 *
 * All of them are first written into a staging folder inside `dir` and then renamed into place, so
 * a run that fails (disk full) or is killed while writing leaves the slide's previous report as it
 * was; while the files are swapped the slide has no <stem>.json, so a run killed then rescans it.
 * A full, over-quota or read-only folder is an OutputError naming it.
 */
export async function writeSlideReports(dir: string, stem: string, r: ScanResult, options: SlideReportOptions = {}): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const stage = await mkdtemp(path.join(dir, `${STAGE_PREFIX}${hostTag}.${process.pid}.`));
    try {
      await stageSlideReports(dir, stage, stem, r, options);
      await swapInStagedReports(stage, dir, stem);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  } catch (err) {
    await options.view?.discard();
    const code = outputFullCode(err);
    throw code === null ? err : outputFullError(dir, code, `the report of ${r.file}`, err);
  }
}

/**
 * Writes the slide's report files, its JSON included, into `stage` (and the viewer's script into `dir`).
 *
 * The files besides the JSON do not depend on each other and are written at the same time: sharp
 * encodes the PNGs and the JPEG on libuv's threads while the main thread builds the TSV, GeoJSON and
 * HTML text, so the report takes about as long as its slowest file instead of the sum of all of them.
 * The image work is started first, to have it running while the text is built.
 */
async function stageSlideReports(dir: string, stage: string, stem: string, r: ScanResult, options: SlideReportOptions): Promise<void> {
  const file = (suffix: string) => path.join(stage, `${stem}${suffix}`);
  // The figure's title is SVG text, where control characters are not allowed at all (libvips stops
  // with an XML error): they are shown as U+FFFD.
  const printable = (text: string) => text.replace(/[\x00-\x1f\x7f]/g, '\ufffd');
  // First: the overview's text renders on sharp's threads while the rest is computed here.
  const finishOverview = startOverview({ ...r, model: { ...r.model, name: printable(r.model.name) } }, printable(r.file));
  // The heatmap's pixels and PNG are made once: the heatmap file, the overview figure and the
  // page's heatmap layer all show them.
  const heat = heatmapRgba(r);
  const heatPng = heatmapPng(r, heat);
  // The patch grid's cells (flagged, scored) that the GeoJSON and the usable tissue are drawn on.
  const union = patchUnionGrid(r);
  // For tiling pipelines: the tissue that was scored and is in focus (none without a threshold).
  const usable = usableTissue(r, union);
  const usableRecord = usable && {
    png: `${stem}.usable.png`, geojson: `${stem}.usable.geojson`, width: usable.width, height: usable.height,
    level0PerPixel: usable.level0PerPixel, micronsPerPixel: usable.micronsPerPixel,
    usablePctOfTissue: usable.usableFractionOfTissue === null ? null : fractionToPercent(usable.usableFractionOfTissue),
  };
  await settleAll([
    async () => writeAtomic(file('.heatmap.png'), await heatPng),
    async () => writeAtomic(file('.overview.png'), await finishOverview(heat)),
    async () => {
      const { width, height, thumbnail } = r.tissueMask;
      await writeAtomic(file('.thumb.jpg'), await sharp(thumbnail, { raw: { width, height, channels: 3 } }).resize(160, 160, { fit: 'inside' }).jpeg({ quality: 80 }).toBuffer());
    },
    async () => { if (usable !== null) await writeAtomic(file('.usable.png'), await usableTissuePng(usable)); },
    async () => writeAtomic(file('.scores.tsv'), scoresTsv(r)),
    async () => writeAtomic(file('.geojson'), geoJsonChunks(r, union)),
    async () => { if (usable !== null) await writeAtomic(file('.usable.geojson'), JSON.stringify(usableTissueGeoJson(r, union)) + '\n'); },
    async () => writeViewerAssets(dir),
    async () => {
      // Without a view started during the scan, the view is written now (in a folder inside the stage).
      const pending = options.view ?? startSlideView(stage, stem, r.file, options.viewSize ?? DEFAULT_VIEW_SIZE);
      let view: DeepZoomView | string = (options.viewSize ?? DEFAULT_VIEW_SIZE) > 0 ? 'the slide was not given as a file' : 'no zoomable view was asked for (view size 0)';
      if (pending !== null) {
        try {
          view = await pending.moveInto(stage);
        } finally {
          await pending.discard();
        }
      }
      await writeSlidePage(stage, stem, r, view, { overview: `${stem}.overview.png`, scores: `${stem}.scores.tsv`, geojson: `${stem}.geojson`, json: `${stem}.json` }, await heatPng);
    },
  ]);
  await writeAtomic(file('.json'), summaryJson(r, { summaryRow: summaryRow(r, stem), usableTissue: usableRecord }, options.provenance));
}

/**
 * Starts every task, waits for all of them, and then throws the first failure, if any: a failed file
 * must not let the caller delete the staging folder while the others are still writing into it.
 */
async function settleAll(tasks: Array<() => Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(tasks.map((task) => task()));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Renames the staged report into `dir`: the previous <stem>.json out first (the slide is not done
 * while its files change), then each file over its previous version, the new view folder in place of
 * the previous one (which goes into `stage`, to be deleted with it; a report without a view drops the
 * previous view), and the new JSON last. Renames within one folder need no space, so a full disk
 * fails before this, while staging.
 */
async function swapInStagedReports(stage: string, dir: string, stem: string): Promise<void> {
  const staged = (suffix: string) => path.join(stage, `${stem}${suffix}`);
  const target = (suffix: string) => path.join(dir, `${stem}${suffix}`);
  const previousJson = path.join(stage, 'previous.json');
  const hadJson = await renameIfExists(target('.json'), previousJson);
  try {
    for (const suffix of REPORT_FILES) {
      if (existsSync(staged(suffix))) await rename(staged(suffix), target(suffix));
      else await rm(target(suffix), { force: true });
    }
    await renameIfExists(target('_files'), path.join(stage, 'previous_files'));
    await renameIfExists(staged('_files'), target('_files'));
    await rename(staged('.json'), target('.json'));
  } catch (err) {
    // Keep the slide's previous report marked done rather than lose it (its files may be newer).
    if (hadJson && !existsSync(target('.json'))) await rename(previousJson, target('.json')).catch(() => undefined);
    throw err;
  }
}

/** rename(from, to) when `from` exists; whether it did. */
async function renameIfExists(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
