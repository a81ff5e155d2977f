// One knobos node: the embedded default (a managed redis-server under .knobos/ with its AOF)
// or a connection to a real deployment; the knobs table seeded; and, as they land, the live
// services, the control loop and the API server. stop() undoes everything in reverse order.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { serveApi, type ServedApi } from './api/serve.ts';
import { KnobTable } from './knobs/table.ts';
import { LoopDaemon } from './loop/daemon.ts';
import { ProposalTable } from './loop/proposals.ts';
import { startFilesStack, type FilesStack } from './run/files-stack.ts';
import { startMessagingStack, type MessagingStack } from './run/messaging-stack.ts';
import { startSchedulerStack, type SchedulerStack } from './run/scheduler-stack.ts';
import type { Logger } from './log.ts';
import { connect, type RedisClient, type RedisTarget } from './redis/connect.ts';
import { ManagedRedis } from './redis/managed.ts';
import { detectFeatures, type RedisFeatures } from './store/features.ts';
import { Keys } from './store/keys.ts';

export interface NodeOptions {
  /** A real deployment; when omitted, a managed redis-server is started under dataDir. */
  target?: RedisTarget;
  dataDir: string;
  prefix?: string;
  log: Logger;
  /** Serve the API and dashboard (default true). */
  api?: boolean;
  /** Run the live services with their workload and the control loop (default true). */
  services?: boolean;
  seed?: number;
}

export interface KnobosNode {
  redis: RedisClient;
  keys: Keys;
  knobs: KnobTable;
  features: RedisFeatures;
  /** The embedded Redis, when this node started one. */
  managed?: ManagedRedis;
  target: RedisTarget;
  api?: ServedApi;
  files?: FilesStack;
  messaging?: MessagingStack;
  scheduler?: SchedulerStack;
  loop?: LoopDaemon;
  stop(): Promise<void>;
}

export async function startNode(opts: NodeOptions): Promise<KnobosNode> {
  const { log } = opts;
  let managed: ManagedRedis | undefined;
  let target = opts.target;
  if (!target) {
    const dir = join(opts.dataDir, 'redis');
    mkdirSync(dir, { recursive: true });
    // everysec: at most a second of writes lost on a crash of the embedded default.
    managed = await ManagedRedis.start({ dir, appendfsync: 'everysec' });
    target = { url: managed.url };
    log.info({ url: managed.url, dir }, 'started embedded redis-server');
  }
  const redis = connect(target, { name: 'knobos-node' });
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
  const keys = new Keys(opts.prefix ?? 'knobos');
  const features = await detectFeatures(redis);
  log.info(
    { ...features },
    features.search
      ? 'redis has RediSearch'
      : 'redis without RediSearch: indexes are our own sorted sets',
  );
  const knobs = new KnobTable(redis, { keys });
  const { created } = await knobs.seed('knobos-start');
  log.info({ created: created.length, total: knobs.catalog.length }, 'knobs table seeded');
  let files: FilesStack | undefined;
  let messaging: MessagingStack | undefined;
  let scheduler: SchedulerStack | undefined;
  let loop: LoopDaemon | undefined;
  if (opts.services !== false) {
    const seed = opts.seed ?? 1;
    files = await startFilesStack(knobs, log.child({ component: 'files' }), {
      seed,
      ratePerS: 400,
    });
    messaging = await startMessagingStack(knobs, log.child({ component: 'messaging' }), {
      seed,
      ratePerS: 200,
    });
    // About 60% load on the 4 slots: queues form in bursts, so dispatch order matters.
    scheduler = await startSchedulerStack(knobs, log.child({ component: 'scheduler' }), {
      seed,
      ratePerS: 29,
    });
    loop = new LoopDaemon({
      knobs,
      proposals: new ProposalTable(knobs),
      targets: [files.target, scheduler.target],
      log: log.child({ component: 'loop' }),
      // At most one change per target every two minutes.
      minChangeIntervalMs: 120_000,
      tickMs: 2_000,
      seed,
    }).start();
    log.info('live services, workload and control loop started');
  }
  const api =
    opts.api === false
      ? undefined
      : await serveApi({ redis, knobs, log: log.child({ component: 'api' }) });
  return {
    redis,
    keys,
    knobs,
    features,
    target,
    ...(managed ? { managed } : {}),
    ...(api ? { api } : {}),
    ...(files ? { files } : {}),
    ...(messaging ? { messaging } : {}),
    ...(scheduler ? { scheduler } : {}),
    ...(loop ? { loop } : {}),
    stop: async () => {
      await api?.close();
      await loop?.stop();
      await scheduler?.stop();
      await messaging?.stop();
      await files?.stop();
      redis.disconnect();
      await managed?.stop();
      log.info('stopped');
    },
  };
}
