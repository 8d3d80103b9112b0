// Metrics against hand-computed values and the edge cases the papers' tables run into.
import { expect, test } from 'vitest';
import { averagePrecision, bestThresholdAccuracy, krcc, plcc, prAucTrapezoid, ranks, rmse, rocAuc, srcc, summarizeTrials, rocSvg, prSvg } from '../dist/index.js';

test('correlations on a small hand-computed example', () => {
  const x = [1, 2, 3, 4, 5];
  const y = [2, 1, 4, 3, 5];
  // PLCC = cov/(sx sy): deviations (-2..2) dot (-1,-2,1,0,2) = 2+2+0+0+4 = 8; both sums of squares 10 -> 0.8
  expect(plcc(x, y)).toBeCloseTo(0.8, 12);
  expect(srcc(x, y)).toBeCloseTo(0.8, 12); // ranks equal the values
  // Kendall: 10 pairs, discordant (1,2) and (3,4) -> (8 - 2) / 10
  expect(krcc(x, y)).toBeCloseTo(0.6, 12);
  expect(rmse([1, 2, 3], [1, 2, 5])).toBeCloseTo(Math.sqrt(4 / 3), 12);
});

test('ties: average ranks and tau-b', () => {
  expect(Array.from(ranks([10, 20, 20, 30]))).toEqual([1, 2.5, 2.5, 4]);
  // tau-b with one tie in x: C=5, D=0, tiesX=1 -> 5 / sqrt(6 * 5)
  expect(krcc([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(5 / Math.sqrt(30), 12);
});

test('ROC-AUC, PR-AUC (trapezoid) and average precision by hand', () => {
  const scores = [0.9, 0.8, 0.7, 0.6];
  const positive = [1, 0, 1, 0];
  // ROC: positives at ranks 1 and 3 of 4 -> pairs (pos > neg): (0.9>0.8, 0.9>0.6, 0.7>0.6) = 3 of 4
  expect(rocAuc(scores, positive)).toBeCloseTo(0.75, 12);
  // PR points (recall, precision): (0,1) (0.5,1) (0.5,0.5) (1,2/3) (1,0.5)
  expect(averagePrecision(scores, positive)).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12);
  expect(prAucTrapezoid(scores, positive)).toBeCloseTo(0.5 * 1 + 0.5 * ((0.5 + 2 / 3) / 2), 12);
  // Tied scores across classes count half in the ROC.
  expect(rocAuc([0.5, 0.5], [1, 0])).toBeCloseTo(0.5, 12);
  expect(bestThresholdAccuracy(scores, positive)).toEqual({ threshold: 0.9, accuracy: 0.75 });
});

test('edge cases are clear errors, not NaN', () => {
  expect(() => plcc([1, 1, 1], [1, 2, 3])).toThrow(/scores are constant/);
  expect(() => srcc([1, 2, 3], [4, 4, 4])).toThrow(/labels are constant/);
  expect(() => rocAuc([0.1, 0.2], [1, 1])).toThrow(/both classes/);
  expect(() => plcc([1], [1])).toThrow(/at least 2/);
  expect(() => rmse([1, 2], [1])).toThrow(/2 scores but 1 labels/);
});

test('mean and sample standard deviation over trials; missing metrics are skipped, one trial has no std', () => {
  const summary = summarizeTrials([{ srcc: 1, rocAuc: 0.5 }, { srcc: 3, rocAuc: null }, { srcc: 2 }]);
  expect(summary.srcc!.mean).toBeCloseTo(2, 12);
  expect(summary.srcc!.std).toBeCloseTo(1, 12); // sqrt(((1-2)^2 + (3-2)^2 + 0) / 2)
  expect(summary.srcc!.n).toBe(3);
  expect(summary.rocAuc).toEqual({ mean: 0.5, std: null, n: 1 });
});

test('ROC and PR plots are SVG with one curve per series and the AUC in the legend', () => {
  const series = [{ name: 'trial 1', scores: [0.9, 0.8, 0.7, 0.6], positives: [1, 0, 1, 0] }];
  const roc = rocSvg(series);
  expect(roc).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  expect(roc.match(/<polyline/g)).toHaveLength(1);
  expect(roc).toMatch(/trial 1 AUC 0\.750/);
  expect(prSvg(series)).toMatch(/trial 1 AUC 0\.792/);
});
