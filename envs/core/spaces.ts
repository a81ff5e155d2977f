// Observation and action spaces, after Gymnasium: Box, Discrete, MultiDiscrete, and a
// masked Discrete for choosing among the runnable tasks of a decision point.
import type { Rng } from './rng.ts';

export interface BoxSpace {
  kind: 'box';
  shape: readonly number[];
  low: number;
  high: number;
}
export interface DiscreteSpace {
  kind: 'discrete';
  n: number;
}
export interface MultiDiscreteSpace {
  kind: 'multi_discrete';
  nvec: readonly number[];
}
/** n actions of which only those with mask[i] true are legal at this step; the mask rides in `info.actionMask`. */
export interface MaskedDiscreteSpace {
  kind: 'masked_discrete';
  n: number;
}
export type Space = BoxSpace | DiscreteSpace | MultiDiscreteSpace | MaskedDiscreteSpace;

export const box = (shape: readonly number[], low = -Infinity, high = Infinity): BoxSpace => ({
  kind: 'box',
  shape,
  low,
  high,
});
export const discrete = (n: number): DiscreteSpace => ({ kind: 'discrete', n });
export const multiDiscrete = (nvec: readonly number[]): MultiDiscreteSpace => ({
  kind: 'multi_discrete',
  nvec,
});
export const maskedDiscrete = (n: number): MaskedDiscreteSpace => ({ kind: 'masked_discrete', n });

export function spaceSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Whether x belongs to the space (and, for a masked space, is legal under the mask). */
export function contains(space: Space, x: unknown, mask?: readonly boolean[]): boolean {
  switch (space.kind) {
    case 'box': {
      const flat = flatten(x);
      return (
        flat !== null &&
        flat.length === spaceSize(space.shape) &&
        flat.every((v) => Number.isFinite(v) && v >= space.low && v <= space.high)
      );
    }
    case 'discrete':
      return Number.isInteger(x) && (x as number) >= 0 && (x as number) < space.n;
    case 'masked_discrete':
      return (
        Number.isInteger(x) &&
        (x as number) >= 0 &&
        (x as number) < space.n &&
        (mask === undefined || mask[x as number] === true)
      );
    case 'multi_discrete':
      return (
        Array.isArray(x) &&
        x.length === space.nvec.length &&
        x.every((v, i) => Number.isInteger(v) && v >= 0 && v < (space.nvec[i] as number))
      );
  }
}

/** A uniformly random member of the space (a legal one under the mask). */
export function sample(space: Space, rng: Rng, mask?: readonly boolean[]): number | number[] {
  switch (space.kind) {
    case 'box': {
      // As Gymnasium samples a box: uniform when bounded, an exponential step off the one
      // finite bound when half-bounded (a fixed [-1, 1] fell outside [5, inf)), else normal.
      const { low, high } = space;
      const one = (): number => {
        if (Number.isFinite(low) && Number.isFinite(high)) return rng.uniform(low, high);
        if (Number.isFinite(low)) return low + rng.exponential(1);
        if (Number.isFinite(high)) return high - rng.exponential(1);
        return rng.normal(0, 1);
      };
      return Array.from({ length: spaceSize(space.shape) }, one);
    }
    case 'discrete':
      return rng.int(space.n);
    case 'masked_discrete': {
      const legal = mask ? mask.flatMap((m, i) => (m ? [i] : [])) : [...Array(space.n).keys()];
      return rng.pick(legal);
    }
    case 'multi_discrete':
      return space.nvec.map((n) => rng.int(n));
  }
}

/** Flattens nested number arrays or typed arrays; null when x holds anything but numbers. */
export function flatten(x: unknown): number[] | null {
  if (typeof x === 'number') return [x];
  if (ArrayBuffer.isView(x) && !(x instanceof DataView))
    return Array.from(x as unknown as ArrayLike<number>);
  if (!Array.isArray(x)) return null;
  const out: number[] = [];
  for (const item of x) {
    const f = flatten(item);
    if (f === null) return null;
    out.push(...f);
  }
  return out;
}
