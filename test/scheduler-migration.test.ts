// Live placement migration on a 3-primary cluster: a tenant moves to another shard while its
// tasks (DAGs, idempotency keys) are being submitted and run; every task runs and completes
// exactly once, late resubmissions create nothing, and the submits' pause is bounded. A
// migrator that stops after any phase (a crash) is completed by the next one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashShard } from '../policies/placement/hash.ts';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import {
  released,
  readMigration,
  type MigrationPhase,
} from '../controlplane/scheduler/migration-row.ts';
import { Migration } from '../controlplane/scheduler/migration.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { SchedKeys } from '../controlplane/scheduler/keys.ts';
import { SchedulerRouter, startShardServices } from '../controlplane/scheduler/router.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { ParentMovedError, UnknownParentError } from '../controlplane/scheduler/errors.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import type { SchedulerService } from '../controlplane/scheduler/service.ts';
import { WorkerRuntime } from '../controlplane/scheduler/worker.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { claim, heartbeatWorker, quietLog } from './helpers/scheduler-harness.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const MOVER = 'mover';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('live placement migration on a 3-primary cluster', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let shards: string[];
  const home = hashShard(MOVER, 3);
  const target = (home + 1) % 3;

  beforeAll(async () => {
    redis = await startTestRedis('cluster');
    client = redis.client();
    shards = await shardNamesOnPrimaries(client, 3);
  }, 120_000);
  afterAll(async () => redis?.stop());

  async function world(keys: Keys) {
    const { knobs, setMap } = await placementKnobs(client, keys, 5_000);
    const services: SchedulerService[] = startShardServices(shards, {
      redis: client,
      knobs,
      keys,
      log: quietLog,
      idleWaitMs: 50,
      reapIntervalMs: 50,
    });
    const runs = new Map<string, number>();
    const ranOn = new Map<string, string>();
    const workers: WorkerRuntime[] = [];
    const startWorkers = async () => {
      for (const shard of shards)
        workers.push(
          await WorkerRuntime.start({
            redis: redis.client(),
            keys,
            shard,
            concurrency: 2,
            log: quietLog,
            heartbeatMs: 200,
            handlers: {
              t: async (ctx) => {
                runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
                ranOn.set(ctx.id, shard);
                await sleep(15); // slower than the producer: a backlog is queued when it moves
                return null;
              },
            },
          }),
        );
    };
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards });
    const moveMover = async () => {
      const version = await setMap({ [MOVER]: target });
      await eventually(
        () => router.placement.indexOf(MOVER) === target,
        'the router sees the move',
      );
      return version;
    };
    /** Moves the mover back to its home shard (a later placement version). */
    const moveMoverBack = async () => {
      const version = await setMap({ [MOVER]: home });
      await eventually(() => router.placement.indexOf(MOVER) === home, 'the router sees it');
      return version;
    };
    const doneEverywhere = async () =>
      (await Promise.all(services.map((s) => s.queries.counts()))).reduce((n, c) => n + c.done, 0);
    const stop = async () => {
      router.close();
      await Promise.all(workers.map((w) => w.stop({ drain: true })));
      await Promise.all(services.map((s) => s.stop()));
      await knobs.close();
    };
    /** A migrator over this world's shards, with the given grace and sweep settings. */
    const startMigrator = (o: { graceMs: number; sweepMs: number; sweepEveryMs?: number }) =>
      PlacementMigrator.start({ redis: client, knobs, keys, shards, log: quietLog, ...o });
    return {
      knobs,
      router,
      runs,
      ranOn,
      startWorkers,
      moveMover,
      moveMoverBack,
      doneEverywhere,
      startMigrator,
      stop,
    };
  }

  it('moves a tenant under load: every task completes exactly once, the pause is bounded', async () => {
    const keys = uniqueKeys();
    const w = await world(keys);
    await w.startWorkers();
    const migrator = await w.startMigrator({ graceMs: 200, sweepMs: 1_000 });
    const created = new Map<string, string>(); // id -> tenant
    const submittedAt = new Map<string, number>();
    let stopping = false;
    let n = 0;
    let longestSubmitMs = 0;
    const producer = (async () => {
      while (!stopping) {
        const i = n++;
        const t0 = Date.now();
        const rs = await w.router.submitMany([
          { id: `p${i}`, type: 't', tenant: MOVER, idempotencyKey: `k-p${i}` },
          { id: `c${i}`, type: 't', tenant: MOVER, parents: [`p${i}`], jobId: `j${i}` },
          { id: `s${i}`, type: 't', tenant: 'stay' },
        ]);
        longestSubmitMs = Math.max(longestSubmitMs, Date.now() - t0);
        for (const [j, r] of rs.entries()) {
          if (!r.created) continue;
          created.set(r.id, j < 2 ? MOVER : 'stay');
          submittedAt.set(r.id, Date.now());
        }
        // A resubmission of an earlier idempotency key names the existing task.
        if (i > 5) {
          const again = await w.router.submit({
            type: 't',
            tenant: MOVER,
            idempotencyKey: `k-p${i - 5}`,
          });
          expect(again).toEqual({ id: `p${i - 5}`, created: false });
        }
        await sleep(5);
      }
    })();
    await sleep(600);
    const version = await w.moveMover();
    // The producer runs on past the switch (however long a loaded machine makes the move), so
    // some of the mover's tasks are submitted after it.
    await eventually(
      async () => released(await readMigration(client, keys, MOVER), version),
      'the mover switched',
      30_000,
    );
    await sleep(500);
    stopping = true;
    await producer;
    await migrator.idle();
    const row = await readMigration(client, keys, MOVER);
    expect(row?.phase).toBe('done');
    expect(row?.knobVersion).toBe(version);
    expect(row?.from).toBe(shards[home]);
    expect(row?.to).toBe(shards[target]);
    await eventually(
      async () => (await w.doneEverywhere()) === created.size,
      'every task done',
      30_000,
    );
    // Exactly once: every created task ran once, nothing else ran.
    expect(w.runs.size).toBe(created.size);
    expect([...w.runs.values()].filter((c) => c !== 1)).toEqual([]);
    // Tasks submitted after the switch ran on the new shard; every mover row left the old one.
    const after = [...created].filter(
      ([id, t]) =>
        t === MOVER && (submittedAt.get(id) as number) > (row?.switchedAt as number) + 50,
    );
    expect(after.length).toBeGreaterThan(0);
    for (const [id] of after) expect(w.ranOn.get(id)).toBe(shards[target]);
    for (const [id, t] of created) {
      const got = await w.router.get(id, t);
      expect(got?.state).toBe('done');
    }
    const pauseMs = (row?.switchedAt as number) - (row?.startedAt as number);
    console.log(
      `migration: moved ${row?.moved} rows, pause ${pauseMs} ms, longest submit ${longestSubmitMs} ms, ${created.size} tasks`,
    );
    expect(pauseMs).toBeLessThan(10_000);
    expect(longestSubmitMs).toBeLessThan(10_000);
    await migrator.close();
    await w.stop();
  }, 90_000);

  it('moves a task a stale router lands on the old shard after the switch (the sweep)', async () => {
    const keys = uniqueKeys();
    const w = await world(keys);
    await w.startWorkers();
    const migrator = await w.startMigrator({ graceMs: 0, sweepMs: 2_000, sweepEveryMs: 50 });
    await w.moveMover();
    await eventually(
      async () => (await readMigration(client, keys, MOVER))?.phase === 'clean',
      'the switch',
    );
    // A router that never saw the change submits to the old shard.
    const stale = w.router.client(shards[home] as string);
    await stale.submitMany([
      { id: 'late-p', type: 't', tenant: MOVER },
      { id: 'late-c', type: 't', tenant: MOVER, parents: ['late-p'] },
    ]);
    await migrator.idle();
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('done');
    await eventually(async () => (await w.doneEverywhere()) === 2, 'both late tasks done', 20_000);
    expect(w.runs.get('late-p')).toBe(1);
    expect(w.runs.get('late-c')).toBe(1);
    // Whichever shard ran the parent, both end up as done rows on the new shard only.
    expect((await w.router.client(shards[target] as string).get('late-c'))?.state).toBe('done');
    expect(await stale.get('late-p')).toBeNull();
    await migrator.close();
    await w.stop();
  }, 60_000);

  for (const crashAfter of ['freeze', 'copy', 'switched'] as MigrationPhase[]) {
    it(`a migrator that stops after ${crashAfter} is completed by the next one`, async () => {
      const keys = uniqueKeys();
      const w = await world(keys);
      // Runnable tasks, a DAG and an idempotency key on the old shard; no workers yet.
      const rs = await w.router.submitMany([
        ...Array.from({ length: 30 }, (_, i) => ({ id: `a${i}`, type: 't', tenant: MOVER })),
        { id: 'p', type: 't', tenant: MOVER, idempotencyKey: 'kp' },
        { id: 'c', type: 't', tenant: MOVER, parents: ['p'] },
      ]);
      const version = await w.moveMover();
      const opts = { redis: client, keys, shards, log: quietLog, graceMs: 0, sweepMs: 100 };
      const first = await Migration.begin(
        opts,
        MOVER,
        shards[home] as string,
        shards[target] as string,
        version,
      );
      expect((await first.run(crashAfter)).phase).not.toBe('done');
      const migrator = await PlacementMigrator.start({ ...opts, knobs: w.knobs });
      await migrator.idle();
      expect((await readMigration(client, keys, MOVER))?.phase).toBe('done');
      // The old shard holds only tombstones: a resubmission there creates nothing.
      const old = w.router.client(shards[home] as string);
      const oldKeys = new SchedKeys(keys, shards[home] as string);
      expect(await client.hmget(oldKeys.task('a0'), 'state', 'moved_to')).toEqual([
        'moved',
        shards[target],
      ]);
      expect(await old.submit({ id: 'a0', type: 't', tenant: MOVER })).toEqual({
        id: 'a0',
        created: false,
      });
      expect(await w.router.submit({ type: 't', tenant: MOVER, idempotencyKey: 'kp' })).toEqual({
        id: 'p',
        created: false,
      });
      await w.startWorkers();
      await eventually(
        async () => (await w.doneEverywhere()) === rs.length,
        'every task done',
        20_000,
      );
      expect(w.runs.size).toBe(rs.length);
      expect([...w.runs.values()].every((c) => c === 1)).toBe(true);
      expect([...w.ranOn.values()].every((s) => s === shards[target])).toBe(true);
      expect((await w.router.get('c', MOVER))?.state).toBe('done');
      await migrator.close();
      await w.stop();
    }, 60_000);
  }
  it('keeps the copied tasks frozen on the new shard until every row is there', async () => {
    const keys = uniqueKeys();
    const w = await world(keys);
    await w.router.submitMany([
      { id: 'p', type: 't', tenant: MOVER, jobId: 'j' },
      { id: 'c', type: 't', tenant: MOVER, parents: ['p'], jobId: 'j' },
    ]);
    const version = await w.moveMover();
    const opts = { redis: client, keys, shards, log: quietLog, graceMs: 0, sweepMs: 100 };
    const m = await Migration.begin(
      opts,
      MOVER,
      shards[home] as string,
      shards[target] as string,
      version,
    );
    await m.run('freeze');
    // The copy alone (the step that runs page by page while B's dispatcher runs): p must not
    // be runnable on B yet, or it could finish there before c's page is copied, and its
    // completion would update a c that B does not have (c was lost).
    await (m as unknown as { copyAll(): Promise<void> }).copyAll();
    const B = new SchedKeys(keys, shards[target] as string);
    expect(await client.hget(B.task('p'), 'state')).toBe('moving');
    expect(await client.zscore(B.runnable(), 'p')).toBeNull();
    expect(await client.hget(B.task('c'), 'state')).toBe('pending');
    // The rest of the move thaws it: p runs on B, then c.
    await m.run();
    expect(await client.hget(B.task('p'), 'state')).toBe('runnable');
    expect(await client.hlen(B.staged(MOVER))).toBe(0);
    await w.startWorkers();
    await eventually(async () => (await w.doneEverywhere()) === 2, 'p and c done', 20_000);
    expect(w.runs.get('c')).toBe(1);
    await w.stop();
  });

  it("moves a job's set of tasks with it: the job is cancelled on its new shard", async () => {
    const keys = uniqueKeys();
    const w = await world(keys);
    await w.router.submitMany([
      { id: 'jp', type: 't', tenant: MOVER, jobId: 'jm' },
      { id: 'jc', type: 't', tenant: MOVER, parents: ['jp'], jobId: 'jm' },
      { id: 'jq', type: 't', tenant: MOVER, jobId: 'jm' },
    ]);
    const version = await w.moveMover();
    const opts = { redis: client, keys, shards, log: quietLog, graceMs: 0, sweepMs: 100 };
    const from = shards[home] as string;
    const to = shards[target] as string;
    await (await Migration.begin(opts, MOVER, from, to, version)).run();
    const A = new SchedKeys(keys, from);
    expect(await client.exists(A.job('jm'), A.jobTasks('jm'))).toBe(0);
    const r = await w.router.cancelJob('jm', MOVER, { actor: 'alice', reason: 'moved' });
    expect(r).toEqual({ job: 'jm', cancelled: ['jc', 'jp', 'jq'], dependents: 0, ended: 0 });
    await w.stop();
  });

  it("moves a tenant back within the tombstones' lifetime: every task stays live and runs", async () => {
    const keys = uniqueKeys();
    const homeShard = shards[home] as string;
    const targetShard = shards[target] as string;
    // A task done on the home shard before anything moves (a worker of its own, then gone).
    const A = new SchedShard(client, keys, homeShard);
    await new SchedulerClient({ shard: A }).submitMany([{ id: 'd', type: 't', tenant: MOVER }]);
    const now = Date.now();
    await heartbeatWorker(A, 'w0', now);
    const token = await claim(A, 'd', 'w0', now);
    const settled = await A.settle(
      [{ taskId: 'd', token, outcome: 'ok', detail: null }],
      { durationsKept: 101, usageBucketMs: 60_000, usageTtlMs: 3_600_000, jobTtlMs: 3_600_000 },
      now + 1,
    );
    expect(settled[0]?.status).toBe('ok');
    await A.deregister('w0', now + 2);

    const w = await world(keys);
    const migrator = await w.startMigrator({ graceMs: 0, sweepMs: 100, sweepEveryMs: 20 });
    await w.router.submitMany([
      { id: 'x1', type: 't', tenant: MOVER },
      { id: 'p', type: 't', tenant: MOVER, jobId: 'j' },
      { id: 'c', type: 't', tenant: MOVER, parents: ['p'], jobId: 'j', idempotencyKey: 'kc' },
    ]);
    await w.moveMover();
    await migrator.idle();
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('done');
    const version = await w.moveMoverBack();
    await migrator.idle();
    const row = await readMigration(client, keys, MOVER);
    expect(row).toMatchObject({ phase: 'done', knobVersion: version, from: targetShard });
    expect(row?.to).toBe(homeShard);

    // Home has the live rows again (not tombstones, no expiry), indexed as before the moves.
    const a = new SchedKeys(keys, homeShard);
    const b = new SchedKeys(keys, targetShard);
    const state = async (k: SchedKeys, id: string) => client.hget(k.task(id), 'state');
    expect(await state(a, 'x1')).toBe('runnable');
    expect(await state(a, 'p')).toBe('runnable');
    expect(await state(a, 'c')).toBe('pending');
    expect(await state(a, 'd')).toBe('done');
    expect(await client.zscore(a.runnable(), 'x1')).not.toBeNull();
    expect(await client.zscore(a.runnable(), 'p')).not.toBeNull();
    expect(await client.zscore(a.runnable(), 'c')).toBeNull();
    expect(await client.zscore(a.done(), 'd')).not.toBeNull();
    expect(await client.hmget(a.task('c'), 'parents', 'pending')).toEqual(['p', '1']);
    expect(await client.smembers(a.children('p'))).toEqual(['c']);
    expect(await client.hget(a.idem(), 'kc')).toBe('c');
    for (const id of ['x1', 'p', 'c', 'd']) {
      expect(await client.pttl(a.task(id)), id).toBe(-1);
      expect(await client.hget(a.task(id), 'moved_to'), id).toBeNull();
      // The target keeps only a tombstone pointing home.
      expect(await client.hmget(b.task(id), 'state', 'moved_to'), id).toEqual(['moved', homeShard]);
    }
    // A retry sends the same task (another one under the key is refused: same_content).
    expect(
      await w.router.submit({
        type: 't',
        tenant: MOVER,
        parents: ['p'],
        jobId: 'j',
        idempotencyKey: 'kc',
      }),
    ).toEqual({ id: 'c', created: false });

    await w.startWorkers();
    await eventually(async () => (await w.doneEverywhere()) === 4, 'every task done', 20_000);
    expect(Object.fromEntries(w.runs)).toEqual({ x1: 1, p: 1, c: 1 });
    expect([...w.ranOn.values()].every((s) => s === homeShard)).toBe(true);
    for (const id of ['x1', 'p', 'c', 'd'])
      expect((await w.router.get(id, MOVER))?.state, id).toBe('done');
    await migrator.close();
    await w.stop();
  }, 60_000);

  it('refuses a late submit to the old shard naming a moved parent, and writes nothing', async () => {
    const keys = uniqueKeys();
    const w = await world(keys);
    const migrator = await w.startMigrator({ graceMs: 0, sweepMs: 100, sweepEveryMs: 20 });
    await w.router.submitMany([{ id: 'p', type: 't', tenant: MOVER }]);
    await w.moveMover();
    await migrator.idle();
    expect((await readMigration(client, keys, MOVER))?.phase).toBe('done');
    const a = new SchedKeys(keys, shards[home] as string);
    expect(await client.hget(a.task('p'), 'state')).toBe('moved');

    // A router that never saw the change submits to the old shard: n1 first, then a child of p.
    const stale = w.router.client(shards[home] as string);
    const err = await stale
      .submitMany([
        { id: 'n1', type: 't', tenant: MOVER },
        { id: 'n2', type: 't', tenant: MOVER, parents: ['p'], idempotencyKey: 'k2' },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParentMovedError);
    expect(err).toBeInstanceOf(UnknownParentError);
    expect((err as ParentMovedError).code).toBe('KNOBOS_SCHEDULER_UNKNOWN_PARENT');
    expect((err as ParentMovedError).details).toMatchObject({
      field: 'parents',
      rule: 'parent_moved',
      task: 'n2',
      parent: 'p',
    });
    expect((err as Error).message).toMatch(/n2.*parent p moved/);
    // Nothing of the batch was written: no rows, no index entries, no edge, no idempotency key.
    expect(await client.exists(a.task('n1'), a.task('n2'), a.children('p'))).toBe(0);
    expect(await client.zscore(a.runnable(), 'n1')).toBeNull();
    expect(await client.hget(a.idem(), 'k2')).toBeNull();
    expect(await client.hgetall(a.task('p'))).toEqual({
      state: 'moved',
      moved_to: shards[target],
    });
    // So the same batch without the moved parent is created whole.
    expect(await stale.submitMany([{ id: 'n1', type: 't', tenant: MOVER }])).toEqual([
      { id: 'n1', created: true },
    ]);
    await migrator.close();
    await w.stop();
  }, 60_000);
});
