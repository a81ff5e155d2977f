// Live placement migration: when `placement.map` moves a tenant from shard A to shard B, its
// rows move while tasks keep being submitted and run. Redis runs nothing atomically across two
// slots, so the move is a sequence of per-shard steps, each safe to repeat, and the step
// reached is kept in a migration row (`{placement}:migration:<tenant>`): a migrator that
// crashes anywhere is restarted and carries on from the row.
//
//   hold    routers hold the tenant's new submits (they see the knob change, or the row)
//   freeze  on A, the tenant's runnable and delayed tasks leave play (state 'moving'), pass
//           after pass, until none is left, no copy of the tenant is leased on A (leased
//           copies finish on A), and a grace period for submits already in flight has passed
//   copy    the tenant's rows on A (every state; DAG edges, idempotency keys, dead-letter and
//           job rows with them) are written to B in bounded batches; a row B has is skipped,
//           a tombstone B has (an earlier move off B, within its 24 h) is replaced
//   switch  the row says 'switched': routers release the held submits to B (the pause)
//   clean   on A, each copied row becomes a tombstone (a late resubmission of an id answers
//           "exists"), then A is swept for late arrivals (a router that missed the change)
//           for `sweepMs`, each moved the same way; the row says 'done'
//
// Nothing is lost or run twice: a task is in play on exactly one shard at every moment (frozen
// on A before it is written to B, and leased copies finish on A first). Edges across tenants
// are rare (a job's tasks share a tenant) and would break by moving: a task of the tenant with
// a parent of another tenant that has not finished is copied once that parent has; a task of
// the tenant that another tenant's unfinished task depends on makes the move refused (phase
// 'refused', MigrationRefusedError), up front or, if the dependent arrives during the move, by
// undoing it: the freeze would stop that task, so the copy would wait for ever. Nothing of the
// tenant stays frozen; routers send its submits to the old shard meanwhile (router.ts), and the
// migrator (placement-migrator.ts) tries the move again later.
import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { join } from 'node:path';
import { createLogger, type Logger } from '../log.ts';
import type { RedisClient } from '../redis/connect.ts';
import { keySlot } from '../redis/slots.ts';
import { Keys } from '../store/keys.ts';
import { ScriptSet } from '../store/scripts.ts';
import {
  forgetKey,
  MigrationLockLostError,
  migrationIndex,
  migrationKey,
  MigrationRefusedError,
  readMigration,
  type MigrationOptions,
  type MigrationPhase,
  type MigrationRow,
} from './migration-row.ts';
import { PLACEMENT_KNOB } from './placement.ts';
import { decodeAttrs } from './schema.ts';
import { SchedShard } from './shard.ts';
import { ENDED_STATES } from './types.ts';

type MigrateScript =
  | 'migrateFreeze'
  | 'migrateDetach'
  | 'migrateCopy'
  | 'migrateThaw'
  | 'migrateClean'
  | 'migrateUnfreeze'
  | 'migrateForget'
  | 'migrateLock';
export const migrateScripts = new ScriptSet<MigrateScript>(
  join(import.meta.dirname, 'scripts'),
  'knobos_migrate',
);

/** A task of the moving tenant and a dependent of another tenant that has not finished. */
interface Blocker {
  task: string;
  dependent: string;
  dependentTenant: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Ended states a job counts as failed. */
const FAILED = new Set(['dead', 'upstream_failed', 'cancelled']);

/** A shard's cascade list (includes/shard.lua: the children prefix and an id no task has). */
function cascadeKey(shard: SchedShard): string {
  return `${shard.k.prefixes()[1] as string}*`;
}

/** The primary (or the one node) that serves a key's slot, for SCAN. */
async function nodeOf(redis: RedisClient, key: string): Promise<Redis> {
  if (!(redis instanceof Cluster)) return redis;
  const slot = keySlot(key);
  const ranges = (await redis.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
  const node = redis
    .nodes('master')
    .find((n) => r && n.options.port === r[2][1] && (n.options.host === r[2][0] || r[2][0] === ''));
  if (!node) throw new Error(`migration: no primary serves slot ${slot}`);
  return node;
}

/** The job rows a page's tasks belong to (a task that is its own job has none). */
function jobsOf(page: readonly Found[]): string[] {
  const jobs = page.map((p) => (p.row['attrs'] ? decodeAttrs(p.row['attrs']).job : ''));
  return [...new Set(jobs.filter((j, i) => j && j !== page[i]?.id))];
}

interface Found {
  id: string;
  row: Record<string, string>;
}

/** A row that can still be started or change on its shard (runnable, delayed or leased). */
const inPlay = (f: Found): boolean =>
  f.row['state'] === 'runnable' || f.row['state'] === 'delayed' || f.row['state'] === 'leased';

/** One tenant's move from one shard to another. */
export class Migration {
  private readonly keys: Keys;
  private readonly log: Logger;
  private readonly from: SchedShard;
  private readonly to: SchedShard;
  private readonly frozenKey: string;
  private readonly rowKey: string;
  /** Set once this migrator's lease was found taken by another: every step stops. */
  private lockLost = false;

  constructor(
    private readonly o: MigrationOptions,
    readonly row: MigrationRow,
  ) {
    this.keys = o.keys ?? new Keys();
    this.log = o.log ?? createLogger('placement');
    this.from = new SchedShard(o.redis, this.keys, row.from);
    this.to = new SchedShard(o.redis, this.keys, row.to);
    this.frozenKey = this.keys.key(this.from.k.family, 'migrating', row.tenant);
    this.rowKey = migrationKey(this.keys, row.tenant);
  }

  /** Writes the row of a new move (phase freeze) unless one for this knob version exists. */
  static async begin(
    o: MigrationOptions,
    tenant: string,
    from: string,
    to: string,
    knobVersion: number,
  ): Promise<Migration> {
    const keys = o.keys ?? new Keys();
    const existing = await readMigration(o.redis, keys, tenant);
    if (existing && existing.knobVersion >= knobVersion) return new Migration(o, existing);
    const row: MigrationRow = {
      tenant,
      from,
      to,
      phase: 'freeze',
      knobVersion,
      startedAt: Date.now(),
      moved: 0,
    };
    await o.redis.del(migrationKey(keys, tenant));
    await o.redis.hset(migrationKey(keys, tenant), {
      tenant,
      from,
      to,
      phase: 'freeze',
      knob_version: knobVersion,
      started_at: row.startedAt,
      moved: 0,
    });
    await o.redis.sadd(migrationIndex(keys), tenant);
    return new Migration(o, row);
  }

  private async setPhase(
    phase: MigrationPhase,
    extra: Record<string, string | number> = {},
  ): Promise<void> {
    this.assertLock();
    if (phase === 'copy' || phase === 'switched' || phase === 'clean') await this.mark();
    await this.o.redis.hset(this.rowKey, { phase, ...extra });
    this.row.phase = phase;
  }

  private assertLock(): void {
    if (this.lockLost)
      throw new MigrationLockLostError(
        `migration of tenant ${this.row.tenant}: its lease ran out and another migrator took it; this one stopped`,
        { tenant: this.row.tenant },
      );
  }

  /**
   * Runs the move from the phase its row records to the end (or to `stopAfter`, for tests).
   * One migrator at a time runs a tenant's move (a lease renewed while it runs; a crashed
   * migrator's lease runs out and the next one carries on); another gets the row as it is.
   */
  async run(stopAfter?: MigrationPhase): Promise<MigrationRow> {
    const lockKey = `${this.rowKey}:lock`;
    const owner = randomBytes(8).toString('hex');
    const lockMs = this.o.lockMs ?? 10_000;
    if ((await this.o.redis.set(lockKey, owner, 'PX', lockMs, 'NX')) !== 'OK') return this.row;
    // Renewed only while this migrator holds it: once its lease ran out (a long pause), it may
    // be another's, which must not be extended, and this migrator stops at its next step.
    const lock = (ms: number) =>
      migrateScripts.run(this.o.redis, 'migrateLock', [lockKey], [owner, ms]).then(Number);
    const renew = setInterval(() => {
      void lock(lockMs).then(
        (held) => {
          if (held !== 1) this.lockLost = true;
        },
        () => 0, // a failed renewal is tried again; the lease outlasts two
      );
    }, lockMs / 3);
    try {
      // The row as it is now: another migrator may have moved it on before this one got the
      // lease. Or replaced it by a later move (another map version, another target): that move
      // is not this object's to run (its shards are this row's: it copied to its own old
      // target and marked the new row done, the tenant's rows where no router looks).
      const now = await readMigration(this.o.redis, this.keys, this.row.tenant);
      if (
        !now ||
        now.knobVersion !== this.row.knobVersion ||
        now.from !== this.row.from ||
        now.to !== this.row.to
      ) {
        this.log.info(
          { tenant: this.row.tenant, version: this.row.knobVersion, now: now?.knobVersion },
          'migration row replaced by another move: left to its own migrator',
        );
        return now ?? this.row;
      }
      Object.assign(this.row, now);
      return await this.steps(stopAfter);
    } finally {
      clearInterval(renew);
      await lock(0).catch(() => 0);
    }
  }

  /**
   * Marks the tenant moving on A (A's submits refuse other tenants' children of its open
   * tasks). Set at the freeze and again at every later step and resume, so a mark lost (a
   * failover that dropped the write) is back at the next step.
   */
  private async mark(): Promise<void> {
    await this.o.redis.sadd(this.from.k.movingTenants(), this.row.tenant);
  }

  private async steps(stopAfter?: MigrationPhase): Promise<MigrationRow> {
    if (this.row.from === this.row.to && this.row.phase !== 'done') {
      await this.setPhase('done', { done_at: Date.now() });
      await this.o.redis.srem(migrationIndex(this.keys), this.row.tenant);
    }
    // Tried again: the checks below refuse it again, or it goes through. The grace for submits
    // in flight (routers sent the tenant's submits to A until they saw this) starts now.
    if (this.row.phase === 'refused') {
      this.row.freezeAt = Date.now();
      delete this.row.thawedAt;
      await this.setPhase('freeze', { freeze_at: this.row.freezeAt });
      await this.o.redis.hdel(this.rowKey, 'thawed_at', 'error');
      delete this.row.error;
    }
    if (this.row.phase === 'freeze') {
      // Before anything is frozen. A move still blocked is refused before the tenant is marked
      // (a refused move is tried every few seconds: other tenants' children of its tasks are
      // not refused for each try's scan). Then marked: from here A's submits refuse another
      // tenant's child of an open task of the tenant (its edge would stay on A), and a second
      // look finds any that came in between.
      let blocker = await this.foreignDependent();
      if (blocker) await this.refuse(blocker);
      await this.mark();
      blocker = await this.foreignDependent();
      if (blocker) await this.refuse(blocker);
      await this.freezeUntilQuiet();
      await this.setPhase('copy');
      if (stopAfter === 'freeze') return this.row;
    }
    if (['copy', 'switched', 'clean'].includes(this.row.phase)) await this.mark();
    if (this.row.phase === 'copy') {
      // Once thawed (recorded first), B may run the copies: a resumed migrator goes on to the
      // switch, and rows that reached A meanwhile are the sweep's late arrivals. Before, it
      // copied again and could undo (tombstone) copies B was running, A's originals back in play.
      if (this.row.thawedAt === undefined) {
        const blocker = await this.copyAll(false);
        if (blocker) await this.refuse(blocker);
        const thawedAt = Date.now();
        await this.setPhase('copy', { thawed_at: thawedAt, moved: this.row.moved });
        this.row.thawedAt = thawedAt;
      }
      await this.thawAll();
      this.row.switchedAt = Date.now();
      await this.setPhase('switched', { switched_at: this.row.switchedAt, moved: this.row.moved });
      this.log.info(
        {
          tenant: this.row.tenant,
          from: this.row.from,
          to: this.row.to,
          pauseMs: this.row.switchedAt - (this.row.freezeAt ?? this.row.startedAt),
          moved: this.row.moved,
        },
        'tenant switched to its new shard',
      );
      if (stopAfter === 'copy') return this.row;
    }
    if (this.row.phase === 'switched') {
      await this.setPhase('clean');
      if (stopAfter === 'switched') return this.row;
    }
    if (this.row.phase === 'clean') {
      // A sweep round stopped between its copy and its thaw: its staged copies run on B (the
      // clean below tombstones their rows on A).
      await this.thawAll();
      await this.cleanAll();
      await this.sweep();
      await this.o.redis.srem(this.from.k.movingTenants(), this.row.tenant);
      this.row.doneAt = Date.now();
      await this.setPhase('done', { done_at: this.row.doneAt });
      await this.o.redis.srem(migrationIndex(this.keys), this.row.tenant);
    }
    return this.row;
  }

  private get batch(): number {
    return this.o.batch ?? 200;
  }

  /** Freezes the tenant's runnable and delayed tasks on A in passes until A holds none in play. */
  private async freezeUntilQuiet(): Promise<void> {
    const graceEnd = (this.row.freezeAt ?? this.row.startedAt) + (this.o.graceMs ?? 500);
    for (;;) {
      this.assertLock();
      const froze = await this.freezePass();
      const leased = Number(
        (await this.o.redis.hget(this.from.k.tenantRunning(), this.row.tenant)) ?? 0,
      );
      if (froze === 0 && leased <= 0 && Date.now() >= graceEnd) return;
      await sleep(this.o.pollMs ?? 20);
    }
  }

  /**
   * One pass over A's delayed, then runnable, index (ZSCAN: every entry present for the whole
   * pass is seen, whatever else moves): freezes what is the tenant's. Delayed first, so a task
   * the reaper promotes during the pass is met in one of the two.
   */
  private async freezePass(): Promise<number> {
    // A dead task's cascade left for A's reaper: the tenant's part of it moves too.
    let froze = Number(
      await migrateScripts.run(
        this.o.redis,
        'migrateDetach',
        [cascadeKey(this.from), this.frozenKey],
        [this.from.k.prefixes()[0] as string, this.row.tenant],
      ),
    );
    for (const index of [this.from.k.delayed(), this.from.k.runnable()]) {
      let cursor = '0';
      do {
        const [next, flat] = await this.o.redis.zscan(index, cursor, 'COUNT', this.batch);
        cursor = next;
        const ids = flat.filter((_, i) => i % 2 === 0);
        if (ids.length === 0) continue;
        // The script itself leaves other tenants' tasks alone: no read of their rows first.
        froze += Number(
          await migrateScripts.run(
            this.o.redis,
            'migrateFreeze',
            [this.from.k.runnable(), this.from.k.delayed(), this.frozenKey],
            [this.from.k.prefixes()[0] as string, this.row.tenant, ...ids],
          ),
        );
      } while (cursor !== '0');
    }
    return froze;
  }

  /** Every row of the tenant on A that is not a tombstone, in SCAN pages. */
  private async *tenantRows(): AsyncGenerator<Found[]> {
    const node = await nodeOf(this.o.redis, this.from.k.task('x'));
    const match = `${this.from.k.prefixes()[0] as string}*`;
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', this.batch);
      cursor = next;
      if (keys.length === 0) continue;
      // The node holds every tenant's rows: read whole rows only of this tenant's live ones.
      const heads = this.o.redis.pipeline();
      for (const k of keys) heads.hmget(k, 'state', 'attrs');
      const mine = ((await heads.exec()) ?? []).flatMap(([, v], i) => {
        const [state, attrs] = (v ?? []) as (string | null)[];
        if (!attrs || state === 'moved' || decodeAttrs(attrs).tenant !== this.row.tenant) return [];
        return [keys[i] as string];
      });
      if (mine.length === 0) continue;
      const pipe = this.o.redis.pipeline();
      for (const k of mine) pipe.hgetall(k);
      const rows = ((await pipe.exec()) ?? []).map(([, v]) => v as Record<string, string>);
      const prefixLen = (this.from.k.prefixes()[0] as string).length;
      const found: Found[] = [];
      mine.forEach((k, i) => {
        const row = rows[i];
        // Gone or moved between the two reads: nothing of the tenant's to copy.
        if (!row || row['state'] === 'moved' || !row['attrs']) return;
        found.push({ id: k.slice(prefixLen), row });
      });
      if (found.length > 0) yield found;
    } while (cursor !== '0');
  }

  /**
   * Copies every row of the tenant on A to B (`late`: rows that arrived after the switch);
   * waits while a parent of another tenant has not finished. Returns, having written nothing
   * more, a task of the tenant that another tenant's unfinished task depends on.
   */
  private async copyAll(late: boolean): Promise<Blocker | null> {
    for (;;) {
      this.assertLock();
      // Only once nothing of the tenant is in play on A: rows then change only by a late
      // arrival (a router that missed the change) or an edge to another tenant, both of which
      // leave a row in play that the copy skips and the next round freezes.
      if (await this.anyInPlay()) {
        await this.freezeUntilQuiet();
        continue;
      }
      let blocked = false;
      let moved = 0;
      for await (const page of this.tenantRows()) {
        const r = await this.copyPage(page, late);
        if (r.refused) return r.refused;
        blocked ||= r.blocked;
        moved += r.written;
      }
      this.row.moved += moved;
      if (!blocked) return null;
      await sleep(this.o.pollMs ?? 20);
    }
  }

  /** Whether a row of the tenant on A can still start or change (not frozen, not finished). */
  private async anyInPlay(): Promise<boolean> {
    for await (const page of this.tenantRows()) if (page.some(inPlay)) return true;
    return false;
  }

  /** A task of the tenant on A with a dependent of another tenant that has not finished. */
  private async foreignDependent(): Promise<Blocker | null> {
    for await (const page of this.tenantRows()) {
      // Only a task that was given a child can have one (a finished task's are gone).
      const parents = page.filter((f) => f.row['has_children'] === '1');
      if (parents.length === 0) continue;
      const pipe = this.o.redis.pipeline();
      for (const f of parents) pipe.smembers(this.from.k.children(f.id));
      const children = ((await pipe.exec()) ?? []).map(([, v]) => v as string[]);
      const b = await this.openForeignChild(parents.map((f, i) => [f.id, children[i] ?? []]));
      if (b) return b;
    }
    return null;
  }

  /** Of (task, its children) pairs: a child of another tenant that has not finished, or null. */
  private async openForeignChild(tasks: [string, string[]][]): Promise<Blocker | null> {
    const pairs = tasks.flatMap(([task, children]) => children.map((c) => [task, c] as const));
    if (pairs.length === 0) return null;
    const pipe = this.o.redis.pipeline();
    for (const [, c] of pairs) pipe.hmget(this.from.k.task(c), 'attrs', 'state');
    const rows = ((await pipe.exec()) ?? []).map(([, v]) => v as (string | null)[]);
    for (const [i, [task, dependent]] of pairs.entries()) {
      const [attrs, state] = rows[i] ?? [];
      if (!attrs || state === 'moved' || ENDED_STATES.has(state ?? '')) continue;
      const dependentTenant = decodeAttrs(attrs).tenant;
      if (dependentTenant !== this.row.tenant) return { task, dependent, dependentTenant };
    }
    return null;
  }

  /**
   * Refuses the move (nothing of it stays: see undo), records why in the row (phase
   * `refused`: routers send the tenant's submits to the old shard until a retry starts) and
   * throws.
   */
  private async refuse(b: Blocker): Promise<never> {
    const { tenant, from, to } = this.row;
    const message =
      `tenant ${tenant} cannot move from shard ${from} to ${to}: its task ${b.task} has a dependent ` +
      `${b.dependent} of tenant ${b.dependentTenant} that has not finished (an edge between ` +
      `tenants cannot span shards); the move is tried again later`;
    await this.undo(false);
    // The tenant's tasks are back in play on A: other tenants may depend on them again.
    await this.o.redis.srem(this.from.k.movingTenants(), this.row.tenant);
    await this.setPhase('refused', { error: message });
    this.row.error = message;
    this.log.warn({ tenant, from, to, ...b }, 'placement move refused');
    throw new MigrationRefusedError(message, {
      field: PLACEMENT_KNOB,
      rule: 'cross_tenant_dependent',
      tenant,
      ...b,
    });
  }

  /**
   * Undoes what a move did to the tenant's live rows on A (all of them before the switch, the
   * late arrivals after): their copies on B become tombstones naming A (as the clean step
   * makes them on A), and their frozen tasks and cascade entries on A are back in play. Safe
   * to repeat.
   */
  private async undo(late: boolean): Promise<void> {
    // Never after the thaw: B may run the copies (a resumed move goes forward instead).
    if (!late && this.row.thawedAt !== undefined)
      throw new Error(`migration of tenant ${this.row.tenant}: no undo after the thaw`);
    for await (const page of this.tenantRows()) {
      const pipe = this.o.redis.pipeline();
      for (const f of page) pipe.hget(this.to.k.task(f.id), 'state');
      // A copy B runs (runnable, delayed, leased) is never undone: migrateClean.lua skips it.
      const onB = ((await pipe.exec()) ?? []).map(([, v]) => v !== null && v !== 'moved');
      const copied = page.filter((_, i) => onB[i]);
      // Late arrivals: B's job rows are live (they count the tasks moved before), so each
      // undone copy's count is taken back instead of the rows being deleted.
      if (copied.length > 0)
        await this.tombstone(this.to, this.row.from, copied, this.frozenKeyOn(this.to), late);
      if (late) await this.restoreJobsOnA(page);
    }
    await this.o.redis.del(this.to.k.staged(this.row.tenant));
    const a = this.from.k;
    for (;;) {
      const left = Number(
        await migrateScripts.run(
          this.o.redis,
          'migrateUnfreeze',
          [
            a.runnable(),
            a.delayed(),
            this.frozenKey,
            a.doorbell(),
            cascadeKey(this.from),
            a.stats(),
          ],
          [a.prefixes()[0] as string, 500],
        ),
      );
      if (left === 0) return;
    }
  }

  /**
   * Late arrivals left on A: a job row the clean step deleted on A (the job's earlier tasks
   * moved) is written again with what these rows count in it (as their submits counted them),
   * so their completion on A ends it there. A job row A still has already counts them.
   */
  private async restoreJobsOnA(page: readonly Found[]): Promise<void> {
    const byJob = new Map<string, Found[]>();
    for (const f of page) {
      const job = decodeAttrs(f.row['attrs'] as string).job;
      if (job && job !== f.id) byJob.set(job, [...(byJob.get(job) ?? []), f]);
    }
    for (const [job, rows] of byJob) {
      const key = this.from.k.job(job);
      if ((await this.o.redis.exists(key)) === 1) continue;
      const onB = await this.o.redis.hmget(this.to.k.job(job), 'submitted_at');
      const submitted = Math.min(
        ...rows.map((f) => decodeAttrs(f.row['attrs'] as string).submitted_at),
      );
      const open = rows.filter((f) => !ENDED_STATES.has(f.row['state'] ?? ''));
      const work = open.reduce(
        (n, f) => n + (decodeAttrs(f.row['attrs'] as string).estimate_ms ?? 0),
        0,
      );
      await this.o.redis.hset(key, {
        id: job,
        tenant: this.row.tenant,
        submitted_at: onB[0] ?? submitted,
        total: rows.length,
        remaining: open.length,
        remaining_work_ms: work,
        dead: rows.filter((f) => FAILED.has(f.row['state'] ?? '')).length,
        _v: 1,
      });
    }
  }

  private frozenKeyOn(s: SchedShard): string {
    return this.keys.key(s.k.family, 'migrating', this.row.tenant);
  }

  private async copyPage(
    all: Found[],
    late: boolean,
  ): Promise<{ blocked: boolean; written: number; refused?: Blocker }> {
    const page = all.filter((f) => !inPlay(f));
    if (page.length < all.length) return { blocked: true, written: 0 };
    const a = this.from.k;
    const pipe = this.o.redis.pipeline();
    for (const { id } of page) {
      pipe.zscore(this.frozenKey, `r|${id}`);
      pipe.zscore(this.frozenKey, `d|${id}`);
      pipe.zscore(a.done(), id);
      pipe.zscore(a.dead(), id);
      pipe.smembers(a.children(id));
      pipe.hgetall(a.deadRow(id));
      pipe.zscore(this.frozenKey, `c|${id}`);
    }
    const res = ((await pipe.exec()) ?? []).map(([, v]) => v);
    const items = page.map(({ id, row }, i) => {
      const [r, d, done, dead, children, deadRow, cascade] = res.slice(i * 7, i * 7 + 7) as [
        string | null,
        string | null,
        string | null,
        string | null,
        string[],
        Record<string, string>,
        string | null,
      ];
      const [index, score] =
        r !== null
          ? ['r', r]
          : d !== null
            ? ['d', d]
            : done !== null
              ? ['done', done]
              : dead !== null
                ? ['dead', dead]
                : ['', '0'];
      const attrs = decodeAttrs(row['attrs'] as string);
      const state = row['state'] ?? '';
      return {
        id,
        row,
        index,
        score: Number(score),
        children,
        dead: Object.entries(deadRow).flat(),
        cascade: cascade !== null,
        // What the task counts for in its job's row (a late arrival's, on B: migrateCopy.lua).
        job: attrs.job === id ? '' : attrs.job,
        ended: ENDED_STATES.has(state),
        failed: FAILED.has(state),
        est: attrs.estimate_ms ?? 0,
      };
    });
    // Edges to other tenants' tasks, which would break by moving. A child that has not
    // finished: refused (frozen here, its parent would keep it waiting for ever).
    const mine = new Set(page.map((p) => p.id));
    const refused = await this.openForeignChild(
      items.map((it) => [it.id, it.children.filter((c) => !mine.has(c))]),
    );
    if (refused) return { blocked: true, written: 0, refused };
    // A parent that has not finished, or failed with its cascade not at the task yet: the task
    // waits, and is copied as that parent's end left it.
    const foreign = new Map<string, string[]>(); // task -> its parents on other pages
    for (const it of items) {
      const ps = (it.row['parents'] ?? '').split(',').filter((p) => p && !mine.has(p));
      if (ps.length > 0) foreign.set(it.id, ps);
    }
    if (foreign.size > 0) {
      const ids = [...new Set([...foreign.values()].flat())];
      const lp = this.o.redis.pipeline();
      for (const id of ids) lp.hmget(a.task(id), 'attrs', 'state');
      const states = ((await lp.exec()) ?? []).map(([, v]) => v as [string | null, string | null]);
      const parent = new Map(ids.map((id, i) => [id, states[i] ?? [null, null]]));
      for (const it of items) {
        for (const p of foreign.get(it.id) ?? []) {
          const [attrs, state] = parent.get(p) ?? [null, null];
          if (attrs === null || state === 'moved') continue; // gone, or already moved
          if (decodeAttrs(attrs).tenant === this.row.tenant) continue; // ours: moves too
          if (!ENDED_STATES.has(state ?? '')) return { blocked: true, written: 0 };
          if (state !== 'done' && it.row['state'] === 'pending')
            return { blocked: true, written: 0 };
        }
      }
      // Read after the parents: a parent that finished after the row was read (it was read
      // before this page) changed the row, which is then read again by the next round.
      const rp = this.o.redis.pipeline();
      for (const id of foreign.keys()) rp.hmget(a.task(id), 'state', 'pending');
      const now = ((await rp.exec()) ?? []).map(([, v]) => v as (string | null)[]);
      const changed = [...foreign.keys()].some((id, i) => {
        const row = page.find((f) => f.id === id)?.row ?? {};
        const [state, pending] = now[i] ?? [];
        return state !== (row['state'] ?? null) || pending !== (row['pending'] ?? null);
      });
      if (changed) return { blocked: true, written: 0 };
    }
    const jobIds = jobsOf(page);
    const jp = this.o.redis.pipeline();
    for (const j of jobIds) jp.hgetall(a.job(j)).pttl(a.job(j));
    const jr = (await jp.exec()) ?? [];
    // A finished job's row expires (its time to live goes with it: copied without, it stayed
    // on the new shard for ever, its set of tasks too).
    const jobs = jobIds.map((id, i) => ({
      id,
      row: Object.entries(jr[2 * i]?.[1] as Record<string, string>).flat(),
      ttlMs: Number(jr[2 * i + 1]?.[1] ?? -1),
    }));
    const b = this.to.k;
    const [written] = (await migrateScripts.run(
      this.o.redis,
      'migrateCopy',
      [
        b.runnable(),
        b.delayed(),
        b.done(),
        b.dead(),
        b.idem(),
        b.doorbell(),
        b.staged(this.row.tenant),
      ],
      [
        ...this.prefixes(this.to),
        JSON.stringify(items.map((it) => ({ ...it, row: Object.entries(it.row).flat() }))),
        JSON.stringify(jobs),
        late ? '1' : '0',
        this.row.thawedAt ?? 0,
        Date.now(),
      ],
    )) as [number, number];
    return { blocked: false, written };
  }

  private prefixes(s: SchedShard): string[] {
    const p = s.k.prefixes();
    // task row, children set, job row, dead-letter row (PREFIX_NAMES order in keys.ts)
    return [p[0], p[1], p[2], p[7]] as string[];
  }

  /** Turns every copied row on A into a tombstone. */
  private async cleanAll(): Promise<void> {
    for await (const page of this.tenantRows()) await this.cleanPage(page);
  }

  private async cleanPage(all: Found[]): Promise<void> {
    // A row in play, or one B lacks (a late arrival), is left for the sweep to move. A
    // tombstone on B (state 'moved', left by an earlier move of the tenant off B) is not the
    // row: taking it for one would tombstone the only live copy (a move back within 24 h).
    const candidates = all.filter((f) => !inPlay(f));
    const pipe = this.o.redis.pipeline();
    for (const f of candidates) pipe.hget(this.to.k.task(f.id), 'state');
    const onB = ((await pipe.exec()) ?? []).map(([, v]) => v !== null && v !== 'moved');
    const page = candidates.filter((_, i) => onB[i]);
    if (page.length > 0) await this.tombstone(this.from, this.row.to, page, this.frozenKey);
  }

  /** Turns rows of the tenant on shard `s` into tombstones naming the shard they live on. */
  private async tombstone(
    s: SchedShard,
    movedTo: string,
    page: Found[],
    frozen: string,
    undoLate = false,
  ): Promise<void> {
    const k = s.k;
    await migrateScripts.run(
      this.o.redis,
      'migrateClean',
      [
        k.runnable(),
        k.delayed(),
        k.done(),
        k.dead(),
        frozen,
        k.staged(this.row.tenant),
        k.idem(),
        forgetKey(this.keys, s),
      ],
      [
        ...this.prefixes(s),
        movedTo,
        this.o.tombstoneTtlMs ?? 24 * 3_600_000,
        Date.now(),
        undoLate ? 'undo' : 'clean',
        page.length,
        ...page.map((p) => p.id),
        ...(undoLate ? [] : jobsOf(page)),
      ],
    );
  }

  /**
   * After the switch: late arrivals on A (a router that had not seen the change) move too.
   * Until `sweepMs` after the switch, and at least one look: a migrator that resumed the move
   * later, or whose clean step outlasted the window, looked no more, and a child a stale router
   * put on A before the clean step stayed there, pending for ever behind its moved parent.
   */
  private async sweep(): Promise<void> {
    const end = (this.row.switchedAt ?? Date.now()) + (this.o.sweepMs ?? 6_000);
    let looked = false;
    while (!looked || Date.now() < end) {
      looked = true;
      this.assertLock();
      // A look is a SCAN of A's primary: a few per second, not every poll.
      await sleep(this.o.sweepEveryMs ?? 250);
      let late = false;
      for await (const _ of this.tenantRows()) {
        late = true;
        break; // one row is enough to know: the passes below read them all
      }
      if (!late) continue;
      await this.freezeUntilQuiet();
      const blocker = await this.copyAll(true);
      if (blocker) {
        // Too late to refuse: the late arrivals stay on A and run there (as a router that
        // misses the change for longer than the sweep lands them).
        await this.undo(true);
        this.log.warn(
          { tenant: this.row.tenant, ...blocker },
          'late arrivals left on the old shard',
        );
        return;
      }
      await this.thawAll();
      await this.cleanAll();
    }
  }

  /**
   * Lets the tenant's copied runnable and delayed tasks run on B: the copy keeps them frozen
   * and out of B's indexes until every row of the tenant is on B, so no task of it runs there
   * while a child of it is still to be copied (its completion would update a child row B does
   * not have yet, and the child was lost); likewise a dead task's cascade goes on in B's
   * cascade list only then. Safe to repeat.
   */
  private async thawAll(): Promise<void> {
    const b = this.to.k;
    const staged = b.staged(this.row.tenant);
    const ids = await this.o.redis.hkeys(staged);
    for (let i = 0; i < ids.length; i += 500)
      await migrateScripts.run(
        this.o.redis,
        'migrateThaw',
        [b.runnable(), b.delayed(), staged, b.doorbell(), cascadeKey(this.to), b.stats()],
        [this.prefixes(this.to)[0] as string, JSON.stringify(ids.slice(i, i + 500))],
      );
  }
}
