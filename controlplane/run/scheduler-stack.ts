// The scheduler as `npm start` runs it: the service of one shard, two worker processes' worth
// of runtimes in this process (2 slots each), the paced job workload, and the loop's policy
// target calibrated from the service's traces (measured run times).
import { uniformWorkers } from '../../envs/scheduler/index.ts';
import { KnobClient } from '../knobs/client.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { Logger } from '../log.ts';
import { followReplicaAcks, REPLICA_ACK_KNOBS } from '../store/replica-acks.ts';
import { SchedulerPolicyTarget } from '../loop/targets/scheduler-policy.ts';
import { SCHEDULER_KNOBS, SchedulerService } from '../scheduler/service.ts';
import { WorkerRuntime } from '../scheduler/worker.ts';
import { SchedulerWorkload, SLEEP_TASK, sleepHandler } from '../workload/scheduler.ts';

export interface SchedulerStack {
  service: SchedulerService;
  workload: SchedulerWorkload;
  target: SchedulerPolicyTarget;
  stop(): Promise<void>;
}

const WORKERS = 2;
const SLOTS = 2;

export async function startSchedulerStack(
  knobs: KnobTable,
  log: Logger,
  opts: {
    seed: number;
    ratePerS: number;
    /** The loop's table (its Redis user) for the tuning target; default `knobs`. */
    loopKnobs?: KnobTable;
  },
): Promise<SchedulerStack> {
  const client = await KnobClient.start({
    table: knobs,
    names: [...SCHEDULER_KNOBS, ...REPLICA_ACK_KNOBS],
  });
  followReplicaAcks(knobs.redis, client);
  // Every arrival and run time is traced: calibration needs the whole workload, not a sample.
  const traceSampleRate = { arrivals: 1, durations: 1, decisions: 0.1, jobs: 1, shadow: 1 };
  const service = SchedulerService.start({
    redis: knobs.redis,
    knobs: client,
    keys: knobs.keys,
    log,
    traceSampleRate,
  });
  const workers = await Promise.all(
    Array.from({ length: WORKERS }, (_, i) =>
      WorkerRuntime.start({
        redis: knobs.redis,
        keys: knobs.keys,
        id: `worker-${i}`,
        concurrency: SLOTS,
        capacity: { cpu: SLOTS, memMb: 4096, gpu: 0 },
        handlers: { [SLEEP_TASK]: sleepHandler },
        traceSampleRate: { durations: 1, jobs: 1 },
        log,
      }),
    ),
  );
  const workload = SchedulerWorkload.start({
    service,
    ratePerS: opts.ratePerS,
    seed: opts.seed,
    medianMs: 40,
    sigma: 1.2,
    estimateSigma: 0.3,
    tenants: 4,
  });
  const target = new SchedulerPolicyTarget({
    knobs: opts.loopKnobs ?? knobs,
    workers: uniformWorkers(WORKERS * SLOTS, { cpu: 1, memMb: 2048, gpu: 0 }),
    windowMs: 60_000,
    minJobs: 500,
    maxRecords: 50_000,
    shadowMs: 15_000,
    shadowMinRounds: 50,
  });
  log.info(
    { workers: WORKERS, slots: SLOTS, ratePerS: opts.ratePerS },
    'scheduler: workload started',
  );
  return {
    service,
    workload,
    target,
    stop: async () => {
      await workload.stop();
      await Promise.all(workers.map((w) => w.stop({ drain: false }).catch(() => undefined)));
      await service.stop();
      await client.close();
    },
  };
}
