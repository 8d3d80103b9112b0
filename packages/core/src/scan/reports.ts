/**
 * Scan reports: per-slide patch TSV, JSON summary, images, GeoJSON and HTML page. Every file is
 * written atomically (temp file + rename), so an interrupted run never leaves a half-written one.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { version as fqaVersion } from '@fqa/native';
import { writeAtomic } from '../atomic-write.js';
import { geoJsonFeatures } from './geojson.js';
import { DEFAULT_VIEW_SIZE, writeDeepZoom, type DeepZoomView } from '../report/deepzoom.js';
import { writeViewerAssets } from '../report/html-common.js';
import { writeSlidePage } from '../report/slide-page.js';
import { heatmapPng, overviewPng } from './images.js';
import type { ScanResult } from './scan-slide.js';

/** Output file stem of a slide: its name without the extension. */
export function reportStem(file: string): string {
  return path.basename(file).replace(/\.[^.]+$/, '');
}

/** One row per scored patch: x, y, width, height in level-0 pixels, score, tissue fraction. */
export function scoresTsv(r: ScanResult): string {
  const lines = ['x\ty\twidth\theight\tscore\ttissue_fraction'];
  const k = r.level0PerWorkingPixel;
  const size = Math.round(r.patchSize * k);
  for (let row = 0; row < r.rows; row++) {
    for (let col = 0; col < r.columns; col++) {
      const s = r.scores[row * r.columns + col]!;
      if (Number.isNaN(s)) continue;
      lines.push(`${Math.round(col * r.stride * k)}\t${Math.round(row * r.stride * k)}\t${size}\t${size}\t${s.toFixed(6)}\t${r.tissue[row * r.columns + col]!.toFixed(4)}`);
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
        options: r.options,
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
      summary: r.summary,
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
const clean = (s: string) => s.replace(/[\t\n]/g, ' ');

/** The slide's summary.tsv row; `report` is its report name (<report>.json etc. in the folder). */
export function summaryRow(r: ScanResult, report = ''): string {
  const s = r.summary;
  return [
    clean(r.file), r.vendor, String(r.width), String(r.height), num(r.slideMpp, 4), num(100 * s.tissueFraction, 2), String(s.patchesScored),
    num(s.outOfFocusFraction === null ? null : 100 * s.outOfFocusFraction, 2), num(s.mean, 4), num(s.p10, 4), num(s.p90, 4), s.verdict,
    r.timings.totalSeconds.toFixed(2), clean(r.warnings.join('; ')), report,
  ].join('\t');
}

/** A row for a slide that could not be read: verdict "error", the message in warnings. */
export function errorRow(file: string, message: string, report = ''): string {
  return [clean(file), '', '', '', '', '', '', '', '', '', '', 'error', '', clean(message), report].join('\t');
}

/** The GeoJSON FeatureCollection as JSON text, one feature per chunk. */
function* geoJsonChunks(r: ScanResult): Generator<string> {
  yield '{"type":"FeatureCollection","features":[';
  let first = true;
  for (const feature of geoJsonFeatures(r)) {
    yield (first ? '' : ',') + JSON.stringify(feature);
    first = false;
  }
  yield ']}\n';
}

/**
 * The report of a slide that could not be read: <stem>.json with verdict "error" and the message,
 * so the folder's summary and HTML report keep listing it until a later run reads it.
 */
export async function writeErrorReport(dir: string, stem: string, file: string, message: string): Promise<void> {
  const json = { file, provenance: { fqa: fqaVersion, date: new Date().toISOString(), input: path.resolve(file), key: null }, summary: { verdict: 'error' }, error: message, summaryRow: errorRow(file, message, stem) };
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
}

/**
 * Every per-slide report file in `dir`: <stem>.scores.tsv, .heatmap.png, .overview.png, .geojson,
 * .thumb.jpg, the HTML page <stem>.html with its pyramid (<stem>.dzi, <stem>_files/), and
 * <stem>.json last, so its presence marks a slide whose reports are complete.
 */
export async function writeSlideReports(dir: string, stem: string, r: ScanResult, options: SlideReportOptions = {}): Promise<void> {
  const file = (suffix: string) => path.join(dir, `${stem}${suffix}`);
  await mkdir(dir, { recursive: true });
  await writeAtomic(file('.scores.tsv'), scoresTsv(r));
  await writeAtomic(file('.heatmap.png'), await heatmapPng(r));
  await writeAtomic(file('.overview.png'), await overviewPng(r));
  await writeAtomic(file('.geojson'), geoJsonChunks(r));
  const { width, height, thumbnail } = r.tissueMask;
  await writeAtomic(file('.thumb.jpg'), await sharp(thumbnail, { raw: { width, height, channels: 3 } }).resize(160, 160, { fit: 'inside' }).jpeg({ quality: 80 }).toBuffer());
  const viewSize = options.viewSize ?? DEFAULT_VIEW_SIZE;
  // The zoomable view is a convenience: a slide it cannot be made for still gets its report.
  let view: DeepZoomView | null = null;
  let noView = viewSize > 0 ? 'the slide was not given as a file' : 'no zoomable view was asked for (view size 0)';
  if (viewSize > 0 && existsSync(r.file)) {
    try {
      view = await writeDeepZoom(r.file, dir, stem, viewSize);
    } catch (err) {
      noView = (err as Error).message;
    }
  }
  await writeViewerAssets(dir);
  await writeSlidePage(dir, stem, r, view ?? noView, { overview: `${stem}.overview.png`, scores: `${stem}.scores.tsv`, geojson: `${stem}.geojson`, json: `${stem}.json` });
  await writeAtomic(file('.json'), summaryJson(r, { summaryRow: summaryRow(r, stem) }, options.provenance));
}
