import { describe, expect, it } from 'vitest';
import { createRng, type Rng } from '../envs/core/index.ts';
import {
  LearnerConfigError,
  LearnerInputError,
  type Bandit,
  type BanditProposal,
} from '../learners/core/index.ts';
import {
  LinUcb,
  ThompsonSampling,
  argmaxRandomTie,
  Ucb1,
  restoreBandit,
  sampleBeta,
  sampleGamma,
} from '../learners/bandits/index.ts';

const ARMS = ['fifo', 'sjf', 'fair', 'priority'];

/** Plays `steps` rounds; returns the arm chosen each round. */
async function play(
  bandit: Bandit,
  steps: number,
  reward: (arm: number, rng: Rng, features?: number[]) => number,
  seed: number,
  context?: (rng: Rng) => number[],
): Promise<number[]> {
  const env = createRng(seed);
  const chosen: number[] = [];
  for (let t = 0; t < steps; t++) {
    const features = context?.(env);
    const { arm } = await bandit.propose(features ? { features } : {});
    bandit.observe({ arm, reward: reward(arm, env, features), ...(features ? { features } : {}) });
    chosen.push(arm);
  }
  return chosen;
}

const share = (arms: number[], arm: number): number =>
  arms.filter((a) => a === arm).length / arms.length;

// Bernoulli arms; arm 2 is best.
const P = [0.3, 0.5, 0.7, 0.4];
const bernoulli = (arm: number, rng: Rng): number => (rng.next() < (P[arm] as number) ? 1 : 0);
// Gaussian arms on another scale; arm 1 is best.
const MU = [10, 14, 12, 11];
const gaussian = (arm: number, rng: Rng): number => rng.normal(MU[arm] as number, 3);

describe('context-free bandits', () => {
  it('UCB1 concentrates on the best arm', async () => {
    const chosen = await play(new Ucb1({ arms: ARMS, seed: 1 }), 2000, bernoulli, 1);
    expect(share(chosen.slice(-500), 2)).toBeGreaterThan(0.8);
  });

  it('Thompson sampling (beta) concentrates on the best arm', async () => {
    const ts = new ThompsonSampling({ arms: ARMS, seed: 1, model: 'beta' });
    const chosen = await play(ts, 1000, bernoulli, 2);
    expect(share(chosen.slice(-300), 2)).toBeGreaterThan(0.9);
  });

  it('Thompson sampling (normal-gamma) concentrates on the best arm of any reward scale', async () => {
    const ts = new ThompsonSampling({ arms: ARMS, seed: 1, model: 'normal' });
    const chosen = await play(ts, 600, gaussian, 3);
    expect(share(chosen.slice(-200), 1)).toBeGreaterThan(0.9);
    const { means } = ts.statistics;
    expect(means[1]).toBeCloseTo(14, 0);
  });

  it('Thompson sampling beats UCB1 on cumulative regret here, both sublinear', async () => {
    const regret = (arms: number[]): number =>
      arms.reduce((s, a) => s + (0.7 - (P[a] as number)), 0);
    const ucb = await play(new Ucb1({ arms: ARMS, seed: 4 }), 2000, bernoulli, 4);
    const ts = await play(
      new ThompsonSampling({ arms: ARMS, seed: 4, model: 'beta' }),
      2000,
      bernoulli,
      4,
    );
    for (const arms of [ucb, ts]) {
      // the second half accrues much less regret than the first: the regret curve flattens
      expect(regret(arms.slice(1000))).toBeLessThan(0.6 * regret(arms.slice(0, 1000)));
    }
    expect(regret(ts)).toBeLessThan(regret(ucb));
  });
});

describe('LinUCB', () => {
  // Three policies whose reward depends on workload features (e.g. load and skew): each arm
  // is best in part of the feature space.
  const THETA = [
    [0.5, 0.4, -0.2],
    [0.2, -0.3, 0.6],
    [0.6, -0.2, -0.4],
  ];
  const mean = (arm: number, f: number[]): number =>
    (THETA[arm] as number[]).reduce((s, w, i) => s + w * (f[i] as number), 0);
  const best = (f: number[]): number =>
    [0, 1, 2].reduce((b, a) => (mean(a, f) > mean(b, f) ? a : b));
  const features = (rng: Rng): number[] => [1, rng.uniform(-1, 1), rng.uniform(-1, 1)];

  it('finds the best arm of a stationary contextual problem, with sublinear regret', async () => {
    const bandit = new LinUcb({
      arms: ['fifo', 'sjf', 'fair'],
      dims: 3,
      intercept: false,
      seed: 1,
      alpha: 0.5,
    });
    const env = createRng(7);
    const regret: number[] = [];
    const correct: boolean[] = [];
    for (let t = 0; t < 1500; t++) {
      const f = features(env);
      const { arm } = await bandit.propose({ features: f });
      bandit.observe({ arm, reward: mean(arm, f) + env.normal(0, 0.1), features: f });
      regret.push(mean(best(f), f) - mean(arm, f));
      correct.push(arm === best(f));
    }
    const sum = (v: number[]): number => v.reduce((s, x) => s + x, 0);
    expect(sum(regret.slice(1000))).toBeLessThan(0.25 * sum(regret.slice(0, 500)));
    expect(correct.slice(-300).filter(Boolean).length / 300).toBeGreaterThan(0.9);
    // the weights it learned are close to the truth
    bandit
      .weights()
      .forEach((w, a) =>
        w.forEach((v, i) =>
          expect(Math.abs(v - ((THETA[a] as number[])[i] as number))).toBeLessThan(0.1),
        ),
      );
  });

  it('needs a context of the configured length', async () => {
    const bandit = new LinUcb({ arms: ARMS, dims: 2, seed: 1 });
    await expect(bandit.propose({})).rejects.toThrow(LearnerInputError);
    await expect(bandit.propose({ features: [1, 2, 3] })).rejects.toThrow(/2 finite numbers/);
    expect(() => bandit.observe({ arm: 0, reward: 1, features: [Number.NaN, 1] })).toThrow(
      LearnerInputError,
    );
  });
});

describe('bandit save, load and seeding', () => {
  const makers: Array<[string, (seed: number) => Bandit, boolean]> = [
    ['ucb1', (seed) => new Ucb1({ arms: ARMS, seed }), false],
    ['thompson beta', (seed) => new ThompsonSampling({ arms: ARMS, seed, model: 'beta' }), false],
    ['thompson normal', (seed) => new ThompsonSampling({ arms: ARMS, seed }), false],
    ['linucb', (seed) => new LinUcb({ arms: ARMS, dims: 2, seed }), true],
  ];

  for (const [name, make, contextual] of makers) {
    const ctx = contextual ? (rng: Rng) => [rng.next(), rng.next()] : undefined;
    const reward = (arm: number, rng: Rng, f?: number[]): number =>
      Math.min(1, Math.max(0, (P[arm] as number) + (f?.[0] ?? 0) * 0.2 + rng.normal(0, 0.1)));

    it(`${name}: a saved then loaded bandit proposes what the original would`, async () => {
      const original = make(5);
      await play(original, 40, reward, 1, ctx);
      const artifact = JSON.parse(JSON.stringify(await original.save()));
      const restored = make(77); // another seed: load replaces the config as well
      await restored.load(artifact);
      const next = async (b: Bandit): Promise<BanditProposal[]> => {
        const env = createRng(9);
        const out: BanditProposal[] = [];
        for (let t = 0; t < 20; t++) {
          const features = ctx?.(env);
          const p = await b.propose(features ? { features } : {});
          b.observe({
            arm: p.arm,
            reward: reward(p.arm, env, features),
            ...(features ? { features } : {}),
          });
          out.push(p);
        }
        return out;
      };
      const rebuilt = await restoreBandit(JSON.parse(JSON.stringify(artifact)));
      const want = await next(original);
      expect(await next(restored)).toEqual(want);
      expect(await next(rebuilt)).toEqual(want);
    });

    it(`${name}: same seed, same run; another seed, another run`, async () => {
      const a = await play(make(3), 60, reward, 2, ctx);
      const b = await play(make(3), 60, reward, 2, ctx);
      const c = await play(make(4), 60, reward, 2, ctx);
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
    });
  }

  // Each artifact comes from a bandit with another seed and its step moved, one bad field
  // planted: a refused load must take none of its config, step or statistics.
  const setA =
    (arm: number, flat: number[]) =>
    (s: Record<string, unknown>): void => {
      (s.a as number[][])[arm] = flat;
    };
  const refusals: Array<[string, number, (stats: Record<string, unknown>) => void, string]> = [
    ['ucb1', 0, (s) => (s.m2 = [0]), 'stats.m2'],
    ['thompson normal', 2, (s) => (s.means = [0, 0, 0, Number.MAX_VALUE * 2]), 'stats.means'],
    ['linucb', 3, (s) => (s.b = [[0, 0, 0]]), 'stats.b'],
    // A negative sum of squares makes the normal posterior's rate negative (NaN draws); a
    // beta-model mean outside [0, 1] makes a Beta parameter negative (NaN draws).
    ['ucb1', 0, (s) => (s.m2 = [0, 0, -0.5, 0]), 'stats.m2'],
    ['thompson normal', 2, (s) => (s.m2 = [0, -1, 0, 0]), 'stats.m2'],
    ['thompson beta', 1, (s) => (s.means = [0.5, 1.5, 0, 0]), 'stats.means'],
    ['thompson beta', 1, (s) => (s.means = [0.5, -0.1, 0, 0]), 'stats.means'],
    // Each choice solves with A_a's Cholesky factor: refuse an A_a that has none.
    ['linucb', 3, setA(1, [-1, 0, 0, 0, 1, 0, 0, 0, 1]), 'stats.a[1]'], // not positive definite
    ['linucb', 3, setA(2, [1, 0, 0, 0.5, 1, 0, 0, 0, 1]), 'stats.a[2]'], // not symmetric
  ];
  for (const [name, at, plant, field] of refusals) {
    const make = (makers[at] as (typeof makers)[number])[1];
    const ctx = name === 'linucb' ? (rng: Rng) => [rng.next(), rng.next()] : undefined;
    const reward = (arm: number, rng: Rng): number =>
      Math.min(1, Math.max(0, (P[arm] as number) + rng.normal(0, 0.1)));
    it(`${name}: a load refused for ${field} leaves the bandit as it was`, async () => {
      const [bandit, twin, other] = [make(5), make(5), make(6)];
      for (const b of [bandit, twin, other]) await play(b, 30, reward, 1, ctx);
      const bad = JSON.parse(JSON.stringify(await other.save()));
      bad.state.step = 99;
      plant(bad.state.stats);
      await expect(bandit.load(bad)).rejects.toMatchObject({ name: 'ArtifactError', field });
      expect(await play(bandit, 20, reward, 2, ctx)).toEqual(await play(twin, 20, reward, 2, ctx));
    });
  }

  it('argmaxRandomTie throws on a NaN score instead of quietly preferring arm 0', () => {
    const rng = createRng(1);
    expect(() => argmaxRandomTie([Number.NaN, Number.NaN], rng)).toThrow(/arm 0 is NaN/);
    expect(() => argmaxRandomTie([0.2, Number.NaN, 0.1], rng)).toThrow(/arm 1 is NaN/);
    const picks = new Set(
      Array.from({ length: 40 }, () => argmaxRandomTie([-Infinity, -Infinity], rng)),
    );
    expect(picks).toEqual(new Set([0, 1]));
  });

  it('refuses bad configs and outcomes, naming the field', () => {
    const field = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof LearnerConfigError || e instanceof LearnerInputError
          ? e.field
          : 'other';
      }
      return undefined;
    };
    expect(field(() => new Ucb1({ arms: [], seed: 1 }))).toBe('arms');
    expect(field(() => new Ucb1({ arms: ['a', 'a'], seed: 1 }))).toBe('arms');
    expect(field(() => new Ucb1({ arms: ARMS, seed: 1, exploration: -1 }))).toBe('exploration');
    expect(field(() => new LinUcb({ arms: ARMS, seed: 1, dims: 0 }))).toBe('dims');
    const ts = new ThompsonSampling({ arms: ARMS, seed: 1, model: 'beta' });
    expect(field(() => ts.observe({ arm: 9, reward: 1 }))).toBe('arm');
    expect(field(() => ts.observe({ arm: 0, reward: 2 }))).toBe('reward');
  });
});

describe('posterior samplers', () => {
  it('draw Gamma and Beta with the right moments', () => {
    const rng = createRng(1);
    const n = 20000;
    for (const [shape, rate] of [
      [0.5, 1],
      [3, 2],
    ] as const) {
      const xs = Array.from({ length: n }, () => sampleGamma(rng, shape, rate));
      const m = xs.reduce((s, x) => s + x, 0) / n;
      const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / n;
      expect(m).toBeCloseTo(shape / rate, 1);
      expect(v).toBeCloseTo(shape / rate ** 2, 1);
    }
    const bs = Array.from({ length: n }, () => sampleBeta(rng, 2, 5));
    expect(bs.reduce((s, x) => s + x, 0) / n).toBeCloseTo(2 / 7, 2);
  });

  it('draws Beta with tiny shapes without NaN, and Thompson with a tiny prior proposes', async () => {
    const rng = createRng(2);
    const n = 20000;
    // Beta(0.001, 0.003): nearly all mass at 0 or 1, 1 with probability a / (a + b) = 0.25.
    const bs = Array.from({ length: n }, () => sampleBeta(rng, 0.001, 0.003));
    expect(bs.every((x) => x >= 0 && x <= 1)).toBe(true);
    expect(bs.reduce((s, x) => s + x, 0) / n).toBeCloseTo(0.25, 1);
    // Before, both Gamma draws underflowed to 0 together and the draw was 0 / 0: the arm's
    // NaN score made propose() throw for most seeds.
    for (let seed = 1; seed <= 50; seed++) {
      const ts = new ThompsonSampling({
        arms: ARMS,
        seed,
        model: 'beta',
        betaPrior: { alpha: 0.001, beta: 0.001 },
      });
      const chosen = await play(ts, 5, bernoulli, seed);
      expect(chosen).toHaveLength(5);
    }
  });
});
