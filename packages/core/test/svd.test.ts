// The float64 one-sided Jacobi SVD against its defining properties: orthonormal factors,
// A = U diag(s) V^T, descending non-negative s, and the singular values of matrices built to have them.
import { describe, expect, test } from 'vitest';
import { matrix, seededRandom, singularValues, svd, type Matrix } from '../dist/index.js';

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const rand = seededRandom(seed);
  return matrix(rows, cols, Array.from({ length: rows * cols }, () => rand() * 2 - 1));
}

function multiply(a: Matrix, b: Matrix, transposeB = false): Matrix {
  const cols = transposeB ? b.rows : b.cols;
  const out = new Float64Array(a.rows * cols);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < cols; j++) {
      let sum = 0;
      for (let k = 0; k < a.cols; k++) sum += a.data[i * a.cols + k]! * (transposeB ? b.data[j * b.cols + k]! : b.data[k * b.cols + j]!);
      out[i * cols + j] = sum;
    }
  }
  return { rows: a.rows, cols, data: out };
}

/** An orthonormal n x k matrix: Gram-Schmidt on a random one. */
function orthonormal(n: number, k: number, seed: number): Matrix {
  const q = randomMatrix(n, k, seed);
  for (let j = 0; j < k; j++) {
    for (let p = 0; p < j; p++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += q.data[i * k + j]! * q.data[i * k + p]!;
      for (let i = 0; i < n; i++) q.data[i * k + j] = q.data[i * k + j]! - dot * q.data[i * k + p]!;
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += q.data[i * k + j]! ** 2;
    for (let i = 0; i < n; i++) q.data[i * k + j] = q.data[i * k + j]! / Math.sqrt(norm);
  }
  return q;
}

function expectOrthonormalColumns(q: Matrix): void {
  const gram = multiply({ rows: q.cols, cols: q.rows, data: transposeData(q) }, q);
  for (let i = 0; i < q.cols; i++) for (let j = 0; j < q.cols; j++) expect(Math.abs(gram.data[i * q.cols + j]! - (i === j ? 1 : 0))).toBeLessThan(1e-13);
}

function transposeData(q: Matrix): Float64Array {
  const out = new Float64Array(q.rows * q.cols);
  for (let i = 0; i < q.rows; i++) for (let j = 0; j < q.cols; j++) out[j * q.rows + i] = q.data[i * q.cols + j]!;
  return out;
}

describe('svd', () => {
  for (const [rows, cols] of [[1, 7], [7, 1], [5, 5], [6, 40], [40, 6], [27, 60]] as const) {
    test(`${rows}x${cols}: orthonormal factors, reconstruction, descending values`, () => {
      const a = randomMatrix(rows, cols, rows * 100 + cols);
      const { u, s, v } = svd(a);
      const k = Math.min(rows, cols);
      expect([u.rows, u.cols, v.rows, v.cols, s.length]).toEqual([rows, k, cols, k, k]);
      expectOrthonormalColumns(u);
      expectOrthonormalColumns(v);
      for (let i = 1; i < k; i++) expect(s[i]!).toBeLessThanOrEqual(s[i - 1]!);
      const us = { rows: u.rows, cols: k, data: u.data.map((x, i) => x * s[i % k]!) };
      const back = multiply(us, v, true);
      let norm = 0;
      for (const x of a.data) norm = Math.max(norm, Math.abs(x));
      for (let i = 0; i < a.data.length; i++) expect(Math.abs(back.data[i]! - a.data[i]!)).toBeLessThan(1e-13 * Math.max(1, norm) * k);
    });
  }

  test('recovers the singular values of U diag(s) V^T, spread over 12 orders of magnitude', () => {
    const want = [1e3, 50, 7, 1, 1e-3, 1e-9];
    const u = orthonormal(9, want.length, 3);
    const v = orthonormal(20, want.length, 4);
    const us = { rows: 9, cols: want.length, data: u.data.map((x, i) => x * want[i % want.length]!) };
    const a = multiply(us, v, true);
    const s = singularValues(a);
    // One-sided Jacobi is accurate relative to each value up to the matrix's conditioning of the basis.
    want.forEach((w, i) => expect(Math.abs(s[i]! - w)).toBeLessThan(1e-12 * 1e3));
    want.slice(0, 4).forEach((w, i) => expect(Math.abs(s[i]! - w) / w).toBeLessThan(1e-13));
  });

  test('diagonal, rank-one and zero matrices', () => {
    expect([...singularValues(matrix(3, 4, [0, 0, -2, 0, 5, 0, 0, 0, 0, 0, 0, 1]))]).toEqual([5, 2, 1]);
    // [1 2; 2 4; 3 6] = [1;2;3] [1 2]: one value sqrt(14) * sqrt(5), the other 0.
    const r1 = singularValues(matrix(3, 2, [1, 2, 2, 4, 3, 6]));
    expect(r1[0]!).toBeCloseTo(Math.sqrt(70), 13);
    expect(Math.abs(r1[1]!)).toBeLessThan(1e-14);
    expect([...singularValues(matrix(2, 3, [0, 0, 0, 0, 0, 0]))]).toEqual([0, 0]);
  });

  test('singularValues (QR-reduced to a square matrix first) equals the full decomposition', () => {
    for (const [rows, cols] of [[3, 147], [147, 3], [12, 108], [40, 40], [1, 9]] as const) {
      const a = randomMatrix(rows, cols, rows + 7 * cols);
      const full = svd(a).s;
      const reduced = singularValues(a);
      expect(reduced.length).toBe(full.length);
      full.forEach((v, i) => expect(Math.abs(reduced[i]! - v)).toBeLessThan(1e-13 * full[0]!));
    }
  });

  test('rejects a data length that does not fit the shape', () => {
    expect(() => matrix(2, 3, [1, 2, 3])).toThrow(/2x3 needs 6 values, got 3/);
  });
});
