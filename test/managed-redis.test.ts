// Managed redis-server processes: start, stop, SIGKILL and restart with the AOF.
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedRedis, RedisNotInstalledError } from '../controlplane/redis/managed.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

describe('managed redis-server', () => {
  it('starts on a free port, answers, and stops cleanly', async () => {
    const a = await ManagedRedis.start();
    const b = await ManagedRedis.start();
    cleanup.push(
      () => a.stop(),
      () => b.stop(),
    );
    expect(a.port).not.toBe(b.port);
    const c = new Redis(a.url);
    expect(await c.ping()).toBe('PONG');
    c.disconnect();
    await a.stop();
    expect(a.running).toBe(false);
  });

  it('with appendfsync always, keeps every acknowledged write across SIGKILL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knobos-aof-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const r = await ManagedRedis.start({ dir, appendfsync: 'always' });
    cleanup.push(() => r.stop());
    const c = new Redis(r.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    for (let i = 0; i < 200; i++) await c.incr('acked');
    await r.kill();
    expect(r.running).toBe(false);
    c.disconnect();
    await r.restart();
    const d = new Redis(r.url);
    expect(await d.get('acked')).toBe('200');
    d.disconnect();
  });

  it('without AOF, a SIGKILL loses the data (the contrast that makes the test above mean something)', async () => {
    const r = await ManagedRedis.start();
    cleanup.push(() => r.stop());
    const c = new Redis(r.url);
    await c.set('k', 'v');
    c.disconnect();
    await r.kill();
    await r.restart();
    const d = new Redis(r.url);
    expect(await d.get('k')).toBeNull();
    d.disconnect();
  });

  it('a server that fails to start says why (its log is on stdout)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knobos-badaof-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'appendonlydir'));
    writeFileSync(join(dir, 'appendonlydir', 'appendonly.aof.manifest'), 'not a manifest\n');
    const err = await ManagedRedis.start({ dir, appendfsync: 'everysec' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /exited with 1: [\s\S]*Invalid AOF manifest file format/,
    );
  });

  it('reports an unplanned exit, and not a stop() or kill()', async () => {
    const r = await ManagedRedis.start();
    cleanup.push(() => r.stop());
    const reasons: string[] = [];
    r.onUnplannedExit((why) => reasons.push(why));
    await r.kill();
    await r.restart();
    process.kill(r.pid as number, 'SIGKILL');
    for (let i = 0; i < 200 && reasons.length === 0; i++)
      await new Promise((s) => setTimeout(s, 10));
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(
      new RegExp(`redis-server on port ${r.port} .*exited unexpectedly with SIGKILL`),
    );
    await r.restart();
    await r.stop();
    expect(reasons).toHaveLength(1);
  });

  it('names the install command when redis-server is missing', async () => {
    const path = process.env['PATH'];
    process.env['PATH'] = '/nonexistent';
    try {
      const err = await ManagedRedis.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisNotInstalledError);
      expect((err as Error).message).toMatch(/apt-get install -y redis-server/);
    } finally {
      process.env['PATH'] = path;
    }
  });
});
