// Live placement migration: the bugs a second review found, each driven step by step on a
// 3-primary cluster with no services running (each test claims, settles and reaps by hand): an
// undo after the thaw, a late child of a copied parent, another tenant's child of a moving task,
// the sweep's undo and job rows, a lease that merely ran out, and a retry's grace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { ParentMovingError } from '../controlplane/scheduler/errors.ts';
import {
  MigrationRefusedError,
  readMigration,
  TenantMovingError,
  type MigrationOptions,
} from '../controlplane/scheduler/migration-row.ts';
import { Migration, migrateScripts } from '../controlplane/scheduler/migration.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { SchedulerRouter } from '../controlplane/scheduler/router.ts';
import { SchedKeys } from '../controlplane/scheduler/keys.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { hashShard } from '../policies/placement/hash.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import {
  HOME,
  migrationSetup,
  MOVER,
  OTHER,
  REAP,
  SETTLE,
  sleep,
  TARGET,
} from './helpers/migration-setup.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { claim, heartbeatWorker } from './helpers/scheduler-harness.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('placement migration: the second review', () => {
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

  it('a move stopped after the thaw goes forward: a copy B runs is never undone', async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { lockMs: 300, pollMs: 10 });
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'z', type: 't', tenant: MOVER },
    ]);
    const m = await s.begin();
    // The lease is lost just after the thaw, before the switch is written.
    const inner = m as unknown as { thawAll: () => Promise<void> };
    const thaw = inner.thawAll.bind(m);
    inner.thawAll = async () => {
      await thaw();
      await client.set(s.lockKey, 'someone-else', 'PX', 1_000);
      await sleep(250);
    };
    await expect(m.run()).rejects.toThrow(/another migrator took it/);
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('copy');
    // B runs x meanwhile; another tenant's task then names z, still frozen on A.
    const now = Date.now();
    await heartbeatWorker(s.B, 'wB', now);
    const token = await claim(s.B, 'x', 'wB', now, 60_000);
    // A's submits refuse such a child while the mover is marked (the test above); with the mark
    // lost (a failover that dropped it; it is set again at the next step) the child gets in,
    // and the move still never undoes after the thaw (the child's edge is the known limit).
    await client.srem(s.a.movingTenants(), MOVER);
    await s.onA.submitMany([{ id: 'y', type: 't', tenant: OTHER, parents: ['z'] }]);
    await client.del(s.lockKey);
    const row = await readMigration(client, keys, MOVER);
    // Before, the resumed migrator refused and undid: x tombstoned on B, runnable again on A.
    const done = await new Migration(s.opts, row as NonNullable<typeof row>).run();
    expect(done.phase).toBe('done');
    expect(await client.hget(s.b.task('x'), 'state')).toBe('leased');
    expect(await client.zscore(s.a.runnable(), 'x')).toBeNull();
    expect(await client.hget(s.a.task('x'), 'state')).toBe('moved');
    const [r] = await s.B.settle(
      [{ taskId: 'x', token, outcome: 'ok', detail: 'x' }],
      SETTLE,
      Date.now(),
    );
    expect(r?.status).toBe('ok');
  }, 30_000);

  it('settle and reap take a tombstone row for an unknown task, not a script error', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([
      { id: 't1', type: 't', tenant: MOVER },
      { id: 't2', type: 't', tenant: MOVER },
    ]);
    const now = Date.now();
    await heartbeatWorker(s.A, 'w', now);
    const tok1 = await claim(s.A, 't1', 'w', now, 200);
    const tok2 = await claim(s.A, 't2', 'w', now, 60_000);
    // t1's row became a tombstone under its lease (as an undo used to make one).
    await client.del(s.a.task('t1'));
    await client.hset(s.a.task('t1'), { state: 'moved', moved_to: 'elsewhere' });
    const rs = await s.A.settle(
      [
        { taskId: 't1', token: tok1, outcome: 'ok', detail: 'x' },
        { taskId: 't2', token: tok2, outcome: 'ok', detail: 'x' },
      ],
      SETTLE,
      Date.now(),
    );
    expect(rs.map((r) => r.status)).toEqual(['unknown', 'ok']);
    await s.onA.submitMany([{ id: 't3', type: 't', tenant: MOVER }]);
    const tok3 = await claim(s.A, 't3', 'w', Date.now(), 100);
    await client.del(s.a.task('t3'));
    await client.hset(s.a.task('t3'), { state: 'moved', moved_to: 'elsewhere' });
    await expect(s.A.reap(REAP, Date.now() + 60_000)).resolves.toBeDefined();
    expect(await client.zrange(s.a.leases(), 0, -1)).not.toContain(`t3|${tok3}`);
  }, 30_000);

  it('a late child of a parent already copied keeps its edge on B and runs after it', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([{ id: 'P', type: 't', tenant: MOVER }]);
    const m = await s.begin();
    await m.run('freeze');
    await (m as unknown as { copyAll: (late: boolean) => Promise<unknown> }).copyAll(false);
    // A router still sending to A: C names P, frozen there and copied already.
    await s.onA.submitMany([{ id: 'C', type: 't', tenant: MOVER, parents: ['P'] }]);
    expect((await m.run()).phase).toBe('done');
    expect(await client.smembers(s.b.children('P'))).toContain('C');
    await s.finish(s.B, 'P');
    // Before, C stayed pending for ever.
    expect(await client.hget(s.b.task('C'), 'state')).toBe('runnable');
    expect(await client.zscore(s.b.runnable(), 'C')).not.toBeNull();
  }, 30_000);

  it("another tenant's child of a moving task is refused at submit, never left pending", async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([
      { id: 'P', type: 't', tenant: MOVER },
      { id: 'Q', type: 't', tenant: MOVER, parents: ['P'] },
      { id: 'D', type: 't', tenant: MOVER },
      { id: 'U', type: 't', tenant: OTHER },
    ]);
    await s.finish(s.A, 'D');
    const m = await s.begin();
    expect((await m.run('copy')).phase).toBe('switched');
    // P (frozen) and Q (pending) run on B now; until the clean step A still has them, and an
    // edge to either written on A would be lost with A's rows. Before, such a child was
    // accepted there and stayed pending for ever.
    for (const parent of ['P', 'Q']) {
      const err = await s.onA
        .submitMany([{ id: `C${parent}`, type: 't', tenant: OTHER, parents: [parent] }])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ParentMovingError);
      expect((err as ParentMovingError).code).toBe('KNOBOS_SCHEDULER_PARENT_MOVING');
      expect((err as ParentMovingError).details).toMatchObject({
        field: 'parents',
        rule: 'parent_moving',
        task: `C${parent}`,
        parent,
        parentTenant: MOVER,
      });
      expect(await client.exists(s.a.task(`C${parent}`))).toBe(0);
    }
    // The mover's own late child, a child of a finished task, and an edge between other
    // tenants' tasks are not refused.
    await s.onA.submitMany([
      { id: 'L', type: 't', tenant: MOVER, parents: ['P'] },
      { id: 'E', type: 't', tenant: OTHER, parents: ['D'] },
      { id: 'V', type: 't', tenant: OTHER, parents: ['U'] },
    ]);
    expect(await client.hget(s.a.task('E'), 'state')).toBe('runnable');
    expect((await m.run()).phase).toBe('done');
    // Once the move is done, the mark is gone.
    expect(await client.sismember(s.a.movingTenants(), MOVER)).toBe(0);
  }, 30_000);

  it('a mark lost mid-move is set again at the next step', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([{ id: 'P', type: 't', tenant: MOVER }]);
    const m = await s.begin();
    expect((await m.run('copy')).phase).toBe('switched');
    // A failover that dropped the mark; the next step (the clean) sets it again.
    await client.srem(s.a.movingTenants(), MOVER);
    const row = await readMigration(client, keys, MOVER);
    await new Migration(s.opts, row as NonNullable<typeof row>).run('switched');
    expect(await client.sismember(s.a.movingTenants(), MOVER)).toBe(1);
    const err = await s.onA
      .submitMany([{ id: 'C', type: 't', tenant: OTHER, parents: ['P'] }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParentMovingError);
  }, 30_000);

  it('a refused move lifts the mark: other tenants may depend on its tasks again', async () => {
    const keys = uniqueKeys();
    const s = setup(keys);
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'y', type: 't', tenant: OTHER, parents: ['x'] },
    ]);
    const m = await s.begin();
    expect(await m.run().catch((e: unknown) => e)).toBeInstanceOf(MigrationRefusedError);
    expect(await client.sismember(s.a.movingTenants(), MOVER)).toBe(0);
    await s.onA.submitMany([{ id: 'y2', type: 't', tenant: OTHER, parents: ['x'] }]);
    expect(await client.hget(s.a.task('y2'), 'state')).toBe('pending');
  }, 30_000);

  it('a late child copied after its parent ended on B is counted down (or marked failed)', async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { sweepMs: 2_000 });
    await s.onA.submitMany([
      { id: 'P', type: 't', tenant: MOVER },
      { id: 'Q', type: 't', tenant: MOVER },
    ]);
    const m = await s.begin();
    await m.run('freeze');
    await (m as unknown as { copyAll: (late: boolean) => Promise<unknown> }).copyAll(false);
    // C and D arrive on A after the copy passed them (the SCAN had gone by), naming P and Q.
    await s.onA.submitMany([
      { id: 'C', type: 't', tenant: MOVER, parents: ['P'] },
      { id: 'D', type: 't', tenant: MOVER, parents: ['Q'] },
    ]);
    // They are left out of this copy: the clean leaves them on A for the sweep.
    const hide = migrateScripts.run.bind(migrateScripts);
    const scripts = migrateScripts as unknown as { run: typeof migrateScripts.run };
    let once = true;
    scripts.run = (async (r, name, k, a) => {
      if (name === 'migrateCopy' && once && String(a[4]).includes('"C"')) return [0, 0];
      return hide(r, name, k, a);
    }) as typeof migrateScripts.run;
    try {
      await m.run('copy');
    } finally {
      once = false;
      scripts.run = hide;
    }
    // P ends on B before C is swept over; Q fails there.
    await s.finish(s.B, 'P');
    const now = Date.now();
    await heartbeatWorker(s.B, 'wq', now);
    const tq = await claim(s.B, 'Q', 'wq', now);
    await s.B.settle([{ taskId: 'Q', token: tq, outcome: 'final', detail: 'x' }], SETTLE, now);
    expect((await m.run()).phase).toBe('done');
    expect(await client.hget(s.b.task('C'), 'state')).toBe('runnable');
    expect(await client.zscore(s.b.runnable(), 'C')).not.toBeNull();
    // D: B's reaper carries Q's cascade on to it.
    await s.B.reap(REAP, Date.now());
    expect(await client.hget(s.b.task('D'), 'state')).toBe('upstream_failed');
  }, 30_000);

  it("the sweep's undo keeps B's job row and takes back the undone copies' counts", async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { sweepMs: 3_000 });
    await s.onA.submitMany([
      { id: 'p', type: 't', tenant: MOVER, jobId: 'j', estimateMs: 100 },
      { id: 'c', type: 't', tenant: MOVER, parents: ['p'], jobId: 'j', estimateMs: 100 },
      { id: 'u', type: 't', tenant: OTHER },
    ]);
    const m = await s.begin();
    await m.run('switched');
    await s.onA.submitMany([{ id: 'L1', type: 't', tenant: MOVER, jobId: 'j', estimateMs: 100 }]);
    await s.onA.submitMany([{ id: 'L2', type: 't', tenant: MOVER, parents: ['u'] }]);
    // One row per page, L1 first; once L1 is on B, another tenant's task names L1 on A.
    type Rows = () => AsyncGenerator<{ id: string }[]>;
    const inner = m as unknown as { tenantRows: Rows };
    const rows = inner.tenantRows.bind(m);
    inner.tenantRows = async function* () {
      const all: { id: string }[] = [];
      for await (const page of rows()) all.push(...page);
      all.sort((x, y) => (x.id === 'L1' ? -1 : y.id === 'L1' ? 1 : 0));
      for (const f of all) yield [f];
    };
    const orig = migrateScripts.run.bind(migrateScripts);
    const scripts = migrateScripts as unknown as { run: typeof migrateScripts.run };
    let fired = false;
    scripts.run = (async (r, name, k, a) => {
      const out = await orig(r, name, k, a);
      if (name === 'migrateCopy' && !fired && String(a[4]).includes('"L1"')) {
        fired = true;
        // The mark lost (A's submits refuse this child while it is set): the undo still holds.
        await client.srem(s.a.movingTenants(), MOVER);
        await s.onA.submitMany([{ id: 'y', type: 't', tenant: OTHER, parents: ['L1'] }]);
      }
      return out;
    }) as typeof migrateScripts.run;
    try {
      expect((await m.run()).phase).toBe('done');
    } finally {
      scripts.run = orig;
    }
    expect(fired).toBe(true);
    expect(await client.hget(s.b.task('L1'), 'state')).toBe('moved');
    // Before, B's job row was deleted.
    expect(await client.hmget(s.b.job('j'), 'total', 'remaining', 'remaining_work_ms')).toEqual([
      '2',
      '2',
      '200',
    ]);
    // L1 stays on A, counted in a job row there.
    expect(await client.hmget(s.a.job('j'), 'total', 'remaining')).toEqual(['1', '1']);
    await s.finish(s.B, 'p');
    await s.finish(s.B, 'c');
    expect(await client.hget(s.b.job('j'), 'finished_at')).not.toBeNull();
  }, 30_000);

  it('a lease that merely ran out is taken again: the move goes on', async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { lockMs: 300, pollMs: 10 });
    await s.onA.submitMany([
      { id: 'l', type: 't', tenant: MOVER },
      { id: 'r', type: 't', tenant: MOVER },
    ]);
    const now = Date.now();
    await heartbeatWorker(s.A, 'w', now);
    const token = await claim(s.A, 'l', 'w', now, 60_000);
    const m = await s.begin();
    const running = m.run().catch((e: unknown) => e);
    await eventually(async () => (await client.exists(s.lockKey)) === 1, 'the lock');
    // The lease runs out (a stall; nobody takes it).
    await client.del(s.lockKey);
    await sleep(300);
    expect(await client.exists(s.lockKey)).toBe(1);
    await s.A.settle([{ taskId: 'l', token, outcome: 'ok', detail: 'x' }], SETTLE, Date.now());
    const row = await running;
    expect((row as { phase?: string }).phase).toBe('done');
    expect(await client.hget(s.b.task('r'), 'state')).toBe('runnable');
  }, 30_000);

  it('a migrator resumes a move another left unfinished once its lease runs out', async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { lockMs: 300, pollMs: 10 });
    await s.onA.submitMany([{ id: 'r', type: 't', tenant: MOVER }]);
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    // Another migrator holds the move's lease and stops (a crash): nobody else runs it then.
    await client.set(s.lockKey, 'crashed', 'PX', 400);
    const migrator = await PlacementMigrator.start({ ...s.opts, knobs });
    await setMap({ [MOVER]: TARGET });
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'done',
      'the move done',
    );
    expect(await client.hget(s.b.task('r'), 'state')).toBe('runnable');
    await migrator.close();
    await knobs.close();
  }, 30_000);

  it('a map change while an earlier move is unfinished finishes that move first', async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { lockMs: 300, pollMs: 10 });
    const third = shards[(HOME + 2) % 3] as string;
    const c = new SchedKeys(keys, third);
    await s.onA.submitMany([{ id: 'r', type: 't', tenant: MOVER }]);
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    // The first move (home -> target) cannot run yet: another migrator holds its lease.
    await client.set(s.lockKey, 'crashed', 'PX', 1_500);
    const migrator = await PlacementMigrator.start({ ...s.opts, knobs });
    await setMap({ [MOVER]: TARGET });
    await eventually(async () => (await readMigration(client, keys, MOVER)) !== null, 'a row');
    // Then the map moves the tenant on again, before the first move's retry.
    const v3 = await setMap({ [MOVER]: (HOME + 2) % 3 });
    await eventually(async () => {
      const row = await readMigration(client, keys, MOVER);
      return row?.knobVersion === v3 && row.phase === 'done';
    }, 'the second move done');
    // Before, the second move replaced the first's row and started from the target, where the
    // tenant's rows never were: r stayed on its home shard, away from where the map says.
    expect(await client.hget(c.task('r'), 'state')).toBe('runnable');
    expect(await client.zscore(c.runnable(), 'r')).not.toBeNull();
    expect(await client.zscore(s.a.runnable(), 'r')).toBeNull();
    expect(await client.hget(s.a.task('r'), 'state')).toBe('moved');
    // It went through the target: the first move ran to its end first.
    expect(await client.hget(s.b.task('r'), 'state')).toBe('moved');
    await migrator.close();
    await knobs.close();
  }, 30_000);

  it("a move that cannot finish yet holds up neither other tenants' moves nor close()", async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { lockMs: 300, pollMs: 10 });
    const other = 'other-mover';
    const otherHome = shards[hashShard(other, 3)] as string;
    const otherTarget = (hashShard(other, 3) + 1) % 3;
    await s.onA.submitMany([{ id: 'r', type: 't', tenant: MOVER }]);
    await new SchedulerClient({ shard: new SchedShard(client, keys, otherHome) }).submitMany([
      { id: 'o', type: 't', tenant: other },
    ]);
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    // The mover's first move cannot run for a while: another migrator holds its lease.
    await client.set(s.lockKey, 'crashed', 'PX', 6_000);
    const migrator = await PlacementMigrator.start({ ...s.opts, knobs });
    await setMap({ [MOVER]: TARGET });
    await eventually(async () => (await readMigration(client, keys, MOVER)) !== null, 'a row');
    // A later change moves the mover again and another tenant too.
    await setMap({ [MOVER]: (HOME + 2) % 3, [other]: otherTarget });
    const t0 = Date.now();
    await eventually(
      async () => (await readMigration(client, keys, other))?.phase === 'done',
      "the other tenant's move done",
      3_000,
    );
    // Before, the migrator's queue waited (spinning on the lease) until the mover's move ran.
    expect(await client.pttl(s.lockKey)).toBeGreaterThan(0);
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('freeze');
    const c0 = Date.now();
    await migrator.close();
    expect(Date.now() - c0).toBeLessThan(1_000);
    expect(Date.now() - t0).toBeLessThan(6_000);
    await knobs.close();
  }, 30_000);

  it("a retried move waits its grace from the retry's freeze, and routers hold at once", async () => {
    const keys = uniqueKeys();
    const s = setup(keys, { graceMs: 400 });
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards, holdMaxMs: 150 });
    await s.onA.submitMany([
      { id: 'x', type: 't', tenant: MOVER },
      { id: 'y', type: 't', tenant: OTHER, parents: ['x'] },
    ]);
    await setMap({ [MOVER]: TARGET });
    const m0 = await Migration.begin(
      s.opts,
      MOVER,
      s.opts.shards[HOME] as string,
      s.opts.shards[TARGET] as string,
      knobs.version('placement.map'),
    );
    await m0.run().catch(() => undefined);
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('refused');
    // The router stays on A (and has just read the row).
    expect(await router.submit({ id: 'n', type: 't', tenant: MOVER })).toEqual({
      id: 'n',
      created: true,
    });
    await s.finish(s.A, 'x');
    await s.finish(s.A, 'y');
    await sleep(600); // past the first attempt's grace
    // The router reads the row (still refused) just before the retry starts.
    expect(await router.submit({ id: 'n2', type: 't', tenant: MOVER })).toEqual({
      id: 'n2',
      created: true,
    });
    // A retry starts: the router's next submit is held (before, it went to A for 100 ms).
    await client.hset(`${keys.key('placement', 'migration', MOVER)}`, { phase: 'freeze' });
    await expect(router.submit({ id: 'h', type: 't', tenant: MOVER })).rejects.toBeInstanceOf(
      TenantMovingError,
    );
    expect(await client.exists(s.a.task('h'))).toBe(0);
    await client.hset(`${keys.key('placement', 'migration', MOVER)}`, { phase: 'refused' });
    const row = await readMigration(client, keys, MOVER);
    const t0 = Date.now();
    const done = await new Migration(s.opts, row as NonNullable<typeof row>).run();
    expect(done.phase).toBe('done');
    // Before, the grace was measured from the first attempt: the retry switched at once.
    expect((done.switchedAt ?? 0) - t0).toBeGreaterThanOrEqual(400);
    router.close();
    await knobs.close();
  }, 30_000);
});
