// The scheduler target's shadow run ends the shadow knob only when the loop set it: an
// operator already shadowing the same policy found it reset to 'none' when the loop's
// proposal for that policy was decided (shadowLeft() already left an operator's shadow alone).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { SchedulerPolicyTarget } from '../controlplane/loop/targets/scheduler-policy.ts';
import { uniformWorkers } from '../envs/scheduler/index.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe("an operator's shadow", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('is not turned off by a loop shadow run that found it on', async () => {
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys() });
    await knobs.seed();
    await knobs.promote({
      name: 'scheduler.shadow_policy',
      value: 'srpt',
      baseVersion: 1,
      actor: 'op',
      reason: 'watching srpt myself',
    });
    const target = new SchedulerPolicyTarget({
      knobs,
      workers: uniformWorkers(2, { cpu: 1, memMb: 1000, gpu: 0 }),
      windowMs: 60_000,
      minJobs: 10,
      maxRecords: 1000,
      shadowMs: 1000,
      shadowMinRounds: 1,
    });
    const run = await target.startShadow(
      { 'scheduler.policy': 'fifo' },
      { 'scheduler.policy': 'srpt' },
      Date.now(),
    );
    await run.stop(); // the proposal was decided
    const row = await knobs.get('scheduler.shadow_policy');
    expect({ value: row.value, by: row.updatedBy }).toEqual({ value: 'srpt', by: 'op' });
  });
});
