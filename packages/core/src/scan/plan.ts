/**
 * The tiling plan of a scan: which pyramid level and resampling give the model's working
 * resolution, the patch grid in working pixels, and regions of whole patches to score.
 */
import { InputError, UsageError } from '../errors.js';
import { MAX_UPSAMPLING } from '../limits.js';
import type { ScaledSourceLevel, SourceLevel } from '../slide-source.js';

export interface LevelChoice {
  level: number;
  /** Level pixels per working pixel (1 = read the level as is; > 1 = shrink after reading). */
  resample: number;
  /** Level-0 pixels per working pixel. */
  level0PerWorking: number;
  /** µm per working pixel, when known. */
  mpp: number | null;
  /**
   * The scaled decode that gives the working resolution in place of resampling (`level` decoded at
   * 1/denom by the JPEG decoder, resample = denom), or null.
   */
  scaled: ScaledSourceLevel | null;
  warnings: string[];
}

/**
 * Picks the level whose resolution is closest to, and not coarser than, the model's; the rest is
 * made up by resampling, or, where one of `scaled` (the direct reader's 1/2, 1/4, 1/8 decodes,
 * offered only to the fused path) has the working resolution within 2 %, by decoding at that scale.
 * Without the slide's or the model's mpp, level 0 as is.
 */
export function chooseLevel(levels: SourceLevel[], slideMpp: number | null, modelMpp: number | null, scaled: ScaledSourceLevel[] = []): LevelChoice {
  const warnings: string[] = [];
  if (modelMpp === null) return { level: 0, resample: 1, level0PerWorking: 1, mpp: slideMpp, scaled: null, warnings };
  if (slideMpp === null) {
    warnings.push(`no resolution (mpp) in the slide metadata and no --mpp given: scanned at level 0, assuming the model's ${modelMpp} µm/px`);
    return { level: 0, resample: 1, level0PerWorking: 1, mpp: null, scaled: null, warnings };
  }
  const wanted = modelMpp / slideMpp; // level-0 pixels per working pixel
  let level = 0;
  for (let i = 0; i < levels.length; i++) if (levels[i]!.downsample <= wanted * 1.02) level = i;
  let resample = wanted / levels[level]!.downsample;
  if (Math.abs(resample - 1) < 0.02) resample = 1;
  if (resample < 1) warnings.push(`slide resolution ${slideMpp.toFixed(3)} µm/px is coarser than the model's ${modelMpp} µm/px: upsampled ${(1 / resample).toFixed(2)}x`);
  if (resample > 1) {
    // Of the scaled decodes at the working resolution, the one from the coarsest level: fewest bytes
    // to decode. Its pixels are the working pixels, as a level read as is (resample 1 to it).
    let pick: ScaledSourceLevel | null = null;
    for (const s of scaled) {
      if (Math.abs(wanted / s.downsample - 1) < 0.02 && (pick === null || levels[s.level]!.downsample > levels[pick.level]!.downsample)) pick = s;
    }
    if (pick !== null) return { level: pick.level, resample: pick.denom, level0PerWorking: pick.downsample, mpp: modelMpp, scaled: pick, warnings };
  }
  return { level, resample, level0PerWorking: resample * levels[level]!.downsample, mpp: modelMpp, scaled: null, warnings };
}

/** How many times a slide at `slideMpp` is up-sampled to reach the model's `modelMpp` (1 when it is not). */
export function upsamplingFactor(slideMpp: number | null, modelMpp: number | null): number {
  return slideMpp === null || modelMpp === null ? 1 : Math.max(1, slideMpp / modelMpp);
}

function fixed(mpp: number): string {
  return String(Number(mpp.toPrecision(4)));
}

/**
 * Refuses a resolution that would be up-sampled more than MAX_UPSAMPLING to reach the model's, before
 * any pixel is read. From --mpp it is a usage error (it applies to every slide of the run); from a
 * slide's metadata it is that slide's input error, and a batch goes on with the next slide.
 */
export function requireUpsamplingWithinBound(file: string, slideMpp: number | null, modelMpp: number | null, from: 'mpp-option' | 'metadata'): void {
  const factor = upsamplingFactor(slideMpp, modelMpp);
  if (factor <= MAX_UPSAMPLING * 1.0001) return;
  const detail = `is ${factor.toFixed(1)}x coarser than the model's ${fixed(modelMpp!)} µm/px; fqa up-samples at most ${MAX_UPSAMPLING}x (up-sampling adds no detail, only pixels to score)`;
  if (from === 'mpp-option') throw new UsageError(`--mpp ${fixed(slideMpp!)} µm/px ${detail}`);
  throw new InputError(`${file}: not scanned: its resolution ${fixed(slideMpp!)} µm/px (from the slide's metadata; --mpp overrides it) ${detail}`);
}

export interface GridRegion {
  /** Patch index range [col0, col1) x [row0, row1). */
  col0: number;
  col1: number;
  row0: number;
  row1: number;
  /** Working-pixel rectangle covering those patches. */
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Splits a columns x rows patch grid into regions of at most ~maxSide working pixels. */
export function planRegions(columns: number, rows: number, patchSize: number, stride: number, maxSide = 2048): GridRegion[] {
  const per = Math.max(1, Math.floor((maxSide - patchSize) / stride) + 1);
  const regions: GridRegion[] = [];
  for (let row0 = 0; row0 < rows; row0 += per) {
    const row1 = Math.min(rows, row0 + per);
    for (let col0 = 0; col0 < columns; col0 += per) {
      const col1 = Math.min(columns, col0 + per);
      regions.push({
        col0, col1, row0, row1,
        x: col0 * stride,
        y: row0 * stride,
        width: (col1 - col0 - 1) * stride + patchSize,
        height: (row1 - row0 - 1) * stride + patchSize,
      });
    }
  }
  return regions;
}

