/**
 * Heatmap PNG and the readable overview figure of a scan. Scores are interpolated between patch
 * centres (bilinear over the scored neighbours, as in the paper's Figure 9) and coloured on a
 * fixed scale in the model's score units, so one colour means one score on every slide: blues below
 * the threshold, orange to dark brown above it.
 */
import sharp from 'sharp';
import type { ScanResult } from './scan-slide.js';
import { NOT_SCORED_GREY, blurScale, legendTicks, legendTitle, notScoredLabel, scoreText, verdictReason } from '../report/reading.js';

/** Half-width of the fixed colour scale around the threshold, in score units. */
export const COLOUR_SPAN = 5;

export interface ColourScale {
  /** Scores at the two ends of the colour bar (clamped beyond). */
  lo: number;
  hi: number;
  threshold: number | null;
  /** True when there is no threshold and the range was stretched to this slide's scores. */
  stretched: boolean;
}

/**
 * The colour scale: threshold ± COLOUR_SPAN, the same on every slide scanned with that threshold.
 * Without a threshold (converted reference weights) there is no meaningful fixed range, so it is
 * stretched over this slide's 2nd–98th percentile and says so.
 */
export function colourScale(r: ScanResult): ColourScale {
  const t = r.summary.threshold;
  if (t !== null) return { lo: t - COLOUR_SPAN, hi: t + COLOUR_SPAN, threshold: t, stretched: false };
  const valid = Array.from(r.scores).filter((s) => !Number.isNaN(s)).sort((a, b) => a - b);
  if (valid.length === 0) return { lo: 0, hi: 1, threshold: null, stretched: true };
  const lo = valid[Math.floor(0.02 * (valid.length - 1))]!;
  const hi = valid[Math.ceil(0.98 * (valid.length - 1))]!;
  return hi > lo ? { lo, hi, threshold: null, stretched: true } : { lo: lo - 1, hi: lo + 1, threshold: null, stretched: true };
}

/**
 * Colour stops over [0, 1] of the scale (0.5 = the threshold): blues below, a visible step to light
 * orange at the threshold, dark brown at the top. The HTML legend draws the same stops.
 *
 * Blue against orange because it survives every common colour-vision deficiency: the green-to-red
 * scale this replaces turned "sharp" and "blurry" into the same dark olive under deuteranopia (one
 * male reader in twelve). packages/core/test/colour-vision.test.ts simulates deuteranopia,
 * protanopia and tritanopia and requires every colour below the threshold to stay far (CIELAB ΔE)
 * from every colour above it.
 */
export const COLOUR_STOPS: ReadonlyArray<readonly [number, readonly [number, number, number]]> = [
  [0, [8, 48, 107]],
  [0.25, [33, 113, 181]],
  [0.5, [158, 202, 225]],
  [0.5, [253, 174, 97]],
  [0.75, [230, 85, 13]],
  [1, [127, 39, 4]],
];

/** The colour of a position v in [0, 1] on the scale; the threshold itself is the first orange. */
export function scaleColour(v: number): [number, number, number] {
  const rgb: [number, number, number] = [0, 0, 0];
  writeScaleColour(v, rgb, 0);
  return rgb;
}

/**
 * scaleColour's red, green and blue written into out[at..at+2]: the heatmap colours every mask
 * pixel, and a new array per pixel made its loop several times slower (and busy collecting garbage).
 */
function writeScaleColour(v: number, out: { [index: number]: number }, at: number): void {
  const x = Math.min(1, Math.max(0, v));
  const last = COLOUR_STOPS.length - 1;
  for (let i = 1; i <= last; i++) {
    const p1 = COLOUR_STOPS[i]![0];
    if (x < p1 || i === last) {
      const c1 = COLOUR_STOPS[i]![1];
      const [p0, c0] = COLOUR_STOPS[i - 1]!;
      const f = p1 > p0 ? Math.min(1, (x - p0) / (p1 - p0)) : 0;
      out[at] = Math.round(c0[0]! + (c1[0]! - c0[0]!) * f);
      out[at + 1] = Math.round(c0[1]! + (c1[1]! - c0[1]!) * f);
      out[at + 2] = Math.round(c0[2]! + (c1[2]! - c0[2]!) * f);
      return;
    }
  }
}

/** Position of a score on the scale: the threshold at 0.5, lo at 0, hi at 1. */
export function scalePosition(score: number, scale: ColourScale): number {
  if (scale.threshold === null) return (score - scale.lo) / (scale.hi - scale.lo);
  // At the threshold exactly a patch is not out of focus (the rule is score > threshold).
  const v = (score - scale.lo) / (scale.hi - scale.lo);
  return score > scale.threshold ? Math.max(0.5, v) : Math.min(0.4999, v);
}

/**
 * Where each mask pixel along one axis falls on the patch grid: the patch (column or row) whose
 * centre is at or before it (`near`, and `far` the next one, both clamped to the grid) and how far it
 * lies from that centre towards the next (`fraction`, 0..1 inside the grid). The same along every
 * row or column, so heatmapRgba works it out once per axis, not per pixel.
 */
function gridAxis(pixels: number, patches: number, r: ScanResult): { near: Int32Array; far: Int32Array; fraction: Float64Array } {
  const level0PerMask = r.tissueMask.level0PerMaskPixel;
  const k = r.level0PerWorkingPixel;
  const near = new Int32Array(pixels);
  const far = new Int32Array(pixels);
  const fraction = new Float64Array(pixels);
  for (let p = 0; p < pixels; p++) {
    // Position in patch-centre units: patch (c, row) is centred at c*S + P/2 working px.
    const g = ((p + 0.5) * level0PerMask / k - r.patchSize / 2) / r.stride;
    const g0 = Math.floor(g);
    near[p] = Math.min(patches - 1, Math.max(0, g0));
    far[p] = Math.min(patches - 1, Math.max(0, g0 + 1));
    fraction[p] = g - g0;
  }
  return { near, far, fraction };
}

/** RGBA heatmap at the tissue mask's size; transparent where nothing was scored. */
export function heatmapRgba(r: ScanResult): Uint8Array {
  const { width, height, mask } = r.tissueMask;
  const scale = colourScale(r);
  const out = new Uint8Array(width * height * 4);
  const { columns, scores } = r;
  const xAxis = gridAxis(width, columns, r);
  const yAxis = gridAxis(height, r.rows, r);
  for (let y = 0; y < height; y++) {
    const fy = yAxis.fraction[y]!;
    const top = yAxis.near[y]! * columns;
    const bottom = yAxis.far[y]! * columns;
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      const fx = xAxis.fraction[x]!;
      const left = xAxis.near[x]!;
      const right = xAxis.far[x]!;
      // Bilinear over the scored ones of the four patch centres around the pixel, in this order (the
      // sum's rounding depends on it); a weight is at least 1e-3, so a pixel next to one scored
      // centre takes its score rather than nothing.
      let sum = 0;
      let weight = 0;
      let s = scores[top + left]!;
      if (!Number.isNaN(s)) {
        const w = Math.max(1e-3, (1 - fx) * (1 - fy));
        sum += w * s;
        weight += w;
      }
      s = scores[top + right]!;
      if (!Number.isNaN(s)) {
        const w = Math.max(1e-3, fx * (1 - fy));
        sum += w * s;
        weight += w;
      }
      s = scores[bottom + left]!;
      if (!Number.isNaN(s)) {
        const w = Math.max(1e-3, (1 - fx) * fy);
        sum += w * s;
        weight += w;
      }
      s = scores[bottom + right]!;
      if (!Number.isNaN(s)) {
        const w = Math.max(1e-3, fx * fy);
        sum += w * s;
        weight += w;
      }
      if (weight === 0) continue;
      const i = 4 * (y * width + x);
      writeScaleColour(scalePosition(sum / weight, scale), out, i);
      out[i + 3] = 255;
    }
  }
  return out;
}

/** The heatmap as a PNG; `rgba` is heatmapRgba(r) when the caller has it already. */
export async function heatmapPng(r: ScanResult, rgba: Uint8Array = heatmapRgba(r)): Promise<Buffer> {
  const { width, height } = r.tissueMask;
  return sharp(rgba, { raw: { width, height, channels: 4 } }).png().toBuffer();
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toFixed(2)).toString());

/** The name of a score scale without its explanation ("estimated defocus level: ..." -> "estimated defocus level"). */
export const shortScale = (scale: string) => scale.split(':')[0]!.slice(0, 40);

/** A round scale-bar length (1, 2 or 5 × 10^k µm) near `target` µm, and its label. */
export function scaleBarLength(targetMicrons: number): { microns: number; label: string } {
  const power = 10 ** Math.floor(Math.log10(targetMicrons));
  const microns = [5, 2, 1].map((m) => m * power).find((m) => m <= targetMicrons) ?? power;
  return { microns, label: microns >= 1000 ? `${microns / 1000} mm` : `${microns} µm` };
}

/** The thumbnail turned grey and lightened: the underlay of the overview's heatmap panel. */
function greyUnderlay(r: ScanResult): Promise<{ data: Buffer; info: sharp.OutputInfo }> {
  const { width, height, thumbnail } = r.tissueMask;
  return sharp(thumbnail, { raw: { width, height, channels: 3 } }).greyscale().linear(0.6, 100).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
}

/**
 * Heatmap composited over the grey underlay: on a grey underlay the colours stay true. Raw pixels
 * throughout: PNG between the steps only cost encoding and decoding (lossless, so the pixels are
 * the same).
 */
async function heatmapOverGrey(r: ScanResult, heatRgba: Uint8Array, underlay: ReturnType<typeof greyUnderlay>): Promise<{ data: Buffer; info: sharp.OutputInfo }> {
  const { width, height } = r.tissueMask;
  const heat = Buffer.from(heatRgba);
  for (let i = 3; i < heat.length; i += 4) if (heat[i]) heat[i] = 200;
  const grey = await underlay;
  return sharp(grey.data, { raw: { width, height, channels: grey.info.channels } })
    .composite([{ input: heat, raw: { width, height, channels: 4 } }])
    .raw()
    .toBuffer({ resolveWithObject: true });
}

/** Words split into lines of at most `maxChars` characters (the SVG text has no wrapping of its own). */
function wrapText(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > maxChars) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** Rough width of a 13 px DejaVu Sans character, for wrapping the title band's text. */
const CHAR_PX = 7.4;

/**
 * The overview figure: a title band (slide name; the verdict with its reason; patches scored, the
 * mean and p90 blur, the model), the slide thumbnail beside the heatmap over a grey copy of it, a
 * colour legend (µm of blur and the level, or the model's raw score) with the threshold marked, the
 * grey of "not scored", and a scale bar.
 */
export async function overviewPng(r: ScanResult, title = r.file, heatRgba?: Uint8Array): Promise<Buffer> {
  const finish = startOverview(r, title);
  return finish(heatRgba ?? heatmapRgba(r));
}

/**
 * overviewPng in two steps, so that the figure's text renders while the heatmap is computed: the
 * text is laid out and starts rendering on sharp's threads at once (librsvg, and on its first use in
 * a process fontconfig, which takes tens of ms), as does the grey underlay of the heatmap panel, and
 * the returned function finishes the figure with heatmapRgba(r).
 */
export function startOverview(r: ScanResult, title = r.file): (heatRgba: Uint8Array) => Promise<Buffer> {
  const { width: w, height: h, thumbnail } = r.tissueMask;
  const pad = 16;
  const figureWidth = Math.max(2 * w + 3 * pad, 720);
  const s = r.summary;
  const scale = colourScale(r);
  const blur = blurScale(r);
  const verdictColour = s.verdict === 'pass' ? '#1a7f37' : s.verdict === 'fail' ? '#c62828' : '#8a6d00';
  const name = title.length > 70 ? '…' + title.slice(-69) : title;

  // Title band: the name, then the verdict and its reason (wrapped), then the scores.
  const maxChars = Math.floor((figureWidth - 2 * pad) / CHAR_PX);
  const reason = wrapText(`${s.verdict.toUpperCase()} · ${verdictReason(r).replace(/^(pass|fail): /, '')}`, maxChars);
  const scores = `${s.patchesScored} patches scored` +
    (s.patchesScored > 0 ? ` · mean ${scoreText(s.mean, blur)} · p90 ${scoreText(s.p90, blur)}` : '') + ` · model ${r.model.name}`;
  const scoreLines = wrapText(scores, maxChars);
  const lineHeight = 19;
  const band = 38 + lineHeight * (reason.length + scoreLines.length);
  const verdictWord = s.verdict.toUpperCase();
  const reasonText = reason.map((line, i) => {
    const y = 46 + i * lineHeight;
    // The first line starts with the verdict word, in the verdict's colour.
    if (i === 0) return `<text x="${pad}" y="${y}"><tspan style="font-weight: bold; fill: ${verdictColour}">${escapeXml(verdictWord)}</tspan>${escapeXml(line.slice(verdictWord.length))}</text>`;
    return `<text x="${pad}" y="${y}">${escapeXml(line)}</text>`;
  }).join('\n');
  const scoreLinesSvg = scoreLines.map((line, i) => `<text x="${pad}" y="${46 + (reason.length + i) * lineHeight}">${escapeXml(line)}</text>`).join('\n');
  const legendBand = 124;
  const figureHeight = band + h + legendBand + pad;

  // Legend: a bar of the colour stops, a tick (meaning, then level) at each end and at the
  // threshold, and the grey of "not scored" below.
  const legendX = figureWidth - pad - 380;
  const legendY = band + h + 40;
  const gradient = COLOUR_STOPS.map(([p, c]) => `<stop offset="${p}" stop-color="rgb(${c.join(',')})"/>`).join('');
  const anchor = { 0: 'start', 0.5: 'middle', 1: 'end' } as const;
  const ticks = legendTicks(scale, blur).map((t) => {
    const x = legendX + 300 * t.at;
    const mark = t.at === 0.5 ? `<line x1="${x}" y1="${legendY - 4}" x2="${x}" y2="${legendY + 18}" stroke="#000" stroke-width="2"/>` : '';
    return mark + `<text x="${x}" y="${legendY + 30}" text-anchor="${anchor[t.at]}" style="font-size: 11px">${escapeXml(t.label)}</text>` +
      `<text x="${x}" y="${legendY + 44}" text-anchor="${anchor[t.at]}" style="font-size: 11px">${escapeXml(t.value)}</text>`;
  }).join('');
  const legend =
    `<text x="${legendX}" y="${legendY - 8}" style="font-size: 11px">${escapeXml(legendTitle(r, shortScale(r.model.scoreScale)))}${scale.stretched ? ' (this slide\'s range)' : ''}</text>` +
    `<rect x="${legendX}" y="${legendY}" width="300" height="14" fill="url(#scale)" stroke="#444"/>` + ticks +
    `<rect x="${legendX}" y="${legendY + 56}" width="14" height="14" fill="${NOT_SCORED_GREY}" stroke="#444"/>` +
    `<text x="${legendX + 20}" y="${legendY + 67}" style="font-size: 11px">${escapeXml(notScoredLabel(r))}</text>`;

  // Scale bar under the thumbnail, about a fifth of its width.
  let scaleBar = `<text x="${pad}" y="${legendY + 12}">scale unknown (no µm/px for this slide)</text>`;
  if (r.slideMpp !== null) {
    const micronsPerPixel = r.slideMpp * r.tissueMask.level0PerMaskPixel;
    const bar = scaleBarLength((w / 5) * micronsPerPixel);
    const px = bar.microns / micronsPerPixel;
    scaleBar = `<rect x="${pad}" y="${legendY}" width="${px.toFixed(1)}" height="6" fill="#000"/>` +
      `<text x="${pad}" y="${legendY + 24}">${bar.label}</text>`;
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${figureWidth}" height="${figureHeight}">
<defs><linearGradient id="scale">${gradient}</linearGradient></defs>
<style>text { font-family: 'DejaVu Sans', sans-serif; font-size: 13px; fill: #222; }</style>
<rect x="0" y="0" width="${figureWidth}" height="${band}" fill="#f0f0f0"/>
<text x="${pad}" y="24" style="font-size: 17px; font-weight: bold">${escapeXml(name)}</text>
${reasonText}
${scoreLinesSvg}
<text x="${pad}" y="${band + h + 14}" style="font-size: 11px">slide</text>
<text x="${2 * pad + w}" y="${band + h + 14}" style="font-size: 11px">focus heatmap</text>
${scaleBar}
${legend}
</svg>`;
  // The text and the grey underlay need no heatmap: both are made while it is computed.
  const text = sharp(Buffer.from(svg)).raw().toBuffer({ resolveWithObject: true });
  const underlay = greyUnderlay(r);
  // Awaited when the figure is finished; until then a failure must not count as unhandled.
  text.catch(() => undefined);
  underlay.catch(() => undefined);
  return async (heatRgba) => {
    const heat = await heatmapOverGrey(r, heatRgba, underlay);
    const rendered = await text;
    return sharp({ create: { width: figureWidth, height: figureHeight, channels: 3, background: '#ffffff' } })
      .composite([
        { input: rendered.data, raw: { width: rendered.info.width, height: rendered.info.height, channels: rendered.info.channels }, left: 0, top: 0 },
        { input: Buffer.from(thumbnail.buffer, thumbnail.byteOffset, thumbnail.byteLength), raw: { width: w, height: h, channels: 3 }, left: pad, top: band },
        { input: heat.data, raw: { width: w, height: h, channels: heat.info.channels }, left: 2 * pad + w, top: band },
      ])
      .png()
      .toBuffer();
  };
}
