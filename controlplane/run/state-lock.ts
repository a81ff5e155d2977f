// One node per data directory. The embedded default's AOF is written by one redis-server only:
// a second `npm start` on the same directory (KNOBOS_HOME) would start a second server on the
// same files and corrupt them. The node holds knobos.pid (created with O_EXCL) while it runs;
// a lock whose pid is dead (a node killed with -9) is taken over. Such a node also leaves its
// redis-server behind (it runs in its own process group): the pid files name it, and the next
// start shuts it down before starting its own.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { shutdownAt } from '../redis/managed.ts';

export const LOCK_FILE = 'knobos.pid';
/** Written by `knobos start` for the CLI: the embedded server's address and admin login. */
export const EMBEDDED_FILE_NAME = 'redis.json';

/** What the lock file and redis.json record about a running node. */
export interface NodeRecord {
  /** The node's process. */
  pid?: number;
  /** Its managed redis-server's process and port. */
  redisPid?: number;
  redisPort?: number;
  url?: string;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's process.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readRecord(path: string): NodeRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const r = JSON.parse(text) as NodeRecord;
    return r && typeof r === 'object' ? r : {};
  } catch {
    // An older lock holding the bare pid, or a half-written file.
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? { pid } : {};
  }
}

export class StateLock {
  private released = false;
  // process.exit() (a stop past its deadline) skips stop(): the lock goes anyway.
  private readonly onExit = () => this.release();

  private constructor(
    readonly dir: string,
    private record: NodeRecord,
  ) {
    process.once('exit', this.onExit);
  }

  get path(): string {
    return join(this.dir, LOCK_FILE);
  }

  /**
   * Takes the directory's lock, or throws naming the directory and the running node's pid.
   * Returns with the previous, dead holder's record (if any) for cleanup.
   */
  static acquire(dir: string): { lock: StateLock; stale: NodeRecord[] } {
    const path = join(dir, LOCK_FILE);
    const stale: NodeRecord[] = [];
    const record: NodeRecord = { pid: process.pid };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        writeFileSync(path, JSON.stringify(record) + '\n', { flag: 'wx', mode: 0o600 });
        return { lock: new StateLock(dir, record), stale };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = readRecord(path);
      if (held?.pid !== undefined && pidAlive(held.pid))
        throw new Error(
          `another knobos node (pid ${held.pid}) is running on the data directory ${dir}; stop it first, or set KNOBOS_HOME to another directory`,
        );
      // Dead holder (or an unreadable lock): take it over.
      if (held) stale.push(held);
      rmSync(path, { force: true });
    }
    throw new Error(`could not take the lock ${path}: another knobos node is starting`);
  }

  /** Records the managed redis-server, so that a next start can clean up after a -9. */
  update(fields: NodeRecord): void {
    if (this.released) return;
    this.record = { ...this.record, ...fields };
    writeFileSync(this.path, JSON.stringify(this.record) + '\n', { mode: 0o600 });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    // Only our own lock: never one a later node took over.
    if (readRecord(this.path)?.pid === process.pid) rmSync(this.path, { force: true });
  }
}

/**
 * Shuts down redis-servers left behind by dead nodes of this directory: those named by the
 * stale lock and by redis.json whose node pid is dead and whose server pid is alive. SHUTDOWN
 * through the port (the embedded server's default user may run it), else SIGTERM, then SIGKILL.
 */
export async function stopOrphanedRedis(
  dir: string,
  stale: readonly NodeRecord[],
  log: Logger,
): Promise<void> {
  const candidates = [...stale, readRecord(join(dir, EMBEDDED_FILE_NAME))].filter(
    (r): r is NodeRecord & { redisPid: number } =>
      r !== undefined &&
      r.redisPid !== undefined &&
      (r.pid === undefined || r.pid === process.pid || !pidAlive(r.pid)) &&
      r.redisPid !== process.pid &&
      pidAlive(r.redisPid),
  );
  const done = new Set<number>();
  for (const r of candidates) {
    if (done.has(r.redisPid)) continue;
    done.add(r.redisPid);
    if (!isRedisServer(r.redisPid)) continue; // the pid was reused by something else
    log.warn(
      { redisPid: r.redisPid, deadNodePid: r.pid, dir },
      'a redis-server left behind by a dead knobos node is running on this data directory: shutting it down',
    );
    const port = r.redisPort ?? portOf(r.url);
    if (port !== undefined) await shutdownAt('127.0.0.1', port);
    if (!(await exits(r.redisPid, 5_000))) {
      signal(r.redisPid, 'SIGTERM');
      if (!(await exits(r.redisPid, 5_000))) {
        signal(r.redisPid, 'SIGKILL');
        await exits(r.redisPid, 2_000);
      }
    }
  }
}

function isRedisServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return process.platform !== 'linux'; // no /proc to ask: trust the record
  }
}

function portOf(url: string | undefined): number | undefined {
  if (!url) return undefined;
  try {
    const p = Number(new URL(url).port);
    return Number.isInteger(p) && p > 0 ? p : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function exits(pid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}
