// Loads of deep-learner artifacts: a refused one names the field and leaks no tensors, and an
// accepted one resumes the training counters the schedules read.
import { describe, expect, it } from 'vitest';
import { DqnAgent, learnDqn, type DqnConfig } from '../learners/dqn/index.ts';
import { PpoAgent, learnPpo, type PpoConfig } from '../learners/ppo/index.ts';
import { ArtifactError, Mlp, loadTfBackend, spaceFromJson, tf } from '../learners/tf/index.ts';
import { MaskedBanditEnv } from '../learners/tf/sanity-envs.ts';

const DQN: Partial<DqnConfig> = {
  hiddenSizes: [16],
  batchSize: 8,
  bufferSize: 500,
  learningStarts: 20,
  explorationSteps: 200,
  targetUpdateInterval: 7,
  seed: 5,
};
const PPO: Partial<PpoConfig> = { hiddenSizes: [16], nSteps: 32, numMinibatches: 2, seed: 5 };

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('spaceFromJson', () => {
  it('checks the sizes of every kind of space, naming the field and the rule', () => {
    const bad: Array<[unknown, string, RegExp]> = [
      [{ kind: 'discrete' }, 'x.n', /x\.n must be a positive integer, got undefined/],
      [{ kind: 'masked_discrete', n: 0 }, 'x.n', /positive integer/],
      [{ kind: 'discrete', n: 2.5 }, 'x.n', /positive integer/],
      [{ kind: 'multi_discrete', nvec: [] }, 'x.nvec', /non-empty list of positive integers/],
      [{ kind: 'multi_discrete', nvec: [2, -1] }, 'x.nvec', /positive integers/],
      [{ kind: 'box', low: null, high: null }, 'x.shape', /list of positive integers/],
      [{ kind: 'box', shape: [2, 0], low: null, high: null }, 'x.shape', /positive integers/],
      [{ kind: 'box', shape: [2], low: 'a', high: null }, 'x.low', /number or null/],
      [{ kind: 'box', shape: [2], low: 1, high: 0 }, 'x.high', />= low/],
    ];
    for (const [json, field, message] of bad) {
      let err: unknown;
      try {
        spaceFromJson(json as never, 'x');
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(json)).toBeInstanceOf(ArtifactError);
      expect(err).toMatchObject({ field });
      expect((err as Error).message).toMatch(message);
    }
    expect(spaceFromJson({ kind: 'box', shape: [2, 3], low: null, high: 1 }, 'x')).toEqual({
      kind: 'box',
      shape: [2, 3],
      low: -Infinity,
      high: 1,
    });
    expect(spaceFromJson({ kind: 'multi_discrete', nvec: [2, 3] }, 'x')).toEqual({
      kind: 'multi_discrete',
      nvec: [2, 3],
    });
  });
});

describe('refused deep-learner loads', () => {
  const plants: Array<[string, (a: Json) => void, string]> = [
    ['action n missing', (a) => delete a.spaces.action.n, 'spaces.action.n'],
    ['action n not an integer', (a) => (a.spaces.action.n = 'four'), 'spaces.action.n'],
    ['observation n zero', (a) => (a.spaces.observation.n = 0), 'spaces.observation.n'],
    [
      'observation shape missing',
      (a) => (a.spaces.observation = { kind: 'box', low: null, high: null }),
      'spaces.observation.shape',
    ],
    ['envSteps negative', (a) => (a.meta.envSteps = -1), 'meta.envSteps'],
    ['envSteps not an integer', (a) => (a.meta.envSteps = 2.5), 'meta.envSteps'],
  ];
  const agents: Array<[string, () => Promise<{ save(): unknown; dispose(): void }>, unknown]> = [
    ['dqn', async () => DqnAgent.create(...spacesOf(), DQN), DqnAgent],
    ['ppo', async () => PpoAgent.create(...spacesOf(), PPO), PpoAgent],
  ];
  function spacesOf(): [MaskedBanditEnv['observationSpace'], MaskedBanditEnv['actionSpace']] {
    const env = new MaskedBanditEnv(4);
    return [env.observationSpace, env.actionSpace];
  }
  for (const [name, make, cls] of agents) {
    for (const [what, plant, field] of plants) {
      it(`${name}: ${what} refuses the load naming ${field}, leaking no tensor`, async () => {
        await loadTfBackend();
        const agent = await make();
        const art = clone(agent.save()) as Json;
        plant(art);
        const before = tf.memory().numTensors;
        const load = (cls as { load(a: unknown): Promise<unknown> }).load(art);
        await expect(load).rejects.toThrow(ArtifactError);
        await expect(load).rejects.toMatchObject({ field });
        expect(tf.memory().numTensors).toBe(before);
        agent.dispose();
      });
    }
  }
  it('dqn: gradientSteps and ppo: updates are checked too', async () => {
    const dqn = await DqnAgent.create(...spacesOf(), DQN);
    const ppo = await PpoAgent.create(...spacesOf(), PPO);
    const d = clone(dqn.save()) as Json;
    const p = clone(ppo.save()) as Json;
    d.meta.gradientSteps = null;
    p.meta.updates = '3';
    const before = tf.memory().numTensors;
    await expect(DqnAgent.load(d)).rejects.toMatchObject({ field: 'meta.gradientSteps' });
    await expect(PpoAgent.load(p)).rejects.toMatchObject({ field: 'meta.updates' });
    expect(tf.memory().numTensors).toBe(before);
    [dqn, ppo].forEach((a) => a.dispose());
  });
});

describe('Mlp', () => {
  it('frees the layers it made when a later one cannot be built', async () => {
    await loadTfBackend();
    const before = tf.memory().numTensors;
    const spec = { inputSize: 3, hiddenSizes: [4], activation: 'relu', outputGain: 1 } as const;
    expect(() => new Mlp({ ...spec, outputSize: Number.NaN }, 1)).toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('resumed deep learners', () => {
  it('dqn: a loaded agent keeps its counters, so epsilon and the schedules resume', async () => {
    const env = new MaskedBanditEnv(4);
    const agent = await DqnAgent.create(env.observationSpace, env.actionSpace, DQN);
    learnDqn(agent, env, { totalSteps: 120 });
    expect(agent.gradientSteps).toBe(100);
    // A caller's meta cannot overwrite the counters that load reads back.
    const art = clone(agent.save({ envSteps: 3, note: 'x' }));
    expect(art.meta).toMatchObject({ envSteps: 120, gradientSteps: 100, note: 'x' });
    const loaded = await DqnAgent.load(art);
    expect([loaded.envSteps, loaded.gradientSteps]).toEqual([120, 100]);
    expect(loaded.epsilon(loaded.envSteps)).toBe(agent.epsilon(agent.envSteps));
    expect(loaded.epsilon(loaded.envSteps)).toBeLessThan(1);
    // With a new, empty replay buffer it first refills learningStarts transitions (as a fresh
    // run would before its first gradient step), then learns on the saved schedule.
    const refill = learnDqn(loaded, env, { totalSteps: 20 });
    expect([loaded.envSteps, loaded.gradientSteps]).toEqual([140, 100]);
    learnDqn(loaded, env, { totalSteps: 1, replay: refill.replay });
    expect([loaded.envSteps, loaded.gradientSteps]).toEqual([141, 101]);
    [agent, loaded].forEach((a) => a.dispose());
  });

  it('ppo: a loaded agent keeps its env-step and update counters', async () => {
    const env = new MaskedBanditEnv(4);
    const agent = await PpoAgent.create(env.observationSpace, env.actionSpace, PPO);
    learnPpo(agent, env, { totalSteps: 64 });
    const loaded = await PpoAgent.load(clone(agent.save({ updates: 0 })));
    expect([loaded.envSteps, loaded.updates]).toEqual([64, 2]);
    const seen: number[] = [];
    learnPpo(loaded, env, { totalSteps: 32, onUpdate: (_s, u) => seen.push(u) });
    expect(seen).toEqual([3]);
    [agent, loaded].forEach((a) => a.dispose());
  });
});
