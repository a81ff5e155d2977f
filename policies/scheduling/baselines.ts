// The baseline scheduling policies. Each ranks the runnable tasks and places them first fit (or
// with the placement policy given); ties always fall back to FIFO order (older job, earlier
// ready, smaller id), so every policy is deterministic.
import { firstFit, type PlacementPolicy } from '../gpu/placement.ts';
import { greedyAssign, type Ranking } from './greedy.ts';
import { ScoredPolicy } from './scored.ts';
import type { Assignment, SchedulingPolicy, TaskView, WorkerView } from './types.ts';

/**
 * First come, first served: job submission order, then readiness. (The score is the tie-break's
 * first key; scoring it settles most comparisons without reaching the tie-break.)
 */
export const fifo = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('fifo', (t) => -t.submittedAt, p);

/** Shortest estimated task first; tasks without an estimate go last. */
export const sjf = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('sjf', (t) => -(t.estimateMs ?? Infinity), p);

/** Shortest remaining job work first (SRPT at the job level). */
export const srpt = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('srpt', (t) => -t.jobRemainingWorkMs, p);

/**
 * SRPT, but the jobs a free worker is already on first (they need no move): a move-aware
 * one-liner for a world where moving to another job costs (the simulator's moveDelayMs), the
 * rule a learned policy there is compared with. Not a registry policy: the live scheduler does
 * not report where workers were (`jobFreeWorkers`), and without it this is SRPT.
 */
export const srptWarmFirst = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy(
    'srpt_warm_first',
    // A warm job scores 1 / (1 + x) in (0, 1], a cold one -1 - x <= -1, for x its remaining
    // work: warm above cold, each by SRPT, at full relative precision (1 + 1 / (1 + x) lost
    // a 0.5 ms difference at x = 1e8 ms, and the longer job ran first).
    (t) => {
      const x = Math.max(0, t.jobRemainingWorkMs);
      return (t.jobFreeWorkers ?? 0) > 0 ? 1 / (1 + x) : -1 - x;
    },
    p,
  );

/** Longest remaining critical path first: unblocks the DAG's longest chain early. */
export const criticalPath = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('critical_path', (t) => t.criticalPathMs, p);

/** Highest priority first. */
export const priority = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('priority', (t) => t.priority, p);

/** After a task of tenant X is assigned, every task of X ranks one running task lower. */
function countAssigned(i: number, r: Ranking, tasks: readonly TaskView[]): void {
  const tenant = (tasks[i] as TaskView).tenant;
  for (let j = 0; j < tasks.length; j++) {
    if ((tasks[j] as TaskView).tenant === tenant) r.primary[j] = (r.primary[j] as number) - 1;
  }
}

/**
 * Fair share across tenants: the tenant with the fewest tasks running goes first (counting the
 * ones this call has already assigned), then the one served least so far.
 */
export class FairSharePolicy implements SchedulingPolicy {
  readonly name = 'fair';
  // Rank arrays reused between calls (see ScoredPolicy); a nested call gets its own.
  private ranking: Ranking = {
    primary: new Float64Array(64),
    secondary: new Float64Array(64),
    onAssign: countAssigned,
  };
  private busy = false;

  constructor(private readonly placement: PlacementPolicy = firstFit) {}

  pick(runnable: readonly TaskView[], free: readonly WorkerView[], _now: number): Assignment[] {
    const n = runnable.length;
    if (n === 0 || free.length === 0) return [];
    if (this.busy) return this.rank(this.fresh(n), runnable, free);
    if (this.ranking.primary.length < n)
      this.ranking = this.fresh(Math.max(n, 2 * this.ranking.primary.length));
    this.busy = true;
    try {
      return this.rank(this.ranking, runnable, free);
    } finally {
      this.busy = false;
    }
  }

  private fresh(n: number): Ranking {
    return {
      primary: new Float64Array(n),
      secondary: new Float64Array(n),
      onAssign: countAssigned,
    };
  }

  private rank(
    r: Ranking,
    runnable: readonly TaskView[],
    free: readonly WorkerView[],
  ): Assignment[] {
    const secondary = r.secondary as Float64Array;
    for (let i = 0; i < runnable.length; i++) {
      const t = runnable[i] as TaskView;
      r.primary[i] = -t.tenantRunning;
      secondary[i] = -t.tenantServedMs;
    }
    return greedyAssign(runnable, free, r, this.placement);
  }
}

export const fair = (p?: PlacementPolicy): SchedulingPolicy => new FairSharePolicy(p);
