// Space-filling initial designs in the unit cube.
import type { Rng } from '../../envs/core/index.ts';

/** `n` points of a Latin hypercube in [0,1]^dims: each axis has one point in each of n bins. */
export function latinHypercube(n: number, dims: number, rng: Rng): number[][] {
  const axes = Array.from({ length: dims }, () =>
    rng.shuffle(Array.from({ length: n }, (_, i) => i)),
  );
  return Array.from({ length: n }, (_, i) =>
    axes.map((perm) => ((perm[i] as number) + rng.next()) / n),
  );
}

/** A point uniform in [0,1]^dims. */
export function uniformPoint(dims: number, rng: Rng): number[] {
  return Array.from({ length: dims }, () => rng.next());
}

export const clamp01 = (u: number): number => Math.min(1, Math.max(0, u));
