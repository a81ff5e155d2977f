// Expected improvement for minimisation:
//   EI(x) = (f* - μ - ξ) Φ(z) + σ φ(z),   z = (f* - μ - ξ) / σ
// where f* is the incumbent's value and ξ ≥ 0 a margin that asks for a real improvement.
// With σ = 0 it is max(f* - μ - ξ, 0): zero at an observed incumbent of a noise-free GP.

/** Standard normal density. */
export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
}

/**
 * Standard normal CDF through erfc (W. J. Cody's rational Chebyshev form via the
 * Numerical Recipes erfc approximation, relative error < 1.2e-7 everywhere).
 */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
}

/** EI of a point with posterior mean `mean` and standard deviation `std`, for minimisation. */
export function expectedImprovement(mean: number, std: number, best: number, xi = 0): number {
  const gain = best - mean - xi;
  if (!(std > 0)) return Math.max(gain, 0);
  const z = gain / std;
  return Math.max(0, gain * normalCdf(z) + std * normalPdf(z));
}

/**
 * Augmented EI (Huang et al. 2006) for noisy observations: EI · (1 - σ_n / sqrt(σ² + σ_n²)).
 * The factor goes to 0 where the posterior variance σ² is small next to the noise variance
 * σ_n², so the search does not keep re-sampling one point whose EI only noise keeps alive;
 * with no noise it is plain EI. Arguments are variances, in output units².
 */
export function augmentedExpectedImprovement(
  mean: number,
  variance: number,
  best: number,
  noiseVariance: number,
  xi = 0,
): number {
  const ei = expectedImprovement(mean, Math.sqrt(Math.max(0, variance)), best, xi);
  if (!(noiseVariance > 0)) return ei;
  return ei * (1 - Math.sqrt(noiseVariance / (Math.max(0, variance) + noiseVariance)));
}
