// A straggler check fires at startMs + threshold x ref and asks the same sum again: it asked
// now - startMs < threshold x ref, and in floating point (a + x) - a can be one ulp below x,
// so the check returned without asking for a copy and without re-arming: the straggler was
// never speculated. Threshold 1.1 on a 100 ms estimate started at 12,345 ms is such a case.
import { expect, it } from 'vitest';
import { simulate, uniformWorkers, type Workload } from '../envs/scheduler/index.ts';
import { createSchedulingPolicy } from '../policies/scheduling/index.ts';

const workload: Workload = {
  name: 'one straggler',
  jobs: [
    {
      id: 'j',
      arrivalMs: 12_345,
      tenant: 't',
      priority: 0,
      // Runs 1,000 ms where 100 were announced: a straggler under any threshold below 10.
      stages: [
        {
          numTasks: 1,
          parents: [],
          demand: { cpu: 1, memMb: 1, gpu: 0 },
          durationsMs: [1000],
          estimateMs: 100,
        },
      ],
    },
  ],
};
const workers = uniformWorkers(2, { cpu: 1, memMb: 1024, gpu: 0 });
const copies = (stragglerThreshold: number) =>
  simulate(workload, createSchedulingPolicy('fifo'), {
    workers,
    config: { speculative: true, stragglerThreshold },
  })['speculative_copies'];

it('speculates a straggler at threshold 1.3 (control)', () => {
  expect(copies(1.3)).toBe(1);
});

it('speculates the same straggler at threshold 1.1', () => {
  expect(copies(1.1)).toBe(1);
});
