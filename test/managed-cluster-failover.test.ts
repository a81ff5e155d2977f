// The failover helpers of ManagedCluster (controlplane/redis/managed-cluster.ts) on a real
// 3-primary cluster with a replica each: which node serves a slot, an elected replica, an
// election that cannot happen (explained, then ended by a takeover), and a restarted primary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagedCluster, withClient } from '../controlplane/redis/managed-cluster.ts';
import type { ManagedRedis } from '../controlplane/redis/managed.ts';

let cluster: ManagedCluster;

beforeAll(async () => {
  // A short node timeout: failure detection and elections take about a second.
  cluster = await ManagedCluster.start({
    primaries: 3,
    replicasPerPrimary: 1,
    nodeTimeoutMs: 1_000,
  });
}, 60_000);
afterAll(async () => cluster?.stop());

const role = async (n: ManagedRedis) =>
  /^role:(\w+)/m.exec(
    await withClient(n, (c) => c.call('INFO', 'replication') as Promise<string>),
  )?.[1];

describe('ManagedCluster failover helpers', () => {
  it('names the primary of a slot, and after a kill the replica the election promoted', async () => {
    const slot = 100; // in the first primary's range
    const primary = await cluster.primaryForSlot(slot);
    expect(primary).toBe(cluster.nodes[0]);
    expect(await role(primary)).toBe('master');
    const [replica] = await cluster.replicasOf(primary);
    expect(replica).toBeDefined();

    await cluster.killPrimaryForSlot(slot);
    const stalls: string[] = [];
    const promoted = await cluster.waitFailover(slot, { onStall: (w) => stalls.push(w) });
    expect(promoted).toBe(replica);
    expect(await role(promoted)).toBe('master');
    expect(stalls).toEqual([]); // elected, no takeover

    // Back from the dead, the old primary's nodes.conf still gives it the slot: the claim with
    // the higher config epoch (the promoted replica's) is the one named.
    await primary.restart();
    expect(await cluster.primaryForSlot(slot)).toBe(promoted);
    await cluster.waitReady();
    expect(await cluster.primaryForSlot(slot)).toBe(promoted);
  }, 60_000);

  it('explains an election that does not happen, and a takeover promotes the replica', async () => {
    const slot = 16_000; // in the last primary's range
    const primary = await cluster.primaryForSlot(slot);
    const [replica] = await cluster.replicasOf(primary);
    expect(replica).toBeDefined();
    // This replica never starts an election of its own.
    await withClient(replica!, (c) =>
      c.call('CONFIG', 'SET', 'cluster-replica-no-failover', 'yes'),
    );
    await cluster.killPrimaryForSlot(slot);

    await expect(cluster.waitFailover(slot, { timeoutMs: 3_000 })).rejects.toThrow(
      new RegExp(`no replica took over slot ${slot} within 3000 ms[\\s\\S]*myself,slave`),
    );
    const stalls: string[] = [];
    const promoted = await cluster.waitFailover(slot, {
      takeoverAfterMs: 0,
      onStall: (w) => stalls.push(w),
    });
    expect(promoted).toBe(replica);
    expect(await role(promoted)).toBe('master');
    expect(stalls).toHaveLength(1);
    // The explanation: each running node's view and its log.
    expect(stalls[0]).toMatch(/no election promoted a replica for slot 16000/);
    expect(stalls[0]).toMatch(
      new RegExp(`node ${replica!.port}:[\\s\\S]*myself,slave[\\s\\S]*log:`),
    );
  }, 60_000);
});
