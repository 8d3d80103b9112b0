/**
 * Figure 6 of the paper: knowledge gain and mapping condition of every conv layer, one line per
 * model, as a standalone two-panel SVG in the style of train/plots.ts. Layers are on the x axis in
 * parameter order (depth); depth-wise copies keep their place, as in the AdaS plots.
 */
import { COLOURS, escape, niceTicks } from '../train/plots.js';
import type { ModelKnowledgeGain } from './model-knowledge-gain.js';

const PANEL_W = 440;
const H = 400;
const M = { left: 60, right: 16, top: 36, bottom: 50 };
const LEGEND_ROW = 16;

function panel(offsetX: number, title: string, yLabel: string, models: ModelKnowledgeGain[], value: (m: ModelKnowledgeGain, i: number) => number, height: number): string {
  const maxLayers = Math.max(...models.map((m) => m.layers.length));
  let maxY = 0;
  for (const m of models) for (let i = 0; i < m.layers.length; i++) maxY = Math.max(maxY, value(m, i));
  const x: [number, number] = [1, Math.max(2, maxLayers)];
  const y: [number, number] = [0, maxY > 0 ? maxY * 1.05 : 1];
  const px = (v: number) => offsetX + M.left + ((v - x[0]) / (x[1] - x[0])) * (PANEL_W - M.left - M.right);
  const py = (v: number) => height - M.bottom - ((v - y[0]) / (y[1] - y[0])) * (height - M.top - M.bottom);
  const parts = [
    `<text x="${offsetX + PANEL_W / 2}" y="20" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    `<rect x="${offsetX + M.left}" y="${M.top}" width="${PANEL_W - M.left - M.right}" height="${height - M.top - M.bottom}" fill="none" stroke="#333"/>`,
  ];
  for (const t of niceTicks(x[0], x[1]).filter((t) => Number.isInteger(t))) {
    parts.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${height - M.bottom}" y2="${height - M.bottom + 5}" stroke="#333"/><text x="${px(t)}" y="${height - M.bottom + 18}" text-anchor="middle">${t}</text>`);
  }
  for (const t of niceTicks(y[0], y[1])) parts.push(`<line x1="${offsetX + M.left - 5}" x2="${offsetX + M.left}" y1="${py(t)}" y2="${py(t)}" stroke="#333"/><text x="${offsetX + M.left - 8}" y="${py(t) + 4}" text-anchor="end">${t}</text>`);
  parts.push(`<text x="${offsetX + (M.left + PANEL_W - M.right) / 2}" y="${height - 12}" text-anchor="middle">conv layer (parameter order)</text>`);
  parts.push(`<text transform="translate(${offsetX + 16} ${(M.top + height - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`);
  models.forEach((m, k) => {
    const colour = COLOURS[k % COLOURS.length];
    const points = m.layers.map((_, i) => `${px(i + 1).toFixed(1)},${py(value(m, i)).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${points.join(' ')}"/>`);
    for (const p of points) {
      const [cx, cy] = p.split(',');
      parts.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${colour}"/>`);
    }
  });
  return parts.join('\n');
}

/** The KG and MC panels side by side, with a legend (model name and network averages) below. */
export function figure6Svg(models: ModelKnowledgeGain[]): string {
  if (models.length === 0) throw new RangeError('figure6Svg needs at least one model');
  const width = 2 * PANEL_W;
  const height = H + models.length * LEGEND_ROW + 8;
  const legend = models.map((m, k) => {
    const y = H + k * LEGEND_ROW;
    const label = `${m.name} (${m.architecture}${m.variant ? ` ${m.variant}` : ''}, ${m.layers.length} conv weights): mean KG ${m.averages.kg.toFixed(4)}, mean MC ${m.averages.mc.toFixed(3)}`;
    return `<rect x="${M.left}" y="${y}" width="10" height="10" fill="${COLOURS[k % COLOURS.length]}"/><text x="${M.left + 15}" y="${y + 9}">${escape(label)}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    panel(0, 'Knowledge gain per layer', 'KG = (input + output mode) / 2', models, (m, i) => m.layers[i]!.kg, H),
    panel(PANEL_W, 'Mapping condition per layer', 'MC = (input + output mode) / 2', models, (m, i) => m.layers[i]!.mc, H),
    ...legend,
    '</svg>',
  ].join('\n') + '\n';
}
