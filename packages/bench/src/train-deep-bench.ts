/**
 * Training throughput of the registry architectures through the graph trainer (tfjs), and what one
 * cell of the transfer experiment (Table 5) costs at that rate: patches/s of forward + backward +
 * Adam at the paper's batch 8, on synthetic defocus of real tissue (../shared/data), then the
 * estimated hours of one FocusPath64 cell (5,200 x 0.8 training images x 120 epochs x 5 trials).
 *
 *   npm run bench:train-deep -w @fqa/bench [-- --archs densenet13,darts-fqa --patches 16 --patch 64]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadTf, syntheticDefocus, trainArchitecture } from '@fqa/core';

const { values } = parseArgs({
  options: {
    archs: { type: 'string', default: 'eonss:64px,densenet13,mobilenetv2,darts-fqa,resnet10' },
    patches: { type: 'string', default: '16' },
    patch: { type: 'string', default: '64' },
  },
});
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const tile = path.resolve(repoRoot, '..', 'shared', 'data', 'tiles', 'tissue-level0-4302-10273-4814-10785.png');
const count = Number(values.patches);
const patchSize = Number(values.patch);
const data = await syntheticDefocus({ sources: [tile], count, patchSize, levels: 6, sigmaPerLevel: 0.8, seed: 3, noise: 2, minTissue: 0.6 });
const { package: pkg, backend } = await loadTf();
console.log(`graph trainer, ${pkg} (${backend}); ${count} patches of ${patchSize} px, batch 8, one epoch after a warm-up batch`);
console.log('| architecture | patches/s | one FocusPath64 cell (5 trials x 120 epochs x 4,160 crops) |');
console.log('|---|---|---|');
for (const spec of values.archs.split(',')) {
  const [architecture, variant] = spec.split(':') as [string, string | undefined];
  // Warm-up (tfjs kernels, first allocations), then the measured epoch.
  await trainArchitecture({ ...data, count: 8 }, { architecture, variant, epochs: 1, batchSize: 8 });
  const run = await trainArchitecture(data, { architecture, variant, epochs: 1, batchSize: 8 });
  const rate = run.samples / run.seconds;
  const hours = (5 * 120 * 4160) / rate / 3600;
  console.log(`| ${architecture}${variant ? ` ${variant}` : ''} | ${rate.toFixed(2)} | ${hours >= 48 ? `${(hours / 24).toFixed(0)} days` : `${hours.toFixed(1)} h`} |`);
}
