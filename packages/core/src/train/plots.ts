/**
 * The plots a person wants after an evaluation, as standalone SVG files (no plotting dependency):
 * ROC and PR curves (one line per trial or model) and score vs label scatter.
 */
import { curves, prAucTrapezoid, rocAuc } from './metrics.js';

const W = 480;
const H = 400;
const M = { left: 60, right: 20, top: 36, bottom: 50 };
export const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

export function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const step = [1, 2, 2.5, 5, 10].map((f) => f * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(10)));
  return ticks;
}

function frame(title: string, xLabel: string, yLabel: string, x: [number, number], y: [number, number], body: (px: (v: number) => number, py: (v: number) => number) => string): string {
  const px = (v: number) => M.left + ((v - x[0]) / (x[1] - x[0] || 1)) * (W - M.left - M.right);
  const py = (v: number) => H - M.bottom - ((v - y[0]) / (y[1] - y[0] || 1)) * (H - M.top - M.bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#333"/>`,
  ];
  for (const t of niceTicks(x[0], x[1])) parts.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${H - M.bottom}" y2="${H - M.bottom + 5}" stroke="#333"/><text x="${px(t)}" y="${H - M.bottom + 18}" text-anchor="middle">${t}</text>`);
  for (const t of niceTicks(y[0], y[1])) parts.push(`<line x1="${M.left - 5}" x2="${M.left}" y1="${py(t)}" y2="${py(t)}" stroke="#333"/><text x="${M.left - 8}" y="${py(t) + 4}" text-anchor="end">${t}</text>`);
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${escape(xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`);
  parts.push(body(px, py), '</svg>');
  return parts.join('\n') + '\n';
}

function legend(entries: string[]): string {
  return entries.map((e, i) => `<rect x="${W - M.right - 190}" y="${M.top + 8 + i * 16}" width="10" height="10" fill="${COLOURS[i % COLOURS.length]}"/><text x="${W - M.right - 175}" y="${M.top + 17 + i * 16}">${escape(e)}</text>`).join('\n');
}

export interface CurveSeries {
  name: string;
  scores: ArrayLike<number>;
  /** true / 1 = out of focus (the positive class). */
  positives: ArrayLike<boolean | number>;
}

export function rocSvg(series: CurveSeries[], title = 'ROC (positive = out of focus)'): string {
  return frame(title, 'false positive rate', 'true positive rate', [0, 1], [0, 1], (px, py) => {
    const lines = [`<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#aaa" stroke-dasharray="4 4"/>`];
    series.forEach((s, i) => {
      const points = curves(s.scores, s.positives).map((c) => `${px(c.fpr).toFixed(1)},${py(c.tpr).toFixed(1)}`);
      lines.push(`<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${points.join(' ')}"/>`);
    });
    lines.push(legend(series.map((s) => `${s.name} AUC ${rocAuc(s.scores, s.positives).toFixed(3)}`)));
    return lines.join('\n');
  });
}

export function prSvg(series: CurveSeries[], title = 'Precision-recall (positive = out of focus)'): string {
  return frame(title, 'recall', 'precision', [0, 1], [0, 1], (px, py) => {
    const lines: string[] = [];
    series.forEach((s, i) => {
      const points = curves(s.scores, s.positives).filter((c) => c.recall > 0).map((c) => `${px(c.recall).toFixed(1)},${py(c.precision).toFixed(1)}`);
      lines.push(`<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${points.join(' ')}"/>`);
    });
    lines.push(legend(series.map((s) => `${s.name} AUC ${prAucTrapezoid(s.scores, s.positives).toFixed(3)}`)));
    return lines.join('\n');
  });
}

/** Score (y) against label (x); labels are spread by a deterministic jitter so equal labels stay readable. */
export function scatterSvg(labels: ArrayLike<number>, scores: ArrayLike<number>, title = 'Score vs label'): string {
  const n = labels.length;
  let lx = Infinity, hx = -Infinity, ly = Infinity, hy = -Infinity;
  for (let i = 0; i < n; i++) {
    lx = Math.min(lx, labels[i]!); hx = Math.max(hx, labels[i]!);
    ly = Math.min(ly, scores[i]!); hy = Math.max(hy, scores[i]!);
  }
  const padX = (hx - lx || 1) * 0.06;
  const padY = (hy - ly || 1) * 0.06;
  return frame(title, 'label (higher = blurrier)', 'score', [lx - padX, hx + padX], [ly - padY, hy + padY], (px, py) => {
    const dots: string[] = [];
    for (let i = 0; i < n; i++) {
      const jitter = (((i * 2654435761) >>> 0) / 4294967296 - 0.5) * padX;
      dots.push(`<circle cx="${px(labels[i]! + jitter).toFixed(1)}" cy="${py(scores[i]!).toFixed(1)}" r="2.5" fill="${COLOURS[0]}" fill-opacity="0.5"/>`);
    }
    return dots.join('\n');
  });
}
