import { describe, expect, it } from 'vitest';
import { checkEnv, createRng } from '../envs/core/index.ts';
import {
  PlacementEnv,
  PlacementSim,
  binGroupEvents,
  evaluatePlacementPolicy,
  fixedWorkload,
  zipfDriftWorkload,
  type GroupLoads,
} from '../envs/placement/index.ts';
import { ZipfDrift } from '../envs/workload/index.ts';
import {
  fnv1a32,
  greedyPolicy,
  hashPlacement,
  hashPolicy,
  hashShard,
  imbalance,
  shardLoads,
  shardOf,
  withMoves,
  type GroupView,
  type PlacementView,
} from '../policies/placement/index.ts';
import { PLAIN_NAME_RE } from '../knobs/validate.ts';

const GIB = 1024 ** 3;

function view(
  groups: [string, number][],
  map: Record<string, number>,
  over: Partial<PlacementView> = {},
): PlacementView {
  return {
    shards: 3,
    groups: groups.map(([name, load]): GroupView => ({ name, load, stateBytes: GIB })),
    map,
    maxMoves: 1,
    moveCostPerByte: 0,
    ...over,
  };
}

describe('imbalance (max/mean - 1)', () => {
  it('of a known map: loads [10, 2, 0] give 10/4 - 1 = 1.5', () => {
    const groups = [
      { name: 'a', load: 6 },
      { name: 'b', load: 4 },
      { name: 'c', load: 2 },
    ];
    const loads = shardLoads(groups, { a: 0, b: 0, c: 1 }, 3);
    expect(Array.from(loads)).toEqual([10, 2, 0]);
    expect(imbalance(loads)).toBeCloseTo(1.5, 12);
  });

  it('is 0 when balanced or idle', () => {
    expect(imbalance([5, 5, 5])).toBe(0);
    expect(imbalance([0, 0, 0])).toBe(0);
  });

  it('puts unlisted names on their hash shard', () => {
    const loads = shardLoads([{ name: 'zed', load: 7 }], {}, 4);
    expect(loads[hashShard('zed', 4)]).toBe(7);
  });
});

describe('hash placement (FNV-1a 32)', () => {
  it('matches the published FNV-1a test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('is stable: a name lands on the same shard whatever else is placed', () => {
    const names = Array.from({ length: 50 }, (_, i) => `tenant-${i}`);
    const a = hashPlacement(names, 5);
    const b = hashPlacement([...names].reverse().concat(['other']), 5);
    for (const n of names) expect(b[n]).toBe(a[n]);
    expect(shardOf({}, 'tenant-3', 5)).toBe(a['tenant-3']);
    expect(shardOf({ 'tenant-3': 4 }, 'tenant-3', 5)).toBe(4);
  });

  it('spreads names evenly over the shards', () => {
    for (const shards of [3, 8]) {
      const counts = new Array<number>(shards).fill(0);
      for (let i = 0; i < 3000; i++) counts[hashShard(`tenant-${i}`, shards)]! += 1;
      const expected = 3000 / shards;
      for (const c of counts) expect(Math.abs(c - expected) / expected).toBeLessThan(0.15);
    }
  });

  it('the hash policy moves groups back home and nothing else', () => {
    const home = hashShard('a', 3);
    const away = (home + 1) % 3;
    const v = view(
      [
        ['a', 1],
        ['b', 1],
      ],
      { a: away },
      { maxMoves: 4 },
    );
    expect(hashPolicy().decide(v)).toEqual([{ group: 'a', to: home }]);
    expect(hashPolicy().decide(view([['a', 1]], {}))).toEqual([]);
  });
});

describe("group names that are Object.prototype's members (valid tenant names)", () => {
  const names = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'];
  // A map read from the knob store is parsed JSON: it inherits Object.prototype.
  const parsed = (json = '{}') => JSON.parse(json) as Record<string, number>;

  it('sit on their hash shard unless listed, and on their entry when listed', () => {
    for (const n of names) {
      expect(PLAIN_NAME_RE.test(n)).toBe(true);
      expect(shardOf(parsed(), n, 4)).toBe(hashShard(n, 4));
      expect(shardOf(parsed(`{${JSON.stringify(n)}: 3}`), n, 4)).toBe(3);
    }
  });

  it('count in shard loads, and the hash policy leaves them where they are', () => {
    const loads = shardLoads([{ name: 'toString', load: 5 }], parsed(), 4);
    expect(loads[hashShard('toString', 4)]).toBe(5);
    const v = { ...view([['constructor', 1]], {}), map: parsed() };
    expect(hashPolicy().decide(v)).toEqual([]);
  });

  it('are moved by a move: withMoves defines the entry (assigning __proto__ set none)', () => {
    const next = withMoves(parsed(), [
      { group: '__proto__', to: 2 },
      { group: 'constructor', to: 1 },
    ]);
    expect(shardOf(next, '__proto__', 4)).toBe(2);
    expect(shardOf(next, 'constructor', 4)).toBe(1);
    expect(JSON.parse(JSON.stringify(next))).toEqual(parsed('{"__proto__": 2, "constructor": 1}'));
  });
});

describe('greedy rebalancing', () => {
  it('moves the hottest group of the hottest shard to the coldest', () => {
    const v = view(
      [
        ['a', 6],
        ['b', 4],
        ['c', 2],
      ],
      { a: 0, b: 0, c: 1 },
    );
    expect(greedyPolicy().decide(v)).toEqual([{ group: 'a', to: 2 }]);
  });

  it('skips the hottest group when moving it would overshoot', () => {
    // loads [12, 5, 5]: moving big (10) gives [2, 15, 5], worse; moving small (2) gives [10, 7, 5].
    const v = view(
      [
        ['big', 10],
        ['small', 2],
        ['x', 5],
        ['y', 5],
      ],
      { big: 0, small: 0, x: 1, y: 2 },
    );
    expect(greedyPolicy().decide(v)).toEqual([{ group: 'small', to: 1 }]);
  });

  it('moves only when the gain exceeds the migration cost', () => {
    // The move above lowers imbalance from 12/(22/3) - 1 to 10/(22/3) - 1: a gain of 3/11.
    const groups: [string, number][] = [
      ['big', 10],
      ['small', 2],
      ['x', 5],
      ['y', 5],
    ];
    const map = { big: 0, small: 0, x: 1, y: 2 };
    const gain = 3 / 11;
    expect(
      greedyPolicy().decide(view(groups, map, { moveCostPerByte: (gain * 1.01) / GIB })),
    ).toEqual([]);
    expect(
      greedyPolicy().decide(view(groups, map, { moveCostPerByte: (gain * 0.99) / GIB })),
    ).toHaveLength(1);
    // Counting the gain over 2 intervals pays for a cost the strict reading refuses.
    const twice = greedyPolicy({ paybackIntervals: 2 });
    expect(twice.decide(view(groups, map, { moveCostPerByte: (gain * 1.5) / GIB }))).toHaveLength(
      1,
    );
  });

  it('leaves a balanced placement alone and never exceeds maxMoves', () => {
    expect(
      greedyPolicy().decide(
        view(
          [
            ['a', 3],
            ['b', 3],
            ['c', 3],
          ],
          { a: 0, b: 1, c: 2 },
        ),
      ),
    ).toEqual([]);
    const many = Array.from({ length: 30 }, (_, i): [string, number] => [`g${i}`, 1 + i]);
    const moves = greedyPolicy().decide(
      view(many, Object.fromEntries(many.map(([n]) => [n, 0])), { maxMoves: 4 }),
    );
    expect(moves).toHaveLength(4);
  });
});

describe('Zipf popularity with drift', () => {
  it('is skewed as Zipf says and sums to 1', () => {
    const z = new ZipfDrift({ items: 10, exponent: 1 }, createRng(1));
    const w = Array.from(z.weights()).sort((a, b) => b - a);
    const h10 = Array.from({ length: 10 }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b);
    expect(w.reduce((a, b) => a + b)).toBeCloseTo(1, 12);
    expect(w[0]).toBeCloseTo(1 / h10, 12);
    expect(w[9]).toBeCloseTo(1 / 10 / h10, 12);
  });

  it('samples items in proportion to their weights', () => {
    const z = new ZipfDrift({ items: 5, exponent: 1.2 }, createRng(2));
    const w = z.weights();
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 50_000; i++) counts[z.sample()]! += 1;
    counts.forEach((c, i) => expect(c / 50_000).toBeCloseTo(w[i]!, 2));
  });

  it('drifts: rotation makes the coldest item the hottest; swaps move ranks', () => {
    const z = new ZipfDrift({ items: 6, exponent: 1, rotateEverySteps: 2 }, createRng(3));
    const coldest = [...Array(6).keys()].find((i) => z.rank(i) === 5)!;
    z.step();
    expect(z.rank(coldest)).toBe(5);
    z.step();
    expect(z.rank(coldest)).toBe(0);
    const s = new ZipfDrift({ items: 20, exponent: 1, swapsPerStep: 3 }, createRng(4));
    const before = Array.from({ length: 20 }, (_, i) => s.rank(i));
    for (let t = 0; t < 10; t++) s.step();
    expect(Array.from({ length: 20 }, (_, i) => s.rank(i))).not.toEqual(before);
  });
});

describe('placement workloads', () => {
  it('bins a trace grouped by tenant into per-step loads', () => {
    const loads = binGroupEvents(
      [
        { tMs: 100, group: 'x' },
        { tMs: 600, group: 'y', weight: 3 },
        { tMs: 1200, group: 'x' },
        { tMs: 1900, group: 'x' },
      ],
      1000,
      (g) => (g === 'x' ? 10 : 20),
    );
    expect(loads.names).toEqual(['x', 'y']);
    expect(Array.from(loads.stateBytes)).toEqual([10, 20]);
    expect(loads.loads.map((r) => Array.from(r))).toEqual([
      [1, 3],
      [2, 0],
    ]);
  });

  it('generates the same loads from the same seed and drifting ones over time', () => {
    const w = zipfDriftWorkload({ groups: 8, steps: 40 });
    const a = w.generate(5);
    expect(w.generate(5)).toEqual(a);
    expect(w.generate(6).loads).not.toEqual(a.loads);
    const hottest = (row: Float64Array): number => row.indexOf(Math.max(...row));
    expect(new Set(a.loads.map(hottest)).size).toBeGreaterThan(1);
  });
});

describe('placement simulator and env', () => {
  const small = zipfDriftWorkload({ groups: 10, steps: 60, rotateEverySteps: 15 });
  const makeEnv = (): PlacementEnv =>
    new PlacementEnv({ workload: small, groups: 10, shards: 3, moveCostPerGiB: 0.05 });

  it('passes checkEnv', () => {
    expect(checkEnv(makeEnv, { maxSteps: 100 })).toBeGreaterThan(0);
  });

  it('scores a move on the next step and charges its state size', () => {
    const loads: GroupLoads = {
      names: ['a', 'b', 'c'],
      stateBytes: Float64Array.from([2 * GIB, GIB, GIB]),
      loads: [Float64Array.from([6, 4, 2]), Float64Array.from([6, 4, 2])],
    };
    const sim = new PlacementSim({ shards: 3, maxMovesPerStep: 1, moveCostPerGiB: 0.1 }, loads, {
      a: 0,
      b: 0,
      c: 1,
    });
    const out = sim.step([{ group: 'a', to: 2 }]);
    expect(out.imbalance).toBeCloseTo(6 / 4 - 1, 12);
    expect(out.migrationCost).toBeCloseTo(0.2, 12);
    expect(sim.done).toBe(true);
  });

  it('decodes action 1 + g*K + k as "move group g to shard k" and masks its own shard', () => {
    const env = makeEnv();
    const { obs, info } = env.reset({ seed: 1 });
    const g = 4;
    const from = Math.round(obs[3 + 10 + g]! * 2);
    const to = (from + 1) % 3;
    expect((info['actionMask'] as boolean[])[1 + g * 3 + from]).toBe(false);
    const r = env.step(1 + g * 3 + to);
    expect(r.info['moves']).toBe(1);
    expect(r.obs[3 + 10 + g]).toBeCloseTo(to / 2, 12);
    expect((r.info['actionMask'] as boolean[])[1 + g * 3 + to]).toBe(false);
    expect(env.step(0).info['moves']).toBe(0);
  });

  it('evaluates policies reproducibly; greedy beats hashing under drift', () => {
    const hash = evaluatePlacementPolicy(hashPolicy(), small, 11);
    const greedy = evaluatePlacementPolicy(greedyPolicy(), small, 11);
    expect(evaluatePlacementPolicy(greedyPolicy(), small, 11)).toEqual(greedy);
    expect(hash['moves']).toBe(0);
    expect(greedy['moves']).toBeGreaterThan(0);
    expect(greedy['objective']).toBeLessThan(hash['objective']!);
    expect(greedy['objective']).toBeCloseTo(
      greedy['mean_imbalance']! + greedy['migration_cost']! / greedy['steps']!,
      12,
    );
  });

  it('replays a fixed (trace) workload whatever the seed', () => {
    const w = fixedWorkload('t', small.generate(1));
    expect(evaluatePlacementPolicy(hashPolicy(), w, 1)).toEqual(
      evaluatePlacementPolicy(hashPolicy(), w, 2),
    );
  });
});
