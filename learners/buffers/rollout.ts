// The on-policy rollout buffer of PPO: a fixed number of steps of one env, then GAE(lambda)
// advantages and returns over them. Each step records whether it *ended* its episode, so the
// bootstrapping rule reads directly: no value flows across an episode end.
import type { Rng } from '../../envs/core/index.ts';

export interface RolloutStep {
  obs: Float32Array;
  /** Legal actions at obs (undefined: all). */
  mask: readonly boolean[] | undefined;
  action: number;
  /** log pi_old(action | obs) when the action was taken. */
  logProb: number;
  /** V_old(obs). */
  value: number;
  reward: number;
  /** This step ended the episode (terminated or truncated). */
  episodeEnd: boolean;
}

export interface GaeResult {
  advantages: Float32Array;
  /** advantages + values: the critic's regression targets. */
  returns: Float32Array;
}

/**
 * Generalised advantage estimation (Schulman et al. 2016), one env, steps in time order:
 *   delta_t = r_t + gamma * V(s_{t+1}) * (1 - end_t) - V(s_t)
 *   A_t     = delta_t + gamma * lambda * (1 - end_t) * A_{t+1}
 * where V(s_{t+1}) is `lastValue` for the final step (the value of the observation after it).
 * A truncated episode's bootstrap value belongs in its last reward (see learners/ppo/learn.ts).
 */
export function computeGae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  episodeEnds: ArrayLike<boolean | number>,
  lastValue: number,
  gamma: number,
  lambda: number,
): GaeResult {
  const n = rewards.length;
  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  let next = 0;
  for (let t = n - 1; t >= 0; t--) {
    const notEnd = episodeEnds[t] ? 0 : 1;
    const nextValue = t === n - 1 ? lastValue : (values[t + 1] as number);
    const delta = (rewards[t] as number) + gamma * nextValue * notEnd - (values[t] as number);
    next = delta + gamma * lambda * notEnd * next;
    advantages[t] = next;
    returns[t] = next + (values[t] as number);
  }
  return { advantages, returns };
}

/** Flat arrays of a full rollout plus its advantages, for minibatching. */
export interface RolloutBatch extends GaeResult {
  size: number;
  obs: Float32Array;
  /** [size, nActions] 0/1. */
  masks: Uint8Array;
  actions: Int32Array;
  logProbs: Float32Array;
  values: Float32Array;
}

/** A bound on steps per rollout, so one update is a bounded amount of memory and work. */
export const ROLLOUT_CAPACITY_MAX = 65_536;

export class RolloutBuffer {
  private readonly steps: RolloutStep[] = [];

  constructor(
    readonly capacity: number,
    readonly obsSize: number,
    readonly nActions: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > ROLLOUT_CAPACITY_MAX) {
      throw new RangeError(
        `rollout capacity must be an integer in [1, ${ROLLOUT_CAPACITY_MAX}], got ${capacity}`,
      );
    }
  }

  get size(): number {
    return this.steps.length;
  }

  get full(): boolean {
    return this.steps.length >= this.capacity;
  }

  add(step: RolloutStep): void {
    if (this.full) throw new Error(`RolloutBuffer.add: buffer holds its ${this.capacity} steps`);
    this.steps.push(step);
  }

  /** Packs the steps with their GAE; `lastValue` is V of the observation after the last step. */
  finish(lastValue: number, gamma: number, lambda: number): RolloutBatch {
    const s = this.steps;
    const n = s.length;
    const d = this.obsSize;
    const k = this.nActions;
    const obs = new Float32Array(n * d);
    const masks = new Uint8Array(n * k).fill(1);
    s.forEach((step, i) => {
      obs.set(step.obs, i * d);
      step.mask?.forEach((legal, a) => (masks[i * k + a] = legal ? 1 : 0));
    });
    const values = Float32Array.from(s, (x) => x.value);
    const gae = computeGae(
      s.map((x) => x.reward),
      values,
      s.map((x) => x.episodeEnd),
      lastValue,
      gamma,
      lambda,
    );
    return {
      size: n,
      obs,
      masks,
      actions: Int32Array.from(s, (x) => x.action),
      logProbs: Float32Array.from(s, (x) => x.logProb),
      values,
      ...gae,
    };
  }

  clear(): void {
    this.steps.length = 0;
  }
}

/**
 * Row indices of `batch` split into `count` shuffled minibatches (fewer only when there are
 * fewer rows) whose sizes differ by at most one: cutting at ceil(size / count) made fewer
 * minibatches than asked, or a last one of a single row (which skips advantage normalisation).
 */
export function minibatchIndices(size: number, count: number, rng: Rng): Int32Array[] {
  const order = rng.shuffle(Array.from({ length: size }, (_, i) => i));
  const k = Math.min(count, size);
  const out: Int32Array[] = [];
  for (let b = 0; b < k; b++)
    out.push(
      Int32Array.from(order.slice(Math.floor((b * size) / k), Math.floor(((b + 1) * size) / k))),
    );
  return out;
}

/**
 * Row indices split into shuffled minibatches of `per` rows (the last one may be smaller): for
 * a learner that sets a minibatch's size rather than their number (learners/scheduling).
 */
export function minibatchesOfSize(size: number, per: number, rng: Rng): Int32Array[] {
  const order = rng.shuffle(Array.from({ length: size }, (_, i) => i));
  const out: Int32Array[] = [];
  for (let at = 0; at < size; at += per) out.push(Int32Array.from(order.slice(at, at + per)));
  return out;
}

/** Gathers rows `idx` of a row-major array with `width` columns. */
export function gatherRows<T extends Float32Array | Int32Array | Uint8Array>(
  src: T,
  width: number,
  idx: Int32Array,
): T {
  const out = new (src.constructor as new (n: number) => T)(idx.length * width);
  idx.forEach((i, k) => out.set(src.subarray(i * width, (i + 1) * width), k * width));
  return out;
}
