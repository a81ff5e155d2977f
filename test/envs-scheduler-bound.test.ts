// The lower bound on mean JCT (envs/scheduler/bound.ts): exact on cases small enough to work by
// hand, and below every policy's result on random and TPC-H workloads.
import { describe, expect, it } from 'vitest';
import {
  WorkloadError,
  fluidSrptMeanFlowMs,
  meanJctLowerBound,
  simulate,
  syntheticWorkload,
  uniformWorkers,
  type JobSpec,
} from '../envs/scheduler/index.ts';
import { SCHEDULER_POLICIES } from '../knobs/index.ts';
import { EVAL_SCENARIO, sharedTpchDags, tpchScenario } from '../learners/scheduling/scenario.ts';
import { createSchedulingPolicy } from '../policies/scheduling/index.ts';

const CORE = { cpu: 1, memMb: 1024, gpu: 0 };

function job(id: string, arrivalMs: number, stages: [number[], number[]][]): JobSpec {
  return {
    id,
    arrivalMs,
    tenant: 't',
    priority: 0,
    stages: stages.map(([durationsMs, parents]) => ({
      numTasks: durationsMs.length,
      parents,
      demand: { cpu: 1, memMb: 1, gpu: 0 },
      durationsMs,
    })),
  };
}

describe('mean JCT lower bound', () => {
  it('fluid SRPT: the short job first, preempting a long one', () => {
    // 10 s and 2 s at t=0 on speed 1: flows 2 and 12.
    expect(
      fluidSrptMeanFlowMs(
        [
          { arrivalMs: 0, work: 10_000 },
          { arrivalMs: 0, work: 2_000 },
        ],
        1,
      ),
    ).toBe(7_000);
    // A 2 s job arriving at t=1 preempts the 10 s one: flows 2 (1..3) and 12 (0..12).
    expect(
      fluidSrptMeanFlowMs(
        [
          { arrivalMs: 0, work: 10_000 },
          { arrivalMs: 1_000, work: 2_000 },
        ],
        1,
      ),
    ).toBe(7_000);
    // Twice the speed halves the flows.
    expect(
      fluidSrptMeanFlowMs(
        [
          { arrivalMs: 0, work: 10_000 },
          { arrivalMs: 0, work: 2_000 },
        ],
        2,
      ),
    ).toBe(3_500);
  });

  it('fluid SRPT: flow counts from arrival, also before time 0', () => {
    expect(fluidSrptMeanFlowMs([{ arrivalMs: -5_000, work: 10_000 }], 1)).toBe(10_000);
  });

  it('counts cores in whole thousandths, as the simulator does', () => {
    // Three tasks of 0.3334 cores for 1 s fit one core at once: 1 s, not 1.0002 s.
    const third = job('t', 0, [[[1_000, 1_000, 1_000], []]]);
    const stage = { ...third.stages[0]!, demand: { cpu: 0.3334, memMb: 1, gpu: 0 } };
    const workload = { name: 'thirds', jobs: [{ ...third, stages: [stage] }] };
    const workers = uniformWorkers(1, CORE);
    const sim = simulate(workload, createSchedulingPolicy('fifo'), { workers })
      .mean_jct_s as number;
    expect(sim).toBe(1);
    expect(meanJctLowerBound(workload, workers)).toBeLessThanOrEqual(sim);
  });

  it('is tight where SRPT is optimal: single tasks on one worker', () => {
    const workload = {
      name: 'two',
      jobs: [job('a', 0, [[[10_000], []]]), job('b', 0, [[[2_000], []]])],
    };
    const workers = uniformWorkers(1, CORE);
    expect(meanJctLowerBound(workload, workers)).toBe(7);
    expect(simulate(workload, createSchedulingPolicy('srpt'), { workers }).mean_jct_s).toBe(7);
  });

  it("takes a job's critical path when workers are plentiful", () => {
    // A chain of three stages; the middle one has a slow task: 1 + 3 + 1 s.
    const chain = job('c', 0, [
      [[1_000], []],
      [[1_000, 3_000], [0]],
      [[1_000], [1]],
    ]);
    expect(meanJctLowerBound({ name: 'chain', jobs: [chain] }, uniformWorkers(10, CORE))).toBe(5);
  });

  it('leaves censored jobs out and uses the workload’s own workers', () => {
    const jobs = [job('a', 0, [[[4_000], []]]), { ...job('x', 0, [[[1e9], []]]), censored: true }];
    expect(meanJctLowerBound({ name: 'w', jobs, workers: uniformWorkers(2, CORE) })).toBe(4);
  });

  it('refuses a workload without workers and a cyclic DAG, naming the field', () => {
    expect(() => meanJctLowerBound({ name: 'w', jobs: [job('a', 0, [[[1], []]])] })).toThrow(
      /no workers/,
    );
    const cyclic = job('loop', 0, [
      [[1], [1]],
      [[1], [0]],
    ]);
    expect(() => meanJctLowerBound({ name: 'w', jobs: [cyclic] }, uniformWorkers(1, CORE))).toThrow(
      WorkloadError,
    );
  });

  it('no policy beats it: random DAG workloads with multi-core tasks', () => {
    for (const seed of [1, 2, 3, 4]) {
      const workers = uniformWorkers(6, { cpu: 4, memMb: 8_192, gpu: 0 });
      const workload = syntheticWorkload({ jobs: 40, workers, seed, load: 0.9 });
      const bound = meanJctLowerBound(workload, workers);
      expect(bound).toBeGreaterThan(0);
      for (const p of SCHEDULER_POLICIES) {
        const jct = simulate(workload, createSchedulingPolicy(p), {
          workers,
          config: { seed },
        }).mean_jct_s;
        expect(jct, `${p} seed ${seed}`).toBeGreaterThanOrEqual(bound * (1 - 1e-9));
      }
    }
  });

  it('no policy beats it on TPC-H at 85% load, and SRPT comes within 15% of it', () => {
    const scenario = tpchScenario(sharedTpchDags(), { ...EVAL_SCENARIO, jobs: 30 });
    for (const seed of [1, 2]) {
      const { workload, workers } = scenario(seed);
      const bound = meanJctLowerBound(workload, workers);
      const jct = Object.fromEntries(
        SCHEDULER_POLICIES.map((p) => [
          p,
          simulate(workload, createSchedulingPolicy(p), { workers, config: { seed } }).mean_jct_s,
        ]),
      );
      for (const p of SCHEDULER_POLICIES) expect(jct[p], p).toBeGreaterThan(bound);
      expect(jct.srpt).toBeLessThan(bound * 1.15);
    }
  });
});
