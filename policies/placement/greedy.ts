// Greedy rebalancing: take the most loaded shard; of its groups, hottest first, move the first
// one whose move to the least loaded shard lowers the imbalance by more than the move costs.
// Repeat up to view.maxMoves times on the updated loads. The hottest group is tried first
// because it fixes the most imbalance per move (and so per byte moved, for equal state
// sizes); a cooler one is tried only when the hottest would overshoot.
import { shardOf } from './hash.ts';
import { imbalance, imbalanceAfterMove, shardLoads } from './imbalance.ts';
import type { GroupView, Move, PlacementPolicy, PlacementView } from './types.ts';

export interface GreedyOptions {
  /**
   * The gain of a move is counted over this many decision intervals before it is compared with
   * its one-off cost. 1 (the default) is the strict reading: a move must pay for itself in
   * the next interval; larger values trade more migration for balance under slow drift.
   */
  paybackIntervals?: number;
}

function argExtreme(loads: Float64Array, pickMax: boolean): number {
  let best = 0;
  for (let i = 1; i < loads.length; i++) {
    const x = loads[i] as number;
    const b = loads[best] as number;
    if (pickMax ? x > b : x < b) best = i;
  }
  return best;
}

export function greedyPolicy(opts: GreedyOptions = {}): PlacementPolicy {
  const payback = opts.paybackIntervals ?? 1;
  if (!(payback > 0))
    throw new RangeError(`greedyPolicy: paybackIntervals must be > 0, got ${payback}`);
  return {
    name: 'greedy',
    decide(view: PlacementView): Move[] {
      const where = new Map(
        view.groups.map((g) => [g.name, shardOf(view.map, g.name, view.shards)]),
      );
      const loads = shardLoads(view.groups, view.map, view.shards);
      const moves: Move[] = [];
      while (moves.length < view.maxMoves) {
        const hi = argExtreme(loads, true);
        const lo = argExtreme(loads, false);
        if (hi === lo) break;
        const before = imbalance(loads);
        const candidates = view.groups
          .filter((g) => where.get(g.name) === hi && g.load > 0)
          .sort((a, b) => b.load - a.load || (a.name < b.name ? -1 : 1));
        const pick = candidates.find(
          (g: GroupView) =>
            (before - imbalanceAfterMove(loads, hi, lo, g.load)) * payback >
            g.stateBytes * view.moveCostPerByte,
        );
        if (!pick) break;
        loads[hi] = (loads[hi] as number) - pick.load;
        loads[lo] = (loads[lo] as number) + pick.load;
        where.set(pick.name, lo);
        moves.push({ group: pick.name, to: lo });
      }
      return moves;
    },
  };
}
