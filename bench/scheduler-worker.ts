// A bench:scheduler worker process. It lives for the whole benchmark and, on command, runs
// no-op tasks with `concurrency` slots as a knobos WorkerRuntime or as a BullMQ Worker:
//   { type: 'start', system, url, name, concurrency }  -> { type: 'started' }
//   { type: 'stop' }                                   -> { type: 'stopped', ran, cpuUs }
// and reports nothing more at 'finish' (forkChild's protocol).
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';
import { createLogger } from '../controlplane/log.ts';
import { WorkerRuntime } from '../controlplane/scheduler/worker.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { servePhases } from './lib/children.ts';
import { startProfile } from './scheduler-profile.ts';

export interface StartCommand {
  type: 'start';
  system: 'knobos' | 'bullmq';
  url: string;
  name: string;
  concurrency: number;
}

let ran = 0;
let stopRun: () => Promise<unknown> = async () => {};
let stopProfile: () => Promise<void> = async () => {};

async function start(c: StartCommand): Promise<void> {
  ran = 0;
  if (c.system === 'knobos') {
    const redis = new Redis(c.url);
    const w = await WorkerRuntime.start({
      redis,
      keys: new Keys(c.name),
      concurrency: c.concurrency,
      handlers: { noop: () => (ran++, null) },
      log: createLogger('bench-worker', 'warn'),
    });
    stopRun = async () => {
      await w.stop({ drain: true, timeoutMs: 5_000 });
      redis.disconnect();
    };
  } else {
    const connection = new Redis(c.url, { maxRetriesPerRequest: null });
    const w = new Worker(c.name, async () => (ran++, null), {
      connection,
      concurrency: c.concurrency,
    });
    await w.waitUntilReady();
    stopRun = async () => {
      await w.close();
      connection.disconnect();
    };
  }
  stopProfile = await startProfile(`${c.system}-worker`);
}

servePhases<StartCommand>(start, async () => {
  await stopProfile();
  await stopRun();
  return { ran };
});
