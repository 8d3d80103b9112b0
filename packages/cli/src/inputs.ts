/**
 * Turns scan arguments into slide files: files as given, folders (their slide files, and with
 * `recursive` those of every subfolder), simple globs (* and ? in the last path part). Everything
 * found but not scanned is listed with the reason, so a nightly run never drops a file silently.
 *
 * The walk is safe on any tree a scanner or a colleague leaves behind: only regular files become
 * slides (a FIFO would block the scan, a device never ends); each folder is walked once by its
 * (device, inode), so link loops end; links to folders are followed only when asked; fqa output
 * folders (marked with OUTPUT_MARKER, or this run's --out however it is spelled) are never walked,
 * so last night's reports are not tonight's input.
 */
import { existsSync, lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { OUTPUT_MARKER, fileKind, groupDicomSeries, isDicomFile } from '@fqa/core';

export const SLIDE_EXTENSIONS = /\.(svs|tif|tiff|ndpi|vms|vmu|scn|mrxs|svslide|bif|png|jpe?g)$/i;

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface ExpandedInputs {
  slides: string[];
  skipped: SkippedFile[];
}

export interface InputOptions {
  /** Also walk subfolders. */
  recursive?: boolean;
  /** Under `recursive`, also walk links to folders (each folder is still walked once). */
  followLinks?: boolean;
  /** This run's output folder: never walked, whatever path or link leads to it. */
  out?: string;
}

/** Why a folder is not walked or a file not scanned, in the words skipped.tsv uses. */
export const SKIP_REASONS = {
  outputFolder: 'fqa output folder',
  hiddenFile: "hidden file (name starts with '.'): not scanned; name it to scan it",
  hiddenFolder: "hidden folder (name starts with '.'): not walked; name it to scan it",
  walkedOnce: 'folder reached again (named twice, or through a link): walked once',
  folderLink: 'link to a folder: not followed (use --follow-links with --recursive to walk it)',
  subfolder: 'folder (use --recursive to scan subfolders)',
  unreadable: 'cannot be read (broken link or no permission)',
  // Node reads such a name with U+FFFD in place of the bad bytes, a path that does not exist.
  notUtf8: 'file name is not UTF-8 text, so it cannot be opened by name: rename the file to scan it',
  notSlideName: 'not a slide or image file name (.svs, .tif, .ndpi, .mrxs, .png, ...)',
  namedTwice: 'named twice in the input: scanned once',
} as const;

/** A DICOM file found in a walk: named .dcm, or with no extension and the "DICM" magic (scanners often write no extension). */
function looksDicom(file: string, name: string): boolean {
  return /\.dcm$/i.test(name) || (path.extname(name) === '' && isDicomFile(file));
}

/** A file's identity: the same file reached by two paths (links, hard links, `./`) has one. */
function identity(info: Stats): string {
  return `${info.dev}:${info.ino}`;
}

function statOrNull(file: string, follow = true): Stats | null {
  try {
    return follow ? statSync(file) : lstatSync(file);
  } catch {
    return null;
  }
}

/** The run's output folder, as the walk recognises it: by identity and by real path (for what lies under it). */
interface OutputFolder {
  id: string;
  real: string;
}

function outputFolderOf(out: string | undefined): OutputFolder | null {
  if (out === undefined) return null;
  const info = statOrNull(out);
  if (!info?.isDirectory()) return null; // not there yet: nothing of it can be in the input
  return { id: identity(info), real: realpathSync(out) };
}

export function expandInputs(args: string[], options: InputOptions = {}): ExpandedInputs {
  const slides: string[] = [];
  const skipped: SkippedFile[] = [];
  const out = outputFolderOf(options.out);
  const walked = new Set<string>();

  /** True (and listed) when `dir` is an fqa output folder: marked, this run's --out, or inside it. */
  const isOutputFolder = (dir: string, info: Stats, names: string[]): boolean => {
    let real = dir;
    try {
      real = realpathSync(dir);
    } catch {
      // unreadable: the marker and identity checks still apply
    }
    const ours = out !== null && (identity(info) === out.id || real.startsWith(out.real + path.sep));
    // Folders written before the marker existed hold summary.tsv beside fqa-assets/ (the viewer's
    // script, written by every fqa that could walk folders): a lab's older nightly folders count too.
    const unmarked = names.includes('summary.tsv') && names.includes('fqa-assets');
    if (!ours && !unmarked && !names.includes(OUTPUT_MARKER)) return false;
    skipped.push({ file: dir, reason: SKIP_REASONS.outputFolder });
    return true;
  };

  const walkFolder = (dir: string, info: Stats) => {
    const id = identity(info);
    if (walked.has(id)) {
      skipped.push({ file: dir, reason: SKIP_REASONS.walkedOnce });
      return;
    }
    walked.add(id);
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      skipped.push({ file: dir, reason: SKIP_REASONS.unreadable });
      return;
    }
    if (isOutputFolder(dir, info, names)) return;
    // An MRXS slide's data lives in a folder of the same name beside it.
    const mrxs = new Set(names.filter((n) => /\.mrxs$/i.test(n)).map((n) => n.replace(/\.mrxs$/i, '')));
    const dicom: string[] = [];
    for (const name of names) visitEntry(path.join(dir, name), name, mrxs.has(name), dicom);
    // A DICOM slide is a series of files (one per pyramid level, label, overview): one slide per
    // series, named by its largest level; its other files are part of it, like an MRXS data folder.
    if (dicom.length > 0) {
      const series = groupDicomSeries(dicom);
      slides.push(...series.slides);
      skipped.push(...series.skipped);
    }
  };

  /** One entry found in a walked folder: a slide, a DICOM file (grouped by series after the folder), a subfolder to walk, or a skipped file with its reason. */
  const visitEntry = (file: string, name: string, mrxsData: boolean, dicom: string[]) => {
    const link = statOrNull(file, false);
    const info = statOrNull(file);
    if (!link || !info) {
      skipped.push({ file, reason: name.includes('\uFFFD') ? SKIP_REASONS.notUtf8 : SKIP_REASONS.unreadable });
      return;
    }
    if (info.isDirectory()) {
      if (mrxsData) return; // part of the slide beside it
      if (name.startsWith('.')) skipped.push({ file, reason: SKIP_REASONS.hiddenFolder });
      else if (!options.recursive) skipped.push({ file, reason: SKIP_REASONS.subfolder });
      else if (link.isSymbolicLink() && !options.followLinks) skipped.push({ file, reason: SKIP_REASONS.folderLink });
      else walkFolder(file, info);
    } else if (name.startsWith('.')) skipped.push({ file, reason: SKIP_REASONS.hiddenFile });
    else if (!info.isFile()) skipped.push({ file, reason: `${fileKind(info)}: not a slide file, never opened` });
    else if (out !== null && link.isSymbolicLink() && realpathSync(file).startsWith(out.real + path.sep)) skipped.push({ file, reason: SKIP_REASONS.outputFolder });
    else if (SLIDE_EXTENSIONS.test(name)) slides.push(file);
    else if (looksDicom(file, name)) dicom.push(file);
    else skipped.push({ file, reason: SKIP_REASONS.notSlideName });
  };

  /**
   * One name from the command line (or a glob's match): a folder is walked, anything else is a
   * slide as named; a name that is not a regular file is refused when the scan opens it (one error
   * line, never a blocking open).
   */
  const visitArgument = (arg: string) => {
    const info = statOrNull(arg);
    if (info?.isDirectory() && !/\.(svs|mrxs)$/i.test(arg)) walkFolder(arg, info);
    else slides.push(arg);
  };

  for (const arg of args) {
    if (/[*?]/.test(path.basename(arg))) {
      const dir = path.dirname(arg);
      const pattern = path.basename(arg);
      const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
      const matches = existsSync(dir) ? readdirSync(dir).filter((f) => re.test(f)).sort() : [];
      if (matches.length === 0) slides.push(arg); // reported as missing
      const dicom: string[] = [];
      for (const name of matches) {
        const file = path.join(dir, name);
        // As in a shell, a wildcard does not match a leading dot; the file is listed, not dropped.
        if (name.startsWith('.') && !pattern.startsWith('.')) {
          const hidden = statOrNull(file)?.isDirectory();
          skipped.push({ file, reason: hidden ? SKIP_REASONS.hiddenFolder : SKIP_REASONS.hiddenFile });
        } else if (statOrNull(file)?.isFile() && looksDicom(file, name)) dicom.push(file);
        else visitArgument(file);
      }
      // `series/*.dcm` is the series' files: one slide per series, as in a folder.
      if (dicom.length > 0) {
        const series = groupDicomSeries(dicom);
        slides.push(...series.slides);
        skipped.push(...series.skipped);
      }
    } else visitArgument(arg);
  }
  return dropRepeats(slides, skipped);
}

/**
 * A slide named twice (a glob and a folder, `a.svs` and `./a.svs`, a link or a hard link to it) is
 * scanned once: slides are the same when their (device, inode) is.
 */
function dropRepeats(slides: string[], skipped: SkippedFile[]): ExpandedInputs {
  const seen = new Set<string>();
  const once: string[] = [];
  for (const slide of slides) {
    const info = statOrNull(slide);
    // Missing or unreadable: reported by the scan under the name given, keyed by that name.
    const key = info ? identity(info) : `path:${path.resolve(slide)}`;
    if (seen.has(key)) skipped.push({ file: slide, reason: SKIP_REASONS.namedTwice });
    else {
      seen.add(key);
      once.push(slide);
    }
  }
  return { slides: once, skipped };
}
