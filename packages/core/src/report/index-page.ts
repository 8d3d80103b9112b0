/**
 * index.html of a report folder: every slide of summary.tsv in a table that sorts (click a column
 * header) and filters (text, verdict), with a thumbnail and a link to each slide's page. The rows
 * are embedded in the page, so it works opened from the file system as well as from a server.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { version as fqaVersion } from '@fqa/native';
import { writeAtomic } from '../atomic-write.js';
import { unescapeTsvField } from '../scan/reports.js';
import { COHORT_STYLE, cohortSection } from './cohort.js';
import { FOLDER_COLUMNS, folderRows } from './folder.js';
import { STYLE, embedJson, escapeHtml, fileHref } from './html-common.js';

/** Thumbnail file of a slide in the report folder. */
export const thumbnailName = (stem: string) => `${stem}.thumb.jpg`;

const COLUMNS: { key: string; label: string; numeric?: boolean }[] = [
  { key: 'thumb', label: '' },
  { key: 'slide', label: 'slide' },
  { key: 'verdict', label: 'verdict' },
  { key: 'out_of_focus_pct_of_tissue', label: 'out of focus (% of tissue)', numeric: true },
  { key: 'tissue_pct', label: 'tissue (% of slide)', numeric: true },
  { key: 'patches_scored', label: 'patches', numeric: true },
  { key: 'artefact_pct_of_slide', label: 'pen / artefact (% of slide)', numeric: true },
  { key: 'scanned_at', label: 'scanned at (UTC)' },
  { key: 'new', label: 'new this run' },
  { key: 'seconds', label: 'time (s)', numeric: true },
  { key: 'warnings', label: 'warnings / errors' },
];

const SCRIPT = `
const rows = JSON.parse(document.getElementById('fqa-data').textContent);
const columns = JSON.parse(document.getElementById('fqa-columns').textContent);
const body = document.querySelector('#slides tbody');
const text = document.getElementById('filter-text');
const verdict = document.getElementById('filter-verdict');
let sortKey = 'slide';
let sortDir = 1;
function cell(row, c) {
  const td = document.createElement('td');
  const v = row[c.key] ?? '';
  if (c.key === 'thumb') {
    if (row.thumb) { const img = document.createElement('img'); img.src = row.thumb; img.className = 'thumb'; img.alt = ''; td.append(img); }
  } else if (c.key === 'slide') {
    if (row.page) { const a = document.createElement('a'); a.href = row.page; a.textContent = v; td.append(a); } else td.textContent = v;
  } else if (c.key === 'verdict') {
    const span = document.createElement('span'); span.className = 'verdict verdict-' + v; span.textContent = v; td.append(span);
  } else {
    td.textContent = v;
    if (c.numeric) td.className = 'num';
    if (c.key === 'warnings') td.className = 'warn';
  }
  return td;
}
function render() {
  const needle = text.value.trim().toLowerCase();
  const shown = rows.filter((r) => (!verdict.value || r.verdict === verdict.value) &&
    (!needle || (r.slide + ' ' + r.warnings).toLowerCase().includes(needle)));
  const numeric = columns.find((c) => c.key === sortKey).numeric;
  shown.sort((a, b) => {
    const x = a[sortKey] ?? '', y = b[sortKey] ?? '';
    if (numeric) { const nx = x === '' ? -Infinity : Number(x), ny = y === '' ? -Infinity : Number(y); return sortDir * (nx - ny); }
    return sortDir * String(x).localeCompare(String(y));
  });
  body.replaceChildren(...shown.map((r) => { const tr = document.createElement('tr'); tr.dataset.report = r.report; tr.append(...columns.map((c) => cell(r, c))); return tr; }));
  document.querySelectorAll('#slides th').forEach((th) => th.setAttribute('aria-sort', th.dataset.key === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none'));
  document.getElementById('shown').textContent = shown.length + ' of ' + rows.length + ' slides shown';
}
document.querySelectorAll('#slides th.sortable').forEach((th) => th.addEventListener('click', () => {
  if (sortKey === th.dataset.key) sortDir = -sortDir; else { sortKey = th.dataset.key; sortDir = 1; }
  render();
}));
text.addEventListener('input', render);
verdict.addEventListener('change', render);
render();
`;

/** Writes <dir>/index.html from the slide reports in the folder (the rows of summary.tsv). */
export async function writeIndexPage(dir: string, run: { date: string; model: string; maxOutOfFocusPct?: number }, scannedNow: ReadonlySet<string> = new Set()): Promise<void> {
  const rows = folderRows(dir, scannedNow).map((fields) => {
    const row: Record<string, string> = Object.fromEntries(FOLDER_COLUMNS.map((c, i) => [c, fields[i] ?? '']));
    for (const key of ['slide', 'warnings']) row[key] = unescapeTsvField(row[key]!);
    const stem = row.report!;
    if (existsSync(path.join(dir, thumbnailName(stem)))) row.thumb = fileHref(thumbnailName(stem));
    if (existsSync(path.join(dir, `${stem}.html`))) row.page = fileHref(`${stem}.html`);
    return row;
  });
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.verdict!, (counts.get(r.verdict!) ?? 0) + 1);
  const countText = [...counts].sort().map(([v, n]) => `${n} ${v}`).join(', ') || 'no slides';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>fqa focus report</title>
<style>${STYLE}${COHORT_STYLE}</style></head>
<body>
<header><h1>Focus quality report</h1>
<p>${rows.length} slides: ${escapeHtml(countText)} · last run ${escapeHtml(run.date)} with model ${escapeHtml(run.model)} · fqa ${escapeHtml(fqaVersion)} · <a href="summary.tsv">summary.tsv</a></p></header>
<main>
<div class="controls">
<label>filter <input type="search" id="filter-text" placeholder="slide name or warning"></label>
<label>verdict <select id="filter-verdict"><option value="">all</option>${[...counts.keys()].sort().map((v) => `<option>${escapeHtml(v)}</option>`).join('')}</select></label>
<span id="shown"></span></div>
<table id="slides"><thead><tr>${COLUMNS.map((c) => `<th data-key="${c.key}"${c.key === 'thumb' ? '' : ' class="sortable"'}>${escapeHtml(c.label)}</th>`).join('')}</tr></thead><tbody></tbody></table>
<p>Verdict <b>pass</b>: at most the limit (default 5 %) of the tissue scores above the model's threshold. <b>fail</b>: more than that. <b>no-tissue</b>: no tissue was found, nothing was scored. <b>unknown</b>: scored, but no verdict can be given (the model has no threshold, too few patches, or the image is outside the model's domain: the reason is in the last column). <b>too-small</b>: smaller than one patch at the model's resolution, nothing to score. <b>error</b>: the slide could not be read (the message is in the last column). <b>missing</b>: the slide is no longer at its path; this is its last report. <b>new this run</b>: scanned (or rescanned) by the latest run (for a queue: since the previous <code>queue report</code>); the others are reports kept from earlier runs, still valid for the same file, model and options.</p>
${cohortSection(rows, run.maxOutOfFocusPct ?? 5)}
</main>
<script type="application/json" id="fqa-data">${embedJson(rows)}</script>
<script type="application/json" id="fqa-columns">${embedJson(COLUMNS)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
  await writeAtomic(path.join(dir, 'index.html'), html);
}
