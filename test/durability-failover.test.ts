// Durability and failover on a local cluster of 3 primaries with a replica each. With the
// store.replica_acks knob at 1 (followed live through a KnobClient), a write counts only once
// the primary's replica has it, so SIGKILLing that primary under load loses no acknowledged
// scheduler task, message or file write: the promoted replica has every one. A second set of
// clients writes the same way with the knob at 0 beside them; whether they lose writes is
// reported, not asserted (it is a race the replica usually wins). The cluster clients ride
// through the failover: calls in flight when the primary dies complete on the new primary.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileExistsError } from '../controlplane/files/errors.ts';
import { FileKeys } from '../controlplane/files/keys.ts';
import { FileService } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Producer } from '../controlplane/messaging/producer.ts';
import { Topics } from '../controlplane/messaging/topics.ts';
import { createLogger } from '../controlplane/log.ts';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { SchedulerClient } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { ReplicaAckError } from '../controlplane/store/errors.ts';
import {
  followReplicaAcks,
  replicaAcks,
  setReplicaAcks,
} from '../controlplane/store/replica-acks.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const HOUR_MS = 3_600_000;
const quiet = createLogger('durability-test', 'silent');
/** cluster-node-timeout of managed clusters: no replica is promoted sooner after a kill. */
const NODE_TIMEOUT_MS = 5_000;

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis('cluster', { replicas: 1 });
}, 90_000);
afterAll(async () => {
  await redis?.stop();
});

const slotOf = async (c: RedisClient, key: string) =>
  Number(await c.call('CLUSTER', 'KEYSLOT', key));

/** The first of `names` whose key (built by `key`) lives on the primary `node`. */
async function onNode(
  c: RedisClient,
  node: ManagedRedis,
  names: string[],
  key: (n: string) => string,
): Promise<string> {
  for (const n of names) {
    if ((await redis.cluster!.primaryForSlot(await slotOf(c, key(n)))) === node) return n;
  }
  throw new Error('no candidate name lives on the chosen primary');
}

/** A writer keeps `depth` writes in flight until stopped; `acked` holds what succeeded. */
interface Writer {
  acked: string[];
  /** When each acknowledged call started and ended (ms since the epoch), in `acked` order. */
  spans: [number, number][];
  failed: Map<string, number>;
  stop(): Promise<void>;
}

function writer(depth: number, write: (n: number) => Promise<string>): Writer {
  const acked: string[] = [];
  const spans: [number, number][] = [];
  const failed = new Map<string, number>();
  let running = true;
  let n = 0;
  const lanes = Array.from({ length: depth }, async () => {
    while (running) {
      const start = Date.now();
      try {
        acked.push(await write(n++));
        spans.push([start, Date.now()]);
      } catch (err) {
        const name = (err as Error).name;
        failed.set(name, (failed.get(name) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    acked,
    spans,
    failed,
    stop: async () => {
      running = false;
      await Promise.all(lanes);
    },
  };
}

describe('durability on one node with a replica', () => {
  it('acknowledges a knob-1 write once the replica has it, and not without a replica', async () => {
    const primary = await ManagedRedis.start();
    const replica = await ManagedRedis.start({
      extraConfig: [`replicaof ${primary.host} ${primary.port}`],
    });
    const c = new Redis(primary.url);
    const r = new Redis(replica.url);
    r.on('error', () => {}); // the replica is stopped halfway
    try {
      const sched = new SchedulerClient({ shard: new SchedShard(c, uniqueKeys(), 'one') });
      setReplicaAcks(c, { replicas: 1, timeoutMs: 5_000 });
      await sched.submit({ id: 'warm', type: 'noop' }).catch(() => undefined); // replica syncing
      await sched.submit({ id: 'a', type: 'noop' });
      // Acknowledged by the replica: it holds the task the moment the call returns.
      expect(await r.exists(sched.shard.k.task('a'))).toBe(1);
      await replica.stop();
      setReplicaAcks(c, { replicas: 1, timeoutMs: 100 });
      await expect(sched.submit({ id: 'b', type: 'noop' })).rejects.toBeInstanceOf(ReplicaAckError);
    } finally {
      c.disconnect();
      r.disconnect();
      await replica.stop();
      await primary.stop();
    }
  });
});

describe('durability and failover on 3 primaries with a replica each', () => {
  it('waits for a replica only when the knob asks, and refuses to call a write durable that is not', async () => {
    const c = redis.client();
    const probeKeys = uniqueKeys();
    const sched = new SchedulerClient({ shard: new SchedShard(c, probeKeys, 'probe') });
    const write = (id: string) => sched.submit({ id, type: 'noop' }).catch((e: unknown) => e);
    expect(replicaAcks(c)).toBeUndefined();
    setReplicaAcks(c, { replicas: 1, timeoutMs: 2_000 });
    const ok = await write('one');
    expect(ok).toMatchObject({ id: 'one', created: true });
    expect(ok).not.toBeInstanceOf(ReplicaAckError);
    // One replica per primary: two acknowledgements can never come.
    setReplicaAcks(c, { replicas: 2, timeoutMs: 50 });
    const refused = await write('two');
    expect(refused).toBeInstanceOf(ReplicaAckError);
    expect((refused as ReplicaAckError).details).toMatchObject({ replicas: 2, acked: 1 });
    // Not durable is not undone: the primary applied it, and the caller was told it is unsure.
    expect(await sched.get('two')).not.toBeNull();
    // A replica that cannot answer (SIGSTOP) makes a knob-1 write fail as not durable, while
    // a knob-0 write to the same primary is acknowledged at once.
    const slot = await slotOf(c, sched.shard.k.runnable());
    const primary = await redis.cluster!.primaryForSlot(slot);
    const [replica] = await redis.cluster!.replicasOf(primary);
    setReplicaAcks(c, { replicas: 1, timeoutMs: 100 });
    replica!.pause();
    try {
      const stalled = await write('three');
      expect(stalled).toBeInstanceOf(ReplicaAckError);
      expect((stalled as ReplicaAckError).details).toMatchObject({ replicas: 1, acked: 0 });
      const other = new SchedulerClient({
        shard: new SchedShard(redis.client(), probeKeys, 'probe'),
      });
      expect(await other.submit({ id: 'four', type: 'noop' })).toMatchObject({ created: true });
    } finally {
      replica!.resume();
    }
    expect(await write('five')).toMatchObject({ id: 'five', created: true });

    // Writes in flight together share WAITs (group commit), and every one is acknowledged.
    const waits = async () => {
      const info = (await probe.call('INFO', 'commandstats')) as string;
      return Number(/^cmdstat_wait:calls=(\d+)/m.exec(info)?.[1] ?? 0);
    };
    const probe = new Redis({ port: primary.port, host: primary.host });
    setReplicaAcks(c, { replicas: 1, timeoutMs: 2_000 });
    const w0 = await waits();
    const burst = await Promise.all(Array.from({ length: 64 }, (_, i) => write(`g${i}`)));
    const used = (await waits()) - w0;
    probe.disconnect();
    expect(burst.filter((r) => r instanceof Error)).toEqual([]);
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(64);
    expect(() => setReplicaAcks(c, { replicas: 1, timeoutMs: 0 })).toThrow(
      expect.objectContaining({ field: 'timeoutMs', rule: 'min' }),
    );
    expect(replicaAcks(c)).toEqual({ replicas: 1, timeoutMs: 2_000 }); // unchanged
    setReplicaAcks(c, { replicas: 0, timeoutMs: 1 });
    expect(replicaAcks(c)).toBeUndefined();
  });

  it('loses no write acknowledged with store.replica_acks = 1 when a primary is SIGKILLed under load', async () => {
    const admin = redis.client();
    const keys = uniqueKeys();
    const clock = new ManualClock(Date.now());
    const table = new KnobTable(admin, { keys, clock });
    await table.seed();
    const knobs = await KnobClient.start({ table, resyncIntervalMs: 200 });
    const durable = redis.client();
    const fast = redis.client();
    const unfollow = followReplicaAcks(durable, knobs);
    expect(replicaAcks(durable)).toBeUndefined(); // the default, 0
    clock.advance(HOUR_MS);
    const { version } = await table.promote({
      name: 'store.replica_acks',
      value: 1,
      baseVersion: (await table.get('store.replica_acks')).version,
      actor: 'test',
      reason: 'durability test',
    });
    while (knobs.version('store.replica_acks') < version)
      await new Promise((r) => setTimeout(r, 10));
    expect(replicaAcks(durable)).toEqual({ replicas: 1, timeoutMs: 1_000 });

    // The victim: the primary of messaging partition 0; a scheduler shard and a file volume
    // are chosen on the same primary, so every service writes to it when it dies.
    const mkeys = new MessagingKeys(keys);
    const topics = new Topics(admin, mkeys, { knobs });
    await topics.ensure('events');
    const slot = await slotOf(admin, mkeys.stream('events', 0));
    const victim = await redis.cluster!.primaryForSlot(slot);
    const candidates = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const shardName = await onNode(admin, victim, candidates, (n) =>
      new SchedShard(admin, keys, n).k.runnable(),
    );
    const volume = await onNode(admin, victim, candidates, (n) =>
      new FileKeys(keys, n).volumeRow(),
    );

    interface Side {
      sched: Writer;
      msgs: Writer;
      files: Writer;
      producer: Producer;
      fs: FileService;
    }
    const start = async (client: RedisClient, tag: string): Promise<Side> => {
      const sched = new SchedulerClient({ shard: new SchedShard(client, keys, shardName) });
      const producer = new Producer({
        redis: client,
        keys: mkeys,
        knobs,
        log: quiet,
        maxAttempts: 2,
      });
      const fs = await FileService.start({ redis: client, keys, knobs, volume });
      await fs.mkdir(ROOT, `/${tag}`);
      return {
        producer,
        fs,
        sched: writer(4, async (n) => {
          const [r] = await sched.submitMany([{ id: `${tag}-t${n}`, type: 'noop' }]);
          return r!.id;
        }),
        msgs: writer(8, async (n) => {
          const r = await producer.publish('events', `${tag}-m${n}`, { partition: 0 });
          return `${r.id}=${tag}-m${n}`;
        }),
        files: writer(4, async (n) => {
          const path = `/${tag}/f${n}`;
          // A create whose reply was lost with the primary is resent by the client and then
          // finds its own file: that is a success (the write below is idempotent anyway).
          await fs.create(ROOT, path).catch((e: unknown) => {
            if (!(e instanceof FileExistsError)) throw e;
          });
          await fs.write(ROOT, path, 0, `${tag}-content-${n}`);
          return path;
        }),
      };
    };
    const sides = { durable: await start(durable, 'd'), fast: await start(fast, 'f') };
    const all = (s: Side) => [s.sched, s.msgs, s.files];

    await new Promise((r) => setTimeout(r, 1_500));
    const before = Object.fromEntries(
      Object.entries(sides).map(([k, s]) => [k, all(s).map((w) => w.acked.length)]),
    );
    await redis.cluster!.killPrimaryForSlot(slot);
    const killedAt = Date.now();
    const promoted = await redis.cluster!.waitFailover(slot);
    const failoverMs = Date.now() - killedAt;
    expect(promoted).not.toBe(victim);
    const riding = Object.fromEntries(
      Object.entries(sides).map(([k, s]) => [k, all(s).map((w) => w.acked.length)]),
    );
    // Back as a replica of the promoted node: durable writes can be acknowledged again.
    await victim.restart();
    await redis.cluster!.waitReady();
    await redis.cluster!.waitReplicasOnline(1);
    await new Promise((r) => setTimeout(r, 1_000));
    for (const s of Object.values(sides)) await Promise.all(all(s).map((w) => w.stop()));

    // Every write acknowledged with the knob at 1 is on the cluster now.
    const reader = redis.client();
    const checkSched = async (ids: string[]) => {
      const shard = new SchedulerClient({ shard: new SchedShard(reader, keys, shardName) });
      const missing: string[] = [];
      for (const id of ids) if (!(await shard.get(id))) missing.push(id);
      return missing;
    };
    const checkMsgs = async (acked: string[]) => {
      const stored = new Set(
        (await reader.xrange(mkeys.stream('events', 0), '-', '+')).map(
          ([id, f]) => `${id}=${f[f.indexOf('d') + 1]}`,
        ),
      );
      return acked.filter((a) => !stored.has(a));
    };
    const checker = await FileService.start({ redis: reader, keys, knobs, volume });
    const checkFiles = async (paths: string[]) => {
      const missing: string[] = [];
      for (const p of paths) {
        const want = `${p.startsWith('/d/') ? 'd' : 'f'}-content-${p.slice(p.lastIndexOf('f') + 1)}`;
        const got = await checker.read(ROOT, p).then(String, () => undefined);
        if (got !== want) missing.push(p);
      }
      return missing;
    };
    const lost = async (s: Side) => ({
      tasks: await checkSched(s.sched.acked),
      messages: await checkMsgs(s.msgs.acked),
      files: await checkFiles(s.files.acked),
    });
    const durableLost = await lost(sides.durable);
    const fastLost = await lost(sides.fast);
    const report = {
      failover_ms: failoverMs,
      acked_before_kill: before,
      acked_until_promotion: riding,
      acked_total: Object.fromEntries(
        Object.entries(sides).map(([k, s]) => [k, all(s).map((w) => w.acked.length)]),
      ),
      failures: Object.fromEntries(
        Object.entries(sides).map(([k, s]) => [k, all(s).map((w) => Object.fromEntries(w.failed))]),
      ),
      lost_with_knob_0: Object.fromEntries(Object.entries(fastLost).map(([k, v]) => [k, v.length])),
    };
    console.log(`durability: ${JSON.stringify(report)}`);

    expect(durableLost).toEqual({ tasks: [], messages: [], files: [] });
    // The test means something: every service had writes acknowledged on the victim before
    // it died, and with the knob at 1 some again after the replica took over.
    for (const [k, counts] of Object.entries(before))
      for (const n of counts) expect(n, `${k} acknowledged before the kill`).toBeGreaterThan(0);
    const after = all(sides.durable).map((w) => w.acked.length);
    after.forEach((n, i) => expect(n).toBeGreaterThan(before.durable![i]!));
    // The knob-0 side rode through: calls in flight when the primary died completed on the
    // promoted replica, and none of its calls failed. (The durable side could not be
    // acknowledged meanwhile: its new primary had no replica until the old one came back.)
    all(sides.fast).forEach((w, i) => {
      const service = ['scheduler', 'messaging', 'files'][i];
      expect(Object.fromEntries(w.failed), `${service} failures`).toEqual({});
      // Calls that waited out the outage: issued before the promotion and lasting more than
      // half the node timeout (a call takes milliseconds; the failover at least the node
      // timeout). Not only calls issued before killedAt: those issued after the kill and
      // before the promotion wait it out too, and in one CI run they were the only ones.
      const rode = w.spans.filter(
        ([s, e]) => s < killedAt + failoverMs && e - s > NODE_TIMEOUT_MS / 2,
      );
      expect(rode.length, `${service} calls that rode through`).toBeGreaterThan(0);
    });

    unfollow();
    for (const s of Object.values(sides)) {
      await s.producer.close().catch(() => undefined);
      await s.fs.close();
    }
    await checker.close();
    await knobs.close();
  }, 120_000);
});
