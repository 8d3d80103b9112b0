/**
 * Whole-slide scan benchmark: time per stage and peak memory (VmHWM of the process, which includes
 * the worker threads) for a 25,000 x 25,000 JPEG-tiled pyramidal TIFF like the one behind
 * ../shared/peers/README.md (CMU-1-Small-Region.svs replicated, 240-px JPEG tiles, quality 80).
 * The slide is made once with sharp (libvips) under --dir and reused.
 *
 *   npm run bench:scan -w @fqa/bench [-- --size 25000 --dir /tmp --workers 2]
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_MODEL_PATH, openSource, scanSlide } from '@fqa/core';

const { values } = parseArgs({ options: { size: { type: 'string', default: '25000' }, dir: { type: 'string', default: os.tmpdir() }, workers: { type: 'string' } } });
const size = Number(values.size);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const svs = path.resolve(repoRoot, '..', 'shared', 'data', 'slides', 'CMU-1-Small-Region.svs');
const slide = path.join(values.dir, `fqa-bench-${size}.tiff`);

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

if (!existsSync(slide)) {
  if (!existsSync(svs)) throw new Error(`${svs} not found: the benchmark slide is made from it`);
  const start = performance.now();
  const source = await openSource(svs);
  const { width, height } = source.levels[0]!;
  const tile = await source.readRegion(0, 0, 0, width, height);
  source.close();
  const png = await sharp(tile, { raw: { width, height, channels: 3 } }).png().toBuffer();
  await sharp({ create: { width: size, height: size, channels: 3, background: '#ffffff' }, limitInputPixels: false })
    .composite([{ input: png, tile: true }])
    .tiff({ tile: true, tileWidth: 240, tileHeight: 240, pyramid: true, compression: 'jpeg', quality: 80, xres: 1000 / 0.499, yres: 1000 / 0.499, resolutionUnit: 'cm' })
    .toFile(slide);
  console.log(`made ${slide} (${size} x ${size}) in ${((performance.now() - start) / 1000).toFixed(1)} s`);
}

const before = peakRssMiB();
const start = performance.now();
const result = await scanSlide(slide, { model: DEFAULT_MODEL_PATH, ...(values.workers ? { workers: Number(values.workers) } : {}) });
const seconds = (performance.now() - start) / 1000;
const mp = (size * size) / 1e6;
console.log(`fqa scan benchmark — ${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'CPU'}, ${os.cpus().length} CPUs`);
console.log(`slide ${size} x ${size} (${mp.toFixed(0)} MP), level ${result.level}, ${result.columns} x ${result.rows} patches of ${result.patchSize} px stride ${result.stride}, ${result.summary.patchesScored} scored (tissue ${(100 * result.summary.tissueFraction).toFixed(1)} %)`);
console.log(`open ${result.timings.openSeconds.toFixed(2)} s, tissue mask ${result.timings.tissueSeconds.toFixed(2)} s, read + score ${result.timings.scoreSeconds.toFixed(2)} s, total ${seconds.toFixed(2)} s (${(mp / seconds).toFixed(1)} MP/s of slide)`);
console.log(`reader ${result.reader.reader}: ${result.reader.tilesDecoded} JPEG tiles decoded, ${result.reader.tilesRedecoded} of them more than once, ${result.reader.tileCacheHits} cache hits`);
console.log(`peak RSS ${peakRssMiB().toFixed(0)} MiB (before the scan ${before.toFixed(0)} MiB); 300 such slides: ${((300 * seconds) / 3600).toFixed(2)} h`);
