import { describe, expect, it } from 'vitest';
import { createRng } from '../envs/core/index.ts';
import {
  GaussianProcess,
  expectedImprovement,
  fitGp,
  logMarginalLikelihood,
  normalCdf,
  standardise,
  warpOutputs,
  type DimKind,
  type GpHyper,
} from '../learners/gp/index.ts';

const CONT2: DimKind[] = ['continuous', 'continuous'];
const f2 = (x: readonly number[]): number =>
  Math.sin(6 * (x[0] as number)) + (x[1] as number) ** 2 - 0.5 * (x[0] as number);

function sample(n: number, d: number, seed: number): number[][] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => Array.from({ length: d }, () => rng.next()));
}

const FIXED: GpHyper = { lengthScales: [0.3, 0.3], signalVariance: 1, noiseVariance: 0 };

describe('Gaussian process', () => {
  const x = sample(10, 2, 1);
  const y = x.map(f2);

  it('interpolates the observations in the noise-free setting (fixed hyperparameters)', () => {
    const gp = GaussianProcess.condition(x, y, CONT2, FIXED);
    const { mean, variance } = gp.predict(x);
    mean.forEach((m, i) => expect(Math.abs(m - (y[i] as number))).toBeLessThan(1e-8));
    variance.forEach((v) => expect(v).toBeLessThan(1e-10));
  });

  it('is uncertain far from the data and certain near it', () => {
    const gp = GaussianProcess.condition(x, y, CONT2, FIXED);
    const prior = gp.yStd ** 2 * FIXED.signalVariance;
    const far = gp.predict([[5, 5]]).variance[0] as number;
    expect(far).toBeGreaterThan(0.99 * prior);
    // Variance grows as a probe walks away from an observed point.
    const p = x[0] as number[];
    const walk = [0, 0.02, 0.1, 0.3].map((dx) => [(p[0] as number) + dx, p[1] as number]);
    const v = gp.predict(walk).variance;
    for (let i = 1; i < v.length; i++) expect(v[i]).toBeGreaterThan(v[i - 1] as number);
  });

  it('still interpolates with fitted hyperparameters', () => {
    const gp = fitGp(x, y, { kinds: CONT2, restarts: 3, iterations: 60 }, createRng(7));
    const { mean, variance } = gp.predict(x);
    const spread = Math.max(...y) - Math.min(...y);
    mean.forEach((m, i) => expect(Math.abs(m - (y[i] as number))).toBeLessThan(1e-3 * spread));
    variance.forEach((v) => expect(Math.sqrt(v)).toBeLessThan(1e-2 * spread));
    // and predicts a held-out point of this smooth function well
    const probe = [0.4, 0.6];
    const pred = gp.predict([probe]).mean[0] as number;
    expect(Math.abs(pred - f2(probe))).toBeLessThan(0.1 * spread);
  });

  it('treats a kernel matrix with NaN entries as not factorisable instead of throwing', () => {
    // A NaN warm start (log of a length scale <= 0) made ml-matrix throw "Matrix is not
    // symmetric" out of the fit; it must count as a failed start, and the other starts win.
    const init: GpHyper = { lengthScales: [-1, 0.3], signalVariance: 1, noiseVariance: 1e-3 };
    const gp = fitGp(x, y, { kinds: CONT2, restarts: 3, iterations: 30, init }, createRng(7));
    expect(Number.isFinite(gp.lml)).toBe(true);
    gp.hyper.lengthScales.forEach((l) => expect(l).toBeGreaterThan(0));
    const nan = { ...FIXED, lengthScales: [Number.NaN, 0.3] };
    expect(logMarginalLikelihood(x, standardise(y).z, CONT2, nan, true).lml).toBe(-Infinity);
    expect(() => GaussianProcess.condition(x, y, CONT2, nan)).toThrow(/not positive definite/);
  });

  it('learns irrelevant inputs through ARD length scales', () => {
    const xs = sample(25, 2, 3);
    const ys = xs.map((p) => Math.sin(5 * (p[0] as number)));
    const gp = fitGp(xs, ys, { kinds: CONT2, restarts: 3, iterations: 60 }, createRng(1));
    const [l0, l1] = gp.hyper.lengthScales as [number, number];
    expect(l1).toBeGreaterThan(5 * l0);
  });

  it('fits more noise to noisy data than to noise-free data', () => {
    const xs = sample(30, 2, 4);
    const rng = createRng(9);
    const clean = xs.map(f2);
    const noisy = clean.map((v) => v + rng.normal(0, 0.5));
    const opts = { kinds: CONT2, restarts: 3, iterations: 60 };
    const a = fitGp(xs, clean, opts, createRng(2)).hyper;
    const b = fitGp(xs, noisy, opts, createRng(2)).hyper;
    const ratioClean = a.noiseVariance / a.signalVariance;
    const ratioNoisy = b.noiseVariance / b.signalVariance;
    expect(ratioClean).toBeLessThan(0.01);
    expect(ratioNoisy).toBeGreaterThan(0.1);
  });

  it('compares categorical dimensions by category, not by bin distance', () => {
    const kinds: DimKind[] = ['continuous', 'categorical'];
    const h: GpHyper = { lengthScales: [0.3, 1], signalVariance: 1, noiseVariance: 1e-6 };
    // Categories at bins 0.1, 0.5 and 0.9: only equality counts.
    const gp = GaussianProcess.condition([[0.5, 0.1]], [1], kinds, h);
    const [v5, v9] = gp.predict([
      [0.5, 0.5],
      [0.5, 0.9],
    ]).variance;
    expect(v5).toBeCloseTo(v9 as number, 12);
  });

  it('has an analytic likelihood gradient that matches finite differences', () => {
    const kinds: DimKind[] = ['continuous', 'categorical'];
    const xs = sample(12, 2, 5).map((p) => [p[0] as number, (p[1] as number) < 0.5 ? 0.25 : 0.75]);
    const { z } = standardise(xs.map((p) => Math.cos(4 * (p[0] as number)) + (p[1] as number)));
    const h: GpHyper = { lengthScales: [0.4, 0.8], signalVariance: 1.3, noiseVariance: 0.05 };
    const theta = [...h.lengthScales.map(Math.log), Math.log(1.3), Math.log(0.05)];
    const at = (t: number[]): number =>
      logMarginalLikelihood(
        xs,
        z,
        kinds,
        {
          lengthScales: t.slice(0, 2).map(Math.exp),
          signalVariance: Math.exp(t[2] as number),
          noiseVariance: Math.exp(t[3] as number),
        },
        false,
      ).lml;
    const { grad } = logMarginalLikelihood(xs, z, kinds, h, true);
    const eps = 1e-5;
    theta.forEach((_, i) => {
      const up = theta.map((t, j) => (j === i ? t + eps : t));
      const down = theta.map((t, j) => (j === i ? t - eps : t));
      const numeric = (at(up) - at(down)) / (2 * eps);
      expect(grad?.[i]).toBeCloseTo(numeric, 4);
    });
  });
});

describe('expected improvement', () => {
  it('is zero at the incumbent of a noise-free GP and positive elsewhere', () => {
    const x = sample(8, 2, 11);
    const y = x.map(f2);
    const gp = GaussianProcess.condition(x, y, CONT2, FIXED);
    const i = y.indexOf(Math.min(...y));
    const best = y[i] as number;
    // a point far from every observation: prior mean, prior variance
    const at = gp.predict([x[i] as number[], [3, 3]]);
    const eiInc = expectedImprovement(
      at.mean[0] as number,
      Math.sqrt(at.variance[0] as number),
      best,
    );
    const eiFar = expectedImprovement(
      at.mean[1] as number,
      Math.sqrt(at.variance[1] as number),
      best,
    );
    expect(eiInc).toBeLessThan(1e-9);
    expect(eiFar).toBeGreaterThan(5e-3);
  });

  it('matches the closed form on known values', () => {
    // μ = f*, σ = 1: EI = φ(0).
    expect(expectedImprovement(0, 1, 0)).toBeCloseTo(1 / Math.sqrt(2 * Math.PI), 6);
    // σ = 0: the plain improvement, or zero.
    expect(expectedImprovement(1, 0, 3)).toBe(2);
    expect(expectedImprovement(3, 0, 1)).toBe(0);
    // a margin ξ lowers EI
    expect(expectedImprovement(0, 1, 0, 0.5)).toBeLessThan(expectedImprovement(0, 1, 0));
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-1.959964)).toBeCloseTo(0.025, 6);
  });
});

describe('outputs of extreme scale', () => {
  it('keep their order when their squared deviations overflow (~1e160)', () => {
    const y = [1e160, 2e160, 3e160];
    const s = standardise(y);
    expect(s.std).toBeCloseTo(Math.sqrt(2 / 3) * 1e160, -150);
    expect(s.z.map((v) => Number(v.toFixed(6)))).toEqual([-1.224745, 0, 1.224745]);
    const w = warpOutputs(y);
    expect(w.values.every(Number.isFinite)).toBe(true);
    expect(w.values[0]).toBeLessThan(w.values[1] as number);
    expect(w.values[1]).toBeLessThan(w.values[2] as number);
  });
});
