/**
 * Bounded scalar minimization, a line-for-line transcription of scipy 1.10
 * `optimize._minimize_scalar_bounded` (Brent's method: golden-section steps plus parabolic
 * interpolation, stopping on an absolute x tolerance). EVBMF's noise variance is whatever this
 * search returns, not the true minimum, so KG/MC match the published values only if every step
 * (and hence every objective evaluation) is the same as scipy's.
 *
 * scipy: Copyright (c) 2001-2002 Enthought, Inc. 2003-2023, SciPy Developers; BSD-3-Clause licence.
 */

export interface BoundedMinimum {
  x: number;
  fx: number;
  /** Objective evaluations. */
  nfev: number;
  /** Stopped at maxiter rather than on the tolerance. */
  exhausted: boolean;
}

export interface BoundedOptions {
  /** Absolute tolerance on x (scipy's default 1e-5). */
  xatol?: number;
  maxiter?: number;
}

const SQRT_EPS = Math.sqrt(2.2e-16);
const GOLDEN = 0.5 * (3 - Math.sqrt(5));

/** numpy's sign (0 for 0) plus (v == 0): a step direction that is never 0. */
function direction(v: number): number {
  return Math.sign(v) + (v === 0 ? 1 : 0);
}

export function fminbound(f: (x: number) => number, lower: number, upper: number, options: BoundedOptions = {}): BoundedMinimum {
  const xatol = options.xatol ?? 1e-5;
  const maxfun = options.maxiter ?? 500;
  if (!(lower <= upper)) throw new RangeError(`fminbound: lower bound ${lower} is above upper bound ${upper}`);
  let a = lower;
  let b = upper;
  let fulc = a + GOLDEN * (b - a);
  let nfc = fulc;
  let xf = fulc;
  let rat = 0;
  let e = 0;
  let x = xf;
  let fx = f(x);
  let num = 1;
  let fu = Infinity;
  let ffulc = fx;
  let fnfc = fx;
  let xm = 0.5 * (a + b);
  let tol1 = SQRT_EPS * Math.abs(xf) + xatol / 3;
  let tol2 = 2 * tol1;
  let exhausted = false;

  while (Math.abs(xf - xm) > tol2 - 0.5 * (b - a)) {
    let golden = true;
    if (Math.abs(e) > tol1) {
      golden = false;
      let r = (xf - nfc) * (fx - ffulc);
      let q = (xf - fulc) * (fx - fnfc);
      let p = (xf - fulc) * q - (xf - nfc) * r;
      q = 2 * (q - r);
      if (q > 0) p = -p;
      q = Math.abs(q);
      r = e;
      e = rat;
      if (Math.abs(p) < Math.abs(0.5 * q * r) && p > q * (a - xf) && p < q * (b - xf)) {
        rat = (p + 0) / q;
        x = xf + rat;
        if (x - a < tol2 || b - x < tol2) rat = tol1 * direction(xm - xf);
      } else {
        golden = true;
      }
    }
    if (golden) {
      e = xf >= xm ? a - xf : b - xf;
      rat = GOLDEN * e;
    }
    x = xf + direction(rat) * Math.max(Math.abs(rat), tol1);
    fu = f(x);
    num += 1;
    if (fu <= fx) {
      if (x >= xf) a = xf;
      else b = xf;
      fulc = nfc;
      ffulc = fnfc;
      nfc = xf;
      fnfc = fx;
      xf = x;
      fx = fu;
    } else {
      if (x < xf) a = x;
      else b = x;
      if (fu <= fnfc || nfc === xf) {
        fulc = nfc;
        ffulc = fnfc;
        nfc = x;
        fnfc = fu;
      } else if (fu <= ffulc || fulc === xf || fulc === nfc) {
        fulc = x;
        ffulc = fu;
      }
    }
    xm = 0.5 * (a + b);
    tol1 = SQRT_EPS * Math.abs(xf) + xatol / 3;
    tol2 = 2 * tol1;
    if (num >= maxfun) {
      exhausted = true;
      break;
    }
  }
  return { x: xf, fx, nfev: num, exhausted };
}
