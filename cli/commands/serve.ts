// `knobos serve`: the API server and dashboard against an existing Redis (REDIS_URL,
// KNOBOS_REDIS_CLUSTER, --redis, or the embedded one `knobos start` runs).
import { serveApi } from '../../controlplane/api/serve.ts';
import { KnobTable, warnOutOfDomain } from '../../controlplane/knobs/table.ts';
import { createLogger } from '../../controlplane/log.ts';
import { connect } from '../../controlplane/redis/connect.ts';
import { STACK_USAGE_BUCKET_MS } from '../../controlplane/run/scheduler-stack.ts';
import { schedulerShardNames } from '../../controlplane/run/stack-shards.ts';
import { embeddedLogin, keysFromEnv, resolveTarget } from '../context.ts';
import { signals } from '../signals.ts';
import { parseFlags } from '../args.ts';

/** How long a stop may take before the server exits anyway (with 1). */
const STOP_DEADLINE_MS = 10_000;

export async function run(argv: string[]): Promise<number> {
  const { values: o } = parseFlags({ args: argv, options: { redis: { type: 'string' } } });
  const log = createLogger('knobos-serve');
  // Not connectCli: a server retries while Redis is away instead of failing fast. Against the
  // embedded server it logs in as its admin, as the CLI does (its default user may only PING).
  const target = resolveTarget(o.redis);
  const redis = connect(target, { name: 'knobos-api', ...embeddedLogin(target) });
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
  const knobs = new KnobTable(redis, { keys: keysFromEnv() });
  // Creates only missing knobs.
  warnOutOfDomain(log, (await knobs.seed('knobos-serve')).outOfDomain);
  // The scheduler shards `knobos start` runs on this Redis, so the dashboard reads them.
  const api = await serveApi({
    redis,
    knobs,
    log: log.child({ component: 'api' }),
    services: {
      schedulerShards: await schedulerShardNames(redis),
      usageBucketMs: STACK_USAGE_BUCKET_MS,
    },
  });
  // Listening before the banner: a Ctrl-C right after it must stop the server, not kill it.
  // One Ctrl-C may arrive twice (the process group's and npm's copy): a second one exits at
  // once, and so does a stop that takes longer than STOP_DEADLINE_MS (a request in flight on a
  // Redis that does not answer holds the server's close).
  const stop = async () => {
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
    await api.close();
    redis.disconnect();
    process.exit(0);
  };
  const onSignal = signals(
    () => void stop(),
    () => process.exit(130),
  );
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.write(
    [
      `Dashboard: ${api.dashboardUrl}`,
      `API docs:  ${api.url}/docs`,
      ...(api.generatedAdminToken ? [`Admin token for this run: ${api.generatedAdminToken}`] : []),
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
  await new Promise(() => {});
  return 0;
}
