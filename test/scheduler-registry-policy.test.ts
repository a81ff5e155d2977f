// The live dispatcher follows scheduler.policy_version: version N of the registry's scheduler
// policy replaces the heuristic once loaded, and 0 brings the heuristic back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyTable } from '../controlplane/registry/table.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler } from './helpers/scheduler-harness.ts';

describe('dispatcher and the policy registry', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('dispatches with the registry version the knob names, and falls back to the heuristic', async () => {
    const h = await startScheduler(redis);
    try {
      const registry = new PolicyTable(h.redis, h.keys, h.knobClock);
      const row = await registry.register(
        { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
        'op',
      );
      expect(row.version).toBe(1);
      expect(h.service.dispatcher.currentPolicy().name).toBe('fifo');
      await h.setKnob('scheduler.policy_version', 1);
      await eventually(
        () => h.service.dispatcher.currentPolicy().name === 'srpt',
        'the dispatcher loads version 1',
      );
      // A version the registry does not have keeps the heuristic.
      await h.setKnob('scheduler.policy_version', 7);
      await new Promise((r) => setTimeout(r, 300));
      expect(h.service.dispatcher.currentPolicy().name).toBe('fifo');
      await h.setKnob('scheduler.policy_version', 0);
      expect(h.service.dispatcher.currentPolicy().name).toBe('fifo');
    } finally {
      await h.stop();
    }
  });
});
