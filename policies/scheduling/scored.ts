// A policy that ranks runnable tasks by a pure score of each task (higher runs first) and places
// them with a placement policy. Most baselines are one line on top of it, and a learned network
// plugs in as the scorer (see `featureScorer`).
import { firstFit, type PlacementPolicy } from '../gpu/placement.ts';
import { TASK_FEATURES, taskFeatures } from './features.ts';
import { asksNothing, fifoBefore, greedyAssign, type Ranking } from './greedy.ts';
import type { Assignment, SchedulingPolicy, TaskView, WorkerView } from './types.ts';

/** Higher first. Must be a pure function of the task and the time. */
export type TaskScorer = (t: TaskView, now: number) => number;

export class ScoredPolicy implements SchedulingPolicy {
  // Scores of the current call, and the ranking holding them, reused between calls (allocating
  // them costs more than scoring a short list); a call made from inside a scorer gets its own.
  private ranking: Ranking = { primary: new Float64Array(64) };
  private busy = false;

  constructor(
    readonly name: string,
    private readonly score: TaskScorer,
    private readonly placement: PlacementPolicy = firstFit,
  ) {}

  pick(runnable: readonly TaskView[], free: readonly WorkerView[], now: number): Assignment[] {
    const n = runnable.length;
    if (n === 0 || free.length === 0) return [];
    if (this.busy) return this.rank({ primary: new Float64Array(n) }, runnable, free, now);
    if (this.ranking.primary.length < n)
      this.ranking = { primary: new Float64Array(Math.max(n, 2 * this.ranking.primary.length)) };
    this.busy = true;
    try {
      return this.rank(this.ranking, runnable, free, now);
    } finally {
      this.busy = false;
    }
  }

  private rank(
    ranking: Ranking,
    runnable: readonly TaskView[],
    free: readonly WorkerView[],
    now: number,
  ): Assignment[] {
    const primary = ranking.primary;
    // Scores, the best task and the count of tasks asking for nothing in one pass, so the
    // assignment loop starts without scanning (`greedyAssign`'s first pick, same order).
    let best = 0;
    let bestScore = 0;
    let zeroDemand = 0;
    for (let i = 0; i < runnable.length; i++) {
      const t = runnable[i] as TaskView;
      const s = this.score(t, now);
      // A NaN would make the order depend on the input order: a scorer bug, so crash loudly.
      if (Number.isNaN(s)) throw new Error(`policy ${this.name}: score of task ${t.id} is NaN`);
      primary[i] = s;
      if (asksNothing(t.demand)) zeroDemand++;
      if (
        i === 0 ||
        s > bestScore ||
        (s === bestScore && fifoBefore(t, runnable[best] as TaskView))
      ) {
        best = i;
        bestScore = s;
      }
    }
    return greedyAssign(runnable, free, ranking, this.placement, best, zeroDemand);
  }
}

/**
 * Adapts a scorer of feature vectors (a network's forward pass) to a `TaskScorer`. The vector
 * is reused between calls: the scorer must not keep it.
 */
export function featureScorer(score: (features: Float64Array) => number): TaskScorer {
  const buf = new Float64Array(TASK_FEATURES);
  return (t, now) => score(taskFeatures(t, now, buf));
}
