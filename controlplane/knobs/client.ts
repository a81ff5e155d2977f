// The knob client services read their knobs through. Values live in process memory, so a read
// on a hot path costs no Redis round trip; a subscription to the change channel keeps them
// fresh, and an epoch check recovers changes published while the connection was cut (on
// every reconnect, and every `resyncIntervalMs` as a safety net against lost messages).
import { EventEmitter } from 'node:events';
import { findKnob, type KnobSpec, type KnobValue } from '../../knobs/index.ts';
import type { RedisClient } from '../redis/connect.ts';
import { NotFoundError } from '../store/errors.ts';
import { KnobTable } from './table.ts';

interface Cached {
  value: KnobValue;
  version: number;
}

export interface KnobClientOptions {
  table: KnobTable;
  /** Knobs to follow; all of the catalog when omitted. */
  names?: readonly string[];
  /** Safety-net epoch check period; 0 turns it off. */
  resyncIntervalMs?: number;
}

export interface KnobChangeEvent {
  name: string;
  value: KnobValue;
  version: number;
  previous: KnobValue | undefined;
}

export class KnobClient extends EventEmitter<{
  change: [KnobChangeEvent];
  resync: [{ epoch: number; changed: number }];
  error: [Error];
}> {
  private readonly cache = new Map<string, Cached>();
  private readonly names: readonly string[];
  private epochSeen = -1;
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private resyncing: Promise<void> | undefined;

  private constructor(
    private readonly table: KnobTable,
    private readonly sub: RedisClient,
    names: readonly string[],
  ) {
    super();
    this.names = names;
  }

  /** Subscribes, then loads every followed knob, so no change falls between the two. */
  static async start(opts: KnobClientOptions): Promise<KnobClient> {
    const { table } = opts;
    const names = opts.names ?? table.catalog.map((k) => k.name);
    for (const n of names) table.spec(n);
    const sub = table.redis.duplicate();
    const client = new KnobClient(table, sub, names);
    sub.on('error', (err: Error) => client.reportError(err));
    sub.on('message', (_channel: string, message: string) => client.onMessage(message));
    await sub.subscribe(table.keys.knobChanges());
    // After the first connection, every 'ready' is a reconnect: changes may have been missed.
    // A Redis Cluster client stays 'ready' while single node connections drop and come back
    // (it re-subscribes silently), so there the periodic epoch check is what recovers.
    sub.on('ready', () => void client.resync());
    sub.on('+node', () => void client.resync());
    // The first load must succeed: a client without values would fail every read.
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 100 && !client.loaded; attempt++) {
      lastError = await client.doResync(true);
      if (!client.loaded) await new Promise((r) => setTimeout(r, 100));
    }
    if (!client.loaded) {
      await client.close();
      throw new Error(
        `knob client: could not load the knobs: ${lastError?.message ?? 'unknown error'}`,
      );
    }
    const every = opts.resyncIntervalMs ?? 5_000;
    if (every > 0) {
      client.timer = setInterval(() => void client.resync(), every);
      client.timer.unref();
    }
    return client;
  }

  /** The current value of a knob, from memory. */
  get<T extends KnobValue = KnobValue>(name: string): T {
    const c = this.cache.get(name);
    if (!c) throw new NotFoundError(`knob ${name} is not followed by this client`, { knob: name });
    return c.value as T;
  }

  version(name: string): number {
    return this.cache.get(name)?.version ?? 0;
  }

  spec(name: string): KnobSpec | undefined {
    return findKnob(this.table.catalog, name);
  }

  /** Values of every followed knob. */
  snapshot(): Record<string, KnobValue> {
    return Object.fromEntries([...this.cache].map(([n, c]) => [n, c.value]));
  }

  private apply(name: string, value: KnobValue, version: number): boolean {
    const cur = this.cache.get(name);
    if (cur && cur.version >= version) return false;
    this.cache.set(name, { value, version });
    if (cur) this.emit('change', { name, value, version, previous: cur.value });
    return true;
  }

  private onMessage(message: string): void {
    let msg: { name?: string; version?: number; value?: string; epoch?: number };
    try {
      msg = JSON.parse(message) as typeof msg;
    } catch {
      return;
    }
    if (msg.name === undefined || msg.value === undefined || msg.version === undefined) return;
    const followed = this.names.includes(msg.name);
    if (followed) this.apply(msg.name, JSON.parse(msg.value) as KnobValue, msg.version);
    // Epochs arrive in order on one connection; a gap means a missed message. Every change
    // counts, followed or not: else each change to another knob looked like a gap and cost a
    // resync. Before the first load completes, the load itself sets the epoch.
    if (msg.epoch !== undefined && this.loaded) {
      if (this.epochSeen >= 0 && msg.epoch > this.epochSeen + 1) void this.resync();
      else this.epochSeen = Math.max(this.epochSeen, msg.epoch);
    }
  }

  /** Reloads every followed knob when the epoch moved since we last saw it. */
  resync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // One resync at a time; callers during one share it.
    this.resyncing ??= this.doResync()
      .then(() => {})
      .finally(() => {
        this.resyncing = undefined;
      });
    return this.resyncing;
  }

  /** Reloads when the epoch moved (always when forced); returns the error it met, if any. */
  private async doResync(force = false): Promise<Error | undefined> {
    try {
      const epoch = await this.table.epoch();
      if (!force && this.loaded && epoch === this.epochSeen) return undefined;
      const pipe = this.table.redis.pipeline();
      for (const n of this.names) pipe.hmget(this.table.keys.knobRow(n), 'value', 'version');
      const res = (await pipe.exec()) ?? [];
      let changed = 0;
      res.forEach(([err, r], i) => {
        if (err) throw err;
        const [value, version] = r as [string | null, string | null];
        if (
          value !== null &&
          version !== null &&
          this.apply(this.names[i] as string, JSON.parse(value) as KnobValue, Number(version))
        )
          changed++;
      });
      // The epoch was read before the rows: anything after it arrives by message or next check.
      this.epochSeen = Math.max(this.epochSeen, epoch);
      this.loaded = true;
      this.emit('resync', { epoch, changed });
      return undefined;
    } catch (err) {
      // Disconnected: the next 'ready' or timer tick tries again.
      this.reportError(err as Error);
      return err as Error;
    }
  }

  /** Connection errors are expected while Redis is away; they reach 'error' listeners if any. */
  private reportError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.sub.disconnect();
  }
}
