/**
 * An output folder as a nightly run sees it: the slide reports already there (each <stem>.json
 * records the input it came from and its key), report names that never collide, and summary.tsv
 * rebuilt from every report in the folder so it accumulates across runs.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { version as fqaVersion } from '@fqa/native';
import path from 'node:path';
import { writeAtomic } from '../atomic-write.js';
import { SUMMARY_COLUMNS, reportStem, tsvField } from '../scan/reports.js';
import { upgradeReportJson } from '../scan/report-json.js';

/** What a run needs to know about one slide report already in the folder. */
export interface FolderReport {
  stem: string;
  /** Absolute path of the slide it was made from. */
  input: string;
  /** The report key (see reportKey); null for reports of older fqa versions. */
  key: string | null;
  /** The slide's content fingerprint (slideFingerprint) when the report was made; null for older reports. */
  fingerprint: string | null;
  /** When the report was written (ISO 8601), and by which fqa version. */
  scannedAt: string | null;
  fqa: string | null;
  verdict: string;
  /** Share of the slide excluded as marker pen or other artefact, in percent; null when not recorded. */
  artefactPct: number | null;
  summaryRow: string;
}

/**
 * summary.tsv's columns: a report's own row (SUMMARY_COLUMNS) and what the folder knows about it —
 * the artefact share, when it was scanned, and whether this run scanned it. A report whose slide is
 * gone from its path has verdict `missing`.
 */
export const FOLDER_COLUMNS = [...SUMMARY_COLUMNS, 'artefact_pct_of_slide', 'scanned_at', 'new'] as const;
export const VERDICT_COLUMN = SUMMARY_COLUMNS.indexOf('verdict');
const REPORT_COLUMN = SUMMARY_COLUMNS.indexOf('report');

/** Every slide report (<stem>.json with a summaryRow) in `dir`; unreadable JSON files are ignored. */
export function readReportFolder(dir: string): Map<string, FolderReport> {
  const reports = new Map<string, FolderReport>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return reports;
  }
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    try {
      // upgradeReportJson: a report of an earlier fqa has its shares as fractions, under other names.
      const json = upgradeReportJson(JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as {
        file?: string; summaryRow?: string; summary?: { verdict?: string; penPctOfSlide?: number };
        provenance?: { input?: string; key?: string | null; fingerprint?: string | null; date?: string; fqa?: string };
      });
      if (typeof json.summaryRow !== 'string' || typeof json.file !== 'string') continue;
      const stem = name.slice(0, -'.json'.length);
      reports.set(stem, {
        stem,
        input: json.provenance?.input ?? path.resolve(json.file),
        key: json.provenance?.key ?? null,
        fingerprint: json.provenance?.fingerprint ?? null,
        scannedAt: json.provenance?.date ?? null,
        fqa: json.provenance?.fqa ?? null,
        verdict: json.summary?.verdict ?? 'error',
        artefactPct: typeof json.summary?.penPctOfSlide === 'number' ? json.summary.penPctOfSlide : null,
        summaryRow: json.summaryRow,
      });
    } catch {
      // not a slide report (or a damaged one, which is rescanned)
    }
  }
  return reports;
}

/** Lookups over a `taken` map, kept beside it (not in it, so callers' maps stay plain). */
interface TakenIndex {
  /** Case-folded report name -> its input. */
  folded: Map<string, string>;
  /** Input -> its report name. */
  byInput: Map<string, string>;
}
const takenIndexes = new WeakMap<Map<string, string>, TakenIndex>();

function indexOf(taken: Map<string, string>): TakenIndex {
  let index = takenIndexes.get(taken);
  if (index === undefined || index.byInput.size > taken.size) {
    index = { folded: new Map(), byInput: new Map() };
    for (const [stem, input] of taken) {
      index.folded.set(stem.toLowerCase(), input);
      if (!index.byInput.has(input)) index.byInput.set(input, stem);
    }
    takenIndexes.set(taken, index);
  }
  return index;
}

/**
 * The report name of a slide: the name its report already has in this folder (so names are the same
 * in every run, also for reports named by an older fqa), else reportStem (its file name made safe),
 * unless another input already holds that name (two folders with a slide.svs each; `A.svs` and
 * `a.svs`, which are one file on a case-insensitive file system; `a#b.svs` and `a?b.svs`, both
 * `a_b`): then the name gets 8 hex digits of the input's absolute path, so it never collides.
 * `taken` maps report names to their inputs; the chosen name is added to it.
 */
export function allocateStem(input: string, taken: Map<string, string>): string {
  const absolute = path.resolve(input);
  const index = indexOf(taken);
  const existing = index.byInput.get(absolute);
  if (existing !== undefined && taken.get(existing) === absolute) return existing;
  const base = reportStem(input);
  const owner = index.folded.get(base.toLowerCase());
  const stem = owner === undefined || owner === absolute ? base : `${base}-${createHash('sha256').update(absolute).digest('hex').slice(0, 8)}`;
  taken.set(stem, absolute);
  index.folded.set(stem.toLowerCase(), absolute);
  index.byInput.set(absolute, stem);
  return stem;
}

/**
 * The folder's rows (FOLDER_COLUMNS, TSV-escaped fields) in slide path order: every report, this
 * run's and earlier runs'. `scannedNow` holds the report names this run wrote (column `new`).
 */
export function folderRows(dir: string, scannedNow: ReadonlySet<string> = new Set()): string[][] {
  return [...readReportFolder(dir).values()]
    .sort((a, b) => (a.input < b.input ? -1 : a.input > b.input ? 1 : 0))
    .map((r) => {
      const fields = r.summaryRow.split('\t');
      while (fields.length < SUMMARY_COLUMNS.length) fields.push(''); // reports of older fqa versions
      fields.length = SUMMARY_COLUMNS.length;
      // The report's name, also for a report whose row has none (older fqa): the index links it, and
      // reportsWrittenSinceSummary finds it by it.
      fields[REPORT_COLUMN] ||= r.stem;
      // A slide deleted or moved away: its last report stays listed, but says so instead of its old
      // verdict. (Not this run's own report of a path that was not there: that is its error row.)
      if (!scannedNow.has(r.stem) && !existsSync(r.input)) fields[VERDICT_COLUMN] = 'missing';
      const artefact = r.artefactPct === null ? '' : r.artefactPct.toFixed(2);
      return [...fields, artefact, r.scannedAt ?? '', scannedNow.has(r.stem) ? 'yes' : 'no'];
    });
}

/**
 * The reports in `dir` written since its summary.tsv was: those that summary.tsv does not list
 * (its `report` column) with the same `scanned_at`. This is the `new` column where no single run
 * wrote the reports (`fqa-scan queue report`, over jobs that workers on many machines finished):
 * new since the previous report, as a scan's are new in the run that wrote them. Without a
 * summary.tsv (or with one from before the `scanned_at` column) every report is new.
 */
export function reportsWrittenSinceSummary(dir: string): Set<string> {
  let text = '';
  try {
    text = readFileSync(path.join(dir, 'summary.tsv'), 'utf8');
  } catch {
    // no summary yet: every report is new
  }
  // The `#` header is at the top only: a row's slide may itself start with '#'.
  const lines = text.split('\n').filter((line) => line !== '');
  const body = lines.slice(lines.findIndex((line) => !line.startsWith('#')));
  const columns = (body[0] ?? '').split('\t');
  const [reportAt, scannedAt] = [columns.indexOf('report'), columns.indexOf('scanned_at')];
  const listed = new Map<string, string>();
  if (reportAt >= 0 && scannedAt >= 0) {
    for (const line of body.slice(1)) {
      const fields = line.split('\t');
      listed.set(fields[reportAt] ?? '', fields[scannedAt] ?? '');
    }
  }
  return new Set([...readReportFolder(dir).values()].filter((r) => listed.get(r.stem) !== (r.scannedAt ?? '')).map((r) => r.stem));
}

/**
 * Whether <stem>.json in `dir` is already the error report of `file` with this message: writing it
 * again would change only its date, and make an old failure look new.
 */
export function hasErrorReport(dir: string, stem: string, file: string, message: string): boolean {
  try {
    const json = JSON.parse(readFileSync(path.join(dir, `${stem}.json`), 'utf8')) as { file?: string; error?: string; summary?: { verdict?: string } };
    return json.summary?.verdict === 'error' && json.file === file && json.error === message;
  } catch {
    return false;
  }
}

/**
 * summary.tsv: a `#` header (fqa version, the latest run's model, options and date) and one row per
 * slide report in the folder (folderRows).
 */
export async function writeSummaryTsv(dir: string, header: string[], scannedNow: ReadonlySet<string> = new Set()): Promise<number> {
  const rows = folderRows(dir, scannedNow).map((fields) => fields.join('\t'));
  await writeAtomic(path.join(dir, 'summary.tsv'), header.concat(FOLDER_COLUMNS.join('\t'), rows).join('\n') + '\n');
  return rows.length;
}

/**
 * A slide at a new path whose content a report in this folder already describes, made when the
 * slide was at a path that no longer exists (a folder moved into archive/): the report is the
 * slide's, so it is pointed at the new path instead of scanning the slide again under a second
 * name. Returns the report's name, or null when there is no such report.
 */
export async function adoptMovedReport(dir: string, folder: Map<string, FolderReport>, taken: Map<string, string>, input: string, fingerprint: string): Promise<string | null> {
  const absolute = path.resolve(input);
  const candidates = [...folder.values()].filter((r) => r.fingerprint === fingerprint && r.input !== absolute && !existsSync(r.input));
  // Two copies of one file (same content) that both moved: each takes the report of its own name.
  const report = candidates.find((r) => path.basename(r.input) === path.basename(absolute)) ?? candidates[0];
  if (report === undefined) return null;
  const file = path.join(dir, `${report.stem}.json`);
  const json = JSON.parse(readFileSync(file, 'utf8')) as { file: string; summaryRow: string; provenance: { input: string; movedFrom?: string[] } };
  const fields = json.summaryRow.split('\t');
  fields[0] = tsvField(input);
  json.provenance.movedFrom = [...(json.provenance.movedFrom ?? []), json.provenance.input];
  json.provenance.input = absolute;
  json.file = input;
  json.summaryRow = fields.join('\t');
  await writeAtomic(file, JSON.stringify(json, null, 1) + '\n');
  const moved = { ...report, input: absolute, summaryRow: json.summaryRow };
  folder.set(report.stem, moved);
  taken.set(report.stem, absolute);
  return report.stem;
}

/** Whether a report of this slide, made with this key by this fqa version, still stands (no rescan). */
export function reportStands(previous: FolderReport | undefined, key: string | null, reuse: boolean): previous is FolderReport {
  if (previous === undefined || key === null) return false;
  // An error report is kept only for the same file, model and options under the same fqa: an
  // upgrade may read what this version could not.
  if (previous.verdict === 'error' || previous.verdict === 'too-small') return previous.key === key && previous.fqa === fqaVersion;
  return previous.key === key || reuse;
}
