// Local moves in the unit cube, shared by the acquisition search: numeric coordinates get
// Gaussian steps at a randomly chosen scale (fine to coarse), categorical ones are redrawn
// now and then, so both kinds of neighbour get explored.
import type { Rng } from '../../envs/core/index.ts';
import type { DimKind } from '../gp/index.ts';
import { clamp01 } from './design.ts';

const SCALES = [0.01, 0.05, 0.15] as const;

/** A neighbour of `x`; `shrink` multiplies the step scales (refinement rounds use < 1). */
export function perturb(
  x: readonly number[],
  kinds: readonly DimKind[],
  rng: Rng,
  shrink = 1,
): number[] {
  const scale = rng.pick(SCALES) * shrink;
  const redraw = Math.max(0.2, 1 / Math.max(1, kinds.length));
  return x.map((u, i) => {
    if (kinds[i] === 'categorical') return rng.next() < redraw ? rng.next() : u;
    return clamp01(u + rng.normal(0, scale));
  });
}
