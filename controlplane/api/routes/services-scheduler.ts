// The scheduler's state, read from its tables (no scheduler instance needed): tasks by state,
// one task, counts, workers and their load, stragglers, usage per tenant over a window.
// Tenant views (DBOS-style): a tenant-scoped token sees only its tenant's tasks, stragglers,
// counts and usage; workers are shared infrastructure without a tenant and are visible to
// every token (like knobs). An unscoped token may narrow tasks with ?tenant=.
import type { FastifyInstance } from 'fastify';
import {
  LISTED_STATES,
  SchedulerQueries,
  TASKS_SCAN_MAX,
  TYPES_SCAN_MAX,
  type ListedState,
} from '../../scheduler/queries.ts';
import { SchedulerClient } from '../../scheduler/client.ts';
import { SchedShard } from '../../scheduler/shard.ts';
import { UnknownTaskError } from '../../scheduler/errors.ts';
import { ValidationError } from '../../store/errors.ts';
import type { ApiDeps, RequestAuth } from '../context.ts';
import { canSee } from '../context.ts';
import { errors, headers, limit, reason } from '../schemas.ts';
import { closed, pickShard, shardChoice, timeWindow, windowParams } from './params.ts';
import type { ServiceViewOptions } from './services-options.ts';

const TAGS = ['services: scheduler'];
/** The states counted per tenant (cancelled tasks have no index of their own: `dead` has them). */
const COUNTED_STATES = LISTED_STATES.filter((s) => s !== 'cancelled');
const HOUR_MS = 3_600_000;
/** The scheduler's tenantUsage reads at most this many buckets; a longer window is refused. */
const USAGE_BUCKETS_MAX = 10_000;

const anyObject = { type: 'object', additionalProperties: true } as const;
const taskIdParams = closed(
  { id: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^{}\\s]+$' } },
  ['id'],
);
const tenantName = {
  type: 'string',
  minLength: 1,
  maxLength: 100,
  pattern: '^[A-Za-z0-9._-]+$',
} as const;

/** The tenant a request may see: its token's, or (unscoped) the one it asks for, or all. */
function tenantView(auth: RequestAuth, asked?: string): string | null {
  return auth.tenant ?? asked ?? null;
}

export function schedulerRoutes(
  app: FastifyInstance,
  deps: ApiDeps,
  opts: Required<Pick<ServiceViewOptions, 'schedulerShards' | 'usageBucketMs'>>,
): void {
  const { redis, keys, knobs, clock } = deps;
  const shards = new Map<
    string,
    { shard: SchedShard; queries: SchedulerQueries; client: SchedulerClient }
  >();
  const open = (name?: string) => {
    const id = pickShard(opts.schedulerShards, name);
    let s = shards.get(id);
    if (!s) {
      const shard = new SchedShard(redis, keys, id);
      s = { shard, queries: new SchedulerQueries(shard), client: new SchedulerClient({ shard }) };
      shards.set(id, s);
    }
    return s;
  };
  const shardParam = shardChoice('scheduler shard', opts.schedulerShards);
  const shardQuery = closed({ shard: shardParam });

  app.get<{ Querystring: { shard?: string } }>(
    '/api/services/scheduler',
    {
      schema: {
        tags: TAGS,
        summary: 'Tasks per state (a tenant token: its own, counted over the newest indexed)',
        headers,
        querystring: shardQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              shard: { type: 'string' },
              tenant: { type: ['string', 'null'] },
              counts: { type: 'object', additionalProperties: { type: 'integer' } },
              truncated: { type: 'boolean' },
              liveWorkers: { type: 'integer' },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const { shard, queries } = open(request.query.shard);
      const tenant = request.auth.tenant;
      const loads = await queries.workerLoads(clock.now());
      const liveWorkers = loads.filter((w) => w.live).length;
      if (tenant === null) {
        const c = await queries.counts();
        const counts = {
          runnable: c.runnable,
          delayed: c.delayed,
          leased: c.leases,
          done: c.done,
          dead: c.dead,
        };
        return { shard: shard.shard, tenant, counts, truncated: false, liveWorkers };
      }
      const counts: Record<string, number> = {};
      let truncated = false;
      for (const state of COUNTED_STATES) {
        const list = await queries.taskIds(state, TASKS_SCAN_MAX);
        truncated ||= list.length >= TASKS_SCAN_MAX;
        counts[state] = (await queries.tenantsOf(state, list)).filter((t) => t === tenant).length;
      }
      return { shard: shard.shard, tenant, counts, truncated, liveWorkers };
    },
  );

  app.get<{ Querystring: { shard?: string; state: ListedState; tenant?: string; limit: number } }>(
    '/api/services/scheduler/tasks',
    {
      schema: {
        tags: TAGS,
        summary:
          'Tasks in a state: runnable and delayed by ready time, leased by lease expiry, done and dead newest first',
        description: `A tenant-scoped token sees only its tenant's tasks (\`tenant\` is then ignored). With a tenant filter at most ${TASKS_SCAN_MAX} index entries are examined (\`truncated\` says the scan stopped there). Dead tasks are rows of the dead-letter table. Cancelled tasks, newest first, are found among the ${TASKS_SCAN_MAX} newest entries of the dead index (shared with dead letters and upstream_failed tasks; \`truncated\` when it holds more).`,
        headers,
        querystring: closed(
          {
            shard: shardParam,
            state: { type: 'string', enum: [...LISTED_STATES] },
            tenant: tenantName,
            limit: limit(500, 100),
          },
          ['state'],
        ),
        response: {
          200: {
            type: 'object',
            properties: {
              state: { type: 'string' },
              tenant: { type: ['string', 'null'] },
              tasks: { type: 'array', items: anyObject },
              truncated: { type: 'boolean' },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { queries } = open(q.shard);
      const tenant = tenantView(request.auth, q.tenant);
      const { tasks, truncated } = await queries.listTasks(q.state, { tenant, limit: q.limit });
      return { state: q.state, tenant, tasks, truncated };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { shard?: string } }>(
    '/api/services/scheduler/tasks/:id',
    {
      schema: {
        tags: TAGS,
        summary: "One task's row (another tenant's task is reported missing)",
        headers,
        params: taskIdParams,
        querystring: shardQuery,
        response: { 200: anyObject, ...errors(404) },
      },
    },
    async (request) => {
      const { shard, client } = open(request.query.shard);
      const row = await client.get(request.params.id);
      if (!row || !canSee(request.auth, row.tenant))
        throw new UnknownTaskError(
          `task ${request.params.id} does not exist in shard ${shard.shard}`,
          {
            field: 'id',
            rule: 'exists',
          },
        );
      return row;
    },
  );

  app.post<{ Params: { id: string }; Querystring: { shard?: string }; Body: { reason: string } }>(
    '/api/services/scheduler/tasks/:id/cancel',
    {
      config: { access: 'operator' },
      schema: {
        tags: TAGS,
        summary: 'Cancel a task that has not ended',
        description:
          "Queued (pending, runnable, delayed): it leaves its queue. Running: its copies are stopped (the handler's signal aborts; a completion that still comes is ignored). The row says cancelled, cancelled_by (the token's actor) and, in error, who and why; its job counts it failed; tasks downstream become upstream_failed. A cancelled task again: changed false, nothing written. A tenant's token cancels only its tenant's tasks (another's is reported missing). 409 KNOBOS_STATE (field state, rule not_ended) for an ended task; 503 KNOBOS_SCHEDULER_TENANT_MOVING while the tenant moves between shards (retry).",
        headers,
        params: taskIdParams,
        querystring: shardQuery,
        body: closed({ reason }, ['reason']),
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              changed: { type: 'boolean' },
              dependents: {
                type: 'integer',
                description: 'tasks downstream marked upstream_failed now',
              },
              task: {
                type: ['object', 'null'],
                additionalProperties: true,
                description: 'the row now (null once retention removed it)',
              },
            },
          },
          ...errors(404, 409, 503),
        },
      },
    },
    async (request) => {
      const { shard, client } = open(request.query.shard);
      const id = request.params.id;
      const tenant = await client.tenantOf(id);
      if (tenant === null || !canSee(request.auth, tenant))
        throw new UnknownTaskError(`task ${id} does not exist in shard ${shard.shard}`, {
          field: 'id',
          rule: 'exists',
        });
      // The tenant again, checked in the same call as the cancel's own read of the row.
      const r = await client.cancel(id, {
        actor: request.auth.actor,
        reason: request.body.reason,
        tenant,
      });
      // Retention may have removed the row since (null then): the cancel happened.
      return { ...r, task: await client.get(id) };
    },
  );

  app.post<{ Params: { id: string }; Querystring: { shard?: string }; Body: { reason: string } }>(
    '/api/services/scheduler/jobs/:id/cancel',
    {
      config: { access: 'operator' },
      schema: {
        tags: TAGS,
        summary: 'Cancel every task of a job that has not ended',
        description:
          "Each of the job's tasks that has not ended is cancelled as the task route cancels it (its dependents, in this job or another, become upstream_failed). A job of one task that is its own job is named by the task's id. Tasks submitted to the job after the call read its tasks are not cancelled. A tenant's token cancels only its tenant's jobs (another's is reported missing). 404 for an unknown job; 409 KNOBOS_STATE (field job, rule indexed) for a job whose tasks are not indexed (submitted before job cancel existed: cancel its tasks one by one); 503 KNOBOS_SCHEDULER_TENANT_MOVING while the tenant moves between shards (what was cancelled stays cancelled; retry for the rest). A job is its first tenant's: tasks of another tenant submitted with its id are left alone.",
        headers,
        params: taskIdParams,
        querystring: shardQuery,
        body: closed({ reason }, ['reason']),
        response: {
          200: {
            type: 'object',
            properties: {
              job: { type: 'string' },
              cancelled: {
                type: 'array',
                items: { type: 'string' },
                description: "the job's tasks this call cancelled",
              },
              dependents: {
                type: 'integer',
                description: 'tasks downstream of those marked upstream_failed',
              },
              ended: {
                type: 'integer',
                description:
                  "the job's tasks that had ended when their turn came (or retention removed)",
              },
            },
          },
          ...errors(404, 409, 503),
        },
      },
    },
    async (request) => {
      const { shard, client } = open(request.query.shard);
      const job = request.params.id;
      const owner = await client.jobTenant(job);
      if (owner === null || !canSee(request.auth, owner.tenant))
        throw new UnknownTaskError(`job ${job} does not exist in shard ${shard.shard}`, {
          field: 'id',
          rule: 'exists',
        });
      return client.cancelJob(job, {
        actor: request.auth.actor,
        reason: request.body.reason,
        tenant: owner.tenant,
      });
    },
  );

  app.get<{ Querystring: { shard?: string; tenant?: string } }>(
    '/api/services/scheduler/types',
    {
      schema: {
        tags: TAGS,
        summary: 'The runnable backlog by task type, with the live workers that run each type',
        description: `A task is sent only to a worker that runs its type; a type with tasks and no worker (\`workers\` 0) waits for one. The oldest ${TYPES_SCAN_MAX} runnable tasks are read (\`truncated\` when more wait). A tenant-scoped token counts only its tenant's tasks (\`tenant\` is then ignored) and is not given \`scanned\`, which counts every tenant's.`,
        headers,
        querystring: closed({ shard: shardParam, tenant: tenantName }, []),
        response: {
          200: {
            type: 'object',
            properties: {
              tenant: { type: ['string', 'null'] },
              types: { type: 'array', items: anyObject },
              scanned: { type: 'integer' },
              truncated: { type: 'boolean' },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const { queries } = open(request.query.shard);
      const tenant = tenantView(request.auth, request.query.tenant);
      const { types, scanned, truncated } = await queries.typeBacklog(clock.now(), { tenant });
      // `scanned` counts every tenant's runnable tasks: a tenant's token is not told it.
      return request.auth.tenant === null
        ? { tenant, types, scanned, truncated }
        : { tenant, types, truncated };
    },
  );

  app.get<{ Querystring: { shard?: string } }>(
    '/api/services/scheduler/workers',
    {
      schema: {
        tags: TAGS,
        summary: 'Registered workers with their load (shared infrastructure: every token)',
        headers,
        querystring: shardQuery,
        response: {
          200: { type: 'object', properties: { workers: { type: 'array', items: anyObject } } },
          ...errors(),
        },
      },
    },
    async (request) => ({
      workers: await open(request.query.shard).queries.workerLoads(clock.now()),
    }),
  );

  app.get<{ Querystring: { shard?: string; high: number; low: number } }>(
    '/api/services/scheduler/workers/loaded',
    {
      schema: {
        tags: TAGS,
        summary: 'Live workers at or above `high` utilisation, and at or below `low`',
        headers,
        querystring: closed({
          shard: shardParam,
          high: { type: 'number', minimum: 0, maximum: 1, default: 0.9 },
          low: { type: 'number', minimum: 0, maximum: 1, default: 0.25 },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              overloaded: { type: 'array', items: anyObject },
              underloaded: { type: 'array', items: anyObject },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      return open(q.shard).queries.loadedWorkers({ now: clock.now(), high: q.high, low: q.low });
    },
  );

  app.get<{ Querystring: { shard?: string; threshold?: number; minSamples: number } }>(
    '/api/services/scheduler/stragglers',
    {
      schema: {
        tags: TAGS,
        summary: "Running tasks past `threshold` x their stage's median (a tenant token: its own)",
        description: 'The threshold defaults to the scheduler.straggler_threshold knob.',
        headers,
        querystring: closed({
          shard: shardParam,
          threshold: { type: 'number', minimum: 1, maximum: 1000 },
          minSamples: { type: 'integer', minimum: 1, maximum: 1000, default: 5 },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              threshold: { type: 'number' },
              stragglers: { type: 'array', items: anyObject },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const threshold =
        q.threshold ?? ((await knobs.get('scheduler.straggler_threshold')).value as number);
      const all = await open(q.shard).queries.stragglers({
        now: clock.now(),
        threshold,
        minSamples: q.minSamples,
      });
      return { threshold, stragglers: all.filter((s) => canSee(request.auth, s.row.tenant)) };
    },
  );

  app.get<{ Querystring: { shard?: string; fromMs?: number; toMs?: number } }>(
    '/api/services/scheduler/usage',
    {
      schema: {
        tags: TAGS,
        summary: 'Completed work per tenant (core-ms) over a window (a tenant token: its own)',
        description: `Default window: the last hour. Read from the usage buckets completions write (${opts.usageBucketMs} ms wide), whole buckets: the ones holding fromMs and toMs count in full (work completed up to a bucket after toMs is in), so windows that meet inside a bucket both count it; a window spans at most 10,000 buckets.`,
        headers,
        querystring: closed({ shard: shardParam, ...windowParams }),
        response: {
          200: {
            type: 'object',
            properties: {
              fromMs: { type: 'number' },
              toMs: { type: 'number' },
              bucketMs: { type: 'number' },
              tenants: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    tenant: { type: 'string' },
                    taskMs: {
                      type: 'number',
                      description: "core-ms: each completed task's duration times its cores",
                    },
                  },
                },
              },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { fromMs, toMs } = timeWindow(q, clock, HOUR_MS);
      // The buckets the window touches (both ends' count in full): a window of the bound's
      // length not starting on a bucket edge touches one more, which the query dropped.
      const b = opts.usageBucketMs;
      if (Math.floor(toMs / b) - Math.floor(fromMs / b) + 1 > USAGE_BUCKETS_MAX)
        throw new ValidationError(
          `the window spans more than ${USAGE_BUCKETS_MAX} usage buckets of ${opts.usageBucketMs} ms`,
          'query.fromMs',
          'max_window',
        );
      const usage = await open(q.shard).queries.tenantUsage(fromMs, toMs, opts.usageBucketMs);
      const tenants = [...usage.entries()]
        .filter(([t]) => canSee(request.auth, t))
        .map(([tenant, taskMs]) => ({ tenant, taskMs }))
        .sort((a, b) => b.taskMs - a.taskMs);
      return { fromMs, toMs, bucketMs: opts.usageBucketMs, tenants };
    },
  );
}
