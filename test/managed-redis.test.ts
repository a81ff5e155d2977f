// Managed redis-server processes: start, stop, SIGKILL and restart with the AOF; a server still
// running when its process exits gets SIGTERM (a clean shutdown, AOF fsynced), not SIGKILL.
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedRedis, RedisNotInstalledError } from '../controlplane/redis/managed.ts';
import { eventually } from './helpers/redis.ts';

const cleanup: (() => Promise<void>)[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
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

  it('a server still running when its process exits is sent SIGTERM: it shuts down cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knobos-exit-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const logfile = join(dir, 'redis.log');
    // A process (as `knobos start` past its stop deadline, or a second Ctrl-C) that exits with
    // its embedded server running and writes acknowledged.
    const code = `
      const { ManagedRedis } = await import(${JSON.stringify(join(process.cwd(), 'controlplane/redis/managed.ts'))});
      const { connect } = await import(${JSON.stringify(join(process.cwd(), 'controlplane/redis/connect.ts'))});
      const m = await ManagedRedis.start({
        dir: ${JSON.stringify(join(dir, 'data'))},
        appendfsync: 'everysec',
        extraConfig: ['logfile ${logfile}'],
      });
      const c = connect({ url: m.url });
      for (let i = 0; i < 500; i++) await c.incr('acked');
      console.log(m.pid);
      process.exit(0);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exitCode = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(exitCode, err).toBe(0);
    const pid = Number(out.trim());
    expect(pid).toBeGreaterThan(0);
    await eventually(() => !alive(pid), 'the orphaned server exited', 10_000);
    const log = readFileSync(logfile, 'utf8');
    expect(log).toMatch(/Received SIGTERM/);
    expect(log).toMatch(/ready to exit, bye bye/);
    // Every acknowledged write is there on the next start on the same folder.
    const again = await ManagedRedis.start({ dir: join(dir, 'data'), appendfsync: 'everysec' });
    cleanup.push(() => again.stop());
    const d = new Redis(again.url);
    expect(await d.get('acked')).toBe('500');
    d.disconnect();
  }, 30_000);

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
