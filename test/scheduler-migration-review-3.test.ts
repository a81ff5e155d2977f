// Review fixes in live tenant moves, on a 3-node cluster:
// - a move resumed after its sweep window (or whose clean step outlasted it) still sweeps A
//   once: a child a stale router put on A between the switch and the clean step moves to B
//   (it stayed pending on A for ever behind its moved parent);
// - a Migration built from a row another migrator then replaced (a later map version, another
//   target) leaves that move alone (it copied to its own old target and marked the new row
//   done: the tenant's rows where no router looked);
// - the router's get(id, tenant) reads the shard holding the tenant's live rows, as cancel
//   does: the old shard until the switch and while a move is refused (it read the new shard:
//   null for a task that exists).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { SchedKeys } from '../controlplane/scheduler/keys.ts';
import { readMigration, type MigrationOptions } from '../controlplane/scheduler/migration-row.ts';
import { Migration } from '../controlplane/scheduler/migration.ts';
import { shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { SchedulerRouter } from '../controlplane/scheduler/router.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import { HOME, migrationSetup, MOVER, OTHER, sleep, TARGET } from './helpers/migration-setup.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('tenant moves, as reviewed (3)', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let shards: string[];
  beforeAll(async () => {
    redis = await startTestRedis('cluster', { replicas: 0 });
    client = redis.client();
    shards = await shardNamesOnPrimaries(client, 3);
  }, 120_000);
  afterAll(async () => redis?.stop());
  const setup = (keys: Keys, o: Partial<MigrationOptions> = {}) =>
    migrationSetup(client, shards, keys, o);

  it('a move resumed after its sweep window still sweeps: a late child is not lost', async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { sweepMs: 300, sweepEveryMs: 20 });
    await s.onA.submitMany([{ id: 'P', type: 't', tenant: MOVER }]);
    const m = await s.begin();
    // The first migrator switches, then stops before the clean step.
    expect((await m.run('copy')).phase).toBe('switched');
    // A stale router lands a child of P on A (P is still a live row there).
    await s.onA.submitMany([{ id: 'L', type: 't', tenant: MOVER, parents: ['P'] }]);
    expect(await client.hget(s.a.task('L'), 'state')).toBe('pending');
    // The next migrator takes the move over after the sweep window.
    await sleep(400);
    const row = await readMigration(client, keys, MOVER);
    expect((await new Migration(s.opts, row!).run()).phase).toBe('done');
    await s.finish(s.B, 'P');
    expect({
      onA: await client.hget(s.a.task('L'), 'state'),
      onB: await client.hget(s.b.task('L'), 'state'),
    }).toEqual({ onA: 'moved', onB: 'runnable' });
  }, 30_000);

  it('leaves a move that replaced its row to that move', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    const third = shards[(HOME + 2) % 3] as string;
    const c = new SchedKeys(keys, third);
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'y', type: 't', tenant: OTHER, parents: ['x'] },
    ]);
    // Move v1 (A -> B) is refused: another tenant's y depends on x.
    await (await s.begin(1)).run().catch(() => undefined);
    const refused = await readMigration(client, keys, MOVER);
    expect(refused?.phase).toBe('refused');
    // One migrator holds the refused row for its retry; meanwhile another applies map v2,
    // which moves the tenant A -> C instead.
    const stale = new Migration(s.opts, refused!);
    await s.finish(s.A, 'x');
    await s.finish(s.A, 'y');
    await Migration.begin(s.opts, MOVER, s.homeShard, third, 2);
    const answered = await stale.run();
    // The stale retry did nothing: the v2 row waits for its own migrator, x is still on A.
    expect(answered).toMatchObject({ knobVersion: 2, to: third, phase: 'freeze' });
    expect(await client.hget(s.a.task('x'), 'state')).toBe('done');
    expect(await client.hget(s.b.task('x'), 'state')).toBeNull();
    // Its own migrator runs it to C.
    const v2 = await readMigration(client, keys, MOVER);
    expect((await new Migration(s.opts, v2!).run()).phase).toBe('done');
    expect(await client.hget(c.task('x'), 'state')).toBe('done');
  }, 30_000);

  it("reads a task on its tenant's live shard before the switch and while a move is refused", async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards });
    try {
      await router.submitMany([{ id: 'x', type: 't', tenant: MOVER }]);
      await s.onA.submitMany([
        { id: 'z', type: 't', tenant: MOVER },
        { id: 'y', type: 't', tenant: OTHER, parents: ['z'] },
      ]);
      const v = await setMap({ [MOVER]: TARGET });
      const home = shards[HOME] as string;
      const target = shards[TARGET] as string;
      // Refused (y, another tenant's, depends on z): the rows stay on A.
      await (await Migration.begin(s.opts, MOVER, home, target, v)).run().catch(() => undefined);
      expect((await readMigration(client, keys, MOVER))?.phase).toBe('refused');
      expect((await router.get('x', MOVER))?.id).toBe('x');
      // Unblocked and retried as far as the copy: frozen on A, not yet switched.
      await s.finish(s.A, 'z');
      await s.finish(s.A, 'y');
      const m = new Migration(s.opts, (await readMigration(client, keys, MOVER))!);
      await m.run('freeze');
      expect((await readMigration(client, keys, MOVER))?.phase).toBe('copy');
      expect((await router.get('x', MOVER))?.id).toBe('x');
    } finally {
      router.close();
      await knobs.close();
    }
  }, 30_000);
});
