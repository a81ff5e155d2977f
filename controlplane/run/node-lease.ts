// One node with the live services per Redis and key prefix. The stacks name their workers,
// file-service instance and workloads after the shard, not the process, and run one loop and
// one placement migrator: a second `knobos start` on the same deployment would share those
// rows and double the workload. So a node that runs the services holds a lease in Redis while
// it does: taken with SET NX PX, renewed every third of its time to live (only while it is
// still ours; taken again if it expired while Redis was away and nobody took it), released on
// stop (only if ours). A second node is refused, naming the holder; a holder that died without
// stopping loses the lease when it expires, and one that finds another node holding it stops. An API-only node
// (`services: false`) takes none: any number may serve one deployment.
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import { ScriptSet } from '../store/scripts.ts';

const scripts = new ScriptSet<'renewLease' | 'releaseLease' | 'takeLease'>(
  join(import.meta.dirname, 'scripts'),
  'knobos_node',
);

/** The default time to live: a dead holder's lease is free after at most this long. */
export const NODE_LEASE_TTL_MS = 15_000;

export interface NodeLeaseHolder {
  host: string;
  pid: number;
  since: number;
}

export class NodeLeaseHeldError extends Error {
  constructor(
    readonly holder: NodeLeaseHolder | null,
    readonly ttlMs: number,
  ) {
    super(
      `another knobos node runs the live services on this Redis and prefix (${
        holder
          ? `pid ${holder.pid} on ${holder.host}, since ${new Date(holder.since).toISOString()}`
          : 'holder unknown'
      }); stop it first, start this one with services off, or use another KNOBOS_PREFIX (its lease expires ${ttlMs} ms after it stops renewing)`,
    );
    this.name = 'NodeLeaseHeldError';
  }
}

/** Whether a lease holder's record names a process of this host that no longer exists. */
function deadHere(h: NodeLeaseHolder): boolean {
  if (h.host !== hostname() || !Number.isSafeInteger(h.pid) || h.pid <= 0) return false;
  if (h.pid === process.pid) return false;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (err) {
    // EPERM: a process of another user has the pid: alive as far as we can tell.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class NodeLease {
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  private constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly value: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly onLost: (err: Error) => void,
  ) {}

  /**
   * Takes the lease, or throws NodeLeaseHeldError naming the node that holds it. With
   * `ownRedis` (this node started the Redis, holding its data directory's lock: the embedded
   * default), a holder on this host whose process is gone is the previous run of this data
   * directory (its lease came back with the AOF after it died without stopping): the lease is
   * taken from it at once rather than refused until it expires.
   */
  static async acquire(
    redis: RedisClient,
    keys: Keys,
    opts: { log: Logger; onLost: (err: Error) => void; ttlMs?: number; ownRedis?: boolean },
  ): Promise<NodeLease> {
    const ttlMs = opts.ttlMs ?? NODE_LEASE_TTL_MS;
    const key = keys.key('node', 'lease');
    const holder: NodeLeaseHolder = { host: hostname(), pid: process.pid, since: Date.now() };
    const value = JSON.stringify(holder);
    if ((await redis.set(key, value, 'PX', ttlMs, 'NX')) !== 'OK') {
      const held = await redis.get(key);
      let parsed: NodeLeaseHolder | null = null;
      try {
        parsed = held ? (JSON.parse(held) as NodeLeaseHolder) : null;
      } catch {
        parsed = null;
      }
      const dead = opts.ownRedis && held !== null && parsed !== null && deadHere(parsed);
      const taken =
        dead && Number(await scripts.run(redis, 'takeLease', [key], [held, value, ttlMs])) === 1;
      if (!taken) throw new NodeLeaseHeldError(parsed, ttlMs);
      opts.log.warn(
        { holder: parsed },
        'node lease taken from a process on this host that is gone (it stopped without releasing it)',
      );
    }
    const lease = new NodeLease(redis, key, value, ttlMs, opts.log, opts.onLost);
    lease.schedule();
    return lease;
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.renew(), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.released) return;
    let ours: boolean;
    try {
      // An integer reply (ScriptSet types every reply as an array).
      const r: unknown = await scripts.run(
        this.redis,
        'renewLease',
        [this.key],
        [this.value, this.ttlMs],
      );
      ours = Number(r) === 1;
    } catch (err) {
      // Redis away for a moment: try again at the next third; the lease outlives two misses.
      this.log.warn({ err: (err as Error).message }, 'node lease renewal failed; retrying');
      if (!this.released) this.schedule();
      return;
    }
    if (this.released) return;
    // Expired while Redis was away and nobody took it: this node takes it again.
    if (
      !ours &&
      (await this.redis.set(this.key, this.value, 'PX', this.ttlMs, 'NX').catch(() => null)) ===
        'OK'
    ) {
      this.log.warn(
        'node lease had expired (Redis unreachable for longer than its time to live): taken again',
      );
      ours = true;
    }
    if (ours) {
      this.schedule();
      return;
    }
    this.released = true;
    const err = new Error(
      'this node lost its lease on the live services to another node (it expired while Redis was unreachable for longer than its time to live)',
    );
    this.log.error({ err: err.message }, 'node lease lost');
    this.onLost(err);
  }

  /** Stops renewing and deletes the lease if it is still ours. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    await scripts.run(this.redis, 'releaseLease', [this.key], [this.value]);
  }
}
