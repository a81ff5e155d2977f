// A local Redis Cluster of managed nodes: N primaries splitting the 16384 slots evenly,
// optionally with replicas, joined with CLUSTER MEET / ADDSLOTSRANGE / REPLICATE and ready
// once every node reports cluster_state:ok with all slots covered and every replica is synced.
// killPrimaryForSlot / waitFailover drive failover tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ManagedRedis, type AppendFsync } from './managed.ts';

export interface ClusterOptions {
  primaries?: number;
  replicasPerPrimary?: number;
  appendfsync?: AppendFsync;
  /** Bound on the wait for the cluster to become ready. */
  readyTimeoutMs?: number;
  /** cluster-node-timeout of every node (default 5 s). */
  nodeTimeoutMs?: number;
}

const SLOTS = 16_384;

/** Bound on one withClient() call (connect and command) unless the caller gives one. */
const CALL_TIMEOUT_MS = 5_000;

/**
 * Runs `fn` on a one-shot connection to `node`. A node that refuses the connection fails the
 * call at once (no reconnecting client is left behind), and one that accepts it but does not
 * answer (paused, hung) fails it after `timeoutMs`. Exported for tests.
 */
export async function withClient<T>(
  node: Pick<ManagedRedis, 'host' | 'port'>,
  fn: (c: Redis) => Promise<T>,
  timeoutMs = CALL_TIMEOUT_MS,
): Promise<T> {
  const timeout = Math.max(1, Math.round(timeoutMs));
  const c = new Redis({
    port: node.port,
    host: node.host,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    // No CLIENT SETINFO before the ready check: connect() would wait on its reply too.
    disableClientInfo: true,
    connectTimeout: timeout,
    commandTimeout: timeout,
    lazyConnect: true,
  });
  c.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  // The whole call is bounded too: a failed ready check ends the connection, and ioredis
  // waits up to 2 s for a silent peer to close it before connect() rejects.
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${node.host}:${node.port} did not answer within ${timeout} ms`)),
      timeout,
    );
  });
  try {
    return await Promise.race([c.connect().then(() => fn(c)), expired]);
  } finally {
    clearTimeout(timer);
    c.disconnect();
  }
}

/** What is left of `deadline` for one call, within [250 ms, CALL_TIMEOUT_MS]. */
function callTimeout(deadline: number): number {
  return Math.min(CALL_TIMEOUT_MS, Math.max(250, deadline - Date.now()));
}

/** The flags of a CLUSTER NODES line (myself, master, slave, fail?, ...). */
function flags(line: string): string[] {
  return line.split(' ')[2]?.split(',') ?? [];
}

/** Whether a CLUSTER NODES line (a master's) lists `slot` among its slot ranges. */
function servesSlot(line: string, slot: number): boolean {
  if (!flags(line).includes('master')) return false;
  const parts = line.split(' ');
  // Fields 8 on: "lo-hi" or "n" ranges, and "[slot->-node]" migration markers.
  return parts.slice(8).some((r) => {
    if (r.startsWith('[')) return false;
    const [lo, hi = lo] = r.split('-').map(Number);
    return lo !== undefined && hi !== undefined && slot >= lo && slot <= hi;
  });
}

function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
}

export class ManagedCluster {
  private constructor(
    readonly nodes: ManagedRedis[],
    readonly primaries: number,
    private readonly dir: string,
  ) {}

  /** Seed addresses for an ioredis Cluster client. */
  get seeds(): { host: string; port: number }[] {
    return this.nodes.filter((n) => n.running).map((n) => ({ host: n.host, port: n.port }));
  }

  static async start(opts: ClusterOptions = {}): Promise<ManagedCluster> {
    const primaries = opts.primaries ?? 3;
    const replicas = opts.replicasPerPrimary ?? 0;
    const dir = mkdtempSync(join(tmpdir(), 'knobos-cluster-'));
    const nodes: ManagedRedis[] = [];
    try {
      for (let i = 0; i < primaries * (1 + replicas); i++) {
        nodes.push(
          await ManagedRedis.start({
            dir: join(dir, `node-${i}`),
            cluster: true,
            ...(opts.appendfsync ? { appendfsync: opts.appendfsync } : {}),
            ...(opts.nodeTimeoutMs ? { clusterNodeTimeoutMs: opts.nodeTimeoutMs } : {}),
          }),
        );
      }
      const cluster = new ManagedCluster(nodes, primaries, dir);
      await cluster.form(replicas, opts.readyTimeoutMs ?? 60_000);
      return cluster;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async form(replicas: number, timeoutMs: number): Promise<void> {
    const [first] = this.nodes as [ManagedRedis, ...ManagedRedis[]];
    for (const n of this.nodes.slice(1)) {
      await withClient(n, (c) => c.call('CLUSTER', 'MEET', first.host, String(first.port)));
    }
    const per = Math.floor(SLOTS / this.primaries);
    for (let i = 0; i < this.primaries; i++) {
      const lo = i * per;
      const hi = i === this.primaries - 1 ? SLOTS - 1 : lo + per - 1;
      await withClient(this.nodes[i] as ManagedRedis, (c) =>
        c.call('CLUSTER', 'ADDSLOTSRANGE', String(lo), String(hi)),
      );
    }
    const deadline = Date.now() + timeoutMs;
    if (replicas > 0) {
      const ids = await Promise.all(
        this.nodes
          .slice(0, this.primaries)
          .map((n) => withClient(n, (c) => c.call('CLUSTER', 'MYID') as Promise<string>)),
      );
      for (let r = 0; r < this.primaries * replicas; r++) {
        const node = this.nodes[this.primaries + r] as ManagedRedis;
        const primaryId = ids[r % this.primaries] as string;
        // A node can replicate only a primary it already knows through gossip.
        while (true) {
          const known = await withClient(
            node,
            (c) => c.call('CLUSTER', 'NODES') as Promise<string>,
          );
          if (known.includes(primaryId)) break;
          if (Date.now() > deadline)
            throw new Error(`cluster: node ${node.port} never learned of ${primaryId}`);
          await new Promise((res) => setTimeout(res, 50));
        }
        await withClient(node, (c) => c.call('CLUSTER', 'REPLICATE', primaryId));
      }
    }
    await this.waitReady(deadline);
    if (replicas > 0) await this.waitReplicasOnline(replicas, deadline);
  }

  /**
   * Waits until every running primary has `replicas` replicas online (synced), so a write can
   * be acknowledged by them (WAIT): after forming, and after a failed node came back as a
   * replica of the node that took its place.
   */
  async waitReplicasOnline(replicas: number, deadline = Date.now() + 60_000): Promise<void> {
    while (true) {
      const infos = await Promise.all(
        this.nodes
          .filter((n) => n.running)
          .map((n) =>
            withClient(
              n,
              (c) => c.call('INFO', 'replication') as Promise<string>,
              callTimeout(deadline),
            ).catch(() => ''),
          ),
      );
      const online = infos
        .filter((i) => field(i, 'role') === 'master')
        .map((i) => (i.match(/^slave\d+:.*state=online/gm) ?? []).length);
      if (online.length >= this.primaries && online.every((k) => k >= replicas)) return;
      if (Date.now() > deadline)
        throw new Error(`cluster: replicas online per primary ${online.join(',')} < ${replicas}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until every running node reports the cluster ok with all slots served. */
  async waitReady(deadline = Date.now() + 60_000): Promise<void> {
    while (true) {
      const infos = await Promise.all(
        this.nodes
          .filter((n) => n.running)
          .map((n) =>
            withClient(
              n,
              (c) => c.call('CLUSTER', 'INFO') as Promise<string>,
              callTimeout(deadline),
            ).catch(() => ''),
          ),
      );
      const known = this.nodes.filter((n) => n.running).length;
      const ok = infos.every(
        (i) =>
          field(i, 'cluster_state') === 'ok' &&
          field(i, 'cluster_slots_ok') === String(SLOTS) &&
          Number(field(i, 'cluster_known_nodes')) >= known,
      );
      if (ok) return;
      if (Date.now() > deadline)
        throw new Error(
          `cluster not ready: ${infos.map((i) => field(i, 'cluster_state')).join(',')}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * The node that currently serves a slot as primary, by each running node's view of itself (a
   * promoted replica knows it serves the slot before gossip tells the others). A primary that
   * restarted claims its old slots until it learns it lost them: of two claims, the higher
   * config epoch wins, as in Redis Cluster itself.
   */
  async primaryForSlot(slot: number): Promise<ManagedRedis> {
    let best: { node: ManagedRedis; epoch: number } | undefined;
    for (const n of this.nodes.filter((x) => x.running)) {
      const view = await withClient(n, (c) => c.call('CLUSTER', 'NODES') as Promise<string>).catch(
        () => '',
      );
      const me = view.split('\n').find((line) => flags(line).includes('myself'));
      if (!me || !servesSlot(me, slot)) continue;
      const epoch = Number(me.split(' ')[6]);
      if (!best || epoch > best.epoch) best = { node: n, epoch };
    }
    if (!best) throw new Error(`cluster: no running primary serves slot ${slot}`);
    return best.node;
  }

  /** The running nodes that replicate `primary` now. */
  async replicasOf(primary: ManagedRedis): Promise<ManagedRedis[]> {
    const out: ManagedRedis[] = [];
    for (const n of this.nodes.filter((x) => x.running && x !== primary)) {
      const info = await withClient(n, (c) => c.call('INFO', 'replication') as Promise<string>);
      if (field(info, 'role') === 'slave' && field(info, 'master_port') === String(primary.port))
        out.push(n);
    }
    return out;
  }

  /** SIGKILLs the primary that serves `slot` now; returns the killed node. */
  async killPrimaryForSlot(slot: number): Promise<ManagedRedis> {
    const node = await this.primaryForSlot(slot);
    await node.kill();
    return node;
  }

  /**
   * After a primary died: waits until a running node serves `slot` as primary (its replica,
   * promoted once the others mark the dead one failed, after cluster-node-timeout) and every
   * running node reports the cluster ok. Returns the new primary.
   *
   * `takeoverAfterMs`: for tests about what a promoted node does, not about the election. If no
   * election has promoted a replica by then, `onStall` gets every node's view and log, and the
   * dead primary's replica is promoted with CLUSTER FAILOVER TAKEOVER (as an operator would).
   */
  async waitFailover(
    slot: number,
    opts: { timeoutMs?: number; takeoverAfterMs?: number; onStall?: (why: string) => void } = {},
  ): Promise<ManagedRedis> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const start = Date.now();
    const deadline = start + timeoutMs;
    let tookOver = false;
    while (true) {
      const primary = await this.primaryForSlot(slot).catch(() => undefined);
      if (primary) {
        await this.waitReady(deadline);
        return primary;
      }
      if (Date.now() > deadline)
        throw new Error(
          `cluster: no replica took over slot ${slot} within ${timeoutMs} ms\n${await this.describe()}`,
        );
      if (
        !tookOver &&
        opts.takeoverAfterMs !== undefined &&
        Date.now() - start > opts.takeoverAfterMs
      ) {
        tookOver = true;
        opts.onStall?.(
          `cluster: no election promoted a replica for slot ${slot} in ${opts.takeoverAfterMs} ms; taking over\n${await this.describe()}`,
        );
        await this.takeOver();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Promotes, without an election, each running replica whose primary is not running. */
  private async takeOver(): Promise<void> {
    const down = new Set(this.nodes.filter((n) => !n.running).map((n) => String(n.port)));
    for (const n of this.nodes.filter((x) => x.running)) {
      const info = await withClient(n, (c) => c.call('INFO', 'replication') as Promise<string>);
      const master = field(info, 'master_port');
      if (field(info, 'role') === 'slave' && master !== undefined && down.has(master))
        await withClient(n, (c) => c.call('CLUSTER', 'FAILOVER', 'TAKEOVER'));
    }
  }

  /** Each running node's view of the cluster and its last log lines, for error messages. */
  private async describe(): Promise<string> {
    const parts = await Promise.all(
      this.nodes
        .filter((n) => n.running)
        .map(async (n) => {
          const view = await withClient(n, (c) => c.call('CLUSTER', 'NODES') as Promise<string>)
            .then((v) => v.trim())
            .catch((err: Error) => `(CLUSTER NODES failed: ${err.message})`);
          return `node ${n.port}:\n${view}\nlog:\n${n.lastLines(12)}`;
        }),
    );
    return parts.join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
