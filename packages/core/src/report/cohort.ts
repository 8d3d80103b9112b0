/**
 * The cohort view of index.html: the out-of-focus share of every slide, grouped by the night fqa
 * scanned it, by scanner format (vendor) and by folder, so a bad batch or scanner stands out (what
 * HistoQC's cohort plot is for). One strip per group (a dot per slide on a 0-100 % axis, the limit
 * as a line), and a group is marked when its slides fail far more often than the rest of the folder.
 */
import path from 'node:path';
import { escapeHtml } from './html-common.js';

/** What the cohort needs of an index row (folder columns by name). */
export type CohortRow = Record<string, string>;

export interface CohortGroup {
  key: string;
  slides: number;
  failed: number;
  /** Out-of-focus shares (%) of the group's scored slides. */
  shares: number[];
  /** Whether the group fails far more often than the others (see isOutlierGroup). */
  outlier: boolean;
}

const GROUPINGS: { title: string; key: (row: CohortRow) => string }[] = [
  { title: 'night scanned by fqa (UTC)', key: (row) => (row.scanned_at ?? '').slice(0, 10) || 'unknown' },
  { title: 'slide format (scanner vendor)', key: (row) => row.vendor || 'unknown' },
  { title: 'folder', key: (row) => path.dirname(row.slide ?? '') },
];

/**
 * A group whose failure count is more than 3 standard deviations above what the folder's overall
 * failure rate predicts for a group of its size (binomial), with at least 2 failures: a batch or a
 * scanner worth a look, not one unlucky slide.
 */
export function isOutlierGroup(failed: number, slides: number, overallRate: number): boolean {
  if (failed < 2 || overallRate <= 0 || overallRate >= 1) return false;
  const expected = slides * overallRate;
  return (failed - expected) / Math.sqrt(slides * overallRate * (1 - overallRate)) > 3;
}

/** Slides with a verdict about focus (pass/fail); the others have no share to plot. */
const judged = (row: CohortRow) => row.verdict === 'pass' || row.verdict === 'fail';

export function cohortGroups(rows: CohortRow[], key: (row: CohortRow) => string): CohortGroup[] {
  const scored = rows.filter(judged);
  const overallRate = scored.length === 0 ? 0 : scored.filter((r) => r.verdict === 'fail').length / scored.length;
  const groups = new Map<string, CohortRow[]>();
  for (const row of scored) groups.set(key(row), [...(groups.get(key(row)) ?? []), row]);
  return [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([k, members]) => {
    const failed = members.filter((r) => r.verdict === 'fail').length;
    return {
      key: k, slides: members.length, failed,
      shares: members.map((r) => Number(r.out_of_focus_pct_of_tissue)).filter(Number.isFinite),
      outlier: isOutlierGroup(failed, members.length, overallRate),
    };
  });
}

/** One grouping as an SVG strip plot: a row per group, a dot per slide, the limit as a dashed line. */
function stripPlot(groups: CohortGroup[], limitPct: number): string {
  const [labelW, plotW, rowH] = [260, 420, 22];
  const x = (pct: number) => labelW + (Math.min(100, Math.max(0, pct)) / 100) * plotW;
  const height = rowH * groups.length + 24;
  const rowsSvg = groups.map((g, i) => {
    const y = 12 + i * rowH + rowH / 2;
    const label = `${g.key} (${g.failed}/${g.slides} fail)${g.outlier ? ' ▲ outlier' : ''}`;
    const dots = g.shares.map((s) => `<circle cx="${x(s).toFixed(1)}" cy="${y}" r="4" class="${s > limitPct ? 'dot-fail' : 'dot-pass'}"><title>${s.toFixed(1)} %</title></circle>`).join('');
    return `<text x="${labelW - 8}" y="${y + 4}" text-anchor="end" class="${g.outlier ? 'outlier' : ''}">${escapeHtml(label.length > 48 ? '…' + label.slice(-47) : label)}</text>${dots}`;
  }).join('');
  const axis = [0, 25, 50, 75, 100].map((p) => `<text x="${x(p)}" y="${height - 2}" text-anchor="middle" class="tick">${p} %</text>`).join('');
  return `<svg role="img" width="${labelW + plotW + 20}" height="${height}" class="cohort">${rowsSvg}<line x1="${x(limitPct)}" x2="${x(limitPct)}" y1="4" y2="${height - 14}" class="limit"/>${axis}</svg>`;
}

/** The cohort section of index.html (empty when no slide has a verdict). */
export function cohortSection(rows: CohortRow[], limitPct: number): string {
  if (!rows.some(judged)) return '';
  const plots = GROUPINGS.map(({ title, key }) => `<h3>by ${escapeHtml(title)}</h3>${stripPlot(cohortGroups(rows, key), limitPct)}`).join('');
  return `<section id="cohort"><h2>Cohort</h2>
<p>Out-of-focus share of tissue per slide (a dot each; <span class="dot-fail-key">●</span> above the ${limitPct} % limit); ▲ marks a group that fails far more often than the rest of the folder (more than 3 standard deviations above the folder's rate for its size, at least 2 failures): a batch, scanner or folder worth a look.</p>
${plots}</section>`;
}

export const COHORT_STYLE = `
#cohort { margin: 18px 0; } #cohort h2 { font-size: 16px; } #cohort h3 { font-size: 13px; margin: 10px 0 2px; }
svg.cohort text { font-size: 11px; fill: #333; } svg.cohort text.outlier { fill: #a03c00; font-weight: bold; }
svg.cohort .dot-pass { fill: #2171b5; fill-opacity: 0.7; } svg.cohort .dot-fail { fill: #e6550d; fill-opacity: 0.85; }
.dot-fail-key { color: #e6550d; } svg.cohort line.limit { stroke: #555; stroke-dasharray: 4 3; } svg.cohort .tick { fill: #777; }
`;
