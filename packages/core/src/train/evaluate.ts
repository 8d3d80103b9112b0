/**
 * Evaluation as the papers do it: every image scored by dense crops (image score = mean of crop
 * scores), then correlations with the targets, and for binary labels (TCGA@Focus) the ROC/PR metrics.
 */
import { loadModel, type LoadedModel } from '../model-file.js';
import { resolveScoreOptions, scoreImage } from '../score.js';
import type { DatasetItem } from './datasets.js';
import { averagePrecision, bestThresholdAccuracy, krcc, plcc, prAucTrapezoid, rmse, rocAuc, srcc } from './metrics.js';

export interface EvaluationResult {
  model: string;
  images: number;
  patchSize: number;
  stride: number;
  metrics: Record<string, number | null>;
  scores: { file: string; target: number; score: number }[];
}

export async function evaluateModel(
  items: DatasetItem[],
  options: { model: string | LoadedModel; patchSize?: number; stride?: number; onProgress?: (done: number, total: number) => void },
): Promise<EvaluationResult> {
  const model = typeof options.model === 'string' ? await loadModel(options.model) : options.model;
  const o = await resolveScoreOptions({ model, patchSize: options.patchSize, stride: options.stride });
  const scores: EvaluationResult['scores'] = [];
  for (const [i, item] of items.entries()) {
    const r = await scoreImage(item.file, o);
    scores.push({ file: item.file, target: item.target, score: r.mean });
    options.onProgress?.(i + 1, items.length);
  }
  const s = scores.map((x) => x.score);
  const t = scores.map((x) => x.target);
  const safe = (f: () => number) => {
    try {
      return f();
    } catch {
      return null; // e.g. a constant target: reported as null, not NaN
    }
  };
  const binary = t.every((v) => v === 0 || v === 1);
  const metrics: Record<string, number | null> = { plcc: safe(() => plcc(s, t)), srcc: safe(() => srcc(s, t)), krcc: safe(() => krcc(s, t)), rmse: safe(() => rmse(s, t)) };
  if (binary) {
    const positives = t.map((v) => v === 1);
    metrics.rocAuc = safe(() => rocAuc(s, positives));
    metrics.prAucTrapezoid = safe(() => prAucTrapezoid(s, positives));
    metrics.averagePrecision = safe(() => averagePrecision(s, positives));
    metrics.bestAccuracy = safe(() => bestThresholdAccuracy(s, positives).accuracy);
    metrics.bestThreshold = safe(() => bestThresholdAccuracy(s, positives).threshold);
  }
  return { model: model.file, images: items.length, patchSize: o.patchSize, stride: o.stride, metrics, scores };
}
