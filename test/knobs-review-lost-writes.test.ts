// Lost writes (a failover to a lagging replica, an AOF everysec restart) bring a knob's version
// back with another value: the knob client and the knobs table must follow what Redis holds,
// not what they saw. A lost write is simulated as the review did: the row and the epoch are
// written back to what they were before it. Also the knob client's resync ordering after a
// reconnect and during a running resync, through a proxy that holds data for a while.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { freePort } from '../controlplane/redis/ports.ts';
import { StaleVersionError, ValidationError } from '../controlplane/store/errors.ts';
import type { Keys } from '../controlplane/store/keys.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const HOUR = 3_600_000;
const KNOB = 'scheduler.retry_limit'; // int 0..20, maxStep 5, default 3
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback proxy that holds data `upMs` (to Redis) or `downMs` (back), keeping its order. */
class DelayProxy {
  upMs = 0;
  downMs = 0;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  private constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  static async start(target: number): Promise<DelayProxy> {
    const p = new DelayProxy(await freePort(), target);
    p.server = createServer((client) => {
      const upstream = netConnect({ port: p.target, host: '127.0.0.1' });
      for (const s of [client, upstream]) {
        p.sockets.add(s);
        s.on('close', () => p.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      p.relay(client, upstream, () => p.upMs);
      p.relay(upstream, client, () => p.downMs);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => p.server?.listen(p.port, '127.0.0.1', () => r()));
    return p;
  }

  private relay(from: Socket, to: Socket, delay: () => number): void {
    let last = 0;
    from.on('data', (chunk) => {
      const at = Math.max(Date.now() + delay(), last);
      last = at;
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, at - Date.now());
    });
  }

  /** Drops every connection (clients reconnect through it). */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

describe('lost writes and resync ordering (single redis)', () => {
  let redis: TestRedis;
  const extra: Redis[] = [];
  const proxies: DelayProxy[] = [];

  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    extra.forEach((c) => c.disconnect());
    await Promise.all(proxies.map((p) => p.stop()));
    await redis?.stop();
  });

  const port = () => redis.single?.port as number;
  function conn(p = port()): Redis {
    const c = new Redis({
      port: p,
      host: '127.0.0.1',
      retryStrategy: () => 50,
      maxRetriesPerRequest: null,
    });
    c.on('error', () => {});
    extra.push(c);
    return c;
  }

  async function setup() {
    const keys = uniqueKeys();
    const clock = new ManualClock();
    const admin = new KnobTable(redis.client(), { keys, clock });
    await admin.seed();
    clock.advance(HOUR);
    const v2 = await admin.promote({
      name: KNOB,
      value: 5,
      baseVersion: 1,
      actor: 'op',
      reason: 'r',
    });
    clock.advance(HOUR);
    return { keys, clock, admin, v2 };
  }

  /** What a lagging replica holds: the row and epoch now, to write back after later writes. */
  async function snapshot(keys: Keys, names: string[]) {
    const r = redis.client();
    const rows = await Promise.all(names.map((n) => r.hgetall(keys.knobRow(n))));
    const epoch = (await r.get(keys.knobEpoch())) as string;
    return async () => {
      for (const [i, n] of names.entries()) {
        await r.del(keys.knobRow(n));
        await r.hset(keys.knobRow(n), rows[i] as Record<string, string>);
      }
      await r.set(keys.knobEpoch(), epoch);
    };
  }

  it('client: a version written again with another value after a lost write replaces the lost one', async () => {
    const { keys, clock, admin } = await setup();
    const restore = await snapshot(keys, [KNOB]);
    const knobs = await KnobClient.start({
      table: new KnobTable(redis.client(), { keys }),
      names: [KNOB],
      resyncIntervalMs: 0,
    });
    await admin.promote({ name: KNOB, value: 8, baseVersion: 2, actor: 'op', reason: 'lost' });
    await eventually(() => knobs.get(KNOB) === 8, 'client sees 8');
    await restore();
    clock.advance(HOUR);
    const other = new KnobTable(redis.client(), { keys, clock });
    await other.promote({
      name: KNOB,
      value: 1,
      baseVersion: 2,
      actor: 'op',
      reason: 'new primary',
    });
    // Version 3 again, another change: the message alone must bring it.
    await eventually(() => knobs.get(KNOB) === 1, 'client takes the rewritten version 3', 3_000);
    expect(knobs.version(KNOB)).toBe(3);
    await knobs.close();
  });

  it('client: an epoch below the one it saw reloads every knob from Redis, then follows on', async () => {
    const { keys, clock, admin } = await setup();
    const restore = await snapshot(keys, [KNOB]);
    const knobs = await KnobClient.start({
      table: new KnobTable(redis.client(), { keys }),
      names: [KNOB, 'scheduler.policy'],
      resyncIntervalMs: 100,
    });
    const resyncs: { lost: boolean }[] = [];
    knobs.on('resync', (r) => resyncs.push(r));
    await admin.promote({ name: KNOB, value: 8, baseVersion: 2, actor: 'op', reason: 'lost' });
    await eventually(() => knobs.get(KNOB) === 8, 'client sees 8');
    await restore(); // no message: only the epoch check can tell
    await eventually(() => knobs.get(KNOB) === 5, 'client goes back to what Redis holds', 3_000);
    expect(knobs.version(KNOB)).toBe(2);
    expect(resyncs.some((r) => r.lost)).toBe(true);
    // The epoch it follows restarted from Redis's: the next change arrives as usual.
    clock.advance(HOUR);
    const other = new KnobTable(redis.client(), { keys, clock });
    await other.promote({ name: KNOB, value: 7, baseVersion: 2, actor: 'op', reason: 'next' });
    await eventually(() => knobs.get(KNOB) === 7, 'client sees the next change');
    await knobs.close();
  });

  it('client: a message below its version, with the epoch caught up, reloads and takes Redis', async () => {
    const { keys, clock, admin } = await setup();
    const restore = await snapshot(keys, [KNOB]);
    const knobs = await KnobClient.start({
      table: new KnobTable(redis.client(), { keys }),
      names: [KNOB],
      resyncIntervalMs: 0,
    });
    await admin.promote({ name: KNOB, value: 8, baseVersion: 2, actor: 'op', reason: 'lost' });
    clock.advance(HOUR);
    await admin.promote({ name: KNOB, value: 10, baseVersion: 3, actor: 'op', reason: 'lost' });
    await eventually(() => knobs.get(KNOB) === 10, 'client sees 10 at version 4');
    await restore();
    // Two new changes bring the epoch back to the one the client saw; the knob is at version 3.
    clock.advance(HOUR);
    const other = new KnobTable(redis.client(), { keys, clock });
    const base = { actor: 'op', reason: 'new primary', baseVersion: 1 };
    await other.promote({ ...base, name: 'scheduler.policy', value: 'sjf' });
    await other.promote({ ...base, name: KNOB, value: 1, baseVersion: 2 });
    await eventually(() => knobs.get(KNOB) === 1, 'client takes version 3 below its 4', 3_000);
    expect(knobs.version(KNOB)).toBe(3);
    await knobs.close();
  });

  it('table: a change checked against a lost value is refused, then checked against Redis', async () => {
    const { keys, clock, admin } = await setup();
    const restore = await snapshot(keys, [KNOB]);
    await admin.promote({ name: KNOB, value: 8, baseVersion: 2, actor: 'op', reason: 'lost' });
    await restore();
    clock.advance(HOUR);
    const other = new KnobTable(redis.client(), { keys, clock });
    await other.promote({
      name: KNOB,
      value: 1,
      baseVersion: 2,
      actor: 'op',
      reason: 'new primary',
    });
    clock.advance(HOUR);
    const change = { name: KNOB, value: 12, baseVersion: 3, actor: 'loop', reason: 'step' };
    // The dry run reads the version fresh: at version 3 it must check 1 -> 12 (a step of 11).
    await expect(admin.check(change)).rejects.toMatchObject({ rule: 'max_step' });
    // The promotion trusts the remembered row: the script refuses a base it does not hold.
    await restore();
    const admin2 = new KnobTable(redis.client(), { keys, clock });
    await admin2.promote({ name: KNOB, value: 4, baseVersion: 2, actor: 'op', reason: 'seen' });
    await restore();
    clock.advance(HOUR);
    await other.promote({ name: KNOB, value: 1, baseVersion: 2, actor: 'op', reason: 'again' });
    clock.advance(HOUR);
    const err = await admin2.promote({ ...change, value: 9 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StaleVersionError);
    expect((await admin2.get(KNOB)).value).toBe(1);
    // Read again, the same change is checked against the value Redis holds.
    await expect(admin2.promote({ ...change, value: 9 })).rejects.toBeInstanceOf(ValidationError);
    const ok = await admin2.promote({ ...change, value: 6 });
    expect(ok.version).toBe(4);
  });

  it('client: a change made between a reconnect and its re-subscription is not missed', async () => {
    const { keys, clock, admin } = await setup();
    const proxy = await DelayProxy.start(port());
    proxies.push(proxy);
    // The subscription goes through the proxy; the reads do not.
    const direct = conn();
    (direct as unknown as { duplicate: () => Redis }).duplicate = () => conn(proxy.port);
    const knobs = await KnobClient.start({
      table: new KnobTable(direct, { keys }),
      names: [KNOB],
      resyncIntervalMs: 0,
    });
    const sub = (knobs as unknown as { sub: Redis }).sub;
    const changed = new Promise<void>((resolve, reject) => {
      sub.once('ready', () => {
        // After 'ready' and its resync's read, before the re-sent SUBSCRIBE reaches Redis.
        setTimeout(() => {
          admin
            .promote({ name: KNOB, value: 9, baseVersion: 2, actor: 'op', reason: 'between' })
            .then(() => resolve(), reject);
        }, 100);
      });
    });
    proxy.upMs = 400;
    proxy.cut();
    await changed;
    proxy.upMs = 0;
    await eventually(() => knobs.get(KNOB) === 9, 'client sees the change', 3_000);
    // The subscription is back too.
    clock.advance(HOUR);
    await admin.promote({ name: KNOB, value: 7, baseVersion: 3, actor: 'op', reason: 'after' });
    await eventually(() => knobs.get(KNOB) === 7, 'client sees the next change');
    await knobs.close();
  });

  it('client: a gap seen while a resync runs gets a resync of its own', async () => {
    const { keys, admin } = await setup();
    const proxy = await DelayProxy.start(port());
    proxies.push(proxy);
    // The reads go through the proxy; the subscription does not.
    const slow = conn(proxy.port);
    (slow as unknown as { duplicate: () => Redis }).duplicate = () => conn();
    const knobs = await KnobClient.start({
      table: new KnobTable(slow, { keys }),
      resyncIntervalMs: 0,
    });
    const r = redis.client();
    // Changes whose messages were lost: written in Redis, never announced.
    const silently = async (name: string, value: string, version: number) => {
      await r.hset(keys.knobRow(name), 'value', value, 'version', String(version));
      await r.incr(keys.knobEpoch());
    };
    await silently('messaging.linger_ms', '7', 2);
    proxy.downMs = 500;
    // Reads the epoch (answered at ~500 ms), then the rows (read at ~500, answered at ~1000).
    const running = knobs.resync();
    await sleep(750);
    // After that resync read the rows: a lost message, then a change whose epoch shows the gap.
    await silently('messaging.batch_size', '128', 2);
    await admin.promote({
      name: 'scheduler.policy',
      value: 'sjf',
      baseVersion: 1,
      actor: 'op',
      reason: 'gap',
    });
    await eventually(() => knobs.get('scheduler.policy') === 'sjf', 'message arrives');
    proxy.downMs = 0;
    await running;
    expect(knobs.get('messaging.linger_ms')).toBe(7);
    await eventually(
      () => knobs.get('messaging.batch_size') === 128,
      'the change the running resync read too early',
      2_000,
    );
    await knobs.close();
  });
});
