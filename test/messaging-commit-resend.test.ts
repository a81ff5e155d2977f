// A commit whose reply a dropped connection lost: ioredis resends the unanswered EVALSHA
// itself after reconnecting, with the first attempt's arguments. The script finds the results
// the attempt that ran stored and returns them, so the batch reports the message as applied
// (review: it was reported as a duplicate of itself, and its end-to-end latency was not
// recorded). A proxy between the consumer and Redis swallows the commit's reply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer } from '../controlplane/messaging/consumer.ts';
import { readDeadLetters } from '../controlplane/messaging/dead-letters.ts';
import { messagingScripts } from '../controlplane/messaging/scripts.ts';
import type { BatchEvent } from '../controlplane/messaging/partition-worker.ts';
import { MessagingTelemetry } from '../controlplane/messaging/telemetry.ts';
import { Producer } from '../controlplane/messaging/producer.ts';
import { messagingFixture } from './helpers/messaging-fixture.ts';
import { throughDropper } from './helpers/reply-dropper.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';

describe('a commit whose reply was lost', () => {
  let test: TestRedis;
  beforeAll(async () => {
    test = await startTestRedis('single');
  });
  afterAll(async () => {
    await test?.stop();
  });

  it('reports the message it applied as applied when ioredis resends it', async () => {
    const f = await messagingFixture(test);
    await f.topics.ensure('resend', { partitions: 1 });
    const { proxy, client: viaProxy, close } = await throughDropper(test);
    const telemetry = new MessagingTelemetry({ redis: f.redis, keys: f.keys, instance: 'c' });
    const events: BatchEvent[] = [];
    const c = await Consumer.start({
      redis: viaProxy,
      keys: f.mkeys,
      knobs: f.knobs,
      topics: f.topics,
      telemetry,
      topic: 'resend',
      group: 'g',
      blockMs: 50,
      visibilityMs: 60_000,
      handler: (m, out) => {
        out.hincr('seen', m.data);
        proxy.armed = true; // the next reply on the consumer's connection is the commit's
      },
    });
    c.on('batch', (e) => events.push(e));
    const p = new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs, telemetry });
    try {
      await p.publish('resend', 'a');
      await eventually(() => events.length > 0, 'a batch event', 15_000);
      expect(proxy.dropped).toBe(1);
      expect(await f.redis.hget(f.mkeys.output('resend', 0, 'seen'), 'a')).toBe('1');
      expect(events[0]).toMatchObject({ applied: 1, duplicates: 0 });
    } finally {
      await c.stop();
      await p.close();
      await telemetry.stop();
      await close();
      await f.close();
    }
  });

  it('hands out the messages a resent take-over claimed, not nothing', async () => {
    const f = await messagingFixture(test);
    await f.topics.ensure('claimed', { partitions: 1 });
    const { proxy, client: viaProxy, close } = await throughDropper(test);
    const telemetry = new MessagingTelemetry({ redis: f.redis, keys: f.keys, instance: 'c' });
    const p = new Producer({ redis: f.redis, keys: f.mkeys, knobs: f.knobs, telemetry });
    // The take-over of consumer b (through the proxy) loses its reply once.
    const run = messagingScripts.run.bind(messagingScripts);
    messagingScripts.run = (client, name, keys, args) => {
      if (name === 'claim' && client === viaProxy && proxy.dropped === 0) proxy.armed = true;
      return run(client, name, keys, args);
    };
    let hang!: () => void;
    const stuck = new Promise<void>((r) => (hang = r));
    const common = {
      keys: f.mkeys,
      knobs: f.knobs,
      topics: f.topics,
      telemetry,
      topic: 'claimed',
      group: 'g',
      blockMs: 50,
      visibilityMs: 300,
      claimIntervalMs: 100,
      maxDeliveries: 2,
    };
    const seen: number[] = [];
    // a takes the message and stalls in its handler: it never commits.
    const a = await Consumer.start({ ...common, redis: f.redis, handler: () => stuck });
    let b: Consumer | undefined;
    try {
      await p.publish('claimed', 'm');
      // Past the visibility timeout: b's first take-over claims it (a's loop is stuck).
      await new Promise((r) => setTimeout(r, 450));
      b = await Consumer.start({
        ...common,
        redis: viaProxy,
        handler: (m, out) => {
          seen.push(m.deliveries);
          out.hincr('seen', m.data);
        },
      });
      await eventually(
        async () => (await f.redis.hget(f.mkeys.output('claimed', 0, 'seen'), 'm')) === '1',
        'applied by b',
        10_000,
      );
      expect(proxy.dropped).toBe(1);
      // Its second delivery, the take-over: not a third after another timeout, dead-lettered.
      expect(seen).toEqual([2]);
      expect(await readDeadLetters(f.redis, f.mkeys, 'claimed', 0)).toEqual([]);
    } finally {
      messagingScripts.run = run;
      hang();
      await b?.stop();
      await a.stop();
      await p.close();
      await telemetry.stop();
      await close();
      await f.close();
    }
  });
});
