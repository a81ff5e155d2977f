// The baseline scheduling policies. Each ranks the runnable tasks and places them first fit (or
// with the placement policy given); ties always fall back to FIFO order (older job, earlier
// ready, smaller id), so every policy is deterministic.
import { firstFit, type PlacementPolicy } from '../gpu/placement.ts';
import { greedyAssign, type Ranking } from './greedy.ts';
import { ScoredPolicy } from './scored.ts';
import type { Assignment, SchedulingPolicy, TaskView, WorkerView } from './types.ts';

/** First come, first served: job submission order, then readiness. */
export const fifo = (p?: PlacementPolicy): SchedulingPolicy => new ScoredPolicy('fifo', () => 0, p);

/** Shortest estimated task first; tasks without an estimate go last. */
export const sjf = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('sjf', (t) => -(t.estimateMs ?? Infinity), p);

/** Shortest remaining job work first (SRPT at the job level). */
export const srpt = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('srpt', (t) => -t.jobRemainingWorkMs, p);

/** Longest remaining critical path first: unblocks the DAG's longest chain early. */
export const criticalPath = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('critical_path', (t) => t.criticalPathMs, p);

/** Highest priority first. */
export const priority = (p?: PlacementPolicy): SchedulingPolicy =>
  new ScoredPolicy('priority', (t) => t.priority, p);

/**
 * Fair share across tenants: the tenant with the fewest tasks running goes first (counting the
 * ones this call has already assigned), then the one served least so far.
 */
export class FairSharePolicy implements SchedulingPolicy {
  readonly name = 'fair';
  constructor(private readonly placement: PlacementPolicy = firstFit) {}

  pick(runnable: readonly TaskView[], free: readonly WorkerView[], _now: number): Assignment[] {
    if (runnable.length === 0 || free.length === 0) return [];
    const n = runnable.length;
    const primary = new Float64Array(n);
    const secondary = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t = runnable[i] as TaskView;
      primary[i] = -t.tenantRunning;
      secondary[i] = -t.tenantServedMs;
    }
    const ranking: Ranking = {
      primary,
      secondary,
      onAssign: (i, r) => {
        const tenant = (runnable[i] as TaskView).tenant;
        for (let j = 0; j < n; j++) {
          if ((runnable[j] as TaskView).tenant === tenant)
            r.primary[j] = (r.primary[j] as number) - 1;
        }
      },
    };
    return greedyAssign(runnable, free, ranking, this.placement);
  }
}

export const fair = (p?: PlacementPolicy): SchedulingPolicy => new FairSharePolicy(p);
