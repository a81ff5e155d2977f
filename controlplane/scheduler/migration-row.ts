// A tenant's move between shards as routers and migrators share it: the migration row
// (`{placement}:migration:<tenant>`: the step the move reached, so a migrator that crashes
// anywhere carries on from it), its keys, the options of a move and its errors. The move itself
// is migration.ts; placement-migrator.ts follows the placement knob and runs the moves.
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import { KnobosError } from '../store/errors.ts';
import type { Keys } from '../store/keys.ts';
import type { SchedShard } from './shard.ts';

/** `refused`: nothing moved (another tenant's task depends on the tenant's); tried again later. */
export const MIGRATION_PHASES = ['freeze', 'copy', 'switched', 'clean', 'done', 'refused'] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

export interface MigrationRow {
  tenant: string;
  from: string;
  to: string;
  phase: MigrationPhase;
  /** The placement knob version that asked for this move. */
  knobVersion: number;
  startedAt: number;
  /**
   * When the current attempt's freeze started (the first one's `startedAt`; a retry of a
   * refused move sets it anew): the grace and the pause are measured from it.
   */
  freezeAt?: number;
  /**
   * Written just before B's copies are thawed: from then on B may run them, so the move only
   * goes forward (a resumed migrator thaws and switches; it never undoes the copy).
   */
  thawedAt?: number;
  switchedAt?: number;
  doneAt?: number;
  moved: number;
  /** Why the move was refused (phase `refused`). */
  error?: string;
}

export interface MigrationOptions {
  redis: RedisClient;
  keys?: Keys;
  /** Shard names by placement index, as the routers have them. */
  shards: readonly string[];
  log?: Logger;
  /** Least time between the hold and the switch (submits already in flight land first). */
  graceMs?: number;
  /** How long A is swept for late arrivals after the switch, and how often. */
  sweepMs?: number;
  sweepEveryMs?: number;
  /** Rows per copy or clean step. */
  batch?: number;
  /** Tombstones on A expire after this long (the completed-task retention). */
  tombstoneTtlMs?: number;
  pollMs?: number;
  /** The lease a migrator holds on a tenant's move while it runs it. */
  lockMs?: number;
  /** How long a migrator waits before it tries a refused move again. */
  retryRefusedMs?: number;
  /** How often a migrator forgets moved idempotency keys whose tombstones expired. */
  forgetEveryMs?: number;
}

/** A moving tenant's submit waited longer than the hold allows (the migration is stuck). */
export class TenantMovingError extends KnobosError {
  readonly code = 'KNOBOS_SCHEDULER_TENANT_MOVING';
  readonly status = 503;
}

/**
 * A move refused: a task of the tenant has a dependent of another tenant that has not finished
 * (moving the task would break the edge; freezing it would stop the dependent for ever).
 */
export class MigrationRefusedError extends KnobosError {
  readonly code = 'KNOBOS_PLACEMENT_MOVE_REFUSED';
  readonly status = 409;
}

/** A migrator's lease on a move ran out and another took it: this one stopped. */
export class MigrationLockLostError extends KnobosError {
  readonly code = 'KNOBOS_PLACEMENT_LOCK_LOST';
  readonly status = 409;
}

export function migrationKey(keys: Keys, tenant: string): string {
  return keys.key('placement', 'migration', tenant);
}
export function migrationIndex(keys: Keys): string {
  return keys.key('placement', 'migrations');
}
/** A shard's idempotency keys of moved tasks, by the time their tombstones expire. */
export function forgetKey(keys: Keys, shard: SchedShard): string {
  return keys.key(shard.k.family, 'moved_idem');
}
export async function readMigration(
  redis: RedisClient,
  keys: Keys,
  tenant: string,
): Promise<MigrationRow | null> {
  const h = await redis.hgetall(migrationKey(keys, tenant));
  if (!h['tenant']) return null;
  return {
    tenant: h['tenant'],
    from: h['from'] as string,
    to: h['to'] as string,
    phase: h['phase'] as MigrationPhase,
    knobVersion: Number(h['knob_version']),
    startedAt: Number(h['started_at']),
    ...(h['freeze_at'] ? { freezeAt: Number(h['freeze_at']) } : {}),
    ...(h['thawed_at'] ? { thawedAt: Number(h['thawed_at']) } : {}),
    ...(h['switched_at'] ? { switchedAt: Number(h['switched_at']) } : {}),
    ...(h['done_at'] ? { doneAt: Number(h['done_at']) } : {}),
    moved: Number(h['moved'] ?? 0),
    ...(h['error'] ? { error: h['error'] } : {}),
  };
}

/** Whether submits of the row's tenant may go to the new shard. */
export function released(row: MigrationRow | null, knobVersion: number): boolean {
  // Not after a refused move either: the tenant's rows are still on the old shard, where the
  // routers send its submits meanwhile (router.ts).
  return (
    row !== null &&
    row.knobVersion >= knobVersion &&
    row.phase !== 'freeze' &&
    row.phase !== 'copy' &&
    row.phase !== 'refused'
  );
}
