/**
 * The report page of one slide (<stem>.html): a zoomable view of the slide (OpenSeadragon on the
 * Deep Zoom pyramid) with the focus heatmap as a layer that can be toggled and faded, a legend (µm
 * of blur and the level, or the model's raw score; the grey of "not scored"), the verdict with its
 * reason, the summary, and the flagged regions (a click zooms to one).
 */
import path from 'node:path';
import { writeAtomic } from '../atomic-write.js';
import { COLOUR_STOPS, colourScale, heatmapPng, shortScale } from '../scan/images.js';
import type { ScanResult } from '../scan/scan-slide.js';
import type { DeepZoomView } from './deepzoom.js';
import { ASSETS_DIR, STYLE, embedJson, escapeHtml, fileHref } from './html-common.js';
import { flaggedRegions, type FlaggedRegion } from './regions.js';
import { NOT_SCORED_GREY, blurScale, legendTicks, legendTitle, nothingScoredReason, notScoredLabel, num, percent, scorePairText, scoreText, verdictReason, type BlurScale } from './reading.js';

/** The legend's CSS gradient: the PNGs' colour stops, with the step at the threshold. */
export function legendGradient(): string {
  return `linear-gradient(to right, ${COLOUR_STOPS.map(([p, c]) => `rgb(${c.join(',')}) ${(100 * p).toFixed(1)}%`).join(', ')})`;
}

const SCRIPT = `
const d = JSON.parse(document.getElementById('fqa-data').textContent);
const $ = (id) => document.getElementById(id);
const heatToggle = $('heatmap-toggle');
const opacity = $('heatmap-opacity');
const boxesToggle = $('regions-toggle');
let heat = null;
function applyLayer() {
  if (heat) heat.setOpacity(heatToggle.checked ? Number(opacity.value) / 100 : 0);
  // OpenSeadragon sets each overlay's inline display; a class on the viewer hides them all.
  $('viewer')?.classList.toggle('hide-regions', !boxesToggle.checked);
  $('opacity-value').textContent = opacity.value + ' %';
}
heatToggle.addEventListener('change', applyLayer);
opacity.addEventListener('input', applyLayer);
boxesToggle.addEventListener('change', applyLayer);
if (d.view && window.OpenSeadragon) {
  const viewer = OpenSeadragon({
    id: 'viewer', prefixUrl: '${ASSETS_DIR}/images/', drawer: 'canvas', showNavigator: true, crossOriginPolicy: false,
    maxZoomPixelRatio: 4,
    tileSources: { Image: { xmlns: 'http://schemas.microsoft.com/deepzoom/2008', Url: d.view.tiles, Format: d.view.format,
      Overlap: String(d.view.overlap), TileSize: String(d.view.tileSize), Size: { Width: String(d.view.width), Height: String(d.view.height) } } },
  });
  window.fqaViewer = viewer;
  const rect = (r) => new OpenSeadragon.Rect(r.x / d.width, r.y / d.width, r.width / d.width, r.height / d.width);
  viewer.addOnceHandler('open', () => {
    viewer.addTiledImage({
      tileSource: { type: 'image', url: d.heatmap, buildPyramid: false }, x: 0, y: 0, width: 1, opacity: 0,
      success: (e) => { heat = e.item; applyLayer(); document.body.dataset.heatmap = 'ready'; },
      error: (e) => console.error('heatmap layer: ' + (e && e.message)),
    });
    d.regions.forEach((r, i) => {
      const el = document.createElement('div');
      el.className = 'region-box';
      el.title = 'region ' + (i + 1);
      viewer.addOverlay({ element: el, location: rect(r) });
    });
    applyLayer();
  });
  document.querySelectorAll('[data-region]').forEach((button) => button.addEventListener('click', () => {
    const r = d.regions[Number(button.dataset.region)];
    viewer.viewport.fitBounds(rect({ x: r.x - r.width / 2, y: r.y - r.height / 2, width: 2 * r.width, height: 2 * r.height }));
  }));
}
`;

export interface SlidePageFiles {
  overview: string;
  scores: string;
  geojson: string;
  json: string;
}

/**
 * Writes <stem>.html for a scan. `viewOrReason` is the pyramid, or why there is none (then the
 * page shows the overview figure and the reason). `heatmap` is heatmapPng(r) when the caller has
 * made it already (the report writes the same PNG as <stem>.heatmap.png).
 */
export async function writeSlidePage(dir: string, stem: string, r: ScanResult, viewOrReason: DeepZoomView | string, files: SlidePageFiles, heatmap?: Buffer): Promise<void> {
  const view = typeof viewOrReason === 'string' ? null : viewOrReason;
  const scale = colourScale(r);
  const regions = flaggedRegions(r);
  const s = r.summary;
  const heatmapUrl = `data:image/png;base64,${(heatmap ?? await heatmapPng(r)).toString('base64')}`;
  const data = { stem, width: r.width, height: r.height, view, heatmap: heatmapUrl, regions };
  const blur = blurScale(r);
  const markAt = scale.threshold === null ? '' : `<div class="mark" style="left: 50%"></div>`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(path.basename(r.file))} · fqa focus report</title>
<style>${STYLE}</style></head>
<body data-heatmap="${view ? 'loading' : 'none'}">
<header><h1>${escapeHtml(r.file)} <span class="verdict verdict-${escapeHtml(s.verdict)}">${escapeHtml(s.verdict)}</span></h1>
<p id="verdict-reason" class="verdict-reason">${escapeHtml(verdictReason(r))}</p>
<p><a href="index.html">← all slides</a> · model ${escapeHtml(r.model.name)} · ${escapeHtml(r.width + ' × ' + r.height)} px${r.slideMpp === null ? '' : ` at ${r.slideMpp.toFixed(3)} µm/px`}</p></header>
<main class="layout">
<section>${view ? '<div id="viewer" role="img" aria-label="zoomable slide view"></div>' : `<p>No zoomable view for this slide: ${escapeHtml(String(viewOrReason))}.</p><img src="${escapeHtml(fileHref(files.overview))}" alt="overview" style="max-width: 100%">`}</section>
<aside>
<div class="controls"><label><input type="checkbox" id="heatmap-toggle" checked> focus heatmap</label>
<label>opacity <input type="range" id="heatmap-opacity" min="0" max="100" value="60"> <span id="opacity-value">60 %</span></label>
<label><input type="checkbox" id="regions-toggle" checked> flagged regions</label></div>
<div class="legend"><div title="${escapeHtml(r.model.scoreScale)}">${escapeHtml(legendTitle(r, shortScale(r.model.scoreScale)))}${scale.stretched ? ' (range of this slide: no threshold)' : ''}</div>
<div class="bar-box"><div class="legend-bar" style="background: ${legendGradient()}"></div>${markAt}</div>
<div class="ticks">${legendTicks(scale, blur).map((t) => `<span>${escapeHtml(t.label)}<br>${escapeHtml(t.value)}</span>`).join('')}</div>
<div class="not-scored"><span class="swatch" style="background: ${NOT_SCORED_GREY}"></span>${escapeHtml(notScoredLabel(r))}: grey in the overview figure, uncoloured in the zoomable view</div></div>
<h2>Summary</h2>
<table id="summary">
<tr><th>verdict</th><td><span class="verdict verdict-${escapeHtml(s.verdict)}">${escapeHtml(s.verdict)}</span> ${escapeHtml(verdictReason(r))}</td></tr>
<tr><th>out of focus</th><td>${s.outOfFocusFraction === null ? '–' : `${percent(s.outOfFocusFraction)} of scored tissue`} (limit ${percent(r.options.maxOutOfFocus)})</td></tr>
<tr><th>tissue</th><td>${percent(s.tissueFraction)} of the slide</td></tr>
<tr><th>patches scored</th><td>${s.patchesScored} (≥ ${percent(r.options.minTissue)} tissue each)</td></tr>
${summaryScoreRows(s, blur)}
<tr><th>time</th><td>${r.timings.totalSeconds.toFixed(1)} s on ${escapeHtml(r.device)}</td></tr>
<tr><th>warnings</th><td class="warn">${r.warnings.map(escapeHtml).join('<br>') || '–'}</td></tr>
<tr><th>files</th><td>${Object.values(files).map((f) => `<a href="${escapeHtml(fileHref(f))}">${escapeHtml(f)}</a>`).join('<br>')}</td></tr>
</table>
<h2>Flagged regions</h2>
${regionSection(r, regions, blur)}
</aside></main>
<script type="application/json" id="fqa-data">${embedJson(data)}</script>
${view ? `<script src="${ASSETS_DIR}/openseadragon.min.js"></script>` : ''}
<script>${SCRIPT}</script>
</body></html>
`;
  await writeAtomic(path.join(dir, `${stem}.html`), html);
}

/** The summary's score rows: mean, p10 and p90, in µm of blur with the level (or raw scores). */
function summaryScoreRows(s: ScanResult['summary'], blur: BlurScale | null): string {
  const what = blur === null ? 'score' : 'blur';
  const row = (label: string, v: number) => `<tr><th>${label}</th><td class="score">${escapeHtml(scoreText(v, blur))}</td></tr>`;
  if (s.patchesScored === 0) return `<tr><th>${what}</th><td>– (nothing was scored)</td></tr>`;
  return [row(`mean ${what}`, s.mean), row(`p10 ${what} (sharpest tenth)`, s.p10), row(`p90 ${what} (blurriest tenth)`, s.p90)].join('\n');
}

/**
 * The flagged regions, or why there are none. "No region above the threshold" is said only when
 * patches were scored against a threshold: on a slide where nothing was scored it would read as
 * reassurance.
 */
function regionSection(r: ScanResult, regions: FlaggedRegion[], blur: BlurScale | null): string {
  const s = r.summary;
  if (s.patchesScored === 0) return `<p id="regions-none">Nothing was scored, so no region can be flagged: ${escapeHtml(nothingScoredReason(r))}.</p>`;
  if (s.threshold === null) return `<p id="regions-none">No regions: the model has no threshold and none was given (--threshold), so nothing can be above it.</p>`;
  if (regions.length === 0) {
    const judged = s.verdict === 'pass' || s.verdict === 'fail' ? '' : ` The slide has no verdict: ${escapeHtml(verdictReason(r).replace(/^no verdict: /, ''))}.`;
    return `<p id="regions-none">No region scores above the threshold of ${escapeHtml(scoreText(s.threshold, blur))} among the ${s.patchesScored} patches scored.${judged}</p>`;
  }
  return `<table id="regions"><thead><tr><th>#</th><th>x, y (level-0 px)</th><th>size (px)</th><th>patches</th><th>mean / max ${blur === null ? 'score' : 'blur'}</th><th>mm²</th><th></th></tr></thead><tbody>
${regions.map((g, i) => `<tr><td>${i + 1}</td><td class="num">${g.x}, ${g.y}</td><td class="num">${g.width} × ${g.height}</td><td class="num">${g.patches}</td><td>${escapeHtml(scorePairText(g.meanScore, g.maxScore, blur))}</td><td class="num">${g.areaMm2 === null ? '–' : num(g.areaMm2, 3)}</td><td><button type="button" data-region="${i}">zoom</button></td></tr>`).join('\n')}
</tbody></table>`;
}
