// The node lease (controlplane/run/node-lease.ts): one node with the live services per Redis
// and prefix. A second is refused naming the holder; a dead holder's lease frees itself when it
// expires; a lease that expired while Redis was away is taken again unless another node took
// it, and then the node is told it lost it.
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../controlplane/log.ts';
import { startNode } from '../controlplane/node.ts';
import { NodeLease, NodeLeaseHeldError } from '../controlplane/run/node-lease.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const log = createLogger('node-lease-test', 'silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('node lease', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  }, 60_000);
  afterAll(async () => {
    await redis.stop();
  });

  it('refuses a second holder, naming the first, until the first releases it', async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    const lost: Error[] = [];
    const first = await NodeLease.acquire(r, keys, { log, onLost: (e) => lost.push(e) });
    const err = await NodeLease.acquire(r, keys, { log, onLost: () => {} }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NodeLeaseHeldError);
    expect((err as NodeLeaseHeldError).holder).toMatchObject({ pid: process.pid });
    expect((err as Error).message).toMatch(/another knobos node runs the live services/);
    await first.release();
    expect(await r.exists(keys.key('node', 'lease'))).toBe(0);
    const second = await NodeLease.acquire(r, keys, { log, onLost: () => {} });
    await second.release();
    expect(lost).toEqual([]);
  });

  it("frees a dead holder's lease when it expires, and renews a live one past it", async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    // A holder that died without releasing: its record, expiring in 300 ms.
    await r.set(keys.key('node', 'lease'), '{"host":"gone","pid":1,"since":0}', 'PX', 300);
    await expect(NodeLease.acquire(r, keys, { log, onLost: () => {} })).rejects.toThrow(
      /pid 1 on gone/,
    );
    await sleep(400);
    const lease = await NodeLease.acquire(r, keys, { log, onLost: () => {}, ttlMs: 300 });
    await sleep(1_000); // three times its time to live: renewed all along
    expect(await r.pttl(keys.key('node', 'lease'))).toBeGreaterThan(0);
    await lease.release();
  });

  it("takes at once, on its own Redis, the lease of this host's process that is gone", async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    const key = keys.key('node', 'lease');
    // A process of this host that has exited: its pid names no process now.
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.on('exit', resolve));
    const dead = JSON.stringify({ host: hostname(), pid: child.pid, since: 0 });
    await r.set(key, dead, 'PX', 60_000);
    // On a Redis it did not start, a node cannot tell: refused until the lease expires.
    await expect(NodeLease.acquire(r, keys, { log, onLost: () => {} })).rejects.toThrow(
      NodeLeaseHeldError,
    );
    // Before, its own embedded Redis refused it as well, for up to the lease's 15 s.
    const lease = await NodeLease.acquire(r, keys, { log, onLost: () => {}, ownRedis: true });
    expect(JSON.parse((await r.get(key)) as string)).toMatchObject({ pid: process.pid });
    await lease.release();
    // A live holder of this host (the test runner's parent) or of another host is never taken.
    for (const holder of [
      { host: hostname(), pid: process.ppid, since: 0 },
      { host: 'elsewhere', pid: child.pid, since: 0 },
    ]) {
      await r.set(key, JSON.stringify(holder), 'PX', 60_000);
      await expect(
        NodeLease.acquire(r, keys, { log, onLost: () => {}, ownRedis: true }),
      ).rejects.toThrow(NodeLeaseHeldError);
    }
    await r.del(key);
  });

  it('takes an expired lease again, but stops when another node has it', async () => {
    const keys = uniqueKeys();
    const r = redis.client();
    const key = keys.key('node', 'lease');
    const lost: Error[] = [];
    const lease = await NodeLease.acquire(r, keys, {
      log,
      onLost: (e) => lost.push(e),
      ttlMs: 300,
    });
    const ours = await r.get(key);
    await r.del(key); // expired while Redis was away, nobody took it
    await eventually(async () => (await r.get(key)) === ours, 'the lease taken again', 2_000);
    expect(lost).toEqual([]);
    await r.set(key, '{"host":"other","pid":2,"since":0}', 'PX', 10_000); // another node has it
    await eventually(async () => lost.length === 1, 'the loss reported', 2_000);
    expect(lost[0]?.message).toMatch(/lost its lease/);
    await lease.release(); // not ours: left alone
    expect(await r.get(key)).toMatch(/"other"/);
  });

  it('a second node with the live services on one Redis is refused; an API-only one is not', async () => {
    const keys = uniqueKeys();
    const common = { dataDir: '/nonexistent', log, api: false, env: {}, prefix: keys.prefix };
    const node = await startNode({ ...common, target: redis.target });
    try {
      await expect(startNode({ ...common, target: redis.target })).rejects.toThrow(
        NodeLeaseHeldError,
      );
      const apiOnly = await startNode({ ...common, target: redis.target, services: false });
      await apiOnly.stop();
    } finally {
      await node.stop();
    }
    expect(await redis.client().exists(keys.key('node', 'lease'))).toBe(0);
  }, 120_000);
});
