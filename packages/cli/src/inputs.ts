/**
 * Turns scan arguments into slide files: files as given, folders (their slide files, and with
 * `recursive` those of every subfolder), simple globs (* and ? in the last path part). Everything
 * found but not scanned is listed with the reason, so a nightly run never drops a file silently.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { openslideVersion } from '@fqa/core';

export const SLIDE_EXTENSIONS = /\.(svs|tif|tiff|ndpi|vms|vmu|scn|mrxs|svslide|bif|png|jpe?g)$/i;

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface ExpandedInputs {
  slides: string[];
  skipped: SkippedFile[];
}

/** What the installed OpenSlide says about DICOM (read since OpenSlide 4.0). */
function dicomReason(): string {
  let version = 'none installed';
  try {
    version = openslideVersion();
  } catch {
    // no libopenslide: the version stays 'none installed'
  }
  return `DICOM: name one file of the series explicitly to scan it (needs OpenSlide >= 4.0; this machine has ${version})`;
}

export function expandInputs(args: string[], options: { recursive?: boolean; exclude?: string } = {}): ExpandedInputs {
  const slides: string[] = [];
  const skipped: SkippedFile[] = [];
  const exclude = options.exclude === undefined ? undefined : path.resolve(options.exclude);
  const walk = (dir: string) => {
    const names = readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
    // An MRXS slide's data lives in a folder of the same name beside it.
    const mrxs = new Set(names.filter((n) => /\.mrxs$/i.test(n)).map((n) => n.replace(/\.mrxs$/i, '')));
    for (const name of names) {
      const file = path.join(dir, name);
      let isDirectory = false;
      try {
        isDirectory = statSync(file).isDirectory();
      } catch {
        skipped.push({ file, reason: 'cannot be read (broken link or no permission)' });
        continue;
      }
      if (isDirectory) {
        if (path.resolve(file) === exclude || mrxs.has(name)) continue;
        if (options.recursive) walk(file);
        else skipped.push({ file, reason: 'folder (use --recursive to scan subfolders)' });
      } else if (SLIDE_EXTENSIONS.test(name)) slides.push(file);
      else if (/\.dcm$/i.test(name)) skipped.push({ file, reason: dicomReason() });
      else skipped.push({ file, reason: 'not a slide or image file name (.svs, .tif, .ndpi, .mrxs, .png, ...)' });
    }
  };
  for (const arg of args) {
    if (/[*?]/.test(path.basename(arg))) {
      const dir = path.dirname(arg);
      const re = new RegExp('^' + path.basename(arg).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
      const matches = existsSync(dir) ? readdirSync(dir).filter((f) => re.test(f)).sort() : [];
      if (matches.length === 0) slides.push(arg); // reported as missing
      for (const f of matches) slides.push(path.join(dir, f));
    } else if (existsSync(arg) && statSync(arg).isDirectory() && !/\.(svs|mrxs)$/i.test(arg)) {
      walk(arg);
    } else {
      slides.push(arg);
    }
  }
  return dropRepeats(slides, skipped);
}

/** A slide named twice (a glob and a folder, `a.svs` and `./a.svs`, a link to it) is scanned once. */
function dropRepeats(slides: string[], skipped: SkippedFile[]): ExpandedInputs {
  const seen = new Set<string>();
  const once: string[] = [];
  for (const slide of slides) {
    let key = path.resolve(slide);
    try {
      key = realpathSync(slide);
    } catch {
      // missing or unreadable: reported by the scan under the name given
    }
    if (seen.has(key)) skipped.push({ file: slide, reason: 'named twice in the input: scanned once' });
    else {
      seen.add(key);
      once.push(slide);
    }
  }
  return { slides: once, skipped };
}
