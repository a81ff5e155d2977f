// `knobos start` (`npm start`): the embedded default. Starts Redis (or uses REDIS_URL), seeds
// the knobs, prints how to see them, and runs until Ctrl-C.
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../../controlplane/log.ts';
import { startNode } from '../../controlplane/node.ts';
import { targetFromEnv } from '../../controlplane/redis/connect.ts';
import { EMBEDDED_FILE, STATE_DIR } from '../context.ts';

export async function run(argv: string[]): Promise<number> {
  const { values: o } = parseArgs({
    args: argv,
    options: { redis: { type: 'string' }, 'exit-after-start': { type: 'boolean', default: false } },
  });
  const log = createLogger('knobos');
  const target = o.redis ? { url: o.redis } : targetFromEnv();
  const node = await startNode({
    ...(target ? { target } : {}),
    dataDir: STATE_DIR,
    prefix: process.env['KNOBOS_PREFIX'] ?? 'knobos',
    log,
  });
  if (node.managed) {
    mkdirSync(STATE_DIR, { recursive: true });
    // The admin login of the embedded server's ACL users (docs/security.md): readable by this
    // user only, so the CLI can connect; removed on stop.
    writeFileSync(
      EMBEDDED_FILE,
      JSON.stringify({ url: node.managed.url, pid: process.pid, ...(node.adminLogin ?? {}) }) +
        '\n',
      { mode: 0o600 },
    );
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
        ? [`  (Redis ACLs are on: the admin password is in ${EMBEDDED_FILE})`]
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
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (node.managed) rmSync(EMBEDDED_FILE, { force: true });
    await node.stop();
    process.exit(0);
  };
  if (o['exit-after-start']) {
    await stop();
    return 0;
  }
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await new Promise(() => {}); // until a signal
  return 0;
}
