// Decision-support queries over the scheduler's tables, as in the DBOS paper: stragglers (a
// running copy past `threshold` x the median completed duration of its stage), over- and
// under-loaded workers, usage per tenant over a time window, and counts per state. Every query
// reads a bounded number of rows.
import type { WorkerView } from '../../policies/scheduling/index.ts';
import {
  decodeAttrs,
  decodeTaskRow,
  typesOf,
  type DeadLetterRow,
  type TaskRow,
  type WorkerRow,
} from './schema.ts';
import type { SchedShard } from './shard.ts';
import { checkInteger, checkNumber } from './tasks.ts';

export interface Straggler {
  id: string;
  stage: string;
  worker: string;
  token: string;
  runningMs: number;
  medianMs: number;
  /** runningMs / medianMs (the stage median, at least 1 ms: durations are whole ms) */
  ratio: number;
  /** A speculative copy already runs. */
  speculated: boolean;
  row: TaskRow;
}

/** Runnable tasks of one type, and the live workers that run it. */
export interface TypeBacklog {
  type: string;
  /** Runnable tasks of the type among those read. */
  runnable: number;
  /** Live workers that run it (those that run every type included), and their free slots. */
  workers: number;
  freeSlots: number;
}

export interface WorkerLoad {
  id: string;
  live: boolean;
  /** The largest share in use among slots, cores, memory and GPUs. */
  utilization: number;
  usedSlots: number;
  slots: number;
  heartbeatAgeMs: number;
  /** Task types it runs; absent: every type. */
  types?: string[];
}

export interface StateCounts {
  runnable: number;
  delayed: number;
  /** Leased copies (a speculated task counts twice). */
  leases: number;
  done: number;
  /**
   * Dead-lettered, upstream_failed and cancelled tasks together: all are in the one dead index,
   * and no counter or index tells them apart (a count of dead-letter rows alone would read the whole
   * index). No `pending` count either: waiting tasks are in no index or counter (only their
   * rows' `state` says so), so counting them would scan every task row.
   */
  dead: number;
}

/** Dead-index entries deadLetters reads at most, unless told otherwise: at least this many. */
const DEAD_SCAN_MIN = 10_000;
/** Entries of the dead index read in one page at most (ids, then their rows). */
const DEAD_PAGE_MAX = 5_000;

export function median(sorted: readonly number[]): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function share(used: number, cap: number): number {
  return cap > 0 ? used / cap : 0;
}

/** The states a listing reads (`dead`: dead-letter rows; `cancelled`: see listTasks). */
export const LISTED_STATES = [
  'runnable',
  'delayed',
  'leased',
  'done',
  'dead',
  'cancelled',
] as const;
export type ListedState = (typeof LISTED_STATES)[number];
/** Index entries examined at most per listing when a filter (a tenant, `cancelled`) skips rows. */
export const TASKS_SCAN_MAX = 2_000;
/** Runnable tasks `typeBacklog` reads at most, and per pipeline. */
export const TYPES_SCAN_MAX = 10_000;
const TYPES_PAGE = 1_000;

export class SchedulerQueries {
  constructor(private readonly shard: SchedShard) {}

  private get family(): string {
    return this.shard.k.family;
  }

  /** Median of the recent completed durations of each stage (bounded samples per stage). */
  async stageMedians(
    stages: readonly string[],
  ): Promise<Map<string, { medianMs: number; samples: number }>> {
    const out = new Map<string, { medianMs: number; samples: number }>();
    if (stages.length === 0) return out;
    const pipe = this.shard.redis.pipeline();
    for (const s of stages) pipe.lrange(this.shard.k.durations(s), 0, -1);
    const res = (await pipe.exec()) ?? [];
    res.forEach(([err, list], i) => {
      if (err) throw err;
      const xs = (list as string[]).map(Number).sort((a, b) => a - b);
      out.set(stages[i] as string, { medianMs: median(xs), samples: xs.length });
    });
    return out;
  }

  /**
   * Running primary copies that have run longer than `threshold` x their stage's median, among
   * the `limit` leases that expire first. Stages with fewer than `minSamples` completions are
   * skipped: their median means little.
   */
  async stragglers(opts: {
    now: number;
    threshold: number;
    minSamples?: number;
    limit?: number;
  }): Promise<Straggler[]> {
    const members = await this.shard.redis.zrange(
      this.shard.k.leases(),
      0,
      (opts.limit ?? 1000) - 1,
    );
    const ids = [...new Set(members.map((m) => m.slice(0, m.lastIndexOf('|'))))];
    const rows = (await this.shard.tables.tasks.getMany(this.family, ids)).flatMap((r, i) =>
      r && r.row.state === 'leased' && r.row.lease ? [decodeTaskRow(ids[i] as string, r.row)] : [],
    );
    const medians = await this.stageMedians([...new Set(rows.map((r) => r.stage))]);
    const out: Straggler[] = [];
    for (const row of rows) {
      const m = medians.get(row.stage);
      if (!m || m.samples < (opts.minSamples ?? 5)) continue;
      // Durations are whole milliseconds: a median of 0 means under 1 ms, and a copy that has
      // run for seconds in such a stage is a straggler all the more.
      const medianMs = Math.max(m.medianMs, 1);
      const runningMs = opts.now - (row.leased_at ?? opts.now);
      if (runningMs <= opts.threshold * medianMs) continue;
      out.push({
        id: row.id,
        stage: row.stage,
        worker: row.worker ?? '',
        token: row.lease ?? '',
        runningMs,
        medianMs,
        ratio: runningMs / medianMs,
        speculated: Boolean(row.spec_lease),
        row,
      });
    }
    return out.sort((a, b) => b.ratio - a.ratio);
  }

  /**
   * Ids of leased tasks, the soonest lease expiry first: `limit` of them while that many run.
   * The leases index holds one member per running copy (`<id>|<token>`), so a speculated task
   * is there twice, and reading `limit` members named fewer tasks while more ran. Reads from
   * the index until it has `limit` ids or reaches its end, at most `scanMax` members; each
   * read asks for two members per id still missing (a task runs at most two copies), so one
   * read is enough unless leases change in between. `truncated`: stopped at `scanMax` first.
   */
  async leasedTaskIds(
    limit: number,
    scanMax = 4 * limit,
  ): Promise<{ ids: string[]; truncated: boolean }> {
    const ids = new Set<string>();
    let from = 0;
    while (ids.size < limit && from < scanMax) {
      const want = Math.min(2 * (limit - ids.size), scanMax - from);
      const members = await this.shard.redis.zrange(this.shard.k.leases(), from, from + want - 1);
      for (const m of members) {
        ids.add(m.slice(0, m.lastIndexOf('|')));
        if (ids.size === limit) break;
      }
      if (members.length < want) return { ids: [...ids], truncated: false };
      from += want;
    }
    return { ids: [...ids], truncated: ids.size < limit };
  }

  /** Every registered worker's row (bounded), live ones first. */
  async workerRows(limit = 1000): Promise<WorkerRow[]> {
    const ids = await this.shard.tables.workers.range(this.family, 'deadline', {
      limit,
      rev: true,
    });
    return (await this.shard.tables.workers.getMany(this.family, ids)).flatMap((r) =>
      r ? [r.row] : [],
    );
  }

  async workerLoads(now: number, limit = 1000): Promise<WorkerLoad[]> {
    return (await this.workerRows(limit)).map((w) => {
      const types = typesOf(w.types);
      return {
        id: w.id,
        live: w.heartbeat_deadline >= now,
        utilization: Math.max(
          share(w.used_slots, w.slots),
          share(w.used_cpu_m, w.cpu_m),
          share(w.used_mem_mb, w.mem_mb),
          share(w.used_gpu_m, w.gpu * 1000),
        ),
        usedSlots: w.used_slots,
        slots: w.slots,
        heartbeatAgeMs: now - w.heartbeat_at,
        ...(types ? { types } : {}),
      };
    });
  }

  /**
   * Live workers at or above `high` utilization, and at or below `low`. A worker with no slots
   * (draining: it takes no new work) is in neither list: it is not spare capacity however idle,
   * and its load only falls.
   */
  async loadedWorkers(opts: {
    now: number;
    high?: number;
    low?: number;
  }): Promise<{ overloaded: WorkerLoad[]; underloaded: WorkerLoad[] }> {
    const live = (await this.workerLoads(opts.now)).filter((w) => w.live && w.slots > 0);
    const high = opts.high ?? 0.9;
    const low = opts.low ?? 0.25;
    return {
      overloaded: live
        .filter((w) => w.utilization >= high)
        .sort((a, b) => b.utilization - a.utilization),
      underloaded: live
        .filter((w) => w.utilization <= low)
        .sort((a, b) => a.utilization - b.utilization),
    };
  }

  /**
   * The runnable backlog by task type, next to the live workers that run each type: a type
   * with tasks and no worker waits for one (typed routing never fails a task for it). Reads
   * the oldest `scanMax` runnable tasks (`truncated` when more wait), only `tenant`'s when
   * given; types by most tasks first.
   */
  async typeBacklog(
    now: number,
    o: { tenant?: string | null; scanMax?: number } = {},
  ): Promise<{ types: TypeBacklog[]; scanned: number; truncated: boolean }> {
    const scanMax = o.scanMax ?? TYPES_SCAN_MAX;
    const ids = await this.taskIds('runnable', scanMax + 1);
    const truncated = ids.length > scanMax;
    const read = ids.slice(0, scanMax);
    const counts = new Map<string, number>();
    for (let i = 0; i < read.length; i += TYPES_PAGE) {
      const page = read.slice(i, i + TYPES_PAGE);
      const attrs = await this.fieldOf(
        page.map((id) => this.shard.k.task(id)),
        'attrs',
      );
      for (const a of attrs) {
        if (a === null) continue;
        const d = decodeAttrs(a);
        if (o.tenant && d.tenant !== o.tenant) continue;
        counts.set(d.type, (counts.get(d.type) ?? 0) + 1);
      }
    }
    const live = (await this.workerRows()).filter((w) => w.heartbeat_deadline >= now);
    const types = [...counts].map(([type, runnable]) => {
      const runs = live.filter((w) => typesOf(w.types)?.includes(type) ?? true);
      return {
        type,
        runnable,
        workers: runs.length,
        freeSlots: runs.reduce((s, w) => s + Math.max(0, w.slots - w.used_slots), 0),
      };
    });
    types.sort((a, b) => b.runnable - a.runnable || (a.type < b.type ? -1 : 1));
    return { types, scanned: read.length, truncated };
  }

  /** Live workers with a free slot, as the policy sees them, with their free slots. */
  async freeWorkers(now: number): Promise<{ view: WorkerView; freeSlots: number }[]> {
    return (await this.workerRows()).flatMap((w) => {
      if (w.heartbeat_deadline < now || w.used_slots >= w.slots) return [];
      const devices = w.gpu_free ? w.gpu_free.split(',').map(Number) : [];
      const view: WorkerView = {
        id: w.id,
        capacity: { cpu: w.cpu_m / 1000, memMb: w.mem_mb, gpu: w.gpu },
        free: {
          cpu: (w.cpu_m - w.used_cpu_m) / 1000,
          memMb: w.mem_mb - w.used_mem_mb,
          gpu: devices.reduce((s, d) => s + d, 0) / 1000,
        },
      };
      if (devices.length > 0) view.gpuFreeMilli = devices;
      if (w.gpu_model) view.gpuModel = w.gpu_model;
      const types = typesOf(w.types);
      if (types) view.types = types;
      return [{ view, freeSlots: w.slots - w.used_slots }];
    });
  }

  /**
   * Core-ms of completed work per tenant in [fromMs, toMs), from the usage buckets the
   * completions write (`bucketMs` wide, the service's setting); at most 10,000 buckets. Whole
   * buckets: the ones holding fromMs and toMs count in full, so the window is rounded out to
   * bucket edges (a completion up to a bucket after toMs is in it).
   */
  async tenantUsage(fromMs: number, toMs: number, bucketMs: number): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const m of await this.tenantUsageByBucket(fromMs, toMs, bucketMs))
      for (const [tenant, v] of m) out.set(tenant, (out.get(tenant) ?? 0) + v);
    return out;
  }

  /**
   * Usage per tenant in each bucket of [fromMs, toMs), oldest first: one pipeline. `bucketMs`
   * must be a positive integer (the width the completions write) and the bounds finite, else a
   * SchedulerInputError. An empty window (fromMs >= toMs) reads nothing: the placement loop's
   * shadow report asks for one while its first whole bucket has not begun.
   */
  async tenantUsageByBucket(
    fromMs: number,
    toMs: number,
    bucketMs: number,
  ): Promise<Map<string, number>[]> {
    // Unchecked, 0 read nothing (NaN bucket starts), a negative width read 10,000 buckets and a
    // fraction read keys that are never written.
    checkInteger(bucketMs, 'bucketMs', 'tenant usage', 1, Number.MAX_SAFE_INTEGER);
    checkNumber(fromMs, 'fromMs', 'tenant usage', -Infinity, Infinity);
    checkNumber(toMs, 'toMs', 'tenant usage', -Infinity, Infinity);
    const first = fromMs - (fromMs % bucketMs);
    const buckets: number[] = [];
    for (let b = first; b < toMs && buckets.length < 10_000; b += bucketMs) buckets.push(b);
    if (buckets.length === 0) return [];
    const pipe = this.shard.redis.pipeline();
    for (const b of buckets) pipe.hgetall(this.shard.k.usage(b));
    return ((await pipe.exec()) ?? []).map(([err, h]) => {
      if (err) throw err;
      return new Map(Object.entries(h as Record<string, string>).map(([t, v]) => [t, Number(v)]));
    });
  }

  async counts(): Promise<StateCounts> {
    const k = this.shard.k;
    const res =
      (await this.shard.redis
        .pipeline()
        .zcard(k.runnable())
        .zcard(k.delayed())
        .zcard(k.leases())
        .zcard(k.done())
        .zcard(k.dead())
        .exec()) ?? [];
    const v = res.map(([err, n]) => {
      if (err) throw err;
      return Number(n);
    });
    return {
      runnable: v[0] ?? 0,
      delayed: v[1] ?? 0,
      leases: v[2] ?? 0,
      done: v[3] ?? 0,
      dead: v[4] ?? 0,
    };
  }

  /** Completions ignored because the sender no longer held the lease. */
  async staleCompletions(): Promise<number> {
    return Number((await this.shard.redis.hget(this.shard.k.stats(), 'stale_completions')) ?? 0);
  }

  /** The `limit` newest dead letters, newest first (see deadLetterRows for the bound). */
  async deadLetters(limit = 100, scanMax?: number): Promise<DeadLetterRow[]> {
    return (await this.deadLetterRows(limit, scanMax)).rows;
  }

  /**
   * The `limit` newest dead letters, newest first. The dead index also holds upstream_failed
   * tasks, which have no dead-letter row (one dead task may have thousands), so reading
   * `limit` entries found fewer letters than there were: reads pages of the index (the first
   * `limit` entries, then twice as many each time) until it has `limit` rows or reaches its
   * end, at most `scanMax` entries. An id read twice (entries added meanwhile move the rest
   * down) counts once. `truncated`: stopped at `scanMax` first.
   */
  async deadLetterRows(
    limit: number,
    scanMax = Math.max(DEAD_SCAN_MIN, 20 * limit),
  ): Promise<{ rows: DeadLetterRow[]; truncated: boolean }> {
    const rows: DeadLetterRow[] = [];
    const seen = new Set<string>();
    let offset = 0;
    let page = Math.min(Math.max(limit, 1), DEAD_PAGE_MAX);
    while (rows.length < limit && offset < scanMax) {
      const want = Math.min(page, scanMax - offset);
      const ids = await this.shard.tables.dead.range(this.family, 'dead_at', {
        rev: true,
        offset,
        limit: want,
      });
      const fresh = ids.filter((id) => !seen.has(id));
      for (const id of fresh) seen.add(id);
      for (const r of await this.shard.tables.dead.getMany(this.family, fresh)) {
        if (r) rows.push(r.row);
        if (rows.length === limit) break;
      }
      if (ids.length < want) return { rows, truncated: false };
      offset += want;
      page = Math.min(2 * page, DEAD_PAGE_MAX);
    }
    return { rows, truncated: rows.length < limit };
  }

  /**
   * Task ids in a state's index, in its natural order (at most `n`): runnable and delayed by
   * ready time, leased by lease expiry, done and dead newest first. Cancelled tasks are those of
   * the dead index's newest TASKS_SCAN_MAX entries (shared with dead letters and upstream_failed
   * tasks) whose row says so.
   */
  async taskIds(state: ListedState, n: number): Promise<string[]> {
    const fam = this.family;
    switch (state) {
      case 'runnable':
      case 'delayed':
        return this.shard.tables.tasks.range(fam, state, { limit: n });
      case 'done':
        return this.shard.tables.tasks.range(fam, 'done', { rev: true, limit: n });
      case 'dead':
        return this.shard.tables.dead.range(fam, 'dead_at', { rev: true, limit: n });
      case 'leased':
        return (await this.leasedTaskIds(n)).ids;
      case 'cancelled': {
        const list = await this.taskIds('dead', TASKS_SCAN_MAX);
        const states = await this.fieldOf(
          list.map((id) => this.shard.k.task(id)),
          'state',
        );
        return list.filter((_, i) => states[i] === 'cancelled').slice(0, n);
      }
    }
  }

  /** One field of each key, in one pipelined read. */
  private async fieldOf(keys: readonly string[], field: string): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    const pipe = this.shard.redis.pipeline();
    for (const k of keys) pipe.hget(k, field);
    return ((await pipe.exec()) ?? []).map(([err, v]) => {
      if (err) throw err;
      return typeof v === 'string' ? v : null;
    });
  }

  /**
   * The tenant of each id: the task row's, or for the dead index the dead-letter row's, else
   * (upstream_failed and cancelled tasks have none) the task row's. One field per row.
   */
  async tenantsOf(state: ListedState, ids: readonly string[]): Promise<(string | null)[]> {
    const attrs = await this.fieldOf(
      ids.map((id) => this.shard.k.task(id)),
      'attrs',
    );
    const letters =
      state === 'dead'
        ? await this.fieldOf(
            ids.map((id) => this.shard.k.deadRow(id)),
            'tenant',
          )
        : [];
    return ids.map((_, i) => {
      const a = attrs[i];
      return letters[i] ?? (a ? decodeAttrs(a).tenant : null);
    });
  }

  /**
   * Up to `limit` tasks in `state` (dead: dead-letter rows), of `tenant` when given (null: any);
   * with a tenant at most TASKS_SCAN_MAX index entries are examined. `truncated`: a bound
   * stopped the scan before `limit` were found.
   */
  async listTasks(
    state: ListedState,
    o: { tenant: string | null; limit: number },
  ): Promise<{ tasks: (TaskRow | DeadLetterRow)[]; truncated: boolean }> {
    const { tenant, limit } = o;
    const n = tenant === null ? limit : TASKS_SCAN_MAX;
    if (state === 'dead') {
      // With a tenant, the scan is bounded as for the other states (the index also holds
      // upstream_failed and cancelled tasks, which have no dead-letter row).
      const dead = await this.deadLetterRows(n, tenant === null ? undefined : TASKS_SCAN_MAX);
      return {
        tasks: dead.rows.filter((r) => tenant === null || r.tenant === tenant).slice(0, limit),
        truncated: dead.truncated || (tenant !== null && dead.rows.length >= n),
      };
    }
    const list = await this.taskIds(state, n);
    // The tenant of each entry is one field; whole rows are read for the page only.
    const owners = tenant === null ? [] : await this.tenantsOf(state, list);
    const page = (tenant === null ? list : list.filter((_, i) => owners[i] === tenant)).slice(
      0,
      limit,
    );
    const rows = await this.shard.tables.tasks.getMany(this.family, page);
    const tasks = rows.flatMap((r, i) => (r ? [decodeTaskRow(page[i] as string, r.row)] : []));
    const truncated =
      state === 'cancelled'
        ? tasks.length < limit &&
          (await this.shard.redis.zcard(this.shard.k.dead())) > TASKS_SCAN_MAX
        : tenant !== null && list.length >= TASKS_SCAN_MAX;
    return { tasks, truncated };
  }

  async job(id: string) {
    return (await this.shard.tables.jobs.get(this.family, id))?.row ?? null;
  }
}
