// Push-style wakeups: a blocking pop on a list that the scripts push to when there is something
// to do (a dispatcher's doorbell, a worker's inbox and stop list). Each waiter owns a dedicated
// connection, since a blocked connection serves nothing else; close() unblocks it at once.
import type { RedisClient } from '../redis/connect.ts';

export class BlockingList {
  private readonly conn: RedisClient;
  private closed = false;
  /**
   * Pops and waits in flight, ended by close(): a connection that was reconnecting when it was
   * closed never fails its queued command (ioredis 5), so without this a close while Redis is
   * away left the pop, and whoever awaits it, pending for ever. One entry per wait, removed
   * when it ends (a promise shared by every pop would keep a reaction per pop until close).
   */
  private readonly waiting = new Set<() => void>();

  constructor(
    redis: RedisClient,
    readonly key: string,
  ) {
    this.conn = redis.duplicate();
    this.conn.on('error', () => {}); // reconnects on its own; a failed pop is retried by the caller
  }

  /** Pops up to `count` entries, waiting at most `timeoutMs` for the first; [] on timeout. */
  async pop(count: number, timeoutMs: number): Promise<string[]> {
    if (this.closed) return [];
    const popped = this.conn.blmpop(
      Math.max(0.01, timeoutMs / 1000),
      1,
      this.key,
      'LEFT',
      'COUNT',
      count,
    ) as Promise<[string, string[]] | null>;
    const reply = await this.untilClosed(popped, null);
    // Once closed, its outcome is nobody's (a rejection is not left unhandled).
    if (this.closed) popped.catch(() => {});
    return reply ? reply[1] : [];
  }

  /** Waits `ms`, or less if the list is closed meanwhile (a caller's retry backoff). */
  async wait(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await this.untilClosed(new Promise<void>((r) => (timer = setTimeout(r, ms))), undefined);
    clearTimeout(timer);
  }

  /** `p`, or `onClose` as soon as close() is called. */
  private async untilClosed<T, U>(p: Promise<T>, onClose: U): Promise<T | U> {
    if (this.closed) return onClose;
    let end!: () => void;
    const closed = new Promise<U>((r) => (end = () => r(onClose)));
    this.waiting.add(end);
    try {
      return await Promise.race([p, closed]);
    } finally {
      this.waiting.delete(end);
    }
  }

  close(): void {
    this.closed = true;
    for (const end of this.waiting) end();
    this.waiting.clear();
    this.conn.disconnect();
  }
}
