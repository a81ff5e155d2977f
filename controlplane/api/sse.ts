// The change stream behind GET /api/events: ONE subscriber connection per server (a duplicate
// of its Redis client) on the knobs change channel, fanned out to every open event stream.
// Each message is turned into the full row it announces (one read per change, not per
// client), in order. Bounds: open streams (in all and per token), pending messages, bytes
// buffered per slow client (one past it is cut off: its socket destroyed, its buffer freed).
// Each stream remembers the token it was opened with: revoking a token ends its
// streams at once (endToken), a stream's token is checked again once it is registered (a
// revocation while it was being opened), and every heartbeat re-verifies each stream's token,
// so a token revoked through another API process stops receiving within one heartbeat. Once
// closed (the server shutting down) the hub refuses new streams.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { KnobTable } from '../knobs/table.ts';
import type { RedisClient } from '../redis/connect.ts';
import { ApiError } from './errors.ts';

export interface HubOptions {
  redis: RedisClient;
  knobs: KnobTable;
  log?: Logger;
  /** Most open streams at once (default 100). */
  maxClients?: number;
  /** Most open streams of one token (or actor, for streams without one; default 10). */
  maxPerToken?: number;
  /** Keep-alive comment period (default 15 s), so proxies do not cut idle streams. */
  heartbeatMs?: number;
}

/** Messages waiting to be turned into rows; beyond it the queue is dropped for a resync. */
const MAX_PENDING = 1_000;
/** A client that lets this much pile up unread is disconnected (it reconnects and reloads). */
const MAX_BUFFERED_BYTES = 1 << 20;
/** How long start() waits for the subscription when Redis is up, so no change is missed. */
const SUBSCRIBE_WAIT_MS = 5_000;

/** Who a stream belongs to, and how to check that its token still holds. */
export interface StreamOwner {
  /** The token the stream was opened with (null: no token, e.g. auth off). */
  tokenId: string | null;
  /**
   * Resolves false once the stream's token no longer verifies (revoked); the stream is then
   * ended. A rejection (e.g. Redis away) keeps the stream: it is checked again next heartbeat.
   */
  verify?: () => Promise<boolean>;
  /** Who opened it; counts against the per-token limit when there is no token id. */
  actor?: string;
}

interface StreamClient extends StreamOwner {
  end: () => void;
}

export type HubEvent =
  | { event: 'knob'; data: { kind: 'value' | 'pin' | 'unpin'; row: unknown } }
  | { event: 'freeze'; data: { frozen: unknown } }
  | { event: 'resync'; data: { reason: string } }
  | { event: 'hello'; data: { epoch: number } };

/** What the per-token limit counts a stream under: its token, else its actor (env admin, auth off). */
function ownerKey(owner: StreamOwner): string | null {
  return owner.tokenId ?? owner.actor ?? null;
}

export class ChangeHub {
  private readonly clients = new Map<ServerResponse, StreamClient>();
  private sub: RedisClient | undefined;
  private pending: string[] = [];
  private draining = false;
  private seq = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private verifying = false;
  private closed = false;
  private readonly maxClients: number;
  private readonly maxPerToken: number;

  constructor(private readonly opts: HubOptions) {
    this.maxClients = opts.maxClients ?? 100;
    this.maxPerToken = opts.maxPerToken ?? 10;
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * Subscribes; after a reconnect every stream is told to reload (messages may be lost). When
   * Redis is away at start the server still comes up: subscribing goes on in the background.
   */
  async start(): Promise<void> {
    const sub = this.opts.redis.duplicate();
    this.sub = sub;
    sub.on('error', (err: Error) => this.opts.log?.warn({ err: err.message }, 'sse subscriber'));
    sub.on('message', (_ch: string, msg: string) => this.enqueue(msg));
    const subscribed = this.subscribe(sub);
    if (this.opts.redis.status === 'ready')
      await Promise.race([subscribed, new Promise((r) => setTimeout(r, SUBSCRIBE_WAIT_MS))]);
    this.heartbeat = setInterval(() => {
      for (const c of [...this.clients.keys()]) this.send(c, ': ping\n\n');
      void this.reverify();
    }, this.opts.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  /** Retries until subscribed (ioredis re-subscribes by itself after later reconnects). */
  private async subscribe(sub: RedisClient): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await sub.subscribe(this.opts.knobs.keys.knobChanges());
        sub.on('ready', () => this.broadcast({ event: 'resync', data: { reason: 'reconnected' } }));
        return;
      } catch (err) {
        this.opts.log?.warn({ err: (err as Error).message }, 'sse: subscribe failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)).unref());
      }
    }
  }

  /**
   * Refuses a new stream when the hub is closed (the server is shutting down: a stream
   * attached now would never be ended, and the server's close would wait for it), when full,
   * or when its token (else its actor) has its share already, so one token cannot take every
   * slot (before the response is hijacked).
   */
  assertRoom(owner?: StreamOwner): void {
    if (this.closed)
      throw new ApiError(
        'KNOBOS_API_UNAVAILABLE',
        'the server is shutting down; reconnect shortly',
      );
    if (this.clients.size >= this.maxClients)
      throw new ApiError(
        'KNOBOS_API_TOO_MANY_STREAMS',
        `the server already serves ${this.maxClients} event streams; try again later`,
        { limit: this.maxClients },
      );
    const key = owner && ownerKey(owner);
    if (key === null || key === undefined) return;
    let n = 0;
    for (const c of this.clients.values()) if (ownerKey(c) === key) n++;
    if (n >= this.maxPerToken)
      throw new ApiError(
        'KNOBOS_API_TOO_MANY_STREAMS',
        `this token already has ${this.maxPerToken} open event streams; close one or try again later`,
        { limit: this.maxPerToken, scope: 'token' },
      );
  }

  /** Ends every open stream of token `tokenId` (it was revoked); returns how many. */
  endToken(tokenId: string): number {
    let n = 0;
    for (const c of [...this.clients.values()])
      if (c.tokenId === tokenId) {
        c.end();
        n++;
      }
    return n;
  }

  /** Re-verifies every stream's token (one check per token); ends those that fail. */
  private async reverify(): Promise<void> {
    if (this.verifying || this.closed) return;
    this.verifying = true;
    try {
      const byToken = new Map<string, { verify: () => Promise<boolean>; list: StreamClient[] }>();
      for (const c of this.clients.values()) {
        const id = c.tokenId;
        if (id === null || !c.verify) continue;
        const entry = byToken.get(id) ?? { verify: c.verify, list: [] };
        entry.list.push(c);
        byToken.set(id, entry);
      }
      await Promise.all(
        [...byToken.values()].map(async ({ verify, list }) => {
          const ok = await verify().catch((err: Error) => {
            this.opts.log?.warn({ err: err.message }, 'sse: could not re-verify a token');
            return true;
          });
          if (!ok) for (const c of list) c.end();
        }),
      );
    } finally {
      this.verifying = false;
    }
  }

  /**
   * Starts an event stream on `res` for `owner`; returns the function that ends it. The
   * stream ends by itself when the connection closes (at once if it is closed already).
   */
  attach(res: ServerResponse, epoch: number, owner: StreamOwner): () => void {
    this.assertRoom(owner);
    // The response is hijacked: the server's onSend hook never sees it.
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store, no-transform',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const end = () => {
      this.clients.delete(res);
      // end() waits for the buffer to drain, which a stalled reader never does: the socket
      // and its buffer would stay for ever. Whatever is still unsent is dropped with it.
      if (res.writableLength > 0) res.destroy();
      else if (!res.writableEnded) res.end();
    };
    this.clients.set(res, { ...owner, end });
    // 'close' is emitted once: a response already closed never emits it again, so check.
    res.once('close', end);
    if (res.destroyed) end();
    else this.write(res, { event: 'hello', data: { epoch } });
    // The token was checked before the stream was registered: a revocation in between found
    // nothing to end (endToken). Checking again now, registered, closes that gap; a later
    // revocation finds the stream.
    void owner.verify?.().then(
      (ok) => {
        if (!ok) end();
      },
      () => {}, // Redis away: the next heartbeat checks again
    );
    return end;
  }

  broadcast(e: HubEvent): void {
    for (const c of this.clients.keys()) this.write(c, e);
  }

  private write(res: ServerResponse, e: HubEvent): void {
    this.send(res, `id: ${++this.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
  }

  /** Writes to a stream, or cuts off one whose reader let MAX_BUFFERED_BYTES pile up. */
  private send(res: ServerResponse, text: string): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.clients.get(res)?.end(); // destroys the socket: its slot and buffer are freed
      return;
    }
    res.write(text);
  }

  private enqueue(msg: string): void {
    if (this.pending.length >= MAX_PENDING) {
      this.pending = [];
      this.broadcast({ event: 'resync', data: { reason: 'overflow' } });
      return;
    }
    this.pending.push(msg);
    if (!this.draining) void this.drain();
  }

  /** Turns messages into events one at a time, so streams see changes in publish order. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let msg = this.pending.shift(); msg !== undefined; msg = this.pending.shift()) {
        const events = await this.toEvents(msg).catch((err: Error) => {
          this.opts.log?.warn({ err: err.message }, 'sse: could not read the changed row');
          return [{ event: 'resync', data: { reason: 'read_failed' } } as HubEvent];
        });
        for (const e of events) this.broadcast(e);
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * A value change names its knobs in `changes` (one event each, rows read after the whole
   * change); a pin names one knob; the freeze switch says `frozen`.
   */
  private async toEvents(raw: string): Promise<HubEvent[]> {
    let msg: { name?: unknown; changes?: unknown; pinned?: unknown; frozen?: unknown };
    try {
      msg = JSON.parse(raw) as typeof msg;
    } catch {
      return [];
    }
    if (typeof msg.frozen === 'boolean')
      return [{ event: 'freeze', data: { frozen: await this.opts.knobs.frozen() } }];
    const knobEvent = async (name: string, kind: 'value' | 'pin' | 'unpin'): Promise<HubEvent> => ({
      event: 'knob',
      data: { kind, row: await this.opts.knobs.get(name) },
    });
    if (Array.isArray(msg.changes)) {
      const names = (msg.changes as { name?: unknown }[])
        .map((c) => c.name)
        .filter((n): n is string => typeof n === 'string');
      return Promise.all(names.map((n) => knobEvent(n, 'value')));
    }
    if (typeof msg.name !== 'string') return [];
    return [await knobEvent(msg.name, msg.pinned ? 'pin' : 'unpin')];
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const c of [...this.clients.values()]) c.end();
    this.clients.clear();
    this.sub?.disconnect();
  }
}
