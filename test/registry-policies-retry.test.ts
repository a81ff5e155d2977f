// A failed read of a registry version (Redis away when the dispatcher first asks for it, or a
// version not registered yet) is tried again after a while: it was cached as failed for the
// process's life, so the dispatcher ran the heuristic while the knob, the registry rows and
// the API said version N was live (review).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { createLogger } from '../controlplane/log.ts';
import { PolicyTable } from '../controlplane/registry/table.ts';
import { RegistryPolicies } from '../controlplane/scheduler/registry-policies.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('RegistryPolicies after a failed load', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** Asks as the dispatcher does, every round, until it gets a policy (or gives up). */
  async function ask(rp: RegistryPolicies, version: number) {
    for (let round = 0; round < 40; round++) {
      const got = rp.policy(version);
      if (got) return got;
      await new Promise((r) => setTimeout(r, 25));
    }
    return undefined;
  }

  it('loads the version once the registry can be read again', async () => {
    const table = new PolicyTable(redis.client(), uniqueKeys(), new ManualClock(Date.now()));
    await table.register(
      { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
      'op',
    );
    vi.spyOn(table, 'get').mockRejectedValueOnce(new Error('Connection is closed.'));
    const rp = new RegistryPolicies(table, createLogger('t', 'silent'), 100);
    expect(rp.policy(1)).toBeUndefined(); // the read fails
    expect((await ask(rp, 1))?.name).toBe('srpt');
  });

  it('loads a version registered after the knob named it', async () => {
    const table = new PolicyTable(redis.client(), uniqueKeys(), new ManualClock(Date.now()));
    const rp = new RegistryPolicies(table, createLogger('t', 'silent'), 100);
    expect(rp.policy(1)).toBeUndefined(); // not registered yet
    await new Promise((r) => setTimeout(r, 50));
    await table.register(
      { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'sjf' } },
      'op',
    );
    expect((await ask(rp, 1))?.name).toBe('sjf');
  });
});
