/**
 * Empirical variational Bayesian matrix factorization (Nakajima et al. 2013), the global analytic
 * solution as DARTS-FQA's `adas/matrix_factorization.py` EVBMF computes it with sigma2 = None and
 * H = L: the noise variance is estimated by a bounded search of the free energy, and the singular
 * values above the resulting threshold are shrunk to the low-rank factor's values d.
 * ../shared/reference/deep/models.md section 9 is the specification; all arithmetic is float64.
 */
import { fminbound } from './fminbound.js';
import { singularValues, type Matrix } from './svd.js';

export interface EvbmfResult {
  /** Rows and columns of the factorized matrix, L <= M. */
  L: number;
  M: number;
  alpha: number;
  tauubar: number;
  xubar: number;
  /** 0-based index bounding the retained rank (eH_ub). */
  eHub: number;
  singularValues: Float64Array;
  lowerBound: number;
  upperBound: number;
  /** Estimated noise variance. */
  sigma2: number;
  /** Free-energy evaluations of the search. */
  nfev: number;
  threshold: number;
  /** Number of singular values above the threshold: the estimated rank. */
  pos: number;
  /** The retained factor values, one per retained singular value, descending. */
  d: Float64Array;
}

/** Nakajima's upper bound on the shrinkage threshold's scale, tau-bar = 2.5129 sqrt(alpha). */
const TAU_UBAR_SCALE = 2.5129;

function tau(x: number, alpha: number): number {
  const b = x - (1 + alpha);
  return 0.5 * (b + Math.sqrt(b * b - 4 * alpha));
}

/** EVBsigma2: the free energy as a function of the noise variance (H = L, so no residual term). */
export function evbFreeEnergy(sigma2: number, L: number, M: number, s: ArrayLike<number>, xubar: number): number {
  const alpha = L / M;
  let below = 0;
  let aboveShrink = 0;
  let aboveLog = 0;
  let aboveAlpha = 0;
  for (let h = 0; h < s.length; h++) {
    const x = (s[h]! * s[h]!) / (M * sigma2);
    if (x > xubar) {
      const t = tau(x, alpha);
      aboveShrink += x - t;
      aboveLog += Math.log((t + 1) / x);
      aboveAlpha += Math.log(t / alpha + 1);
    } else {
      below += x - Math.log(x);
    }
  }
  return below + aboveShrink + aboveLog + alpha * aboveAlpha;
}

/** EVBMF of a matrix with rows <= cols (callers transpose first, as DARTS-FQA does). */
export function evbmf(y: Matrix): EvbmfResult {
  const L = y.rows;
  const M = y.cols;
  if (L > M) throw new RangeError(`evbmf expects rows <= cols, got ${L}x${M}`);
  const alpha = L / M;
  const tauubar = TAU_UBAR_SCALE * Math.sqrt(alpha);
  const s = singularValues(y);
  const xubar = (1 + tauubar) * (1 + alpha / tauubar);
  const eHub = Math.trunc(Math.min(Math.ceil(L / (1 + alpha)) - 1, L)) - 1;
  let total = 0;
  for (const v of s) total += v * v;
  const upperBound = total / (L * M);
  let tail = 0;
  for (let h = eHub + 1; h < L; h++) tail += s[h]! * s[h]!;
  const lowerBound = Math.max((s[eHub + 1]! * s[eHub + 1]!) / (M * xubar), tail / (L - eHub - 1) / M);
  const base = { L, M, alpha, tauubar, xubar, eHub, singularValues: s, lowerBound, upperBound };
  if (upperBound === 0) {
    // An all-zero matrix has no signal (the free energy is undefined at sigma2 = 0).
    return { ...base, sigma2: 0, nfev: 0, threshold: 0, pos: 0, d: new Float64Array(0) };
  }
  const search = fminbound((v) => evbFreeEnergy(v, L, M, s, xubar), lowerBound, upperBound);
  const sigma2 = search.x;
  const threshold = Math.sqrt(M * sigma2 * (1 + tauubar) * (1 + alpha / tauubar));
  let pos = 0;
  for (const v of s) if (v > threshold) pos++;
  const d = new Float64Array(pos);
  for (let h = 0; h < pos; h++) {
    const s2 = s[h]! * s[h]!;
    const shrink = 1 - ((L + M) * sigma2) / s2;
    d[h] = (s[h]! / 2) * (shrink + Math.sqrt(shrink * shrink - (4 * L * M * sigma2 * sigma2) / (s2 * s2)));
  }
  return { ...base, sigma2, nfev: search.nfev, threshold, pos, d };
}
