// Greedy rebalancing (policies/placement) as the teacher of one sub-decision: given the moves
// already made in this interval, greedy's next move on the updated placement, found among the
// candidates (or stop when greedy would not move).
import { greedyPolicy, withMoves, type PlacementView } from '../../policies/placement/index.ts';
import type { Candidates } from './features.ts';
import type { MoveTeacher } from './episode.ts';

export function greedyTeacher(paybackIntervals = 1): MoveTeacher {
  const greedy = greedyPolicy({ paybackIntervals });
  return (c: Candidates, _made: number, view: PlacementView) => {
    // The placement after this decision's moves so far: replay them onto the view's map.
    const map = withMoves(view.map, c.applied);
    const next = greedy.decide({ ...view, map, maxMoves: 1 })[0];
    if (!next) return 0;
    const i = c.moves.findIndex((m) => m !== null && m.group === next.group && m.to === next.to);
    return i >= 0 ? i : 0;
  };
}
