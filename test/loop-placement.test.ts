// The placement tuning target on a live sharded scheduler: two hot tenants placed on one shard
// make an imbalance the usage tables show; the trained placement scorer proposes moving load
// off that shard, the gate's evaluations prefer the candidate, shadow on live usage agrees, and
// promoting it through KnobTable.promote makes the migrator move the tenant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KnobValues, PlacementMap } from '../knobs/index.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { runGate } from '../controlplane/loop/gate.ts';
import { PlacementTarget } from '../controlplane/loop/targets/placement.ts';
import { readMigration } from '../controlplane/scheduler/migration-row.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { PLACEMENT_KNOB } from '../controlplane/scheduler/placement.ts';
import { SchedulerRouter, startShardServices } from '../controlplane/scheduler/router.ts';
import { SCHEDULER_KNOBS } from '../controlplane/scheduler/service.ts';
import { WorkerRuntime } from '../controlplane/scheduler/worker.ts';
import { catalogWith, quietLog } from './helpers/scheduler-harness.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

// Buckets short enough that each of the gate's samples spans several: a sample of one bucket
// is noise when a stalled shard completes nothing in it (seen under CI load: gate inconclusive).
const BUCKET_MS = 100;
const SHARDS = ['0', '1', '2'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('placement loop target', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => redis?.stop());

  it('proposes moving a hot tenant off the hot shard; its promotion migrates it', async () => {
    const keys = uniqueKeys();
    const client = redis.client();
    const skewed: PlacementMap = { 'hot-a': 0, 'hot-b': 0, 'cold-c': 1, 'cold-d': 2 };
    // The skewed map is the seeded value; no cooldown, so the proposal can be promoted at once.
    const catalog = catalogWith({ [PLACEMENT_KNOB]: skewed }).map((k) =>
      k.name === PLACEMENT_KNOB ? { ...k, safety: { ...k.safety, cooldownMs: 0 } } : k,
    );
    const table = new KnobTable(client, { keys, catalog });
    await table.seed();
    const knobs = await KnobClient.start({
      table,
      names: [...SCHEDULER_KNOBS, PLACEMENT_KNOB],
      resyncIntervalMs: 200,
    });
    const services = startShardServices(SHARDS, {
      redis: client,
      knobs,
      keys,
      log: quietLog,
      idleWaitMs: 50,
    });
    const workers = await Promise.all(
      SHARDS.map((shard) =>
        WorkerRuntime.start({
          redis: redis.client(),
          keys,
          shard,
          concurrency: 8,
          log: quietLog,
          settle: { usageBucketMs: BUCKET_MS },
          handlers: { t: async (ctx) => sleep((ctx.payload as { ms: number }).ms) },
        }),
      ),
    );
    const router = new SchedulerRouter({ redis: client, knobs, keys, shards: SHARDS });
    const migrator = await PlacementMigrator.start({
      redis: client,
      knobs,
      keys,
      shards: SHARDS,
      log: quietLog,
      graceMs: 50,
      sweepMs: 200,
    });
    // Hot tenants run 10x longer tasks: shard 0 completes far more core-ms than the others.
    const start = Date.now();
    while (Date.now() - start < 2_000) {
      await router.submitMany(
        Object.keys(skewed).map((tenant) => ({
          type: 't',
          tenant,
          payload: { ms: tenant.startsWith('hot') ? 20 : 2 },
        })),
      );
      await sleep(10);
    }
    await sleep(300);
    const target = new PlacementTarget({
      knobs: table,
      shards: SHARDS,
      windowMs: Date.now() - start, // the loaded period only
      bucketMs: BUCKET_MS,
      minLoadMs: 100,
      stateBytes: 1024 ** 2,
      shadowMs: 0,
      shadowMinBuckets: 2,
    });
    const cal = await target.calibrate();
    expect(cal).not.toBeNull();
    expect(cal!.fit.observed).toBeGreaterThan(0.5); // shard 0 carries well over the mean
    const current = { [PLACEMENT_KNOB]: skewed };
    const cand = await target.propose(cal!, current);
    expect(cand).not.toBeNull();
    const next = cand!.values[PLACEMENT_KNOB] as PlacementMap;
    const movedOff = Object.keys(skewed).filter((t) => skewed[t] === 0 && next[t] !== 0);
    expect(movedOff.length).toBeGreaterThan(0);
    // The loop's gate: paired evaluations of both maps on seeded slices of the window.
    const gate = await runGate(
      (v: KnobValues, seed, slice) => target.evaluate(cal!, v, seed, slice),
      current,
      cand!.values,
      { ...target.gate, seed: 1 },
    );
    expect(gate.outcome).toBe('successful');
    expect(gate.candidateMean).toBeLessThan(gate.incumbentMean);
    const shadow = await target.startShadow(current, cand!.values, start);
    expect((await shadow.report()).verdict).toBe('better');
    // A shadow begun after the load stopped sees only idle buckets: no verdict on time alone.
    const idle = await target.startShadow(current, cand!.values, Date.now());
    await sleep(4 * BUCKET_MS);
    expect(await idle.report()).toMatchObject({ verdict: 'pending', details: { buckets: 0 } });

    // The loop promotes through the knob table; the migrator moves the tenant.
    await table.promote({
      name: PLACEMENT_KNOB,
      value: next,
      baseVersion: (await table.get(PLACEMENT_KNOB)).version,
      actor: 'loop',
      reason: 'placement proposal',
    });
    const moved = movedOff[0] as string;
    await eventually(
      async () => (await readMigration(client, keys, moved))?.phase === 'done',
      'the moved tenant migrated',
      20_000,
    );
    expect(router.placement.shardOf(moved)).toBe(SHARDS[next[moved] as number]);
    const r = await router.submit({ type: 't', tenant: moved, payload: { ms: 1 } });
    expect((await router.client(SHARDS[next[moved] as number] as string).get(r.id))?.tenant).toBe(
      moved,
    );

    await migrator.close();
    router.close();
    await Promise.all(workers.map((w) => w.stop({ drain: true })));
    await Promise.all(services.map((s) => s.stop()));
    await knobs.close();
  }, 60_000);
});
