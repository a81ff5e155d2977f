// The scheduler as `npm start` runs it: three shards (each its own `{sched:<shard>}` slot; on a
// cluster, named so that they spread over the primaries), one service per shard (dispatcher,
// reaper, speculator, shadow decisions), one worker runtime of two slots per shard, the paced
// job workload submitting through the router (each tenant's tasks to its shard under the
// `placement.map` knob), the placement migrator that moves a tenant's rows live when that knob
// changes, and the loop's two scheduler targets:
// - scheduler.policy, calibrated from the scheduler's trace streams. Traces (and telemetry) are
//   per service, not per shard: every shard writes to the same streams, so the target sees all
//   shards' arrivals, run times and shadow rounds, and simulates them as ONE pool of all the
//   shards' slots. The live shards are separate queues, so a hot shard queues more than the
//   pooled simulator predicts (the fit's relative error shows it); the policy is one knob for
//   every shard's dispatcher, so one pooled calibration is what it is tuned on.
// - placement, calibrated from every shard's usage tables (core-ms per tenant per bucket).
// The workload's four tenants have Zipf shares (48/24/16/12 %); hashed over three shards the
// busiest shard carries about 60% of the load (71% busy on its two slots, the others 20-30%),
// so where tenants live matters and the placement target has something to fix.
import { uniformWorkers } from '../../envs/scheduler/index.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { Logger } from '../log.ts';
import { startStackKnobs } from './stack-knobs.ts';
import { schedulerShardNames } from './stack-shards.ts';
import { undoSteps, type UndoStep } from './steps.ts';
import { PlacementTarget } from '../loop/targets/placement.ts';
import { SchedulerPolicyTarget } from '../loop/targets/scheduler-policy.ts';
import { PlacementMigrator } from '../scheduler/placement-migrator.ts';
import { PLACEMENT_KNOB } from '../scheduler/placement.ts';
import { SchedulerRouter, startShardServices } from '../scheduler/router.ts';
import { SCHEDULER_KNOBS, type SchedulerService } from '../scheduler/service.ts';
import { SCHEDULER_SERVICE } from '../scheduler/traces.ts';
import { WorkerRuntime } from '../scheduler/worker.ts';
import { Telemetry } from '../telemetry/metrics.ts';
import { TraceWriter } from '../telemetry/traces.ts';
import { SchedulerWorkload, SLEEP_TASK, sleepHandler } from '../workload/scheduler.ts';

export interface SchedulerStack {
  /** Shard names by placement index. */
  shards: readonly string[];
  services: SchedulerService[];
  router: SchedulerRouter;
  migrator: PlacementMigrator;
  workload: SchedulerWorkload;
  /** The scheduler.policy target (calibrated from all shards' traces, pooled). */
  target: SchedulerPolicyTarget;
  placementTarget: PlacementTarget;
  stop(): Promise<void>;
}

const WORKERS_PER_SHARD = 1;
const SLOTS = 2;
/**
 * Width of the usage buckets the workers write and the placement target and the API read:
 * short enough for a two-minute window to hold a few dozen, with a short TTL so the embedded
 * default does not keep a week of them.
 */
export const STACK_USAGE_BUCKET_MS = 5_000;
const USAGE_TTL_MS = 3_600_000;

export async function startSchedulerStack(
  knobs: KnobTable,
  log: Logger,
  opts: {
    seed: number;
    ratePerS: number;
    /** Shard names by placement index (schedulerShardNames); computed when omitted. */
    shards?: readonly string[];
    /** The loop's table (its Redis user) for the tuning targets; default `knobs`. */
    loopKnobs?: KnobTable;
  },
): Promise<SchedulerStack> {
  const { redis, keys } = knobs;
  const shards = opts.shards ?? (await schedulerShardNames(redis));
  // What has started, in order; stop() and a failed start undo it newest first, every step
  // even when one fails.
  const steps: UndoStep[] = [];
  const undo = async (): Promise<void> => {
    const failures = await undoSteps(steps, log);
    if (failures[0]) throw failures[0].err;
  };
  let router: SchedulerRouter;
  let services: SchedulerService[];
  let migrator: PlacementMigrator;
  let workload: SchedulerWorkload;
  try {
    const client = await startStackKnobs(knobs, [...SCHEDULER_KNOBS, PLACEMENT_KNOB], redis);
    steps.push({ name: 'knob client', undo: () => client.close() });
    // The router's submits are the scheduler's arrivals and submit counts, as a service's own
    // client's are (same streams; its own telemetry instance).
    const routerTelemetry = new Telemetry({
      redis,
      keys,
      service: SCHEDULER_SERVICE,
      instance: `router-${process.pid}`,
    });
    routerTelemetry.start();
    steps.push({ name: 'router telemetry', undo: () => routerTelemetry.stop() });
    const arrivals = new TraceWriter({
      redis,
      keys,
      service: SCHEDULER_SERVICE,
      kind: 'arrivals',
      sampleRate: 1,
    });
    steps.push({ name: 'router arrivals', undo: () => arrivals.flush().catch(() => 0) });
    // Every arrival and run time is traced: calibration needs the whole workload, not a sample.
    const started = startShardServices(shards, {
      redis,
      knobs: client,
      keys,
      log,
      traceSampleRate: { arrivals: 1, durations: 1, decisions: 0.1, jobs: 1, shadow: 1 },
    });
    services = started;
    steps.push({ name: 'shard services', undo: () => Promise.all(started.map((s) => s.stop())) });
    const workers = await Promise.allSettled(
      shards.flatMap((shard) =>
        Array.from({ length: WORKERS_PER_SHARD }, (_, i) =>
          WorkerRuntime.start({
            redis,
            keys,
            shard,
            id: `${shard}-worker-${i}`,
            concurrency: SLOTS,
            capacity: { cpu: SLOTS, memMb: 4096, gpu: 0 },
            handlers: { [SLEEP_TASK]: sleepHandler },
            settle: { usageBucketMs: STACK_USAGE_BUCKET_MS, usageTtlMs: USAGE_TTL_MS },
            traceSampleRate: { durations: 1, jobs: 1 },
            log,
          }),
        ),
      ),
    );
    // The workers that started are stopped even when another did not.
    const running = workers.flatMap((w) => (w.status === 'fulfilled' ? [w.value] : []));
    steps.push({
      name: 'workers',
      undo: () => Promise.all(running.map((w) => w.stop({ drain: false }).catch(() => undefined))),
    });
    for (const w of workers) if (w.status === 'rejected') throw w.reason;
    const m = await PlacementMigrator.start({
      redis,
      knobs: client,
      keys,
      shards,
      log,
      // A short sweep: Ctrl-C waits for a migration under way to finish.
      sweepMs: 2_000,
    });
    migrator = m;
    // A migration under way finishes first (workers still run its leased tasks to the end).
    steps.push({ name: 'placement migrator', undo: () => m.close() });
    const r = new SchedulerRouter({
      redis,
      knobs: client,
      keys,
      shards,
      telemetry: routerTelemetry,
      arrivals,
    });
    router = r;
    steps.push({ name: 'router', undo: () => r.close() });
    const w = SchedulerWorkload.start({
      submitter: r,
      ratePerS: opts.ratePerS,
      seed: opts.seed,
      medianMs: 40,
      sigma: 1.2,
      estimateSigma: 0.3,
      tenants: 4,
    });
    workload = w;
    steps.push({ name: 'workload', undo: () => w.stop() });
  } catch (err) {
    // What started is stopped: a failed start leaves nothing running.
    await undo().catch(() => undefined); // each failure was logged
    throw err;
  }
  const loopKnobs = opts.loopKnobs ?? knobs;
  const target = new SchedulerPolicyTarget({
    knobs: loopKnobs,
    workers: uniformWorkers(shards.length * WORKERS_PER_SHARD * SLOTS, {
      cpu: 1,
      memMb: 2048,
      gpu: 0,
    }),
    windowMs: 60_000,
    minJobs: 500,
    maxRecords: 50_000,
    shadowMs: 15_000,
    shadowMinRounds: 50,
  });
  const placementTarget = new PlacementTarget({
    knobs: loopKnobs,
    shards,
    windowMs: 120_000,
    bucketMs: STACK_USAGE_BUCKET_MS,
    // A few seconds of the workload's core time (it completes about 2.4 core-s per second).
    minLoadMs: 20_000,
    stateBytes: 64 * 1024 ** 2,
    shadowMs: 30_000,
    shadowMinBuckets: 6,
  });
  log.info(
    { shards, workersPerShard: WORKERS_PER_SHARD, slots: SLOTS, ratePerS: opts.ratePerS },
    'scheduler: shards and workload started',
  );
  return {
    shards,
    services,
    router,
    migrator,
    workload,
    target,
    placementTarget,
    // Every step runs even when one fails; it then rejects with the first failure.
    stop: undo,
  };
}
