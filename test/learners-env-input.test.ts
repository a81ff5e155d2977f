// What an env hands the deep learners is checked where it enters: a box observation or a
// reward that is not a finite number is refused with the field named (one NaN made every
// Q-value and logit NaN, action 0 for ever, and from the replay buffer every weight), and a
// terminated step may allow no action (DQN read that mask first and threw; its target does
// not bootstrap, so the mask is never needed: the scheduler env's last step is such a step).
import { describe, expect, it } from 'vitest';
import {
  box,
  discrete,
  maskedDiscrete,
  type Env,
  type ResetResult,
  type StepResult,
} from '../envs/core/index.ts';
import { DqnAgent, learnDqn } from '../learners/dqn/index.ts';
import { PpoAgent, learnPpo } from '../learners/ppo/index.ts';
import { encodeBatch } from '../learners/tf/encoding.ts';

/** One-step episodes whose terminal info allows no action (nothing left to choose). */
class EndsWithNoActionEnv implements Env<number, number> {
  readonly id = 'ends-with-no-action-v0';
  readonly observationSpace = discrete(2);
  readonly actionSpace = maskedDiscrete(2);
  reset(): ResetResult<number> {
    return { obs: 0, info: { actionMask: [true, true] } };
  }
  step(action: number): StepResult<number> {
    return {
      obs: 1,
      reward: action === 1 ? 1 : 0,
      terminated: true,
      truncated: false,
      info: { actionMask: [false, false] },
    };
  }
}

/** Rewards NaN from its third step on. */
class NanRewardEnv implements Env<number, number> {
  readonly id = 'nan-reward-v0';
  readonly observationSpace = discrete(2);
  readonly actionSpace = discrete(2);
  private steps = 0;
  reset(): ResetResult<number> {
    return { obs: 0, info: {} };
  }
  step(): StepResult<number> {
    this.steps++;
    return {
      obs: 0,
      reward: this.steps >= 3 ? Number.NaN : 1,
      terminated: false,
      truncated: false,
      info: {},
    };
  }
}

const SMALL_DQN = { hiddenSizes: [8], batchSize: 4, bufferSize: 64, learningStarts: 4 };

describe('deep learners on what an env hands them', () => {
  it('DQN learns through terminated steps that allow no action', async () => {
    const env = new EndsWithNoActionEnv();
    const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL_DQN,
      explorationSteps: 10,
    });
    try {
      const run = learnDqn(agent, env, { totalSteps: 20 });
      expect(run.episodes.length).toBe(20);
      expect(Number.isFinite(run.meanLoss)).toBe(true);
    } finally {
      agent.dispose();
    }
  });

  it('DQN and PPO refuse a reward that is not finite, naming it', async () => {
    const dqn = await DqnAgent.create(discrete(2), discrete(2), SMALL_DQN);
    const ppo = await PpoAgent.create(discrete(2), discrete(2), { hiddenSizes: [8], nSteps: 8 });
    try {
      expect(() => learnDqn(dqn, new NanRewardEnv(), { totalSteps: 10 })).toThrow(
        /reward must be a finite number, got NaN/,
      );
      expect(() => learnPpo(ppo, new NanRewardEnv(), { totalSteps: 16 })).toThrow(
        /reward must be a finite number, got NaN/,
      );
    } finally {
      dqn.dispose();
      ppo.dispose();
    }
  });

  it('refuses a box observation holding NaN or an infinity, naming its position', () => {
    expect(() => encodeBatch(box([2]), [[0.5, Number.NaN]])).toThrow(
      /observation\[1\] must be finite, got NaN/,
    );
    expect(() => encodeBatch(box([3]), [[Infinity, 0, 1]])).toThrow(
      /observation\[0\] must be finite, got Infinity/,
    );
    expect(Array.from(encodeBatch(box([2]), [[0.5, -2]]))).toEqual([0.5, -2]);
  });
});
