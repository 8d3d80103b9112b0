/**
 * Figure 6 of the paper as a standalone SVG in the style of train/plots.ts, three panels:
 *  a) the paper's figure: each model's mean knowledge gain (y) against its mean mapping condition
 *     (x), one point per model, larger points for patch sizes of 235 px and up (top left is better);
 *  b, c) KG and MC of every conv layer in parameter order (depth), one line per model, which shows
 *     where in the network the averages of (a) come from. Depth-wise copies keep their place.
 */
import { COLOURS, escape, niceTicks } from '../train/plots.js';
import type { ModelKnowledgeGain } from './model-knowledge-gain.js';

const PANEL_W = 400;
const H = 400;
const M = { left: 60, right: 16, top: 36, bottom: 50 };
const LEGEND_ROW = 16;

interface PanelSpec {
  offsetX: number;
  title: string;
  xLabel: string;
  yLabel: string;
  x: [number, number];
  y: [number, number];
  integerTicksX?: boolean;
  body: (px: (v: number) => number, py: (v: number) => number) => string[];
}

function panel(p: PanelSpec): string {
  const px = (v: number) => p.offsetX + M.left + ((v - p.x[0]) / (p.x[1] - p.x[0] || 1)) * (PANEL_W - M.left - M.right);
  const py = (v: number) => H - M.bottom - ((v - p.y[0]) / (p.y[1] - p.y[0] || 1)) * (H - M.top - M.bottom);
  const parts = [
    `<text x="${p.offsetX + PANEL_W / 2}" y="20" text-anchor="middle" font-size="14">${escape(p.title)}</text>`,
    `<rect x="${p.offsetX + M.left}" y="${M.top}" width="${PANEL_W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#333"/>`,
  ];
  for (const t of niceTicks(p.x[0], p.x[1]).filter((t) => !p.integerTicksX || Number.isInteger(t))) {
    parts.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${H - M.bottom}" y2="${H - M.bottom + 5}" stroke="#333"/><text x="${px(t)}" y="${H - M.bottom + 18}" text-anchor="middle">${t}</text>`);
  }
  for (const t of niceTicks(p.y[0], p.y[1])) parts.push(`<line x1="${p.offsetX + M.left - 5}" x2="${p.offsetX + M.left}" y1="${py(t)}" y2="${py(t)}" stroke="#333"/><text x="${p.offsetX + M.left - 8}" y="${py(t) + 4}" text-anchor="end">${t}</text>`);
  parts.push(`<text x="${p.offsetX + (M.left + PANEL_W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${escape(p.xLabel)}</text>`);
  parts.push(`<text transform="translate(${p.offsetX + 16} ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(p.yLabel)}</text>`);
  parts.push(...p.body(px, py));
  return parts.join('\n');
}

/** [0, max] padded by 10%, or [0, 1] when everything is 0. */
function upTo(values: number[]): [number, number] {
  const max = Math.max(0, ...values);
  return [0, max > 0 ? max * 1.1 : 1];
}

function perLayer(offsetX: number, title: string, yLabel: string, models: ModelKnowledgeGain[], value: (m: ModelKnowledgeGain, i: number) => number): string {
  const maxLayers = Math.max(...models.map((m) => m.layers.length));
  return panel({
    offsetX, title, yLabel, xLabel: 'conv layer (parameter order)', integerTicksX: true,
    x: [1, Math.max(2, maxLayers)],
    y: upTo(models.flatMap((m) => m.layers.map((_, i) => value(m, i)))),
    body: (px, py) => models.flatMap((m, k) => {
      const colour = COLOURS[k % COLOURS.length];
      const points = m.layers.map((_, i) => [px(i + 1).toFixed(1), py(value(m, i)).toFixed(1)] as const);
      return [
        `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${points.map(([x, y]) => `${x},${y}`).join(' ')}"/>`,
        ...points.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="2.5" fill="${colour}"/>`),
      ];
    }),
  });
}

/** The three panels side by side, with a legend (model, patch size and network averages) below. */
export function figure6Svg(models: ModelKnowledgeGain[]): string {
  if (models.length === 0) throw new RangeError('figure6Svg needs at least one model');
  const width = 3 * PANEL_W;
  const height = H + models.length * LEGEND_ROW + 8;
  const average = panel({
    offsetX: 0,
    title: 'a) Mean knowledge gain vs mapping condition',
    xLabel: 'mean mapping condition (lower = more stable)',
    yLabel: 'mean knowledge gain',
    x: upTo(models.map((m) => m.averages.mc)),
    y: upTo(models.map((m) => m.averages.kg)),
    body: (px, py) => models.map((m, k) => `<circle cx="${px(m.averages.mc).toFixed(1)}" cy="${py(m.averages.kg).toFixed(1)}" r="${m.patchSize >= 235 ? 7 : 4}" fill="${COLOURS[k % COLOURS.length]}" fill-opacity="0.8"/>`),
  });
  const legend = models.map((m, k) => {
    const y = H + k * LEGEND_ROW;
    const label = `${m.name} (${m.architecture}${m.variant ? ` ${m.variant}` : ''}, ${m.patchSize} px, ${m.layers.length} conv weights): mean KG ${m.averages.kg.toFixed(4)}, mean MC ${m.averages.mc.toFixed(3)}`;
    return `<rect x="${M.left}" y="${y}" width="10" height="10" fill="${COLOURS[k % COLOURS.length]}"/><text x="${M.left + 15}" y="${y + 9}">${escape(label)}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    average,
    perLayer(PANEL_W, 'b) Knowledge gain per layer', 'KG = (input + output mode) / 2', models, (m, i) => m.layers[i]!.kg),
    perLayer(2 * PANEL_W, 'c) Mapping condition per layer', 'MC = (input + output mode) / 2', models, (m, i) => m.layers[i]!.mc),
    ...legend,
    '</svg>',
  ].join('\n') + '\n';
}
