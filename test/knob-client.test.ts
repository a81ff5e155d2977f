// The knob client: hot-path reads from memory, live updates on promotion, and recovery of
// changes made while its connection was cut (through a proxy the test cuts and restores).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import {
  eventually,
  startTestRedis,
  uniqueKeys,
  type Backend,
  type TestRedis,
} from './helpers/redis.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';

const HOUR = 3_600_000;

describe.each<Backend>(['single', 'cluster'])('knob client on %s redis', (backend) => {
  let redis: TestRedis;
  const proxies: TcpProxy[] = [];
  const extra: RedisClient[] = [];

  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    extra.forEach((c) => c.disconnect());
    await Promise.all(proxies.map((p) => p.stop()));
    await redis?.stop();
  });

  /** A client connection whose every socket goes through proxies the test can cut. */
  async function proxiedClient(): Promise<{
    client: RedisClient;
    cut: () => Promise<void>;
    restore: () => Promise<void>;
  }> {
    let client: RedisClient;
    let mine: TcpProxy[];
    if (redis.single) {
      const p = await TcpProxy.start(redis.single.port);
      mine = [p];
      client = new Redis({
        port: p.port,
        host: '127.0.0.1',
        retryStrategy: () => 50,
        maxRetriesPerRequest: null,
      });
    } else {
      // Cluster clients learn node addresses from the cluster; natMap sends each through its proxy.
      const nodes = redis.cluster?.nodes ?? [];
      mine = await Promise.all(nodes.map((n) => TcpProxy.start(n.port)));
      const natMap = Object.fromEntries(
        nodes.map((n, i) => [
          `127.0.0.1:${n.port}`,
          { host: '127.0.0.1', port: (mine[i] as TcpProxy).port },
        ]),
      );
      client = new Cluster(
        mine.map((p) => ({ host: '127.0.0.1', port: p.port })),
        {
          natMap,
          clusterRetryStrategy: () => 50,
          redisOptions: { maxRetriesPerRequest: null },
        },
      );
    }
    client.on('error', () => {});
    proxies.push(...mine);
    extra.push(client);
    return {
      client,
      cut: async () => {
        await Promise.all(mine.map((p) => p.cut()));
      },
      restore: async () => {
        await Promise.all(mine.map((p) => p.restore()));
      },
    };
  }

  async function setup() {
    const keys = uniqueKeys();
    const clock = new ManualClock(Date.now() + HOUR);
    const admin = new KnobTable(redis.client(), { keys, clock });
    await admin.seed();
    clock.advance(HOUR);
    return { keys, admin, clock };
  }

  /** A client of `keys` on its own connection, with no periodic resync. */
  const followOnly = (keys: Keys) =>
    KnobClient.start({ table: new KnobTable(redis.client(), { keys }), resyncIntervalMs: 0 });

  /** The first promotion of scheduler.policy after a seed: sjf at version 2. */
  const promoteSjf = (admin: KnobTable) =>
    admin.promote({
      name: 'scheduler.policy',
      value: 'sjf',
      baseVersion: 1,
      actor: 'op',
      reason: 'try sjf',
    });

  it('reads knobs from memory: a thousand reads send no command to Redis', async () => {
    const { keys, admin } = await setup();
    const knobs = await followOnly(keys);
    const probe = redis.single ? redis.client() : undefined;
    const processed = async () => {
      if (!probe) return 0;
      const info = (await probe.info('stats')) as string;
      return Number(/total_commands_processed:(\d+)/.exec(info)?.[1]);
    };
    const before = await processed();
    let sum = 0;
    for (let i = 0; i < 1000; i++) sum += knobs.get<number>('scheduler.retry_limit');
    const after = await processed();
    expect(sum).toBe(3000);
    if (probe) expect(after - before).toBe(1); // only the first INFO itself
    expect(knobs.version('scheduler.retry_limit')).toBe(1);
    expect(knobs.snapshot()['scheduler.policy']).toBe('fifo');
    await knobs.close();
    void admin;
  });

  it('following some knobs, counts changes to the others without reloading', async () => {
    const { keys, admin } = await setup();
    const knobs = await KnobClient.start({
      table: new KnobTable(redis.client(), { keys }),
      names: ['scheduler.policy'],
      resyncIntervalMs: 0,
    });
    let resyncs = 0;
    knobs.on('resync', () => resyncs++);
    const base = { actor: 'op', reason: 'other knobs', baseVersion: 1 };
    await admin.promote({ ...base, name: 'scheduler.retry_limit', value: 4 });
    await admin.promote({ ...base, name: 'scheduler.dispatch_batch', value: 32 });
    await admin.promote({ ...base, name: 'scheduler.policy', value: 'sjf' });
    await eventually(() => knobs.get('scheduler.policy') === 'sjf', 'client sees sjf');
    await new Promise((r) => setTimeout(r, 50)); // a resync the message started would be done
    expect(resyncs).toBe(0); // no epoch gap: every change's message was seen
    await knobs.close();
  });

  it('sees a promotion as it happens', async () => {
    const { keys, admin } = await setup();
    const knobs = await followOnly(keys);
    const seen: string[] = [];
    knobs.on('change', (e) => seen.push(`${e.name}=${String(e.value)}@${e.version}`));
    await promoteSjf(admin);
    await eventually(() => knobs.get('scheduler.policy') === 'sjf', 'client sees sjf');
    expect(seen).toEqual(['scheduler.policy=sjf@2']);
    await knobs.close();
  });

  it('takes every knob of a change before telling listeners, and sees no epoch gap', async () => {
    const { keys, admin } = await setup();
    const knobs = await followOnly(keys);
    let resyncs = 0;
    knobs.on('resync', () => resyncs++);
    // Each knob's message apart, a listener of the first saw the second's old value.
    const seen: string[] = [];
    knobs.on('change', (e) =>
      seen.push(
        `${e.name}: ${String(knobs.get('scheduler.policy'))} ${String(knobs.get('scheduler.retry_limit'))}`,
      ),
    );
    const changes = [
      { name: 'scheduler.policy', value: 'sjf', baseVersion: 1 },
      { name: 'scheduler.retry_limit', value: 4, baseVersion: 1 },
    ];
    await admin.promoteAll({ actor: 'op', reason: 'together', changes });
    await eventually(() => seen.length === 2, 'both changes told');
    expect(seen).toEqual(['scheduler.policy: sjf 4', 'scheduler.retry_limit: sjf 4']);
    // Two epochs in one message: no gap, no reload.
    await promoteSjf(admin).catch(() => undefined); // stale now: publishes nothing
    await admin.promote({
      name: 'scheduler.dispatch_batch',
      value: 32,
      baseVersion: 1,
      actor: 'op',
      reason: 'r',
    });
    await eventually(() => knobs.get('scheduler.dispatch_batch') === 32, 'client sees 32');
    await new Promise((r) => setTimeout(r, 50));
    expect(resyncs).toBe(0);
    await knobs.close();
  });

  it('survives a change listener that throws, reporting it as an error', async () => {
    const { keys, admin } = await setup();
    const knobs = await followOnly(keys);
    const errors: string[] = [];
    knobs.on('error', (e: Error) => errors.push(e.message));
    knobs.on('change', () => {
      throw new Error('listener failed');
    });
    // Before, the throw escaped the pub/sub reply parser: an uncaught exception (the process
    // died; vitest reports it as an unhandled error and fails the run).
    await promoteSjf(admin);
    await eventually(() => knobs.get('scheduler.policy') === 'sjf', 'client sees sjf');
    await eventually(() => errors.includes('listener failed'), 'the error reported');
    await knobs.close();
  });

  it('sees a promotion made while its connection was cut, once it reconnects', async () => {
    const { keys, admin, clock } = await setup();
    const { client, cut, restore } = await proxiedClient();
    // One node: the reconnect itself triggers the resync. A cluster client re-subscribes
    // without telling anyone, so there the periodic epoch check recovers the change.
    const knobs = await KnobClient.start({
      table: new KnobTable(client, { keys }),
      resyncIntervalMs: backend === 'single' ? 0 : 200,
    });
    let resyncs = 0;
    knobs.on('resync', (r) => {
      if (r.changed > 0) resyncs++;
    });
    expect(knobs.get('files.cache_policy')).toBe('lru');
    await cut();
    await admin.promote({
      name: 'files.cache_policy',
      value: 'arc',
      baseVersion: 1,
      actor: 'op',
      reason: 'while cut',
    });
    await new Promise((r) => setTimeout(r, 300));
    // Still the old value: the change message was published while the client could not hear it.
    expect(knobs.get('files.cache_policy')).toBe('lru');
    await restore();
    await eventually(
      () => knobs.get('files.cache_policy') === 'arc',
      'client recovers arc after reconnect',
    );
    expect(knobs.version('files.cache_policy')).toBe(2);
    expect(resyncs).toBe(1);
    // And the subscription itself is back: the next change arrives as a message.
    clock.advance(HOUR);
    await admin.promote({
      name: 'files.cache_policy',
      value: 'sieve',
      baseVersion: 2,
      actor: 'op',
      reason: 'after',
    });
    await eventually(
      () => knobs.get('files.cache_policy') === 'sieve',
      'client sees the next change',
    );
    await knobs.close();
  });

  it('reloads a version lost and written again while its connection was cut, once it reconnects', async () => {
    const { keys, admin, clock } = await setup();
    const { client, cut, restore } = await proxiedClient();
    // As above: one node reloads on the reconnect, a cluster client on its next periodic check.
    const knobs = await KnobClient.start({
      table: new KnobTable(client, { keys }),
      resyncIntervalMs: backend === 'single' ? 0 : 200,
    });
    const r = redis.client();
    const name = 'files.cache_policy';
    const before = await r.hgetall(keys.knobRow(name));
    const epoch = (await r.get(keys.knobEpoch())) as string;
    await admin.promote({ name, value: 'arc', baseVersion: 1, actor: 'op', reason: 'lost' });
    await eventually(() => knobs.get(name) === 'arc', 'client sees arc');
    await cut();
    // Redis loses that write (row and epoch as before it), then version 2 is written again with
    // another value: the epoch is back at the one the client saw, and the message went unheard.
    await r.del(keys.knobRow(name));
    await r.hset(keys.knobRow(name), before);
    await r.set(keys.knobEpoch(), epoch);
    clock.advance(HOUR);
    const other = new KnobTable(r, { keys, clock });
    await other.promote({ name, value: 'sieve', baseVersion: 1, actor: 'op', reason: 'again' });
    await restore();
    await eventually(() => knobs.get(name) === 'sieve', 'client reloads the rewritten version 2');
    expect(knobs.version(name)).toBe(2);
    await knobs.close();
  });

  it('recovers through the periodic epoch check when a message is lost', async () => {
    const { keys, admin } = await setup();
    const knobs = await KnobClient.start({
      table: new KnobTable(redis.client(), { keys }),
      resyncIntervalMs: 100,
    });
    // Write the row the way a lost publish would leave it: changed in Redis, never announced.
    await admin.redis.hset(keys.knobRow('messaging.linger_ms'), 'value', '7', 'version', '2');
    await admin.redis.incr(keys.knobEpoch());
    await eventually(
      () => knobs.get('messaging.linger_ms') === 7,
      'client picks up the unannounced change',
    );
    await knobs.close();
  });
});
