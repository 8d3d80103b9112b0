/**
 * Heatmap and overlay PNGs of a scan: scores interpolated between patch centres (bilinear over
 * the scored neighbours, as in the paper's Figure 9), coloured green (sharp) → yellow → red
 * (blurry), transparent where there is no tissue.
 */
import sharp from 'sharp';
import type { ScanResult } from './scan-slide.js';

/** Score range mapped onto the colour scale: around the threshold when there is one. */
export function colourRange(r: ScanResult): [number, number] {
  const valid = Array.from(r.scores).filter((s) => !Number.isNaN(s)).sort((a, b) => a - b);
  if (valid.length === 0) return [0, 1];
  const lo = valid[Math.floor(0.02 * (valid.length - 1))]!;
  const hi = valid[Math.ceil(0.98 * (valid.length - 1))]!;
  const t = r.summary.threshold;
  if (t === null) return hi > lo ? [lo, hi] : [lo - 1, lo + 1];
  const half = Math.max(Math.abs(t - lo), Math.abs(hi - t), 1e-6);
  return [t - half, t + half];
}

/** Green → yellow → red for v in [0, 1]. */
function colour(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v));
  return x < 0.5 ? [Math.round(510 * x), 190, 40] : [230, Math.round(190 * (2 - 2 * x)), 40];
}

/** RGBA heatmap at the tissue mask's size. */
export function heatmapRgba(r: ScanResult): Uint8Array {
  const { width, height, mask } = r.tissueMask;
  const [lo, hi] = colourRange(r);
  const out = new Uint8Array(width * height * 4);
  const level0PerMask = r.tissueMask.level0PerMaskPixel;
  const k = r.level0PerWorkingPixel;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      // Position in patch-centre units: patch (c, row) is centred at c*S + P/2 working px.
      const gx = ((x + 0.5) * level0PerMask / k - r.patchSize / 2) / r.stride;
      const gy = ((y + 0.5) * level0PerMask / k - r.patchSize / 2) / r.stride;
      const c0 = Math.floor(gx);
      const r0 = Math.floor(gy);
      let sum = 0;
      let weight = 0;
      for (const [dc, dr] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
        const c = Math.min(r.columns - 1, Math.max(0, c0 + dc));
        const row = Math.min(r.rows - 1, Math.max(0, r0 + dr));
        const s = r.scores[row * r.columns + c]!;
        if (Number.isNaN(s)) continue;
        const w = (dc ? gx - c0 : 1 - (gx - c0)) * (dr ? gy - r0 : 1 - (gy - r0));
        const wc = Math.max(1e-3, w);
        sum += wc * s;
        weight += wc;
      }
      if (weight === 0) continue;
      const [red, green, blue] = colour((sum / weight - lo) / (hi - lo));
      const i = 4 * (y * width + x);
      out[i] = red;
      out[i + 1] = green;
      out[i + 2] = blue;
      out[i + 3] = 255;
    }
  }
  return out;
}

export async function heatmapPng(r: ScanResult): Promise<Buffer> {
  const { width, height } = r.tissueMask;
  return sharp(heatmapRgba(r), { raw: { width, height, channels: 4 } }).png().toBuffer();
}

/** The heatmap at 55 % opacity over the slide thumbnail. */
export async function overlayPng(r: ScanResult): Promise<Buffer> {
  const { width, height, thumbnail } = r.tissueMask;
  const heat = heatmapRgba(r);
  for (let i = 3; i < heat.length; i += 4) if (heat[i]) heat[i] = 140;
  const layer = await sharp(heat, { raw: { width, height, channels: 4 } }).png().toBuffer();
  return sharp(thumbnail, { raw: { width, height, channels: 3 } }).composite([{ input: layer }]).png().toBuffer();
}
