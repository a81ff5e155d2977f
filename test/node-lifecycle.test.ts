// The node's life cycle around its embedded redis-server (controlplane/node.ts): settings are
// refused before anything starts; a failure late in startup stops what had started; one node
// per data directory (a lock, taken over from a dead holder, and the redis-server a node killed
// with -9 left behind shut down); the lock is never taken from a live node while it rewrites
// the file, and of several starters taking over a dead node's lock one wins; the embedded server
// dying under a running node is fatal; `knobos start` failing after the node started stops it
// in order; and the CLI names a dead embedded node instead of timing out against its address.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect as tcpConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../controlplane/log.ts';
import { startNode, type KnobosNode } from '../controlplane/node.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { EMBEDDED_FILE_NAME, LOCK_FILE, StateLock } from '../controlplane/run/state-lock.ts';
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

/** Runs `code` (an ES module; project files by absolute path) in a child node with tsx. */
function tsxChild(code: string, env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.push(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

/** `knobos start` in a child process, on the embedded default with its data in `dir`. */
function knobosStart(dir: string) {
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
  cleanup.push(() => {
    child.kill('SIGKILL');
    // Its redis-server runs in a process group of its own: a node killed by a failed test
    // leaves it behind unless it is stopped here too (the lock file names it).
    try {
      const lock = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { redisPid?: number };
      if (lock.redisPid) process.kill(lock.redisPid, 'SIGKILL');
    } catch {
      // No lock (the node stopped, or never started Redis) or the server is gone already.
    }
  });
  return { child, exited };
}

/** `knobos serve` (with `args`) in a child process, its state directory `dir`. */
function knobosServe(dir: string, args: string[] = []) {
  const env: NodeJS.ProcessEnv = { ...process.env, KNOBOS_HOME: dir, PORT: '0' };
  delete env['REDIS_URL'];
  delete env['KNOBOS_REDIS_CLUSTER'];
  const serve = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'serve', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.push(() => void serve.kill('SIGKILL'));
  return serve;
}

/** Resolves to a child's stdout so far once it matches `re`; fails if the child exits first. */
function untilOutput(
  child: ChildProcessByStdio<null, Readable, Readable>,
  re: RegExp,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (re.test(out)) resolve(out);
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => reject(new Error(`exited ${code} before ${re}: ${err}`)));
  });
}

const STATE_LOCK_TS = join(process.cwd(), 'controlplane/run/state-lock.ts');

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

  it('never takes the lock from a live node while it rewrites the lock file', async () => {
    const dir = tempDir();
    // The holder rewrites its lock as fast as it can: with update(), and as an older knobos
    // did (truncate, then write: briefly empty).
    const holder = tsxChild(`
      import { writeFileSync } from 'node:fs';
      const { StateLock } = await import(${JSON.stringify(STATE_LOCK_TS)});
      const { lock } = StateLock.acquire(${JSON.stringify(dir)});
      console.log('held');
      const end = Date.now() + 2500;
      for (let i = 0; Date.now() < end; i++) {
        if (i % 2) lock.update({ redisPid: i, redisPort: 6379, url: 'redis://127.0.0.1:6379' });
        else writeFileSync(lock.path, JSON.stringify({ pid: process.pid, redisPid: i }) + '\\n');
      }
    `);
    await eventually(() => holder.out().includes('held'), 'the holder took the lock', 20_000);
    let taken = 0;
    const refusals = new Set<string>();
    const end = Date.now() + 1_500;
    while (Date.now() < end) {
      try {
        StateLock.acquire(dir).lock.release();
        taken++;
      } catch (err) {
        refusals.add((err as Error).message.replace(/\d+/g, 'N'));
      }
    }
    expect(taken).toBe(0);
    expect([...refusals].join('\n')).toMatch(/another knobos node \(pid N\) is running/);
    expect(await holder.exited, holder.err()).toBe(0);
    // It let go of the lock when it exited.
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 30_000);

  it('a node exiting at once while its redis-server still runs leaves the lock naming it', async () => {
    const dir = tempDir();
    const server = await ManagedRedis.start({ dir: join(dir, 'server') });
    cleanup.push(() => server.stop());
    // As a second Ctrl-C while starting does: process.exit with the server still up (it was
    // sent SIGTERM and may still be saving). Releasing the lock let a next start run a second
    // server on the same files meanwhile.
    const node = tsxChild(`
      const { StateLock } = await import(${JSON.stringify(STATE_LOCK_TS)});
      const { lock } = StateLock.acquire(${JSON.stringify(dir)});
      lock.update({ redisPid: ${server.pid}, redisPort: ${server.port}, url: ${JSON.stringify(server.url)} });
      process.exit(130);
    `);
    expect(await node.exited, node.err()).toBe(130);
    const held = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { redisPid?: number };
    expect(held.redisPid).toBe(server.pid);
    // The next start takes the dead node's lock over and shuts its server down first.
    const next = await start(dir);
    await eventually(async () => !server.running, 'the left redis-server stopped', 5_000);
    expect(next.managed?.port).not.toBe(server.port);
    // With no server left running, an exit lets go of the lock.
    mkdirSync(join(dir, 'other'));
    const plain = tsxChild(`
      const { StateLock } = await import(${JSON.stringify(STATE_LOCK_TS)});
      StateLock.acquire(${JSON.stringify(join(dir, 'other'))}).lock.update({ redisPid: ${server.pid} });
      process.exit(130);
    `);
    expect(await plain.exited, plain.err()).toBe(130);
    expect(existsSync(join(dir, 'other', LOCK_FILE))).toBe(false);
  }, 60_000);

  it('refuses a lock that stays unreadable, naming the file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), '');
    expect(() => StateLock.acquire(dir)).toThrow(
      `the lock file ${join(dir, LOCK_FILE)} names no process`,
    );
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(''); // left alone
  });

  it('of several starters taking over a dead node’s lock at once, one wins', async () => {
    const root = tempDir();
    const rounds = 40;
    const dirs = Array.from({ length: rounds }, (_, r) => {
      const d = join(root, `r${r}`);
      mkdirSync(d);
      writeFileSync(join(d, LOCK_FILE), JSON.stringify({ pid: deadPid(), redisPid: 1 }) + '\n');
      return d;
    });
    // Every starter takes its turn at the same instant of each round (once all have loaded),
    // and holds what it won until every starter is done (a lock goes when its holder exits).
    const t0 = Date.now() + 4_000;
    const release = join(root, 'release');
    const starters = Array.from({ length: 6 }, () =>
      tsxChild(`
        import { existsSync, writeFileSync } from 'node:fs';
        const { StateLock } = await import(${JSON.stringify(STATE_LOCK_TS)});
        const dirs = ${JSON.stringify(dirs)};
        for (let r = 0; r < dirs.length; r++) {
          while (Date.now() < ${t0} + r * 25);
          try {
            const { stale } = StateLock.acquire(dirs[r]);
            writeFileSync(dirs[r] + '/won-' + process.pid, JSON.stringify(stale));
          } catch {}
        }
        console.log('done');
        while (!existsSync(${JSON.stringify(release)})) await new Promise((r) => setTimeout(r, 20));
        process.exit(0);
      `),
    );
    await eventually(
      () => starters.every((s) => s.out().includes('done') || s.child.exitCode !== null),
      'every starter done',
      25_000,
    );
    writeFileSync(release, '');
    for (const s of starters) expect(await s.exited, s.err()).toBe(0);
    for (const d of dirs) {
      const won = readdirSync(d).filter((f) => f.startsWith('won-'));
      expect(won, d).toHaveLength(1);
      // The winner took over the dead node's record (for its redis-server's cleanup).
      const stale = JSON.parse(readFileSync(join(d, won[0] as string), 'utf8')) as unknown[];
      expect(stale).toEqual([expect.objectContaining({ redisPid: 1 })]);
    }
  }, 30_000);

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
    const { child, exited } = knobosStart(dir);
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

  it("one Ctrl-C that arrives twice (the group's and npm's copy) stops a running node in order", async () => {
    const dir = tempDir();
    const { child, exited } = knobosStart(dir);
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    await untilOutput(child, /knobos is running/);
    const redisPid = Number(/"pid":(\d+),"msg":"started embedded redis-server"/.exec(stderr)?.[1]);
    child.kill('SIGINT');
    child.kill('SIGINT');
    // Before, the second copy killed the process at once: no stop, Redis and the lock left.
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/"msg":"stopped"/);
    expect(() => process.kill(redisPid, 0)).toThrow();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 60_000);

  it('`knobos serve` serves the API against the embedded Redis `knobos start` runs', async () => {
    const dir = tempDir();
    // A redis.json left readable by others: the admin password must not go into it as it is.
    writeFileSync(join(dir, EMBEDDED_FILE_NAME), '{}\n', { mode: 0o644 });
    chmodSync(join(dir, EMBEDDED_FILE_NAME), 0o644);
    const { child, exited } = knobosStart(dir);
    await untilOutput(child, /knobos is running/);
    expect(statSync(join(dir, EMBEDDED_FILE_NAME)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.endsWith('.new'))).toEqual([]);
    const serve = knobosServe(dir);
    const served = await untilOutput(serve, /Dashboard: /);
    // Before, it connected without the embedded server's admin login: NOPERM on its first eval.
    expect(served).toMatch(/API docs: {2}http:\/\/127\.0\.0\.1:\d+\/docs/);
    const serveExited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGINT');
    expect(await serveExited).toBe(0);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 60_000);

  it('`knobos serve --redis URL` reads no embedded-server file (an unreadable one is no error)', async () => {
    const dir = tempDir();
    const server = await ManagedRedis.start({ dir: join(dir, 'other') });
    cleanup.push(() => server.stop());
    writeFileSync(join(dir, 'redis.json'), 'garbage{');
    const serve = knobosServe(dir, ['--redis', server.url]);
    // Before, it parsed the file for a login it would not use and exited 1 on the bad JSON.
    expect(await untilOutput(serve, /Dashboard: /)).toMatch(/API docs/);
    const serveExited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGINT');
    expect(await serveExited).toBe(0);
  }, 60_000);

  it('`knobos start` failing after the node started stops it in order, then exits 1', async () => {
    const dir = tempDir();
    // redis.json, written right after the node has started, cannot be: it is a directory.
    mkdirSync(join(dir, 'redis.json'));
    const { child, exited } = knobosStart(dir);
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    expect(await exited, stderr).toBe(1);
    expect(stderr).toMatch(/"msg":"startup failed after the node started: stopping"/);
    // node.stop() ran (the services, then the server: SHUTDOWN, its AOF fsynced).
    expect(stderr).toMatch(/"msg":"stopped"/);
    const redisPid = Number(/"pid":(\d+),"msg":"started embedded redis-server"/.exec(stderr)?.[1]);
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
