// DARTS search on the torch engine (autograd) against the tfjs search network with its
// hand-written gradients (search/cpu-ops.ts, themselves checked by finite differences in
// packages/core/test/search-ops.test.ts): from one seed both engines hold the same network, give
// the same loss and the same gradients for alpha and every weight on a batch of real tissue, and a
// short search moves alpha the same way on both.
import { describe, expect, test } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import { loadTf, resolveDartsSettings, runDarts, syntheticDefocus, tfLoss } from '@fqa/core';
import { createSupernet } from '../../core/dist/search/supernet.js';
import { supernetGraph } from '../../core/dist/search/supernet-graph.js';
import { seededRandom } from '../../core/dist/train/random.js';
import { patchesToTensor } from '../../core/dist/train/tfjs-models.js';
import { patchSetSource } from '../../core/dist/train/batches.js';
import { convFromTf } from '../../core/dist/models/backends/tfjs.js';
import { loadTorchEngine } from '../dist/index.js';
import { hasShared, missing, shared } from '../../../test/helpers/shared.js';

const torch = loadTorchEngine();
const hasTorch = !missing(torch.ok, 'the torch training engine (bash scripts/install.sh --train)');
const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((t, v) => t + v * v, 0));

describe.skipIf(!hasTorch || !hasShared)('DARTS search: torch autograd against the tfjs search network', () => {
  const mean = [0.6, 0.45, 0.65];
  const std = [0.2, 0.2, 0.2];
  const size = 16;

  test('one seed, one network: the same loss and the same gradients of alpha and of every weight', async () => {
    const { tf } = await loadTf();
    const data = await syntheticDefocus({ sources: [shared('data', 'tiles', 'high-nuclei-score-level0.png')], count: 8, patchSize: size, levels: 4, sigmaPerLevel: 1, seed: 3, minTissue: 0.3 });
    const settings = resolveDartsSettings({ channels: 4, patchSize: size, seed: 5 });
    const net = createSupernet(tf, settings, seededRandom(settings.seed));
    const graph = supernetGraph(net);
    const { GraphTrainer } = (torch as Extract<typeof torch, { ok: true }>).binding;
    const trainer = new GraphTrainer({ ...graph, step: 0, loss: 'plcc', mean, std, threads: 1, device: 'cpu', channelsLast: false });
    const onTorch = trainer.gradients(data.patches, data.labels, data.count, size);
    const variables = [net.alphas, ...net.weights.values()];
    const x = patchesToTensor(tf, data.patches, data.count, size, mean, std);
    const { value, grads } = tf.variableGrads(() => tfLoss(tf, 'plcc', net.forward(x), tf.tensor1d(data.labels)), variables);
    expect(Math.abs(onTorch.loss - value.dataSync()[0]!)).toBeLessThanOrEqual(1e-4);
    // The tfjs gradients in the torch layouts, by name.
    const tfjsGradients = new Map<string, Float32Array>([['alphas', Float32Array.from(grads[net.alphas.name]!.dataSync())]]);
    for (const [name, v] of net.weights) {
      const g = Float32Array.from(grads[v.name]!.dataSync());
      const spec = graph.tensors.find((t) => t.name === name)!;
      tfjsGradients.set(name, spec.shape.length === 4 ? convFromTf(g, spec.shape) : g);
    }
    expect(new Set(Object.keys(onTorch.gradients))).toEqual(new Set(tfjsGradients.keys()));
    let difference = 0;
    let size2 = 0;
    for (const [name, g] of tfjsGradients) {
      const t = onTorch.gradients[name]!;
      difference += norm(t.map((v, i) => v - g[i]!)) ** 2;
      size2 += norm(g) ** 2;
    }
    expect(Math.sqrt(difference / size2), 'all weights').toBeLessThanOrEqual(1e-4);
    const alphas = tfjsGradients.get('alphas')!;
    expect(norm(alphas)).toBeGreaterThan(0);
    expect(norm(onTorch.gradients.alphas!.map((v, i) => v - alphas[i]!)) / norm(alphas), 'alpha').toBeLessThanOrEqual(1e-3);
    trainer.dispose();
    net.dispose();
    tf.dispose([x, value, ...Object.values(grads)]);
  }, 300_000);

  test('a short search on torch: reproducible by seed, alpha moves as on tfjs', async () => {
    const data = await syntheticDefocus({ sources: [shared('data', 'tiles', 'high-nuclei-score-level0.png')], count: 16, patchSize: size, levels: 4, sigmaPerLevel: 1, seed: 3, minTissue: 0.3 });
    const half = (from: number) => patchSetSource({ ...data, count: 8, patches: data.patches.subarray(from * size * size * 3, (from + 8) * size * size * 3), labels: data.labels.subarray(from, from + 8) });
    const settings = resolveDartsSettings({ epochs: 2, batchSize: 4, channels: 2, patchSize: size, seed: 7 });
    const run = (engine: 'torch' | 'tfjs') => runDarts(half(0), half(8), settings, { mean, std, engine });
    const [a, b, c] = [await run('torch'), await run('torch'), await run('tfjs')];
    expect(a.backend).toMatch(/^torch: libtorch/);
    expect(c.backend).toMatch(/^tfjs: /);
    expect(b.history.map((e) => e.weights)).toEqual(a.history.map((e) => e.weights));
    expect(a.initialWeights).toEqual(c.initialWeights.map((row) => row.map((v) => expect.closeTo(v, 6))));
    // Alpha's movement over the search, on both engines: the same direction and size.
    const moved = (r: typeof a) => r.history.at(-1)!.weights.flat().map((v, i) => v - r.initialWeights.flat()[i]!);
    const [ma, mc] = [moved(a), moved(c)];
    expect(norm(ma)).toBeGreaterThan(1e-4);
    expect(norm(ma.map((v, i) => v - mc[i]!)) / norm(mc)).toBeLessThanOrEqual(1e-2);
  }, 300_000);
});
