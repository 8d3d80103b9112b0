/**
 * Scan reports: per-slide patch TSV and JSON summary, and the run's summary.tsv. Every file is
 * written atomically (temp file + rename), so an interrupted run never leaves a half-written one.
 */
import path from 'node:path';
import { writeAtomic } from '../atomic-write.js';
import { scanGeoJson } from './geojson.js';
import { heatmapPng, overlayPng } from './images.js';
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

export function summaryJson(r: ScanResult, extra: Record<string, unknown> = {}): string {
  const k = r.level0PerWorkingPixel;
  return JSON.stringify(
    {
      file: r.file,
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
  'mean_score', 'p10_score', 'p90_score', 'verdict', 'seconds', 'warnings',
] as const;

const num = (v: number | null, digits: number) => (v === null || Number.isNaN(v) ? '' : v.toFixed(digits));
const clean = (s: string) => s.replace(/[\t\n]/g, ' ');

export function summaryRow(r: ScanResult): string {
  const s = r.summary;
  return [
    clean(r.file), r.vendor, String(r.width), String(r.height), num(r.slideMpp, 4), num(100 * s.tissueFraction, 2), String(s.patchesScored),
    num(s.outOfFocusFraction === null ? null : 100 * s.outOfFocusFraction, 2), num(s.mean, 4), num(s.p10, 4), num(s.p90, 4), s.verdict,
    r.timings.totalSeconds.toFixed(2), clean(r.warnings.join('; ')),
  ].join('\t');
}

/** A row for a slide that could not be read: verdict "error", the message in warnings. */
export function errorRow(file: string, message: string): string {
  return [clean(file), '', '', '', '', '', '', '', '', '', '', 'error', '', clean(message)].join('\t');
}

/**
 * Every per-slide report file in `dir`: <stem>.scores.tsv, .heatmap.png, .overlay.png, .geojson,
 * and <stem>.json last, so its presence marks a slide whose reports are complete.
 */
export async function writeSlideReports(dir: string, stem: string, r: ScanResult, extra: Record<string, unknown> = {}): Promise<void> {
  const file = (suffix: string) => path.join(dir, `${stem}${suffix}`);
  await writeAtomic(file('.scores.tsv'), scoresTsv(r));
  await writeAtomic(file('.heatmap.png'), await heatmapPng(r));
  await writeAtomic(file('.overlay.png'), await overlayPng(r));
  await writeAtomic(file('.geojson'), JSON.stringify(scanGeoJson(r)) + '\n');
  await writeAtomic(file('.json'), summaryJson(r, extra));
}
