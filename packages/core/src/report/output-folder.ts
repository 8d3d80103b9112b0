/**
 * The output folder as a run claims it: marked as fqa's (OUTPUT_MARKER), refused when it holds files
 * fqa did not write and would overwrite, and locked for the run, so two runs never write one folder.
 * Also: which write errors mean "the output folder cannot take more" (disk full, quota, read-only).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { FqaError, UsageError } from '../errors.js';
import { REPORT_FILES } from '../scan/report-files.js';
import { OUTPUT_MARKER } from './output-marker.js';

export { OUTPUT_MARKER };

/** The output folder cannot be written now: full, read-only, over quota, or in use by another run (exit code 4). */
export class OutputError extends FqaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 4, options);
  }
}

/** The lock file of a run, holding `pid host date` of the run that writes the folder. */
export const LOCK_FILE = '.fqa-lock';

/** Folder-wide files every run writes (besides the per-slide reports). */
export const FOLDER_FILES = ['summary.tsv', 'index.html', 'skipped.tsv', 'fqa-assets'] as const;

/** Per-slide file suffixes (<stem><suffix>); `_files` is the view's tile folder. */
export const REPORT_SUFFIXES = ['.json', ...REPORT_FILES, '_files'] as const;

/** Write errors that no retry or other slide can fix: the folder is full, over quota or read-only. */
const OUTPUT_FULL_CODES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
};

/** libvips reports errno as text, not a code: its messages for the same conditions. */
const OUTPUT_FULL_TEXT: [RegExp, string][] = [
  [/No space left on device/i, 'ENOSPC'],
  [/Disk quota exceeded/i, 'EDQUOT'],
  [/Read-only file system/i, 'EROFS'],
];

/** ENOSPC, EDQUOT or EROFS (from Node's code or libvips's text), else null. */
export function outputFullCode(err: unknown): string | null {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code in OUTPUT_FULL_CODES) return code;
  const message = (err as Error | undefined)?.message ?? '';
  return OUTPUT_FULL_TEXT.find(([re]) => re.test(message))?.[1] ?? null;
}

/** The one line for a full or read-only output folder. */
export function outputFullError(dir: string, code: string, what: string, err: unknown): OutputError {
  return new OutputError(`--out ${dir}: ${OUTPUT_FULL_CODES[code]} (${code}) while writing ${what}`, { cause: err });
}

/** This host, shortened: lock files and staging folders are told apart per machine (folders on NFS). */
export const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}

/**
 * Files in `dir` that fqa would overwrite: the folder-wide files and every entry named
 * <stem><suffix> for the given report names.
 */
function wouldOverwrite(names: string[], stems: Iterable<string>): string[] {
  const present = new Set(names);
  const hits: string[] = FOLDER_FILES.filter((f) => present.has(f));
  for (const stem of stems) for (const suffix of REPORT_SUFFIXES) if (present.has(stem + suffix)) hits.push(stem + suffix);
  return hits;
}

/** An fqa output folder from before the marker: its summary.tsv starts with fqa's own header. */
function olderFqaFolder(dir: string): boolean {
  try {
    return readFileSync(path.join(dir, 'summary.tsv'), 'utf8').startsWith('# fqa ');
  } catch {
    return false;
  }
}

/**
 * Makes `dir` this run's: creates it, or accepts it when it is marked as fqa's, empty, or holds
 * nothing fqa would overwrite (then marks it). A folder fqa did not make that holds files it would
 * overwrite (`stems` are this run's report names) is refused with one line naming them: fqa never
 * deletes or overwrites what it did not write.
 */
export function claimOutputFolder(dir: string, stems: Iterable<string>): void {
  mkdirSync(dir, { recursive: true });
  if (existsSync(path.join(dir, OUTPUT_MARKER))) return;
  const names = readdirSync(dir);
  const clashes = wouldOverwrite(names, stems);
  if (clashes.length > 0 && !olderFqaFolder(dir)) {
    const shown = clashes.slice(0, 3).join(', ') + (clashes.length > 3 ? `, ... (${clashes.length} in all)` : '');
    throw new UsageError(`--out ${dir}: not an fqa output folder (no ${OUTPUT_MARKER}) and it holds files fqa would overwrite: ${shown}; give an empty or new folder, or create ${path.join(dir, OUTPUT_MARKER)} to let fqa write there`);
  }
  closeSync(openSync(path.join(dir, OUTPUT_MARKER), 'a'));
}

/**
 * Takes the folder's lock (O_EXCL create of LOCK_FILE holding `pid host date`) and returns its
 * release. A lock left by a run that is gone (same host, pid no longer running) is taken over; one
 * held by a running process, or by another host, stops this run with one line naming the holder.
 */
export function lockOutputFolder(dir: string): () => void {
  const lock = path.join(dir, LOCK_FILE);
  const content = `${process.pid} ${hostTag} ${hostname()} ${new Date().toISOString()}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = '';
      try {
        holder = readFileSync(lock, 'utf8');
      } catch {
        continue; // released meanwhile: try again
      }
      const [pid, tag, host, since] = holder.trim().split(' ');
      const stale = tag === hostTag && Number.isInteger(Number(pid)) && !processAlive(Number(pid));
      if (stale && attempt === 0) {
        rmSync(lock, { force: true });
        continue;
      }
      throw new OutputError(`--out ${dir}: in use by another fqa run (pid ${pid ?? '?'} on ${host ?? '?'} since ${since ?? '?'}; ${lock}); wait for it to finish, or remove the lock file if that run is gone`);
    }
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return () => {
      // Only our own lock: a stale-lock takeover by another run must not be undone by us.
      try {
        if (readFileSync(lock, 'utf8') === content) rmSync(lock, { force: true });
      } catch {
        // already gone
      }
    };
  }
  throw new OutputError(`--out ${dir}: could not take the lock ${lock}`);
}

/** Prefix of a folder in which one slide's reports are staged before they are swapped into place. */
export const STAGE_PREFIX = '.fqa-stage.';

/**
 * Removes staging folders left by runs of this host that were killed (their pid is gone): their
 * half-written reports never reached the folder, but they hold disk space.
 */
export function removeAbandonedStages(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(STAGE_PREFIX)) continue;
    const [tag, pid] = name.slice(STAGE_PREFIX.length).split('.');
    if (tag === hostTag && Number.isInteger(Number(pid)) && !processAlive(Number(pid))) rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}
