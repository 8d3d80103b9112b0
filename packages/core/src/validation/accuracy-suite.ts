/**
 * The accuracy suite: how a model judges *real* defocus, on the real data in ../shared/data, so that
 * any model (the shipped default, a candidate, converted published weights) is checked the same way:
 *
 * - through-focus series (zstacks/): each plane scored whole (mean of dense patches); SRCC of the
 *   score with |plane - best plane| (best = the sharpest by gradient energy, zstacks/planes.csv), the
 *   best plane's score and the far planes' (1-3) against the threshold;
 * - the TCGA@Focus pair (one patch labelled in focus, one out of focus);
 * - BBBC006 mean score of z00 (32 um from focus) and z10 (12 um);
 * - the QC verdict of the in-focus clinical slide CMU-1-Small-Region.svs;
 * - the demo slide's IoU (synthetic tissue, known defocused regions).
 *
 * Validation data only: the adipose series must never be in a shipped model's training data.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDemoSlide, matchDemo, type DemoMatch, type DemoSlide } from '../demo.js';
import { InputError } from '../errors.js';
import { loadModel, type LoadedModel } from '../model-file.js';
import { scanSlide } from '../scan/scan-slide.js';
import { resolveScoreOptions, scoreImage } from '../score.js';
import { srcc } from '../train/metrics.js';

export interface SuiteModel {
  name: string;
  /** A model file on disk (scans load it in their workers). */
  file: string;
}

export interface SeriesResult {
  series: string;
  bestPlane: number;
  planes: { plane: number; file: string; score: number }[];
  /** SRCC(score, |plane - best|). */
  srcc: number;
  bestScore: number;
  /** Scores of the first three planes (farthest from focus on the series' far side). */
  firstPlanes: number[];
}

export interface SuiteResult {
  name: string;
  threshold: number | null;
  series: SeriesResult[];
  tcga: { inFocus: number; outOfFocus: number };
  bbbc006: { z00: number; z10: number };
  cmu1: { verdict: string; outOfFocusPercent: number | null; patches: number };
  demo: DemoMatch | null;
  seconds: number;
}

export const TCGA_IN_FOCUS = 'tcga-focus/TCGA@Focus_patch_i_32381_j_37784.png';
export const TCGA_OUT_OF_FOCUS = 'tcga-focus/TCGA@Focus_patch_i_9651_j_81514.png';
export const CMU1 = 'slides/CMU-1-Small-Region.svs';

interface PlaneRow { file: string; series: string; plane: number; tenengrad: number }

const PLANES_HEADER = 'file,stack,plane,tenengrad';

/** zstacks/planes.csv, checked row by row: a corrupt index is one clear error, not NaN correlations. */
export function readPlanes(sharedData: string): PlaneRow[] {
  const csv = path.join(sharedData, 'zstacks', 'planes.csv');
  let text: string;
  try {
    text = readFileSync(csv, 'utf8');
  } catch (err) {
    throw new InputError(`${csv}: cannot read the z-stack index (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  const lines = text.trim().split('\n');
  if (lines[0]?.trim() !== PLANES_HEADER) throw new InputError(`${csv}: expected the header "${PLANES_HEADER}", got "${lines[0]?.trim() ?? ''}"`);
  return lines.slice(1).map((line, i) => {
    const [file, series, plane, tenengrad, ...rest] = line.trim().split(',');
    const row = { file: file ?? '', series: series ?? '', plane: Number(plane), tenengrad: Number(tenengrad) };
    const inside = row.file !== '' && !path.isAbsolute(row.file) && !row.file.split(/[\\/]/).includes('..');
    if (rest.length > 0 || !inside || row.series === '' || !/^\d+$/.test(plane ?? '') || !/^\d+(\.\d+)?$/.test(tenengrad ?? '')) {
      throw new InputError(`${csv}: line ${i + 2} is not "${PLANES_HEADER}" (a file inside zstacks/, an integer plane, a non-negative tenengrad): "${line.trim()}"`);
    }
    return row;
  });
}

async function meanScore(file: string, model: LoadedModel): Promise<number> {
  return (await scoreImage(file, await resolveScoreOptions({ model }))).mean;
}

export async function scoreSeries(sharedData: string, model: LoadedModel): Promise<SeriesResult[]> {
  const rows = readPlanes(sharedData);
  const names = [...new Set(rows.map((r) => r.series))];
  const out: SeriesResult[] = [];
  for (const series of names) {
    const planes = rows.filter((r) => r.series === series).sort((a, b) => a.plane - b.plane);
    const best = planes.reduce((a, b) => (b.tenengrad > a.tenengrad ? b : a));
    const scored = [];
    for (const p of planes) scored.push({ plane: p.plane, file: p.file, score: await meanScore(path.join(sharedData, 'zstacks', p.file), model) });
    const scores = Float32Array.from(scored, (p) => p.score);
    const distance = Float32Array.from(scored, (p) => Math.abs(p.plane - best.plane));
    out.push({
      series,
      bestPlane: best.plane,
      planes: scored,
      srcc: srcc(scores, distance),
      bestScore: scored.find((p) => p.plane === best.plane)!.score,
      firstPlanes: scored.slice(0, 3).map((p) => p.score),
    });
  }
  return out;
}

/** Runs every check for each model; the demo slide is made once (in a temporary folder) for all. */
export async function runAccuracySuite(sharedData: string, models: SuiteModel[], options: { demo?: boolean; demoSize?: number; log?: (line: string) => void } = {}): Promise<SuiteResult[]> {
  const log = options.log ?? (() => {});
  const temp = mkdtempSync(path.join(os.tmpdir(), 'fqa-accuracy-'));
  try {
    let demo: DemoSlide | null = null;
    if (options.demo ?? true) {
      log('making the demo slide');
      demo = await makeDemoSlide(path.join(temp, 'demo-slide.tiff'), { size: options.demoSize ?? 4096 });
    }
    const bbbc = (z: string) => {
      const dir = path.join(sharedData, 'bbbc006', z);
      return readdirSync(dir).filter((f) => /\.tiff?$/i.test(f)).map((f) => path.join(dir, f));
    };
    const results: SuiteResult[] = [];
    for (const m of models) {
      const start = performance.now();
      log(`${m.name}: z-stacks`);
      const model = await loadModel(m.file);
      const series = await scoreSeries(sharedData, model);
      const tcga = { inFocus: await meanScore(path.join(sharedData, TCGA_IN_FOCUS), model), outOfFocus: await meanScore(path.join(sharedData, TCGA_OUT_OF_FOCUS), model) };
      log(`${m.name}: BBBC006`);
      const mean = async (files: string[]) => { let s = 0; for (const f of files) s += await meanScore(f, model); return s / files.length; };
      const bbbc006 = { z00: await mean(bbbc('z00')), z10: await mean(bbbc('z10')) };
      log(`${m.name}: CMU-1-Small-Region`);
      const cmu = await scanSlide(path.join(sharedData, CMU1), { model: m.file });
      const cmu1 = {
        verdict: cmu.summary.verdict,
        outOfFocusPercent: cmu.summary.outOfFocusFraction === null ? null : 100 * cmu.summary.outOfFocusFraction,
        patches: cmu.summary.patchesScored,
      };
      let demoMatch: DemoMatch | null = null;
      if (demo) {
        log(`${m.name}: demo slide`);
        demoMatch = matchDemo(demo, await scanSlide(demo.file, { model: m.file }));
      }
      results.push({ name: m.name, threshold: model.header.score.threshold, series, tcga, bbbc006, cmu1, demo: demoMatch, seconds: (performance.now() - start) / 1000 });
    }
    return results;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

const f2 = (v: number) => (Number.isNaN(v) ? 'n/a' : v.toFixed(2));
const f3 = (v: number) => (Number.isNaN(v) ? 'n/a' : v.toFixed(3));
/** "above" / "below" the threshold, or nothing without one. */
function side(v: number, threshold: number | null): string {
  if (threshold === null || Number.isNaN(v)) return '';
  return v > threshold ? ' (above)' : ' (below)';
}

/** The suite as one Markdown table: a row per check, a column per model. */
export function accuracyTable(results: SuiteResult[]): string {
  const rows: string[][] = [];
  const add = (check: string, cell: (r: SuiteResult) => string) => rows.push([check, ...results.map(cell)]);
  add('threshold', (r) => (r.threshold === null ? 'none' : String(r.threshold)));
  const seriesNames = results[0]?.series.map((s) => s.series) ?? [];
  for (const name of seriesNames) {
    const get = (r: SuiteResult) => r.series.find((s) => s.series === name)!;
    const best = results[0]!.series.find((s) => s.series === name)!.bestPlane;
    add(`${name}: SRCC(score, \\|plane − ${best}\\|)`, (r) => f3(get(r).srcc));
    add(`${name}: best plane ${best} score`, (r) => f2(get(r).bestScore) + side(get(r).bestScore, r.threshold));
    add(`${name}: first 3 planes, lowest score`, (r) => { const v = Math.min(...get(r).firstPlanes); return f2(v) + side(v, r.threshold); });
  }
  add('TCGA@Focus in-focus patch', (r) => f2(r.tcga.inFocus) + side(r.tcga.inFocus, r.threshold));
  add('TCGA@Focus out-of-focus patch', (r) => f2(r.tcga.outOfFocus) + side(r.tcga.outOfFocus, r.threshold));
  add('BBBC006 mean z00 (far) > z10 (nearer)', (r) => `${f2(r.bbbc006.z00)} ${r.bbbc006.z00 > r.bbbc006.z10 ? '>' : '≤'} ${f2(r.bbbc006.z10)}`);
  add('CMU-1-Small-Region.svs verdict (% tissue out of focus)', (r) => `${r.cmu1.verdict}${r.cmu1.outOfFocusPercent === null ? '' : ` (${r.cmu1.outOfFocusPercent.toFixed(1)} %)`}`);
  const overlap = (o: { iou: number; precision: number; recall: number }) => `${f3(o.iou)} (${f3(o.precision)} / ${f3(o.recall)})`;
  add('demo slide IoU of the out-of-focus area (precision / recall)', (r) => (r.demo === null ? '–' : r.threshold === null ? 'no threshold' : overlap(r.demo.area)));
  add('demo slide IoU per patch, truth at the patch centre', (r) => (r.demo === null ? '–' : r.threshold === null ? 'no threshold' : overlap(r.demo)));
  add('demo slide IoU, patches entirely in or out of the regions', (r) => (r.demo === null ? '–' : r.threshold === null ? 'no threshold' : f3(r.demo.unambiguousIou)));
  const header = ['check', ...results.map((r) => r.name)];
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n') + '\n';
}
