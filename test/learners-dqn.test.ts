// DQN: it solves a deterministic chain (known optimal return), never picks a masked action,
// replays exactly from its seed, and a saved agent loads back deciding identically.
import { describe, expect, it } from 'vitest';
import { DqnAgent, dqnConfig, learnDqn, type DqnConfig } from '../learners/dqn/index.ts';
import {
  ArtifactError,
  loadTfBackend,
  tf,
  LearnerConfigError,
  evaluatePolicy,
  meanReturn,
} from '../learners/tf/index.ts';
import { ChainEnv, MaskedBanditEnv } from '../learners/tf/sanity-envs.ts';
import { SchedulerEnv } from '../envs/scheduler/env.ts';

// Small and quick: one hidden layer, short exploration, frequent target syncs.
const SMALL: Partial<DqnConfig> = {
  hiddenSizes: [32],
  batchSize: 32,
  bufferSize: 2_000,
  learningStarts: 200,
  explorationSteps: 800,
  targetUpdateInterval: 50,
};

function greedy(agent: DqnAgent) {
  return (obs: unknown, mask: readonly boolean[] | undefined) =>
    agent.greedyActions([obs], [mask])[0] as number;
}

describe('DQN', () => {
  it('solves the chain: greedy return equals the optimal 1, not the early exit 0.1', async () => {
    const env = new ChainEnv(6, 0.1);
    const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      seed: 1,
    });
    const run = learnDqn(agent, env, { totalSteps: 1_500 });
    expect(run.episodes.length).toBeGreaterThan(10);
    const evalEps = evaluatePolicy(new ChainEnv(6, 0.1), greedy(agent), {
      episodes: 1,
      seed: 0,
      maxStepsPerEpisode: 50,
      nActions: 2,
    });
    expect(evalEps[0]).toEqual({ return: 1, length: 5, terminated: true });
    // Q(0, right) ~ gamma^4 = 0.96 and Q(0, left) = 0.1: the values, not just the argmax, are right.
    const [q0] = agent.qValues([0]);
    expect(q0?.[0]).toBeCloseTo(0.1, 1);
    expect(q0?.[1]).toBeCloseTo(0.99 ** 4, 1);
    agent.dispose();
  });

  it('never chooses a masked action, in training or greedily, and learns the best legal one', async () => {
    const env = new MaskedBanditEnv(4); // throws on an illegal action
    const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      learningStarts: 100,
      explorationSteps: 400,
      seed: 2,
    });
    // At step 0 epsilon is 1: every action is a random one, drawn among the legal arms only.
    const explored = new Set(Array.from({ length: 300 }, () => agent.act(2, env.mask(2), 0)));
    expect([...explored].sort()).toEqual([0, 1, 3]);
    learnDqn(agent, env, { totalSteps: 800 });
    const contexts = [0, 1, 2, 3];
    const masks = contexts.map((c) => env.mask(c));
    // The best arm c is illegal in even contexts; the best legal arm there is c + 1.
    expect(agent.greedyActions(contexts, masks)).toEqual([1, 1, 3, 3]);
    const q = agent.qValues(contexts, masks);
    expect(q[0]?.[0]).toBe(-Infinity);
    expect(q[2]?.[2]).toBe(-Infinity);
    const evalEps = evaluatePolicy(env, greedy(agent), {
      episodes: 200,
      seed: 9,
      maxStepsPerEpisode: 1,
      nActions: 4,
    });
    expect(meanReturn(evalEps)).toBeGreaterThan(0.7);
    agent.dispose();
  });

  it('two runs from one seed give identical weights and returns', async () => {
    const run = async () => {
      const env = new ChainEnv(6, 0.1);
      const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
        ...SMALL,
        learningStarts: 50,
        seed: 7,
      });
      const r = learnDqn(agent, env, { totalSteps: 200 });
      const out = {
        returns: r.episodes.map((e) => e.return),
        loss: r.meanLoss,
        weights: agent.save().weights,
      };
      agent.dispose();
      return out;
    };
    const [a, b] = [await run(), await run()];
    expect(a.loss).toBeGreaterThan(0);
    expect(b).toEqual(a);
  });

  it('save then load (through JSON) gives identical Q-values and actions; no tensor leaks', async () => {
    await loadTfBackend();
    const tensorsBefore = tf.memory().numTensors;
    const env = new MaskedBanditEnv(4);
    const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      learningStarts: 50,
      seed: 3,
    });
    learnDqn(agent, env, { totalSteps: 150 });
    const artifact = JSON.parse(JSON.stringify(agent.save({ note: 'test' })));
    expect(artifact.meta).toMatchObject({ envSteps: 150, note: 'test' });
    const loaded = await DqnAgent.load(artifact);
    const obs = [0, 1, 2, 3, 3, 2, 1, 0];
    const masks = obs.map((c, i) => (i < 4 ? env.mask(c) : undefined));
    expect(loaded.qValues(obs, masks)).toEqual(agent.qValues(obs, masks));
    expect(loaded.greedyActions(obs, masks)).toEqual(agent.greedyActions(obs, masks));
    await expect(DqnAgent.load({ ...artifact, kind: 'ppo' })).rejects.toThrow(ArtifactError);
    [agent, loaded].forEach((a) => a.dispose());
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('a refused load names the bad weight and frees the agent it had built', async () => {
    const env = new MaskedBanditEnv(4);
    const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      seed: 3,
    });
    const tensorsBefore = tf.memory().numTensors;
    const short = JSON.parse(JSON.stringify(agent.save()));
    short.weights[2] = short.weights[2].slice(1);
    const reshaped = JSON.parse(JSON.stringify(agent.save()));
    reshaped.shapes[3] = [reshaped.shapes[3][0] + 1];
    await expect(DqnAgent.load(short)).rejects.toMatchObject({ field: 'weights[2]' });
    await expect(DqnAgent.load(reshaped)).rejects.toMatchObject({ field: 'weights[3]' });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    agent.dispose();
  });

  it('learns through a truncation whose next state allows no action (an event-bound cut)', async () => {
    const env = new SchedulerEnv({ window: 4, config: { maxEvents: 40 } });
    // The env does produce the case: truncated, not terminated, no legal action.
    let { info } = env.reset({ seed: 1 });
    let cut: { terminated: boolean; truncated: boolean; mask: boolean[] } | undefined;
    for (let t = 0; t < 1000 && cut === undefined; t++) {
      const r = env.step((info['actionMask'] as boolean[]).indexOf(true));
      if (r.terminated || r.truncated)
        cut = {
          terminated: r.terminated,
          truncated: r.truncated,
          mask: r.info['actionMask'] as boolean[],
        };
      info = r.info;
    }
    expect(cut).toEqual({ terminated: false, truncated: true, mask: [false, false, false, false] });
    const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, {
      hiddenSizes: [16],
      batchSize: 8,
      bufferSize: 200,
      learningStarts: 10,
      seed: 1,
    });
    try {
      // It threw 'actionMask allows no action' at the first cut.
      const run = learnDqn(agent, env, { totalSteps: 100, envSeed: 1 });
      expect(run.episodes.filter((e) => !e.terminated).length).toBeGreaterThan(1);
    } finally {
      agent.dispose();
    }
  });

  it('rejects a bad config naming the field and the rule', () => {
    expect(() => dqnConfig({ gamma: 1.5 })).toThrow(LearnerConfigError);
    expect(() => dqnConfig({ gamma: 1.5 })).toThrow(/dqn.gamma must be \[0,1\], got 1.5/);
    expect(() => dqnConfig({ batchSize: 64, bufferSize: 10 })).toThrow(
      /batchSize must be <= bufferSize/,
    );
    expect(() => dqnConfig({ hiddenSizes: [] })).toThrow(/hiddenSizes/);
  });
});
