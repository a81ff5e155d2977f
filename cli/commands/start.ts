// `knobos start` (`npm start`): the embedded default. Starts Redis (or uses REDIS_URL), seeds
// the knobs, prints how to see them, and runs until Ctrl-C.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createLogger } from '../../controlplane/log.ts';
import { startNode } from '../../controlplane/node.ts';
import { targetFromEnv } from '../../controlplane/redis/connect.ts';
import { HOME_DIR, HOME_EMBEDDED_FILE } from '../context.ts';
import { signals } from '../signals.ts';
import { parseFlags } from '../args.ts';

/** How long Ctrl-C may take before the process exits anyway (with 1). */
const STOP_DEADLINE_MS = 20_000;
/** The same after the embedded redis-server died. */
const FATAL_STOP_DEADLINE_MS = 5_000;

export async function run(argv: string[]): Promise<number> {
  const { values: o } = parseFlags({
    args: argv,
    options: { redis: { type: 'string' }, 'exit-after-start': { type: 'boolean', default: false } },
  });
  const log = createLogger('knobos');
  const target = o.redis ? { url: o.redis } : targetFromEnv();
  // Set once the node has started; an embedded server dying before that fails startNode.
  const running: { stop?: (code: number, deadlineMs?: number) => Promise<void> } = {};
  let fatalBeforeStarted: Error | undefined;
  // Ctrl-C while starting: the node stops in order (services, then the embedded redis-server
  // in its own process group) as soon as it has started; a second Ctrl-C exits at once,
  // skipping that: the services stop where they are, and the embedded server gets SIGTERM
  // (redis/managed.ts) and shuts down on its own, its AOF fsynced.
  let signalledBeforeStarted = false;
  let started = false;
  // One listener for the whole run: removing one and adding another (as before) could drop a
  // signal that arrived in between, and the node ran on.
  const onSignal = signals(
    () => {
      if (started && running.stop) {
        void running.stop(0);
        return;
      }
      signalledBeforeStarted = true;
      log.warn(
        'stopping once started (Ctrl-C again to exit now without stopping the services in order; an embedded Redis is then sent SIGTERM and saves its data)',
      );
    },
    // A second Ctrl-C (not a copy of the first) exits at once.
    () => process.exit(130),
  );
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A startup failure stops what had started and rejects: main() exits with 1.
  const node = await startNode({
    ...(target ? { target } : {}),
    dataDir: HOME_DIR,
    prefix: process.env['KNOBOS_PREFIX'] ?? 'knobos',
    log,
    // The embedded redis-server died under us: stop and exit 1 (the error is logged).
    onFatal: (err) => {
      // Redis is gone: nothing left to save, so a short deadline (a client retrying the dead
      // server would otherwise hold the stop for the full one).
      if (running.stop) void running.stop(1, FATAL_STOP_DEADLINE_MS);
      else fatalBeforeStarted = err;
    },
  });
  let stopping = false;
  const stop = async (code: number, deadlineMs = STOP_DEADLINE_MS) => {
    if (stopping) return;
    stopping = true;
    try {
      if (node.managed) rmSync(HOME_EMBEDDED_FILE, { force: true });
    } catch (err) {
      // Not a reason to skip stopping the node.
      log.warn({ err: (err as Error).message }, `could not remove ${HOME_EMBEDDED_FILE}`);
    }
    // A service stuck on a Redis that is away must not hold the process forever.
    const deadline = setTimeout(() => {
      log.error({ afterMs: deadlineMs }, 'stopping took too long: exiting');
      process.exit(1);
    }, deadlineMs);
    let exitCode = code;
    try {
      await node.stop();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'stop failed');
      exitCode = 1;
    }
    clearTimeout(deadline);
    process.exit(exitCode);
  };
  running.stop = stop;
  // Anything failing from here on stops the node in order (Redis last, its AOF fsynced) and
  // exits 1, instead of reaching main()'s process.exit without node.stop().
  try {
    if (node.managed) {
      mkdirSync(HOME_DIR, { recursive: true });
      // The admin login of the embedded server's ACL users (docs/security.md): readable by this
      // user only, so the CLI can connect; removed on stop. Written to a new file, then renamed
      // over: writeFileSync's mode applies only when it creates the file, so a redis.json left
      // readable by others kept its permissions, and the password went into it.
      const fresh = `${HOME_EMBEDDED_FILE}.${process.pid}.new`;
      rmSync(fresh, { force: true });
      writeFileSync(
        fresh,
        JSON.stringify({
          url: node.managed.url,
          pid: process.pid,
          // The server's own pid: a next start shuts it down if this node dies with -9.
          redisPid: node.managed.pid,
          redisPort: node.managed.port,
          ...(node.adminLogin ?? {}),
        }) + '\n',
        { mode: 0o600, flag: 'wx' },
      );
      renameSync(fresh, HOME_EMBEDDED_FILE);
    }
    const rows = await node.knobs.list();
    const where =
      'url' in node.target
        ? node.target.url
        : node.target.cluster.map((s) => `${s.host}:${s.port}`).join(',');
    process.stdout.write(
      [
        `knobos is running on ${where}${node.managed ? ` (embedded, data in ${node.managed.dir})` : ''}`,
        `${rows.length} knobs in the knobs table. See them with:`,
        `  npx knobos knobs list`,
        `  npx knobos knobs history scheduler.policy`,
        `  npx knobos knobs set scheduler.policy sjf --base ${rows.find((r) => r.name === 'scheduler.policy')?.version ?? 1} --reason "try sjf"`,
        `  redis-cli -p ${node.managed?.port ?? '<port>'}${node.adminLogin ? ` --user ${node.adminLogin.username} --askpass` : ''} hgetall '${node.keys.knobRow('scheduler.policy')}'`,
        ...(node.adminLogin && node.managed
          ? [`  (Redis ACLs are on: the admin password is in ${HOME_EMBEDDED_FILE})`]
          : []),
        ...(node.api
          ? [
              `Dashboard: ${node.api.dashboardUrl}`,
              `API docs:  ${node.api.url}/docs`,
              ...(node.api.generatedAdminToken
                ? [
                    `Admin token for this run (paste it into the dashboard; set KNOBOS_ADMIN_TOKEN to choose your own):`,
                    `  ${node.api.generatedAdminToken}`,
                  ]
                : []),
              ...(node.api.authMode === 'off'
                ? ['WARNING: API authentication is off (KNOBOS_AUTH=off).']
                : []),
            ]
          : []),
        'Ctrl-C stops it.',
        '',
      ].join('\n'),
    );
  } catch (err) {
    log.error({ err: (err as Error).message }, 'startup failed after the node started: stopping');
    await stop(1);
    return 1;
  }
  if (fatalBeforeStarted) {
    await stop(1, FATAL_STOP_DEADLINE_MS);
    return 1;
  }
  started = true;
  if (o['exit-after-start'] || signalledBeforeStarted) {
    await stop(0);
    return 0;
  }
  await new Promise(() => {}); // until a signal
  return 0;
}
