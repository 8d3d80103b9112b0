import { createNativeModel, sweepSync } from '@fqa/native';
import { convertReferenceFile, parseModelFile, toNativeSpec } from './dist/index.js';
const file = parseModelFile(await convertReferenceFile('/work/shared/reference/focuslitenn/eonss.json', { architecture: 'eonss' }));
const m = createNativeModel(toNativeSpec(file));
const W = 235 * 8, H = 235 * 2;
const px = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 2654435761) >>> 24);
for (const threads of [1, 2]) {
  const o = { width: W, height: H, rowStride: W * 3, patchWidth: 235, patchHeight: 235, stride: 235, threads, kernel: 'auto', shareConvolution: false };
  sweepSync(m, px, o);
  const t = performance.now();
  let n = 0;
  while (performance.now() - t < 3000) { sweepSync(m, px, o); n += 16; }
  console.log(`EONSS ${threads} thread(s): ${(n / ((performance.now() - t) / 1000)).toFixed(0)} patches/s`);
}
