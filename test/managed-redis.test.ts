// Managed redis-server processes: start, stop, SIGKILL and restart with the AOF; a server still
// running when its process exits gets SIGTERM (a clean shutdown, AOF fsynced), not SIGKILL.
// A port held by another server is never mistaken for ours; stop() of a paused server returns;
// the cluster's one-shot clients leave nothing reconnecting.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withClient } from '../controlplane/redis/managed-cluster.ts';
import { ManagedRedis, RedisNotInstalledError } from '../controlplane/redis/managed.ts';
import { freePort } from '../controlplane/redis/ports.ts';
import { eventually } from './helpers/redis.ts';

// Ports freePort() hands out before the real ones: a test makes start() pick a taken port.
const queuedPorts = vi.hoisted(() => [] as number[]);
vi.mock('../controlplane/redis/ports.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../controlplane/redis/ports.ts')>();
  return {
    ...real,
    freePort: (opts?: { clusterBus?: boolean }) => {
      const next = queuedPorts.shift();
      return next === undefined ? real.freePort(opts) : Promise.resolve(next);
    },
  };
});

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
  queuedPorts.length = 0;
  vi.restoreAllMocks();
  while (cleanup.length) await cleanup.pop()?.();
});

/** A plain redis-server (not a ManagedRedis) on `port`, holding the key `foreign`. */
async function foreignServer(port: number): Promise<void> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  cleanup.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  });
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await eventually(async () => {
      try {
        await c.connect();
        return true;
      } catch {
        return false;
      }
    }, `a foreign redis-server answers on ${port}`);
    await c.set('foreign', 'yes');
  } finally {
    c.disconnect();
  }
}

/** Resolves to 'timeout' when `p` has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms))),
  ]).finally(() => clearTimeout(timer));
}

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

describe('a port held by another server', () => {
  it('start() on that port fails, naming it, and never reports the other server', async () => {
    const port = await freePort();
    await foreignServer(port);
    const got = await ManagedRedis.start({ port }).catch((e: unknown) => e);
    if (got instanceof ManagedRedis) cleanup.push(() => got.stop());
    expect(got).toBeInstanceOf(Error);
    expect((got as Error).message).toContain(String(port));
  });

  it('start() without a port moves to another free port when the one it picked is taken', async () => {
    const port = await freePort();
    await foreignServer(port);
    queuedPorts.push(port);
    const r = await ManagedRedis.start();
    cleanup.push(() => r.stop());
    expect(r.port).not.toBe(port);
    const c = new Redis(r.url);
    expect(await c.get('foreign')).toBeNull();
    c.disconnect();
    await new Promise((s) => setTimeout(s, 300));
    expect(r.running).toBe(true);
  });

  it('restart() fails, naming the port, when another server took it meanwhile', async () => {
    const r = await ManagedRedis.start();
    cleanup.push(() => r.stop());
    await r.kill();
    await foreignServer(r.port);
    const err = await r.restart().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(String(r.port));
    expect(r.running).toBe(false);
  });
});

describe('stop() and one-shot clients of unresponsive servers', () => {
  it('stop() of a paused server returns within a few seconds', async () => {
    const r = await ManagedRedis.start();
    cleanup.push(async () => {
      r.resume();
      await r.kill();
    });
    r.pause();
    expect(await within(r.stop(), 8_000)).not.toBe('timeout');
    expect(r.running).toBe(false);
  }, 20_000);

  it('a cluster call to a closed port fails and leaves no client reconnecting', async () => {
    const connect = vi.spyOn(Redis.prototype, 'connect');
    const port = await freePort();
    const err = await within(
      withClient({ host: '127.0.0.1', port }, (c) => c.ping()).catch((e: unknown) => e),
      5_000,
    );
    const clients = connect.mock.contexts as Redis[];
    cleanup.push(async () => clients.forEach((c) => c.disconnect()));
    expect(err).toBeInstanceOf(Error);
    expect(clients.length).toBeGreaterThan(0);
    // ioredis's default strategy would reconnect after 50 ms, then ever more slowly.
    await new Promise((s) => setTimeout(s, 300));
    expect(clients.map((c) => c.status)).toEqual(clients.map(() => 'end'));
  });

  it('a cluster call to a paused node fails within its timeout', async () => {
    const r = await ManagedRedis.start();
    cleanup.push(async () => {
      r.resume();
      await r.stop();
    });
    r.pause();
    const started = Date.now();
    const got = await within(
      withClient(r, (c) => c.ping(), 500).catch((e: unknown) => e),
      5_000,
    );
    expect(got).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 20_000);
});
