/**
 * Synthetic defocus that imitates a brightfield slide scanner, so a model trained on it judges real
 * defocus rather than "low contrast" or "not H&E". Each crop of real in-focus tissue goes through:
 *
 *   specimen    resampled (the scanner's resolution varies) and re-stained (H, E, DAB amounts scaled
 *               and shifted in optical density: pale, dark, IHC-like tissue);
 *   optics      in linear light, the in-focus optics' Gaussian, then the defocus PSF (disk of radius =
 *               level px, per-channel radius for chromatic aberration, spherical aberration);
 *   sensor      Poisson-Gaussian noise;
 *   pipeline    back to sRGB, colour (greyscale, saturation, brightness, contrast), JPEG at scanner
 *               qualities.
 *
 * Every random draw except the level is made once per crop and shared by its `levelsPerCrop`
 * copies, so pairs of the same tissue, stain and scanner differ only in focus: a batch's correlation
 * loss then rewards the focus cue and nothing else. Label = level = defocus-disk radius in pixels at
 * the working resolution (0 = in focus); levels are continuous, with a share exactly in focus.
 */
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { openSource, type SlideSource } from '../slide-source.js';
import { sampledTissueShare } from '../tissue.js';
import { addSensorNoise, convolveChannel, defocusPsf, gaussianBlur, jitterStains, linearToSrgbFast, SRGB_TO_LINEAR } from './optics.js';
import { gaussian, seededRandom } from './random.js';
import type { PatchSet } from './synthetic.js';

type Range = readonly [number, number];

/** The scanner model's ranges; the defaults are the shipped model's. */
export interface ScannerModel {
  /** Resampling factor of the tissue (>1 enlarges), drawn log-uniformly. */
  zoom: Range;
  /** Gaussian sigma (px) of the in-focus optics. */
  opticsSigma: Range;
  /** Spherical aberration (see defocusPsf), -0.5..0.5. */
  spherical: Range;
  /** Relative per-channel deviation of the defocus radius (chromatic aberration). */
  chromatic: number;
  /** Common scale of all stain amounts (pale to dark tissue), and the per-stain jitter around it. */
  stainScale: Range;
  stainJitter: number;
  /** Probability of a greyscale image. */
  grey: number;
  saturation: Range;
  /** Added to sRGB values, as a fraction of 255. */
  brightness: Range;
  /** Contrast around mid-grey. */
  contrast: Range;
  /** Shot-noise gain and read noise (linear light, 0..1 units). */
  shotGain: Range;
  readNoise: Range;
  /** Probability of JPEG re-compression, and its quality range. */
  jpeg: number;
  jpegQuality: Range;
}

export const DEFAULT_SCANNER: ScannerModel = {
  zoom: [0.7, 1.3],
  opticsSigma: [0.3, 0.7],
  spherical: [-0.3, 0.3],
  chromatic: 0.08,
  stainScale: [0.3, 1.3],
  stainJitter: 0.15,
  grey: 0.3,
  saturation: [0.6, 1.3],
  brightness: [-0.08, 0.08],
  contrast: [0.6, 1.15],
  shotGain: [0.0005, 0.004],
  readNoise: [0.002, 0.01],
  jpeg: 0.75,
  jpegQuality: [70, 95],
};

export interface ScannerDefocusOptions {
  /** Slides or images with in-focus tissue. */
  sources: string[];
  /** Number of tissue crops; the set holds count * levelsPerCrop patches. */
  count: number;
  levelsPerCrop: number;
  patchSize: number;
  /** Largest defocus level (disk radius in px). */
  maxLevel: number;
  /** Share of patches exactly in focus (level 0). */
  inFocusShare: number;
  /** Other levels are maxLevel * u^levelPower, u uniform: a power above 1 puts more patches near focus. */
  levelPower?: number;
  seed: number;
  /** Minimum tissue fraction of a crop (default 0.3: sparse tissue such as fat is in-domain). */
  minTissue?: number;
  scanner?: Partial<ScannerModel>;
}

const uniform = (random: () => number, [a, b]: Range) => a + (b - a) * random();

/** The tissue crop of side `side` px (after resampling by `zoom`) at (x, y) of level 0, in sRGB u8. */
async function readZoomed(source: SlideSource, whole: Uint8Array | null, x: number, y: number, readSide: number, side: number): Promise<Uint8Array> {
  const { width } = source.levels[0]!;
  let rgb: Uint8Array;
  if (whole) {
    rgb = new Uint8Array(readSide * readSide * 3);
    for (let row = 0; row < readSide; row++) rgb.set(whole.subarray(((y + row) * width + x) * 3, ((y + row) * width + x + readSide) * 3), row * readSide * 3);
  } else {
    rgb = await source.readRegion(0, x, y, readSide, readSide);
  }
  if (readSide === side) return rgb;
  const resized = await sharp(rgb, { raw: { width: readSide, height: readSide, channels: 3 } }).resize(side, side, { kernel: 'lanczos3' }).raw().toBuffer();
  return new Uint8Array(resized.buffer, resized.byteOffset, resized.byteLength);
}

const toByte = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** Linear light -> sRGB u8 with the camera-side colour steps, in place into `out`. */
function developColour(linear: Float32Array, out: Uint8Array, grey: boolean, saturation: number, brightness: number, contrast: number): void {
  for (let p = 0; p < linear.length; p += 3) {
    let r = linearToSrgbFast(linear[p]!);
    let g = linearToSrgbFast(linear[p + 1]!);
    let b = linearToSrgbFast(linear[p + 2]!);
    const luma = 0.299 * r + 0.587 * g + 0.114 * b;
    const keep = grey ? 0 : saturation;
    r = luma + (r - luma) * keep;
    g = luma + (g - luma) * keep;
    b = luma + (b - luma) * keep;
    out[p] = toByte((r - 128) * contrast + 128 + brightness * 255);
    out[p + 1] = toByte((g - 128) * contrast + 128 + brightness * 255);
    out[p + 2] = toByte((b - 128) * contrast + 128 + brightness * 255);
  }
}

export async function scannerDefocus(o: ScannerDefocusOptions): Promise<PatchSet> {
  const scanner = { ...DEFAULT_SCANNER, ...o.scanner };
  const random = seededRandom(o.seed);
  const size = o.patchSize;
  const minTissue = o.minTissue ?? 0.3;
  // Margin for the widest PSF: the largest radius with chromatic spread, plus 3 sigma of the optics.
  const margin = Math.ceil(o.maxLevel * (1 + scanner.chromatic) + 3 * scanner.opticsSigma[1]) + 2;
  const side = size + 2 * margin;
  const sources = await Promise.all(o.sources.map((s) => openSource(s)));
  const wholes = new Map<number, Uint8Array | null>();
  const total = o.count * o.levelsPerCrop;
  try {
    const usable = sources.map((s, i) => ({ i, s })).filter(({ s }) => Math.min(s.levels[0]!.width, s.levels[0]!.height) >= Math.ceil(side / scanner.zoom[0]));
    if (usable.length === 0) throw new InputError(`no source is large enough for ${side} px crops: ${o.sources.join(', ')}`);
    const patches = new Uint8Array(total * size * size * 3);
    const labels = new Float32Array(total);
    const crops = new Uint32Array(total);
    let crop = 0;
    const linear = new Float32Array(side * side * 3);
    const blurred = new Float32Array(size * size * 3);
    const developed = new Uint8Array(size * size * 3);
    const normals = new Float32Array(size * size * 3);
    let made = 0;
    let attempts = 0;
    while (made < total) {
      if (++attempts > o.count * 200) throw new InputError(`could not find ${o.count} crops with ${minTissue * 100}% tissue in ${o.sources.join(', ')}`);
      // Specimen: where, how large.
      const { i, s } = usable[Math.floor(random() * usable.length)]!;
      const zoom = Math.exp(uniform(random, [Math.log(scanner.zoom[0]), Math.log(scanner.zoom[1])]));
      const { width, height } = s.levels[0]!;
      const readSide = Math.min(width, height, Math.round(side / zoom));
      const x = Math.floor(random() * (width - readSide + 1));
      const y = Math.floor(random() * (height - readSide + 1));
      if (!wholes.has(i)) wholes.set(i, width * height <= 2 ** 26 ? await s.readRegion(0, 0, 0, width, height) : null);
      const rgb = await readZoomed(s, wholes.get(i)!, x, y, readSide, side);
      if (sampledTissueShare(rgb, side, margin, margin, size, size, 3) < minTissue) continue;
      // Stain.
      for (let k = 0; k < linear.length; k++) linear[k] = SRGB_TO_LINEAR[rgb[k]!]!;
      const common = uniform(random, scanner.stainScale);
      const j = scanner.stainJitter;
      jitterStains(linear, [0, 1, 2].map(() => common * uniform(random, [1 - j, 1 + j])), [0, 1, 2].map(() => uniform(random, [-j / 4, j / 4])));
      // Scanner draws shared by this crop's levels.
      const opticsSigma = uniform(random, scanner.opticsSigma);
      gaussianBlur(linear, side, side, opticsSigma);
      const spherical = uniform(random, scanner.spherical);
      const chroma = [0, 1, 2].map(() => uniform(random, [-scanner.chromatic, scanner.chromatic]));
      const gain = uniform(random, scanner.shotGain);
      const read = uniform(random, scanner.readNoise);
      const grey = random() < scanner.grey;
      const saturation = uniform(random, scanner.saturation);
      const brightness = uniform(random, scanner.brightness);
      const contrast = uniform(random, scanner.contrast);
      // Both drawn always, so that switching JPEG off changes nothing else about the crop.
      const quality = Math.round(uniform(random, scanner.jpegQuality));
      const jpegQuality = random() < scanner.jpeg ? quality : 0;
      // One noise pattern for every copy: copies differ only in focus.
      const noiseRandom = seededRandom(Math.floor(random() * 2 ** 32));
      for (let k = 0; k < normals.length; k++) normals[k] = gaussian(noiseRandom);
      for (let copy = 0; copy < o.levelsPerCrop && made < total; copy++) {
        const level = random() < o.inFocusShare ? 0 : o.maxLevel * random() ** (o.levelPower ?? 1);
        for (let c = 0; c < 3; c++) {
          const psf = defocusPsf({ radius: level * (1 + chroma[c]!), spherical });
          convolveChannel(linear, side, side, c, psf, margin, size, blurred);
        }
        addSensorNoise(blurred, gain, read, normals);
        developColour(blurred, developed, grey, saturation, brightness, contrast);
        let patch: Uint8Array = developed;
        if (jpegQuality) {
          const jpeg = await sharp(developed, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: jpegQuality }).toBuffer();
          const decoded = await sharp(jpeg).raw().toBuffer();
          patch = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
        }
        patches.set(patch, made * size * size * 3);
        labels[made] = level;
        crops[made] = crop;
        made++;
      }
      crop++;
    }
    return { patches, labels, count: total, size, crops };
  } finally {
    for (const s of sources) s.close();
  }
}
