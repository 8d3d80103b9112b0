/**
 * Evaluation metrics as the papers report them. Correlations compare scores with focus labels;
 * the classification metrics treat "out of focus" as the positive class and higher scores as more
 * likely positive.
 */
import { UsageError } from '../errors.js';

function check(scores: ArrayLike<number>, labels: ArrayLike<unknown>, what: string) {
  if (scores.length !== labels.length) throw new UsageError(`${what}: ${scores.length} scores but ${labels.length} labels`);
  if (scores.length < 2) throw new UsageError(`${what} needs at least 2 samples`);
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
}

/** Pearson linear correlation. A constant input has no correlation: an error, not NaN. */
export function plcc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  check(scores, labels, 'PLCC');
  const ms = mean(scores);
  const ml = mean(labels);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < scores.length; i++) {
    const a = scores[i]! - ms;
    const b = labels[i]! - ml;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  if (sxx === 0 || syy === 0) throw new UsageError(`correlation is undefined: the ${sxx === 0 ? 'scores' : 'labels'} are constant`);
  return sxy / Math.sqrt(sxx * syy);
}

/** Average ranks (ties share the mean of their positions), 1-based. */
export function ranks(a: ArrayLike<number>): Float64Array {
  const idx = Array.from({ length: a.length }, (_, i) => i).sort((i, j) => a[i]! - a[j]!);
  const r = new Float64Array(a.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && a[idx[j + 1]!] === a[idx[i]!]) j++;
    for (let t = i; t <= j; t++) r[idx[t]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Spearman rank correlation (Pearson on average ranks). */
export function srcc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  check(scores, labels, 'SRCC');
  return plcc(ranks(scores), ranks(labels));
}

/** Kendall's tau-b (tie-corrected), O(n^2): fine for evaluation set sizes. */
export function krcc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  check(scores, labels, 'KRCC');
  let concordant = 0;
  let discordant = 0;
  let tiesX = 0;
  let tiesY = 0;
  for (let i = 0; i < scores.length; i++)
    for (let j = i + 1; j < scores.length; j++) {
      const dx = Math.sign(scores[i]! - scores[j]!);
      const dy = Math.sign(labels[i]! - labels[j]!);
      if (dx === 0 && dy === 0) continue;
      if (dx === 0) tiesX++;
      else if (dy === 0) tiesY++;
      else if (dx === dy) concordant++;
      else discordant++;
    }
  const denominator = Math.sqrt((concordant + discordant + tiesX) * (concordant + discordant + tiesY));
  if (denominator === 0) throw new UsageError('KRCC is undefined: the scores or the labels are constant');
  return (concordant - discordant) / denominator;
}

export function rmse(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  check(scores, labels, 'RMSE');
  let s = 0;
  for (let i = 0; i < scores.length; i++) s += (scores[i]! - labels[i]!) ** 2;
  return Math.sqrt(s / scores.length);
}

export interface CurvePoint {
  threshold: number;
  tpr: number;
  fpr: number;
  precision: number;
  recall: number;
}

/** ROC/PR points at every distinct score (descending), starting from "nothing positive". */
export function curves(scores: ArrayLike<number>, positives: ArrayLike<boolean | number>): CurvePoint[] {
  check(scores, positives, 'ROC');
  const n = scores.length;
  let p = 0;
  for (let i = 0; i < n; i++) if (positives[i]) p++;
  if (p === 0 || p === n) throw new UsageError(`ROC/PR need both classes; got only ${p === 0 ? 'in-focus' : 'out-of-focus'} samples`);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => scores[j]! - scores[i]!);
  const points: CurvePoint[] = [{ threshold: Number.POSITIVE_INFINITY, tpr: 0, fpr: 0, precision: 1, recall: 0 }];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < n; ) {
    const t = scores[order[k]!]!;
    // Tied scores enter together.
    while (k < n && scores[order[k]!] === t) {
      if (positives[order[k]!]) tp++;
      else fp++;
      k++;
    }
    points.push({ threshold: t, tpr: tp / p, fpr: fp / (n - p), precision: tp / (tp + fp), recall: tp / p });
  }
  return points;
}

/** Area under the ROC curve (trapezoids; ties count half). */
export function rocAuc(scores: ArrayLike<number>, positives: ArrayLike<boolean | number>): number {
  const c = curves(scores, positives);
  let area = 0;
  for (let i = 1; i < c.length; i++) area += ((c[i]!.fpr - c[i - 1]!.fpr) * (c[i]!.tpr + c[i - 1]!.tpr)) / 2;
  return area;
}

/** Area under the PR curve by trapezoids over recall (the paper's PR-AUC). */
export function prAucTrapezoid(scores: ArrayLike<number>, positives: ArrayLike<boolean | number>): number {
  const c = curves(scores, positives);
  let area = 0;
  for (let i = 1; i < c.length; i++) area += ((c[i]!.recall - c[i - 1]!.recall) * (c[i]!.precision + c[i - 1]!.precision)) / 2;
  return area;
}

/** Average precision: sum over thresholds of (recall step) x precision. */
export function averagePrecision(scores: ArrayLike<number>, positives: ArrayLike<boolean | number>): number {
  const c = curves(scores, positives);
  let ap = 0;
  for (let i = 1; i < c.length; i++) ap += (c[i]!.recall - c[i - 1]!.recall) * c[i]!.precision;
  return ap;
}

/** The threshold (predict out of focus when score >= threshold) with the best accuracy. */
export function bestThresholdAccuracy(scores: ArrayLike<number>, positives: ArrayLike<boolean | number>): { threshold: number; accuracy: number } {
  const c = curves(scores, positives);
  const n = scores.length;
  let p = 0;
  for (let i = 0; i < n; i++) if (positives[i]) p++;
  let best = { threshold: Number.POSITIVE_INFINITY, accuracy: -1 };
  for (const point of c) {
    const accuracy = (point.tpr * p + (1 - point.fpr) * (n - p)) / n;
    if (accuracy > best.accuracy) best = { threshold: point.threshold, accuracy };
  }
  return best;
}
