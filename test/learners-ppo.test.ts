// PPO: the clipped objective matches a hand computation, the agent learns a masked contextual
// bandit to its optimum without ever choosing a masked arm, replays exactly from its seed,
// and a saved agent loads back deciding identically.
import { describe, expect, it } from 'vitest';
import {
  PpoAgent,
  clippedPolicyLoss,
  entropyOf,
  learnPpo,
  maskedLogProbs,
  ppoConfig,
  valueLoss,
  type PpoConfig,
} from '../learners/ppo/index.ts';
import {
  LearnerConfigError,
  evaluatePolicy,
  loadTfBackend,
  meanReturn,
  tf,
} from '../learners/tf/index.ts';
import { ChainEnv, MaskedBanditEnv } from '../learners/tf/sanity-envs.ts';

const SMALL: Partial<PpoConfig> = { hiddenSizes: [32], learningRate: 3e-3, nSteps: 64 };

const scalar = (t: tf.Tensor): number => t.dataSync()[0] as number;

describe('PPO loss', () => {
  it('the clipped surrogate matches a hand computation', async () => {
    await loadTfBackend();
    // ratio r = exp(new - old); per sample max(-A r, -A clip(r, 0.8, 1.2)):
    //   r 1.5, A  1: max(-1.5, -1.2) = -1.2   (gain capped: the ratio left the trust region)
    //   r 0.5, A  2: max(-1.0, -1.6) = -1.0   (no cap on undoing a bad move)
    //   r 0.5, A -1: max( 0.5,  0.8) =  0.8
    //   r 1.5, A -1: max( 1.5,  1.2) =  1.5
    //   r 1.1, A  3: max(-3.3, -3.3) = -3.3   (inside the range: plain surrogate)
    // mean = (-1.2 - 1 + 0.8 + 1.5 - 3.3) / 5 = -0.64
    const ratios = [1.5, 0.5, 0.5, 1.5, 1.1];
    const newLogProbs = tf.tensor1d(ratios.map((r) => Math.log(r) - 2));
    const oldLogProbs = tf.tensor1d(ratios.map(() => -2));
    const advantages = tf.tensor1d([1, 2, -1, -1, 3]);
    expect(scalar(clippedPolicyLoss(newLogProbs, oldLogProbs, advantages, 0.2))).toBeCloseTo(
      -0.64,
      5,
    );
    // With a clip so wide nothing is clipped, the loss is the plain surrogate -mean(A r).
    expect(scalar(clippedPolicyLoss(newLogProbs, oldLogProbs, advantages, 10))).toBeCloseTo(
      -(1.5 + 1 - 0.5 - 1.5 + 3.3) / 5,
      5,
    );
  });

  it('the clipped value loss matches a hand computation', async () => {
    await loadTfBackend();
    // V = [2, 0], V_old = [1, 0], R = [3, 1], clip 0.5:
    //   i0: (2-3)^2 = 1; clipped V = 1 + 0.5 = 1.5, (1.5-3)^2 = 2.25; max 2.25
    //   i1: (0-1)^2 = 1; clipped V = 0, 1; max 1
    // 0.5 * mean = 0.8125; unclipped: 0.5 * mean(1, 1) = 0.5
    const [v, old, ret] = [tf.tensor1d([2, 0]), tf.tensor1d([1, 0]), tf.tensor1d([3, 1])];
    expect(scalar(valueLoss(v, old, ret, 0.5))).toBeCloseTo(0.8125, 6);
    expect(scalar(valueLoss(v, old, ret, null))).toBeCloseTo(0.5, 6);
  });

  it('masked logits get probability 0 and the entropy stays finite', async () => {
    await loadTfBackend();
    const logp = maskedLogProbs(tf.tensor2d([[0, 0, 5]]), tf.tensor2d([[1, 1, 0]]));
    const probs = Array.from(logp.dataSync(), Math.exp);
    expect(probs[2]).toBe(0);
    expect(probs[0]).toBeCloseTo(0.5, 6);
    expect(scalar(entropyOf(logp))).toBeCloseTo(Math.log(2), 5);
  });
});

describe('PPO agent', () => {
  it('learns the masked bandit to its optimum, never choosing a masked arm', async () => {
    const env = new MaskedBanditEnv(4); // throws on an illegal action
    const agent = await PpoAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      seed: 1,
    });
    // The initial policy is near uniform over the legal arms, and never samples the masked one.
    const sampled = new Set(Array.from({ length: 300 }, () => agent.sample(2, env.mask(2)).action));
    expect([...sampled].sort()).toEqual([0, 1, 3]);
    const run = learnPpo(agent, env, { totalSteps: 768 });
    const first = meanReturn(run.episodes.slice(0, 64));
    const last = meanReturn(run.episodes.slice(-64));
    expect(first).toBeLessThan(0.5); // a near-uniform start: 0.375 expected
    expect(last).toBeGreaterThan(first + 0.2);
    const contexts = [0, 1, 2, 3];
    const masks = contexts.map((c) => env.mask(c));
    expect(agent.deterministicActions(contexts, masks)).toEqual([1, 1, 3, 3]);
    const probs = agent.actionProbs(contexts, masks);
    expect(probs[0]?.[0]).toBe(0);
    expect(probs[2]?.[2]).toBe(0);
    const evalEps = evaluatePolicy(
      env,
      (o, m) => agent.deterministicActions([o], [m])[0] as number,
      {
        episodes: 100,
        seed: 11,
        maxStepsPerEpisode: 1,
        nActions: 4,
      },
    );
    expect(meanReturn(evalEps)).toBeGreaterThan(0.7); // optimum 0.75 in expectation
    agent.dispose();
  });

  it('learns the chain past its tempting early exit', async () => {
    const env = new ChainEnv(6, 0.1);
    const agent = await PpoAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      nSteps: 128,
      seed: 3,
    });
    learnPpo(agent, env, { totalSteps: 1_024 });
    const evalEps = evaluatePolicy(
      new ChainEnv(6, 0.1),
      (o, m) => agent.deterministicActions([o], [m])[0] as number,
      {
        episodes: 1,
        seed: 0,
        maxStepsPerEpisode: 50,
        nActions: 2,
      },
    );
    expect(evalEps[0]).toEqual({ return: 1, length: 5, terminated: true });
    agent.dispose();
  });

  it('two runs from one seed give identical weights and returns', async () => {
    const run = async () => {
      const env = new MaskedBanditEnv(4);
      const agent = await PpoAgent.create(env.observationSpace, env.actionSpace, {
        ...SMALL,
        seed: 5,
      });
      const r = learnPpo(agent, env, { totalSteps: 128 });
      const out = {
        returns: r.episodes.map((e) => e.return),
        updates: r.updates,
        weights: agent.save().weights,
      };
      agent.dispose();
      return out;
    };
    const [a, b] = [await run(), await run()];
    expect(a.updates.length).toBe(2);
    expect(b).toEqual(a);
  });

  it('save then load (through JSON) gives identical probabilities and actions; no tensor leaks', async () => {
    await loadTfBackend();
    const tensorsBefore = tf.memory().numTensors;
    const env = new MaskedBanditEnv(4);
    const agent = await PpoAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      seed: 4,
    });
    learnPpo(agent, env, { totalSteps: 128 });
    const loaded = await PpoAgent.load(JSON.parse(JSON.stringify(agent.save())));
    const obs = [0, 1, 2, 3, 3, 2, 1, 0];
    const masks = obs.map((c, i) => (i < 4 ? env.mask(c) : undefined));
    expect(loaded.actionProbs(obs, masks)).toEqual(agent.actionProbs(obs, masks));
    expect(loaded.deterministicActions(obs, masks)).toEqual(agent.deterministicActions(obs, masks));
    expect(loaded.values(obs)).toEqual(agent.values(obs));
    [agent, loaded].forEach((a) => a.dispose());
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('a refused load names the bad weight and frees the agent it had built', async () => {
    const env = new MaskedBanditEnv(4);
    const agent = await PpoAgent.create(env.observationSpace, env.actionSpace, {
      ...SMALL,
      seed: 4,
    });
    const tensorsBefore = tf.memory().numTensors;
    const missing = JSON.parse(JSON.stringify(agent.save()));
    missing.weights.pop();
    missing.shapes.pop();
    const critic = JSON.parse(JSON.stringify(agent.save()));
    critic.weights[5] = critic.weights[5].slice(1); // the critic's first bias
    await expect(PpoAgent.load(missing)).rejects.toMatchObject({ field: 'weights' });
    await expect(PpoAgent.load(critic)).rejects.toMatchObject({ field: 'weights (critic)[1]' });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    agent.dispose();
  });

  it('rejects a bad config naming the field and the rule', () => {
    expect(() => ppoConfig({ clipCoef: 0 })).toThrow(LearnerConfigError);
    expect(() => ppoConfig({ nSteps: 8, numMinibatches: 16 })).toThrow(
      /numMinibatches must be <= nSteps/,
    );
    expect(() => ppoConfig({ activation: 'gelu' as 'tanh' })).toThrow(
      /activation must be one of relu, tanh/,
    );
  });
});
