// Deterministic re-seeding. A learner does not carry a live generator across calls: its n-th
// proposal draws from `createRng(deriveSeed(seed, n))`. Its whole random state is then two
// integers (seed, step) that go into the artifact, so a saved-then-loaded learner proposes
// exactly what the original would have, and no generator internals need to be exported.
import { createRng, type Rng } from '../../envs/core/index.ts';

/** murmur3's 32-bit finaliser: a cheap bijective mix of all input bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uint32 seed derived from a base seed and a path of integers (step, stream tag, ...). */
export function deriveSeed(seed: number, ...path: number[]): number {
  let h = fmix32(seed >>> 0);
  for (const p of path) h = fmix32((h ^ fmix32((p >>> 0) + 0x9e3779b9)) >>> 0);
  return h;
}

/** The generator of one step of a learner (see the file comment). */
export function stepRng(seed: number, step: number): Rng {
  return createRng(deriveSeed(seed, STREAM.step, step));
}

/**
 * Stream tags: the first element of every derivation path, so different uses of one seed
 * (the steps, a tuner's initial design, the evaluation seeds of `tune`, the final model fit
 * behind a tuner's `best()`) never share draws.
 */
export const STREAM = {
  step: 0x57e9,
  initialDesign: 0x1d5,
  gridOrder: 0x961d,
  evaluation: 0xe7a1,
  best: 0xbe57,
} as const;
