// A scheduler under test: a seeded knobs table (with test defaults), a knob client, the
// scheduler service of one shard, and workers, all on a unique key prefix; stop() closes all.
import { CATALOG, type KnobSpec, type KnobValue } from '../../knobs/index.ts';
import { KnobClient } from '../../controlplane/knobs/client.ts';
import { ManualClock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import { createLogger } from '../../controlplane/log.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import {
  SCHEDULER_KNOBS,
  SchedulerService,
  type SchedulerServiceOptions,
} from '../../controlplane/scheduler/service.ts';
import type { DispatchArgs, SchedShard } from '../../controlplane/scheduler/shard.ts';
import { WorkerRuntime, type WorkerRuntimeOptions } from '../../controlplane/scheduler/worker.ts';
import type { Keys } from '../../controlplane/store/keys.ts';
import { uniqueKeys, type TestRedis } from './redis.ts';

const HOUR = 3_600_000;
export const quietLog = createLogger('scheduler-test', 'silent');

/** The catalog with other defaults (seeded as version 1, so no cooldown applies to them). */
export function catalogWith(defaults: Record<string, KnobValue>): KnobSpec[] {
  return CATALOG.map((k) =>
    k.name in defaults ? ({ ...k, default: defaults[k.name] } as KnobSpec) : k,
  );
}

export interface SchedulerHarness {
  keys: Keys;
  redis: RedisClient;
  table: KnobTable;
  knobClock: ManualClock;
  knobs: KnobClient;
  service: SchedulerService;
  /** Promotes a knob as an operator, past any cooldown; resolves once the service sees it. */
  setKnob(name: string, value: KnobValue): Promise<void>;
  worker(o: Omit<WorkerRuntimeOptions, 'redis' | 'keys'>): Promise<WorkerRuntime>;
  stop(): Promise<void>;
}

export async function startScheduler(
  redis: TestRedis,
  opts: {
    knobs?: Record<string, KnobValue>;
    service?: Partial<SchedulerServiceOptions>;
    keys?: Keys;
  } = {},
): Promise<SchedulerHarness> {
  const keys = opts.keys ?? uniqueKeys();
  const client = redis.client();
  const knobClock = new ManualClock(Date.now());
  const table = new KnobTable(client, {
    keys,
    clock: knobClock,
    catalog: catalogWith({
      'scheduler.retry_backoff_ms': 10,
      'scheduler.lease_ms': 2_000,
      ...opts.knobs,
    }),
  });
  await table.seed();
  const knobs = await KnobClient.start({ table, names: SCHEDULER_KNOBS, resyncIntervalMs: 200 });
  const service = SchedulerService.start({
    redis: client,
    knobs,
    keys,
    log: quietLog,
    reapIntervalMs: 50,
    speculateIntervalMs: 100,
    idleWaitMs: 100,
    traceSampleRate: { arrivals: 1, durations: 1, decisions: 1, jobs: 1 },
    ...opts.service,
  });
  const workers: WorkerRuntime[] = [];
  return {
    keys,
    redis: client,
    table,
    knobClock,
    knobs,
    service,
    async setKnob(name, value) {
      knobClock.advance(HOUR);
      const row = await table.get(name);
      await table.promote({ name, value, baseVersion: row.version, actor: 'test', reason: 'test' });
      const deadline = Date.now() + 5_000;
      while (JSON.stringify(knobs.get(name)) !== JSON.stringify(value)) {
        if (Date.now() > deadline) throw new Error(`knob ${name} never reached the client`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async worker(o) {
      const w = await WorkerRuntime.start({
        redis: redis.client(),
        keys,
        log: quietLog,
        heartbeatMs: 200,
        idleWaitMs: 200,
        traceSampleRate: { arrivals: 1, durations: 1, decisions: 1, jobs: 1 },
        ...o,
      });
      workers.push(w);
      return w;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop({ drain: false }).catch(() => undefined)));
      await service.stop();
      await knobs.close();
    },
  };
}

/** A dispatch call that claims `assignments` and reads no window (retry limit 3, backoff 100). */
export function dispatchArgs(
  assignments: DispatchArgs['assignments'],
  leaseMs = 1_000,
): DispatchArgs {
  return {
    leaseMs,
    retryLimit: 3,
    backoffMs: 100,
    window: 0,
    workersMax: 10,
    windowPerSlot: 2,
    windowMin: 0,
    assignments,
  };
}

/** Registers `workerId` (8 cores, `slots` slots, a 60 s heartbeat) at `now`. */
export async function heartbeatWorker(
  shard: SchedShard,
  workerId: string,
  now: number,
  slots = 8,
): Promise<void> {
  await shard.heartbeat(
    {
      workerId,
      heartbeatMs: 60_000,
      capacity: { cpu: 8, memMb: 1024 },
      slots,
      host: 'test',
      pid: 1,
      renew: [],
    },
    now,
  );
}

/**
 * Claims `taskId` on `workerId` (on `gpus`, if given) at `now` by a dispatch call of its own, as
 * the dispatcher would after picking it. Returns the claim's status and the row's lease token.
 */
export async function dispatchOne(
  shard: SchedShard,
  taskId: string,
  workerId: string,
  now: number,
  o: { leaseMs?: number; gpus?: number[] } = {},
): Promise<{ status: string | undefined; token: string }> {
  const assignment = { taskId, workerId, ...(o.gpus ? { gpus: o.gpus } : {}) };
  const r = await shard.dispatch(dispatchArgs([assignment], o.leaseMs), now);
  const lease = await shard.redis.hget(shard.k.task(taskId), 'lease');
  return { status: r.claims[0], token: String(lease).split('\t')[0] as string };
}

/** `dispatchOne` that must succeed: returns the lease token. */
export async function claim(
  shard: SchedShard,
  taskId: string,
  workerId: string,
  now: number,
  leaseMs = 1_000,
): Promise<string> {
  const { status, token } = await dispatchOne(shard, taskId, workerId, now, { leaseMs });
  if (status !== 'ok') throw new Error(`claim of ${taskId} on ${workerId}: ${status}`);
  return token;
}
