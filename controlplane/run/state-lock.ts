// One node per data directory. The embedded default's AOF is written by one redis-server only:
// a second `npm start` on the same directory (KNOBOS_HOME) would start a second server on the
// same files and corrupt them. The node holds knobos.pid while it runs. The lock file only ever
// appears whole: it is written to a temporary file first and then linked into place (create
// exclusive; one starter wins) or, by update(), renamed over it. A lock that cannot be read
// (empty or half written, e.g. by an older knobos) is held: the start retries briefly, then is
// refused naming the file. A lock whose pid is dead (a node killed with -9) is taken over: the
// starter holding the takeover guard (knobos.pid.takeover, created exclusively) checks that the
// lock is still the dead holder's and renames its own over it (of several starters taking over
// the same stale lock, one wins, with the dead holder's record; none replaces a live lock, and
// the name is never free meanwhile). Renaming the stale lock aside and creating anew would not
// do: a starter that read the dead holder's lock could move a new holder's lock aside, and a
// third start find the name free. Such a node also leaves its redis-server behind (it runs in
// its own process group): the pid files name it, and the next start shuts it down before
// starting its own.
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** A node record's text: JSON, or (an older lock) the bare pid; {} when it is neither. */
function parseRecord(text: string): NodeRecord {
  try {
    const r = JSON.parse(text) as unknown;
    return r && typeof r === 'object' ? (r as NodeRecord) : {};
  } catch {
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? { pid } : {};
  }
}

function readRecord(path: string): NodeRecord | undefined {
  try {
    return parseRecord(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The lock file's record and its exact text; undefined when there is no file; 'unreadable' when
 * it holds no pid (empty or half written: a writer may be at it right now).
 */
function readLock(
  path: string,
): { record: NodeRecord & { pid: number }; text: string } | 'unreadable' | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return 'unreadable';
  }
  const record = parseRecord(text);
  const pid = record.pid;
  return typeof pid === 'number' && Number.isInteger(pid) && pid > 0
    ? { record: { ...record, pid }, text }
    : 'unreadable';
}

/** How long a lock that cannot be read may stay so before the start is refused. */
const UNREADABLE_LOCK_WAIT_MS = 1_000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** A fresh name next to `path`, for a temporary or a set-aside lock. */
function sibling(path: string, what: string): string {
  return `${path}.${what}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Creates `path` holding `text` only if no file is there, and never visible half written: the
 * text goes to a temporary file that is then hard-linked into place (fails with EEXIST like an
 * O_EXCL create). On a file system without hard links, an O_EXCL create ('wx'), briefly empty:
 * readers take an unreadable lock as held and retry.
 */
function createExclusive(path: string, text: string): boolean {
  const tmp = sibling(path, 'new');
  writeFileSync(tmp, text, { flag: 'wx', mode: 0o600 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  try {
    writeFileSync(path, text, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * How old a takeover guard may be before it counts as left by a starter that died taking over
 * (a takeover takes microseconds).
 */
const STALE_GUARD_MS = 5_000;

/**
 * Replaces the stale lock (text `staleText`) with ours (`text`). Only the holder of the guard
 * file (`<lock>.takeover`, created exclusively) replaces a lock, and only after checking under
 * the guard that it is still the stale one; the replacement is a rename over it, so the name is
 * never free meanwhile. Of several starters that found the same dead holder one takes the lock
 * (with the dead holder's record, for cleanup), and none replaces a lock another has created.
 * False to look again (another starter is at it, or was first).
 */
function takeOverStale(path: string, staleText: string, text: string): boolean {
  const guard = `${path}.takeover`;
  if (!createExclusive(guard, JSON.stringify({ pid: process.pid }) + '\n')) {
    clearDeadGuard(guard);
    sleepSync(1);
    return false;
  }
  try {
    const now = readLock(path);
    if (now === undefined || now === 'unreadable' || now.text !== staleText) return false;
    replaceWith(path, text);
    return true;
  } finally {
    rmSync(guard, { force: true });
  }
}

/** Writes `text` to `path` through a temporary file renamed over it: never seen half written. */
function replaceWith(path: string, text: string): void {
  const tmp = sibling(path, 'new');
  try {
    writeFileSync(tmp, text, { flag: 'wx', mode: 0o600 });
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** A guard whose starter died (or that is too old to be a takeover under way) goes. */
function clearDeadGuard(guard: string): void {
  const held = readLock(guard);
  if (held === undefined) return;
  let old = false;
  try {
    old = Date.now() - statSync(guard).mtimeMs > STALE_GUARD_MS;
  } catch {
    return; // gone meanwhile
  }
  if (!old && (held === 'unreadable' || pidAlive(held.record.pid))) return;
  // Renamed aside and checked, so that a fresh guard taken meanwhile is put back, not removed.
  const aside = sibling(guard, 'stale');
  try {
    renameSync(guard, aside);
  } catch {
    return;
  }
  const moved = readLock(aside);
  const same =
    held === 'unreadable'
      ? moved === 'unreadable'
      : moved !== undefined && moved !== 'unreadable' && moved.text === held.text;
  if (!same)
    try {
      linkSync(aside, guard);
    } catch {
      // a newer guard is in place
    }
  rmSync(aside, { force: true });
}

export class StateLock {
  private released = false;
  /**
   * process.exit() (a stop past its deadline, a second Ctrl-C while starting) skips stop(): the
   * lock goes anyway, unless the node's redis-server still runs (it was sent SIGTERM and is
   * saving its AOF). That lock is then a dead node's, naming the server: the next start shuts
   * it down before starting its own on the same files, as after a -9.
   */
  private readonly onExit = () => {
    const redis = this.record.redisPid;
    if (redis !== undefined && pidAlive(redis) && isRedisServer(redis)) {
      this.released = true;
      return;
    }
    this.release();
  };

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
   * Takes the directory's lock, or throws naming the directory and the running node's pid (or
   * the lock file, when it stays unreadable). Returns with the previous, dead holder's record
   * (if any) for cleanup.
   */
  static acquire(dir: string): { lock: StateLock; stale: NodeRecord[] } {
    const path = join(dir, LOCK_FILE);
    const record: NodeRecord = { pid: process.pid };
    const text = JSON.stringify(record) + '\n';
    let unreadableSince: number | undefined;
    for (let attempt = 0; attempt < 1_000; attempt++) {
      if (createExclusive(path, text)) return { lock: new StateLock(dir, record), stale: [] };
      const held = readLock(path);
      if (held === undefined) continue; // gone meanwhile: try again
      if (held === 'unreadable') {
        // Being written (an older knobos truncates, then writes), or garbage: held either way.
        unreadableSince ??= Date.now();
        if (Date.now() - unreadableSince >= UNREADABLE_LOCK_WAIT_MS)
          throw new Error(
            `the lock file ${path} names no process (empty or unreadable): another knobos node may be starting on the data directory ${dir}; if none is, delete ${path}`,
          );
        sleepSync(10);
        continue;
      }
      unreadableSince = undefined;
      if (pidAlive(held.record.pid))
        throw new Error(
          `another knobos node (pid ${held.record.pid}) is running on the data directory ${dir}; stop it first, or set KNOBOS_HOME to another directory`,
        );
      // A dead holder: take its lock over, unless another starter is doing so too.
      if (takeOverStale(path, held.text, text))
        return { lock: new StateLock(dir, record), stale: [held.record] };
    }
    throw new Error(`could not take the lock ${path}: another knobos node is starting`);
  }

  /** Records the managed redis-server, so that a next start can clean up after a -9. */
  update(fields: NodeRecord): void {
    if (this.released) return;
    this.record = { ...this.record, ...fields };
    // Renamed over the lock: a reader sees the old record or the new one, never a part.
    replaceWith(this.path, JSON.stringify(this.record) + '\n');
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
