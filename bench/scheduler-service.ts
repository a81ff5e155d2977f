// A bench:scheduler scheduler-service process: the knobos dispatcher runs here, as `npm start`
// runs each scheduler shard's service, apart from the processes that submit (the benchmark's
// producer, like the API and workloads) and from the workers. It lives for the whole benchmark,
// so its code is as warm as the workers' and BullMQ's, and on command:
//   { type: 'start', url, name, dispatchBatch }  -> { type: 'started' }
//   { type: 'stop' }                              -> { type: 'stopped', cpuUs, stale }
// and reports nothing more at 'finish' (forkChild's protocol).
import { Redis } from 'ioredis';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { SCHEDULER_KNOBS, SchedulerService } from '../controlplane/scheduler/service.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { catalogWithDispatchBatch } from './lib/catalog.ts';
import { servePhases } from './lib/children.ts';
import { startProfile } from './scheduler-profile.ts';

export interface ServiceStartCommand {
  type: 'start';
  url: string;
  name: string;
  dispatchBatch: number;
}

let stopRun: () => Promise<number> = async () => 0;
let stopProfile: () => Promise<void> = async () => {};

async function start(c: ServiceStartCommand): Promise<void> {
  const redis = new Redis(c.url);
  const keys = new Keys(c.name);
  const table = new KnobTable(redis, { keys, catalog: catalogWithDispatchBatch(c.dispatchBatch) });
  await table.seed();
  const knobs = await KnobClient.start({ table, names: SCHEDULER_KNOBS });
  const service = SchedulerService.start({
    redis,
    knobs,
    keys,
    log: createLogger('bench-service', 'warn'),
  });
  stopRun = async () => {
    const stale = await service.queries.staleCompletions();
    await service.stop();
    await knobs.close();
    redis.disconnect();
    return stale;
  };
  stopProfile = await startProfile('knobos-service');
}

servePhases<ServiceStartCommand>(start, async () => {
  await stopProfile();
  return { stale: await stopRun() };
});
