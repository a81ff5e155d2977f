// The small dense linear algebra the GP needs. The factorisation is ml-matrix's Cholesky;
// the triangular solves run on plain row arrays, because the GP does thousands of them per
// proposal (one per acquisition candidate) and element-wise Matrix.get/set is slow for that.
import { CholeskyDecomposition } from 'ml-matrix';

/** Lower-triangular factor L of a symmetric positive definite A = L Lᵀ, as rows. */
export type Lower = number[][];

/** Diagonal jitter tried in turn (relative to the mean diagonal) until A factorises. */
const JITTERS = [0, 1e-10, 1e-8, 1e-6, 1e-4] as const;

/**
 * Cholesky factor of `a` (symmetric), adding the smallest jitter from JITTERS that makes it
 * positive definite. Returns undefined if even the largest jitter fails, and for a matrix with
 * a non-finite entry (NaN hyperparameters or inputs): ml-matrix would throw "Matrix is not
 * symmetric" there (NaN !== NaN), and callers treat undefined as "not factorisable".
 */
export function cholesky(a: number[][]): { l: Lower; jitter: number } | undefined {
  if (!a.every((row) => row.every((v) => Number.isFinite(v)))) return undefined;
  const n = a.length;
  const meanDiag = a.reduce((s, row, i) => s + (row[i] as number), 0) / Math.max(1, n);
  for (const rel of JITTERS) {
    const jitter = rel * meanDiag;
    const m = jitter === 0 ? a : a.map((row, i) => row.map((v, j) => (i === j ? v + jitter : v)));
    const chol = new CholeskyDecomposition(m);
    if (chol.isPositiveDefinite()) return { l: chol.lowerTriangularMatrix.to2DArray(), jitter };
  }
  return undefined;
}

/** Solves L x = b (forward substitution). */
export function solveLower(l: Lower, b: readonly number[]): number[] {
  const n = l.length;
  const x = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const row = l[i] as number[];
    let s = b[i] as number;
    for (let k = 0; k < i; k++) s -= (row[k] as number) * (x[k] as number);
    x[i] = s / (row[i] as number);
  }
  return x;
}

/** Solves Lᵀ x = b (back substitution). */
export function solveUpper(l: Lower, b: readonly number[]): number[] {
  const n = l.length;
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i] as number;
    for (let k = i + 1; k < n; k++) s -= ((l[k] as number[])[i] as number) * (x[k] as number);
    x[i] = s / ((l[i] as number[])[i] as number);
  }
  return x;
}

/** Solves (L Lᵀ) x = b. */
export function solveCholesky(l: Lower, b: readonly number[]): number[] {
  return solveUpper(l, solveLower(l, b));
}

/** (L Lᵀ)⁻¹ as rows, through L⁻¹ (the LML gradient needs the whole inverse). */
export function inverseFromCholesky(l: Lower): number[][] {
  const n = l.length;
  const linv = Array.from({ length: n }, (_, j) => {
    const e = new Array<number>(n).fill(0);
    e[j] = 1;
    return solveLower(l, e); // column j of L⁻¹
  });
  // (L⁻¹)ᵀ L⁻¹: entry (i, j) = sum_k L⁻¹[k][i] L⁻¹[k][j] = dot(column i, column j).
  const inv = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    const ci = linv[i] as number[];
    for (let j = 0; j <= i; j++) {
      const cj = linv[j] as number[];
      let s = 0;
      for (let k = i; k < n; k++) s += (ci[k] as number) * (cj[k] as number);
      (inv[i] as number[])[j] = s;
      (inv[j] as number[])[i] = s;
    }
  }
  return inv;
}

export function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}
