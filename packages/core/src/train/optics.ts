/**
 * The physics of a brightfield scanner, as plain functions on float images, for synthetic defocus
 * that looks like real defocus (scanner-defocus.ts):
 * - light: sRGB <-> linear light (the sRGB transfer curve); optical density OD = -ln(T) and the
 *   Ruifrok-Johnston H&E-DAB stain vectors, so stain strength varies as real staining does;
 * - optics: the point-spread function of a defocused circular aperture (a disk whose radius grows with
 *   the distance from focus, optionally with spherical aberration, which moves energy to the rim or
 *   the centre), and the small Gaussian blur of the in-focus optics; applied in linear light;
 * - sensor: Poisson-Gaussian noise (shot noise grows with the signal, read noise does not).
 * Images here are Float32Array, 3 channels interleaved, row-major, values in linear light 0..1.
 */

/** sRGB u8 -> linear light, as a 256-entry table. */
export const SRGB_TO_LINEAR: Float32Array = Float32Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

/** Linear light 0..1 -> sRGB 0..255 (unrounded), exact. */
export function linearToSrgb(l: number): number {
  const c = l <= 0 ? 0 : l >= 1 ? 1 : l;
  return 255 * (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
}

const SRGB_TABLE_SIZE = 65536;
// Built on first use: its 65,537 powers would otherwise be paid by every command at import.
let srgbTable: Float32Array | null = null;
/** linearToSrgb by table (within 0.05 of the exact curve on the 0..255 scale): the hot path. */
export function linearToSrgbFast(l: number): number {
  srgbTable ??= Float32Array.from({ length: SRGB_TABLE_SIZE + 1 }, (_, i) => linearToSrgb(i / SRGB_TABLE_SIZE));
  return srgbTable[l <= 0 ? 0 : l >= 1 ? SRGB_TABLE_SIZE : Math.round(l * SRGB_TABLE_SIZE)]!;
}

/**
 * Stain vectors (rows: haematoxylin, eosin, DAB; columns: OD in R, G, B), unit length, from Ruifrok &
 * Johnston (2001), the matrix scikit-image's rgb2hed uses.
 */
const STAINS = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
].map((v) => { const n = Math.hypot(v[0]!, v[1]!, v[2]!); return v.map((x) => x / n); });

function invert3(m: number[][]): number[][] {
  const [a, b, c] = m[0]!; const [d, e, f] = m[1]!; const [g, h, i] = m[2]!;
  const A = e! * i! - f! * h!, B = -(d! * i! - f! * g!), C = d! * h! - e! * g!;
  const det = a! * A + b! * B + c! * C;
  return [
    [A / det, -(b! * i! - c! * h!) / det, (b! * f! - c! * e!) / det],
    [B / det, (a! * i! - c! * g!) / det, -(a! * f! - c! * d!) / det],
    [C / det, -(a! * h! - b! * g!) / det, (a! * e! - b! * d!) / det],
  ];
}
/** OD (R, G, B) -> stain amounts (H, E, D): od = amounts x STAINS, so amounts = od x STAINS^-1. */
const UNMIX = invert3(STAINS);

/**
 * Rescales each stain's amount (H, E, DAB) by `scale[i]` and adds `shift[i]` (in OD units), in place,
 * on linear-light pixels: the variation between labs, stain batches and section thicknesses. A common
 * scale below 1 makes the tissue paler (less contrast) without changing its focus.
 */
export function jitterStains(image: Float32Array, scale: readonly number[], shift: readonly number[]): void {
  const floor = 1 / 512; // darkest transmission considered (OD ~6.2), keeps ln() finite
  for (let p = 0; p < image.length; p += 3) {
    const od0 = -Math.log(Math.max(floor, image[p]!));
    const od1 = -Math.log(Math.max(floor, image[p + 1]!));
    const od2 = -Math.log(Math.max(floor, image[p + 2]!));
    for (let c = 0; c < 3; c++) {
      let od = 0;
      for (let s = 0; s < 3; s++) {
        const amount = od0 * UNMIX[0]![s]! + od1 * UNMIX[1]![s]! + od2 * UNMIX[2]![s]!;
        od += (amount * scale[s]! + shift[s]!) * STAINS[s]![c]!;
      }
      // Amounts may be negative (colours outside the three stains' cone); only the result must be
      // a physical transmission (0 < T <= 1).
      image[p + c] = Math.exp(-Math.max(0, od));
    }
  }
}

export interface PsfOptions {
  /** Radius of the defocus disk in pixels (0 = in focus). */
  radius: number;
  /**
   * Spherical aberration, -0.5..0.5: the PSF is (1 - s) * disk(r) + s * disk(0.6 r) (each normalized),
   * so s > 0 concentrates light in the centre and s < 0 at the rim, as on the two sides of focus.
   */
  spherical?: number;
}

/** One row of a PSF as runs of equal weight: taps dx in lo..hi (inclusive) have weight w. */
export interface PsfRun { dy: number; lo: number; hi: number; w: number }

/** A PSF as runs (for prefix-sum convolution) and as a dense (2 half + 1)^2 matrix (the reference). */
export interface Psf {
  half: number;
  runs: PsfRun[];
  weights: Float32Array;
}

const INNER_DISK = 0.6;

/** Coverage of pixel column dx by the chord [-hw, hw] of a disk row. */
function chordCoverage(dx: number, hw: number): number {
  return Math.max(0, Math.min(dx + 0.5, hw) - Math.max(dx - 0.5, -hw));
}

/**
 * The PSF of a defocused circular aperture: per row dy, the chord of the disk (half-length
 * sqrt(r^2 - dy^2)) covers each pixel by the overlap length (anti-aliased along rows), with the
 * spherical-aberration mixture of two concentric disks; normalized to sum 1. A radius below 0.5 px is
 * a point (the identity).
 */
export function defocusPsf(o: PsfOptions): Psf {
  const s = o.spherical ?? 0;
  if (!(o.radius >= 0) || !(Math.abs(s) <= 0.5)) throw new RangeError(`PSF needs radius >= 0 and |spherical| <= 0.5; got ${o.radius}, ${s}`);
  if (o.radius < 0.5) return { half: 0, runs: [{ dy: 0, lo: 0, hi: 0, w: 1 }], weights: Float32Array.of(1) };
  const half = Math.ceil(o.radius);
  const size = 2 * half + 1;
  const disk = (r: number) => {
    const m = new Float64Array(size * size);
    let sum = 0;
    for (let dy = -half; dy <= half; dy++) {
      const hw = Math.sqrt(Math.max(0, r * r - dy * dy));
      for (let dx = -half; dx <= half; dx++) { const c = chordCoverage(dx, hw); m[(dy + half) * size + dx + half] = c; sum += c; }
    }
    return m.map((v) => v / sum);
  };
  const outer = disk(o.radius);
  const inner = s !== 0 ? disk(Math.max(0.5, INNER_DISK * o.radius)) : outer;
  // Rim-heavy mixtures (s < 0) subtract the inner disk; on small pixelated disks that can dip below 0.
  const mixed = outer.map((v, i) => Math.max(0, (1 - s) * v + s * inner[i]!));
  const total = mixed.reduce((a, b) => a + b, 0);
  const weights = Float32Array.from(mixed, (v) => v / total);
  const runs: PsfRun[] = [];
  for (let dy = -half; dy <= half; dy++) {
    let dx = -half;
    while (dx <= half) {
      const w = weights[(dy + half) * size + dx + half]!;
      let hi = dx;
      while (hi + 1 <= half && weights[(dy + half) * size + hi + 1 + half] === w) hi++;
      if (w !== 0) runs.push({ dy, lo: dx, hi, w });
      dx = hi + 1;
    }
  }
  return { half, runs, weights };
}

/**
 * The reference convolution: channel `channel` of `src` (width x height, 3 channels) with the dense
 * weights, for the out x out window whose top-left source pixel is (offset, offset), into channel
 * `channel` of `dst` (out x out, 3 channels). The window keeps psf.half px of margin inside src.
 */
export function convolveChannelReference(src: Float32Array, width: number, height: number, channel: number, psf: Psf, offset: number, out: number, dst: Float32Array): void {
  checkWindow(width, height, psf, offset, out);
  const size = 2 * psf.half + 1;
  for (let y = 0; y < out; y++)
    for (let x = 0; x < out; x++) {
      let acc = 0;
      for (let ky = 0; ky < size; ky++)
        for (let kx = 0; kx < size; kx++) acc += psf.weights[ky * size + kx]! * src[((y + offset + ky - psf.half) * width + x + offset + kx - psf.half) * 3 + channel]!;
      dst[(y * out + x) * 3 + channel] = acc;
    }
}

function checkWindow(width: number, height: number, psf: Psf, offset: number, out: number): void {
  if (offset < psf.half || offset + out + psf.half > Math.min(width, height)) throw new RangeError(`PSF of half width ${psf.half} needs ${psf.half} px of margin around the ${out} px window at ${offset}`);
}

/**
 * The same convolution by runs: prefix sums along each source row turn a run of equal weights into
 * two reads, so a disk of radius r costs O(r) per pixel instead of O(r^2).
 */
export function convolveChannel(src: Float32Array, width: number, height: number, channel: number, psf: Psf, offset: number, out: number, dst: Float32Array): void {
  checkWindow(width, height, psf, offset, out);
  const rowsNeeded = out + 2 * psf.half;
  const firstRow = offset - psf.half;
  // prefix[r][x + 1] = sum of src row (firstRow + r), columns 0..x of this channel.
  const prefix = new Float64Array(rowsNeeded * (width + 1));
  for (let r = 0; r < rowsNeeded; r++) {
    let acc = 0;
    const base = r * (width + 1);
    const srcBase = (firstRow + r) * width * 3 + channel;
    for (let x = 0; x < width; x++) { acc += src[srcBase + 3 * x]!; prefix[base + x + 1] = acc; }
  }
  const row = new Float64Array(out);
  for (let y = 0; y < out; y++) {
    row.fill(0);
    for (const run of psf.runs) {
      const start = (y + psf.half + run.dy) * (width + 1) + offset;
      const hi = start + run.hi + 1;
      const lo = start + run.lo;
      const w = run.w;
      for (let x = 0; x < out; x++) row[x]! += w * (prefix[hi + x]! - prefix[lo + x]!);
    }
    let d = y * out * 3 + channel;
    for (let x = 0; x < out; x++, d += 3) dst[d] = row[x]!;
  }
}

/** Separable Gaussian blur (sigma px) of all channels, in place; edges clamp. sigma 0 does nothing. */
export function gaussianBlur(image: Float32Array, width: number, height: number, sigma: number): void {
  if (!(sigma > 0)) return;
  const half = Math.ceil(3 * sigma);
  const taps = Float64Array.from({ length: 2 * half + 1 }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const total = taps.reduce((a, b) => a + b, 0);
  for (let i = 0; i < taps.length; i++) taps[i]! /= total;
  const tmp = new Float32Array(image.length);
  const pass = (from: Float32Array, to: Float32Array, horizontal: boolean) => {
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++)
        for (let c = 0; c < 3; c++) {
          let acc = 0;
          for (let k = -half; k <= half; k++) {
            const xx = horizontal ? Math.min(width - 1, Math.max(0, x + k)) : x;
            const yy = horizontal ? y : Math.min(height - 1, Math.max(0, y + k));
            acc += taps[k + half]! * from[(yy * width + xx) * 3 + c]!;
          }
          to[(y * width + x) * 3 + c] = acc;
        }
  };
  pass(image, tmp, true);
  pass(tmp, image, false);
}

/**
 * Poisson-Gaussian sensor noise, in place: each value l gets normals[i] scaled to a variance of
 * gain * l + readNoise^2 (shot noise in the Gaussian limit, plus read noise), then is clamped to 0..1.
 * The standard normal deviates are given so that several images can share one noise pattern.
 */
export function addSensorNoise(image: Float32Array, gain: number, readNoise: number, normals: Float32Array): void {
  if (normals.length < image.length) throw new RangeError(`need ${image.length} normal deviates, got ${normals.length}`);
  const r2 = readNoise * readNoise;
  for (let i = 0; i < image.length; i++) {
    const l = image[i]!;
    const v = l + Math.sqrt(Math.max(0, gain * l) + r2) * normals[i]!;
    image[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}
