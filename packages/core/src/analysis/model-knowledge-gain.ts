/** KG/MC of every conv weight of an fqa model file, in the architecture's parameter (state_dict) order. */
import { modelArchitecture, type ModelFile } from '../model-file.js';
import { knowledgeGain, knowledgeGainAverages, type ConvWeight, type KnowledgeGainAverages, type LayerMetrics } from './knowledge-gain.js';

export interface ModelKnowledgeGain {
  /** The model file (or name) it was computed from. */
  source: string;
  name: string;
  architecture: string;
  variant: string | null;
  /** The patch size the model was trained on (the paper's Figure 6 marks 64 and 235 px apart). */
  patchSize: number;
  layers: LayerMetrics[];
  averages: KnowledgeGainAverages;
}

/** The model's 4-D parameters (conv weights) in parameter order, as AdaS Metrics(params, linear=False) takes them. */
export function convWeights(m: ModelFile): ConvWeight[] {
  const { graph } = modelArchitecture(m);
  return graph.tensors
    .filter((t) => t.kind === 'parameter' && t.shape.length === 4)
    .map((t) => ({ name: t.name, shape: t.shape as ConvWeight['shape'], data: m.tensors.get(t.name)! }));
}

export function modelKnowledgeGain(m: ModelFile, source: string, onLayer?: (done: number, total: number) => void): ModelKnowledgeGain {
  const layers = knowledgeGain(convWeights(m), onLayer);
  return { source, name: m.header.name, architecture: m.header.architecture, variant: m.header.variant ?? null, patchSize: m.header.patchSize, layers, averages: knowledgeGainAverages(layers) };
}
