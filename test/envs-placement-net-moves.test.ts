// The placement simulator charges a group's net move in a decision, as the live migrator moves
// it (the map before against the map after): A -> B -> A moves nothing, A -> B -> C moves once
// (each hop was charged: the learned policy, which may move a group it already moved, was
// trained on and reported with migration costs that never happen). An invalid move in a
// decision changes nothing.
import { describe, expect, it } from 'vitest';
import { PlacementSim, fixedWorkload } from '../envs/placement/index.ts';

const GIB = 1024 ** 3;

function sim() {
  const loads = {
    names: ['a', 'b', 'c'],
    stateBytes: Float64Array.from([GIB, GIB, GIB]),
    loads: [Float64Array.from([10, 1, 1]), Float64Array.from([10, 1, 1])],
  };
  return new PlacementSim(
    { shards: 3, maxMovesPerStep: 4, moveCostPerGiB: 0.05 },
    fixedWorkload('fixed', loads).generate(0),
    { a: 0, b: 1, c: 2 },
  );
}

describe('placement simulator move accounting', () => {
  it('A -> B -> A in one decision moves nothing', () => {
    const s = sim();
    const out = s.step([
      { group: 'a', to: 1 },
      { group: 'a', to: 0 },
    ]);
    expect(s.placement()['a']).toBe(0);
    expect(out).toMatchObject({ moves: 0, movedBytes: 0, migrationCost: 0 });
  });

  it('A -> B -> C in one decision moves the group once', () => {
    const s = sim();
    const out = s.step([
      { group: 'a', to: 1 },
      { group: 'a', to: 2 },
      { group: 'b', to: 0 },
    ]);
    expect(s.placement()).toMatchObject({ a: 2, b: 0, c: 2 });
    expect(out).toMatchObject({ moves: 2, movedBytes: 2 * GIB });
    expect(out.migrationCost).toBeCloseTo(0.1, 12);
  });

  it('an invalid move changes nothing of its decision', () => {
    const s = sim();
    expect(() =>
      s.step([
        { group: 'a', to: 1 },
        { group: 'nope', to: 0 },
      ]),
    ).toThrow(/unknown group nope/);
    expect(s.placement()).toMatchObject({ a: 0, b: 1, c: 2 });
  });
});
