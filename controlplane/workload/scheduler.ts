// The live scheduler workload: jobs submitted at a Poisson rate, of tenants with Zipf-skewed
// shares, whose run times are heavy-tailed (log-normal) and whose estimates are the run time
// times a log-normal error, as submitters' estimates are. The handler sleeps the run time, so
// dispatch order (the scheduler.policy knob) decides the completion times the loop tunes.
// It submits through any submitter: one shard's client, or the sharded router (npm start),
// which sends each tenant's tasks to its shard, so the tenants' skew is the shards' skew.
import { createRng } from '../../envs/core/index.ts';
import { requireInteger, requireNonNegative } from '../../envs/workload/index.ts';
import type { SubmitResult, TaskSpec } from '../scheduler/types.ts';
import { Paced, type PacedStats } from './paced.ts';

/** Where the workload's tasks go: a SchedulerClient or a SchedulerRouter. */
export interface TaskSubmitter {
  submit(task: TaskSpec): Promise<SubmitResult>;
}

export interface SchedulerWorkloadOptions {
  submitter: TaskSubmitter;
  ratePerS: number;
  seed: number;
  /** Median run time; the log-normal's sigma sets the tail. */
  medianMs: number;
  sigma: number;
  /** Sigma of the estimates' log-normal error (0 = exact estimates). */
  estimateSigma: number;
  tenants: number;
  maxOps?: number;
}

export const SLEEP_TASK = 'sleep';

/** The handler the workload's tasks need: sleeps the task's run time. */
export const sleepHandler = async (task: { payload: unknown }): Promise<void> => {
  const ms = Math.min(60_000, Math.max(0, Number((task.payload as { ms?: number })?.ms ?? 0)));
  await new Promise((r) => setTimeout(r, ms));
};

export class SchedulerWorkload {
  private constructor(private readonly paced: Paced) {}

  get stats(): PacedStats {
    return this.paced.stats;
  }

  static start(o: SchedulerWorkloadOptions): SchedulerWorkload {
    requireInteger('tenants', o.tenants, 1);
    for (const f of ['medianMs', 'sigma', 'estimateSigma'] as const) requireNonNegative(f, o[f]);
    const rng = createRng(o.seed);
    const tenantWeights = Array.from({ length: o.tenants }, (_, i) => 1 / (i + 1));
    const total = tenantWeights.reduce((a, b) => a + b, 0);
    const tenant = () => {
      let u = rng.next() * total;
      for (let i = 0; i < o.tenants; i++)
        if ((u -= tenantWeights[i] as number) <= 0) return `tenant-${i}`;
      return `tenant-${o.tenants - 1}`;
    };
    const paced = new Paced(
      {
        ratePerS: o.ratePerS,
        concurrency: 8,
        seed: o.seed + 1,
        ...(o.maxOps !== undefined ? { maxOps: o.maxOps } : {}),
      },
      async () => {
        const ms = Math.round(o.medianMs * Math.exp(o.sigma * rng.normal()));
        const estimateMs = Math.max(1, Math.round(ms * Math.exp(o.estimateSigma * rng.normal())));
        await o.submitter.submit({
          type: SLEEP_TASK,
          tenant: tenant(),
          estimateMs,
          payload: { ms },
        });
      },
    );
    return new SchedulerWorkload(paced);
  }

  stop(): Promise<PacedStats> {
    return this.paced.stop();
  }
}
