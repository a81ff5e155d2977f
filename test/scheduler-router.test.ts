// The sharded scheduler on a 3-primary cluster: tenants routed by the placement knob (hash for
// unlisted tenants, the map live after a promotion), cross-shard DAG edges refused, and one
// service per shard running every shard's tasks exactly once, each shard on its own primary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashShard } from '../policies/placement/hash.ts';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { SchedulerInputError } from '../controlplane/scheduler/errors.ts';
import { Placement, shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { migrationKey, TenantMovingError } from '../controlplane/scheduler/migration-row.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { SchedulerRouter, startShardServices } from '../controlplane/scheduler/router.ts';
import type { SchedulerService } from '../controlplane/scheduler/service.ts';
import { WorkerRuntime } from '../controlplane/scheduler/worker.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import { placementKnobs } from './helpers/placement-knobs.ts';
import { quietLog } from './helpers/scheduler-harness.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sharded scheduler on a 3-primary cluster', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let shards: string[];

  beforeAll(async () => {
    redis = await startTestRedis('cluster');
    client = redis.client();
    shards = await shardNamesOnPrimaries(client, 3);
  }, 120_000);
  afterAll(async () => redis?.stop());

  const setup = (keys: Keys) => placementKnobs(client, keys, 2_000);

  it('names shards whose slots are on three different primaries', async () => {
    const primaries = await Promise.all(
      shards.map(async (s) => {
        const slot = Number(await client.call('CLUSTER', 'KEYSLOT', `{sched:${s}}`));
        return (await redis.cluster!.primaryForSlot(slot)).port;
      }),
    );
    expect(new Set(primaries).size).toBe(3);
  });

  it('routes an unlisted tenant by hash and a listed one by the map, live', async () => {
    const keys = uniqueKeys();
    const { knobs, setMap } = await setup(keys);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards });
    const migrator = await PlacementMigrator.start({
      redis: client,
      knobs,
      keys,
      shards,
      log: quietLog,
      graceMs: 0,
      sweepMs: 0,
    });
    const tenant = 'acme';
    const home = hashShard(tenant, 3);
    const a = await router.submit({ type: 't', tenant });
    expect(await router.client(shards[home] as string).get(a.id)).not.toBeNull();
    const moved = (home + 1) % 3;
    await setMap({ [tenant]: moved });
    expect(router.placement.shardOf(tenant)).toBe(shards[moved]);
    // The submit waits for the tenant's switch, then goes to its new shard.
    const b = await router.submit({ type: 't', tenant });
    expect(await router.client(shards[moved] as string).get(b.id)).not.toBeNull();
    expect(await router.client(shards[home] as string).get(b.id)).toBeNull();
    await migrator.idle();
    // The task submitted before the move moved with its tenant.
    expect(await router.client(shards[home] as string).get(a.id)).toBeNull();
    expect((await router.get(a.id))?.tenant).toBe(tenant);
    expect((await router.get(b.id, tenant))?.id).toBe(b.id);
    await migrator.close();
    router.close();
    await knobs.close();
  });

  it("fails a moving tenant's submit with a typed error when no migrator switches it", async () => {
    const keys = uniqueKeys();
    const { knobs, setMap } = await setup(keys);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards, holdMaxMs: 200 });
    const tenant = 'acme';
    await setMap({ [tenant]: (hashShard(tenant, 3) + 1) % 3 });
    await expect(router.submit({ type: 't', tenant })).rejects.toBeInstanceOf(TenantMovingError);
    // Other tenants are not held.
    expect((await router.submit({ type: 't', tenant: 'other' })).created).toBe(true);
    router.close();
    await knobs.close();
  });

  it('waits for a tenant that became held while the batch waited for another', async () => {
    const keys = uniqueKeys();
    const { knobs, setMap } = await setup(keys);
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards, holdMaxMs: 5_000 });
    const [acme, bob] = ['acme', 'bob'];
    const moveTo = (t: string) => (hashShard(t, 3) + 1) % 3;
    await setMap({ [acme]: moveTo(acme) });
    const switched = async (tenant: string, version: number) => {
      // What a migrator writes when the move has switched (the router polls for it).
      await client.hset(migrationKey(keys, tenant), {
        tenant,
        from: 'x',
        to: 'y',
        phase: 'switched',
        knob_version: version,
      });
    };
    let done = false;
    const submitted = router
      .submitMany([
        // bob first: it is checked (not held) before the wait for acme starts.
        { type: 't', tenant: bob },
        { type: 't', tenant: acme },
      ])
      .finally(() => (done = true));
    await sleep(100);
    // While the batch waits for acme, bob starts moving too; then acme's move switches.
    const version = await setMap({ [acme]: moveTo(acme), [bob]: moveTo(bob) });
    await switched(acme, version);
    await sleep(300);
    // Before, the batch went out here, bob's task to its new shard in the middle of its move.
    expect(done).toBe(false);
    await switched(bob, version);
    const [ra, rb] = await submitted;
    expect([ra?.created, rb?.created]).toEqual([true, true]);
    router.close();
    await knobs.close();
  });

  it('refuses a batch whose DAG spans shards, and submits none of it', async () => {
    const keys = uniqueKeys();
    const { knobs, setMap } = await setup(keys);
    await setMap({ x: 0, y: 1 });
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards });
    const err = await router
      .submitMany([
        { id: 'p', type: 't', tenant: 'x' },
        { id: 'c', type: 't', tenant: 'y', parents: ['p'] },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchedulerInputError);
    expect((err as SchedulerInputError).field).toBe('parents');
    expect((err as SchedulerInputError).rule).toBe('same_shard');
    expect(await router.get('p')).toBeNull();
    // The same DAG under one tenant is one shard's DAG.
    const ok = await router.submitMany([
      { id: 'p', type: 't', tenant: 'x' },
      { id: 'c', type: 't', tenant: 'x', parents: ['p'] },
    ]);
    expect(ok.map((r) => r.created)).toEqual([true, true]);
    expect((await router.get('c', 'x'))?.state).toBe('pending');
    await knobs.close();
  });

  it('runs every shard with its own service: each task completes exactly once', async () => {
    const keys = uniqueKeys();
    const { knobs, setMap } = await setup(keys);
    await setMap({ t0: 0, t1: 1, t2: 2 });
    const services: SchedulerService[] = startShardServices(shards, {
      redis: client,
      knobs,
      keys,
      log: quietLog,
      idleWaitMs: 100,
      reapIntervalMs: 50,
    });
    const runs = new Map<string, number>();
    const ranOn = new Map<string, string>();
    const workers = await Promise.all(
      shards.map((shard) =>
        WorkerRuntime.start({
          redis: redis.client(),
          keys,
          shard,
          concurrency: 8,
          log: quietLog,
          heartbeatMs: 200,
          handlers: {
            t: (ctx) => {
              runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
              ranOn.set(ctx.id, shard);
              return null;
            },
          },
        }),
      ),
    );
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards });
    const specs = Array.from({ length: 150 }, (_, i) => ({ type: 't', tenant: `t${i % 3}` }));
    const submitted = await router.submitMany(specs);
    await eventually(
      async () => {
        const counts = await Promise.all(services.map((s) => s.queries.counts()));
        return counts.reduce((n, c) => n + c.done, 0) === 150;
      },
      'every task done',
      30_000,
    );
    expect(runs.size).toBe(150);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    submitted.forEach((r, i) => expect(ranOn.get(r.id)).toBe(shards[i % 3]));
    for (const s of services) expect(await s.queries.staleCompletions()).toBe(0);
    await Promise.all(workers.map((w) => w.stop({ drain: true })));
    await Promise.all(services.map((s) => s.stop()));
    await knobs.close();
  }, 60_000);

  it('refuses a shard list that does not match the knob', async () => {
    const keys = uniqueKeys();
    const { knobs } = await setup(keys);
    expect(() => new Placement(knobs, ['a', 'b'])).toThrow(SchedulerInputError);
    expect(() => new Placement(knobs, ['a', 'a', 'b'])).toThrow(/distinct/);
    await knobs.close();
  });
});
