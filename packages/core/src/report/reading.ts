/**
 * How a person reads a scan: the words the overview figure and the slide page share, written once.
 *
 * - Scores in µm of blur (and the raw level beside them) where the model's score is a physical
 *   defocus level; a level at or below 0 is "in focus", never a negative radius. Other models
 *   (converted reference weights, uncalibrated training runs) keep their raw, arbitrary scores.
 * - The verdict with its reason: the share out of focus and the limit, or why there is no verdict
 *   (no tissue patch, no threshold, too few patches, dark background, unknown resolution).
 * - What grey (not scored) means.
 */
import type { ScanResult } from '../scan/scan-slide.js';

/** The physical blur a defocus level stands for: `pxPerLevel` working px per level, `micronsPerPixel` µm per working px. */
export interface BlurScale {
  /** 'radius': a blur disk's radius; 'sigma': a Gaussian's standard deviation. */
  kind: 'radius' | 'sigma';
  pxPerLevel: number;
  /** null when the slide's resolution is unknown: levels are still clamped at "in focus", but not given in µm. */
  micronsPerPixel: number | null;
}

// The score scales written by fqa's trainers (train/default-model.ts, train/train-run.ts with
// --dataset synthetic): only these are a defocus level in px. Anything else is an arbitrary score.
const LEVEL_SCALES: ReadonlyArray<{ pattern: RegExp; kind: BlurScale['kind'] }> = [
  { pattern: /^estimated defocus level: level L = defocus blur disk of radius (L) px\b/, kind: 'radius' },
  { pattern: /^estimated defocus level: level L = disk PSF of radius ([0-9.]+)\*L px\b/, kind: 'radius' },
  { pattern: /^estimated defocus level: level L = Gaussian blur of sigma ([0-9.]+)\*L px\b/, kind: 'sigma' },
];

/**
 * The blur scale of a scan's scores, or null when the model's score is not a defocus level in px.
 * The µm per level come from the scan's µm per working pixel (the model's µm/px once resampled),
 * unknown for a slide without resolution metadata or --mpp: its pixels have no known size.
 */
export function blurScale(r: Pick<ScanResult, 'model' | 'mpp'>): BlurScale | null {
  for (const { pattern, kind } of LEVEL_SCALES) {
    const m = pattern.exec(r.model.scoreScale);
    if (!m) continue;
    const pxPerLevel = m[1] === 'L' ? 1 : Number(m[1]);
    if (!(pxPerLevel > 0)) return null;
    return { kind, pxPerLevel, micronsPerPixel: r.mpp };
  }
  return null;
}

/** A number as text, with a real minus sign (a hyphen before a number is easily missed). */
export function num(v: number, digits = 2): string {
  return v.toFixed(digits).replace(/^-/, '−');
}

/** A number with at most `digits` decimals and no trailing zeros, for short labels: 2.5, 10, −4.05. */
export function short(v: number, digits = 2): string {
  return num(Number(v.toFixed(digits)), digits).replace(/\.?0+$/, '');
}

const blurName = (b: BlurScale) => (b.kind === 'radius' ? 'blur radius' : 'blur σ');

/** The µm of blur a level stands for, at or above 0 (a negative level is in focus); null when the µm/px is unknown. */
export function blurMicrons(level: number, b: BlurScale): number | null {
  return b.micronsPerPixel === null ? null : Math.max(0, level) * b.pxPerLevel * b.micronsPerPixel;
}

/** A level above 0 in µm of blur, or the level alone when the µm/px is unknown. */
function blurAmount(level: number, b: BlurScale, noun: string): string {
  const microns = blurMicrons(level, b);
  if (microns === null) return `level ${num(level)} (µm unknown: no slide resolution)`;
  return `${num(microns)} µm${noun} (level ${num(level)})`;
}

/**
 * One score as a person reads it: "2.5 µm blur radius (level 5.00)", "in focus (level −4.05)", or
 * the raw score ("−21.45") for a model without a physical scale; "–" for no score.
 */
export function scoreText(level: number | null, b: BlurScale | null): string {
  if (level === null || Number.isNaN(level)) return '–';
  if (b === null) return num(level);
  if (level <= 0) return `in focus (level ${num(level)})`;
  return blurAmount(level, b, ` ${blurName(b)}`);
}

/** A pair of scores (a region's mean and max): "2.65 / 2.76 µm blur radius (level 5.31 / 5.51)". */
export function scorePairText(a: number, b: number, blur: BlurScale | null): string {
  if (blur === null || !(a > 0 && b > 0) || blur.micronsPerPixel === null) return `${scoreText(a, blur)} / ${scoreText(b, blur)}`;
  return `${num(blurMicrons(a, blur)!)} / ${num(blurMicrons(b, blur)!)} µm ${blurName(blur)} (level ${num(a)} / ${num(b)})`;
}

/** The legend's title: what its numbers are. */
export function legendTitle(r: Pick<ScanResult, 'model' | 'mpp'>, shortScale: string): string {
  const b = blurScale(r);
  if (b === null) return `${shortScale} (raw model score; higher = blurrier)`;
  if (b.micronsPerPixel === null) return `defocus level (0 = in focus; µm unknown: no slide resolution)`;
  return `${blurName(b)} in µm (defocus level: px at ${num(b.micronsPerPixel, 2)} µm/px)`;
}

/** A legend tick at `at` (0, 0.5 = the threshold, 1) of the colour bar: what it means, and its level or raw score. */
export interface LegendTick {
  at: 0 | 0.5 | 1;
  label: string;
  value: string;
}

/**
 * The colour bar's ticks: its two ends and the threshold. With a blur scale: "in focus" / "level ≤
 * 0", "threshold 2.5 µm" / "level 5", "blurry ≥ 5 µm" / "level ≥ 10"; otherwise the raw scores.
 */
export function legendTicks(scale: { lo: number; hi: number; threshold: number | null }, b: BlurScale | null): LegendTick[] {
  const microns = (level: number) => {
    const m = b === null ? null : blurMicrons(level, b);
    return m === null ? '' : ` ${short(m)} µm`;
  };
  const word = b === null ? 'score' : 'level';
  const ticks: LegendTick[] = [
    b !== null && scale.lo <= 0
      ? { at: 0, label: 'in focus', value: `${word} ≤ ${short(scale.lo)}` }
      : { at: 0, label: `sharp${microns(scale.lo) && ' ≤' + microns(scale.lo)}`, value: `${word} ≤ ${short(scale.lo)}` },
  ];
  if (scale.threshold !== null) ticks.push({ at: 0.5, label: `threshold${microns(scale.threshold)}`, value: `${word} ${short(scale.threshold)}` });
  ticks.push({ at: 1, label: `blurry${microns(scale.hi) && ' ≥' + microns(scale.hi)}`, value: `${word} ≥ ${short(scale.hi)}` });
  return ticks;
}

/** A share of 0..1 as percent, with more digits when it is small (0.28 %, not 0.3 %). */
export function percent(share: number): string {
  const p = 100 * share;
  return `${p > 0 && p < 1 ? num(p, 2) : num(p, 1)} %`;
}

/** The grey of the overview's not-scored areas (the thumbnail turned grey) and its legend entry. */
export const NOT_SCORED_GREY = '#bdbdbd';
export function notScoredLabel(r: Pick<ScanResult, 'options'>): string {
  return `not scored: no tissue, or < ${percent(r.options.minTissue)} tissue (--min-tissue)`;
}

/**
 * The verdict and why, in one line: "pass: 1.2 % of scored tissue out of focus (limit 5.0 %)",
 * "no verdict: no tissue patch to score (tissue 0.28 % of the slide; patches need ≥ 50.0 % tissue)".
 */
export function verdictReason(r: Pick<ScanResult, 'summary' | 'options' | 'warnings'>): string {
  const s = r.summary;
  const limit = percent(r.options.maxOutOfFocus);
  const share = s.outOfFocusFraction === null ? '–' : percent(s.outOfFocusFraction);
  switch (s.verdict) {
    case 'pass':
      return `pass: ${share} of scored tissue out of focus, within the limit of ${limit}`;
    case 'fail':
      return `fail: ${share} of scored tissue out of focus, more than the limit of ${limit}`;
    case 'no-tissue':
      return `no verdict: ${nothingScoredReason(r)}`;
    default:
      // verdictReason is the blocker from domain.ts (no threshold, too few patches, dark background,
      // unknown resolution); reports from before it was recorded have it among the warnings.
      return `no verdict: ${s.verdictReason ?? r.warnings.find((w) => /verdict|threshold/.test(w)) ?? 'see the warnings'}`;
  }
}

/** Why no patch was scored: how much tissue there is, and how much a patch needs. */
export function nothingScoredReason(r: Pick<ScanResult, 'summary' | 'options'>): string {
  const pen = r.summary.penFraction > 0 ? `, ${percent(r.summary.penFraction)} excluded as marker pen` : '';
  return `no tissue patch to score (tissue ${percent(r.summary.tissueFraction)} of the slide${pen}; patches need ≥ ${percent(r.options.minTissue)} tissue)`;
}
