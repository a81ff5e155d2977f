// Which scheduler shard a tenant lives on: the `placement.map` knob (tenant -> shard index),
// and for a tenant it does not list, the FNV-1a hash of its name (policies/placement/hash.ts,
// the same function the placement simulator uses). Shard indexes name shards through an
// ordered list of shard names, one per index of the knob's domain. Read from the knob client's
// memory on every call, so a promotion applies live without a round trip.
import { Cluster } from 'ioredis';
import { shardOf } from '../../policies/placement/hash.ts';
import type { PlacementMap } from '../../knobs/index.ts';
import type { KnobClient } from '../knobs/client.ts';
import type { RedisClient } from '../redis/connect.ts';
import { keySlot } from '../redis/slots.ts';
import { assertKeyPart } from '../store/keys.ts';
import { SchedulerInputError } from './errors.ts';

export const PLACEMENT_KNOB = 'placement.map';

/** Tenants whose shard differs between two maps over `n` shards (listed, or hashed). */
export function movedTenants(
  from: PlacementMap | undefined,
  to: PlacementMap,
  n: number,
): string[] {
  const names = new Set([...Object.keys(from ?? {}), ...Object.keys(to)]);
  return [...names].filter((t) => shardOf(from ?? {}, t, n) !== shardOf(to, t, n));
}

/** Shard names `0`..`n-1`: the default layout for a knob with n shards. */
export function defaultShardNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i));
}

export class Placement {
  readonly shards: readonly string[];

  constructor(
    private readonly knobs: KnobClient,
    shards?: readonly string[],
  ) {
    const spec = knobs.spec(PLACEMENT_KNOB);
    if (!spec || spec.type !== 'placement')
      throw new SchedulerInputError(
        `placement: the catalog has no placement knob ${PLACEMENT_KNOB}`,
        'knob',
        'exists',
      );
    knobs.get(PLACEMENT_KNOB); // fails now if the client does not follow it
    this.shards = shards ?? defaultShardNames(spec.shards);
    if (this.shards.length !== spec.shards)
      throw new SchedulerInputError(
        `placement: shards must name one shard per index of ${PLACEMENT_KNOB} (${spec.shards}), got ${this.shards.length}`,
        'shards',
        'count',
      );
    if (new Set(this.shards).size !== this.shards.length)
      throw new SchedulerInputError('placement: shards must be distinct', 'shards', 'distinct');
    for (const s of this.shards) assertKeyPart('scheduler shard', s);
  }

  /** The shard index of a tenant under the knob's current value. */
  indexOf(tenant: string): number {
    return shardOf(this.knobs.get(PLACEMENT_KNOB), tenant, this.shards.length);
  }

  /** The shard name of a tenant under the knob's current value. */
  shardOf(tenant: string): string {
    return this.shards[this.indexOf(tenant)] as string;
  }
}

/**
 * `count` shard names (`<stem><n>`) whose hash slots spread over the cluster's primaries, round
 * robin, so that shards run on different nodes; on one Redis, `<stem>0`..`<stem>{count-1}`.
 */
export async function shardNamesOnPrimaries(
  redis: RedisClient,
  count: number,
  stem = 's',
): Promise<string[]> {
  if (!(redis instanceof Cluster)) return Array.from({ length: count }, (_, i) => `${stem}${i}`);
  const ranges = (await redis.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const primaryOf = (slot: number): string => {
    const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
    return r ? `${r[2][0]}:${r[2][1]}` : '';
  };
  const primaries = [...new Set(ranges.map((r) => `${r[2][0]}:${r[2][1]}`))].sort();
  // Candidates per primary, taken in turn, so the first `count` names cover every primary.
  const per = new Map<string, string[]>(primaries.map((p) => [p, []]));
  const want = Math.ceil(count / primaries.length);
  for (let n = 0; n < 100_000 && [...per.values()].some((l) => l.length < want); n++) {
    const name = `${stem}${n}`;
    const slot = keySlot(`{sched:${name}}`);
    const list = per.get(primaryOf(slot));
    if (list && list.length < want) list.push(name);
  }
  const out: string[] = [];
  for (let i = 0; out.length < count; i++)
    for (const p of primaries)
      if (out.length < count) out.push((per.get(p) as string[])[i] as string);
  return out;
}
