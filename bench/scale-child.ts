// A bench:scale process. It lives for the whole benchmark and, on command, plays one role on a
// cluster:
//   { type: 'start', role: 'service', seeds, prefix, shards }      one SchedulerService per shard
//   { type: 'start', role: 'worker', seeds, prefix, shards, concurrency }
//                                  one WorkerRuntime per shard, the concurrency split evenly
//   -> { type: 'started' };  { type: 'stop' } -> { type: 'stopped', ran, cpuUs }
// and reports nothing more at 'finish' (forkChild's protocol).
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { connect } from '../controlplane/redis/connect.ts';
import { startShardServices } from '../controlplane/scheduler/router.ts';
import { SCHEDULER_KNOBS } from '../controlplane/scheduler/service.ts';
import { WorkerRuntime } from '../controlplane/scheduler/worker.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { servePhases } from './lib/children.ts';

export interface ScaleStart {
  type: 'start';
  role: 'service' | 'worker';
  seeds: { host: string; port: number }[];
  prefix: string;
  shards: string[];
  concurrency: number;
}

let ran = 0;
let stopRun: () => Promise<unknown> = async () => {};

/** Splits n slots over k parts as evenly as integers allow. */
function split(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

async function start(c: ScaleStart): Promise<void> {
  ran = 0;
  const redis = connect({ cluster: c.seeds });
  const keys = new Keys(c.prefix);
  const log = createLogger('bench-scale', 'warn');
  if (c.role === 'service') {
    // The parent seeded the table (with the benchmark's dispatch batch): this only reads it.
    const knobs = await KnobClient.start({
      table: new KnobTable(redis, { keys }),
      names: SCHEDULER_KNOBS,
    });
    const services = startShardServices(c.shards, { redis, knobs, keys, log });
    stopRun = async () => {
      await Promise.all(services.map((s) => s.stop()));
      await knobs.close();
      redis.disconnect();
    };
  } else {
    const slots = split(c.concurrency, c.shards.length);
    const runtimes = await Promise.all(
      c.shards.map((shard, i) =>
        WorkerRuntime.start({
          redis,
          keys,
          shard,
          concurrency: slots[i] as number,
          handlers: { noop: () => (ran++, null) },
          log,
        }),
      ),
    );
    stopRun = async () => {
      await Promise.all(runtimes.map((w) => w.stop({ drain: true, timeoutMs: 5_000 })));
      redis.disconnect();
    };
  }
}

servePhases<ScaleStart>(start, async () => {
  await stopRun();
  return { ran };
});
