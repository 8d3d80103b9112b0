/**
 * Shares in a slide's JSON report: in memory (ScanResult) a share is a fraction 0..1, as the code
 * computes with it; in every file a user reads it is a percentage with the unit in its name, as on the
 * command line (--max-out-of-focus 5) and in summary.tsv (tissue_pct). The renames are listed once,
 * here, and serve both ways: writing a report, and reading one that an earlier fqa wrote with
 * fractions (labs keep those folders, and nightly runs keep their reports).
 */
import type { ResolvedScanOptions, ScanSummary } from './scan-slide.js';

/** The summary's shares: fraction field (in memory, and in reports of earlier fqa versions) -> percent field in reports. */
export const SUMMARY_PERCENT_FIELDS = {
  tissueFraction: 'tissuePct',
  penFraction: 'penPctOfSlide',
  outOfFocusFraction: 'outOfFocusPctOfTissue',
} as const;

/** The resolved options' shares, likewise (provenance.options of a report; summary.tsv's `# options` header). */
export const OPTION_PERCENT_FIELDS = {
  minTissue: 'minTissuePct',
  maxOutOfFocus: 'maxOutOfFocusPct',
} as const;

type Renamed<T, M extends Record<string, string>> = { [K in keyof T as K extends keyof M ? M[K] : K]: T[K] };

/** A report's summary: ScanSummary with its shares in percent. */
export type SummaryInPercent = Renamed<ScanSummary, typeof SUMMARY_PERCENT_FIELDS>;
/** A report's options: ResolvedScanOptions with its shares in percent. */
export type OptionsInPercent = Renamed<ResolvedScanOptions, typeof OPTION_PERCENT_FIELDS>;

/**
 * 100 × a fraction, without the binary noise of the product (0.07 × 100 is 7.000000000000001): 12
 * significant digits keep every digit a fraction computed in float64 means.
 */
export function fractionToPercent(fraction: number): number {
  return Number((100 * fraction).toPrecision(12));
}

/**
 * `record` with each field named in `fields` renamed and turned from a fraction into a percentage
 * (null stays null), in the same key order. A field already in percent is left as it is, so this is
 * also how an old report is read: on a current one it changes nothing.
 */
function renameShares(record: Record<string, unknown>, fields: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => {
    const renamed = Object.hasOwn(fields, key) ? fields[key]! : undefined;
    if (renamed === undefined || Object.hasOwn(record, renamed)) return [key, value];
    return [renamed, typeof value === 'number' ? fractionToPercent(value) : value];
  }));
}

export function summaryInPercent(summary: ScanSummary): SummaryInPercent {
  return renameShares({ ...summary }, SUMMARY_PERCENT_FIELDS) as SummaryInPercent;
}

export function optionsInPercent(options: ResolvedScanOptions): OptionsInPercent {
  return renameShares({ ...options }, OPTION_PERCENT_FIELDS) as OptionsInPercent;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A slide's JSON report as this fqa writes it, from the parsed JSON of any version: the shares of
 * reports written before they were percentages (summary.tissueFraction, provenance.options.minTissue,
 * ...) come back under their percent names, × 100. Anything else is returned as it was.
 */
export function upgradeReportJson<T>(json: T): T {
  if (!isRecord(json)) return json;
  const upgraded: Record<string, unknown> = { ...json };
  if (isRecord(upgraded.summary)) upgraded.summary = renameShares(upgraded.summary, SUMMARY_PERCENT_FIELDS);
  if (isRecord(upgraded.provenance) && isRecord(upgraded.provenance.options)) {
    upgraded.provenance = { ...upgraded.provenance, options: renameShares(upgraded.provenance.options, OPTION_PERCENT_FIELDS) };
  }
  return upgraded as T;
}
