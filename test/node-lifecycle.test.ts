// The node's life cycle around its embedded redis-server (controlplane/node.ts): settings are
// refused before anything starts; a failure late in startup stops what had started; one node
// per data directory (a lock, taken over from a dead holder, and the redis-server a node killed
// with -9 left behind shut down); the embedded server dying under a running node is fatal; and
// the CLI names a dead embedded node instead of timing out against its address.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../controlplane/log.ts';
import { startNode, type KnobosNode } from '../controlplane/node.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { LOCK_FILE } from '../controlplane/run/state-lock.ts';
import { eventually } from './helpers/redis.ts';

const log = createLogger('node-lifecycle-test', 'silent');
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'knobos-life-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A pid no process has any more. */
function deadPid(): number {
  const pid = spawnSync('true').pid;
  if (!pid) throw new Error('no pid');
  return pid;
}

async function start(dataDir: string, more: Partial<Parameters<typeof startNode>[0]> = {}) {
  const node = await startNode({
    dataDir,
    log,
    services: false,
    api: false,
    env: {},
    ...more,
  });
  cleanup.push(() => node.stop().catch(() => undefined));
  return node;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('node life cycle', () => {
  it('refuses a bad setting before starting anything', async () => {
    const dir = tempDir();
    for (const env of [
      { PORT: 'abc' },
      { KNOBOS_AUTH: 'maybe' },
      { KNOBOS_ADMIN_TOKEN: 'short' },
      { KNOBOS_REDIS_ACL: 'bogus' },
      { KNOBOS_REDIS_PASSWORD_ADMIN: 'short' },
    ]) {
      const err = await startNode({ dataDir: dir, log, services: false, env }).catch(
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(env)).toBeInstanceOf(Error);
      expect((err as Error).message).toContain(Object.keys(env)[0]);
    }
    // No redis-server was started, and the directory is not left locked.
    expect(existsSync(join(dir, 'redis'))).toBe(false);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('a failure late in startup (the API port in use) stops the embedded redis-server', async () => {
    const dir = tempDir();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const port = (blocker.address() as AddressInfo).port;
    const err = await startNode({
      dataDir: dir,
      log,
      services: false,
      env: { PORT: String(port), KNOBOS_ADMIN_TOKEN: 'node-lifecycle-admin-token' },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/EADDRINUSE|in use/);
    const confs = readdirSync(join(dir, 'redis')).filter((f) => /^redis-\d+\.conf$/.test(f));
    expect(confs).toHaveLength(1);
    const redisPort = Number(/\d+/.exec(confs[0] as string)?.[0]);
    expect(await answers(redisPort)).toBe(false);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('refuses a second node on the same data directory, and takes over a dead one’s lock', async () => {
    const dir = tempDir();
    const first = await start(dir);
    const err = await start(dir).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      new RegExp(
        `another knobos node \\(pid ${process.pid}\\) is running on the data directory ${dir}`,
      ),
    );
    expect(first.managed?.running).toBe(true); // the refused start touched nothing
    await first.stop();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);

    // A node killed with -9 leaves its lock behind: its pid is dead, so the lock is taken over.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid() }) + '\n');
    const again = await start(dir);
    expect(again.managed?.running).toBe(true);
    await again.stop();
  });

  it('shuts down the redis-server a dead node left behind before starting its own', async () => {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    // The orphan: a server on the directory whose node is gone (redis.json names both pids).
    const orphan = await ManagedRedis.start({ dir: join(dir, 'orphan') });
    cleanup.push(() => orphan.stop());
    writeFileSync(
      join(dir, 'redis.json'),
      JSON.stringify({
        url: orphan.url,
        pid: deadPid(),
        redisPid: orphan.pid,
        redisPort: orphan.port,
      }) + '\n',
    );
    const node = await start(dir);
    await eventually(async () => !orphan.running, 'the orphaned redis-server stopped', 5_000);
    expect(node.managed?.running).toBe(true);
    expect(node.managed?.port).not.toBe(orphan.port);
  });

  it('Ctrl-C while `knobos start` is starting stops the node once started, Redis too', async () => {
    const dir = tempDir();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KNOBOS_HOME: dir,
      PORT: '0',
      KNOBOS_ADMIN_TOKEN: 'node-lifecycle-admin-token',
    };
    delete env['REDIS_URL'];
    delete env['KNOBOS_REDIS_CLUSTER'];
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'start'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    cleanup.push(() => void child.kill('SIGKILL'));
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    // The signal goes in as soon as the embedded server is up, long before the node is.
    const redisPid = await new Promise<number>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        const m = /"pid":(\d+),"msg":"started embedded redis-server"/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', () => reject(new Error(`exited before Redis started: ${err}`)));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    // It finished starting (the banner) and then stopped, its redis-server with it.
    expect(stdout).toMatch(/knobos is running/);
    expect(() => process.kill(redisPid, 0)).toThrow();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 60_000);

  it('the embedded redis-server dying under a running node is fatal', async () => {
    const dir = tempDir();
    const onFatal = vi.fn<(err: Error) => void>();
    const node: KnobosNode = await start(dir, { onFatal });
    const pid = node.managed?.pid as number;
    process.kill(pid, 'SIGKILL');
    await eventually(async () => onFatal.mock.calls.length > 0, 'onFatal called', 5_000);
    expect(onFatal).toHaveBeenCalledTimes(1);
    expect(onFatal.mock.calls[0]?.[0].message).toMatch(
      new RegExp(`redis-server on port ${node.managed?.port} \\(pid ${pid}\\) exited unexpectedly`),
    );
    await node.stop(); // and the node still stops
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('a stale redis.json (its node dead) makes the CLI say the node is not running', async () => {
    const dir = tempDir();
    const pid = deadPid();
    writeFileSync(
      join(dir, 'redis.json'),
      JSON.stringify({ url: 'redis://127.0.0.1:1', pid }) + '\n',
    );
    const saved = { ...process.env };
    process.env['KNOBOS_HOME'] = dir;
    delete process.env['REDIS_URL'];
    delete process.env['KNOBOS_REDIS_CLUSTER'];
    vi.resetModules();
    try {
      const { resolveTarget } = await import('../cli/context.ts');
      expect(() => resolveTarget(undefined)).toThrow(
        `the embedded knobos (pid ${pid}) is not running; run npm start`,
      );
      // A live node's file resolves to its address.
      writeFileSync(
        join(dir, 'redis.json'),
        JSON.stringify({ url: 'redis://127.0.0.1:1', pid: process.pid }) + '\n',
      );
      expect(resolveTarget(undefined)).toEqual({ url: 'redis://127.0.0.1:1' });
    } finally {
      process.env = saved;
    }
  });
});
