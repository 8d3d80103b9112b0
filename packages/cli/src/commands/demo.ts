/** fqa-scan demo: make a synthetic slide with known defocus, scan it, and say how well it matched. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_PATH, makeDemoSlide, matchDemo, nativeVersion, parseIntegerOption, scanSlide, writeIndexPage, writeSlideReports, writeSummaryTsv } from '@fqa/core';
import type { Command } from '../index.js';

export const demoCommand: Command = {
  summary: 'scan a synthetic slide with known out-of-focus regions and report the match',
  usage: `Usage: fqa-scan demo [--out DIR] [--size N] [--model FILE]   (N from 1024 to 8192, default 4096)

Writes DIR/demo-slide.tiff (a JPEG-tiled pyramidal TIFF, N x N px at 0.5 µm/px, H&E-like tissue with a
disk and a rectangle defocused by a Gaussian PSF of sigma 3 px), scans it like any slide (reports in
DIR), and prints the intersection-over-union of the area found out of focus (the union of the flagged
patches, as the report's regions and GeoJSON draw it) with the known defocused area, then per patch.`,
  async run(args) {
    const { values } = parseArgs({ args, options: { out: { type: 'string', default: 'fqa-demo' }, size: { type: 'string' }, model: { type: 'string' } } });
    // The image library's limit is 16383 x 16383 px (2^28 pixels); 8192 keeps the demo to a minute.
    const size = parseIntegerOption(values.size, 'size', 1024, 8192) ?? 4096;
    const model = values.model ?? DEFAULT_MODEL_PATH;
    mkdirSync(values.out, { recursive: true });
    const file = path.join(values.out, 'demo-slide.tiff');
    process.stderr.write(`making ${file} (${size} x ${size} px)...\n`);
    const demo = await makeDemoSlide(file, { size });
    const r = await scanSlide(file, { model });
    await writeSlideReports(values.out, 'demo-slide', r);
    // The folder is a report folder like any scan's: index.html links summary.tsv, so write it.
    const date = new Date().toISOString();
    await writeSummaryTsv(values.out, [`# fqa ${nativeVersion} demo`, `# model: ${r.model.name} ${path.resolve(model)}`, `# date: ${date}`]);
    await writeIndexPage(values.out, { date, model: r.model.name });
    const m = matchDemo(demo, r);
    process.stdout.write(
      `scanned ${r.summary.patchesScored} tissue patches in ${r.timings.totalSeconds.toFixed(1)} s (level ${r.level}, ${r.mpp ?? '?'} µm/px, kernel ${r.kernel})\n` +
        `out of focus: ${r.summary.outOfFocusFraction === null ? 'n/a' : (100 * r.summary.outOfFocusFraction).toFixed(1) + '% of tissue'}; verdict ${r.summary.verdict}\n` +
        `match with the known defocused area: IoU ${m.area.iou.toFixed(3)} (precision ${m.area.precision.toFixed(3)}, recall ${m.area.recall.toFixed(3)}; the union of the flagged patches)\n` +
        `  per patch (truth at the patch centre): IoU ${m.iou.toFixed(3)} (precision ${m.precision.toFixed(3)}, recall ${m.recall.toFixed(3)}; ${m.truePositives} true, ${m.falsePositives} false positives, ${m.missed} missed)\n` +
        `  on the patches entirely in or out of the regions: IoU ${m.unambiguousIou.toFixed(3)} (${m.mixedPatches} patches straddle a region's edge: with sharp tissue in them they score in focus)\n` +
        `reports: ${path.resolve(values.out)}\n`,
    );
    return 0;
  },
};
