/**
 * What the report's HTML pages share: the style sheet (inlined in each page, so a page is one file
 * plus the images it shows), safe embedding of text and JSON, and the viewer's script copied into
 * the report folder (nothing is fetched from the network).
 */
import { existsSync, statSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

/** Folder (inside the report folder) holding OpenSeadragon's script and button images. */
export const ASSETS_DIR = 'fqa-assets';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A link to a file in the report folder: `./` and the name percent-encoded, so `#`, `?`, `%` or a
 * leading `javascript:` in a name (from an older fqa, or a slide's path shown as text) stay part of
 * the path and never become a fragment, a query or a scheme.
 */
export function fileHref(name: string): string {
  return './' + name.split('/').map(encodeURIComponent).join('/');
}

/** JSON for a <script type="application/json"> block: `<` escaped so no string can close the tag. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

export const STYLE = `
body { font-family: system-ui, 'DejaVu Sans', sans-serif; margin: 0; color: #1d1d1d; background: #fafafa; }
header { background: #24323f; color: #fff; padding: 10px 18px; }
header h1 { font-size: 18px; margin: 0; }
header p { margin: 4px 0 0; font-size: 13px; color: #cfd8df; }
header a { color: #9fd3ff; }
main { padding: 12px 18px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: middle; }
th { background: #eef1f4; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: ' ▲'; }
th[aria-sort=descending]::after { content: ' ▼'; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: bold; padding: 1px 6px; border-radius: 3px; }
.verdict-pass { color: #fff; background: #1a7f37; }
.verdict-fail { color: #fff; background: #c62828; }
.verdict-error { color: #fff; background: #6d4c41; }
.verdict-no-tissue, .verdict-unknown { color: #222; background: #f2c94c; }
.thumb { max-width: 96px; max-height: 72px; display: block; }
.controls { display: flex; gap: 14px; align-items: center; margin: 8px 0; flex-wrap: wrap; font-size: 14px; }
.warn { color: #8a4b00; max-width: 420px; }
#viewer { width: 100%; height: 70vh; min-height: 420px; background: #222; border: 1px solid #999; }
.legend-bar { width: 300px; height: 14px; border: 1px solid #444; }
.legend { font-size: 12px; position: relative; width: 370px; }
.legend .ticks, .legend .bar-box { width: 300px; position: relative; }
.legend .ticks { display: flex; justify-content: space-between; }
.legend .mark { position: absolute; top: 0; height: 18px; border-left: 2px solid #000; }
.legend .ticks span { white-space: nowrap; }
.legend .ticks span:nth-child(2):not(:last-child) { text-align: center; }
.legend .ticks span:last-child { text-align: right; }
.legend .not-scored { margin-top: 6px; display: flex; gap: 6px; align-items: flex-start; }
.legend .swatch { flex: none; width: 14px; height: 14px; border: 1px solid #444; }
header p.verdict-reason { color: #fff; font-size: 14px; font-weight: bold; }
.region-box { outline: 2px dashed #00e5ff; }
#viewer.hide-regions .region-box { display: none !important; }
.layout { display: grid; grid-template-columns: minmax(0, 1fr) 390px; gap: 16px; }
aside table { font-size: 12px; }
@media (max-width: 900px) { .layout { grid-template-columns: 1fr; } }
`;

/** Copies OpenSeadragon (from the openseadragon npm package) into <dir>/fqa-assets/. */
export async function writeViewerAssets(dir: string): Promise<void> {
  const require = createRequire(import.meta.url);
  const build = path.dirname(require.resolve('openseadragon'));
  const target = path.join(dir, ASSETS_DIR);
  // Once per folder (and again after an fqa upgrade brings another OpenSeadragon).
  const script = path.join(target, 'openseadragon.min.js');
  if (existsSync(script) && statSync(script).size === statSync(path.join(build, 'openseadragon.min.js')).size) return;
  await mkdir(target, { recursive: true });
  await cp(path.join(build, 'openseadragon.min.js'), path.join(target, 'openseadragon.min.js'));
  await cp(path.join(build, 'images'), path.join(target, 'images'), { recursive: true });
}
