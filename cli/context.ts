// How a CLI command finds its Redis: --redis URL, else REDIS_URL / KNOBOS_REDIS_CLUSTER, else
// the embedded Redis that `knobos start` is running (it writes .knobos/redis.json, found from
// the directory it ran in or any directory under it).
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  connect,
  targetFromEnv,
  type RedisClient,
  type RedisTarget,
} from '../controlplane/redis/connect.ts';
import { EMBEDDED_FILE_NAME, pidAlive } from '../controlplane/run/state-lock.ts';
import { Keys } from '../controlplane/store/keys.ts';

/** Where `knobos start` keeps its data: KNOBOS_HOME, else `.knobos` here (never a parent's). */
export const HOME_DIR = process.env['KNOBOS_HOME'] ?? join(process.cwd(), '.knobos');
/** The file `knobos start` writes for the CLI: how to reach its Redis. */
export const HOME_EMBEDDED_FILE = join(HOME_DIR, EMBEDDED_FILE_NAME);

/**
 * Where a CLI command looks for a running node: KNOBOS_HOME, else the nearest `.knobos` in this
 * directory or one above it (as git finds `.git`: a call from a subdirectory reaches the node
 * `npm start` runs at the project's root) whose file names a live process. Only directories and
 * files of this user, not writable by others and not symlinks, are trusted: another user's
 * file would send the CLI (and its login) elsewhere. Else `.knobos` here.
 */
export function stateDir(
  cwd = process.cwd(),
  home: string | undefined = process.env['KNOBOS_HOME'],
): string {
  if (home) return home;
  const uid = process.getuid?.();
  const mine = (path: string, dir: boolean): boolean => {
    try {
      const st = lstatSync(path);
      if (dir ? !st.isDirectory() : !st.isFile()) return false; // a symlink is neither
      return (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
    } catch {
      return false;
    }
  };
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, '.knobos', EMBEDDED_FILE_NAME);
    if (mine(join(dir, '.knobos'), true) && mine(file, false) && liveNode(file))
      return join(dir, '.knobos');
    if (dirname(dir) === dir) return join(resolve(cwd), '.knobos');
  }
}

function liveNode(file: string): boolean {
  try {
    const pid = (JSON.parse(readFileSync(file, 'utf8')) as EmbeddedFile).pid;
    return typeof pid === 'number' && pidAlive(pid);
  } catch {
    return false;
  }
}

export const STATE_DIR = stateDir();
export const EMBEDDED_FILE = join(STATE_DIR, EMBEDDED_FILE_NAME);

interface EmbeddedFile {
  url: string;
  /** The `knobos start` process serving it. */
  pid?: number;
  /** The admin login when the embedded server runs with ACL users (docs/security.md). */
  username?: string;
  password?: string;
}

function embedded(): EmbeddedFile | undefined {
  return existsSync(EMBEDDED_FILE)
    ? (JSON.parse(readFileSync(EMBEDDED_FILE, 'utf8')) as EmbeddedFile)
    : undefined;
}

export function resolveTarget(flag: string | undefined): RedisTarget {
  if (flag) return { url: flag };
  const env = targetFromEnv();
  if (env) return env;
  const e = embedded();
  if (e) {
    // A node killed with -9 leaves its file behind: say so, not "max retries per request".
    if (typeof e.pid === 'number' && !pidAlive(e.pid))
      throw new Error(
        `the embedded knobos (pid ${e.pid}) is not running; run npm start (or set REDIS_URL, or pass --redis URL). Its stale ${EMBEDDED_FILE} is left for npm start to clean up`,
      );
    return { url: e.url };
  }
  throw new Error(
    `no Redis to talk to: no running node's ${EMBEDDED_FILE_NAME} in ${STATE_DIR}: run \`npm start\` (embedded Redis; the CLI finds it from the directory npm start ran in or any directory under it, or set KNOBOS_HOME to its .knobos directory), or set REDIS_URL, or pass --redis URL`,
  );
}

export function keysFromEnv(): Keys {
  return new Keys(process.env['KNOBOS_PREFIX'] ?? 'knobos');
}

/**
 * The embedded server's admin login, when `target` is that server (else none: a cluster, or a
 * URL of another server, never reads the file, and a file that cannot be read is no login).
 */
export function embeddedLogin(target: RedisTarget): { username?: string; password?: string } {
  if (!('url' in target)) return {};
  let e: EmbeddedFile | undefined;
  try {
    e = embedded();
  } catch {
    return {};
  }
  return e?.url === target.url && e.username && e.password
    ? { username: e.username, password: e.password }
    : {};
}

export function connectCli(flag: string | undefined): RedisClient {
  // A CLI call should fail fast when Redis is away, not queue forever.
  const target = resolveTarget(flag);
  const client = connect(target, {
    name: 'knobos-cli',
    maxRetriesPerRequest: 1,
    ...embeddedLogin(target),
  });
  client.on('error', () => {});
  return client;
}
