/**
 * Loaders for the paper's datasets in their published layouts (label files as in ../shared/data/labels)
 * and a generic "folder + CSV" one. Each gives (image path, target) pairs with the paper's targets:
 * FocusPath |z|, BioImage/BBBC006 |l|, DeepFocus |l - 5|, TCGA@Focus 1 = out of focus. Missing images and
 * unreadable label rows are errors naming the file and line; splits are deterministic for a seed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { decodeImage } from '../image.js';
import { InputError, UsageError } from '../errors.js';
import { seededRandom, shuffle } from './random.js';

export type DatasetKind = 'focuspath' | 'bioimage' | 'deepfocus' | 'tcga' | 'csv';

export interface DatasetItem {
  file: string;
  /** The training target (see the module comment). */
  target: number;
  /** The label as written in the label file. */
  label: number;
  /** Grouping for leakage-free splits (FocusPath/TCGA slide, otherwise the file). */
  group: string;
}

export interface Dataset {
  kind: DatasetKind;
  root: string;
  items: DatasetItem[];
}

interface Row {
  fields: string[];
  line: number;
}

function readRows(labels: string): Row[] {
  let text: string;
  try {
    text = readFileSync(labels, 'utf8');
  } catch (err) {
    throw new InputError(`${labels}: cannot read the label file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  return text
    .split(/\r?\n/)
    .map((line, i) => ({ fields: line.split(',').map((f) => f.trim()), line: i + 1 }))
    .filter((r) => r.fields.length > 1 || r.fields[0] !== '');
}

function number(value: string | undefined, labels: string, row: Row, column: string): number {
  const v = Number(value);
  if (value === undefined || value === '' || !Number.isFinite(v)) {
    throw new InputError(`${labels}:${row.line}: expected a number for ${column} but found '${value ?? ''}'`);
  }
  return v;
}

/**
 * Loads a dataset. `labels` is the label file (FocusPath_full_split1.txt / focuspath_full_metadata.csv,
 * bioimage_full_metadata.csv, deepfocus_full_metadata.csv, TCGA@Focus.txt, or for 'csv' a file with a
 * `file,label` header); image paths in it are relative to `root`. Only rows whose image exists are
 * kept when `allowMissing` is set (the published lists name far more images than a copy may hold);
 * otherwise a missing image is an error.
 */
export function loadDataset(kind: DatasetKind, root: string, labels: string, options: { allowMissing?: boolean } = {}): Dataset {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new InputError(`${root}: dataset folder not found`);
  let rows = readRows(labels);
  if (kind === 'csv') {
    const header = rows.shift();
    if (!header || header.fields[0] !== 'file' || header.fields[1] !== 'label') throw new InputError(`${labels}: expected a 'file,label' header`);
  }
  const items: DatasetItem[] = [];
  for (const row of rows) {
    const [name, ...rest] = row.fields;
    if (!name) throw new InputError(`${labels}:${row.line}: empty file name`);
    let label: number;
    let target: number;
    let group = name;
    switch (kind) {
      case 'focuspath': // name,slide,strip,slice,position,score,z
        if (rest.length < 6) throw new InputError(`${labels}:${row.line}: expected 7 columns (name,slide,strip,slice,position,score,z)`);
        label = number(rest[5], labels, row, 'z');
        target = Math.abs(label);
        group = `slide${rest[0]}`;
        break;
      case 'bioimage':
        label = number(rest[0], labels, row, 'label');
        target = Math.abs(label);
        break;
      case 'deepfocus':
        label = number(rest[0], labels, row, 'label');
        target = Math.abs(label - 5);
        break;
      case 'tcga': // relative/path.png,organ,marker_flag,out_of_focus
        if (rest.length < 3) throw new InputError(`${labels}:${row.line}: expected 4 columns (path,organ,marker_flag,out_of_focus)`);
        label = number(rest[2], labels, row, 'out_of_focus');
        if (label !== 0 && label !== 1) throw new InputError(`${labels}:${row.line}: out_of_focus must be 0 or 1 but is ${label}`);
        target = label;
        group = name.split('/').slice(0, 3).join('/'); // In Focus|Out of Focus / organ / slide
        break;
      case 'csv':
        label = number(rest[0], labels, row, 'label');
        target = label;
        break;
      default:
        throw new UsageError(`Expected one of focuspath, bioimage, deepfocus, tcga, csv for dataset but received '${String(kind)}'`);
    }
    const file = path.join(root, name);
    if (!existsSync(file)) {
      if (options.allowMissing) continue;
      throw new InputError(`${labels}:${row.line}: image ${file} not found`);
    }
    items.push({ file, target, label, group });
  }
  if (items.length === 0) throw new InputError(`${labels}: no images of this dataset were found under ${root}`);
  return { kind, root, items };
}

export interface Split {
  train: DatasetItem[];
  validation: DatasetItem[];
  test: DatasetItem[];
}

/**
 * Deterministic split by group (a slide never lands in two parts) with the given fractions; every
 * requested part must get at least one item.
 */
export function splitDataset(items: DatasetItem[], fractions: { train: number; validation: number; test: number }, seed: number): Split {
  const total = fractions.train + fractions.validation + fractions.test;
  if (!(Math.abs(total - 1) < 1e-9)) throw new UsageError(`split fractions must add up to 1 but add up to ${total}`);
  const groups = shuffle([...new Set(items.map((i) => i.group))].sort(), seededRandom(seed));
  const nTrain = Math.round(groups.length * fractions.train);
  const nValidation = Math.round(groups.length * fractions.validation);
  const part = new Map<string, keyof Split>();
  groups.forEach((g, i) => part.set(g, i < nTrain ? 'train' : i < nTrain + nValidation ? 'validation' : 'test'));
  const split: Split = { train: [], validation: [], test: [] };
  for (const item of items) split[part.get(item.group)!].push(item);
  for (const name of ['train', 'validation', 'test'] as const) {
    if (fractions[name] > 0 && split[name].length === 0) throw new InputError(`the ${name} split is empty: ${groups.length} groups are too few for these fractions`);
  }
  return split;
}

/**
 * Per-channel mean and standard deviation of x/255 over (a seeded sample of) the images, as the paper
 * normalizes each dataset. Grey images count as three equal channels.
 */
export async function channelStats(items: DatasetItem[], options: { sample?: number; seed?: number } = {}): Promise<{ mean: [number, number, number]; std: [number, number, number] }> {
  if (items.length === 0) throw new UsageError('channelStats needs at least one image');
  // A uniform sample: the first `sample` items of a seeded shuffle.
  const chosen = options.sample && options.sample < items.length ? shuffle([...items], seededRandom(options.seed ?? 1)).slice(0, options.sample) : items;
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  let n = 0;
  for (const item of chosen) {
    // The same decoding as training and scoring (16-bit grey included).
    const image = await decodeImage(item.file);
    const info = { width: image.width, height: image.height };
    for (let i = 0; i < info.width * info.height; i++)
      for (let c = 0; c < 3; c++) {
        const v = image.pixels[i * 3 + c]! / 255;
        sum[c]! += v;
        sq[c]! += v * v;
      }
    n += info.width * info.height;
  }
  const mean = sum.map((s) => s / n) as [number, number, number];
  const std = sq.map((s, c) => Math.sqrt(Math.max(1e-12, s / n - mean[c]! ** 2))) as [number, number, number];
  return { mean, std };
}
