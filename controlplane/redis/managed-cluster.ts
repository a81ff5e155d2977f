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

  /** The node that currently serves a slot as primary. */
  async primaryForSlot(slot: number): Promise<ManagedRedis> {
    for (const n of this.nodes.filter((x) => x.running)) {
      const slots = (await withClient(n, (c) => c.call('CLUSTER', 'SHARDS'))) as unknown[];
      for (const shard of slots as unknown[][]) {
        const s = shard[1] as number[];
        const nodes = shard[3] as unknown[][];
        for (let i = 0; i < s.length; i += 2) {
          if (slot >= (s[i] as number) && slot <= (s[i + 1] as number)) {
            for (const desc of nodes) {
              const kv = new Map<string, unknown>();
              for (let j = 0; j < desc.length; j += 2) kv.set(String(desc[j]), desc[j + 1]);
              if (kv.get('role') === 'master' && kv.get('health') === 'online') {
                const port = Number(kv.get('port'));
                const found = this.nodes.find((x) => x.port === port);
                if (found) return found;
              }
            }
          }
        }
      }
      break;
    }
    throw new Error(`cluster: no online primary serves slot ${slot}`);
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
   */
  async waitFailover(slot: number, timeoutMs = 60_000): Promise<ManagedRedis> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const primary = await this.primaryForSlot(slot).catch(() => undefined);
      if (primary?.running) {
        await this.waitReady(deadline);
        return primary;
      }
      if (Date.now() > deadline)
        throw new Error(`cluster: no replica took over slot ${slot} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
