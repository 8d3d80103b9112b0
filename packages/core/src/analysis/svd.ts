/**
 * A thin singular value decomposition in float64 by one-sided (Hestenes) Jacobi rotations. The
 * rotations act on the rows of the shorter side, so their cost is driven by min(rows, cols)^2; one-sided
 * Jacobi computes small singular values to high relative accuracy, which the EVBMF noise estimate
 * (every s_h^2 enters it) relies on.
 */

/** A row-major matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** A = U diag(s) V^T with k = min(rows, cols): U is rows x k, V is cols x k, s descending (V's column is 0 where s is 0). */
export interface Svd {
  u: Matrix;
  s: Float64Array;
  v: Matrix;
}

const MAX_SWEEPS = 60;

export function matrix(rows: number, cols: number, data: ArrayLike<number>): Matrix {
  if (data.length !== rows * cols) throw new RangeError(`matrix ${rows}x${cols} needs ${rows * cols} values, got ${data.length}`);
  return { rows, cols, data: Float64Array.from(data) };
}

export function transpose(a: Matrix): Matrix {
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out };
}

/**
 * Orthogonalizes the rows of a wide matrix (rows <= cols) in place: returns the rotation J (rows x rows,
 * orthogonal) with J A_original = A_now, whose rows are mutually orthogonal. Row norms are carried
 * through each rotation (alpha - t gamma, beta + t gamma) and recomputed exactly every sweep, so a
 * pair costs one dot product instead of three.
 */
function orthogonalizeRows(a: Matrix, accumulate = true): Float64Array {
  const { rows: n, cols: m, data } = a;
  // Without `accumulate` (singular values only) J stays the identity and is not rotated.
  const j = new Float64Array(n * n);
  for (let i = 0; i < n; i++) j[i * n + i] = 1;
  const norms2 = new Float64Array(n);
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    for (let i = 0; i < n; i++) norms2[i] = dot(data, i * m, i * m, m);
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const alpha = norms2[p]!;
        const beta = norms2[q]!;
        const gamma = dot(data, p * m, q * m, m);
        if (gamma === 0 || Math.abs(gamma) <= Number.EPSILON * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotate(data, p * m, q * m, m, c, s);
        if (accumulate) rotate(j, p * n, q * n, n, c, s);
        norms2[p] = alpha - t * gamma;
        norms2[q] = beta + t * gamma;
      }
    }
    if (!rotated) return j;
  }
  throw new Error(`SVD did not converge in ${MAX_SWEEPS} Jacobi sweeps`);
}

function dot(x: Float64Array, p: number, q: number, length: number): number {
  let sum = 0;
  for (let k = 0; k < length; k++) sum += x[p + k]! * x[q + k]!;
  return sum;
}

/**
 * A square matrix with the singular values of a wide one (rows < cols): R^T from the Householder QR
 * of A^T. The rotations then work on rows of length `rows` instead of `cols`, which for a 3x3 conv's
 * unfolding (cols = 9 x rows) is most of the cost.
 */
function squareFactor(a: Matrix): Matrix {
  const { rows: n, cols: m } = a;
  const x = Float64Array.from(a.data);
  for (let k = 0; k < n; k++) {
    const row = k * m;
    let norm2 = 0;
    for (let c = k; c < m; c++) norm2 += x[row + c]! * x[row + c]!;
    if (norm2 === 0) continue;
    const x0 = x[row + k]!;
    const head = x0 >= 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    // v = x - head e_k, stored in place; |v|^2 = norm2 - x0^2 + (x0 - head)^2.
    x[row + k] = x0 - head;
    const v2 = norm2 - x0 * x0 + (x0 - head) * (x0 - head);
    for (let r = k + 1; r < n; r++) {
      const other = r * m;
      let w = 0;
      for (let c = k; c < m; c++) w += x[row + c]! * x[other + c]!;
      const f = (2 * w) / v2;
      for (let c = k; c < m; c++) x[other + c] = x[other + c]! - f * x[row + c]!;
    }
    x[row + k] = head;
  }
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c <= r; c++) out[r * n + c] = x[r * m + c]!;
  return { rows: n, cols: n, data: out };
}

function rotate(x: Float64Array, p: number, q: number, length: number, c: number, s: number): void {
  for (let k = 0; k < length; k++) {
    const a = x[p + k]!;
    const b = x[q + k]!;
    x[p + k] = c * a - s * b;
    x[q + k] = s * a + c * b;
  }
}

export function svd(a: Matrix): Svd {
  if (a.rows > a.cols) {
    const t = svd(transpose(a));
    return { u: t.v, s: t.s, v: t.u };
  }
  const n = a.rows;
  const m = a.cols;
  const b: Matrix = { rows: n, cols: m, data: Float64Array.from(a.data) };
  const j = orthogonalizeRows(b);
  // A = J^T B: the left vectors are J's rows, the right ones B's rows over their norms.
  const norms = rowNorms(b);
  const order = norms.map((_, i) => i).sort((x, y) => norms[y]! - norms[x]!);
  const u = new Float64Array(n * n);
  const v = new Float64Array(m * n);
  const s = new Float64Array(n);
  order.forEach((row, k) => {
    s[k] = norms[row]!;
    for (let i = 0; i < n; i++) u[i * n + k] = j[row * n + i]!;
    if (s[k]! > 0) for (let c = 0; c < m; c++) v[c * n + k] = b.data[row * m + c]! / s[k]!;
  });
  return { u: { rows: n, cols: n, data: u }, s, v: { rows: m, cols: n, data: v } };
}

function rowNorms(b: Matrix): number[] {
  return Array.from({ length: b.rows }, (_, i) => Math.sqrt(dot(b.data, i * b.cols, i * b.cols, b.cols)));
}

/** The singular values only, descending (a wide or tall matrix is first reduced to a square one). */
export function singularValues(a: Matrix): Float64Array {
  const wide = a.rows > a.cols ? transpose(a) : a;
  const b = wide.rows < wide.cols ? squareFactor(wide) : { ...wide, data: Float64Array.from(wide.data) };
  orthogonalizeRows(b, false);
  return Float64Array.from(rowNorms(b).sort((x, y) => y - x));
}
