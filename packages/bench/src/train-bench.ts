/**
 * Training benchmarks.
 *
 * 1. Native vs tfjs trainer on the same small run: synthetic defocus patches from real tissue
 *    (../shared/data), same seed, same batches; samples/s of forward + backward + Adam, and the final
 *    loss of both (they agree to float rounding, which is the point of running them side by side).
 * 2. --focuspath-sized: the timing run, FocusPath's shape: 5,200 images, one random 235 px
 *    crop per image per epoch, 120 epochs, batch 50, FocusLiteNN-10 by default, through the real
 *    dataset path (JPEG files + CSV + randomCropSource with its decoded-image cache).
 *
 *   npm run bench:train-native -w @fqa/bench [-- --epochs 2 --count 300]
 *   npm run bench:train-native -w @fqa/bench -- --focuspath-sized [--kernels 10 --epochs 120 --image 384 --dir /tmp]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { cpuInfo, loadDataset, loadTf, randomCropSource, syntheticDefocus, trainFocusLite, trainTfjs, type PatchSet } from '@fqa/core';

const { values } = parseArgs({
  options: {
    'focuspath-sized': { type: 'boolean', default: false }, epochs: { type: 'string' }, count: { type: 'string' },
    kernels: { type: 'string', default: '10' }, image: { type: 'string', default: '384' }, dir: { type: 'string', default: os.tmpdir() },
    images: { type: 'string', default: '5200' },
  },
});
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const data = path.resolve(repoRoot, '..', 'shared', 'data');
const sources = ['slides/CMU-1-Small-Region.svs', 'tiles/tissue-level0-4302-10273-4814-10785.png', 'tiles/ihc.png', 'tiles/medium-nuclei-score-level0.png'].map((s) => path.join(data, s));
if (!sources.every(existsSync)) throw new Error(`the benchmark makes its data from ${data}, which is missing`);
const cpu = cpuInfo();
console.log(`${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores, best kernel ${cpu.best}`);

if (!values['focuspath-sized']) {
  const epochs = Number(values.epochs ?? 2);
  const count = Number(values.count ?? 300);
  const { package: tfPackage, backend } = await loadTf();
  console.log(`same run on both trainers: ${count} synthetic patches, ${epochs} epochs, batch 50, PLCC loss; tfjs = ${tfPackage} (${backend})`);
  console.log('model\tpatch\tnative samples/s\ttfjs samples/s\tnative/tfjs\tnative final loss\ttfjs final loss');
  const sets = new Map<number, PatchSet>();
  for (const size of [64, 235] as const) {
    sets.set(size, await syntheticDefocus({ sources, count, patchSize: size, levels: 10, sigmaPerLevel: 0.5, seed: 4, noise: 2, minTissue: 0.6 }));
  }
  for (const [kernels, size] of [[1, 64], [2, 64], [10, 64], [1, 235], [2, 235], [10, 235]] as const) {
    const o = { kernels, variant: size, epochs, batchSize: 50, seed: 1, loss: 'plcc' as const };
    const native = await trainFocusLite(sets.get(size)!, o);
    const tfjs = await trainTfjs(sets.get(size)!, o);
    const n = native.samples / native.seconds;
    const t = tfjs.samples / tfjs.seconds;
    console.log(`FocusLiteNN-${kernels}\t${size}\t${n.toFixed(0)}\t${t.toFixed(1)}\t${(n / t).toFixed(0)}x\t${native.history.at(-1)!.loss.toFixed(6)}\t${tfjs.history.at(-1)!.loss.toFixed(6)}`);
  }
  const few = await syntheticDefocus({ sources, count: 40, patchSize: 235, levels: 10, sigmaPerLevel: 0.5, seed: 4, noise: 2, minTissue: 0.6 });
  const eonss = await trainTfjs(few, { architecture: 'eonss', kernels: 1, variant: 235, epochs: 1, batchSize: 20, seed: 1 });
  console.log(`EONSS\t235\t(no native trainer)\t${(eonss.samples / eonss.seconds).toFixed(2)}`);
} else {
  const images = Number(values.images);
  const imageSize = Number(values.image);
  const kernels = Number(values.kernels);
  const epochs = Number(values.epochs ?? 120);
  const dir = path.join(values.dir, `fqa-focuspath-sized-${images}-${imageSize}`);
  const labels = path.join(dir, 'labels.csv');
  if (!existsSync(labels)) {
    // FocusPath's shape: 5,200 labelled images. Ours are synthetic defocus of real tissue (levels
    // 0-14 like FocusPath's |z|), JPEG q90, imageSize px square (FocusPath's are 1024 px).
    const start = performance.now();
    mkdirSync(dir, { recursive: true });
    const rows = ['file,label'];
    for (let b = 0; b < images; b += 400) {
      const n = Math.min(400, images - b);
      const set = await syntheticDefocus({ sources, count: n, patchSize: imageSize, levels: 15, sigmaPerLevel: 0.4, seed: 100 + b, noise: 2, minTissue: 0.5 });
      for (let i = 0; i < n; i++) {
        const name = `img${String(b + i).padStart(5, '0')}.jpg`;
        await sharp(set.patches.subarray(i * imageSize * imageSize * 3, (i + 1) * imageSize * imageSize * 3), { raw: { width: imageSize, height: imageSize, channels: 3 } }).jpeg({ quality: 90 }).toFile(path.join(dir, name));
        rows.push(`${name},${set.labels[i]}`);
      }
    }
    writeFileSync(labels, rows.join('\n') + '\n');
    console.log(`made ${images} images of ${imageSize} px in ${dir} (${((performance.now() - start) / 1000).toFixed(0)} s)`);
  }
  const dataset = loadDataset('csv', dir, labels);
  const source = randomCropSource(dataset.items, { size: 235 });
  console.log(`FocusPath-sized run: ${dataset.items.length} images, one random 235 px crop each per epoch, ${epochs} epochs, FocusLiteNN-${kernels}, batch 50, native trainer`);
  const result = await trainFocusLite(source, {
    kernels, variant: 235, epochs, batchSize: 50, stepSize: 60, seed: 1, loss: 'plcc',
    onEpoch: (e) => { if (e.epoch === 1 || e.epoch % 10 === 0) console.log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, ${e.seconds.toFixed(0)} s`); },
  });
  console.log(`total ${result.seconds.toFixed(0)} s (${(result.seconds / 60).toFixed(1)} min) for ${result.samples} samples: ${(result.samples / result.seconds).toFixed(0)} samples/s; epoch 1 includes decoding every image once`);
}
