// Synthetic workloads for the env and the knob objective: jobs that are small random DAGs of
// stages with log-normal task times, from tenants of unequal appetite, arriving as a Poisson
// stream rescaled to a target load. Everything is drawn from one seeded Rng.
import { createRng, type Rng } from '../core/index.ts';
import { rescaleToLoad } from './load.ts';
import type { JobSpec, StageSpec, Workload, WorkerSpec } from './types.ts';

export interface SyntheticOptions {
  jobs: number;
  workers: readonly WorkerSpec[];
  seed: number;
  /** Offered load on the workers (default 0.8). */
  load?: number;
  tenants?: number;
  /** Tenant t submits in proportion to 1 / (t + 1)^skew (default 1: unequal appetites). */
  tenantSkew?: number;
  /** Most stages per job (default 5) and tasks per stage (default 16). */
  maxStages?: number;
  maxTasksPerStage?: number;
  /** Median task time across stages, ms (default 200). */
  medianTaskMs?: number;
  /** Priority levels 0..n-1 (default 3). */
  priorities?: number;
}

function lognormal(rng: Rng, median: number, sigma: number): number {
  return median * Math.exp(sigma * rng.normal());
}

function tenantPicker(rng: Rng, tenants: number, skew: number): () => number {
  const w = Array.from({ length: tenants }, (_, t) => 1 / Math.pow(t + 1, skew));
  const total = w.reduce((a, b) => a + b, 0);
  return () => {
    let u = rng.next() * total;
    for (let t = 0; t < tenants; t++) {
      u -= w[t] as number;
      if (u < 0) return t;
    }
    return tenants - 1;
  };
}

function stagesOf(
  rng: Rng,
  o: Required<
    Omit<
      SyntheticOptions,
      'workers' | 'seed' | 'jobs' | 'load' | 'tenants' | 'tenantSkew' | 'priorities'
    >
  >,
): StageSpec[] {
  const n = 1 + rng.int(o.maxStages);
  const stages: StageSpec[] = [];
  for (let s = 0; s < n; s++) {
    // Each stage after the first depends on the one before and, sometimes, on another earlier one.
    const parents = s === 0 ? [] : [s - 1];
    if (s >= 2 && rng.next() < 0.3) parents.push(rng.int(s - 1));
    const numTasks = Math.max(
      1,
      Math.floor(Math.exp(rng.uniform(0, Math.log(o.maxTasksPerStage + 1)))),
    );
    const median = lognormal(rng, o.medianTaskMs, 1);
    const durationsMs = Array.from({ length: numTasks }, () =>
      Math.max(1, Math.round(lognormal(rng, median, 0.5))),
    );
    const cpu = rng.next() < 0.2 ? 2 : 1;
    stages.push({
      numTasks,
      parents,
      demand: { cpu, memMb: 512 * cpu, gpu: 0 },
      durationsMs,
      estimateMs: Math.round(median * Math.exp(0.125)),
    });
  }
  return stages;
}

export function syntheticWorkload(opts: SyntheticOptions): Workload {
  if (!Number.isInteger(opts.jobs) || opts.jobs < 2)
    throw new RangeError(`synthetic: jobs must be an integer >= 2, got ${opts.jobs}`);
  const rng = createRng(opts.seed);
  const tenants = opts.tenants ?? 4;
  const priorities = opts.priorities ?? 3;
  const pickTenant = tenantPicker(rng, tenants, opts.tenantSkew ?? 1);
  const shape = {
    maxStages: opts.maxStages ?? 5,
    maxTasksPerStage: opts.maxTasksPerStage ?? 16,
    medianTaskMs: opts.medianTaskMs ?? 200,
  };
  const jobs: JobSpec[] = [];
  let t = 0;
  for (let k = 0; k < opts.jobs; k++) {
    jobs.push({
      id: `job${k}`,
      arrivalMs: Math.round(t),
      tenant: `tenant${pickTenant()}`,
      priority: rng.int(priorities),
      stages: stagesOf(rng, shape),
    });
    t += rng.exponential(1) * 1000;
  }
  return rescaleToLoad({ name: 'synthetic', jobs }, opts.workers, opts.load ?? 0.8);
}
