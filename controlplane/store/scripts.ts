// Lua scripts are files in scripts/, one per operation, with the number of keys in the name
// (`promoteKnob-6.lua`; no number = variable key count, passed first). `--@include "x.lua"`
// inlines a shared fragment. Scripts are registered once per client with defineCommand, which
// sends EVALSHA and falls back to EVAL, on one node and on a cluster alike.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../redis/connect.ts';

const DIR = join(import.meta.dirname, 'scripts');

interface ScriptSource {
  name: string;
  numberOfKeys?: number;
  lua: string;
}

function expand(file: string, seen: Set<string>): string {
  if (seen.has(file)) throw new Error(`lua include cycle at ${file}`);
  const text = readFileSync(join(DIR, file), 'utf8');
  return text.replace(/^--@include "([^"]+)"$/gm, (_, inc: string) =>
    expand(inc, new Set([...seen, file])),
  );
}

function loadAll(): Map<string, ScriptSource> {
  const out = new Map<string, ScriptSource>();
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.lua'))) {
    const m = /^([A-Za-z]+)(?:-(\d+))?\.lua$/.exec(file);
    if (!m) throw new Error(`lua script file name '${file}' must be name-N.lua or name.lua`);
    const [, name, keys] = m as unknown as [string, string, string | undefined];
    out.set(name, {
      name,
      ...(keys !== undefined ? { numberOfKeys: Number(keys) } : {}),
      lua: expand(file, new Set()),
    });
  }
  return out;
}

const SOURCES = loadAll();
const registered = new WeakSet<object>();

export type ScriptName = 'promoteKnob' | 'seedKnob' | 'pinKnob' | 'freeze' | 'writeRows';

function register(client: RedisClient): void {
  if (registered.has(client)) return;
  for (const s of SOURCES.values()) {
    client.defineCommand(
      s.name,
      s.numberOfKeys === undefined ? { lua: s.lua } : { numberOfKeys: s.numberOfKeys, lua: s.lua },
    );
  }
  registered.add(client);
}

/** Runs a script; for a variable-key script the key count is passed for you. */
export async function runScript(
  client: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown[]> {
  const src = SOURCES.get(name);
  if (!src) throw new Error(`no lua script named ${name}`);
  if (src.numberOfKeys !== undefined && src.numberOfKeys !== keys.length) {
    throw new Error(`script ${name} takes ${src.numberOfKeys} keys, got ${keys.length}`);
  }
  register(client);
  const fn = (client as unknown as Record<string, (...a: unknown[]) => Promise<unknown[]>>)[
    name
  ] as (...a: unknown[]) => Promise<unknown[]>;
  const head = src.numberOfKeys === undefined ? [keys.length] : [];
  return fn.call(client, ...head, ...keys, ...args);
}

/** The expanded source of a script, for tests and documentation. */
export function scriptSource(name: ScriptName): string {
  const s = SOURCES.get(name);
  if (!s) throw new Error(`no lua script named ${name}`);
  return s.lua;
}
