/**
 * When a focus model cannot judge: fqa's models are trained on brightfield tissue at a known
 * resolution, so a dark-background image (fluorescence, dark field), a slide with too few tissue
 * patches or an unknown resolution gets a warning and no pass/fail verdict. The limits live here.
 */
import { classifyPixel, PixelClass } from './tissue.js';

/** Fewer scored patches than this and the "% of tissue out of focus" rule is too coarse to judge. */
export const MIN_PATCHES_FOR_VERDICT = 20;

/** A patch of a plain image (fqa-scan score) with less tissue than this is background, not scored. */
export const SCORE_MIN_TISSUE = 0.02;

/**
 * Share of the slide's area excluded as marker pen above which the scan warns. A pen circle around
 * a region covers ~1-3 % of a slide; whatever the detector excludes at that size deserves a look
 * at the overview, because what it took for ink could be dark tissue (a fold, a thick section)
 * that was then never scored.
 */
export const PEN_WARNING_SHARE = 0.01;

/** The scan's warning for a slide with more than PEN_WARNING_SHARE of its area excluded as pen, else null. */
export function penWarning(penFraction: number): string | null {
  if (!(penFraction > PEN_WARNING_SHARE)) return null;
  return `${(100 * penFraction).toFixed(1)} % of the slide excluded as marker pen (not scored): check on the overview that it is ink, not dark tissue`;
}

/** Share of near-black pixels above which the image has a dark background. */
const DARK_PIXEL_SHARE = 0.5;

export interface BackgroundCheck {
  /** Share of pixels darker than the ink limit (all channels < 30). */
  darkShare: number;
  /** A dark background: fluorescence or dark field, outside the models' brightfield domain. */
  darkBackground: boolean;
}

/** Looks at every `step`-th pixel of an RGB image (3 bytes per pixel, rows rowStride apart). */
export function checkBackground(rgb: Uint8Array, width: number, height: number, rowStride = 3 * width, step = 3): BackgroundCheck {
  let dark = 0;
  let all = 0;
  for (let y = 0; y < height; y += step)
    for (let x = 0; x < width; x += step) {
      const p = y * rowStride + 3 * x;
      all++;
      if (classifyPixel(rgb[p]!, rgb[p + 1]!, rgb[p + 2]!) === PixelClass.Ink) dark++;
    }
  const darkShare = all > 0 ? dark / all : 0;
  return { darkShare, darkBackground: darkShare > DARK_PIXEL_SHARE };
}

export const DARK_BACKGROUND_WARNING =
  'dark background (fluorescence or dark field?): fqa\'s models are trained on brightfield tissue, so these scores are not a focus judgement';

/**
 * Why a slide gets no pass/fail verdict, or null when it can be judged. Reasons in order of
 * precedence; the caller sets the verdict to 'unknown' (or keeps 'no-tissue') and reports the reason.
 */
export function verdictBlocker(o: { darkBackground: boolean; patchesScored: number; threshold: number | null; resolutionKnown: boolean }): string | null {
  if (o.threshold === null) return 'the model has no threshold and none was given';
  if (o.darkBackground) return DARK_BACKGROUND_WARNING;
  if (!o.resolutionKnown) return 'the slide\'s resolution is unknown (no mpp in its metadata): give --mpp so it is scanned at the model\'s µm/px';
  if (o.patchesScored < MIN_PATCHES_FOR_VERDICT) return `only ${o.patchesScored} patches with tissue: too few for a verdict (at least ${MIN_PATCHES_FOR_VERDICT})`;
  return null;
}
