/**
 * Knowledge gain (KG) and mapping condition (MC) per convolution, as DARTS-FQA's AdaS metrics
 * (`adas/metrics.py`) define them and ../shared/reference/deep/models.md section 9 specifies:
 * each 4-D weight W[O, I, kh, kw] is unfolded along its input and its output channels, each
 * unfolding is factorized by EVBMF, and
 *   rank = pos / R0,  KG = sum_h (d_h / max d) / R0,  MC = d_0 / d_(pos-1),
 * with R0 the unfolding's row count before the transposition that makes it wide. A mode whose
 * rank is 0 has KG = MC = 0 (not infinity), and those zeros enter the averages, as in the paper.
 * Depth-wise weights (I = 1) are not factorized: they take a copy of the next conv's metrics.
 */
import { evbmf, type EvbmfResult } from './evbmf.js';
import { transpose, type Matrix } from './svd.js';

/** A 4-D convolution weight [O, I, kh, kw], row-major, in the model's parameter order. */
export interface ConvWeight {
  name: string;
  shape: [number, number, number, number];
  data: ArrayLike<number>;
}

export interface ModeMetrics {
  rank: number;
  kg: number;
  mc: number;
  /** The unfolding [rows, cols] before any transposition. */
  unfoldShape: [number, number];
  transposed: boolean;
  /** The factorization behind the numbers (null for a depth-wise copy's source-less zero). */
  evbmf: EvbmfResult | null;
}

export interface LayerMetrics {
  name: string;
  shape: [number, number, number, number];
  /** A depth-wise weight carrying the next conv's metrics. */
  depthwiseCopyOfNext: boolean;
  input: ModeMetrics;
  output: ModeMetrics;
  /** (input + output) / 2, what Metrics.KG(epoch) returns per layer. */
  kg: number;
  mc: number;
}

export interface KnowledgeGainAverages {
  /** Layers averaged (depth-wise copies included). */
  layers: number;
  kg: number;
  mc: number;
  kgInput: number;
  kgOutput: number;
  mcInput: number;
  mcOutput: number;
  rankInput: number;
  rankOutput: number;
  /** KG and MC over the layers whose two modes both have a non-zero rank (null when none has). */
  kgNonZeroRank: number | null;
  mcNonZeroRank: number | null;
}

/** Mode-3 unfolding W.permute(1,0,2,3).reshape(I, O*kh*kw): one row per input channel. */
export function inputUnfolding(w: ConvWeight): Matrix {
  const [o, i, kh, kw] = w.shape;
  const k = kh * kw;
  const data = new Float64Array(o * i * k);
  for (let oc = 0; oc < o; oc++) {
    for (let ic = 0; ic < i; ic++) {
      for (let t = 0; t < k; t++) data[ic * o * k + oc * k + t] = w.data[(oc * i + ic) * k + t]!;
    }
  }
  return { rows: i, cols: o * k, data };
}

/** Mode-4 unfolding W.reshape(O, I*kh*kw): one row per output channel. */
export function outputUnfolding(w: ConvWeight): Matrix {
  const [o, i, kh, kw] = w.shape;
  return { rows: o, cols: i * kh * kw, data: Float64Array.from(w.data) };
}

/** DARTS-FQA compute_low_rank: EVBMF of the wide orientation, normalized by the original row count. */
export function modeMetrics(unfolding: Matrix): ModeMetrics {
  const r0 = unfolding.rows;
  const transposed = unfolding.rows > unfolding.cols;
  const result = evbmf(transposed ? transpose(unfolding) : unfolding);
  const unfoldShape: [number, number] = [unfolding.rows, unfolding.cols];
  if (result.pos === 0) return { rank: 0, kg: 0, mc: 0, unfoldShape, transposed, evbmf: result };
  let max = 0;
  for (const v of result.d) max = Math.max(max, v);
  let kg = 0;
  for (const v of result.d) kg += v / max;
  return { rank: result.pos / r0, kg: kg / r0, mc: result.d[0]! / result.d[result.pos - 1]!, unfoldShape, transposed, evbmf: result };
}

function isDepthwise(w: ConvWeight): boolean {
  return w.shape[1] === 1;
}

const NO_METRICS: ModeMetrics = { rank: 0, kg: 0, mc: 0, unfoldShape: [0, 0], transposed: false, evbmf: null };

/**
 * KG/MC of every conv weight, in the order given (the model's parameter order decides depth-wise
 * copies). `onLayer` is called after each weight (a ResNet-101 takes minutes).
 */
export function knowledgeGain(weights: ConvWeight[], onLayer?: (done: number, total: number) => void): LayerMetrics[] {
  for (const w of weights) {
    if (w.shape.length !== 4 || !w.shape.every((d) => Number.isInteger(d) && d > 0)) throw new RangeError(`${w.name}: expected a 4-D conv weight, got shape [${w.shape.join(', ')}]`);
    if (w.data.length !== w.shape.reduce((a, b) => a * b, 1)) throw new RangeError(`${w.name}: shape [${w.shape.join(', ')}] does not match its ${w.data.length} values`);
  }
  const own = weights.map((w, i) => {
    const metrics = isDepthwise(w) ? null : { input: modeMetrics(inputUnfolding(w)), output: modeMetrics(outputUnfolding(w)) };
    onLayer?.(i + 1, weights.length);
    return metrics;
  });
  return weights.map((w, index) => {
    let source = own[index];
    for (let next = index + 1; !source && next < own.length; next++) source = own[next];
    const input = source?.input ?? NO_METRICS;
    const output = source?.output ?? NO_METRICS;
    return { name: w.name, shape: w.shape, depthwiseCopyOfNext: isDepthwise(w), input, output, kg: (input.kg + output.kg) / 2, mc: (input.mc + output.mc) / 2 };
  });
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export function knowledgeGainAverages(layers: LayerMetrics[]): KnowledgeGainAverages {
  const nonZero = layers.filter((l) => l.input.rank > 0 && l.output.rank > 0);
  return {
    layers: layers.length,
    kg: mean(layers.map((l) => l.kg)),
    mc: mean(layers.map((l) => l.mc)),
    kgInput: mean(layers.map((l) => l.input.kg)),
    kgOutput: mean(layers.map((l) => l.output.kg)),
    mcInput: mean(layers.map((l) => l.input.mc)),
    mcOutput: mean(layers.map((l) => l.output.mc)),
    rankInput: mean(layers.map((l) => l.input.rank)),
    rankOutput: mean(layers.map((l) => l.output.rank)),
    kgNonZeroRank: nonZero.length > 0 ? mean(nonZero.map((l) => l.kg)) : null,
    mcNonZeroRank: nonZero.length > 0 ? mean(nonZero.map((l) => l.mc)) : null,
  };
}
