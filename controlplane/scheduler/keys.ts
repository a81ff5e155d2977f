// Every key of one scheduler shard, built on Keys.key(). A shard is one hash-tag family
// `{sched:<shard>}`, so every multi-key step of the scheduler stays in one Redis Cluster slot.
// Scripts also reach rows by id (a task's children, the worker a task runs on), so they get
// key *prefixes* from here (`prefixes()`) and append an id, as BullMQ's scripts do; a test
// checks that prefix + id is exactly the key built here.
import { assertKeyPart, type Keys } from '../store/keys.ts';

export const TASKS_TABLE = 'tasks';
export const WORKERS_TABLE = 'workers';
export const JOBS_TABLE = 'jobs';
export const DEAD_TABLE = 'dead_letters';

/** The fixed keys every scheduler script takes, in KEYS order (see scripts/includes/shard.lua). */
export const SHARD_KEY_NAMES = [
  'runnable',
  'delayed',
  'leases',
  'done',
  'dead',
  'workers',
  'idem',
  'tenant_running',
  'tenant_served',
  'stats',
  'doorbell',
  'seq',
] as const;

/** The id prefixes scripts append ids to, in ARGV order (see scripts/includes/shard.lua). */
export const PREFIX_NAMES = [
  'task',
  'children',
  'job',
  'worker',
  'inbox',
  'durations',
  'usage',
  'deadRow',
] as const;

const PLACEHOLDER = 'x';

export class SchedKeys {
  readonly family: string;

  constructor(
    readonly keys: Keys,
    readonly shard = '0',
  ) {
    assertKeyPart('scheduler shard', shard);
    this.family = `sched:${shard}`;
  }

  private k(...parts: string[]): string {
    return this.keys.key(this.family, ...parts);
  }

  task(id: string): string {
    return this.keys.row(this.family, TASKS_TABLE, id);
  }
  worker(id: string): string {
    return this.keys.row(this.family, WORKERS_TABLE, id);
  }
  job(id: string): string {
    return this.keys.row(this.family, JOBS_TABLE, id);
  }
  /**
   * The ids of a job's tasks (a job of several tasks; one that is its own task has none), kept
   * and expired with its row; scripts append the same suffix to the row's key (JOB_TASKS in
   * scripts/includes/shard.lua, and the migration scripts).
   */
  jobTasks(id: string): string {
    return `${this.job(id)}#tasks`;
  }
  deadRow(id: string): string {
    return this.keys.row(this.family, DEAD_TABLE, id);
  }
  children(id: string): string {
    return this.k('children', id);
  }
  inbox(workerId: string): string {
    return this.k('inbox', workerId);
  }
  /**
   * The copies a worker is told to stop, apart from its inbox so that a worker with every slot
   * busy (it reads its inbox only with a free one) still hears of them at once. '!' is in no
   * worker id.
   */
  stops(workerId: string): string {
    return `${this.inbox(workerId)}!`;
  }
  /** Recent completed durations of one stage (a bounded list), for straggler medians. */
  durations(stage: string): string {
    return this.k('durations', stage);
  }
  /** Task-ms per tenant completed in one time bucket starting at `bucketStartMs`. */
  usage(bucketStartMs: number): string {
    return this.k('usage', String(bucketStartMs));
  }
  private usagePart(part: string): string {
    return this.k('usage', part);
  }

  /** Runnable tasks by ready time (a task-table index). */
  runnable(): string {
    return this.keys.index(this.family, TASKS_TABLE, 'runnable');
  }
  /** Tasks waiting out a retry backoff, by the time they become runnable again. */
  delayed(): string {
    return this.keys.index(this.family, TASKS_TABLE, 'delayed');
  }
  /** Completed tasks by finish time. */
  done(): string {
    return this.keys.index(this.family, TASKS_TABLE, 'done');
  }
  /** Dead-lettered tasks by the time they died (a dead-letter-table index). */
  dead(): string {
    return this.keys.index(this.family, DEAD_TABLE, 'dead_at');
  }
  /** Live workers by the time their heartbeat runs out. */
  workers(): string {
    return this.keys.index(this.family, WORKERS_TABLE, 'deadline');
  }
  /** Every lease (`<task id>|<token>`, two for a task with a speculative copy) by expiry. */
  leases(): string {
    return this.k('leases');
  }
  /** Idempotency key -> task id. */
  idem(): string {
    return this.k('idem');
  }
  tenantRunning(): string {
    return this.k('tenant_running');
  }
  tenantServed(): string {
    return this.k('tenant_served');
  }
  /** Shard counters that have no row of their own (duplicate completions, ...). */
  stats(): string {
    return this.k('stats');
  }
  /** A list the dispatcher blocks on; anything that makes work dispatchable pushes to it. */
  doorbell(): string {
    return this.k('doorbell');
  }
  /**
   * A moving tenant's copied runnable and delayed tasks on its new shard, kept frozen and out
   * of the indexes until every row of the tenant is copied (migration.ts thaws them): task id
   * -> '<index> <score>' (index 'r' runnable, 'd' delayed).
   */
  staged(tenant: string): string {
    return this.k('staged', tenant);
  }
  /**
   * Tenants moving off this shard (migration.ts marks one from its freeze until the move is
   * done or refused): a submit here refuses another tenant's task naming an open task of
   * theirs as a parent (its edge would stay here, behind the move).
   */
  movingTenants(): string {
    return this.k('moving_tenants');
  }
  /** Lease token counter. */
  seq(): string {
    return this.k('seq');
  }

  /** The fixed KEYS of every scheduler script. */
  shardKeys(): string[] {
    return [
      this.runnable(),
      this.delayed(),
      this.leases(),
      this.done(),
      this.dead(),
      this.workers(),
      this.idem(),
      this.tenantRunning(),
      this.tenantServed(),
      this.stats(),
      this.doorbell(),
      this.seq(),
    ];
  }

  /** Prefixes that scripts append an id to, in PREFIX_NAMES order. */
  prefixes(): string[] {
    const strip = (key: string): string => key.slice(0, -PLACEHOLDER.length);
    return [
      strip(this.task(PLACEHOLDER)),
      strip(this.children(PLACEHOLDER)),
      strip(this.job(PLACEHOLDER)),
      strip(this.worker(PLACEHOLDER)),
      strip(this.inbox(PLACEHOLDER)),
      strip(this.durations(PLACEHOLDER)),
      strip(this.usagePart(PLACEHOLDER)),
      strip(this.deadRow(PLACEHOLDER)),
    ];
  }
}
