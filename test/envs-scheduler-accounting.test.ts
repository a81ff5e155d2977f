// The scheduler simulator's memory is counted exactly (KiB, integers, as cores are in
// millicores): in float MB, taking 0.3 and 0.1 MB and giving them back left an idle 1 MB worker
// with 0.9999999999999999 MB, and a 1 MB task a policy placed there (its fit allows float
// slack) failed the simulator's exact check, ending the run. And the env reports a run the
// simulator cut at its event bound as truncated (jobs still open), not terminated.
import { describe, expect, it } from 'vitest';
import {
  ClusterSim,
  SchedulerEnv,
  simulate,
  uniformWorkers,
  type JobSpec,
} from '../envs/scheduler/index.ts';
import { createSchedulingPolicy } from '../policies/scheduling/index.ts';

const job = (id: string, arrivalMs: number, memMb: number, ms: number): JobSpec => ({
  id,
  arrivalMs,
  tenant: 't',
  priority: 0,
  stages: [{ numTasks: 1, parents: [], demand: { cpu: 1, memMb, gpu: 0 }, durationsMs: [ms] }],
});
const workload = {
  name: 'mem',
  jobs: [job('a', 0, 0.3, 100), job('b', 0, 0.1, 200), job('c', 300, 1, 100)],
};
const workers = uniformWorkers(1, { cpu: 4, memMb: 1, gpu: 0 });

describe('scheduler simulator accounting', () => {
  it('gives an idle worker back exactly its memory', () => {
    const sim = new ClusterSim({ ...workload, jobs: workload.jobs.slice(0, 2) }, workers);
    const fifo = createSchedulingPolicy('fifo');
    sim.run((r, f, now) => fifo.pick(r, f, now));
    const w = sim.workers[0]!;
    expect(w.memFreeKib).toBe(w.memCapKib);
    expect(w.view.free.memMb).toBe(1);
  });

  it('runs a task asking for all of an idle worker memory', () => {
    expect(simulate(workload, createSchedulingPolicy('fifo'), { workers }).jobs_completed).toBe(3);
  });

  it('refuses a task needing a little more memory than any worker has (below a KiB)', () => {
    const big = { name: 'big', jobs: [job('a', 0, 1.0004, 100)] };
    expect(() => new ClusterSim(big, workers)).toThrow(/fits no worker|capacity/);
  });

  it('reports a run cut at the event bound as truncated, not terminated', () => {
    const env = new SchedulerEnv({ config: { maxEvents: 50 } });
    let { info } = env.reset({ seed: 3 });
    let last: ReturnType<SchedulerEnv['step']> | undefined;
    for (let k = 0; k < 10_000; k++) {
      last = env.step((info.actionMask as boolean[]).indexOf(true));
      info = last.info;
      if (last.terminated || last.truncated) break;
    }
    const sim = (env as unknown as { sim: { truncated: boolean; jobs: { endMs: number }[] } }).sim;
    expect(sim.truncated).toBe(true);
    expect(sim.jobs.some((j) => j.endMs < 0)).toBe(true);
    expect({ terminated: last?.terminated, truncated: last?.truncated }).toEqual({
      terminated: false,
      truncated: true,
    });
  });
});
