// The knob client services read their knobs through. Values live in process memory, so a read
// on a hot path costs no Redis round trip; a subscription to the change channel keeps them
// fresh. Every reconnect reloads every knob (Redis may have lost writes and taken the same
// versions again while the connection was cut, leaving the epoch where it was), and an epoch
// check every `resyncIntervalMs` is a safety net against lost messages. A value
// is named by its version and change id: after Redis loses writes (a failover to a lagging
// replica, an AOF everysec restart) a version comes back with another value, and the epoch
// goes back; the client then takes what Redis holds.
import { EventEmitter } from 'node:events';
import { findKnob, type KnobSpec, type KnobValue } from '../../knobs/index.ts';
import type { RedisClient } from '../redis/connect.ts';
import { NotFoundError } from '../store/errors.ts';
import { frozenValue } from './row.ts';
import { KnobTable } from './table.ts';

interface Cached {
  /** Frozen: every reader shares it. */
  value: KnobValue;
  version: number;
  /** The row's change id ('' for a row written before change ids). */
  change: string;
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
  /** `lost`: Redis held less than this client had seen (lost writes); it took what Redis holds. */
  resync: [{ epoch: number; changed: number; lost: boolean }];
  error: [Error];
}> {
  private readonly cache = new Map<string, Cached>();
  private readonly names: readonly string[];
  private epochSeen = -1;
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private resyncing: Promise<void> | undefined;
  /** A resync asked for while one ran (it may have read before the reason): runs after it. */
  private queued: Promise<void> | undefined;
  /** The next resync reloads even if the epoch did not move (a message hinted at lost writes). */
  private verify = false;

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
    try {
      sub.on('error', (err: Error) => client.reportError(err));
      sub.on('message', (_channel: string, message: string) => client.onMessage(message));
      await sub.subscribe(table.keys.knobChanges());
      // After the first connection, every 'ready' is a reconnect: changes may have been missed.
      // A Redis Cluster client stays 'ready' while single node connections drop and come back
      // (it re-subscribes silently, telling no one): a node leaving makes the next periodic
      // check reload, and a node joining reloads.
      sub.on('ready', () => void client.resubscribed());
      sub.on('-node', () => (client.verify = true));
      sub.on('+node', () => void client.reload());
      // The first load must succeed: a client without values would fail every read.
      let lastError: Error | undefined;
      for (let attempt = 0; attempt < 100 && !client.loaded; attempt++) {
        lastError = await client.doResync(true);
        if (!client.loaded) await new Promise((r) => setTimeout(r, 100));
      }
      if (!client.loaded)
        throw new Error(
          `knob client: could not load the knobs: ${lastError?.message ?? 'unknown error'}`,
        );
    } catch (err) {
      // The subscriber connection would stay open and keep the process alive.
      await client.close();
      throw err;
    }
    const every = opts.resyncIntervalMs ?? 5_000;
    if (every > 0) {
      client.timer = setInterval(() => void client.resync(), every);
      client.timer.unref();
    }
    return client;
  }

  /** The current value of a knob, from memory (frozen: shared by every reader). */
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

  /**
   * Takes a value unless it is the cached one or, without `replace`, older (the same version
   * with another change id is taken: only a lost write makes that, and the newer word wins).
   * Returns the change to tell listeners of, which the caller emits once every value of the
   * same change or reload is in: a listener reading another knob of it sees the new value.
   */
  private apply(
    name: string,
    json: string,
    version: number,
    change: string,
    replace = false,
  ): KnobChangeEvent | 'taken' | undefined {
    const cur = this.cache.get(name);
    if (cur && cur.version === version && cur.change === change) return undefined;
    if (cur && cur.version > version && !replace) return undefined;
    const value = frozenValue(json);
    this.cache.set(name, { value, version, change });
    return cur ? { name, value, version, previous: cur.value } : 'taken';
  }

  private tell(events: readonly (KnobChangeEvent | 'taken' | undefined)[]): void {
    for (const e of events) {
      if (e === undefined || e === 'taken') continue;
      // A listener that throws must not escape: from a pub/sub message it would be an
      // uncaught exception in the reply parser (the process died), from a resync it stopped
      // the reload.
      try {
        this.emit('change', e);
      } catch (err) {
        this.reportError(err as Error);
      }
    }
  }

  /** A change message: { change, changes: [ { name, version, value, epoch } ] }. */
  private onMessage(message: string): void {
    let msg: { change?: string; changes?: unknown };
    try {
      msg = JSON.parse(message) as typeof msg;
    } catch {
      return;
    }
    // Pins and the freeze switch publish other messages; they change no value.
    if (!Array.isArray(msg.changes)) return;
    const change = msg.change ?? '';
    const events: (KnobChangeEvent | 'taken' | undefined)[] = [];
    for (const c of msg.changes as {
      name?: string;
      version?: number;
      value?: string;
      epoch?: number;
    }[]) {
      if (c.name === undefined || c.value === undefined || c.version === undefined) continue;
      if (this.names.includes(c.name)) {
        const cur = this.cache.get(c.name);
        // An older version (or ours under another change id) is a late message from before the
        // last load, or Redis lost writes this client saw: a full reload tells them apart.
        if (
          cur &&
          (c.version < cur.version || (c.version === cur.version && change !== cur.change))
        ) {
          this.verify = true;
          void this.resync();
        }
        events.push(this.apply(c.name, c.value, c.version, change));
      }
      // Epochs arrive in order on one connection; a gap means a missed message. Every change
      // counts, followed or not: else each change to another knob looked like a gap and cost a
      // resync. Before the first load completes, the load itself sets the epoch.
      if (c.epoch !== undefined && this.loaded) {
        if (this.epochSeen >= 0 && c.epoch > this.epochSeen + 1) void this.resync();
        else this.epochSeen = Math.max(this.epochSeen, c.epoch);
      }
    }
    this.tell(events);
  }

  /** Reloads every followed knob when the epoch moved since we last saw it. */
  resync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.resyncing) {
      this.resyncing = this.doResync()
        .then(() => {})
        .finally(() => {
          this.resyncing = undefined;
        });
      return this.resyncing;
    }
    // One resync at a time. The running one may have read before what prompted this call (a
    // gap, a reconnect), so one more runs after it; callers meanwhile share that one.
    this.queued ??= this.resyncing.then(() => {
      this.queued = undefined;
      return this.resync();
    });
    return this.queued;
  }

  /**
   * After a reconnect. ioredis emits 'ready' before its own SUBSCRIBE is answered, so a resync
   * now could read before a change whose message the connection does not get yet; subscribing
   * again (a no-op when subscribed) and waiting for the answer orders the resync after it.
   */
  private async resubscribed(): Promise<void> {
    try {
      await this.sub.subscribe(this.table.keys.knobChanges());
    } catch (err) {
      // Cut again: the next 'ready' or timer tick tries again.
      this.reportError(err as Error);
      return;
    }
    await this.reload();
  }

  /**
   * Reloads every followed knob even at the epoch seen: while the connection was away, Redis
   * may have lost writes and had the same versions written again (the epoch back where it was).
   */
  private reload(): Promise<void> {
    this.verify = true;
    return this.resync();
  }

  /** Reloads when the epoch moved (always when forced); returns the error it met, if any. */
  private async doResync(force = false): Promise<Error | undefined> {
    const verify = force || this.verify;
    this.verify = false;
    try {
      // What this client had seen when it sent the read: a change may reach it by message (the
      // subscriber's connection) before the read's reply, which must not look like a loss.
      const seenBefore = this.epochSeen;
      const epoch = await this.table.epoch();
      // The epoch only grows: below what this client saw, Redis lost writes it had seen.
      const regressed = this.loaded && epoch < seenBefore;
      if (!verify && this.loaded && !regressed && epoch <= this.epochSeen) return undefined;
      // What this client had when it sent the read: Redis had each of these before the read.
      const before = new Map(this.cache);
      const pipe = this.table.redis.pipeline();
      for (const n of this.names)
        pipe.hmget(this.table.keys.knobRow(n), 'value', 'version', 'change_id');
      const res = (await pipe.exec()) ?? [];
      let changed = 0;
      let lost = regressed;
      const events: (KnobChangeEvent | 'taken' | undefined)[] = [];
      // Every row's error first: none is taken from a read that failed part way.
      for (const [err] of res) if (err) throw err;
      res.forEach(([, r], i) => {
        const [value, version, change] = r as [string | null, string | null, string | null];
        if (value === null || version === null) return;
        const name = this.names[i] as string;
        const v = Number(version);
        const c = change ?? '';
        const seen = before.get(name);
        // Below (or beside) a version Redis had before this read: that write was lost.
        const rowLost =
          seen !== undefined && (v < seen.version || (v === seen.version && c !== seen.change));
        lost ||= rowLost;
        const e = this.apply(name, value, v, c, regressed || rowLost);
        if (e !== undefined) changed++;
        events.push(e);
      });
      this.tell(events);
      // The epoch was read before the rows: anything after it arrives by message or next check.
      // After lost writes the epoch seen restarts from Redis's (a message applied during this
      // read and overwritten here has a later epoch, so the next check reloads it).
      this.epochSeen = lost ? epoch : Math.max(this.epochSeen, epoch);
      this.loaded = true;
      this.emit('resync', { epoch, changed, lost });
      return undefined;
    } catch (err) {
      // Disconnected: the next 'ready' or timer tick tries again (a reload asked for stays asked).
      this.verify ||= verify;
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
