// The router holds a tenant at every knob version that moves it and waits for a migration row
// of that version; the migrator decides moves from the map it last applied. A move there and
// back (A -> B -> A) while the migrator is restarting leaves the tenant where it is: no row is
// written, and the router held the tenant's submits for good (each waited its deadline and
// failed). Once the migrator has applied a map of that version without a row for the tenant,
// the hold ends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { SchedulerRouter } from '../controlplane/scheduler/router.ts';
import { HOME, MOVER, TARGET } from './helpers/migration-setup.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { quietLog } from './helpers/scheduler-harness.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('router hold after a move there and back the migrator never saw', () => {
  let redis: TestRedis;
  let client: RedisClient;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    client = redis.client();
  }, 120_000);
  afterAll(async () => redis?.stop());

  it('submits of a tenant moved A -> B -> A across a migrator restart are not held for ever', async () => {
    const keys = uniqueKeys();
    const shards = ['0', '1', '2'];
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const opts = { redis: client, keys, shards, knobs, log: quietLog, graceMs: 0, sweepMs: 50 };
    const m1 = await PlacementMigrator.start(opts);
    await m1.idle();
    await m1.close(); // the migrator restarts (deploy)
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards, holdMaxMs: 1_500 });
    expect(router.placement.indexOf(MOVER)).toBe(HOME);
    await router.submit({ id: 'before', type: 't', tenant: MOVER });
    await setMap({ [MOVER]: TARGET });
    await setMap({ [MOVER]: HOME }); // changed back
    const m2 = await PlacementMigrator.start(opts);
    await m2.idle();
    let outcome: string;
    try {
      await router.submit({ id: 'after', type: 't', tenant: MOVER });
      outcome = 'submitted';
    } catch (err) {
      outcome = (err as Error).constructor.name;
    }
    let again: string;
    try {
      await router.submit({ id: 'after2', type: 't', tenant: MOVER });
      again = 'submitted';
    } catch (err) {
      again = (err as Error).constructor.name;
    }
    router.close();
    await m2.close();
    knobs.close?.();
    expect({ outcome, again }).toEqual({ outcome: 'submitted', again: 'submitted' });
  }, 60_000);
});
