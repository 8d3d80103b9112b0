/**
 * The torch engine: the registry graph on libtorch (@fqa/torch, optional). Tensors cross as the
 * model file's PyTorch layouts, so nothing is converted; batches are read by the addon straight from
 * the JS buffers. One intra-op thread per process (see @fqa/torch): experiments parallelize over
 * processes. channels_last is chosen per architecture by measurement (the registry's torchChannelsLast).
 */
import type { TorchBinding } from '@fqa/torch';
import { getArchitecture } from '../../models/registry.js';
import type { EngineSession, EngineSessionOptions, EngineStatus, TrainingEngine } from './engine.js';

type TorchLoad = { ok: true; binding: TorchBinding } | { ok: false; reason: string };

/** The @fqa/torch addon, or why it is not there. */
export async function loadTorch(): Promise<TorchLoad> {
  let mod: typeof import('@fqa/torch');
  try {
    mod = await import('@fqa/torch');
  } catch {
    return { ok: false, reason: 'the @fqa/torch package is not installed (a checkout with bash scripts/install.sh --train has it)' };
  }
  return mod.loadTorchEngine();
}

export const torchEngine: TrainingEngine = {
  name: 'torch',
  async status(): Promise<EngineStatus> {
    const t = await loadTorch();
    if (!t.ok) return { name: 'torch', available: false, reason: t.reason };
    const info = t.binding.buildInfo();
    return { name: 'torch', available: true, detail: `libtorch ${info.torchVersion}, ${info.cuda ? `CUDA (${info.cudaDevices} device${info.cudaDevices === 1 ? '' : 's'})` : 'CPU only'}` };
  },
  open: openTorchSession,
};

async function openTorchSession(o: EngineSessionOptions): Promise<EngineSession> {
  const t = await loadTorch();
  if (!t.ok) throw new Error(`the torch engine is not available: ${t.reason}`);
  const device = o.device ?? 'cpu';
  const channelsLast = getArchitecture(o.architecture, 'arch').torchChannelsLast ?? false;
  const trainer = new t.binding.GraphTrainer({
    nodes: o.graph.nodes, input: o.graph.input, output: o.graph.output,
    tensors: o.graph.tensors.map((g) => ({
      name: g.name, shape: g.shape, kind: g.kind, data: o.tensors.get(g.name)!,
      ...(o.moments?.has(g.name) ? { m: o.moments.get(g.name)!.m, v: o.moments.get(g.name)!.v } : {}),
    })),
    step: o.step, loss: o.loss, mean: o.mean, std: o.std, threads: 1, device, channelsLast,
  });
  const info = t.binding.buildInfo();
  return {
    detail: `torch: libtorch ${info.torchVersion} (${device}, ${channelsLast ? 'channels_last, ' : ''}1 thread)`,
    step: (pixels, labels, count, rate) => trainer.step(pixels, labels, count, o.patchSize, rate),
    snapshot(withAdam) {
      return new Map(Object.entries(trainer.tensors(withAdam).tensors));
    },
    dispose: () => trainer.dispose(),
  };
}
