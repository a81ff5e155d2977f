// The node `npm start` runs (controlplane/node.ts), embedded default: a managed redis-server
// with Redis ACL users applied, the three live services with their workloads, the loop and the
// API. The scheduler runs three shards; the workload's skewed tenants reach all of them through
// the router; the API (as its ACL user) lists and reads the three shards; the loop's placement
// target (as the loop user) proposes moving load off the hot shard, its promotion is migrated
// live by the migrator (as the scheduler user), and the moved tenant's new tasks run on its new
// shard. stop() ends everything, the embedded server included.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PlacementMap } from '../knobs/index.ts';
import { createLogger } from '../controlplane/log.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { startNode, type KnobosNode } from '../controlplane/node.ts';
import { readMigration } from '../controlplane/scheduler/migration-row.ts';
import { PLACEMENT_KNOB } from '../controlplane/scheduler/placement.ts';
import { eventually } from './helpers/redis.ts';

const TOKEN = 'node-start-test-admin-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A check that looks again only every quarter second (the node under test has work to do). */
const slowly = (fn: () => Promise<boolean>) => async (): Promise<boolean> =>
  (await fn()) || (await sleep(250), false);

describe('npm start node (embedded default)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knobos-node-'));
  let node: KnobosNode | undefined;
  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the scheduler on three shards, with placement tuned and migrated live', async () => {
    node = await startNode({
      dataDir: dir,
      prefix: 'knobos',
      log: createLogger('node-test', 'silent'),
      env: { PORT: '0', KNOBOS_ADMIN_TOKEN: TOKEN },
    });
    const n = node;
    expect(n.adminLogin).toBeDefined(); // ACLs applied on the embedded server
    const sched = n.scheduler!;
    expect(sched.shards).toHaveLength(3);
    expect(new Set(sched.shards).size).toBe(3);

    const api = async (path: string): Promise<Record<string, unknown>> => {
      const r = await fetch(`${n.api!.url}${path}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(r.status, path).toBe(200);
      return (await r.json()) as Record<string, unknown>;
    };
    expect(((await api('/api/services')).scheduler as { shards: string[] }).shards).toEqual(
      sched.shards,
    );
    const done = async (shard: string) =>
      ((await api(`/api/services/scheduler?shard=${shard}`)).counts as { done: number }).done;
    await eventually(
      slowly(async () => (await Promise.all(sched.shards.map(done))).every((d) => d > 0)),
      'tasks done on every shard',
      30_000,
    );

    // The loop's placement target proposes, the loop promotes, the migrator moves the tenant.
    const proposals = new ProposalTable(n.knobs);
    let promoted: PlacementMap | undefined;
    // A proposal the gate or shadow turns down under a loaded machine costs a whole cycle
    // (about 35 s) before the next one; on a timeout the error lists what the loop decided.
    await eventually(
      slowly(async () => {
        const p = (await proposals.list({ limit: 200 })).find(
          (x) => x.learner === 'placement' && x.status === 'live',
        );
        promoted = p?.changes.find((c) => c.name === PLACEMENT_KNOB)?.value as PlacementMap;
        return promoted !== undefined;
      }),
      'a placement proposal promoted by the loop',
      150_000,
    ).catch(async (e: Error) => {
      const seen = (await proposals.list({ limit: 200 })).map(
        (x) => `${x.learner} ${x.status}: ${x.reason}`,
      );
      throw new Error(`${e.message}; proposals: ${JSON.stringify(seen)}`);
    });
    const [tenant, index] = Object.entries(promoted!)[0] as [string, number];
    const to = sched.shards[index] as string;
    await eventually(
      slowly(async () => (await readMigration(n.redis, n.keys, tenant))?.phase === 'done'),
      `${tenant} migrated to ${to}`,
      30_000,
    );
    expect(sched.router.placement.shardOf(tenant)).toBe(to);
    const r = await sched.router.submit({ type: 'sleep', tenant, payload: { ms: 1 } });
    await eventually(
      slowly(async () => (await sched.router.client(to).get(r.id))?.state === 'done'),
      `a new task of ${tenant} done on ${to}`,
      15_000,
    );

    const managed = n.managed!;
    await n.stop();
    node = undefined;
    expect(managed.running).toBe(false);
  }, 300_000);
});
