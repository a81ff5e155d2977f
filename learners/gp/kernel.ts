// The Matérn 5/2 kernel with one length scale per dimension (ARD):
//   k(a, b) = s² (1 + √5 r + 5r²/3) exp(-√5 r),   r² = Σ_i (Δ_i / ℓ_i)²
// Continuous dimensions use Δ_i = a_i - b_i. Categorical dimensions (enum and bool knobs) use
// Δ_i = 0 if the two points have the same category and 1 otherwise: the kernel then acts on
// decoded categories, not on the arbitrary order of their bins, and it stays positive
// definite because this Δ is the Euclidean distance of a scaled one-hot embedding.
// Matérn 5/2 rather than the squared exponential: system metrics are rarely infinitely
// smooth, and it is the usual default of BO libraries (Spearmint, BoTorch).

export type DimKind = 'continuous' | 'categorical';

export interface GpHyper {
  /** ℓ_i per input dimension, in input units (the unit cube for tuners). */
  lengthScales: number[];
  /** s², in units of the standardised output. */
  signalVariance: number;
  /** Variance of the observation noise, in units of the standardised output. */
  noiseVariance: number;
}

const SQRT5 = Math.sqrt(5);

/** Per-dimension scaled squared distances (Δ_i/ℓ_i)², written into `out`; returns their sum. */
export function scaledSquares(
  a: readonly number[],
  b: readonly number[],
  kinds: readonly DimKind[],
  lengthScales: readonly number[],
  out?: number[],
): number {
  let r2 = 0;
  for (let i = 0; i < kinds.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    const delta = kinds[i] === 'categorical' ? (Math.abs(d) > 1e-9 ? 1 : 0) : d;
    const s = (delta / (lengthScales[i] as number)) ** 2;
    if (out) out[i] = s;
    r2 += s;
  }
  return r2;
}

/** Matérn 5/2 correlation at scaled distance r (1 at r = 0). */
export function matern52(r: number): number {
  return (1 + SQRT5 * r + (5 / 3) * r * r) * Math.exp(-SQRT5 * r);
}

/**
 * ∂k/∂(log ℓ_i) = s² (5/3)(1 + √5 r) exp(-√5 r) · (Δ_i/ℓ_i)²: this returns the common factor
 * (without s²), to be multiplied by each dimension's scaled square.
 */
export function matern52LogScaleFactor(r: number): number {
  return (5 / 3) * (1 + SQRT5 * r) * Math.exp(-SQRT5 * r);
}

/** k(a, b) including the signal variance, excluding noise. */
export function kernel(
  a: readonly number[],
  b: readonly number[],
  kinds: readonly DimKind[],
  hyper: GpHyper,
): number {
  const r = Math.sqrt(scaledSquares(a, b, kinds, hyper.lengthScales));
  return hyper.signalVariance * matern52(r);
}
