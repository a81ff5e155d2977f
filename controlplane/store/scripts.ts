// Lua scripts are files, one per operation, with the number of keys in the name
// (`seedKnob-5.lua`; no number = variable key count, passed first). `--@include "x.lua"`
// inlines a shared fragment, looked up beside the script and then in the store's shared
// includes (store/scripts/includes). Each area keeps its scripts in its own folder and makes
// one ScriptSet of it; a set registers its scripts once per client with defineCommand, which
// sends EVALSHA and falls back to EVAL, on one node and on a cluster alike. When the client's
// writes must reach replicas (store.replica_acks), run() returns only once they have.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../redis/connect.ts';
import { durableWrite } from './replica-acks.ts';

const SHARED_INCLUDES = join(import.meta.dirname, 'scripts', 'includes');

interface ScriptSource {
  name: string;
  numberOfKeys?: number;
  lua: string;
}

function expand(dir: string, file: string, seen: Set<string>): string {
  const path = [join(dir, file), join(SHARED_INCLUDES, file.replace(/^includes\//, ''))].find(
    existsSync,
  );
  if (!path) throw new Error(`lua include ${file} not found from ${dir}`);
  if (seen.has(path)) throw new Error(`lua include cycle at ${path}`);
  const text = readFileSync(path, 'utf8');
  return text.replace(/^--@include "([^"]+)"$/gm, (_, inc: string) =>
    expand(dir, inc, new Set([...seen, path])),
  );
}

export class ScriptSet<N extends string = string> {
  private readonly sources = new Map<string, ScriptSource>();
  private readonly registered = new WeakSet<object>();

  /** Loads every `*.lua` file of `dir` (not its includes/ folder). */
  constructor(
    dir: string,
    /** A name for defineCommand, so two sets with a script of the same name do not clash. */
    private readonly namespace: string,
  ) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.lua'))) {
      const m = /^([A-Za-z]+)(?:-(\d+))?\.lua$/.exec(file);
      if (!m) throw new Error(`lua script file name '${file}' must be name-N.lua or name.lua`);
      const name = m[1] as string;
      const keys = m[2];
      this.sources.set(name, {
        name,
        ...(keys !== undefined ? { numberOfKeys: Number(keys) } : {}),
        lua: expand(dir, file, new Set()),
      });
    }
  }

  private command(name: string): string {
    return `${this.namespace}_${name}`;
  }

  private register(client: RedisClient): void {
    if (this.registered.has(client)) return;
    for (const s of this.sources.values()) {
      client.defineCommand(
        this.command(s.name),
        s.numberOfKeys === undefined
          ? { lua: s.lua }
          : { numberOfKeys: s.numberOfKeys, lua: s.lua },
      );
    }
    this.registered.add(client);
  }

  /** Runs a script; for a variable-key script the key count is passed for you. */
  async run(
    client: RedisClient,
    name: N,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown[]> {
    const src = this.sources.get(name);
    if (!src) throw new Error(`no lua script named ${name} in ${this.namespace}`);
    if (src.numberOfKeys !== undefined && src.numberOfKeys !== keys.length) {
      throw new Error(`script ${name} takes ${src.numberOfKeys} keys, got ${keys.length}`);
    }
    this.register(client);
    const fn = (client as unknown as Record<string, (...a: unknown[]) => Promise<unknown[]>>)[
      this.command(name)
    ] as (...a: unknown[]) => Promise<unknown[]>;
    const head = src.numberOfKeys === undefined ? [keys.length] : [];
    // With store.replica_acks > 0 the step counts only once replicas have it (replica-acks.ts).
    return durableWrite(client, keys[0], () => fn.call(client, ...head, ...keys, ...args));
  }

  /** The expanded source of a script, for tests and documentation. */
  source(name: N): string {
    const s = this.sources.get(name);
    if (!s) throw new Error(`no lua script named ${name} in ${this.namespace}`);
    return s.lua;
  }

  names(): string[] {
    return [...this.sources.keys()];
  }
}

/** The store's and the knobs table's scripts. */
export const storeScripts = new ScriptSet<
  'promoteKnobs' | 'seedKnob' | 'pinKnob' | 'freeze' | 'writeRows'
>(join(import.meta.dirname, 'scripts'), 'knobos');
