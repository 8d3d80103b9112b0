// The HTML report in a real headless Chromium: a scan of the shared slides (one with a flagged
// region, one without tissue, one unreadable file), served from 127.0.0.1 and opened from the file
// system. The viewer's pixels are compared, with a tolerance, against the slide itself (heatmap
// off) and the heatmap PNG (heatmap on at full opacity). A second run (a limit of 1 % fails the
// same slide; a tile without resolution gets no verdict) gives every verdict a page: each says its
// reason, shows the grey "not scored" swatch and no negative blur, and is kept as a screenshot in
// test-output/screenshots/ (gitignored) for a person to look at.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MODEL_PATH, loadModel, openSource } from '@fqa/core';
import { collectProblems, hasChromium, launchChromium, serveFolder } from './helpers/browser.js';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const work = mkdtempSync(path.join(tmpdir(), 'fqa-html-'));
const out = path.join(work, 'report');
const svs = shared('data', 'slides', 'CMU-1-Small-Region.svs');
const stem = 'CMU-1-Small-Region';
// The second run: the same slide against a 1 % limit (it fails), and a tile without resolution (unknown).
const out2 = path.join(work, 'report-2');
const tile = shared('data', 'tiles', 'tissue-level0-4302-10273-4814-10785.png');
const tileStem = 'tissue-level0-4302-10273-4814-10785';
const screenshots = path.join(repoRoot, 'test-output', 'screenshots');

interface Raw { data: Buffer; width: number; height: number; channels: number }
const raw = async (image: sharp.Sharp): Promise<Raw> => {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
};

/** Where the slide is drawn in the viewer element (px), and the navigator's box to leave out. */
interface Layout { left: number; top: number; width: number; height: number; nav: { left: number; top: number; right: number; bottom: number } }

async function viewerLayout(page: Page): Promise<Layout> {
  return page.evaluate(() => {
    const v = (window as unknown as { fqaViewer: any }).fqaViewer;
    const b = v.world.getItemAt(0).getBounds(true);
    const tl = v.viewport.pixelFromPoint(b.getTopLeft(), true);
    const br = v.viewport.pixelFromPoint(b.getBottomRight(), true);
    const host = document.getElementById('viewer')!.getBoundingClientRect();
    const nav = v.navigator.element.getBoundingClientRect();
    return { left: tl.x, top: tl.y, width: br.x - tl.x, height: br.y - tl.y, nav: { left: nav.left - host.left, top: nav.top - host.top, right: nav.right - host.left, bottom: nav.bottom - host.top } };
  });
}

/**
 * Mean absolute difference (per channel, 0–255) between the viewer screenshot and `reference`
 * resized to where the slide is drawn, over 4x4 px blocks (canvas and libvips resample a little
 * differently; block means compare what a reader sees), using the pixels `use` accepts, with the
 * reference shifted by `shift` px (a control: a misplaced image must differ clearly more).
 */
async function compare(shot: Raw, reference: sharp.Sharp, layout: Layout, use: (ref: Raw, i: number) => boolean, shift = 0): Promise<{ diff: number; pixels: number }> {
  const ref = await raw(reference.resize(Math.round(layout.width), Math.round(layout.height), { fit: 'fill' }));
  const block = 4;
  let sum = 0;
  let blocks = 0;
  let pixels = 0;
  for (let by = 0; by + block <= ref.height; by += block)
    for (let bx = 0; bx + block <= ref.width - shift; bx += block) {
      const acc = [0, 0, 0, 0, 0, 0];
      let n = 0;
      for (let y = by; y < by + block; y++)
        for (let x = bx; x < bx + block; x++) {
          const sx = Math.round(layout.left + x);
          const sy = Math.round(layout.top + y);
          if (sx < 0 || sy < 0 || sx >= shot.width || sy >= shot.height) continue;
          if (sx >= layout.nav.left - 2 && sx <= layout.nav.right + 2 && sy >= layout.nav.top - 2 && sy <= layout.nav.bottom + 2) continue;
          const ri = (y * ref.width + x + shift) * ref.channels;
          if (!use(ref, ri)) continue;
          const si = (sy * shot.width + sx) * shot.channels;
          for (let c = 0; c < 3; c++) {
            acc[c] += shot.data[si + c]!;
            acc[c + 3] += ref.data[ri + c]!;
          }
          n++;
        }
      if (n < block * block) continue;
      for (let c = 0; c < 3; c++) sum += Math.abs(acc[c]! - acc[c + 3]!) / n;
      blocks++;
      pixels += n;
    }
  return { diff: sum / (3 * Math.max(1, blocks)), pixels };
}

async function openSlidePage(page: Page, url: string) {
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => {
    const v = (window as unknown as { fqaViewer?: any }).fqaViewer;
    return document.body.dataset.heatmap === 'ready' && v && v.world.getItemCount() === 2 && v.world.getItemAt(0).getFullyLoaded() && v.world.getItemAt(1).getFullyLoaded();
  }, { timeout: 60_000 });
}

async function setLayer(page: Page, options: { heatmap: boolean; opacity?: number; regions: boolean }) {
  await page.evaluate((o) => {
    const set = (id: string, prop: 'checked' | 'value', value: boolean | string, event: string) => {
      const el = document.getElementById(id) as HTMLInputElement;
      (el as any)[prop] = value;
      el.dispatchEvent(new Event(event));
    };
    set('heatmap-toggle', 'checked', o.heatmap, 'change');
    if (o.opacity !== undefined) set('heatmap-opacity', 'value', String(o.opacity), 'input');
    set('regions-toggle', 'checked', o.regions, 'change');
  }, options);
  // Let OpenSeadragon redraw (it draws on animation frames).
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  await page.waitForFunction(() => !(window as unknown as { fqaViewer: any }).fqaViewer.world.needsDraw());
}

async function viewerShot(page: Page): Promise<Raw> {
  const png = await (await page.$('#viewer'))!.screenshot({ type: 'png' });
  return raw(sharp(Buffer.from(png)).removeAlpha());
}

describe.skipIf(!hasShared || !hasChromium)('HTML report in Chromium', () => {
  let browser: Browser;
  let server: Server;
  let root: string;
  let base: string;

  beforeAll(async () => {
    const broken = path.join(work, 'broken.svs');
    writeFileSync(broken, 'not a slide\n');
    const cli = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
    const r = spawnSync(process.execPath, [cli, svs, shared('data', 'slides', 'small_HE_levels.tiff'), broken, '--out', out, '--workers', '2'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(3);
    const r2 = spawnSync(process.execPath, [cli, tile, svs, '--max-out-of-focus', '1', '--out', out2, '--workers', '2'], { encoding: 'utf8' });
    expect(r2.status, r2.stderr).toBe(1);
    mkdirSync(screenshots, { recursive: true });
    // Both folders under one server: the first run at /, the second at /report-2/.
    ({ server, url: root } = await serveFolder(work));
    base = root + 'report/';
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  test('index.html: every slide, no console errors, the table sorts and filters', async () => {
    const page = await browser.newPage();
    const problems = collectProblems(page);
    await page.goto(base + 'index.html', { waitUntil: 'networkidle0' });
    const reports = () => page.$$eval('#slides tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.report));
    // By slide path as given (the page compares with localeCompare); where ../shared lies decides the order.
    const byName = [[path.join(work, 'broken.svs'), 'broken'], [svs, stem], [shared('data', 'slides', 'small_HE_levels.tiff'), 'small_HE_levels']]
      .sort((a, b) => a[0]!.localeCompare(b[0]!)).map((x) => x[1]);
    expect(await reports()).toEqual(byName);
    expect(await page.$$eval('#slides tbody img', (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth > 0))).toEqual([true, true]);
    const header = (key: string) => page.click(`#slides th[data-key="${key}"]`);
    await header('patches_scored');
    expect(await reports()).toEqual(['broken', 'small_HE_levels', stem]); // '' < 0 < 138
    await header('patches_scored');
    expect(await reports()).toEqual([stem, 'small_HE_levels', 'broken']);
    expect(await page.$eval('#slides th[data-key="patches_scored"]', (th) => th.getAttribute('aria-sort'))).toBe('descending');
    await page.select('#filter-verdict', 'error');
    expect(await reports()).toEqual(['broken']);
    expect(await page.$eval('#slides tbody tr .warn', (td) => td.textContent)).toMatch(/neither a slide format/);
    await page.select('#filter-verdict', '');
    await page.type('#filter-text', 'cmu-1');
    expect(await reports()).toEqual([stem]);
    expect(await page.$eval('#shown', (e) => e.textContent)).toBe('1 of 3 slides shown');
    expect(problems).toEqual([]);
  });

  test('slide page: zoomable view, heatmap layer toggles and fades, legend in score units, flagged regions zoom', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const problems = collectProblems(page);
    await openSlidePage(page, base + `${stem}.html`);
    // The fixed scale: threshold ± 5 levels, read as µm of blur radius at the model's µm/px.
    const header = (await loadModel(DEFAULT_MODEL_PATH)).header;
    const t = header.score.threshold!;
    const um = (level: number) => String(level * header.micronsPerPixel!);
    expect(t - 5).toBeLessThanOrEqual(0); // the bar starts in focus
    expect(await page.$eval('.legend', (e) => e.textContent)).toMatch(new RegExp(`blur radius in µm.*in focus.*level ≤ ${t - 5}.*threshold ${um(t)} µm.*level ${t}.*blurry ≥ ${um(t + 5)} µm.*level ≥ ${t + 5}`, 's'));
    const regions = await page.$$eval('#regions tbody tr', (rows) => rows.length);
    expect(regions).toBeGreaterThan(0); // 1.4 % of the tissue is out of focus: at least one region is flagged
    const layout = await viewerLayout(page);
    expect(layout.width).toBeGreaterThan(200);

    // Heatmap off: the viewer shows the slide (JPEG tiles, resampled): close to the slide itself,
    // and clearly closer than to the slide shifted by 12 px.
    await setLayer(page, { heatmap: false, regions: false });
    const opacityOff = await page.evaluate(() => (window as unknown as { fqaViewer: any }).fqaViewer.world.getItemAt(1).getOpacity());
    expect(opacityOff).toBe(0);
    const off = await viewerShot(page);
    const source = await openSource(svs);
    const level0 = Buffer.from(await source.readRegion(0, 0, 0, 2220, 2967));
    source.close();
    const slide = () => sharp(level0, { raw: { width: 2220, height: 2967, channels: 3 } });
    const all = () => true;
    const plain = await compare(off, slide(), layout, all);
    const shifted = await compare(off, slide(), layout, all, 12);
    expect(plain.pixels).toBeGreaterThan(0.8 * layout.width * layout.height);
    expect(plain.diff).toBeLessThan(10); // measured 7.6 (JPEG tiles, canvas resampling)
    expect(shifted.diff).toBeGreaterThan(2 * plain.diff); // measured 20.9

    // Heatmap on at full opacity: where the heatmap is opaque the viewer shows its colours.
    await setLayer(page, { heatmap: true, opacity: 100, regions: false });
    const on = await viewerShot(page);
    const heatmap = () => sharp(path.join(out, `${stem}.heatmap.png`));
    const opaque = (ref: Raw, i: number) => [0, 4, -4, 4 * ref.width, -4 * ref.width].every((d) => ref.data[i + 3 + d] === 255);
    const coloured = await compare(on, heatmap(), layout, opaque);
    expect(coloured.pixels).toBeGreaterThan(1000);
    expect(coloured.diff).toBeLessThan(10);
    // ... and the slide is unchanged where the heatmap is transparent (glass).
    const glass = await compare(on, slide(), layout, (ref, i) => ref.data[i]! > 235 && ref.data[i + 1]! > 235);
    expect(glass.diff).toBeLessThan(6);
    // Half opacity lies between the two.
    await setLayer(page, { heatmap: true, opacity: 50, regions: false });
    const half = await compare(await viewerShot(page), heatmap(), layout, opaque);
    expect(half.diff).toBeGreaterThan(coloured.diff + 10);

    // FQA_REPORT_SHOT=file.png keeps a screenshot of the page (heatmap at the default 60 %).
    if (process.env.FQA_REPORT_SHOT) {
      await setLayer(page, { heatmap: true, opacity: 60, regions: true });
      await page.screenshot({ path: process.env.FQA_REPORT_SHOT as `${string}.png`, fullPage: true });
    }
    // A flagged region's zoom button zooms in on it.
    const home = await page.evaluate(() => (window as unknown as { fqaViewer: any }).fqaViewer.viewport.getZoom(true));
    await page.click('#regions button[data-region="0"]');
    await page.waitForFunction((h) => (window as unknown as { fqaViewer: any }).fqaViewer.viewport.getZoom(true) > 1.5 * h, {}, home);
    expect(problems).toEqual([]);
  });

  test('opened from the file system: both pages load without errors', async () => {
    const page = await browser.newPage();
    const problems = collectProblems(page);
    await page.goto(pathToFileURL(path.join(out, 'index.html')).href, { waitUntil: 'load' });
    expect(await page.$$eval('#slides tbody tr', (rows) => rows.length)).toBe(3);
    await openSlidePage(page, pathToFileURL(path.join(out, `${stem}.html`)).href);
    // The no-tissue slide's page says that nothing was scored, never "no region above the threshold".
    await page.goto(pathToFileURL(path.join(out, 'small_HE_levels.html')).href, { waitUntil: 'load' });
    expect(await page.$eval('main', (e) => e.textContent)).toMatch(/Nothing was scored, so no region can be flagged: no tissue patch to score/);
    expect(await page.$eval('main', (e) => e.textContent)).not.toMatch(/No region scores above the threshold/);
    expect(problems).toEqual([]);
  });

  // Each verdict's page, with the reason expected from its JSON report (the oracle: what the scan recorded).
  const pct = (percent: number) => `${(percent < 1 && percent > 0 ? percent.toFixed(2) : percent.toFixed(1)).replace('.', '\\.')} %`;
  const verdictPages: Array<{ verdict: string; folder: string; stem: string; reason: (j: any) => RegExp }> = [
    { verdict: 'pass', folder: 'report', stem, reason: (j) => new RegExp(`^pass: ${pct(j.summary.outOfFocusPctOfTissue)} of scored tissue out of focus, within the limit of 5\\.0 %$`) },
    { verdict: 'fail', folder: 'report-2', stem, reason: (j) => new RegExp(`^fail: ${pct(j.summary.outOfFocusPctOfTissue)} of scored tissue out of focus, more than the limit of 1\\.0 %$`) },
    { verdict: 'no-tissue', folder: 'report', stem: 'small_HE_levels', reason: (j) => new RegExp(`^no verdict: no tissue patch to score \\(tissue ${pct(j.summary.tissuePct)} of the slide, ${pct(j.summary.penPctOfSlide)} excluded as marker pen; patches need ≥ 50\\.0 % tissue\\)$`) },
    { verdict: 'unknown', folder: 'report-2', stem: tileStem, reason: () => /^no verdict: the slide's resolution is unknown \(no mpp in its metadata\): give --mpp/ },
  ];

  test.each(verdictPages)('the $verdict page says why, shows the grey "not scored" swatch and no negative blur (screenshot)', async ({ verdict, folder, stem: name, reason }) => {
    const json = JSON.parse(readFileSync(path.join(work, folder, `${name}.json`), 'utf8'));
    expect(json.summary.verdict).toBe(verdict);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const problems = collectProblems(page);
    await openSlidePage(page, `${root}${folder}/${name}.html`);
    // The band under the title and the summary's verdict row give the same reason.
    const band = await page.$eval('#verdict-reason', (e) => e.textContent!);
    expect(band).toMatch(reason(json));
    expect(await page.$eval('#summary tr:first-child td', (e) => e.textContent)).toContain(band);
    // The legend's grey swatch, drawn and named.
    const swatch = await page.$eval('.legend .not-scored .swatch', (e) => {
      const box = e.getBoundingClientRect();
      return { colour: getComputedStyle(e).backgroundColor, width: box.width, height: box.height };
    });
    expect(swatch.colour).toBe('rgb(189, 189, 189)');
    expect(swatch.width).toBeGreaterThanOrEqual(10);
    expect(await page.$eval('.legend .not-scored', (e) => e.textContent)).toMatch(/^not scored: no tissue, or < 50\.0 % tissue \(--min-tissue\)/);
    // No negative blur anywhere a person reads (a level below 0 is "in focus"), and the scores
    // are in µm where the slide's resolution is known.
    const text = await page.$eval('body', (e) => e.innerText);
    expect(text).not.toMatch(/[−-]\s*\d+(\.\d+)?\s*µm/);
    if (json.summary.patchesScored > 0) {
      expect(await page.$eval('#summary', (e) => e.textContent)).toMatch(/mean blur/);
      if (json.summary.mean < 0) expect(await page.$eval('#summary', (e) => e.textContent)).toContain(`in focus (level −${Math.abs(json.summary.mean).toFixed(2)})`);
    }
    if (json.mpp !== null) expect(await page.$eval('.legend', (e) => e.textContent)).toMatch(/threshold 2\.5 µm/);
    else expect(await page.$eval('.legend', (e) => e.textContent)).toMatch(/µm unknown: no slide resolution/);
    // "No region above the threshold" only where patches were scored against it.
    if (json.summary.patchesScored === 0) expect(text).not.toMatch(/No region scores above the threshold/);
    await page.screenshot({ path: path.join(screenshots, `slide-${verdict}.png`), fullPage: true });
    expect(problems).toEqual([]);
  });

  test('index.html of both runs, kept as screenshots', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 700 });
    for (const [folder, shot] of [['report', 'index-pass-no-tissue-error.png'], ['report-2', 'index-fail-unknown.png']] as const) {
      const problems = collectProblems(page);
      await page.goto(`${root}${folder}/index.html`, { waitUntil: 'networkidle0' });
      expect(await page.$$eval('#slides tbody tr', (rows) => rows.length)).toBe(folder === 'report' ? 3 : 2);
      await page.screenshot({ path: path.join(screenshots, shot), fullPage: true });
      expect(problems).toEqual([]);
    }
  });
});
