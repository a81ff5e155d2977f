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
import {
  schedulerShardNames,
  startSchedulerStack,
  STACK_USAGE_BUCKET_MS,
  type SchedulerStack,
} from './run/scheduler-stack.ts';
import type { Logger } from './log.ts';
import { AclConnections } from './redis/acl-connect.ts';
import type { RedisClient, RedisTarget } from './redis/connect.ts';
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
  /**
   * Where KNOBOS_REDIS_ACL, KNOBOS_REDIS_PASSWORD_<USER> and the API's settings (PORT, ...) are
   * read (default process.env).
   */
  env?: NodeJS.ProcessEnv;
}

export interface KnobosNode {
  redis: RedisClient;
  keys: Keys;
  knobs: KnobTable;
  features: RedisFeatures;
  /** The embedded Redis, when this node started one. */
  managed?: ManagedRedis;
  target: RedisTarget;
  /** The admin user's login when Redis ACLs are on (for the CLI; never log it). */
  adminLogin?: { username: string; password: string };
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
  const keys = new Keys(opts.prefix ?? 'knobos');
  // Each service stack, the loop and the API connect as their own Redis ACL user
  // (docs/security.md); the node itself (seeding, feature detection) as the admin user.
  const conns = await AclConnections.open({
    target,
    keys,
    env: opts.env ?? process.env,
    embedded: managed !== undefined,
    log,
  });
  const redis = conns.as('admin');
  const features = await detectFeatures(redis);
  log.info(
    { ...features },
    features.search
      ? 'redis has RediSearch'
      : 'redis without RediSearch: indexes are our own sorted sets',
  );
  const knobs = new KnobTable(redis, { keys });
  /** The knobs table over a user's own connection (the one table when ACLs are off). */
  const tableAs = (user: 'files' | 'messaging' | 'scheduler' | 'loop' | 'api'): KnobTable =>
    conns.mode === 'off' ? knobs : new KnobTable(conns.as(user), { keys });
  const { created } = await knobs.seed('knobos-start');
  log.info({ created: created.length, total: knobs.catalog.length }, 'knobs table seeded');
  // The scheduler's shards, named once: the stack runs them and the API reads them.
  const schedulerShards = await schedulerShardNames(redis);
  let files: FilesStack | undefined;
  let messaging: MessagingStack | undefined;
  let scheduler: SchedulerStack | undefined;
  let loop: LoopDaemon | undefined;
  if (opts.services !== false) {
    const seed = opts.seed ?? 1;
    // The tuning targets the stacks build are the loop's: they read with the loop's user.
    const loopKnobs = tableAs('loop');
    files = await startFilesStack(tableAs('files'), log.child({ component: 'files' }), {
      seed,
      ratePerS: 400,
      loopKnobs,
    });
    messaging = await startMessagingStack(
      tableAs('messaging'),
      log.child({ component: 'messaging' }),
      { seed, ratePerS: 200 },
    );
    // About 40% load on the 6 slots of 3 shards, skewed by tenant: the busiest shard is about
    // 70% busy, so queues form in bursts there (dispatch order matters) and placement matters.
    scheduler = await startSchedulerStack(
      tableAs('scheduler'),
      log.child({ component: 'scheduler' }),
      {
        seed,
        ratePerS: 29,
        shards: schedulerShards,
        loopKnobs,
      },
    );
    loop = new LoopDaemon({
      knobs: loopKnobs,
      proposals: new ProposalTable(loopKnobs),
      targets: [files.target, scheduler.target, scheduler.placementTarget],
      log: log.child({ component: 'loop' }),
      // At most one change per target every two minutes.
      minChangeIntervalMs: 120_000,
      tickMs: 2_000,
      seed,
    }).start();
    log.info('live services, workload and control loop started');
  }
  const apiKnobs = opts.api === false ? undefined : tableAs('api');
  const api =
    apiKnobs &&
    (await serveApi({
      redis: apiKnobs.redis,
      knobs: apiKnobs,
      log: log.child({ component: 'api' }),
      ...(opts.env ? { env: opts.env } : {}),
      services: { schedulerShards, usageBucketMs: STACK_USAGE_BUCKET_MS },
    }));
  const adminLogin = conns.login('admin');
  return {
    redis,
    keys,
    knobs,
    features,
    target,
    ...(adminLogin ? { adminLogin } : {}),
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
      conns.close();
      await managed?.stop();
      log.info('stopped');
    },
  };
}
