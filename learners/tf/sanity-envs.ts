// Tiny envs whose best policy is known, for checking that a learner learns at all (as SB3's
// identity envs): a deterministic chain with a tempting early exit, and a contextual bandit
// whose best arm is sometimes illegal. Both pass envs/core's checkEnv.
import {
  createRng,
  discrete,
  maskedDiscrete,
  type Env,
  type ResetResult,
  type StepResult,
} from '../../envs/core/index.ts';

/**
 * States 0..length-1, start at 0; action 1 steps right, action 0 steps left. Going left from
 * state 0 ends the episode with reward `exitReward`; reaching the last state ends it with
 * reward 1; every other step pays 0. Optimal return: 1 (length-1 steps right), provided
 * gamma^(length-2) > exitReward. Truncated after 4 * length steps.
 */
export class ChainEnv implements Env<number, number> {
  readonly id = 'sanity-chain-v0';
  readonly observationSpace;
  readonly actionSpace = discrete(2);
  private pos = 0;
  private t = 0;

  constructor(
    readonly length = 6,
    readonly exitReward = 0.1,
  ) {
    if (!Number.isInteger(length) || length < 2)
      throw new RangeError(`length must be >= 2, got ${length}`);
    this.observationSpace = discrete(length);
  }

  reset(): ResetResult<number> {
    this.pos = 0;
    this.t = 0;
    return { obs: 0, info: {} };
  }

  step(action: number): StepResult<number> {
    this.t++;
    const truncated = this.t >= 4 * this.length;
    if (action === 0 && this.pos === 0) {
      return { obs: 0, reward: this.exitReward, terminated: true, truncated: false, info: {} };
    }
    this.pos += action === 1 ? 1 : -1;
    const goal = this.pos === this.length - 1;
    return {
      obs: this.pos,
      reward: goal ? 1 : 0,
      terminated: goal,
      truncated: truncated && !goal,
      info: {},
    };
  }
}

/**
 * One-step contextual bandit over `n` contexts and `n` arms: arm c pays 1 in context c, arm
 * c+1 (mod n) pays 0.5, the rest 0. In even contexts arm c is illegal (masked), so the best
 * legal choice there is c+1. Optimal mean return: 0.75 for even n. Choosing an illegal arm
 * throws, so a learner that ignores masks fails loudly.
 */
export class MaskedBanditEnv implements Env<number, number> {
  readonly id = 'sanity-masked-bandit-v0';
  readonly observationSpace;
  readonly actionSpace;
  private rng = createRng(0);
  private context = 0;

  constructor(readonly n = 4) {
    this.observationSpace = discrete(n);
    this.actionSpace = maskedDiscrete(n);
  }

  static optimalReturn(n: number): number {
    const even = Math.ceil(n / 2);
    return (even * 0.5 + (n - even) * 1) / n;
  }

  mask(context: number): boolean[] {
    return Array.from({ length: this.n }, (_, a) => !(context % 2 === 0 && a === context));
  }

  reset(opts: { seed?: number } = {}): ResetResult<number> {
    if (opts.seed !== undefined) this.rng = createRng(opts.seed);
    this.context = this.rng.int(this.n);
    return { obs: this.context, info: { actionMask: this.mask(this.context) } };
  }

  step(action: number): StepResult<number> {
    const c = this.context;
    if (!this.mask(c)[action])
      throw new Error(`${this.id}: illegal action ${action} in context ${c}`);
    const reward = action === c ? 1 : action === (c + 1) % this.n ? 0.5 : 0;
    return {
      obs: c,
      reward,
      terminated: true,
      truncated: false,
      info: { actionMask: this.mask(c) },
    };
  }
}
