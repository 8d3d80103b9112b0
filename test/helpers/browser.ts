/**
 * A real headless Chromium for the HTML report tests (Debian's chromium, installed by .ci/run;
 * FQA_CHROMIUM names another binary) driven by puppeteer-core, and a static file server on
 * 127.0.0.1: pages opened from file:// may not fetch, so the report is also served.
 */
import { createReadStream, existsSync, mkdtempSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { missing } from './shared.js';

export const chromiumPath = process.env.FQA_CHROMIUM ?? '/usr/bin/chromium';
// Through missing(): under FQA_REQUIRE_ALL (CI) an absent Chromium fails instead of skipping.
export const hasChromium = !missing(existsSync(chromiumPath), `Chromium at ${chromiumPath} (apt-get install chromium, or set FQA_CHROMIUM)`);

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    userDataDir: mkdtempSync(path.join(tmpdir(), 'fqa-chromium-')),
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.json': 'application/json', '.png': 'image/png',
  '.jpeg': 'image/jpeg', '.jpg': 'image/jpeg', '.dzi': 'application/xml', '.tsv': 'text/tab-separated-values', '.geojson': 'application/geo+json',
};

/** Serves `root` read-only on 127.0.0.1 (a free port); resolves to the server and its base URL. */
export async function serveFolder(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const file = path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, url: `http://127.0.0.1:${address.port}/` };
}

/** Everything a page reports as wrong: console errors, uncaught exceptions, failed requests. */
export function collectProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`exception: ${(e as Error).message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  return problems;
}
