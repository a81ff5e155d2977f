// A node killed with -9 while its embedded redis-server loads the AOF (seconds, on a data set
// of any size) has named that server in its lock already (its pid is recorded as soon as the
// process exists): the next start shuts it down before starting its own. It was recorded only
// once the server answered, so the next start found nothing to stop and ran a second server on
// the same AOF, what the data-directory lock exists to prevent.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../controlplane/log.ts';
import { startNode } from '../controlplane/node.ts';
import { connect } from '../controlplane/redis/connect.ts';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { pidAlive } from '../controlplane/run/state-lock.ts';
import { eventually } from './helpers/redis.ts';

const log = createLogger('node-orphan-loading', 'silent');
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

/** Alive and not a zombie (a container's pid 1 may not reap an orphan once it exits). */
function running(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** redis-server processes whose working directory (Redis chdirs to its `dir`) is `dir`. */
function serversIn(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (!readFileSync(`/proc/${e}/cmdline`, 'utf8').includes('redis-server')) continue;
      if (readlinkSync(`/proc/${e}/cwd`) === dir && running(Number(e))) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const NODE_TS = join(process.cwd(), 'controlplane/node.ts');
const LOG_TS = join(process.cwd(), 'controlplane/log.ts');

describe('a node killed with -9 while its embedded redis-server loads', () => {
  it('leaves no second redis-server running on the data directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knobos-orphan-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const redisDir = join(dir, 'redis');
    // A data set that takes about a second or two to load.
    const seed = await ManagedRedis.start({
      dir: redisDir,
      appendfsync: 'everysec',
      extraConfig: ['enable-debug-command yes'],
    });
    const c = connect({ url: seed.url });
    await c.call('DEBUG', 'POPULATE', '1500000', 'k', '64');
    await c.call('BGREWRITEAOF');
    await eventually(
      async () => /aof_rewrite_in_progress:0/.test((await c.call('INFO', 'persistence')) as string),
      'the AOF rewritten',
      60_000,
    );
    c.disconnect();
    await seed.stop();

    const code = `
      import { startNode } from ${JSON.stringify(NODE_TS)};
      import { createLogger } from ${JSON.stringify(LOG_TS)};
      await startNode({ dataDir: ${JSON.stringify(dir)}, log: createLogger('child', 'silent'),
        services: false, api: false, env: {} });
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    cleanup.push(() => void child.kill('SIGKILL'));
    let orphan = 0;
    await eventually(
      () => (orphan = serversIn(redisDir)[0] ?? 0) > 0,
      'the node spawned its redis-server',
      20_000,
    );
    cleanup.push(() => {
      for (const pid of serversIn(redisDir)) process.kill(pid, 'SIGKILL');
    });
    // The node dies with -9 while its server loads the AOF; the server runs on.
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await new Promise((r) => setTimeout(r, 2_000));
    expect(running(orphan)).toBe(true);
    // The next start on the same data directory stops it before starting its own.
    const node = await startNode({ dataDir: dir, log, services: false, api: false, env: {} });
    cleanup.push(() => node.stop().catch(() => undefined));
    expect(node.managed?.running).toBe(true);
    expect(running(orphan)).toBe(false);
    expect(serversIn(redisDir)).toEqual([node.managed?.pid]);
  }, 120_000);
});
