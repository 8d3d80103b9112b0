/**
 * Model files from trained weights: the same FQAMODEL format the converter writes, so `fqa-scan`
 * scans with a model from either trainer exactly as with a converted one.
 */
import type { EonssSpec, FocusLiteNNSpec } from '@fqa/native';
import { EONSS_LAYERS, encodeModelFile, type ModelHeader } from '../model-file.js';
import { getArchitecture, variantConfig } from '../models/registry.js';
import type { ArchitectureTrainResult } from './graph-trainer.js';

export interface TrainedModelInfo {
  name: string;
  /** Default sweep stride (the paper: 128 for 235 px, 32 for 64 px). */
  stride: number;
  score: ModelHeader['score'];
  micronsPerPixel: number | null;
  provenance: ModelHeader['provenance'];
}

export function trainedModelFile(spec: FocusLiteNNSpec | EonssSpec, info: TrainedModelInfo): Buffer {
  const base = {
    name: info.name,
    patchSize: spec.patchSize,
    stride: info.stride,
    normalization: { mean: spec.mean, std: spec.std },
    score: info.score,
    micronsPerPixel: info.micronsPerPixel,
    provenance: info.provenance,
  };
  if (spec.architecture === 'focuslitenn') {
    const k = spec.kernels;
    const tensors = [
      { name: 'conv.weight', shape: [k, 3, spec.convKernel, spec.convKernel], data: spec.convWeight },
      { name: 'conv.bias', shape: [k], data: spec.convBias },
    ];
    if (k > 1) tensors.push({ name: 'fc.weight', shape: [1, k, 1, 1], data: spec.fcWeight! }, { name: 'fc.bias', shape: [1], data: Float32Array.of(spec.fcBias!) });
    return encodeModelFile(
      { architecture: 'focuslitenn', ...base, focuslitenn: { kernels: k, convKernel: spec.convKernel, convStride: spec.convStride, convPad: spec.convPad } },
      tensors,
    );
  }
  if (spec.layers.length !== EONSS_LAYERS.length) throw new Error(`EONSS needs ${EONSS_LAYERS.length} layers, got ${spec.layers.length}`);
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  spec.layers.forEach((L, i) => {
    const h = EONSS_LAYERS[i]!;
    tensors.push({ name: `${h.name}.weight`, shape: [L.outChannels, L.inChannels, L.kernel, L.kernel], data: L.weight });
    tensors.push({ name: `${h.name}.bias`, shape: [L.outChannels], data: L.bias });
    if (h.gdn) {
      tensors.push({ name: `${h.gdn}.gamma`, shape: [L.outChannels, L.outChannels], data: L.gdnGamma! });
      tensors.push({ name: `${h.gdn}.beta`, shape: [L.outChannels], data: L.gdnBeta! });
    }
  });
  return encodeModelFile({ architecture: 'eonss', ...base, eonss: { layers: EONSS_LAYERS } }, tensors);
}

/** A model file from the graph trainer: the architecture's own header fields and every graph tensor. */
export function architectureModelFile(trained: Pick<ArchitectureTrainResult, 'architecture' | 'variant' | 'config' | 'patchSize' | 'graph' | 'tensors' | 'mean' | 'std'>, info: TrainedModelInfo): Buffer {
  const definition = getArchitecture(trained.architecture);
  const config = trained.config ?? variantConfig(definition, trained.variant).config;
  return encodeModelFile(
    {
      architecture: definition.name,
      name: info.name,
      patchSize: trained.patchSize,
      stride: info.stride,
      normalization: { mean: trained.mean, std: trained.std },
      score: info.score,
      micronsPerPixel: info.micronsPerPixel,
      ...definition.headerFields(config, trained.variant),
      provenance: info.provenance,
    },
    trained.graph.tensors.map((t) => ({ name: t.name, shape: t.shape, data: trained.tensors.get(t.name)! })),
  );
}
