// One knobos node: the embedded default (a managed redis-server under .knobos/ with its AOF)
// or a connection to a real deployment; the knobs table seeded; and, as they land, the live
// services, the control loop and the API server. stop() undoes everything in reverse order.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { serverEnv } from './api/config.ts';
import { serveApi, type ServedApi } from './api/serve.ts';
import { KnobTable, warnOutOfDomain } from './knobs/table.ts';
import { LoopDaemon } from './loop/daemon.ts';
import { ProposalTable } from './loop/proposals.ts';
import { startFilesStack, type FilesStack } from './run/files-stack.ts';
import { startMessagingStack, type MessagingStack } from './run/messaging-stack.ts';
import { NodeLease } from './run/node-lease.ts';
import { StateLock, stopOrphanedRedis } from './run/state-lock.ts';
import { undoSteps, type UndoStep } from './run/steps.ts';
import {
  startSchedulerStack,
  STACK_USAGE_BUCKET_MS,
  type SchedulerStack,
} from './run/scheduler-stack.ts';
import { schedulerShardNames } from './run/stack-shards.ts';
import type { Logger } from './log.ts';
import { aclModeFromEnv, aclPasswords } from './redis/acl.ts';
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
  /**
   * Run the live services with their workload and the control loop (default true). Such a node
   * holds the deployment's node lease (run/node-lease.ts): a second one is refused.
   */
  services?: boolean;
  /** The node lease's time to live (default NODE_LEASE_TTL_MS); tests shorten it. */
  nodeLeaseTtlMs?: number;
  seed?: number;
  /**
   * Where KNOBOS_REDIS_ACL, KNOBOS_REDIS_PASSWORD_<USER> and the API's settings (PORT, ...) are
   * read (default process.env). All are checked before anything starts.
   */
  env?: NodeJS.ProcessEnv;
  /**
   * Called once when the node cannot go on: the embedded redis-server exited while the node ran,
   * or it lost its node lease. The error has been logged; the caller stops the node (`knobos start` exits with 1). Without
   * it, the node stops itself.
   */
  onFatal?: (err: Error) => void;
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
  /**
   * Stops everything in reverse order. Every step runs even when one fails (each failure is
   * logged); it then rejects with the failures. Calling it again returns the same promise.
   */
  stop(): Promise<void>;
}

export async function startNode(opts: NodeOptions): Promise<KnobosNode> {
  const { log } = opts;
  const env = opts.env ?? process.env;
  // Every setting is read (and refused) before anything starts: a bad PORT must not leave a
  // redis-server and three services running behind an error message.
  const aclMode = aclModeFromEnv(env, opts.target === undefined);
  if (aclMode !== 'off') aclPasswords(env, { generate: opts.target === undefined });
  if (opts.api !== false) serverEnv(env, { generateAdminToken: false });

  // What has started, in order; stop() and a failed start undo it in reverse.
  const steps: UndoStep[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const failures = await undoSteps(steps, log);
      if (failures.length)
        throw new Error(
          `stopping the node failed (${failures.map((f) => `${f.step}: ${f.err.message}`).join('; ')})`,
        );
      log.info('stopped');
    })());

  try {
    return await startSteps(opts, env, steps, stop);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'startup failed: stopping what had started');
    await stop().catch(() => undefined); // each failure was logged
    throw err;
  }
}

async function startSteps(
  opts: NodeOptions,
  env: NodeJS.ProcessEnv,
  steps: UndoStep[],
  stop: () => Promise<void>,
): Promise<KnobosNode> {
  const { log } = opts;
  let managed: ManagedRedis | undefined;
  /** What to drop at once if the embedded server dies (its connections). */
  const onServerGone: (() => void)[] = [];
  let target = opts.target;
  if (!target) {
    // One node per data directory: a second server on the same AOF would corrupt it.
    mkdirSync(opts.dataDir, { recursive: true });
    const { lock, stale } = StateLock.acquire(opts.dataDir);
    steps.push({ name: 'data directory lock', undo: () => lock.release() });
    await stopOrphanedRedis(opts.dataDir, stale, log);
    const dir = join(opts.dataDir, 'redis');
    mkdirSync(dir, { recursive: true });
    // everysec: at most a second of writes lost on a crash of the embedded default. The
    // server's pid goes into the lock as soon as it exists: a node killed while the server
    // loads its AOF left it running, named nowhere, and the next start ran a second server on
    // the same AOF.
    const m = await ManagedRedis.start({
      dir,
      appendfsync: 'everysec',
      onSpawn: (pid, port) => lock.update({ redisPid: pid, redisPort: port }),
    });
    managed = m;
    steps.push({ name: 'embedded redis-server', undo: () => m.stop() });
    lock.update({ redisPid: m.pid, redisPort: m.port, url: m.url });
    target = { url: m.url };
    log.info({ url: m.url, dir, pid: m.pid }, 'started embedded redis-server');
    let fatal = false;
    const unwatch = m.onUnplannedExit((reason) => {
      if (fatal) return;
      fatal = true;
      const err = new Error(`${reason}; the node stops`);
      log.error({ err: err.message }, 'the embedded redis-server died');
      // Nothing will answer: close the connections, so that stopping fails fast instead of
      // retrying against a dead server.
      for (const drop of onServerGone) drop();
      if (opts.onFatal) opts.onFatal(err);
      else void stop().catch(() => undefined);
    });
    steps.push({ name: 'redis-server watch', undo: () => void unwatch() });
  }
  const keys = new Keys(opts.prefix ?? 'knobos');
  // Each service stack, the loop and the API connect as their own Redis ACL user
  // (docs/security.md); the node itself (seeding, feature detection) as the admin user.
  const acl = await AclConnections.open({
    target,
    keys,
    env,
    embedded: managed !== undefined,
    log,
  });
  onServerGone.push(() => acl.close());
  steps.push({ name: 'redis connections', undo: () => acl.close() });
  const redis = acl.as('admin');
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
    acl.mode === 'off' ? knobs : new KnobTable(acl.as(user), { keys });
  const { created, outOfDomain } = await knobs.seed('knobos-start');
  log.info({ created: created.length, total: knobs.catalog.length }, 'knobs table seeded');
  warnOutOfDomain(log, outOfDomain);
  // The scheduler's shards, named once: the stack runs them and the API reads them.
  const schedulerShards = await schedulerShardNames(redis);
  if (opts.services !== false) {
    // One node with the services per deployment (run/node-lease.ts).
    const lease = await NodeLease.acquire(redis, keys, {
      log,
      ownRedis: managed !== undefined,
      ...(opts.nodeLeaseTtlMs !== undefined ? { ttlMs: opts.nodeLeaseTtlMs } : {}),
      onLost: (err) => {
        if (opts.onFatal) opts.onFatal(err);
        else void stop().catch(() => undefined);
      },
    });
    steps.push({ name: 'node lease', undo: () => lease.release() });
  }
  let files: FilesStack | undefined;
  let messaging: MessagingStack | undefined;
  let scheduler: SchedulerStack | undefined;
  let loop: LoopDaemon | undefined;
  if (opts.services !== false) {
    const seed = opts.seed ?? 1;
    // The tuning targets the stacks build are the loop's: they read with the loop's user.
    const loopKnobs = tableAs('loop');
    const f = await startFilesStack(tableAs('files'), log.child({ component: 'files' }), {
      seed,
      ratePerS: 400,
      loopKnobs,
    });
    files = f;
    steps.push({ name: 'files stack', undo: () => f.stop() });
    const ms = await startMessagingStack(
      tableAs('messaging'),
      log.child({ component: 'messaging' }),
      { seed, ratePerS: 200 },
    );
    messaging = ms;
    steps.push({ name: 'messaging stack', undo: () => ms.stop() });
    // About 40% load on the 6 slots of 3 shards, skewed by tenant: the busiest shard is about
    // 70% busy, so queues form in bursts there (dispatch order matters) and placement matters.
    const sc = await startSchedulerStack(
      tableAs('scheduler'),
      log.child({ component: 'scheduler' }),
      {
        seed,
        ratePerS: 29,
        shards: schedulerShards,
        loopKnobs,
      },
    );
    scheduler = sc;
    steps.push({ name: 'scheduler stack', undo: () => sc.stop() });
    const l = new LoopDaemon({
      knobs: loopKnobs,
      proposals: new ProposalTable(loopKnobs),
      targets: [f.target, sc.target, sc.placementTarget],
      log: log.child({ component: 'loop' }),
      // At most one change per target every two minutes.
      minChangeIntervalMs: 120_000,
      tickMs: 2_000,
      seed,
    }).start();
    loop = l;
    steps.push({ name: 'control loop', undo: () => l.stop() });
    log.info('live services, workload and control loop started');
  }
  const apiKnobs = opts.api === false ? undefined : tableAs('api');
  const api =
    apiKnobs &&
    (await serveApi({
      redis: apiKnobs.redis,
      knobs: apiKnobs,
      log: log.child({ component: 'api' }),
      env,
      services: { schedulerShards, usageBucketMs: STACK_USAGE_BUCKET_MS },
    }));
  if (api) steps.push({ name: 'api server', undo: () => api.close() });
  const adminLogin = acl.login('admin');
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
    stop,
  };
}
