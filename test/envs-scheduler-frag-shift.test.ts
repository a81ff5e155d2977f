// gpu_stranded_frac integrates fragmentation from the first arrival, over the span it divides
// by: the idle cluster's fragmentation before the first arrival was counted too (33.75 for
// 0.42 when every arrival moved by 100 s). Shifting a whole workload changes no metric.
import { expect, it } from 'vitest';
import { simulate, type Workload, type WorkerSpec } from '../envs/scheduler/index.ts';
import { createSchedulingPolicy } from '../policies/scheduling/index.ts';

const workers: WorkerSpec[] = [{ id: 'g0', capacity: { cpu: 8, memMb: 8192, gpu: 2 } }];
const at = (shift: number): Workload => ({
  name: 'frag',
  jobs: [
    {
      id: 'gpu',
      arrivalMs: shift,
      tenant: 't',
      priority: 0,
      stages: [
        {
          numTasks: 1,
          parents: [],
          demand: { cpu: 1, memMb: 1, gpu: 1, gpuMilli: 500 },
          durationsMs: [1000],
        },
      ],
    },
    {
      id: 'cpu',
      arrivalMs: shift + 500,
      tenant: 't',
      priority: 0,
      stages: [
        { numTasks: 1, parents: [], demand: { cpu: 1, memMb: 1, gpu: 0 }, durationsMs: [1000] },
      ],
    },
  ],
});
const run = (shift: number) =>
  simulate(at(shift), createSchedulingPolicy('fifo'), { workers, measureFragmentation: true });

it('a time shift of the whole workload leaves gpu_stranded_frac as it was', () => {
  const a = run(0);
  const b = run(100_000);
  expect(a['mean_jct_s']).toBe(b['mean_jct_s']);
  expect(a['utilization']).toBeCloseTo(b['utilization'] as number, 12);
  expect(b['gpu_stranded_frac']).toBeCloseTo(a['gpu_stranded_frac'] as number, 9);
  expect(b['gpu_stranded_frac'] as number).toBeLessThanOrEqual(1);
});
