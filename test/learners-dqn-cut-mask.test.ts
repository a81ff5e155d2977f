// learnDqn skips a truncated transition whose next state allows no action; a malformed mask
// there (0/1 numbers, the wrong length) is refused as on every other step, not taken for
// "no legal action" and dropped.
import { describe, expect, it } from 'vitest';
import type { Env, ResetResult, StepResult } from '../envs/core/index.ts';
import { DqnAgent, learnDqn } from '../learners/dqn/index.ts';
import { LearnerInputError } from '../learners/tf/index.ts';
import { MaskedBanditEnv } from '../learners/tf/sanity-envs.ts';

/** The masked bandit, but every episode is cut (truncated) with the given malformed mask. */
class BadMaskOnCut implements Env<number, number> {
  readonly id = 'bad-mask-on-cut';
  private readonly inner = new MaskedBanditEnv(4);
  readonly observationSpace = this.inner.observationSpace;
  readonly actionSpace = this.inner.actionSpace;
  constructor(private readonly badMask: unknown) {}
  reset(opts: { seed?: number } = {}): ResetResult<number> {
    return this.inner.reset(opts);
  }
  step(action: number): StepResult<number> {
    const r = this.inner.step(action);
    return { ...r, terminated: false, truncated: true, info: { actionMask: this.badMask } };
  }
}

describe('DQN refuses a malformed actionMask on a truncated step', () => {
  for (const bad of [
    [1, 1, 1, 1],
    [false, false],
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, async () => {
      const env = new BadMaskOnCut(bad);
      const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
        hiddenSizes: [8],
        batchSize: 4,
        bufferSize: 50,
        learningStarts: 10,
        seed: 1,
      });
      try {
        expect(() => learnDqn(agent, env, { totalSteps: 5, envSeed: 1 })).toThrow(
          LearnerInputError,
        );
      } finally {
        agent.dispose();
      }
    });
  }
});
