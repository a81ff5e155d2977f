// The candidates of one placement decision and their feature rows: every move of a loaded
// group to another shard, plus "stop" (no more moves this interval). Features are ratios to the
// mean shard load and costs in imbalance units, so one scorer serves any traffic volume, group
// count or shard count. Pure: the policy (live or simulated) and training share it.
import {
  imbalance,
  imbalanceAfterMove,
  shardLoads,
  shardOf,
  type Move,
  type PlacementView,
} from '../../policies/placement/index.ts';

export const MOVE_FEATURE_NAMES = [
  'is_stop',
  'imbalance_now',
  'imbalance_delta',
  'move_cost',
  'group_load_rel',
  'from_load_rel',
  'to_load_rel',
  'moves_left_frac',
] as const;

export const MOVE_FEATURES = MOVE_FEATURE_NAMES.length;

/** The candidates of one decision: `moves[i]` is row i (null: stop), rows flat [n, MOVE_FEATURES]. */
export interface Candidates {
  moves: (Move | null)[];
  rows: Float64Array;
  /** The moves this decision already made, in order (the state the candidates start from). */
  applied: readonly Move[];
}

/** Where each group sits and the shard loads, updated as a decision's moves are applied. */
export interface PlacementState {
  shardOfGroup: number[];
  loads: Float64Array;
}

export function stateOf(view: PlacementView): PlacementState {
  return {
    shardOfGroup: view.groups.map((g) => shardOf(view.map, g.name, view.shards)),
    loads: shardLoads(view.groups, view.map, view.shards),
  };
}

/** Applies a move to the state (the view's groups are not touched). */
export function applyMove(view: PlacementView, s: PlacementState, m: Move): void {
  const g = view.groups.findIndex((x) => x.name === m.group);
  const from = s.shardOfGroup[g] as number;
  const load = (view.groups[g] as PlacementView['groups'][number]).load;
  s.loads[from] = (s.loads[from] as number) - load;
  s.loads[m.to] = (s.loads[m.to] as number) + load;
  s.shardOfGroup[g] = m.to;
}

export function candidatesOf(
  view: PlacementView,
  s: PlacementState,
  applied: readonly Move[],
): Candidates {
  const movesMade = applied.length;
  const K = view.shards;
  let total = 0;
  for (const x of s.loads) total += x;
  const mean = total / K;
  const rel = (x: number) => (mean > 0 ? x / mean : 0);
  const now = imbalance(s.loads);
  const left = view.maxMoves > 0 ? (view.maxMoves - movesMade) / view.maxMoves : 0;
  const moves: (Move | null)[] = [null];
  const rows: number[] = [1, now, 0, 0, 0, 0, 0, left];
  view.groups.forEach((g, i) => {
    if (!(g.load > 0)) return; // moving an idle group changes nothing but costs
    const from = s.shardOfGroup[i] as number;
    for (let to = 0; to < K; to++) {
      if (to === from) continue;
      moves.push({ group: g.name, to });
      rows.push(
        0,
        now,
        imbalanceAfterMove(s.loads, from, to, g.load) - now,
        g.stateBytes * view.moveCostPerByte,
        rel(g.load),
        rel(s.loads[from] as number) - 1,
        rel(s.loads[to] as number) - 1,
        left,
      );
    }
  });
  return { moves, rows: Float64Array.from(rows), applied };
}
