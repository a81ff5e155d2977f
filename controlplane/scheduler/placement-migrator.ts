// Follows the `placement.map` knob and runs a live migration (migration.ts) for every tenant
// whose shard a change moves; resumes the moves a crash left unfinished.
import type { PlacementMap } from '../../knobs/index.ts';
import { shardOf } from '../../policies/placement/hash.ts';
import type { KnobChangeEvent, KnobClient } from '../knobs/client.ts';
import { createLogger, type Logger } from '../log.ts';
import { Keys } from '../store/keys.ts';
import { Migration, migrateScripts } from './migration.ts';
import {
  forgetKey,
  migrationIndex,
  MigrationRefusedError,
  readMigration,
  type MigrationOptions,
} from './migration-row.ts';
import { movedTenants, Placement, PLACEMENT_KNOB } from './placement.ts';
import { SchedShard } from './shard.ts';

/**
 * Follows `placement.map` and runs a migration for every tenant whose shard a change moves,
 * one at a time; on start it resumes the migrations a crash left unfinished, and starts those
 * of a change it never saw (the map it last applied is kept beside the migration rows). A
 * refused move is tried again after `retryRefusedMs`; and every `forgetEveryMs` each shard
 * forgets the idempotency keys of moved tasks whose tombstones have expired.
 */
export class PlacementMigrator {
  private queue: Promise<void> = Promise.resolve();
  private readonly keys: Keys;
  private readonly placement: Placement;
  private readonly log: Logger;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly onChange = (e: KnobChangeEvent) => {
    if (e.name !== PLACEMENT_KNOB) return;
    this.enqueue(() => this.apply(e.previous as PlacementMap, e.value as PlacementMap, e.version));
  };

  private constructor(private readonly o: MigrationOptions & { knobs: KnobClient }) {
    this.keys = o.keys ?? new Keys();
    this.placement = new Placement(o.knobs, o.shards);
    this.log = o.log ?? createLogger('placement');
  }

  static async start(o: MigrationOptions & { knobs: KnobClient }): Promise<PlacementMigrator> {
    const m = new PlacementMigrator(o);
    o.knobs.on('change', m.onChange);
    const appliedKey = m.keys.key('placement', 'applied');
    const applied = await o.redis.hgetall(appliedKey);
    // The first migrator ever takes the map as it finds it: rows were placed by it.
    const previous = applied['map']
      ? (JSON.parse(applied['map']) as PlacementMap)
      : o.knobs.get<PlacementMap>(PLACEMENT_KNOB);
    const tenants = await o.redis.smembers(migrationIndex(m.keys));
    for (const t of tenants) {
      const row = await readMigration(o.redis, m.keys, t);
      if (row && row.phase !== 'done') m.enqueue(() => m.runMove(new Migration(m.opts, row)));
    }
    const forget = setInterval(() => {
      m.forgetMovedKeys().catch((err: unknown) =>
        m.log.error({ err: (err as Error).message }, 'forgetting moved idempotency keys failed'),
      );
    }, o.forgetEveryMs ?? 60_000);
    forget.unref();
    m.timers.add(forget);
    m.enqueue(() =>
      m.apply(previous, o.knobs.get(PLACEMENT_KNOB), o.knobs.version(PLACEMENT_KNOB)),
    );
    return m;
  }

  private get opts(): MigrationOptions {
    return { ...this.o, keys: this.keys, shards: this.placement.shards, log: this.log };
  }

  private enqueue(step: () => Promise<unknown>): void {
    this.queue = this.queue.then(step).then(
      () => undefined,
      (err: unknown) =>
        this.log.error({ err: (err as Error).message }, 'placement migration failed'),
    );
  }

  /** Resolves once every migration asked for so far has finished. */
  idle(): Promise<void> {
    return this.queue;
  }

  private async apply(from: PlacementMap, to: PlacementMap, version: number): Promise<void> {
    const n = this.placement.shards.length;
    const moves = movedTenants(from, to, n);
    const migrations = await Promise.all(
      moves.map((t) =>
        this.begin(t, this.placement.shards[shardOf(from, t, n)] as string, to, version),
      ),
    );
    await this.o.redis.hset(this.keys.key('placement', 'applied'), {
      map: JSON.stringify(to),
      version,
    });
    // Tenants move independently (each its own rows, frozen set and migration row).
    await Promise.all(migrations.map((m) => (m ? this.runMove(m) : undefined)));
  }

  /**
   * Begins tenant t's move to where `map` (of knob `version`) places it, from where its rows
   * are: where its last move left them (`to` when done, `from` when refused), else `placedAt`
   * (the shard the previous map named). An earlier move still unfinished (stopped by a lost
   * lease or an error, its retry not run yet) is run once first; if it still does not finish,
   * null: the tenant is looked at again after `lockMs` (reconcile), so one stuck move holds
   * up neither the other tenants' moves nor the migrator's queue. Before, the new move
   * replaced the row and started from the shard the old map named: the rows stayed behind
   * (frozen, if the earlier move had begun).
   */
  private async begin(
    t: string,
    placedAt: string,
    map: PlacementMap,
    version: number,
  ): Promise<Migration | null> {
    let row = await readMigration(this.o.redis, this.keys, t);
    const unfinished = (r: typeof row) => r && r.phase !== 'done' && r.phase !== 'refused';
    if (unfinished(row) && (row as NonNullable<typeof row>).knobVersion < version) {
      try {
        await new Migration(this.opts, row as NonNullable<typeof row>).run();
      } catch (err) {
        if (!(err instanceof MigrationRefusedError))
          this.log.warn(
            { tenant: t, err: (err as Error).message },
            'an earlier placement move is unfinished; the next waits for it',
          );
      }
      row = await readMigration(this.o.redis, this.keys, t);
      if (unfinished(row) && (row as NonNullable<typeof row>).knobVersion < version) {
        this.later(t);
        return null;
      }
    }
    const at = row?.phase === 'refused' ? row.from : row?.phase === 'done' ? row.to : placedAt;
    const n = this.placement.shards.length;
    return Migration.begin(
      this.opts,
      t,
      at,
      this.placement.shards[shardOf(map, t, n)] as string,
      version,
    );
  }

  /** Looks at tenant t again after `lockMs`: moves it to where the map now places it. */
  private later(t: string): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.enqueue(async () => {
        if (this.closed) return;
        const map = this.o.knobs.get<PlacementMap>(PLACEMENT_KNOB);
        const version = this.o.knobs.version(PLACEMENT_KNOB);
        const n = this.placement.shards.length;
        const m = await this.begin(
          t,
          this.placement.shards[shardOf(map, t, n)] as string,
          map,
          version,
        );
        if (m) await this.runMove(m);
      });
    }, this.o.lockMs ?? 10_000);
    timer.unref();
    this.timers.add(timer);
  }

  /**
   * Runs a move; a refused one is tried again later (its tenant's submits go to its old shard).
   * One left unfinished (its lease lost, another migrator running it, or a transient error) is
   * looked at again after `lockMs` while its row is unfinished: before, a lease that ran out
   * stopped the move and nothing resumed it (its tasks stayed frozen, its submits held).
   */
  private async runMove(m: Migration): Promise<void> {
    const { tenant, knobVersion } = m.row;
    let refused = false;
    try {
      const row = await m.run();
      if (row.phase === 'done' || row.phase === 'refused') return;
    } catch (err) {
      refused = err instanceof MigrationRefusedError;
      if (!refused)
        this.log.warn(
          { tenant, err: (err as Error).message },
          'placement move stopped; it is resumed later',
        );
    }
    if (this.closed) return;
    const retry = setTimeout(
      () => {
        this.timers.delete(retry);
        this.enqueue(async () => {
          const row = await readMigration(this.o.redis, this.keys, tenant);
          // A later change replaced the row, or another migrator took it on: not this retry's.
          if (!row || row.knobVersion !== knobVersion || row.phase === 'done') return;
          if (refused !== (row.phase === 'refused')) return;
          await this.runMove(new Migration(this.opts, row));
        });
      },
      refused ? (this.o.retryRefusedMs ?? 5_000) : (this.o.lockMs ?? 10_000),
    );
    retry.unref();
    this.timers.add(retry);
  }

  /** On every shard: forgets moved tasks' idempotency keys whose tombstones expired. */
  private async forgetMovedKeys(): Promise<void> {
    for (const name of this.placement.shards) {
      const s = new SchedShard(this.o.redis, this.keys, name);
      for (;;) {
        const n = Number(
          await migrateScripts.run(
            this.o.redis,
            'migrateForget',
            [forgetKey(this.keys, s), s.k.idem()],
            [Date.now(), s.k.prefixes()[0] as string, 1_000],
          ),
        );
        if (n < 1_000) break;
      }
    }
  }

  close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.o.knobs.off('change', this.onChange);
    return this.queue;
  }
}
