// The TPC-H scenarios the scheduler learner trains and is evaluated on: query DAGs from Decima
// drawn per seed, Poisson arrivals at an offered load, identical one-core workers. The same
// shape as the experiment runner's TPC-H workload (60 jobs on 25 workers at 85% load), with
// the job count a parameter so training episodes can be short.
import { loadTpchDags, tpchWorkloadFrom, type TpchDag } from '../../envs/loaders/jobs-tpch.ts';
import { uniformWorkers, type Workload, type WorkerSpec } from '../../envs/scheduler/index.ts';

export type Scenario = (seed: number) => { workload: Workload; workers: readonly WorkerSpec[] };

export interface TpchScenarioOptions {
  jobs: number;
  workers: number;
  /** Offered load on the workers' cores. */
  load: number;
}

export const EVAL_SCENARIO: Readonly<TpchScenarioOptions> = { jobs: 60, workers: 25, load: 0.85 };

export function tpchScenario(dags: readonly TpchDag[], o: TpchScenarioOptions): Scenario {
  const workers = uniformWorkers(o.workers, { cpu: 1, memMb: 4_096, gpu: 0 });
  return (seed) => ({
    workload: tpchWorkloadFrom(dags, { workers, jobs: o.jobs, load: o.load, seed }),
    workers,
  });
}

let shared: TpchDag[] | undefined;

/** The shared TPC-H DAGs (../shared/traces/jobs), read once per process. */
export function sharedTpchDags(): TpchDag[] {
  shared ??= loadTpchDags();
  return shared;
}
