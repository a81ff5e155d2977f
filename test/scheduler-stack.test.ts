// The scheduler stack `npm start` runs, on a 3-primary cluster (ACLs off): its three shard
// names hash to slots on three different primaries, the skewed workload submitted through the
// router completes tasks on every shard, the busiest shard is the one the hot tenant hashes
// to, both loop targets calibrate from all shards (the policy target's window holds every
// shard's jobs), and stop() ends the stack. On one Redis: a start that fails part way (the
// migrator, or one shard's worker) leaves nothing running, and stop() runs every step even when
// one fails.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { startSchedulerStack, type SchedulerStack } from '../controlplane/run/scheduler-stack.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { WorkerRuntime } from '../controlplane/scheduler/worker.ts';
import { clientCount, nothingLeft, stackSetup } from './helpers/leftovers.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('npm start scheduler stack on a cluster', () => {
  let redis: TestRedis;
  let stack: SchedulerStack | undefined;
  beforeAll(async () => {
    redis = await startTestRedis('cluster', { replicas: 0 });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await redis?.stop();
  });

  it('spreads three shards over the primaries and runs the workload on all of them', async () => {
    const client = redis.client();
    const knobs = new KnobTable(client, { keys: uniqueKeys() });
    await knobs.seed();
    stack = await startSchedulerStack(knobs, createLogger('stack-test', 'silent'), {
      seed: 1,
      ratePerS: 29,
    });
    const s = stack;
    expect(s.shards).toHaveLength(3);
    const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const primaryOf = async (shard: string) => {
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', `{sched:${shard}}`));
      const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)!;
      return `${r[2][0]}:${r[2][1]}`;
    };
    expect(new Set(await Promise.all(s.shards.map(primaryOf))).size).toBe(3);

    const done = () =>
      Promise.all(s.services.map(async (svc) => (await svc.queries.counts()).done ?? 0));
    await eventually(
      async () => (await done()).every((d) => d > 0) || (await sleep(250), false),
      'tasks done on every shard',
      30_000,
    );
    // tenant-0 has about half of the load: its shard completes the most.
    const hot = s.router.placement.indexOf('tenant-0');
    await sleep(5_000);
    const counts = await done();
    expect(counts[hot]).toBe(Math.max(...counts));

    // The policy target needs minJobs (500): about 17 s of the workload.
    let before: number[] = [];
    let records = 0;
    let observed: number | null = null;
    await eventually(
      async () => {
        before = await done();
        const cal = await s.target.calibrate();
        // The stack traces at rate 1: a why (a sampled trace) is a failure, not a wait.
        if (cal && 'why' in cal) throw new Error(cal.why);
        records = cal?.records ?? 0;
        observed = cal?.fit.observed ?? null;
        return records > 0 || (await sleep(1_000), false);
      },
      'the policy target calibrated',
      60_000,
    );
    // Its window holds every shard's jobs, not one shard's.
    expect(records).toBeGreaterThan(Math.max(...before) * 1.2);
    // Its jobs are single tasks: their completion times come from arrivals and durations.
    expect(observed).toBeGreaterThan(0);

    const placement = await s.placementTarget.calibrate();
    expect(placement).not.toBeNull();
    // Its window holds every shard's usage: the shards' loads differ.
    expect(placement!.fit.observed).toBeGreaterThan(0);

    await s.stop();
    stack = undefined;
    const after = s.workload.stats;
    await sleep(300);
    expect(s.workload.stats).toEqual(after); // nothing submitted after stop
  }, 120_000);
});

describe('scheduler stack start and stop on one Redis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  }, 30_000);
  afterEach(() => {
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const setup = () => stackSetup(redis);

  it('a start that fails part way stops what it had started', async () => {
    const realWorkerStart = WorkerRuntime.start.bind(WorkerRuntime);
    const failures: [string, () => void][] = [
      [
        'the placement migrator',
        () =>
          vi
            .spyOn(PlacementMigrator, 'start')
            .mockRejectedValueOnce(new Error('injected: the migrator did not start')),
      ],
      [
        'the last shard’s worker',
        () =>
          vi.spyOn(WorkerRuntime, 'start').mockImplementation(async (o) => {
            if (o.shard === 's2') {
              await sleep(200); // the other shards' workers are up by then
              throw new Error('injected: a worker did not start');
            }
            return realWorkerStart(o);
          }),
      ],
    ];
    for (const [what, inject] of failures) {
      const { client, knobs, baseline } = await setup();
      inject();
      const err = await startSchedulerStack(knobs, createLogger('stack-test', 'silent'), {
        seed: 1,
        ratePerS: 29,
        shards: ['s0', 's1', 's2'],
      }).catch((e: unknown) => e);
      expect((err as Error).message, what).toMatch(/^injected/);
      await nothingLeft(client, baseline);
      vi.restoreAllMocks();
    }
  }, 60_000);

  it('stop() runs every step even when one fails, then rejects with that failure', async () => {
    const { client, knobs, baseline } = await setup();
    const s = await startSchedulerStack(knobs, createLogger('stack-test', 'silent'), {
      seed: 1,
      ratePerS: 29,
      shards: ['s0', 's1', 's2'],
    });
    expect(await clientCount(client)).toBeGreaterThan(baseline.clients);
    vi.spyOn(s.migrator, 'close').mockRejectedValueOnce(new Error('injected: close failed'));
    await expect(s.stop()).rejects.toThrow('injected: close failed');
    // The steps after it (workers, services, telemetry, the knob client) ran all the same.
    await nothingLeft(client, baseline);
    await s.stop(); // again: nothing left to stop
  }, 60_000);
});
