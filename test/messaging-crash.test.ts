// Fault tests of the messaging service against real redis-server processes: consumer
// processes SIGKILLed over and over mid-stream (one node and a 3-node cluster) while every
// message's effect must still be applied exactly once; and Redis itself SIGKILLed and
// restarted (AOF, appendfsync always) without losing an acknowledged publish.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Consumer } from '../controlplane/messaging/consumer.ts';
import { PublishFailedError } from '../controlplane/messaging/errors.ts';
import { Producer } from '../controlplane/messaging/producer.ts';
import type { CrashConsumerConfig, CrashConsumerMessage } from './helpers/messaging-consumer.ts';
import {
  messagingFixture,
  outputHashes,
  type MessagingFixture,
} from './helpers/messaging-fixture.ts';
import { eventually, startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';
import { createRng } from '../envs/core/rng.ts';

const CHILD = join(import.meta.dirname, 'helpers', 'messaging-consumer.ts');
const PARTITIONS = 4;

interface Child {
  proc: ChildProcess;
  batches: number;
  ready: Promise<void>;
  report: Promise<CrashConsumerMessage>;
}

function spawnConsumer(cfg: CrashConsumerConfig): Child {
  const proc = fork(CHILD, [JSON.stringify(cfg)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const child: Child = {
    proc,
    batches: 0,
    ready: Promise.resolve(),
    report: Promise.resolve({ type: 'ready' }),
  };
  child.ready = new Promise((resolve, reject) => {
    proc.once('exit', (code, signal) =>
      reject(new Error(`consumer exited early: ${code ?? signal}`)),
    );
    proc.on('message', (m: CrashConsumerMessage) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'batch' && m.applied + m.duplicates + m.stale > 0) child.batches++;
    });
  });
  child.report = new Promise((resolve) =>
    proc.on('message', (m: CrashConsumerMessage) => m.type === 'report' && resolve(m)),
  );
  return child;
}

async function sumTotal(f: MessagingFixture, topic: string): Promise<number> {
  let sum = 0;
  for (let p = 0; p < PARTITIONS; p++)
    sum += Number(await f.redis.get(f.mkeys.output(topic, p, 'total')));
  return sum;
}

async function pendingCount(f: MessagingFixture, topic: string, group: string): Promise<number> {
  let sum = 0;
  for (let p = 0; p < PARTITIONS; p++)
    sum += Number(((await f.redis.xpending(f.mkeys.stream(topic, p), group)) as unknown[])[0]);
  return sum;
}

describe.each<Backend>(['single', 'cluster'])(
  'messaging consumers crashing on %s redis',
  (backend) => {
    let redis: TestRedis | undefined;
    const children: Child[] = [];
    afterAll(async () => {
      for (const c of children) c.proc.kill('SIGKILL');
      await redis?.stop();
    });

    it('applies every message exactly once while consumers are SIGKILLed mid-stream', async () => {
      redis = await startTestRedis(backend);
      const f = await messagingFixture(redis);
      const topic = 'crash';
      await f.topics.ensure(topic, { partitions: PARTITIONS });
      const cfg: CrashConsumerConfig = {
        target: redis.target,
        prefix: f.keys.prefix,
        topic,
        group: 'g',
        visibilityMs: 300,
        workMs: 1,
      };
      const start = () => {
        const c = spawnConsumer(cfg);
        children.push(c);
        return c;
      };
      let live = [start(), start(), start()];
      await Promise.all(live.map((c) => c.ready));

      // Publishing goes on (about 2,000 messages/s) until the last kill, so each kill lands
      // mid-stream.
      let n = 0;
      let killing = true;
      const producer = new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs });
      const publishing = (async () => {
        while (killing || n < 1_000) {
          await Promise.all(Array.from({ length: 50 }, () => producer.publish(topic, `m${n++}`)));
          await new Promise((r) => setTimeout(r, 25));
        }
      })();

      // Kill a busy consumer (one that has committed since it started) four times; its
      // replacement starts at once, alongside the others.
      const rng = createRng(7);
      let kills = 0;
      for (; kills < 4; kills++) {
        await eventually(() => live.some((c) => c.batches > 0), 'a consumer is processing');
        const busy = live.filter((c) => c.batches > 0);
        const victim = busy[rng.int(busy.length)] as Child;
        victim.proc.kill('SIGKILL');
        live = live.filter((c) => c !== victim).concat(start());
        await new Promise((r) => setTimeout(r, 100 + rng.int(200)));
      }
      await Promise.all(live.map((c) => c.ready));
      killing = false;
      await publishing;
      await producer.close();

      await eventually(async () => (await sumTotal(f, topic)) >= n, 'all effects applied', 30_000);
      await eventually(
        async () => (await pendingCount(f, topic, 'g')) === 0,
        'nothing pending',
        30_000,
      );
      const seen = await outputHashes(f, topic, PARTITIONS, 'seen');
      expect(seen.size).toBe(n);
      const counts = [...seen.values()];
      expect(counts.filter((v) => v !== 1)).toEqual([]);
      expect(await sumTotal(f, topic)).toBe(n);
      expect(kills).toBe(4);

      for (const c of live) c.proc.send({ type: 'finish' });
      await Promise.all(live.map((c) => c.report));
      await f.close();
    });
  },
);

describe('messaging across a Redis crash (AOF, appendfsync always)', () => {
  let redis: TestRedis | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  it('loses no acknowledged publish and applies each message once', async () => {
    redis = await startTestRedis('single', { appendfsync: 'always' });
    const server = redis.single!;
    const f = await messagingFixture(redis);
    const topic = 'durable';
    await f.topics.ensure(topic, { partitions: PARTITIONS });
    const producer = new Producer({
      redis: f.redis,
      keys: f.mkeys,
      knobs: f.knobs,
      maxAttempts: 3,
      retryBaseMs: 20,
    });
    const consumer = await Consumer.start({
      redis: f.redis,
      keys: f.mkeys,
      knobs: f.knobs,
      topic,
      group: 'g',
      visibilityMs: 300,
      blockMs: 200,
      handler: (m, out) => {
        out.hincr('seen', m.data);
        out.incr('total');
      },
    });

    const n = 1_500;
    const acked = new Set<string>();
    // Each message has an idempotency key; a publish that failed is retried by the caller
    // with the same key, as a client should, until it is acknowledged.
    const publishOne = async (i: number): Promise<void> => {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          await producer.publish(topic, `m${i}`, { key: `k${i}` });
          acked.add(`m${i}`);
          return;
        } catch (err) {
          if (!(err instanceof PublishFailedError)) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      throw new Error(`m${i} never acknowledged`);
    };
    const publishing = (async () => {
      for (let i = 0; i < n; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => publishOne(i + j)));
      }
    })();
    await eventually(() => acked.size >= n / 3, 'a third published');
    const ackedBeforeKill = new Set(acked);
    await server.kill();
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    await publishing;

    // Every publish acknowledged before the crash is in the streams after it.
    const stored = new Map<string, number>();
    for (let p = 0; p < PARTITIONS; p++) {
      for (const [, fields] of await f.redis.xrange(f.mkeys.stream(topic, p), '-', '+')) {
        const d = fields[fields.indexOf('d') + 1] as string;
        stored.set(d, (stored.get(d) ?? 0) + 1);
      }
    }
    expect([...ackedBeforeKill].filter((m) => !stored.has(m))).toEqual([]);
    expect(acked.size).toBe(n);
    expect(stored.size).toBe(n);
    expect([...stored.values()].filter((v) => v !== 1)).toEqual([]);

    await eventually(async () => (await sumTotal(f, topic)) >= n, 'all effects applied', 30_000);
    const seen = await outputHashes(f, topic, PARTITIONS, 'seen');
    expect(seen.size).toBe(n);
    expect([...seen.values()].filter((v) => v !== 1)).toEqual([]);
    expect(await sumTotal(f, topic)).toBe(n);
    await consumer.stop();
    await producer.close();
    await f.close();
  });
});
