// The file scripts, loaded (with their includes) by the store's ScriptSet, and called here
// with EVALSHA (falling back to EVAL once per node after a restart or on a fresh node). The
// file service needs two things ScriptSet.run does not offer: binary arguments (chunk bytes)
// and binary replies (read returns raw chunks), so this runner passes Buffers through and can
// ask ioredis for Buffer replies. Every file script takes exactly one key, the volume row.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { RedisClient } from '../redis/connect.ts';
import { durableWrite } from '../store/replica-acks.ts';
import { ScriptSet } from '../store/scripts.ts';

export type FileScriptName =
  | 'init'
  | 'mkdir'
  | 'create'
  | 'write'
  | 'read'
  | 'stat'
  | 'readdir'
  | 'remove'
  | 'truncate'
  | 'setattr'
  | 'rename'
  | 'find'
  | 'bulk';

export type ScriptArg = string | number | Buffer;

interface Loaded {
  lua: string;
  sha: string;
}

const set = new ScriptSet<FileScriptName>(join(import.meta.dirname, 'scripts'), 'knobos_files');
const loaded = new Map<string, Loaded>(
  set.names().map((n) => {
    const lua = set.source(n as FileScriptName);
    return [n, { lua, sha: createHash('sha1').update(lua).digest('hex') }];
  }),
);

function script(name: FileScriptName): Loaded {
  const s = loaded.get(name);
  if (!s) throw new Error(`no file script named ${name}`);
  return s;
}

/**
 * ioredis defines a Buffer-reply variant of every command at runtime (Commander), but its types
 * omit evalshaBuffer and evalBuffer; `callBuffer('EVALSHA', ...)` would be typed, yet breaks
 * under enableAutoPipelining. So the runtime methods, typed here.
 */
interface BufferEval {
  evalshaBuffer(sha: string, numKeys: number, ...args: ScriptArg[]): Promise<unknown>;
  evalBuffer(lua: string, numKeys: number, ...args: ScriptArg[]): Promise<unknown>;
}

const isNoScript = (err: unknown): boolean => /NOSCRIPT/.test(String((err as Error)?.message));

/** Scripts that change nothing: they never wait for replicas (store.replica_acks). */
const READS: ReadonlySet<FileScriptName> = new Set(['read', 'stat', 'readdir', 'find']);

/** Sends a script; a write waits for the replica acknowledgements its client asks for. */
function send<T>(c: RedisClient, name: FileScriptName, key: string, go: () => Promise<T>) {
  return READS.has(name) ? go() : durableWrite(c, key, go);
}

/** Runs a file script; replies keep bulk strings as strings. */
export async function runFileScript(
  client: RedisClient,
  name: FileScriptName,
  volumeKey: string,
  args: readonly ScriptArg[],
): Promise<unknown[]> {
  const s = script(name);
  return send(client, name, volumeKey, async () => {
    try {
      return (await client.evalsha(s.sha, 1, volumeKey, ...args)) as unknown[];
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return (await client.eval(s.lua, 1, volumeKey, ...args)) as unknown[];
    }
  });
}

/** Runs a file script; bulk strings in the reply come back as Buffers. */
export async function runFileScriptBuffer(
  client: RedisClient,
  name: FileScriptName,
  volumeKey: string,
  args: readonly ScriptArg[],
): Promise<unknown[]> {
  const s = script(name);
  const c = client as unknown as BufferEval;
  return send(client, name, volumeKey, async () => {
    try {
      return (await c.evalshaBuffer(s.sha, 1, volumeKey, ...args)) as unknown[];
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return (await c.evalBuffer(s.lua, 1, volumeKey, ...args)) as unknown[];
    }
  });
}

/** The expanded source of a file script (for tests and docs). */
export function fileScriptSource(name: FileScriptName): string {
  return script(name).lua;
}

export function fileScriptNames(): FileScriptName[] {
  return set.names() as FileScriptName[];
}
