/**
 * Limits on what fqa accepts, written once: every check and every message uses these.
 */

/**
 * Most pixels fqa decodes into memory at once (a plain image, a tissue-mask level, a region):
 * 2^28 px is 768 MiB of RGB. Checked from the header before any decode, because a tiny file can
 * declare billions of pixels (a uniform 45,000² PNG is 6 MB).
 */
export const MAX_DECODED_PIXELS = 2 ** 28;

/**
 * Resolutions (µm per pixel) a microscope scan can have: from oil-immersion 100x (~0.05) to a
 * low-power overview (~50). Metadata outside it is a screen or print default (72 or 300 dpi is
 * 353 or 84.7 µm/px), not a scan resolution; --mpp and a model's resolution must lie inside it.
 */
export const MPP_RANGE = { min: 0.05, max: 50 } as const;

export function plausibleMpp(mpp: number): boolean {
  return Number.isFinite(mpp) && mpp >= MPP_RANGE.min && mpp <= MPP_RANGE.max;
}

/**
 * Largest model file fqa reads: ResNet-101, the biggest registry network, is ~170 MB of float32
 * weights. Checked on the open handle before a byte is read, so `--model /dev/zero` or a forged
 * job's huge file is refused instead of read until memory runs out.
 */
export const MAX_MODEL_FILE_BYTES = 2 ** 30;

/**
 * Most a scan up-samples a slide to reach the model's resolution (slide µm/px over model µm/px).
 * Up-sampling adds no detail: a slide 4x coarser than the model is already far from what the model
 * learned to judge, and each 2x costs 4x the pixels, so a 50 µm/px overview scanned for a 0.5 µm/px
 * model (100x, 10,000x the pixels) would run for minutes to score interpolation. Beyond this the
 * slide is refused with both resolutions named.
 */
export const MAX_UPSAMPLING = 4;
