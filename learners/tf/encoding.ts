// From env spaces to network inputs and outputs: observations become flat float vectors
// (boxes as they are, discrete parts one-hot), discrete action spaces give the number of
// network outputs, and `info.actionMask` becomes a checked boolean list.
import { flatten, spaceSize, type Space } from '../../envs/core/index.ts';
import { LearnerInputError } from './errors.ts';

/** Bound on encoded observation width: these learners are for small control problems. */
export const OBS_SIZE_MAX = 65_536;

/** The width of the encoded observation of a space. */
export function obsSize(space: Space): number {
  let size: number;
  switch (space.kind) {
    case 'box':
      size = spaceSize(space.shape);
      break;
    case 'discrete':
    case 'masked_discrete':
      size = space.n;
      break;
    case 'multi_discrete':
      size = space.nvec.reduce((a, b) => a + b, 0);
      break;
  }
  if (!(size >= 1 && size <= OBS_SIZE_MAX)) {
    throw new LearnerInputError(
      'observationSpace',
      `encoded observation size must be in [1, ${OBS_SIZE_MAX}], got ${size}`,
    );
  }
  return size;
}

function oneHot(what: string, v: unknown, n: number, out: Float32Array, at: number): void {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= n) {
    throw new LearnerInputError(what, `${what} must be an integer in [0, ${n}), got ${String(v)}`);
  }
  out.fill(0, at, at + n);
  out[at + (v as number)] = 1;
}

/** Writes the encoding of `obs` into `out` from `offset` (out must hold obsSize(space) there). */
export function encodeObs(space: Space, obs: unknown, out: Float32Array, offset = 0): void {
  switch (space.kind) {
    case 'box': {
      const flat = flatten(obs);
      const n = spaceSize(space.shape);
      if (flat === null || flat.length !== n) {
        throw new LearnerInputError('obs', `observation must hold ${n} numbers`);
      }
      // One NaN or infinity makes every output NaN, and in a replay buffer every weight.
      const bad = flat.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0)
        throw new LearnerInputError('obs', `observation[${bad}] must be finite, got ${flat[bad]}`);
      out.set(flat, offset);
      return;
    }
    case 'discrete':
    case 'masked_discrete':
      oneHot('obs', obs, space.n, out, offset);
      return;
    case 'multi_discrete': {
      if (!Array.isArray(obs) || obs.length !== space.nvec.length) {
        throw new LearnerInputError('obs', `observation must be ${space.nvec.length} integers`);
      }
      let at = offset;
      space.nvec.forEach((n, i) => {
        oneHot(`obs[${i}]`, obs[i], n, out, at);
        at += n;
      });
      return;
    }
  }
}

/** Encodes a batch of observations row by row into one Float32Array. */
export function encodeBatch(space: Space, batch: readonly unknown[]): Float32Array {
  const width = obsSize(space);
  const out = new Float32Array(batch.length * width);
  batch.forEach((obs, i) => encodeObs(space, obs, out, i * width));
  return out;
}

/** The number of actions of a discrete (possibly masked) action space. */
export function actionCount(space: Space): number {
  if (space.kind !== 'discrete' && space.kind !== 'masked_discrete') {
    throw new LearnerInputError(
      'actionSpace',
      `actionSpace must be discrete or masked_discrete, got ${space.kind}`,
    );
  }
  return space.n;
}

/**
 * The legal-action mask of an env step (`info.actionMask`), or undefined when every action is
 * legal. A mask of the wrong length or with no legal action is the env's bug: fail loudly.
 */
export function maskFromInfo(
  info: Record<string, unknown>,
  nActions: number,
): boolean[] | undefined {
  const mask = info['actionMask'];
  if (mask === undefined) return undefined;
  return checkMask(mask, nActions);
}

/** An env's reward: finite (a NaN reaches every weight through the loss). */
export function checkReward(reward: unknown): void {
  if (typeof reward !== 'number' || !Number.isFinite(reward))
    throw new LearnerInputError('reward', `reward must be a finite number, got ${String(reward)}`);
}

export function checkMask(mask: unknown, nActions: number): boolean[] {
  if (
    !Array.isArray(mask) ||
    mask.length !== nActions ||
    !mask.every((m) => typeof m === 'boolean')
  ) {
    throw new LearnerInputError('actionMask', `actionMask must be ${nActions} booleans`);
  }
  if (!mask.includes(true))
    throw new LearnerInputError('actionMask', 'actionMask allows no action');
  return mask as boolean[];
}

/** One legal-action mask per observation of a batch; undefined means all actions legal. */
export type Masks = readonly (readonly boolean[] | undefined)[];

/** Packs masks (undefined = all legal) into a row-major 0/1 array for a mask tensor. */
export function packMasks(
  masks: readonly (readonly boolean[] | undefined)[],
  nActions: number,
): Uint8Array {
  const out = new Uint8Array(masks.length * nActions).fill(1);
  masks.forEach((m, i) => {
    if (m === undefined) return;
    checkMask(m, nActions).forEach((legal, a) => (out[i * nActions + a] = legal ? 1 : 0));
  });
  return out;
}
