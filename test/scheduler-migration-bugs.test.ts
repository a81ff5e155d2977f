// Live placement migration: the open bugs a review found, each driven step by step on a
// 3-primary cluster with no services running (each test claims, settles and reaps by hand, so
// the order of events is the test's): a move blocked by another tenant's dependent, a dead
// task's cascade in progress, the migration lock, the old shard's idempotency keys, a job row
// after a late arrival, and a parent finishing while its child's page is copied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import {
  MigrationLockLostError,
  MigrationRefusedError,
  readMigration,
  type MigrationOptions,
} from '../controlplane/scheduler/migration-row.ts';
import { Migration } from '../controlplane/scheduler/migration.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { SchedKeys } from '../controlplane/scheduler/keys.ts';
import { SchedulerRouter } from '../controlplane/scheduler/router.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import {
  migrationSetup,
  MOVER,
  OTHER,
  REAP,
  sleep,
  TARGET,
  within,
} from './helpers/migration-setup.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { claim, heartbeatWorker } from './helpers/scheduler-harness.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('placement migration: the open bugs', () => {
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

  it("refuses at once a move that another tenant's pending task depends on, and leaves it whole", async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    // x is the mover's; y, another tenant's task on the same shard, waits for it.
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'y', type: 't', tenant: OTHER, parents: ['x'] },
      { id: 'z', type: 't', tenant: MOVER },
    ]);
    const m = await s.begin();
    const t0 = Date.now();
    // Before the fix the copy waited for y, which waited for x, frozen by the move: a hang.
    const err = await within(
      m.run().catch((e: unknown) => e),
      5_000,
      'the move',
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(MigrationRefusedError);
    expect((err as MigrationRefusedError).details).toMatchObject({
      tenant: MOVER,
      rule: 'cross_tenant_dependent',
      task: 'x',
      dependent: 'y',
      dependentTenant: OTHER,
    });
    expect((err as Error).message).toMatch(/x.*y.*other/);
    const row = await readMigration(client, keys, MOVER);
    expect(row?.phase).toBe('refused');
    expect(row?.error).toMatch(/y/);
    // Nothing moved or stays frozen: the mover's tasks run on A as before.
    expect(await client.hget(s.a.task('x'), 'state')).toBe('runnable');
    expect(await client.zscore(s.a.runnable(), 'x')).not.toBeNull();
    expect(await client.zscore(s.a.runnable(), 'z')).not.toBeNull();
    expect(await client.exists(s.b.task('x'), s.b.task('z'))).toBe(0);
    // Once y no longer waits for x, the same move goes through (a retry of the refused row).
    await s.finish(s.A, 'x');
    await s.finish(s.A, 'y');
    const again = await readMigration(client, keys, MOVER);
    const done = await within(
      new Migration(s.opts, again as NonNullable<typeof again>).run(),
      10_000,
      'the retry',
    );
    expect(done.phase).toBe('done');
    expect(await client.hget(s.b.task('x'), 'state')).toBe('done');
    expect(await client.hget(s.b.task('z'), 'state')).toBe('runnable');
    expect(await client.hget(s.a.task('y'), 'state')).toBe('done');
  }, 30_000);

  it('a migrator tries a refused move again: and moves once nothing depends across tenants', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards });
    const migrator = await PlacementMigrator.start({ ...s.opts, knobs, retryRefusedMs: 100 });
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'y', type: 't', tenant: OTHER, parents: ['x'] },
    ]);
    await setMap({ [MOVER]: TARGET });
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'refused',
      'the move refused',
    );
    // Meanwhile the mover's submits go to A (see the next test), x and y run on A (nothing of
    // the mover is frozen), and the retry goes through.
    expect(await router.submit({ id: 'n', type: 't', tenant: MOVER })).toEqual({
      id: 'n',
      created: true,
    });
    await s.finish(s.A, 'x');
    await s.finish(s.A, 'y');
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'done',
      'the retried move done',
    );
    expect(await client.hget(s.b.task('x'), 'state')).toBe('done');
    expect(await client.hget(s.b.task('n'), 'state')).toBe('runnable');
    router.close();
    await migrator.close();
    await knobs.close();
  }, 30_000);

  it("while a move is refused, the tenant's submits go to the shard its rows are on", async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards, holdMaxMs: 3_000 });
    const migrator = await PlacementMigrator.start({ ...s.opts, knobs, retryRefusedMs: 200 });
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'y', type: 't', tenant: OTHER, parents: ['x'] },
    ]);
    await setMap({ [MOVER]: TARGET });
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'refused',
      'the move refused',
    );
    // Before, the submit was held until the move went through, which needs y to finish: it
    // failed with TenantMovingError after holdMaxMs, and so did every submit of the mover.
    expect(
      await within(router.submit({ id: 'n1', type: 't', tenant: MOVER }), 1_500, 'n1'),
    ).toEqual({ id: 'n1', created: true });
    expect(await client.hget(s.a.task('n1'), 'state')).toBe('runnable');
    // Once nothing depends across tenants, a retry moves everything, n1 too, and later submits
    // go to the new shard.
    await s.finish(s.A, 'x');
    await s.finish(s.A, 'y');
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'done',
      'the retried move done',
      10_000,
    );
    await sleep(150); // past the router's recheck of a refused move
    expect(await router.submit({ id: 'n2', type: 't', tenant: MOVER })).toEqual({
      id: 'n2',
      created: true,
    });
    expect(await client.hget(s.b.task('n1'), 'state')).toBe('runnable');
    expect(await client.hget(s.b.task('n2'), 'state')).toBe('runnable');
    expect(await client.exists(s.a.task('n2'))).toBe(0);
    router.close();
    await migrator.close();
    await knobs.close();
  }, 30_000);

  it('a map change after a refused move moves the tenant from where its rows are', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards });
    const migrator = await PlacementMigrator.start({ ...s.opts, knobs, retryRefusedMs: 60_000 });
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'y', type: 't', tenant: OTHER, parents: ['x'] },
    ]);
    await setMap({ [MOVER]: TARGET });
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'refused',
      'the move refused',
    );
    // Before the retry, the map sends the mover to a third shard: it moves from A, where its
    // rows are, not from B, where the refused change would have put them.
    await s.finish(s.A, 'x');
    await s.finish(s.A, 'y');
    const third = shards[(TARGET + 1) % 3] as string;
    const version = await setMap({ [MOVER]: (TARGET + 1) % 3 });
    await migrator.idle();
    expect(await readMigration(client, keys, MOVER)).toMatchObject({
      phase: 'done',
      knobVersion: version,
      from: s.homeShard,
      to: third,
    });
    expect(await client.hget(new SchedKeys(keys, third).task('x'), 'state')).toBe('done');
    expect(await client.hget(s.a.task('x'), 'state')).toBe('moved');
    expect(await router.submit({ id: 'n', type: 't', tenant: MOVER })).toEqual({
      id: 'n',
      created: true,
    });
    expect(await client.hget(new SchedKeys(keys, third).task('n'), 'state')).toBe('runnable');
    router.close();
    await migrator.close();
    await knobs.close();
  }, 30_000);

  it('refuses a move when a dependent of another tenant arrives after the freeze, and undoes it', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER, idempotencyKey: 'kx', jobId: 'j' },
      { id: 'x2', type: 't', tenant: MOVER, parents: ['x'], jobId: 'j' },
      { id: 'd', type: 't', tenant: MOVER },
    ]);
    await s.finish(s.A, 'd');
    const m = await s.begin();
    await m.run('freeze');
    expect(await client.hget(s.a.task('x'), 'state')).toBe('moving');
    // The copy (alone, as far as it gets before the submit below) wrote every row to B.
    await (m as unknown as { copyAll(late: boolean): Promise<unknown> }).copyAll(false);
    expect(await client.hget(s.b.task('x'), 'state')).toBe('moving');
    expect(await client.hget(s.b.task('d'), 'state')).toBe('done');
    // Another tenant's submit, sent while x was frozen, makes it a parent. A's submits refuse
    // it while the mover is marked (scheduler-migration-review-2.test.ts); with the mark lost
    // (a failover that dropped it) the copy still finds it and the move is undone.
    await client.srem(s.a.movingTenants(), MOVER);
    await s.onA.submitMany([{ id: 'y', type: 't', tenant: OTHER, parents: ['x'] }]);
    const err = await within(
      m.run().catch((e: unknown) => e),
      5_000,
      'the move',
    );
    expect(err).toBeInstanceOf(MigrationRefusedError);
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('refused');
    // A is as before the move; B keeps no live copy (a tombstone pointing home at most).
    expect(await client.hget(s.a.task('x'), 'state')).toBe('runnable');
    expect(await client.zscore(s.a.runnable(), 'x')).not.toBeNull();
    expect(await client.hget(s.a.task('x2'), 'state')).toBe('pending');
    expect(await client.hget(s.a.task('d'), 'state')).toBe('done');
    expect(await client.zcard(keys.key(s.a.family, 'migrating', MOVER))).toBe(0);
    for (const id of ['x', 'x2', 'd'])
      expect([null, 'moved'], id).toContain(await client.hget(s.b.task(id), 'state'));
    expect(await client.zscore(s.b.done(), 'd')).toBeNull();
    expect(await client.exists(s.b.job('j'), s.b.children('x'), s.b.staged(MOVER))).toBe(0);
    // y runs once x has.
    await s.finish(s.A, 'x');
    expect(await client.hget(s.a.task('y'), 'state')).toBe('runnable');
  }, 30_000);

  it("moves a dead task's cascade still in progress: its remaining dependents end on B", async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    // d has more children than one cascade call marks (1,000): the rest of its cascade waits in
    // A's cascade list for A's reaper; g, a grandchild, is still pending when the mover moves.
    const kids = Array.from({ length: 1_001 }, (_, i) => ({
      id: `c${i}`,
      type: 't',
      tenant: MOVER,
      parents: ['d'],
    }));
    await s.onA.submitMany([{ id: 'd', type: 't', tenant: MOVER }, ...kids]);
    await s.onA.submitMany([{ id: 'g', type: 't', tenant: MOVER, parents: ['c0'] }]);
    await s.finish(s.A, 'd', 'final');
    expect(await client.hget(s.a.task('c0'), 'state')).toBe('upstream_failed');
    expect(await client.hget(s.a.task('g'), 'state')).toBe('pending');
    const cascadeA = `${s.a.prefixes()[1] as string}*`;
    const cascadeB = `${s.b.prefixes()[1] as string}*`;
    expect(await client.llen(cascadeA)).toBeGreaterThan(0);
    const m = await s.begin();
    expect((await within(m.run(), 20_000, 'the move')).phase).toBe('done');
    expect(await client.hget(s.b.task('g'), 'state')).toBe('pending');
    // A's list keeps nothing of the mover's; B's reaper carries the cascade on.
    expect(await client.llen(cascadeA)).toBe(0);
    for (let i = 0; i < 5 && (await client.llen(cascadeB)) > 0; i++)
      await s.B.reap(REAP, Date.now());
    expect(await client.hget(s.b.task('g'), 'state')).toBe('upstream_failed');
    expect(await client.zscore(s.b.dead(), 'g')).not.toBeNull();
  }, 60_000);

  it("a migrator whose lock was taken over neither renews the other's lock nor carries on", async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { lockMs: 300, pollMs: 10 });
    // A leased task of the mover keeps the freeze waiting (leased copies finish on A).
    await s.onA.submitMany([{ id: 'l', type: 't', tenant: MOVER }]);
    const now = Date.now();
    await heartbeatWorker(s.A, 'w', now);
    await claim(s.A, 'l', 'w', now, 60_000);
    const m = await s.begin();
    const running = m.run().catch((e: unknown) => e);
    const lockKey = `${keys.key('placement', 'migration', MOVER)}:lock`;
    await eventually(async () => (await client.exists(lockKey)) === 1, 'the lock');
    // The first migrator stalls past its lease (a long pause); another takes the lock.
    await client.set(lockKey, 'someone-else', 'PX', 60_000);
    await sleep(500);
    expect(await client.get(lockKey)).toBe('someone-else');
    expect(await client.pttl(lockKey)).toBeGreaterThan(30_000);
    const err = await within(running, 5_000, 'the first migrator stopping');
    expect(err).toBeInstanceOf(MigrationLockLostError);
    // It left the other's lock alone on its way out.
    expect(await client.get(lockKey)).toBe('someone-else');
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('freeze');
  }, 30_000);

  it("forgets the old shard's idempotency keys of the moved tenant with their tombstones", async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { tombstoneTtlMs: 300 });
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const migrator = await PlacementMigrator.start({
      ...s.opts,
      knobs,
      forgetEveryMs: 50,
    });
    await s.onA.submitMany([
      { id: 'p', type: 't', tenant: MOVER, idempotencyKey: 'kp' },
      { id: 'q', type: 't', tenant: OTHER, idempotencyKey: 'kq' },
    ]);
    await setMap({ [MOVER]: TARGET });
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'done',
      'the move',
    );
    await migrator.idle();
    // Kept while the tombstone is (a late resubmission to A answers "exists")...
    expect(await client.hget(s.a.idem(), 'kp')).toBe('p');
    expect(await client.hget(s.b.idem(), 'kp')).toBe('p');
    // ...and forgotten with it; another tenant's key stays.
    await eventually(
      async () => (await client.exists(s.a.task('p'))) === 0,
      'the tombstone expires',
    );
    await eventually(
      async () => (await client.hget(s.a.idem(), 'kp')) === null,
      "A forgets the moved tenant's key",
    );
    expect(await client.hget(s.a.idem(), 'kq')).toBe('q');
    expect(await client.hget(s.b.idem(), 'kp')).toBe('p');
    await migrator.close();
    await knobs.close();
  }, 30_000);

  it("counts a late arrival's task in its job row on B", async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([
      { id: 'p', type: 't', tenant: MOVER, jobId: 'j', estimateMs: 100 },
      { id: 'c', type: 't', tenant: MOVER, parents: ['p'], jobId: 'j', estimateMs: 100 },
    ]);
    const m = await s.begin();
    await m.run('switched');
    // A router that missed the change adds a task to the job on A after the switch.
    await s.onA.submitMany([{ id: 'late', type: 't', tenant: MOVER, jobId: 'j', estimateMs: 100 }]);
    expect((await within(m.run(), 10_000, 'the move')).phase).toBe('done');
    expect(await client.hget(s.b.task('late'), 'state')).toBe('runnable');
    expect(await client.exists(s.a.job('j'))).toBe(0);
    const job = await client.hgetall(s.b.job('j'));
    expect(job).toMatchObject({ total: '3', remaining: '3' });
    expect(Number(job['remaining_work_ms'])).toBe(300);
  }, 30_000);

  it('copies a task whose other-tenant parent finishes while its page is copied as it is after', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([
      { id: 'u', type: 't', tenant: OTHER },
      { id: 'y', type: 't', tenant: MOVER, parents: ['u'] },
    ]);
    const m = await s.begin();
    await m.run('freeze');
    // u, another tenant's task, completes just after the copy read y's row (pending): on the
    // copy phase's second read of the rows (the first looks for rows still in play).
    const inner = m as unknown as { tenantRows(): AsyncGenerator<{ id: string }[]> };
    const rows = inner.tenantRows.bind(m);
    let reads = 0;
    let finished = false;
    inner.tenantRows = async function* () {
      reads++;
      for await (const page of rows()) {
        if (!finished && reads === 2 && page.some((f) => f.id === 'y')) {
          finished = true;
          await s.finish(s.A, 'u');
        }
        yield page;
      }
    };
    expect((await within(m.run(), 10_000, 'the move')).phase).toBe('done');
    expect(finished).toBe(true);
    // y's parent is done: y is runnable on B (a pending copy would never run).
    expect(await client.hget(s.b.task('y'), 'state')).toBe('runnable');
    expect(await client.zscore(s.b.runnable(), 'y')).not.toBeNull();
    expect(await client.hget(s.a.task('y'), 'state')).toBe('moved');
  }, 30_000);
});
