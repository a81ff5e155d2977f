// Push-style wakeups: a blocking pop on a list that the scripts push to when there is something
// to do (a dispatcher's doorbell, a worker's inbox). Each waiter owns a dedicated connection,
// since a blocked connection serves nothing else; close() unblocks it at once.
import type { RedisClient } from '../redis/connect.ts';

export class BlockingList {
  private readonly conn: RedisClient;
  private closed = false;
  private onClose: () => void = () => {};
  /**
   * Resolves on close(). A pop in flight also ends then: a connection that was reconnecting
   * when it was closed never fails its queued command (ioredis 5), so without this a close
   * while Redis is away left the pop, and whoever awaits it, pending for ever.
   */
  readonly closedSignal = new Promise<void>((r) => (this.onClose = r));

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
    // Once closed, its outcome is nobody's (a rejection is not left unhandled).
    const reply = await Promise.race([popped, this.closedSignal.then(() => null)]);
    if (this.closed) popped.catch(() => {});
    return reply ? reply[1] : [];
  }

  close(): void {
    this.closed = true;
    this.onClose();
    this.conn.disconnect();
  }
}
