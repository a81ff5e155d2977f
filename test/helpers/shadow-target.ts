// The scheduler-policy loop target as shadow tests use it: one worker slot, a short shadow that
// decides after one round, and no simulator of its own worth calling (tests replace what they
// need: calibrate, propose, evaluate).
import type { KnobTable } from '../../controlplane/knobs/table.ts';
import { SchedulerPolicyTarget } from '../../controlplane/loop/targets/scheduler-policy.ts';

export function shadowTestTarget(knobs: KnobTable): SchedulerPolicyTarget {
  return new SchedulerPolicyTarget({
    knobs,
    workers: [{ id: 'w0', slots: 1 }] as never,
    windowMs: 60_000,
    minJobs: 1,
    maxRecords: 1_000,
    shadowMs: 5_000,
    shadowMinRounds: 1,
  });
}
