/**
 * An output folder as a nightly run sees it: the slide reports already there (each <stem>.json
 * records the input it came from and its key), report names that never collide, and summary.tsv
 * rebuilt from every report in the folder so it accumulates across runs.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeAtomic } from '../atomic-write.js';
import { SUMMARY_COLUMNS, reportStem } from '../scan/reports.js';

/** What a run needs to know about one slide report already in the folder. */
export interface FolderReport {
  stem: string;
  /** Absolute path of the slide it was made from. */
  input: string;
  /** The report key (see reportKey); null for error reports and reports of older fqa versions. */
  key: string | null;
  verdict: string;
  summaryRow: string;
}

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
      const json = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as {
        file?: string; summaryRow?: string; summary?: { verdict?: string }; provenance?: { input?: string; key?: string };
      };
      if (typeof json.summaryRow !== 'string' || typeof json.file !== 'string') continue;
      const stem = name.slice(0, -'.json'.length);
      reports.set(stem, {
        stem,
        input: json.provenance?.input ?? path.resolve(json.file),
        key: json.provenance?.key ?? null,
        verdict: json.summary?.verdict ?? 'error',
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
 * summary.tsv: a `#` header (fqa version, the latest run's model, options and date) and one row per
 * slide report in the folder, this run's and earlier runs', in slide path order.
 */
export async function writeSummaryTsv(dir: string, header: string[]): Promise<number> {
  const rows = [...readReportFolder(dir).values()].sort((a, b) => (a.input < b.input ? -1 : a.input > b.input ? 1 : 0)).map((r) => r.summaryRow);
  await writeAtomic(path.join(dir, 'summary.tsv'), header.concat(SUMMARY_COLUMNS.join('\t'), rows).join('\n') + '\n');
  return rows.length;
}
