// The sharded scheduler's submit side and its per-shard services. A router sends each task to
// its tenant's shard (placement.ts, following the `placement.map` knob live); every shard is
// an ordinary scheduler shard (`{sched:<shard>}`, its own Redis Cluster slot) with its own
// dispatcher and reaper, so shards on different primaries run in parallel.
//
// Cross-shard DAGs are designed away: a task's shard is its tenant's, so a job whose tasks share
// a tenant lives on one shard, and a parent named in the same batch must have the child's
// tenant's shard (else a typed error and nothing is submitted). A parent submitted earlier is
// looked up on the child's shard, as on one shard (UnknownParentError if it is elsewhere).
// A batch that spans shards is one atomic submit per shard, sent in parallel after the whole
// batch passed its checks.
//
// While a tenant moves (a placement change), its submits are held until the switch. A move the
// migrator refused (migration.ts: another tenant's task depends on one of this tenant's) leaves
// the tenant's rows on the old shard: its submits go there meanwhile, and are held again when a
// retry of the move starts.
import { hostname } from 'node:os';
import type { PlacementMap } from '../../knobs/index.ts';
import type { KnobChangeEvent, KnobClient } from '../knobs/client.ts';
import type { RedisClient } from '../redis/connect.ts';
import { Keys } from '../store/keys.ts';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import { idGenerator, SchedulerClient, type CancelJobResult, type CancelResult } from './client.ts';
import type { Clock } from './clock.ts';
import { SchedulerInputError } from './errors.ts';
import { migrationIndex, readMigration, released, TenantMovingError } from './migration-row.ts';
import { movedTenants, Placement, PLACEMENT_KNOB } from './placement.ts';
import type { TaskRow } from './schema.ts';
import { SchedulerService, type SchedulerServiceOptions } from './service.ts';
import { SchedShard } from './shard.ts';
import type { SubmitResult, TaskSpec } from './types.ts';

export interface SchedulerRouterOptions {
  redis: RedisClient;
  /** A knob client following `placement.map`. */
  knobs: KnobClient;
  /** Shard names by placement index; `0`..`n-1` when omitted. */
  shards?: readonly string[];
  keys?: Keys;
  clock?: Clock;
  telemetry?: Telemetry;
  arrivals?: TraceWriter;
  /** `jobs` traces of jobs a submit finished (see SchedulerClient). */
  jobs?: TraceWriter;
  newId?: () => string;
  /** Longest wait for a moving tenant's switch before its submit fails. */
  holdMaxMs?: number;
  pollMs?: number;
}

export class SchedulerRouter {
  readonly placement: Placement;
  private readonly clients = new Map<string, SchedulerClient>();
  private readonly keys: Keys;
  /** Tenants whose move is under way: submits wait for the switch (the knob version asked). */
  private readonly held = new Map<string, number>();
  /**
   * Tenants whose move was refused, with the shard their rows are on (the move's old one):
   * their submits go there, and the row is read again by every submit (a retry holds them).
   */
  private readonly stay = new Map<string, { shard: string }>();
  /** Waits of held tenants under way, by tenant and version (one poll each). */
  private readonly releasing = new Map<string, Promise<void>>();
  /** The migrations under way when this router started, read on the first submit. */
  private loaded: Promise<void> | undefined;
  private readonly onChange = (e: KnobChangeEvent) => {
    if (e.name !== PLACEMENT_KNOB) return;
    const moved = movedTenants(
      e.previous as PlacementMap | undefined,
      e.value as PlacementMap,
      this.placement.shards.length,
    );
    for (const t of moved) {
      this.held.set(t, e.version);
      this.stay.delete(t);
    }
  };

  constructor(private readonly o: SchedulerRouterOptions) {
    this.placement = new Placement(o.knobs, o.shards);
    const keys = (this.keys = o.keys ?? new Keys());
    o.knobs.on('change', this.onChange);
    // One id generator for every shard: ids stay unique across the shards of this router.
    const newId = o.newId ?? idGenerator();
    for (const name of this.placement.shards)
      this.clients.set(
        name,
        new SchedulerClient({
          shard: new SchedShard(o.redis, keys, name),
          newId,
          ...(o.clock ? { clock: o.clock } : {}),
          ...(o.telemetry ? { telemetry: o.telemetry } : {}),
          ...(o.arrivals ? { arrivals: o.arrivals } : {}),
          ...(o.jobs ? { jobs: o.jobs } : {}),
        }),
      );
  }

  /** Holds the tenants of migrations under way when this router starts. */
  private async holdActive(): Promise<void> {
    const tenants = await this.o.redis.smembers(migrationIndex(this.keys));
    for (const t of tenants) {
      const row = await readMigration(this.o.redis, this.keys, t);
      if (row && !released(row, row.knobVersion)) this.held.set(t, row.knobVersion);
    }
  }

  /**
   * Stayed tenants, their row read again on every submit: still refused, they stay; a retry
   * under way holds them again; a move done (or gone) ends the stay. Every submit, not at most
   * every 100 ms as before: a submit sent to the old shard after a retry's freeze started (and
   * its grace, measured from that freeze, ran out) could land after its parent's page was
   * copied. One read per submit of a stayed tenant only (a refused move is rare).
   */
  private async recheckStays(tenants: readonly string[]): Promise<void> {
    for (const t of tenants) {
      const s = this.stay.get(t);
      if (!s) continue;
      const row = await readMigration(this.o.redis, this.keys, t);
      if (this.stay.get(t) !== s) continue; // a knob change meanwhile decided for it
      if (row?.phase !== 'refused') {
        this.stay.delete(t);
        if (row && !released(row, row.knobVersion)) this.held.set(t, row.knobVersion);
      }
    }
  }

  /** A tenant's shard for submits: where its rows are while its move is refused. */
  private shardFor(tenant: string): string {
    return this.stay.get(tenant)?.shard ?? this.placement.shardOf(tenant);
  }

  /** The one wait per held tenant and version that every submit of that tenant shares. */
  private waitRelease(tenant: string, version: number): Promise<void> {
    const key = `${tenant}@${version}`;
    let w = this.releasing.get(key);
    if (!w) {
      w = this.release(tenant, version).finally(() => this.releasing.delete(key));
      this.releasing.set(key, w);
    }
    return w;
  }

  /**
   * Waits until a held tenant's move has switched (the pause its submits see), or was refused
   * (its submits then stay on the old shard), or the migrator applied the map of `version` or
   * a later one without moving the tenant (a move there and back it saw as none: it writes no
   * row, and the tenant was held until the deadline, then again by every submit).
   */
  private async release(tenant: string, version: number): Promise<void> {
    const deadline = Date.now() + (this.o.holdMaxMs ?? 30_000);
    for (;;) {
      const [row, applied] = await Promise.all([
        readMigration(this.o.redis, this.keys, tenant),
        this.o.redis.hget(this.keys.key('placement', 'applied'), 'version'),
      ]);
      if (released(row, version)) break;
      // A tenant's row (if it moves) is written before the map is recorded as applied: no row
      // of this version or later means no move, and the rows are where placement says (none
      // moved yet, or the last move done). An earlier move unfinished or refused keeps the
      // wait (its rows are elsewhere).
      if (
        Number(applied ?? -1) >= version &&
        (!row || (row.knobVersion < version && row.phase === 'done'))
      )
        break;
      if (row?.phase === 'refused' && row.knobVersion >= version) {
        if (this.held.get(tenant) === version) this.stay.set(tenant, { shard: row.from });
        break;
      }
      if (Date.now() > deadline)
        throw new TenantMovingError(`tenant ${tenant} is moving between shards; try again`, {
          tenant,
        });
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 10));
    }
    if (this.held.get(tenant) === version) this.held.delete(tenant);
  }

  close(): void {
    this.o.knobs.off('change', this.onChange);
  }

  /** The client of one shard by name. */
  client(shard: string): SchedulerClient {
    const c = this.clients.get(shard);
    if (!c)
      throw new SchedulerInputError(
        `router: no shard named ${JSON.stringify(shard)}`,
        'shard',
        'exists',
      );
    return c;
  }

  /** The client of a tenant's current shard. */
  clientOf(tenant: string): SchedulerClient {
    return this.client(this.shardFor(tenant));
  }

  async submit(task: TaskSpec): Promise<SubmitResult> {
    const [r] = await this.submitMany([task]);
    return r as SubmitResult;
  }

  /**
   * Returns once none of `tenants` is held by a move, with nothing awaited after the last check:
   * the caller then picks their shards from the map as it is now.
   */
  private async unheld(tenants: readonly string[]): Promise<void> {
    // A failed read is tried again by the next call.
    await (this.loaded ??= this.holdActive().catch((err: unknown) => {
      this.loaded = undefined;
      throw err;
    }));
    // Until one pass finds none held: a knob change during a wait can hold a tenant this loop
    // had already passed.
    for (;;) {
      await this.recheckStays(tenants);
      const held = tenants.find((t) => this.held.has(t));
      if (held === undefined) return;
      await this.waitRelease(held, this.held.get(held) as number);
    }
  }

  /** Submits a batch, each task to its tenant's shard; atomic per shard (see the header). */
  async submitMany(tasks: readonly TaskSpec[]): Promise<SubmitResult[]> {
    await this.unheld([...new Set(tasks.map((x) => x.tenant ?? 'default'))]);
    // The whole batch is checked before any group is made: each group's own checks see only
    // its shard's tasks, so a parent later in the batch on another shard (or an id given twice
    // on two shards) would pass them, and the parent's shard would commit while the child's
    // failed (UnknownParentError).
    const shardOf = tasks.map((t) => this.shardFor(t.tenant ?? 'default'));
    const positionOf = new Map<string, number>();
    tasks.forEach((t, i) => {
      if (t.id === undefined) return;
      const at = positionOf.get(t.id);
      if (at !== undefined)
        throw new SchedulerInputError(
          `task ${t.id}: id appears twice in one batch (#${at} and #${i})`,
          'id',
          'unique',
        );
      positionOf.set(t.id, i);
    });
    tasks.forEach((t, i) => {
      const shard = shardOf[i] as string;
      // Bad parents lists fail in the groups' checks, naming the rule.
      for (const p of Array.isArray(t.parents) ? t.parents : []) {
        const at = positionOf.get(p);
        if (at === undefined) continue;
        const ps = shardOf[at] as string;
        if (ps !== shard)
          throw new SchedulerInputError(
            `task ${t.id ?? `#${i}`}: parent ${p} is on shard ${ps}, the task on ${shard} (a job's tasks must share a tenant's shard)`,
            'parents',
            'same_shard',
          );
        if (at >= i)
          throw new SchedulerInputError(
            `task ${t.id ?? `#${i}`}: parent ${p} must come earlier in the batch (a DAG, listed parents first)`,
            'parents',
            'order',
          );
      }
    });
    const groups = new Map<string, { at: number[]; specs: TaskSpec[] }>();
    tasks.forEach((t, i) => {
      const shard = shardOf[i] as string;
      let g = groups.get(shard);
      if (!g) groups.set(shard, (g = { at: [], specs: [] }));
      g.at.push(i);
      g.specs.push(t);
    });
    // Every group passes its checks before any is sent, so bad input changes nothing.
    const prepared = [...groups].map(([shard, g]) => {
      const client = this.client(shard);
      return { client, at: g.at, normal: client.prepare(g.specs) };
    });
    const out = new Array<SubmitResult>(tasks.length);
    await Promise.all(
      prepared.map(async ({ client, at, normal }) => {
        const rs = await client.submitPrepared(normal);
        rs.forEach((r, j) => (out[at[j] as number] = r));
      }),
    );
    return out;
  }

  /**
   * Cancels a task of `tenant` (SchedulerClient.cancel) on the shard that holds its live rows.
   * Not held as a submit is: while the tenant moves, a running task on its old shard may be
   * cancelled (the freeze waits for that very task; cancel-12.lua refuses the others, 503), so
   * the cancel goes to the move's old shard until the switch and to its new one after. Only a
   * move asked for (the knob changed) whose row is not written yet is waited on, at most
   * `holdMaxMs`.
   */
  async cancel(
    id: string,
    tenant: string,
    o: { actor: string; reason?: string },
  ): Promise<CancelResult> {
    return this.onLiveShard(tenant, (c) => c.cancel(id, { ...o, tenant }));
  }

  /** Cancels every open task of a job of `tenant` (SchedulerClient.cancelJob), as `cancel` does. */
  async cancelJob(
    job: string,
    tenant: string,
    o: { actor: string; reason?: string },
  ): Promise<CancelJobResult> {
    return this.onLiveShard(tenant, (c) => c.cancelJob(job, { ...o, tenant }));
  }

  /** Runs `fn` on the shard that holds `tenant`'s live rows (see `cancel`). */
  private async onLiveShard<T>(tenant: string, fn: (c: SchedulerClient) => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.o.holdMaxMs ?? 30_000);
    for (;;) {
      const m = await readMigration(this.o.redis, this.keys, tenant);
      const held = this.held.get(tenant);
      let shard: string | undefined;
      if (m && (m.phase === 'freeze' || m.phase === 'copy' || m.phase === 'refused'))
        shard = m.from;
      else if (m && (m.phase === 'switched' || m.phase === 'clean')) shard = m.to;
      else if (held === undefined || (m && m.knobVersion >= held))
        shard = this.placement.shardOf(tenant);
      if (shard !== undefined) return fn(this.client(shard));
      if (Date.now() > deadline)
        throw new TenantMovingError(`tenant ${tenant} is moving between shards; try again`, {
          tenant,
        });
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 10));
    }
  }

  /**
   * A task by id: on the shard that holds its tenant's live rows when the tenant is given (as
   * `cancel` finds it: the old shard until a move's switch and while a move is refused; the
   * shard the map names answered null there), else on whichever has it.
   */
  async get(id: string, tenant?: string): Promise<TaskRow | null> {
    if (tenant !== undefined) return this.onLiveShard(tenant, (c) => c.get(id));
    const rows = await Promise.all([...this.clients.values()].map((c) => c.get(id)));
    return rows.find((r) => r !== null) ?? null;
  }
}

/** Starts one scheduler service per named shard (a process may run any subset of the shards). */
export function startShardServices(
  shards: readonly string[],
  o: Omit<SchedulerServiceOptions, 'shard'>,
): SchedulerService[] {
  return shards.map((shard) =>
    SchedulerService.start({
      ...o,
      shard,
      instance: `${o.instance ?? `${hostname()}-${process.pid}`}-${shard}`,
    }),
  );
}
