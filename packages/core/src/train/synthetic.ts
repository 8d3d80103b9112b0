/**
 * Labelled defocus patches from in-focus real tissue: random tissue crops blurred by a point-spread
 * function whose size grows with the defocus level (level 0 untouched), like FocusPath's z-steps;
 * optional sensor noise and JPEG re-compression as a scanner would add. This is how fqa trains
 * without the public datasets. Two PSFs:
 * - 'gaussian' (default): sigma = level * sigmaPerLevel pixels (aberrated, diffraction-dominated blur);
 * - 'disk': a uniform disk of radius level * sigmaPerLevel * 2 pixels, the geometric-optics image of a
 *   point through a defocused circular aperture (same second moment as a Gaussian of sigma r/2),
 *   anti-aliased at its edge.
 */
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { openSource } from '../slide-source.js';
import { sampledTissueShare } from '../tissue.js';
import { gaussian, seededRandom } from './random.js';

export interface DefocusOptions {
  /** Slides or images with in-focus tissue. */
  sources: string[];
  count: number;
  patchSize: number;
  /** Levels 0..levels-1; the label of a patch is its level. */
  levels: number;
  sigmaPerLevel: number;
  /** Point-spread function (default 'gaussian'); a disk has radius 2 * sigma, the same spread. */
  psf?: 'gaussian' | 'disk';
  seed: number;
  /** Minimum fraction of tissue pixels in a crop (default 0.8). */
  minTissue?: number;
  /** Standard deviation of added Gaussian noise in u8 units (default 0). */
  noise?: number;
  /** JPEG quality to re-compress with, or none. */
  jpegQuality?: number;
}

export interface PatchSet {
  /** count x size x size RGB u8. */
  patches: Uint8Array;
  labels: Float32Array;
  count: number;
  size: number;
  /**
   * The source crop of each patch: patches of one crop are the same tissue at other defocus levels,
   * so a split keeps them on one side (splitByCrop). Absent: every patch is a crop of its own.
   */
  crops?: Uint32Array;
}

/** A normalized uniform disk of radius r px, each tap weighted by the fraction of it inside (4x4 supersampling). */
export function diskKernel(radius: number): { width: number; height: number; kernel: number[] } {
  const half = Math.ceil(radius);
  const size = 2 * half + 1;
  const kernel: number[] = [];
  for (let y = -half; y <= half; y++)
    for (let x = -half; x <= half; x++) {
      let inside = 0;
      for (let sy = 0; sy < 4; sy++)
        for (let sx = 0; sx < 4; sx++) if ((x - 0.375 + sx / 4) ** 2 + (y - 0.375 + sy / 4) ** 2 <= radius * radius) inside++;
      kernel.push(inside / 16);
    }
  const sum = kernel.reduce((a, b) => a + b, 0);
  return { width: size, height: size, kernel: kernel.map((v) => v / sum) };
}

export async function syntheticDefocus(o: DefocusOptions): Promise<PatchSet> {
  const random = seededRandom(o.seed);
  const size = o.patchSize;
  const margin = Math.ceil(3 * o.sigmaPerLevel * (o.levels - 1)) + 2;
  const crop = size + 2 * margin;
  const minTissue = o.minTissue ?? 0.8;
  if (!(o.sigmaPerLevel >= 0.3)) throw new InputError(`sigmaPerLevel must be at least 0.3 px (the smallest blur sharp applies), got ${o.sigmaPerLevel}`);
  const sources = await Promise.all(o.sources.map((s) => openSource(s)));
  // Sources up to 64 MP are read once and cropped in memory; larger ones region by region.
  const whole = new Map<number, Uint8Array>();
  const read = async (index: number, x: number, y: number): Promise<Uint8Array> => {
    const source = sources[index]!;
    const { width, height } = source.levels[0]!;
    if (width * height > 2 ** 26) return source.readRegion(0, x, y, crop, crop);
    let all = whole.get(index);
    if (!all) {
      all = await source.readRegion(0, 0, 0, width, height);
      whole.set(index, all);
    }
    const out = new Uint8Array(crop * crop * 3);
    for (let row = 0; row < crop; row++) out.set(all.subarray(((y + row) * width + x) * 3, ((y + row) * width + x + crop) * 3), row * crop * 3);
    return out;
  };
  try {
    const patches = new Uint8Array(o.count * size * size * 3);
    const labels = new Float32Array(o.count);
    let made = 0;
    let attempts = 0;
    while (made < o.count) {
      if (++attempts > o.count * 200) throw new InputError(`could not find ${o.count} tissue crops of ${crop} px with ${minTissue * 100}% tissue in ${o.sources.join(', ')}`);
      const index = Math.floor(random() * sources.length);
      const source = sources[index]!;
      const { width, height } = source.levels[0]!;
      if (width < crop || height < crop) continue;
      const x = Math.floor(random() * (width - crop + 1));
      const y = Math.floor(random() * (height - crop + 1));
      const rgb = await read(index, x, y);
      if (sampledTissueShare(rgb, crop, margin, margin, size, size, 3) < minTissue) continue;
      const level = Math.floor(random() * o.levels);
      const sigma = level * o.sigmaPerLevel;
      let image = sharp(rgb, { raw: { width: crop, height: crop, channels: 3 } });
      if (sigma >= 0.3) image = (o.psf ?? 'gaussian') === 'disk' ? image.convolve(diskKernel(2 * sigma)) : image.blur(sigma);
      let out = await image.extract({ left: margin, top: margin, width: size, height: size }).raw().toBuffer();
      if (o.noise) {
        for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(out[i]! + o.noise * gaussian(random))));
      }
      if (o.jpegQuality) {
        const jpeg = await sharp(out, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: o.jpegQuality }).toBuffer();
        out = await sharp(jpeg).raw().toBuffer();
      }
      patches.set(out, made * size * size * 3);
      labels[made] = level;
      made++;
    }
    return { patches, labels, count: o.count, size };
  } finally {
    for (const s of sources) s.close();
  }
}
