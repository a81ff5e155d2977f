// A bounded replay buffer for off-policy learners (DQN): a ring over typed arrays that
// overwrites the oldest transition once full, and samples uniformly with an injected Rng.
import type { Rng } from '../../envs/core/index.ts';

/** A bound on capacity so a config typo cannot allocate gigabytes. */
export const REPLAY_CAPACITY_MAX = 1_000_000;

export interface Transition {
  /** Encoded observation (obsSize floats). */
  obs: Float32Array;
  action: number;
  reward: number;
  nextObs: Float32Array;
  /** The episode reached a terminal state: no bootstrapping from nextObs. (A truncation is not.) */
  terminated: boolean;
  /** Legal actions in nextObs (undefined: all), for the masked max of the target. */
  nextMask: readonly boolean[] | undefined;
}

/** A sampled minibatch, row-major, ready to become tensors. */
export interface ReplayBatch {
  size: number;
  obs: Float32Array;
  actions: Int32Array;
  rewards: Float32Array;
  nextObs: Float32Array;
  /** 1 where the transition terminated the episode. */
  terminated: Float32Array;
  /** [size, nActions] 0/1 legal-action mask of nextObs. */
  nextMasks: Uint8Array;
}

export class ReplayBuffer {
  private readonly obs: Float32Array;
  private readonly nextObs: Float32Array;
  private readonly actions: Int32Array;
  private readonly rewards: Float32Array;
  private readonly terminated: Float32Array;
  private readonly nextMasks: Uint8Array;
  private next = 0;
  private count = 0;

  constructor(
    readonly capacity: number,
    readonly obsSize: number,
    readonly nActions: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > REPLAY_CAPACITY_MAX) {
      throw new RangeError(
        `replay capacity must be an integer in [1, ${REPLAY_CAPACITY_MAX}], got ${capacity}`,
      );
    }
    this.obs = new Float32Array(capacity * obsSize);
    this.nextObs = new Float32Array(capacity * obsSize);
    this.actions = new Int32Array(capacity);
    this.rewards = new Float32Array(capacity);
    this.terminated = new Float32Array(capacity);
    this.nextMasks = new Uint8Array(capacity * nActions);
  }

  get size(): number {
    return this.count;
  }

  add(t: Transition): void {
    const i = this.next;
    this.obs.set(t.obs, i * this.obsSize);
    this.nextObs.set(t.nextObs, i * this.obsSize);
    this.actions[i] = t.action;
    this.rewards[i] = t.reward;
    this.terminated[i] = t.terminated ? 1 : 0;
    for (let a = 0; a < this.nActions; a++) {
      this.nextMasks[i * this.nActions + a] = t.nextMask === undefined || t.nextMask[a] ? 1 : 0;
    }
    this.next = (i + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** `batchSize` transitions drawn uniformly with replacement; the buffer must not be empty. */
  sample(batchSize: number, rng: Rng): ReplayBatch {
    if (this.count === 0) throw new Error('ReplayBuffer.sample: buffer is empty');
    const d = this.obsSize;
    const n = this.nActions;
    const b: ReplayBatch = {
      size: batchSize,
      obs: new Float32Array(batchSize * d),
      actions: new Int32Array(batchSize),
      rewards: new Float32Array(batchSize),
      nextObs: new Float32Array(batchSize * d),
      terminated: new Float32Array(batchSize),
      nextMasks: new Uint8Array(batchSize * n),
    };
    for (let k = 0; k < batchSize; k++) {
      const i = rng.int(this.count);
      b.obs.set(this.obs.subarray(i * d, (i + 1) * d), k * d);
      b.nextObs.set(this.nextObs.subarray(i * d, (i + 1) * d), k * d);
      b.actions[k] = this.actions[i] as number;
      b.rewards[k] = this.rewards[i] as number;
      b.terminated[k] = this.terminated[i] as number;
      b.nextMasks.set(this.nextMasks.subarray(i * n, (i + 1) * n), k * n);
    }
    return b;
  }
}
