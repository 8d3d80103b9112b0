/**
 * Calibrating a FocusLiteNN's score onto synthetic defocus levels: the least-squares line
 * a * score + b ~ level on the training patches, folded into the weights so the model file's score
 * is the estimated level. Used by the default-model recipe and by `fqa-scan train --dataset synthetic`.
 */
import { createNativeModel, trainForward, type FocusLiteNNSpec } from '@fqa/native';
import type { PatchSet } from './synthetic.js';

/** a, b minimizing sum (a * score + b - level)^2 over the patches, scores from the native forward. */
export function fitLevels(spec: FocusLiteNNSpec, data: PatchSet): { a: number; b: number } {
  const scores = trainForward(createNativeModel(spec), data.patches, data.count, data.size).scores;
  const n = scores.length;
  const ms = scores.reduce((x, y) => x + y, 0) / n;
  const ml = data.labels.reduce((x, y) => x + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (scores[i]! - ms) * (data.labels[i]! - ml); sxx += (scores[i]! - ms) ** 2; }
  const a = sxx > 0 ? sxy / sxx : 0;
  return { a, b: ml - a * ms };
}

/**
 * The spec whose score is a * score + b: through the fc layer when there is one (any a); with one
 * kernel through the conv itself, which needs a > 0 (min(a * x) = a * min(x) only then).
 */
export function foldCalibration(spec: FocusLiteNNSpec, a: number, b: number): FocusLiteNNSpec {
  if (spec.kernels > 1) return { ...spec, fcWeight: Float32Array.from(spec.fcWeight!, (w) => a * w), fcBias: a * spec.fcBias! + b };
  if (!(a > 0)) throw new RangeError(`a one-kernel FocusLiteNN folds only a positive scale, got ${a}`);
  return { ...spec, convWeight: Float32Array.from(spec.convWeight, (w) => a * w), convBias: Float32Array.from(spec.convBias, (c) => a * c + b) };
}
