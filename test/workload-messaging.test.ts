// The live messaging workload against a real redis-server: a generated profile and the first
// rows of the shared Azure trace are published and consumed with every message's effect
// applied exactly once (per-tenant counters equal what was published), a batch_size change
// through the knobs table reaches the running producer and consumer, and the npm start stack
// runs and stops. A stalled driver skips (and counts) its backlog instead of bursting it, stop
// runs every step even when one fails, and the stack's bursty fallback averages its rate.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import type { FlushEvent } from '../controlplane/messaging/producer.ts';
import type { BatchEvent } from '../controlplane/messaging/partition-worker.ts';
import {
  STACK_GROUP,
  STACK_TOPIC,
  burstySource,
  startMessagingStack,
} from '../controlplane/run/messaging-stack.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Producer } from '../controlplane/messaging/producer.ts';
import { messagingScripts } from '../controlplane/messaging/scripts.ts';
import {
  MessagingWorkload,
  buildSchedule,
  tenantCounts,
  type MessagingSource,
  type MessagingWorkloadOptions,
} from '../controlplane/workload/messaging.ts';
import { AZURE_CODE_TRACE, loadAzureRequests } from '../envs/loaders/requests-azure.ts';
import { WorkloadConfigError } from '../envs/workload/index.ts';
import { messagingFixture, type MessagingFixture } from './helpers/messaging-fixture.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const log = createLogger('test-workload-messaging');

/** A generated profile: Poisson arrivals for `durationMs`, messages of `tokens` tokens. */
const generated = (durationMs: number, ratePerS: number, tokens: number): MessagingSource => ({
  kind: 'generated',
  config: { durationMs, arrivals: { kind: 'poisson', ratePerS }, tokensPerMessage: tokens },
});
/** How many messages a source's schedule holds (the workload's seed, 7). */
const scheduled = (source: MessagingSource) =>
  buildSchedule(source, 7, { minBytes: 16, maxBytes: 1024 }).tMs.length;

describe('the npm start stack bursty fallback', () => {
  it('averages ratePerS whatever the seed, keeping its bursts', () => {
    for (const ratePerS of [50, 200]) {
      for (let seed = 1; seed <= 8; seed++) {
        const s = buildSchedule(burstySource(ratePerS), seed, { minBytes: 16, maxBytes: 512 });
        const n = s.tMs.length;
        // Unscaled, one 60 s realisation averaged 0.7x-1.6x the target over seeds 1-20.
        expect(n / (s.periodMs / 1000)).toBeGreaterThan(0.98 * ratePerS);
        expect(n / (s.periodMs / 1000)).toBeLessThan(1.02 * ratePerS);
        expect(s.tMs[n - 1]).toBeLessThanOrEqual(s.periodMs);
        // Still bursty: its busiest second runs at several times the mean rate.
        const perS = new Map<number, number>();
        for (const t of s.tMs)
          perS.set(Math.floor(t / 1000), (perS.get(Math.floor(t / 1000)) ?? 0) + 1);
        expect(Math.max(...perS.values())).toBeGreaterThan(2.5 * ratePerS);
      }
    }
  });
});

describe('messaging workload on single redis', () => {
  let redis: TestRedis;
  const open: { stop(): Promise<unknown> }[] = [];
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    for (const o of open.reverse()) await o.stop();
    await redis?.stop();
  });

  async function fixture(knobs: Record<string, number> = {}): Promise<MessagingFixture> {
    const f = await messagingFixture(redis, knobs);
    open.push({ stop: () => f.close() });
    return f;
  }
  async function start(
    f: MessagingFixture,
    topic: string,
    source: MessagingSource,
    extra: Partial<MessagingWorkloadOptions> = {},
  ): Promise<MessagingWorkload> {
    const w = await MessagingWorkload.start({
      redis: f.redis,
      keys: f.mkeys,
      knobs: f.knobs,
      topics: f.topics,
      topic,
      source,
      seed: 7,
      cost: { perBatchMs: 1, perMessageMs: 0.05 },
      log,
      ...extra,
    });
    open.push(w);
    return w;
  }

  /** Runs the workload to the end of its schedule and until everything is consumed. */
  async function runToEnd(f: MessagingFixture, topic: string, w: MessagingWorkload) {
    const published = await w.finished();
    await eventually(() => w.stats.consumed >= published.published, 'everything consumed');
    const stats = await w.stop();
    const partitions = (await f.topics.get(topic)).partitions;
    const counts = await tenantCounts(f.redis, f.mkeys, topic, 'workload', partitions);
    return { stats, counts };
  }

  it('publishes a generated profile and applies each message once', async () => {
    const f = await fixture();
    await f.topics.ensure('gen');
    const source = generated(500, 600, 32);
    const w = await start(f, 'gen', source);
    const { stats, counts } = await runToEnd(f, 'gen', w);
    const expected = scheduled(source);
    expect(expected).toBeGreaterThan(200);
    expect(stats.published).toBe(expected);
    expect(stats.publishFailed).toBe(0);
    expect(stats.consumed).toBe(stats.published);
    expect(stats.duplicates).toBe(0);
    expect(Object.fromEntries(counts)).toEqual(stats.publishedByTenant);
    expect(stats.e2eP99Ms).toBeGreaterThanOrEqual(stats.e2eP50Ms);
    expect(stats.e2eP50Ms).toBeGreaterThan(0);
    // Every message sits in the stream once, with the payload size of the profile (32 * 4).
    const [first] = await f.redis.xrange(f.mkeys.stream('gen', 0), '-', '+', 'COUNT', 1);
    expect(first?.[1][first[1].indexOf('d') + 1]?.length).toBe(128);
  });

  it('replays the first rows of the shared trace, sizes bounded, effects once', async () => {
    const f = await fixture();
    await f.topics.ensure('trace', { partitions: 2 });
    const trace = await loadAzureRequests(AZURE_CODE_TRACE, { maxRows: 200 });
    // 200 rows span about a minute; 400x faster they take a fraction of a second.
    const w = await start(f, 'trace', { kind: 'trace', trace, speedup: 400 }, { tenants: 5 });
    const { stats, counts } = await runToEnd(f, 'trace', w);
    expect(stats.published).toBe(200);
    expect(stats.consumed).toBe(200);
    expect(Object.fromEntries(counts)).toEqual(stats.publishedByTenant);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(200);
    expect(counts.size).toBeLessThanOrEqual(5);
    const entries = [
      ...(await f.redis.xrange(f.mkeys.stream('trace', 0), '-', '+')),
      ...(await f.redis.xrange(f.mkeys.stream('trace', 1), '-', '+')),
    ];
    const sizes = entries.map(([, flat]) => (flat[flat.indexOf('d') + 1] as string).length);
    expect(sizes).toHaveLength(200);
    expect(Math.max(...sizes)).toBe(1024); // context tokens * 4 bytes, bounded
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(16);
  });

  it('takes a lower size bound above the default upper one: every message is that size', async () => {
    const f = await fixture();
    await f.topics.ensure('big', { partitions: 1 });
    // The profile's messages are 128 bytes; both bounds at 2000 make them 2000.
    const w = await start(f, 'big', generated(500, 200, 32), { minMessageBytes: 2000 });
    const { stats } = await runToEnd(f, 'big', w);
    const entries = await f.redis.xrange(f.mkeys.stream('big', 0), '-', '+');
    const sizes = entries.map(([, flat]) => (flat[flat.indexOf('d') + 1] as string).length);
    expect(stats.published).toBeGreaterThan(20);
    expect(sizes).toHaveLength(stats.published);
    expect(new Set(sizes)).toEqual(new Set([2000]));
  });

  it('follows a messaging.batch_size change while running', async () => {
    const f = await fixture({ 'messaging.linger_ms': 50 });
    await f.topics.ensure('knob', { partitions: 1 });
    const w = await start(f, 'knob', generated(1_000, 2_000, 8), {
      loop: true,
      cost: { perBatchMs: 5, perMessageMs: 0 },
    });
    const flushes: number[] = [];
    const batches: number[] = [];
    w.producer.on('flush', (e: FlushEvent) => flushes.push(e.size));
    w.consumer.on('batch', (e: BatchEvent) => batches.push(e.size));
    // 2000/s against a 50 ms linger: batches are sealed full, at the default 64.
    await eventually(() => flushes.includes(64) && batches.includes(64), 'full batches of 64');
    await f.setKnob('messaging.batch_size', 8);
    await eventually(() => f.knobs.get('messaging.batch_size') === 8, 'knob client sees 8');
    const [fromFlush, fromBatch] = [flushes.length, batches.length];
    await eventually(
      () => flushes.length >= fromFlush + 30 && batches.length >= fromBatch + 30,
      'more batches after the change',
    );
    // The first batch after the change may have been read or sealed under the old size.
    expect(Math.max(...flushes.slice(fromFlush + 2))).toBe(8);
    expect(Math.max(...batches.slice(fromBatch + 2))).toBe(8);
    const stats = await w.stop();
    expect(stats.publishFailed).toBe(0);
    expect(stats.duplicates).toBe(0);
  });

  it('counts a publish whose batch was resent after a lost reply as published', async () => {
    const f = await fixture();
    await f.topics.ensure('resent', { partitions: 1 });
    // The first publish.lua call is applied by Redis, but its reply is lost.
    const run = messagingScripts.run.bind(messagingScripts);
    let publishCalls = 0;
    vi.spyOn(messagingScripts, 'run').mockImplementation(async (client, name, keys, argv) => {
      const reply = await run(client, name, keys, argv);
      if (name === 'publish' && ++publishCalls === 1) throw new Error('connection lost');
      return reply;
    });
    const source = generated(200, 500, 4);
    const w = await start(f, 'resent', source);
    const { stats, counts } = await runToEnd(f, 'resent', w);
    const expected = scheduled(source);
    expect(publishCalls).toBeGreaterThan(1);
    expect(await f.redis.xlen(f.mkeys.stream('resent', 0))).toBe(expected);
    expect(stats.published).toBe(expected);
    expect(stats.consumed).toBe(expected);
    expect(Object.fromEntries(counts)).toEqual(stats.publishedByTenant);
  });

  it('leaves nothing running when its consumer fails to start', async () => {
    const f = await fixture();
    await f.topics.ensure('half', { partitions: 3 });
    // Partition 1's stream key holds a string: its consumer group cannot be made.
    await f.redis.set(f.mkeys.stream('half', 1), 'not a stream');
    const listeners = f.knobs.listenerCount('change');
    const source = generated(100, 100, 4);
    await expect(start(f, 'half', source)).rejects.toThrow(/WRONGTYPE/);
    expect(f.knobs.listenerCount('change')).toBe(listeners);
    // Partition 0's worker had started before partition 1 failed: it must not consume.
    const p = new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs });
    await p.publish('half', 't1 0 x', { partition: 0 });
    await p.close();
    await new Promise((r) => setTimeout(r, 300));
    const counts = await tenantCounts(f.redis, f.mkeys, 'half', 'workload', 3);
    expect(counts.size).toBe(0);
    const pending = (await f.redis.xpending(f.mkeys.stream('half', 0), 'workload')) as unknown[];
    expect(Number(pending[0])).toBe(0); // not even read
  });

  it('skips the backlog of a stall instead of publishing it at once', async () => {
    const f = await fixture();
    await f.topics.ensure('stall', { partitions: 1 });
    const w = await start(f, 'stall', generated(5_000, 200, 4), { maxLagMs: 200 });
    const calls: number[] = [];
    const publish = w.producer.publish.bind(w.producer);
    vi.spyOn(w.producer, 'publish').mockImplementation((...args) => {
      calls.push(performance.now());
      return publish(...args);
    });
    await new Promise((r) => setTimeout(r, 200));
    const from = performance.now();
    while (performance.now() - from < 1_000); // ~200 messages fall due meanwhile
    const resumed = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    const stats = await w.stop();
    // At 200/s about 10 go out in 50 ms; the old driver published the whole backlog at once.
    expect(calls.filter((t) => t >= resumed && t < resumed + 50).length).toBeLessThanOrEqual(60);
    expect(stats.skipped).toBeGreaterThanOrEqual(100);
    expect(stats.skipped).toBeLessThanOrEqual(300);
    expect(stats.publishFailed).toBe(0);
  });

  it('runs every stop step when one fails, then throws the first failure', async () => {
    const f = await fixture();
    await f.topics.ensure('stopfail', { partitions: 1 });
    const w = await start(f, 'stopfail', generated(100, 100, 4));
    open.splice(open.indexOf(w), 1); // its stop is expected to reject
    await w.finished();
    const close = w.producer.close.bind(w.producer);
    vi.spyOn(w.producer, 'close').mockImplementation(async () => {
      await close();
      throw new Error('close failed');
    });
    const consumerStop = vi.spyOn(w.consumer, 'stop');
    await expect(w.stop()).rejects.toThrow('close failed');
    expect(consumerStop).toHaveBeenCalledOnce();
    await expect(consumerStop.mock.results[0]?.value).resolves.toBeUndefined();
    await expect(w.stop()).rejects.toThrow('close failed'); // the same outcome again
  });

  it('refuses bad options with the field named', async () => {
    const f = await fixture();
    await f.topics.ensure('bad');
    const source = generated(100, 100, 4);
    await expect(start(f, 'bad', source, { maxInFlight: 0 })).rejects.toThrow(/maxInFlight/);
    await expect(start(f, 'bad', source, { maxLagMs: -1 })).rejects.toThrow(/maxLagMs/);
    await expect(start(f, 'bad', source, { maxMessageBytes: 8 })).rejects.toBeInstanceOf(
      WorkloadConfigError,
    );
    const trace = await loadAzureRequests(AZURE_CODE_TRACE, { maxRows: 3 });
    await expect(start(f, 'bad', { kind: 'trace', trace, speedup: 0 })).rejects.toThrow(/speedup/);
  });

  it('runs the npm start stack and stops it', async () => {
    const client = redis.client();
    const keys = uniqueKeys();
    const knobs = new KnobTable(client, { keys });
    await knobs.seed();
    const stack = await startMessagingStack(knobs, log, { seed: 1, ratePerS: 300 });
    open.push(stack);
    await eventually(() => stack.workload.stats.consumed >= 50, '50 messages consumed');
    await stack.stop();
    const mkeys = new MessagingKeys(keys);
    const counts = await tenantCounts(client, mkeys, STACK_TOPIC, STACK_GROUP, 4);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(stack.workload.stats.consumed);
  });
});
