import { describe, expect, it } from 'vitest';
import type { KnobObjective } from '../envs/core/index.ts';
import { createRng } from '../envs/core/index.ts';
import type { KnobSpec, KnobValues } from '../knobs/index.ts';
import {
  ArtifactError,
  LearnerConfigError,
  LearnerInputError,
  tune,
  type ObjectiveSpec,
  type Tuner,
  type TunerProposal,
} from '../learners/core/index.ts';
import {
  BayesOpt,
  CrossEntropy,
  GridSearch,
  RandomSearch,
  restoreTuner,
  type TunerConfig,
} from '../learners/tuners/index.ts';

const base = { service: 'scheduler', cost: 'light', safety: { cooldownMs: 0 } } as const;
const float = (name: string, min: number, max: number): KnobSpec => ({
  ...base,
  name,
  type: 'float',
  min,
  max,
  default: min,
  description: name,
});
const int = (name: string, min: number, max: number): KnobSpec => ({
  ...base,
  name,
  type: 'int',
  min,
  max,
  default: min,
  description: name,
});
const enumKnob = (name: string, values: string[]): KnobSpec => ({
  ...base,
  name,
  type: 'enum',
  values,
  default: values[0] as string,
  description: name,
});

const MIN: ObjectiveSpec = { metric: 'loss', direction: 'min' };

function objective(
  id: string,
  knobs: KnobSpec[],
  f: (v: KnobValues, seed: number) => number,
): KnobObjective {
  return { id, knobs, objective: MIN, evaluate: async (v, seed) => ({ loss: f(v, seed) }) };
}

// Branin on its usual domain; three global minima of 0.397887.
const BRANIN_MIN = 0.397887;
const branin = objective('branin', [float('x1', -5, 10), float('x2', 0, 15)], (v) => {
  const x1 = v.x1 as number;
  const x2 = v.x2 as number;
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
});

// A mixed space: a float, an int and an enum; minimum 0 at x = 0.3, n = 7, mode = 'b'.
const MODE_COST: Record<string, number> = { a: 0.5, b: 0, c: 0.3, d: 0.8 };
const mixedKnobs = [float('x', 0, 1), int('n', 0, 20), enumKnob('mode', ['a', 'b', 'c', 'd'])];
const mixedLoss = (v: KnobValues): number =>
  ((v.x as number) - 0.3) ** 2 +
  (((v.n as number) - 7) / 20) ** 2 +
  (MODE_COST[v.mode as string] as number);
const mixed = objective('mixed', mixedKnobs, mixedLoss);

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return ((s[(s.length - 1) >> 1] as number) + (s[s.length >> 1] as number)) / 2;
};

const cfg = (o: KnobObjective, seed: number): TunerConfig => ({
  knobs: o.knobs,
  objective: o.objective,
  seed,
});

describe('Bayesian optimisation', () => {
  it('gets within a few % of the Branin optimum in 30 evaluations and beats random search', async () => {
    const bo: number[] = [];
    const rs: number[] = [];
    for (const seed of [1, 2, 3, 4]) {
      const r = await tune(new BayesOpt(cfg(branin, seed)), branin, 30, seed);
      bo.push(r.trajectory.at(-1) as number);
      // a deterministic objective is fitted as noise-free: no evaluation is spent on repeats
      expect(r.evaluations.filter((e) => e.reason === 'repeat')).toEqual([]);
      rs.push(
        (await tune(new RandomSearch(cfg(branin, seed)), branin, 30, seed)).trajectory.at(
          -1,
        ) as number,
      );
    }
    for (const b of bo) expect(b).toBeLessThan(BRANIN_MIN * 1.05);
    expect(median(bo)).toBeLessThan(median(rs));
  });

  it('finds the optimum of a mixed float/int/enum space, spending nothing on repeats', async () => {
    for (const seed of [1, 3]) {
      const bo = new BayesOpt(cfg(mixed, seed));
      const r = await tune(bo, mixed, 30, seed);
      expect(r.best?.values.mode).toBe('b');
      expect(r.best?.values.n).toBe(7);
      expect(r.best?.value).toBeLessThan(1e-3);
      // deterministic: the fit is noise-free and no evaluation is a repeat
      expect(bo.diagnostics?.noisy).toBe(false);
      expect(bo.diagnostics?.noiseFraction).toBeLessThan(1e-3);
      expect(r.evaluations.filter((e) => e.reason === 'repeat')).toEqual([]);
    }
  });

  it('re-evaluates the incumbent when the objective is noisy', async () => {
    const noisy = objective('noisy', mixedKnobs, (v, seed) => {
      return mixedLoss(v) + createRng(seed).normal(0, 0.15);
    });
    const bo = new BayesOpt(cfg(noisy, 3));
    const r = await tune(bo, noisy, 30, 3);
    // The fit finds the noise (whether the last step repeats depends on whether the last
    // incumbent's own repeats happened to agree).
    expect(bo.diagnostics?.noiseFraction).toBeGreaterThan(0.05);
    const repeats = r.evaluations.filter((e) => e.reason === 'repeat').map((e) => e.index);
    expect(repeats.length).toBeGreaterThan(0);
    // spaced out by more than repeatGap (3) proposals
    for (let i = 1; i < repeats.length; i++) {
      expect((repeats[i] as number) - (repeats[i - 1] as number)).toBeGreaterThan(3);
    }
  });

  it('replays exactly from its seed, and differs with another seed', async () => {
    const a = await tune(new BayesOpt(cfg(branin, 5)), branin, 12, 5);
    const b = await tune(new BayesOpt(cfg(branin, 5)), branin, 12, 5);
    const c = await tune(new BayesOpt(cfg(branin, 6)), branin, 12, 5);
    expect(b.evaluations).toEqual(a.evaluations);
    expect(c.evaluations.map((e) => e.values)).not.toEqual(a.evaluations.map((e) => e.values));
  });
});

describe('Bayesian optimisation, edge settings', () => {
  it('proposes on local steps with localCandidates 0 (random candidates stand in)', async () => {
    const bo = new BayesOpt({ knobs: branin.knobs, objective: MIN, seed: 1, localCandidates: 0 });
    // 5 initial points, then every other model step is local (localEvery 2).
    for (let i = 0; i < 10; i++) {
      const p = await bo.propose();
      bo.observe({
        values: p.values,
        value: (await branin.evaluate(p.values, 0))['loss'] as number,
        seed: 0,
      });
    }
    expect(bo.best()?.value).toBeLessThan(20);
  });

  it('finds the best of outputs whose squares overflow (a loss near 1e160)', async () => {
    const knobs = [float('x', 0, 1)];
    const bo = new BayesOpt({ knobs, objective: MIN, seed: 1 });
    const seen: number[] = [];
    for (let i = 0; i < 15; i++) {
      const p = await bo.propose();
      const value = 1e160 * (1 + ((p.values['x'] as number) - 0.3) ** 2);
      seen.push(value);
      bo.observe({ values: p.values, value, seed: 0 });
    }
    expect(bo.best()?.value).toBe(Math.min(...seen));
  });
});

describe('baselines', () => {
  it('CEM finds the optimum of an easy function', async () => {
    const knobs = [float('a', -1, 1), float('b', -1, 1), float('c', -1, 1)];
    const sphere = objective('sphere', knobs, (v) =>
      ['a', 'b', 'c'].reduce((s, k, i) => s + ((v[k] as number) - 0.1 * (i + 1)) ** 2, 0),
    );
    const cem = new CrossEntropy(cfg(sphere, 1));
    const r = await tune(cem, sphere, 240, 1);
    // random search's expected best at this budget is about 0.04 (nearest of 240 points)
    expect(r.best?.value).toBeLessThan(5e-3);
    expect(cem.distribution.generations).toBe(15);
    expect(Math.max(...cem.distribution.std)).toBeLessThan(0.05);
    // the sampling mean sits on the optimum (0.1, 0.2, 0.3), i.e. the cube point 0.55, 0.6, 0.65
    cem.distribution.mean.forEach((m, i) =>
      expect(Math.abs(m - (0.55 + 0.05 * i))).toBeLessThan(0.02),
    );
  });

  it('grid search finds an optimum on the grid and stops when exhausted', async () => {
    const knobs = [float('x', 0, 1), enumKnob('mode', ['a', 'b', 'c'])];
    const easy = objective(
      'easy',
      knobs,
      (v) => ((v.x as number) - 0.75) ** 2 + (v.mode === 'c' ? 0 : 1),
    );
    const grid = new GridSearch({ ...cfg(easy, 1), pointsPerNumeric: 5 });
    expect(grid.size).toBe(15);
    const r = await tune(grid, easy, 100, 1);
    expect(r.exhausted).toBe(true);
    expect(r.evaluations).toHaveLength(15);
    expect(r.best).toEqual({ values: { x: 0.75, mode: 'c' }, value: 0, evaluations: 1 });
    await expect(grid.propose()).rejects.toThrow(/nothing left/);
  });

  it('random search beats nothing but replays from its seed', async () => {
    const a = await tune(new RandomSearch(cfg(mixed, 9)), mixed, 10, 1);
    const b = await tune(new RandomSearch(cfg(mixed, 9)), mixed, 10, 1);
    expect(b.trajectory).toEqual(a.trajectory);
    for (let i = 1; i < a.trajectory.length; i++) {
      expect(a.trajectory[i]).toBeLessThanOrEqual(a.trajectory[i - 1] as number);
    }
  });
});

describe('save and load', () => {
  const makers: Array<[string, (seed: number) => Tuner]> = [
    ['random', (seed) => new RandomSearch(cfg(mixed, seed))],
    ['grid', (seed) => new GridSearch({ ...cfg(mixed, seed), pointsPerNumeric: 4 })],
    ['cem', (seed) => new CrossEntropy({ ...cfg(mixed, seed), populationSize: 6 })],
    ['bayesopt', (seed) => new BayesOpt({ ...cfg(mixed, seed), initialPoints: 4 })],
  ];

  async function step(t: Tuner): Promise<TunerProposal> {
    const p = await t.propose();
    t.observe({ values: p.values, value: mixedLoss(p.values), seed: 0 });
    return p;
  }

  for (const [name, make] of makers) {
    it(`${name}: a saved then loaded tuner proposes what the original would`, async () => {
      const original = make(11);
      for (let i = 0; i < 9; i++) await step(original);
      const artifact = JSON.parse(JSON.stringify(await original.save()));
      const restored = make(999); // a different seed: load must replace the config too
      await restored.load(artifact);
      const rebuilt = await restoreTuner(JSON.parse(JSON.stringify(artifact)));
      expect(rebuilt.kind).toBe(original.kind);
      for (let i = 0; i < 4; i++) {
        const want = await step(original);
        expect(await step(restored)).toEqual(want);
        expect(await step(rebuilt)).toEqual(want);
      }
      expect(restored.best()).toEqual(original.best());
    });
  }

  // Each artifact comes from a tuner with another seed and its step moved, one bad field
  // planted: a refused load must take none of its config, step or history.
  interface Art {
    config: Record<string, unknown>;
    state: { step: number; history: unknown[]; extra: Record<string, unknown> };
  }
  const make = Object.fromEntries(makers);
  const refusals: Array<[string, (a: Art) => void, string]> = [
    ...makers.map(([name]): [string, (a: Art) => void, string] => [
      name,
      (a) => a.state.history.push({ values: { x: 5, n: 7, mode: 'b' }, value: 1, seed: 0 }),
      'history[5].values.x',
    ]),
    ['bayesopt', (a) => (a.state.extra.lastHyper = {}), 'extra.lastHyper.lengthScales'],
    ...(
      [
        [{ lengthScales: [0.3, -1, 1] }, 'extra.lastHyper.lengthScales'],
        [{ lengthScales: [0.3, 0, 1] }, 'extra.lastHyper.lengthScales'],
        [{ lengthScales: [0.3, 1] }, 'extra.lastHyper.lengthScales'],
        [{ signalVariance: -1 }, 'extra.lastHyper.signalVariance'],
        [{ signalVariance: 'x' }, 'extra.lastHyper.signalVariance'],
        [{ noiseVariance: 0 }, 'extra.lastHyper.noiseVariance'],
        [{ noiseVariance: null }, 'extra.lastHyper.noiseVariance'],
      ] as Array<[Record<string, unknown>, string]>
    ).map(([patch, field]): [string, (a: Art) => void, string] => [
      'bayesopt',
      (a) => {
        // A well-formed warm start with one field broken (the artifact has one after 5 steps).
        const h = a.state.extra.lastHyper as Record<string, unknown>;
        expect(h).toMatchObject({ signalVariance: expect.any(Number) });
        Object.assign(h, patch);
      },
      field,
    ]),
    ['grid', (a) => (a.config.maxPoints = 2), 'maxPoints'],
  ];
  for (const [name, plant, field] of refusals) {
    it(`${name}: a load refused for ${field} leaves the tuner as it was`, async () => {
      const build = make[name] as (seed: number) => Tuner;
      const [tuner, twin, other] = [build(11), build(11), build(12)];
      for (let i = 0; i < 5; i++) for (const t of [tuner, twin, other]) await step(t);
      const bad = JSON.parse(JSON.stringify(await other.save())) as Art;
      bad.state.step = 2;
      plant(bad);
      await expect(tuner.load(bad as never)).rejects.toMatchObject({ field });
      for (let i = 0; i < 4; i++) expect(await step(tuner)).toEqual(await step(twin));
      expect(tuner.best()).toEqual(twin.best());
    });
  }

  it('refuses an artifact of another kind or version', async () => {
    const art = await new RandomSearch(cfg(mixed, 1)).save();
    const cem = new CrossEntropy(cfg(mixed, 1));
    await expect(cem.load(art)).rejects.toThrow(ArtifactError);
    await expect(new RandomSearch(cfg(mixed, 1)).load({ ...art, version: 2 })).rejects.toThrow(
      /version/,
    );
    await expect(restoreTuner({ ...art, kind: 'tuner.nope' })).rejects.toThrow(ArtifactError);
  });
});

describe('bad input', () => {
  it('names the field of a bad config', () => {
    const bad = (f: () => unknown, field: string): void => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(LearnerConfigError);
        expect((e as LearnerConfigError).field).toBe(field);
      }
    };
    bad(() => new BayesOpt({ ...cfg(mixed, 1), xi: -1 }), 'xi');
    bad(() => new CrossEntropy({ ...cfg(mixed, 1), eliteFraction: 0 }), 'eliteFraction');
    bad(() => new RandomSearch({ ...cfg(mixed, 1), knobs: [] }), 'knobs');
    bad(() => new RandomSearch({ ...cfg(mixed, 1), seed: 0.5 }), 'seed');
    const many = Array.from({ length: 8 }, (_, i) => float(`k${i}`, 0, 1));
    bad(() => new GridSearch({ knobs: many, objective: MIN, seed: 1 }), 'maxPoints');
    // A string 'false' is truthy: it would shuffle while the config reads as unshuffled.
    bad(() => new GridSearch({ ...cfg(mixed, 1), shuffle: 'false' as never }), 'shuffle');
  });

  it('keeps a default when a config field is explicitly undefined', () => {
    const knobs = [float('x', 0, 1)];
    const grid = new GridSearch({ knobs, objective: MIN, seed: 1, pointsPerNumeric: undefined });
    expect(grid.size).toBe(5);
  });

  it('refuses outcomes outside the knob domain or without the metric', () => {
    const t = new RandomSearch(cfg(mixed, 1));
    expect(() => t.observe({ values: { x: 2, n: 7, mode: 'b' }, value: 1, seed: 0 })).toThrow(
      LearnerInputError,
    );
    expect(() => t.observe({ values: { x: 0.5, n: 7, mode: 'b' }, metrics: {}, seed: 0 })).toThrow(
      /metrics.loss/,
    );
  });

  it('checks the tune budget and that tuner and objective agree', async () => {
    const t = new RandomSearch(cfg(mixed, 1));
    await expect(tune(t, mixed, 0, 1)).rejects.toThrow(/budget/);
    const maxed = new RandomSearch({
      ...cfg(mixed, 1),
      objective: { metric: 'loss', direction: 'max' },
    });
    await expect(tune(maxed, mixed, 5, 1)).rejects.toThrow(LearnerConfigError);
  });

  it('reports progress once per evaluation', async () => {
    const seen: number[] = [];
    await tune(new RandomSearch(cfg(mixed, 1)), mixed, 7, 1, {
      onProgress: (e, budget) => seen.push(e.index + budget),
    });
    expect(seen).toEqual([7, 8, 9, 10, 11, 12, 13]);
  });
});
