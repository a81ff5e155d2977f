// The Matérn 5/2 kernel with one length scale per dimension (ARD):
//   k(a, b) = s² (1 + √5 r + 5r²/3) exp(-√5 r),   r² = Σ_i (Δ_i / ℓ_i)²
// Continuous dimensions use Δ_i = a_i - b_i. Categorical dimensions (enum and bool knobs) use
// Δ_i = 0 if the two points have the same category and 1 otherwise: the kernel then acts on
// decoded categories, not on the arbitrary order of their bins, and it stays positive
// definite because this Δ is the Euclidean distance of a scaled one-hot embedding.
// Spaces that mix both kinds use CoCaBO's mixture (Ru et al. 2020) of the sum and the product
// of a kernel on the categorical and one on the continuous dimensions:
//   k = s² [ (1-w)(k_c + k_x)/2 + w k_c k_x ],   w = MIXED_PRODUCT_WEIGHT
// A product alone (one Matérn on all dimensions) can only say "this category, near these
// values"; when categories differ a lot it learns nothing about a category from the others,
// so an untried category is judged by whatever poor values it happened to be paired with. The
// sum part carries what holds for every category (a retry limit of 0 is bad under any policy).
// Sums and products of positive definite kernels are positive definite, and a space of one
// kind only gets the plain Matérn.
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

/** Weight of the product term in the kernel of a mixed space (the sum term gets 1 - w). */
export const MIXED_PRODUCT_WEIGHT = 0.5;

/**
 * The kernel's correlation of `a` and `b` (k without s²). If `grad` is given, it receives
 * ∂corr/∂(log ℓ_i) for every dimension i.
 */
export function correlation(
  a: readonly number[],
  b: readonly number[],
  kinds: readonly DimKind[],
  lengthScales: readonly number[],
  grad?: number[],
): number {
  let rc2 = 0;
  let rx2 = 0;
  let hasC = false;
  let hasX = false;
  for (let i = 0; i < kinds.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (kinds[i] === 'categorical') {
      hasC = true;
      const s = Math.abs(d) > 1e-9 ? 1 / (lengthScales[i] as number) ** 2 : 0;
      if (grad) grad[i] = s;
      rc2 += s;
    } else {
      hasX = true;
      const s = (d / (lengthScales[i] as number)) ** 2;
      if (grad) grad[i] = s;
      rx2 += s;
    }
  }
  if (!(hasC && hasX)) {
    const r = Math.sqrt(rc2 + rx2);
    if (grad) {
      const f = matern52LogScaleFactor(r);
      for (let i = 0; i < kinds.length; i++) grad[i] = f * (grad[i] as number);
    }
    return matern52(r);
  }
  const w = MIXED_PRODUCT_WEIGHT;
  const rc = Math.sqrt(rc2);
  const rx = Math.sqrt(rx2);
  const kc = matern52(rc);
  const kx = matern52(rx);
  if (grad) {
    // ∂k/∂log ℓ_i = ((1-w)/2 + w k_other) · ∂k_own/∂log ℓ_i
    const fc = ((1 - w) / 2 + w * kx) * matern52LogScaleFactor(rc);
    const fx = ((1 - w) / 2 + w * kc) * matern52LogScaleFactor(rx);
    for (let i = 0; i < kinds.length; i++) {
      grad[i] = (kinds[i] === 'categorical' ? fc : fx) * (grad[i] as number);
    }
  }
  return ((1 - w) * (kc + kx)) / 2 + w * kc * kx;
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
  return hyper.signalVariance * correlation(a, b, kinds, hyper.lengthScales);
}
